"""The loops of a compiled model: fit, evaluate, predict, train_on_batch, with Keras's
arguments, History, callbacks and progress bar. A Model inherits them (as in Keras 3, the
Trainer is kept apart from the graph); they only ask the model for ``_train_step``,
``_forward_outputs`` and its input and output shapes."""
import contextlib
import math

import numpy as np

from . import callbacks as callbacks_module
from . import config, data_adapter, runtime
from . import losses as losses_module
from .arrays import module_of, to_host, to_module
from .distributed import communicator_of
from .distributed.gradients import sum_over_ranks
from .distributed.nccl import use_nccl_if_available
from .distributed.state import broadcast_random_state, broadcast_training_state, check_same_job, job_description
from .graph import apply_state_updates
from .threads import blas_pinned_on_cpu, pin_late_libraries


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the step that produced it was not applied."""


class Trainer:
    """fit / evaluate / predict for a model with one output (and one or several inputs).

    With an optimizer marked by ``distributed.DistributedOptimizer`` (and more than one
    rank), fit and evaluate are data-parallel: see ``scratchnet.distributed``."""

    _communicator = None      # the ranks fit/evaluate run with, while they run
    _window = None            # (first sample, global batch size) of the batch being trained on

    # ----- data -----------------------------------------------------------------------
    def _check_x(self, x, what="x"):
        """x as host arrays of the model's dtype: one array, or a list for several inputs."""
        if self._graph is None:
            x = data_adapter.check_inputs(x, None, self.dtype, what)
            self._build_from_data(x.shape)
            return x
        shapes = self._input_shapes()
        if len(shapes) == 1 and hasattr(x, "shape") and self.resize_input(tuple(x.shape[1:])):
            shapes = self._input_shapes()      # an application made for any size, now for this one
        if isinstance(x, dict) or len(shapes) > 1:
            xs = data_adapter.as_input_list(x, [t.node.layer.name for t in self._graph.inputs], what)
        if len(shapes) == 1:
            return data_adapter.check_inputs(xs[0] if isinstance(x, dict) else x, shapes[0], self.dtype, what)
        xs = [data_adapter.check_inputs(a, s, self.dtype, f"{what}[{i}]") for i, (a, s) in enumerate(zip(xs, shapes))]
        data_adapter.check_lengths(xs[0], *xs[1:])
        return xs

    def _prepare_targets(self, y, n):
        self._settle_head()
        return self.loss.prepare_targets(y, (n,) + tuple(self._single_output_shape("fit")), self.dtype)

    def _sample_weights(self, y, n, sample_weight, class_weight, what):
        """One weight per sample (host, the model's dtype) from ``sample_weight`` or from
        ``class_weight`` and the raw labels ``y``; None for neither."""
        if sample_weight is not None and class_weight is not None:
            raise ValueError("give class_weight or sample_weight, not both (as in Keras)")
        if class_weight is not None:
            return data_adapter.class_weight_to_sample_weights(to_host(y), class_weight, self.dtype)
        if sample_weight is not None:
            return losses_module.check_sample_weight(to_host(sample_weight), n, self.dtype,
                                                     f"the sample weights of {what}")
        return None

    def _array_data(self, x, y, batch_size, shuffle, what, sample_weight=None, class_weight=None):
        x = self._check_x(x, what if what != "the training data" else "x")
        n = data_adapter.num_samples(x)
        data_adapter.check_lengths(x, y)
        weights = self._sample_weights(y, n, sample_weight, class_weight, what)
        y = self._prepare_targets(y, n)
        ranks = self._communicator
        return data_adapter.ArrayBatches(x, y, batch_size, shuffle, self.dtype, weights,
                                         shard=None if ranks is None else (ranks.rank, ranks.size))

    def _batches(self, x, y, batch_size, shuffle, steps, what, sample_weight=None, class_weight=None):
        """Batches for fit/evaluate, each as a checked (x, y, sample_weight) triple."""
        if data_adapter.is_batch_stream(x, y):
            if sample_weight is not None:
                raise ValueError(f"{what}: sample_weight goes with x and y arrays; a stream of batches gives "
                                 f"its weights as the third item of each batch, (x, y, sample_weight)")
            stream = data_adapter.StreamBatches(x, steps, what)
            stream.class_weight = class_weight
            return stream
        if y is None:
            raise ValueError(f"{what}: y is missing; pass (x, y) arrays or an iterable of (x, y) batches")
        return self._array_data(x, y, batch_size, shuffle, what, sample_weight, class_weight)

    def _check_batch(self, batch, what, class_weight=None):
        xb, yb, wb = data_adapter.split_batch(batch, what)
        if yb is None:
            raise ValueError(f"each batch of {what} must be an (x, y) pair; got x alone")
        xb = self._check_x(xb, what=f"a batch of {what}")
        data_adapter.check_lengths(xb, yb)
        n = data_adapter.num_samples(xb)
        weights = self._sample_weights(yb, n, wb, class_weight, f"a batch of {what}")
        return xb, self._prepare_targets(yb, n), weights

    def _checked(self, data, what):
        """Iterate (x, y, sample_weight) batches of ``data``, checking those that come from a
        stream, and moving each to the model's device (once per step: the GPU backend's only
        copy)."""
        stream = isinstance(data, data_adapter.StreamBatches)
        class_weight = getattr(data, "class_weight", None)
        for batch in data:
            if stream and self._communicator is not None and _is_empty(batch):
                yield data_adapter.split_batch(batch, what)    # a rank's empty share of a short last batch
                continue
            xb, yb, wb = self._check_batch(batch, what, class_weight) if stream else batch
            yield self._to_device(xb), self._to_device(yb), None if wb is None else self._to_device(wb)

    def _to_device(self, a):
        if isinstance(a, list):
            return [to_module(v, self.backend.xp) for v in a]
        return to_module(a, self.backend.xp)

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"call model.compile(optimizer=..., loss=...) before model.{method}()")

    # ----- one step -------------------------------------------------------------------
    def _train_step(self, x, y, sample_weight=None):
        # Overflow and NaN are not warned about: a loss that stops being finite stops
        # training with TrainingDiverged, which says where and what to do.
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                return self._apply_step(x, y, sample_weight)
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

    def _apply_step(self, x, y, sample_weight=None):
        if self._communicator is not None:
            return self._apply_data_parallel_step(x, y, sample_weight)
        out, tape = self._forward_outputs(x, training=True, head=True, training_step=True)
        loss, grad = self.loss.value_and_grad(y, out, from_logits=self._logits, sample_weight=sample_weight)
        if not math.isfinite(loss):   # nothing is stored: neither weights nor moving statistics
            return loss, out
        scale = getattr(self.optimizer, "loss_scale_factor", None)
        if scale:                     # the loss scaled up as Keras's scale_loss does; the optimizer divides back
            grad = grad * grad.dtype.type(scale)
        _, grads = self._backward_outputs(tape, grad)
        params, gradients = self._trainable_params_and_grads(grads)
        self.optimizer.apply_gradients(params, gradients, self.backend)
        apply_state_updates(tape)
        return loss, out

    def _apply_data_parallel_step(self, x, y, sample_weight):
        """One step on this rank's share of a global batch: the loss divided by the global
        batch size, so that the gradients summed over the ranks are the single-process
        gradients of the global batch; one Allreduce carries them with the loss and a flag
        for a non-finite loss on any rank (then no rank updates)."""
        ranks = self._communicator
        n = data_adapter.num_samples(x)
        window = self._window
        if window is None:         # a stream: the ranks' batches laid end to end, in rank order
            counts = ranks.counts(n)
            if not any(counts):    # every image of this batch unreadable on every rank: no step
                self._step_samples = 0
                return 0.0, None
            window = (sum(counts[:ranks.rank]), sum(counts))
            some_empty = min(counts) == 0
            source = next(rank for rank, count in enumerate(counts) if count)
        else:                      # array shards (shard_bounds): only the last rank is sure to have samples
            some_empty, source = window[1] < ranks.size, ranks.size - 1
        offset, total = window
        params = [layer.params[name] for layer, name in self._compiled_pairs]
        out, tape, loss_sum, finite, gradients = None, None, 0.0, True, None
        if n:
            with config.batch_window(offset, total):
                out, tape = self._forward_outputs(x, training=True, head=True, training_step=True)
            loss, grad = self.loss.value_and_grad(y, out, from_logits=self._logits, sample_weight=sample_weight,
                                                  batch_size=total)
            finite = math.isfinite(loss)
            if finite:
                scale = getattr(self.optimizer, "loss_scale_factor", None)
                if scale:
                    grad = grad * grad.dtype.type(scale)
                _, grads = self._backward_outputs(tape, grad)
                _, gradients = self._trainable_params_and_grads(grads)
                loss_sum = loss * total
        if gradients is None:
            gradients = [module_of(p).zeros_like(p) for p in params]
        summed, (loss_sum, not_finite) = sum_over_ranks(gradients, [loss_sum, 0.0 if finite else 1.0], ranks)
        self._step_samples = total
        if not_finite:
            return math.nan, out
        self.optimizer.apply_gradients(params, summed, self.backend, reduced=True)
        if tape is not None:
            apply_state_updates(tape)
        if some_empty:     # ranks without samples drew no dropout seeds: take a rank's that did
            broadcast_random_state(ranks, source, self._all_layers())
        return loss_sum / total, out

    # ----- training -------------------------------------------------------------------
    @blas_pinned_on_cpu
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        """Train for ``epochs`` epochs; returns a History (also kept as ``model.history``).

        ``sample_weight`` (one weight per sample) or ``class_weight`` ({class index: weight})
        weigh each sample's loss, as in Keras: the loss of a batch is sum(w * loss) / batch
        size, and only ``weighted_metrics`` (of compile) see the weights.

        With a ``distributed.DistributedOptimizer``, every rank calls fit with the same
        arguments; ``batch_size`` is each rank's share of the global batch."""
        self._require_compiled("fit")
        runtime.prepare(self.backend.name)
        with self._ranks_of_the_optimizer():
            return self._fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                             shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps,
                             validation_batch_size, validation_freq)

    @contextlib.contextmanager
    def _ranks_of_the_optimizer(self):
        """The ranks fit / evaluate / train_on_batch share while they run (None for one
        process), put back as they were afterwards: an evaluate called by a callback of a
        data-parallel fit leaves that fit data-parallel."""
        previous = self._communicator, self._window
        self._communicator, self._window = communicator_of(self.optimizer), None
        try:
            yield self._communicator
        finally:
            self._communicator, self._window = previous

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
             class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_batch_size,
             validation_freq):
        ranks = self._communicator
        verbose = 1 if verbose == "auto" else verbose
        batch_size = batch_size or 32
        if validation_split:
            if data_adapter.is_batch_stream(x, y):
                raise ValueError("validation_split needs arrays; with batches pass validation_data")
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            x = self._check_x(x) if isinstance(x, dict) else x
            x = [to_host(a) for a in x] if isinstance(x, list) else to_host(x)
            y = to_host(y)
            data_adapter.check_lengths(x, y)
            cut = int(len(y) * (1 - validation_split))   # Keras keeps the last samples for validation
            x, validation_data = data_adapter.split_at(x, cut), None
            (x, vx), (y, vy) = x, (y[:cut], y[cut:])
            validation_data = (vx, vy)
            if sample_weight is not None:                 # the weights split with their samples
                sample_weight = self._sample_weights(y, len(y) + len(vy), sample_weight, class_weight,
                                                     "the training data")
                sample_weight, validation_data = sample_weight[:cut], (vx, vy, sample_weight[cut:])
        train = self._batches(x, y, batch_size, shuffle, steps_per_epoch, "the training data", sample_weight,
                              class_weight)
        val = None
        if validation_data is not None:
            vx, vy, vw = (validation_data, None, None) if data_adapter.is_batch_stream(validation_data, None) \
                else self._validation_triple(validation_data)
            val = self._batches(vx, vy, validation_batch_size or batch_size, False, validation_steps,
                                "the validation data", vw)

        if ranks is not None:
            verbose = verbose if ranks.is_root else 0
            callbacks = [hook for hook in callbacks or [] if ranks.is_root or not getattr(hook, "writes_files", False)]
            self._start_data_parallel(ranks, train, val, batch_size)
        history = callbacks_module.History()
        self.history = history
        hooks = list(callbacks or []) + [history]   # History last, as in Keras: it sees what callbacks add
        self._start_hooks(hooks, {"epochs": epochs, "steps": train.steps, "verbose": verbose})
        call = callbacks_module.call
        call(hooks, "on_train_begin")
        self.stop_training = False
        for epoch in range(initial_epoch, epochs):
            call(hooks, "on_epoch_begin", epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            bar = callbacks_module.Progbar(train.steps, verbose)
            logs, steps_done = self._train_epoch(train, epoch, bar, hooks)
            if steps_done == 0:   # a one-shot iterator ran out (warned); Keras stops here too
                break
            if val is not None and (epoch + 1) % validation_freq == 0 and not self._diverged:
                logs.update({f"val_{k}": v for k, v in self._run_evaluation(val, "the validation data",
                                                                            hooks).items()})
            bar.finish(steps_done, logs)
            call(hooks, "on_epoch_end", epoch, logs)
            if self.stop_training or getattr(train, "ran_out", False):
                break
        call(hooks, "on_train_end")
        return history

    def _start_data_parallel(self, ranks, train, val, batch_size):
        """Check that every rank runs the same job; give every rank rank 0's state."""
        data = {"batch size per rank": batch_size, "steps per epoch": train.steps,
                "training samples": data_adapter.num_samples(train.x) if hasattr(train, "x") else None,
                "validation steps": None if val is None else val.steps}
        check_same_job(ranks, job_description(self, data))
        broadcast_training_state(self, ranks)
        if self.backend.name == "gpu" and ranks.device_sum is None:
            use_nccl_if_available(ranks)

    def _sum_over_ranks(self, loss_sum, seen):
        """(loss sum, samples) summed over the ranks, the metrics' totals and counts with them."""
        values = [loss_sum, seen]
        for metric in self._metrics:
            values += [0.0 if metric.total is None else float(metric.total), float(metric.count)]
        summed = self._communicator.sum_floats(values)
        for k, metric in enumerate(self._metrics):
            metric.total, metric.count = summed[2 + 2 * k], summed[3 + 2 * k]
        return summed[0], summed[1]

    @staticmethod
    def _validation_triple(validation_data):
        items = tuple(validation_data)
        if len(items) not in (2, 3):
            raise ValueError(f"validation_data must be (x_val, y_val), (x_val, y_val, val_sample_weight) or an "
                             f"iterable of batches; got a tuple of {len(items)} items")
        return items if len(items) == 3 else items + (None,)

    def _start_hooks(self, hooks, params):
        for hook in hooks:
            hook.set_model(self)
            if hasattr(hook, "set_params"):
                hook.set_params(params)
            else:
                hook.params = params

    fit_generator = fit

    def _train_epoch(self, train, epoch, bar, hooks):
        for metric in self._metrics or []:
            metric.reset()
        loss_sum, seen, step = 0.0, 0, 0
        self._diverged = False
        call = callbacks_module.call
        for step, (xb, yb, wb) in enumerate(self._checked(train, "the training data"), start=1):
            call(hooks, "on_train_batch_begin", step - 1)
            self._window = getattr(train, "window", None)
            loss, out = self._train_step(xb, yb, wb)
            pin_late_libraries()
            if not math.isfinite(loss):
                if not any(isinstance(hook, callbacks_module.TerminateOnNaN) for hook in hooks):
                    raise TrainingDiverged(
                        f"the loss became {loss} at epoch {epoch + 1}, step {step}/{train.steps}; "
                        f"training stopped and that step's update was not applied. Lower the learning "
                        f"rate or check the inputs for extreme values.")
                self._diverged = True          # TerminateOnNaN asked to stop quietly instead
                logs = {"loss": loss}
                call(hooks, "on_train_batch_end", step - 1, logs)
                return logs, step
            n = data_adapter.num_samples(xb) if self._communicator is None else self._step_samples
            if n == 0:                 # a global batch with no readable sample: skipped, as one process skips it
                continue
            loss_sum += loss * n
            seen += n
            if out is not None:        # None on a rank whose share of the batch was empty
                self._update_metrics(yb, out, wb)
            logs = self._logs(loss_sum / seen)
            bar.update(step, logs)
            call(hooks, "on_train_batch_end", step - 1, logs)
            if self.stop_training:     # a callback stopped training in the middle of the epoch
                break
        if seen == 0:
            if getattr(train, "ran_out", False):
                return {}, 0
            raise ValueError("the training data produced no batches")
        if self._communicator is not None:     # the loss is global already; the metrics become so
            self._sum_over_ranks(0.0, 0)
        return dict(self._logs(loss_sum / seen)), step

    def _update_metrics(self, y, out, sample_weight):
        # the outputs are logits where the loss took them: the metrics are told which activation
        # (the one it absorbed) turns them into what Keras's metrics would see
        logits = self.loss.fused_activation if self._fused else self._logits
        for metric in self._metrics:
            metric.update(y, out, logits, sample_weight if metric.weighted else None)

    def _logs(self, loss):
        """The loss and the metrics so far; a metric's value is read (from the device, for
        the GPU backend) only when someone looks at it."""
        return callbacks_module.BatchLogs(loss, self._metrics)

    # ----- evaluation and inference -------------------------------------------------------
    def _run_evaluation(self, data, what, hooks=()):
        for metric in self._metrics or []:
            metric.reset()
        call = callbacks_module.call
        call(hooks, "on_test_begin")
        loss_sum, seen = None, 0   # loss_sum stays on the device until the end
        for step, (xb, yb, wb) in enumerate(self._checked(data, what)):
            call(hooks, "on_test_batch_begin", step)
            if data_adapter.num_samples(xb) == 0:     # this rank's share of a short last batch
                continue
            out, _ = self._forward_outputs(xb, training=False, head=True, keep_tape=False)
            total = self.loss.total(yb, out, from_logits=self._logits, sample_weight=wb)
            loss_sum = total if loss_sum is None else loss_sum + total
            seen += data_adapter.num_samples(xb)
            self._update_metrics(yb, out, wb)
            if hooks:       # the running loss is read from the device only if a callback looks
                call(hooks, "on_test_batch_end", step, self._logs((loss_sum, seen)))
        loss_sum = 0.0 if loss_sum is None else float(loss_sum)
        if self._communicator is not None:
            loss_sum, seen = self._sum_over_ranks(loss_sum, seen)
        if seen == 0:
            raise ValueError(f"{what} produced no batches")
        logs = dict(self._logs(loss_sum / seen))
        call(hooks, "on_test_end", logs)
        return logs

    @blas_pinned_on_cpu
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss (and metrics) on the given data: a float, or [loss, metric, ...] with metrics;
        ``sample_weight`` weighs the loss (and the weighted_metrics) as in fit. With a
        ``distributed.DistributedOptimizer``, every rank evaluates its share of the arrays
        and all get the totals."""
        self._require_compiled("evaluate")
        runtime.prepare(self.backend.name)
        with self._ranks_of_the_optimizer():
            return self._evaluate(x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict)

    def _evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict):
        verbose = 1 if verbose == "auto" else verbose
        data = self._batches(x, y, batch_size or 32, False, steps, "the evaluation data", sample_weight)
        if self._communicator is not None:
            verbose = verbose if self._communicator.is_root else 0
            check_same_job(self._communicator, job_description(self, {"evaluation steps": data.steps}))
        bar = callbacks_module.Progbar(data.steps, verbose)
        hooks = list(callbacks or [])
        self._start_hooks(hooks, {"steps": data.steps, "verbose": verbose})
        logs = self._run_evaluation(data, "the evaluation data", hooks)
        bar.finish(data.steps or 0, logs)
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
        batch_size = batch_size or 32
        hooks = list(callbacks or [])
        call = callbacks_module.call
        if data_adapter.is_batch_stream(x, None):
            batches = (data_adapter.split_batch(batch, "the input")[0]
                       for batch in data_adapter.StreamBatches(x, steps, "the input"))
            run = self._predict_batch
        else:
            x = self._check_x(x)
            n = data_adapter.num_samples(x)
            batches = (data_adapter.take(x, slice(start, start + batch_size)) for start in range(0, n, batch_size))
            run = self._predict_checked_batch
        self._start_hooks(hooks, {"steps": steps, "verbose": verbose})
        call(hooks, "on_predict_begin")
        parts = []
        for step, xb in enumerate(batches):
            call(hooks, "on_predict_batch_begin", step)
            parts.append(run(xb))
            call(hooks, "on_predict_batch_end", step, {"outputs": parts[-1]})
        call(hooks, "on_predict_end")
        return self._join_outputs(parts) if parts else self._empty_outputs()

    def _predict_checked_batch(self, xb):
        return self._host_outputs(self._forward_outputs(self._to_device(xb), training=False, keep_tape=False)[0])

    predict_generator = predict

    def _predict_batch(self, xb):
        xb = self._check_x(xb, what="a batch of the input")
        return self._host_outputs(self._forward_outputs(self._to_device(xb), training=False, keep_tape=False)[0])

    @staticmethod
    def _host_outputs(out):
        return [to_host(o) for o in out] if isinstance(out, list) else to_host(out)

    @staticmethod
    def _join_outputs(parts):
        if isinstance(parts[0], list):
            return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
        return np.concatenate(parts)

    def _empty_outputs(self):
        shapes = [tuple(t.shape[1:]) for t in self._graph.outputs]
        outs = [np.empty((0,) + s, self.dtype) for s in shapes]
        return outs if len(outs) > 1 else outs[0]

    @blas_pinned_on_cpu
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One optimizer step on one batch; returns the loss (and metrics) of that batch.
        With a ``distributed.DistributedOptimizer`` every rank calls it, and the step is one
        process's on the ranks' batches laid end to end (the loss is theirs; the metrics are
        this rank's)."""
        self._require_compiled("train_on_batch")
        runtime.prepare(self.backend.name)
        xb, yb, wb = self._check_batch((x, y, sample_weight), "train_on_batch", class_weight)
        xb, yb = self._to_device(xb), self._to_device(yb)
        wb = None if wb is None else self._to_device(wb)
        for metric in self._metrics:
            metric.reset()
        with self._ranks_of_the_optimizer():
            loss, out = self._train_step(xb, yb, wb)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss}; the update was not applied")
        self._update_metrics(yb, out, wb)
        values = list(self._logs(loss).values())
        return values[0] if len(values) == 1 else values

    # ----- gradients, for checks and for learning -------------------------------------------
    def compute_loss(self, x, y, training=True):
        """Mean loss of one batch (with ``training=True``, dropout is active)."""
        self._require_compiled("compute_loss")
        x = self._check_x(x)
        y = self._prepare_targets(y, data_adapter.num_samples(x))
        out, _ = self._forward_outputs(self._to_device(x), training=training, head=True, keep_tape=False)
        return self.loss.value_and_grad(self._to_device(y), out, from_logits=self._logits)[0]

    def compute_gradients(self, x, y, need_dx=False):
        """Loss and gradients for one batch, without updating anything.

        Returns (loss, [gradient of each trainable weight], dL/dx or None)."""
        self._require_compiled("compute_gradients")
        x = self._check_x(x)
        y = self._prepare_targets(y, data_adapter.num_samples(x))
        out, tape = self._forward_outputs(self._to_device(x), training=True, head=True)
        loss, grad = self.loss.value_and_grad(self._to_device(y), out, from_logits=self._logits)
        dx, grads = self._backward_outputs(tape, grad, need_dx)
        _, gradients = self._trainable_params_and_grads(grads)
        if need_dx:
            dx = dx if len(dx) > 1 else dx[0]
        return loss, gradients, dx if need_dx else None


def _is_empty(batch):
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    x = x[0] if isinstance(x, (list, tuple)) else x
    return len(x) == 0
