"""The Trainer a Model inherits (as in Keras 3, kept apart from the graph): ``compile``,
the three steps (``train_step``, ``test_step``, ``predict_step``, public and overridable),
and the entry points that run them in loops (``fit``, ``evaluate``, ``predict``; the loops
themselves are in ``training.loops``).

What it needs of the model is small and public: ``graph``, ``dtype``, ``backend``,
``weight_pairs``, ``all_layers``, ``input_shapes``, ``single_output_shape``,
``check_input_shape`` and ``build_from_data``. What compile decided lives in one
``CompileState``; how many processes share a step is the optimizer's ``strategy``'s
business (``training.strategy``), never the loop's."""
import contextlib
import math
import warnings

import numpy as np

from .. import losses, metrics as metrics_module, optimizers, runtime
from ..execute import apply_state_updates, run_backward, run_forward
from ..threads import blas_pinned_on_cpu
from . import data_adapter, inputs, loops
from .compile_state import CompileState
from .results import StepResult, TrainingDiverged
from .strategy import strategy_of


class Trainer:
    """compile, the steps, and fit / evaluate / predict for a model with one output (and one
    or several inputs). With an optimizer marked by ``distributed.DistributedOptimizer`` (and
    more than one rank), fit and evaluate are data-parallel: see ``scratchnet.distributed``."""

    _compile_state = None

    # ----- compile --------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None, **kwargs):
        """Choose the optimizer, the loss and the metrics, by name or instance. Which weights
        train is fixed here: change ``trainable`` later and compile again (as in Keras).
        ``weighted_metrics`` are metrics that count each sample by its sample weight (those in
        ``metrics`` do not)."""
        for name in [k for k in kwargs if k in _NO_OP_SWITCHES]:
            value = kwargs.pop(name)
            if name not in _NOTED_SWITCHES:
                _NOTED_SWITCHES.add(name)
                warnings.warn(f"compile({name}={value!r}) does nothing in scratchnet: {_NO_OP_SWITCHES[name]}",
                              stacklevel=2)
        unsupported = {k: v for k, v in kwargs.items() if v is not None}
        if unsupported:
            raise TypeError(f"compile() does not support {sorted(unsupported)} (scratchnet trains one loss); it "
                            f"takes optimizer, loss, metrics, weighted_metrics")
        if loss is None:
            raise ValueError(f"compile() needs a loss; expected one of "
                             f"{sorted(losses._CLASSES)} or a Loss instance")
        optimizer = optimizers.get(optimizer)
        if optimizer.slots is not None and self.graph is not None and \
                len(optimizer.slots) != len(self.weight_pairs(trainable=True)):
            raise ValueError(f"this {type(optimizer).__name__} already holds state for {len(optimizer.slots)} "
                             f"weights, but model {self.name!r} now trains {len(self.weight_pairs(trainable=True))}; "
                             f"compile with a new optimizer (e.g. optimizer='adam') after changing `trainable`")
        loss = losses.get(loss)
        for argument, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if value is not None and not isinstance(value, (list, tuple)):
                raise TypeError(f"compile({argument}=...) takes a list (e.g. ['accuracy']), got "
                                f"{type(value).__name__}")
        specs = [metrics_module.MetricSpec(m) for m in metrics or []] + \
                [metrics_module.MetricSpec(m, weighted=True) for m in weighted_metrics or []]
        for spec in specs:
            metrics_module.get(spec.identifier, loss, (1,))  # fail now on unknown names
        if self.graph is not None and specs and len(self.graph.outputs) != 1:
            raise NotImplementedError(f"metrics on a model with {len(self.graph.outputs)} outputs are not "
                                      f"supported yet; compile it without metrics")
        state = CompileState(self, loss, specs) if self.graph is not None else None
        # nothing above changed the model; from here on nothing can fail
        self.optimizer, self.loss, self.metric_specs = optimizer, loss, specs
        self.compiled, self._compile_state = True, state

    def compile_state(self):
        """What compile decided (settled now if the graph came after compile)."""
        if self._compile_state is None:
            if not self.compiled:
                raise RuntimeError(f"model {self.name!r} is not compiled; call model.compile(...) first")
            self.require_graph("output")
            self._compile_state = CompileState(self, self.loss, self.metric_specs)
        return self._compile_state

    def forget_compile_state(self):
        """The graph changed: the trained weights and the head are decided again at the next step."""
        self._compile_state = None

    @property
    def metrics(self):
        """The compiled metrics (empty before the first step of a model built later)."""
        state = self._compile_state
        return list(state.metrics) if state is not None else []

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"call model.compile(optimizer=..., loss=...) before model.{method}()")

    # ----- running the graph ------------------------------------------------------------
    def run_graph(self, x, training=False, head=False, keep_tape=True):
        """(output or list of outputs, tape). ``head`` runs the compiled head (logits where
        the loss fuses the output activation)."""
        values = x if isinstance(x, list) else [x]
        layer_for = self.compile_state().layer_for() if head and self.compiled else None
        outs, tape = run_forward(self.graph, values, training=training, layer_for=layer_for, keep_tape=keep_tape)
        return (outs[0] if len(outs) == 1 else outs), tape

    def _gradients(self, x, y, sample_weight=None, params=None, batch_size=None, scope=None, need_dx=False,
                   scaled=True, stop_if_not_finite=True, weight_penalty=True):
        """Forward (inside ``scope``: a data-parallel share's) and backward through the
        compiled head: (loss, outputs, tape, the gradients of ``params`` (the trained
        weights), dL/dx). The loss is Keras's total: the compiled loss, the activity
        penalties over the batch size and (with ``weight_penalty``) the weights' penalties.
        ``batch_size`` divides the loss instead of the samples given; ``scaled`` multiplies
        the gradients by the optimizer's loss_scale_factor, as its apply_gradients expects;
        with ``stop_if_not_finite`` a loss that is not finite stops before the backward pass,
        with gradients None."""
        state = self.compile_state()
        with scope or contextlib.nullcontext():
            out, tape = self.run_graph(x, training=True, head=True)
        loss, grad = self.loss.value_and_grad(y, out, from_logits=state.logits, sample_weight=sample_weight,
                                              kernels=self.backend,
                                              **({} if batch_size is None else {"batch_size": batch_size}))
        divisor = data_adapter.num_samples(x) if batch_size is None else batch_size
        params = state.trained_params() if params is None else params
        loss += tape.activity_penalty / divisor + (state.weight_penalty(params) if weight_penalty else 0.0)
        if stop_if_not_finite and not math.isfinite(loss):   # nothing is stored: no weights, no statistics
            return loss, out, tape, None, None
        scale = getattr(self.optimizer, "loss_scale_factor", None) if scaled else None
        if scale:                     # the loss scaled up as Keras's scale_loss does; the optimizer divides back
            grad = grad * grad.dtype.type(scale)
        dx, grads = run_backward(self.graph, tape, grad if isinstance(grad, list) else [grad],
                                 need_input_grads=need_dx, activity_scale=(scale or 1) / divisor)
        gradients = state.gradients_in_order(grads, params)
        if weight_penalty and state.penalties:
            gradients = state.with_penalty_gradients(gradients, params, scale)
        return loss, out, tape, gradients, dx

    def loss_and_gradients(self, x, y, sample_weight=None):
        """For a train_step of one's own: (loss, outputs, gradients) of one batch on the
        device (y as the loss reads it), the gradients in the order of ``trained_weights()``
        and as ``optimizer.apply_gradients`` takes them (multiplied by the optimizer's
        loss_scale_factor, where it has one); nothing is updated."""
        loss, out, _, gradients, _ = self._gradients(x, y, sample_weight, stop_if_not_finite=False)
        return loss, out, gradients

    def trained_weights(self):
        """The arrays a training step updates (fixed at compile), for apply_gradients (which
        applies their layers' constraints after the update)."""
        state = self.compile_state()
        params = state.trained_params()
        self.optimizer.set_constraints(params, state.constraints_of(params))
        return params

    # ----- the steps ----------------------------------------------------------------------
    def train_step(self, data):
        """One optimizer step on one batch: forward, loss, backward, update. ``data`` is
        (x, y) or (x, y, sample_weight), on the model's device, y as the loss reads it.
        Returns a StepResult. Override it for a step of your own, as in Keras 3: fit calls
        it with every batch, and a step that returns a dict of logs ({'loss': ...}) has
        them reported as they are (see ``loss_and_gradients``)."""
        x, y, sample_weight = data_adapter.split_batch(data, "train_step's data")
        with np.errstate(over="ignore", invalid="ignore"):   # a non-finite loss stops fit with its own message
            try:
                return self._optimizer_step(x, y, sample_weight)
            except MemoryError as error:
                n = data_adapter.num_samples(x)
                raise MemoryError(f"out of memory in a training step of batch size {n} on the "
                                  f"'{self.backend.name}' backend; lower batch_size (e.g. {max(1, n // 2)})"
                                  ) from error
            except Exception as error:
                if type(error).__name__ == "OutOfMemoryError":   # CuPy's, without importing CuPy
                    n = data_adapter.num_samples(x)
                    raise MemoryError(f"GPU out of memory in a training step of batch size {n}: {error}. "
                                      f"Lower batch_size (e.g. {max(1, n // 2)})") from error
                raise

    def _optimizer_step(self, x, y, sample_weight):
        state = self.compile_state()
        strategy = strategy_of(self.optimizer)
        n = data_adapter.num_samples(x)
        share = strategy.share(n)
        if share is None:          # no process has a sample of this batch: no step
            return StepResult(0.0, None, 0)
        params = state.trained_params()
        out, tape, gradients, loss = None, None, None, 0.0
        sits_out = n == 0 and strategy.allows_empty_batches   # a rank whose share of the batch is empty
        if not sits_out:
            state.check_trainable_unchanged(self)
            loss, out, tape, gradients, _ = self._gradients(
                x, y, sample_weight, params, batch_size=None if share.total == n else share.total,
                scope=strategy.batch_scope(share), weight_penalty=False)
        gradients, loss, finite = strategy.reduce(gradients, loss, math.isfinite(loss), share, params)
        if finite and state.penalties:    # the weights' penalties, once for the whole step (every rank alike)
            loss += state.weight_penalty(params)
            finite = math.isfinite(loss)
            gradients = state.with_penalty_gradients(gradients, params, getattr(self.optimizer, "loss_scale_factor",
                                                                                  None))
        if not finite:             # nothing is stored: neither weights nor moving statistics
            return StepResult(loss, out, share.total)
        self.optimizer.set_constraints(params, state.constraints_of(params))
        self.optimizer.apply_gradients(params, gradients, self.backend, reduced=True)
        if tape is not None:
            apply_state_updates(tape)
        strategy.finish_step(self, share)
        return StepResult(loss, out, share.total)

    def test_step(self, data):
        """The loss total and outputs of one (x, y[, sample_weight]) batch in inference mode:
        StepResult(sum of the per-sample losses as a 0-d array on the device, outputs,
        samples). An override may return a dict of logs instead, as in Keras 3."""
        x, y, sample_weight = data_adapter.split_batch(data, "test_step's data")
        state = self.compile_state()
        out, tape = self.run_graph(x, training=False, head=True, keep_tape=False)
        total = self.loss.total(y, out, from_logits=state.logits, sample_weight=sample_weight, kernels=self.backend)
        n = data_adapter.num_samples(x)
        penalties = tape.activity_penalty + n * state.weight_penalty(state.trained_params())
        if penalties:     # Keras's batch loss includes them; a batch counts n times in the total
            total = total + total.dtype.type(penalties)
        return StepResult(total, out, n)

    def predict_step(self, data):
        """The model's outputs for one batch of inputs (checked, on the host), on the host."""
        out = self.run_graph(inputs.to_device(self, data), training=False, keep_tape=False)[0]
        return loops.host_outputs(out)

    # ----- the loops ----------------------------------------------------------------------
    @blas_pinned_on_cpu
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        """Train for ``epochs`` epochs; returns a History (also kept as ``model.history``).

        ``sample_weight`` (one weight per sample) or ``class_weight`` ({class index: weight})
        weigh each sample's loss, as in Keras: the loss of a batch is sum(w * loss) / batch
        size, and only ``weighted_metrics`` (of compile) see the weights. For a segmentation
        model's (N, H, W, K) output the loss is the mean over every pixel, and the weights may
        be per pixel, (N, H, W) (or (N, H, W, 1)); class_weight then weighs each pixel by its
        class (Keras 3 takes class_weight for one label per sample only).

        With a ``distributed.DistributedOptimizer``, every rank calls fit with the same
        arguments; ``batch_size`` is each rank's share of the global batch."""
        self._require_compiled("fit")
        runtime.prepare(self.backend.name)
        return loops.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                         shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps,
                         validation_batch_size, validation_freq)

    fit_generator = fit

    @blas_pinned_on_cpu
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss (and metrics) on the given data: a float, or [loss, metric, ...] with metrics;
        ``sample_weight`` weighs the loss (and the weighted_metrics) as in fit. With a
        ``distributed.DistributedOptimizer``, every rank evaluates its share of the arrays
        and all get the totals."""
        self._require_compiled("evaluate")
        runtime.prepare(self.backend.name)
        logs = loops.evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    evaluate_generator = evaluate

    @blas_pinned_on_cpu
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for every sample, computed ``batch_size`` samples at a time: an array, or a
        list of arrays for a model with several outputs."""
        runtime.prepare(self.backend.name)
        return loops.predict(self, x, batch_size, verbose, steps, callbacks)

    predict_generator = predict

    @blas_pinned_on_cpu
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of that batch, as
        a {name: value} dict with ``return_dict=True``, as in Keras.
        With a ``distributed.DistributedOptimizer`` every rank calls it, and the step is one
        process's on the ranks' batches laid end to end (the loss is theirs; the metrics are
        this rank's)."""
        self._require_compiled("train_on_batch")
        runtime.prepare(self.backend.name)
        xb, yb, wb = inputs.check_batch(self, (x, y, sample_weight), "train_on_batch", class_weight)
        xb, yb = inputs.to_device(self, xb), inputs.to_device(self, yb)
        wb = None if wb is None else inputs.to_device(self, wb)
        state = self.compile_state()
        state.reset_metrics()
        with strategy_of(self.optimizer).watch(None):     # its own batch, even when a callback of fit calls it
            result = self.train_step((xb, yb) if wb is None else (xb, yb, wb))
        if not isinstance(result, dict):     # else a train_step of one's own, with its logs
            if not math.isfinite(result.loss):
                raise TrainingDiverged(f"the loss became {result.loss}; the update was not applied")
            state.update_metrics(yb, result.outputs, wb)
            result = loops.batch_logs(state, result.loss)
        if return_dict:
            return {name: float(value) for name, value in result.items()}
        values = list(result.values())
        return values[0] if len(values) == 1 else values

    # ----- gradients, for checks and for learning -------------------------------------------
    def compute_loss(self, x, y, training=True):
        """Mean loss of one batch, with the penalties of the regularizers as in a step (with
        ``training=True``, dropout is active)."""
        self._require_compiled("compute_loss")
        x = inputs.check_x(self, x)
        y = inputs.prepare_targets(self, y, x)
        state = self.compile_state()
        out, tape = self.run_graph(inputs.to_device(self, x), training=training, head=True, keep_tape=False)
        loss = self.loss.value_and_grad(inputs.to_device(self, y), out, from_logits=state.logits, kernels=self.backend)[0]
        return loss + tape.activity_penalty / data_adapter.num_samples(x) + \
            state.weight_penalty(state.trained_params())

    def compute_gradients(self, x, y, need_dx=False):
        """Loss and gradients for one batch, without updating anything.

        Returns (loss, [gradient of each trainable weight], dL/dx or None)."""
        self._require_compiled("compute_gradients")
        x = inputs.check_x(self, x)
        y = inputs.prepare_targets(self, y, x)
        loss, _, _, gradients, dx = self._gradients(inputs.to_device(self, x), inputs.to_device(self, y),
                                                    need_dx=need_dx, scaled=False, stop_if_not_finite=False)
        if need_dx:
            dx = dx if len(dx) > 1 else dx[0]
        return loss, gradients, dx if need_dx else None


# Keras's compile switches about how it runs, not what it computes: accepted, noted once
_NO_OP_SWITCHES = {
    "jit_compile": "there is no XLA here; the kernels are compiled by Numba once, ahead of the first step",
    "run_eagerly": "every step already runs eagerly, layer by layer",
    "steps_per_execution": "each step is its own call; there is no graph to batch steps into",
    "auto_scale_loss": "there is no mixed precision to scale the loss for",
}
_NOTED_SWITCHES = set()
