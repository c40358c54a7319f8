"""Sequential: a stack of layers with Keras's compile / fit / evaluate / predict."""
import math

import numpy as np

from . import backend as backend_module
from . import callbacks as callbacks_module
from . import data_adapter, losses, metrics as metrics_module, optimizers, runtime
from .arrays import to_host, to_module
from .layers.base import Layer, unique_name
from .layers.core import InputLayer


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the step that produced it was not applied."""


class Sequential:
    """A linear stack of layers: ``Sequential([Conv2D(...), ...])`` or ``add()`` one by one."""

    def __init__(self, layers=None, name=None):
        self.name = name or unique_name("sequential")
        self.layers = []
        self.input_shape = None
        self.built = False
        self.optimizer = self.loss = None
        self.compiled = False
        self.history = None
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)

    # ----- construction -------------------------------------------------------------
    def add(self, layer):
        """Append a layer (or an ``Input(shape=...)`` as the very first item)."""
        if isinstance(layer, InputLayer):
            if self.layers or self.input_shape is not None:
                raise ValueError("Input(...) can only be the first item of a Sequential model")
            self.input_shape = layer.shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if not self.layers and self.input_shape is None and layer.input_shape is not None:
            self.input_shape = layer.input_shape
        self.layers.append(layer)
        self.built = False
        if self.input_shape is not None:
            self.build()

    def build(self, input_shape=None):
        """Create every layer's weights. ``input_shape`` includes the batch axis: (None, 28, 28, 1)."""
        if input_shape is not None:
            input_shape = tuple(input_shape)
            self.input_shape = input_shape[1:] if input_shape[:1] == (None,) else input_shape
        if self.input_shape is None:
            raise ValueError("the model does not know its input shape yet: give the first layer "
                             "input_shape=(...), start with Input(shape=(...)), or call build()")
        shape = self.input_shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            elif layer.input_shape != tuple(shape):
                raise ValueError(f"{layer.describe()} was built for inputs {layer.input_shape}, but "
                                 f"here it receives {tuple(shape)}")
            shape = layer.output_shape
        self.output_shape = shape
        self.built = True

    def _ensure_built(self, x_shape):
        if not self.built:
            if self.input_shape is None:
                self.input_shape = tuple(x_shape[1:])
            self.build()

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Choose the optimizer, the loss and the metrics, by name or instance."""
        unsupported = {k: v for k, v in kwargs.items() if v is not None}
        if unsupported:
            raise TypeError(f"compile() does not support {sorted(unsupported)}")
        if loss is None:
            raise ValueError(f"compile() needs a loss; expected one of "
                             f"{sorted(losses._CLASSES)} or a Loss instance")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self._metric_names = list(metrics or [])
        for name in self._metric_names:
            metrics_module.get(name, self.loss, (1,))  # fail now on unknown names
        self.compiled = True
        self._metrics = None

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"call model.compile(optimizer=..., loss=...) before model.{method}()")

    def _prepare_training(self, x_shape):
        """Build if needed and settle what depends on the last layer: fusion and metrics."""
        self._ensure_built(x_shape)
        last = self.layers[-1].activation if self.layers else None
        self._fused = (not self.loss.from_logits and self.loss.fused_activation is not None
                       and last is not None and last.name == self.loss.fused_activation)
        self._logits = self._fused or self.loss.from_logits
        if self._metrics is None:
            self._metrics = [metrics_module.get(m, self.loss, self.output_shape)
                             for m in self._metric_names]

    # ----- devices -------------------------------------------------------------------
    @property
    def backend(self):
        """The backend the model's weights live on."""
        return self.layers[0].backend if self.layers else backend_module.current()

    def to(self, name):
        """Move weights and optimizer state to backend ``name`` ('cpu', 'numpy' or 'gpu')."""
        target = backend_module.get(name)
        for layer in self.layers:
            layer.to(name)
        if self.optimizer is not None and self.optimizer.slots:
            self.optimizer.slots = [{k: to_module(v, target.xp) for k, v in slot.items()}
                                    for slot in self.optimizer.slots]
        return self

    # ----- forward / backward -----------------------------------------------------------
    @property
    def dtype(self):
        return self.layers[0].dtype if self.layers else np.dtype("float32")

    def _forward(self, x, training, logits=False):
        x = to_module(x, self.backend.xp)   # a batch moves to the GPU once, here
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, training=training, logits=logits and i == last)
        return x

    def _backward(self, grad, logits, need_dx=False):
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            grad = self.layers[i].backward(grad, logits=logits and i == last,
                                           need_dx=need_dx or i > 0)
        return grad

    def _trainable_pairs(self):
        return [(layer, key) for layer in self.layers if layer.trainable for key in layer.params]

    @property
    def trainable_weights(self):
        return [layer.params[key] for layer, key in self._trainable_pairs()]

    def compute_loss(self, x, y, training=True):
        """Mean loss of one batch (with ``training=True``, dropout is active)."""
        self._require_compiled("compute_loss")
        x = data_adapter.check_inputs(x, self.input_shape, self.dtype)
        self._prepare_training(x.shape)
        y = self.loss.prepare_targets(y, (len(x),) + self.output_shape, self.dtype)
        out = self._forward(x, training=training, logits=self._fused)
        return self.loss.value_and_grad(y, out, from_logits=self._logits)[0]

    def compute_gradients(self, x, y, need_dx=False):
        """Loss and gradients for one batch, without updating anything.

        Returns (loss, [gradient of each trainable weight], dL/dx or None)."""
        self._require_compiled("compute_gradients")
        x = data_adapter.check_inputs(x, self.input_shape, self.dtype)
        self._prepare_training(x.shape)
        y = self.loss.prepare_targets(y, (len(x),) + self.output_shape, self.dtype)
        out = self._forward(x, training=True, logits=self._fused)
        loss, grad = self.loss.value_and_grad(y, out, from_logits=self._logits)
        dx = self._backward(grad, self._fused, need_dx)
        return loss, [layer.grads[key] for layer, key in self._trainable_pairs()], dx

    def _train_step(self, x, y):
        # Overflow and NaN are not warned about: a loss that stops being finite stops
        # training with TrainingDiverged, which says where and what to do.
        with np.errstate(over="ignore", invalid="ignore"):
            return self._checked_train_step(x, y)

    def _checked_train_step(self, x, y):
        try:
            out = self._forward(x, training=True, logits=self._fused)
            loss, grad = self.loss.value_and_grad(y, out, from_logits=self._logits)
            if not math.isfinite(loss):
                return loss, out
            self._backward(grad, self._fused)
            pairs = self._trainable_pairs()
            self.optimizer.apply_gradients([layer.params[k] for layer, k in pairs],
                                           [layer.grads[k] for layer, k in pairs], self.backend)
        except MemoryError as error:
            raise MemoryError(f"out of memory in a training step of batch size {len(x)} on the "
                              f"'{self.backend.name}' backend; lower batch_size (e.g. {max(1, len(x) // 2)})"
                              ) from error
        except Exception as error:
            if type(error).__name__ == "OutOfMemoryError":   # CuPy's, without importing CuPy
                raise MemoryError(f"GPU out of memory in a training step of batch size {len(x)}: "
                                  f"{error}. Lower batch_size (e.g. {max(1, len(x) // 2)})") from error
            raise
        return loss, out

    # ----- data ---------------------------------------------------------------------
    def _array_data(self, x, y, batch_size, shuffle):
        x = data_adapter.check_inputs(x, self.input_shape, self.dtype)
        data_adapter.check_lengths(x, y)
        self._prepare_training(x.shape)
        y = self.loss.prepare_targets(y, (len(x),) + self.output_shape, self.dtype)
        return data_adapter.ArrayBatches(x, y, batch_size, shuffle, self.dtype)

    def _batches(self, x, y, batch_size, shuffle, steps, what):
        """Batches for fit/evaluate, each as a checked (x, y) pair."""
        if data_adapter.is_batch_stream(x, y):
            return data_adapter.StreamBatches(x, steps, what)
        if y is None:
            raise ValueError(f"{what}: y is missing; pass (x, y) arrays or an iterable of (x, y) batches")
        return self._array_data(x, y, batch_size, shuffle)

    def _check_batch(self, batch, what):
        xb, yb = data_adapter.split_batch(batch, what)
        if yb is None:
            raise ValueError(f"each batch of {what} must be an (x, y) pair; got x alone")
        xb = data_adapter.check_inputs(xb, self.input_shape, self.dtype, what=f"a batch of {what}")
        data_adapter.check_lengths(xb, yb)
        self._prepare_training(xb.shape)
        return xb, self.loss.prepare_targets(yb, (len(xb),) + self.output_shape, self.dtype)

    def _checked(self, data, what):
        """Iterate (x, y) batches of ``data``, checking those that come from a stream, and
        moving each to the model's device (once per step: the GPU backend's only copy)."""
        stream = isinstance(data, data_adapter.StreamBatches)
        for batch in data:
            xb, yb = self._check_batch(batch, what) if stream else batch
            yield self._to_device(xb), self._to_device(yb)

    def _to_device(self, a):
        return to_module(a, self.backend.xp)

    # ----- training -------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        """Train for ``epochs`` epochs; returns a History (also kept as ``model.history``)."""
        self._require_compiled("fit")
        runtime.prepare(self.backend.name)
        verbose = 1 if verbose == "auto" else verbose
        batch_size = batch_size or 32
        if validation_split:
            if data_adapter.is_batch_stream(x, y):
                raise ValueError("validation_split needs arrays; with batches pass validation_data")
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            x, y = to_host(x), to_host(y)
            data_adapter.check_lengths(x, y)
            cut = int(len(x) * (1 - validation_split))   # Keras keeps the last samples for validation
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        train = self._batches(x, y, batch_size, shuffle, steps_per_epoch, "the training data")
        val = None
        if validation_data is not None:
            vx, vy = (validation_data, None) if data_adapter.is_batch_stream(validation_data, None) \
                else tuple(validation_data)[:2]
            val = self._batches(vx, vy, validation_batch_size or batch_size, False, validation_steps,
                                "the validation data")

        history = callbacks_module.History()
        history.params = {"epochs": epochs, "steps": train.steps, "verbose": verbose}
        self.history = history
        hooks = [history] + list(callbacks or [])
        for hook in hooks:
            hook.set_model(self)
            hook.on_train_begin()
        self.stop_training = False
        for epoch in range(initial_epoch, epochs):
            for hook in hooks:
                hook.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            bar = callbacks_module.Progbar(train.steps, verbose)
            logs, steps_done = self._train_epoch(train, epoch, bar, hooks)
            if steps_done == 0:   # a one-shot iterator ran out (warned); Keras stops here too
                break
            if val is not None and (epoch + 1) % validation_freq == 0:
                logs.update({f"val_{k}": v for k, v in self._run_evaluation(val, "the validation data").items()})
            bar.finish(steps_done, logs)
            for hook in hooks:
                hook.on_epoch_end(epoch, logs)
            if self.stop_training or getattr(train, "ran_out", False):
                break
        for hook in hooks:
            hook.on_train_end()
        return history

    fit_generator = fit

    def _train_epoch(self, train, epoch, bar, hooks):
        for metric in self._metrics or []:
            metric.reset()
        loss_sum, seen, step = 0.0, 0, 0
        for step, (xb, yb) in enumerate(self._checked(train, "the training data"), start=1):
            for hook in hooks[1:]:
                hook.on_train_batch_begin(step - 1)
            loss, out = self._train_step(xb, yb)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss} at epoch {epoch + 1}, step {step}/{train.steps}; "
                    f"training stopped and that step's update was not applied. Lower the learning "
                    f"rate or check the inputs for extreme values.")
            loss_sum += loss * len(xb)
            seen += len(xb)
            for metric in self._metrics:
                metric.update(yb, out, self._logits)
            logs = self._logs(loss_sum / seen)
            bar.update(step, logs)
            for hook in hooks[1:]:
                hook.on_train_batch_end(step - 1, logs)
        if seen == 0:
            if getattr(train, "ran_out", False):
                return {}, 0
            raise ValueError("the training data produced no batches")
        return dict(self._logs(loss_sum / seen)), step

    def _logs(self, loss):
        """The loss and the metrics so far; a metric's value is read (from the device, for
        the GPU backend) only when someone looks at it."""
        return callbacks_module.BatchLogs(loss, self._metrics)

    # ----- evaluation and inference -------------------------------------------------------
    def _run_evaluation(self, data, what):
        for metric in self._metrics or []:
            metric.reset()
        loss_sum, seen = None, 0   # loss_sum stays on the device until the end
        for xb, yb in self._checked(data, what):
            out = self._forward(xb, training=False, logits=self._fused)
            total = self.loss.total(yb, out, from_logits=self._logits)
            loss_sum = total if loss_sum is None else loss_sum + total
            seen += len(xb)
            for metric in self._metrics:
                metric.update(yb, out, self._logits)
        if seen == 0:
            raise ValueError(f"{what} produced no batches")
        return dict(self._logs(float(loss_sum) / seen))

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", steps=None, return_dict=False):
        """Loss (and metrics) on the given data: a float, or [loss, metric, ...] with metrics."""
        self._require_compiled("evaluate")
        runtime.prepare(self.backend.name)
        verbose = 1 if verbose == "auto" else verbose
        data = self._batches(x, y, batch_size or 32, False, steps, "the evaluation data")
        bar = callbacks_module.Progbar(data.steps, verbose)
        logs = self._run_evaluation(data, "the evaluation data")
        bar.finish(data.steps or 0, logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    evaluate_generator = evaluate

    def predict(self, x, batch_size=None, verbose="auto", steps=None):
        """Outputs for every sample, computed ``batch_size`` samples at a time."""
        runtime.prepare(self.backend.name)
        batch_size = batch_size or 32
        if data_adapter.is_batch_stream(x, None):
            outputs = [self._predict_batch(data_adapter.split_batch(batch, "the input")[0])
                       for batch in data_adapter.StreamBatches(x, steps, "the input")]
            return np.concatenate(outputs) if outputs else np.empty((0,) + self.output_shape, self.dtype)
        x = data_adapter.check_inputs(x, self.input_shape, self.dtype)
        self._ensure_built(x.shape)
        out = np.empty((len(x),) + self.output_shape, dtype=self.dtype)
        for start in range(0, len(x), batch_size):
            out[start:start + batch_size] = to_host(self._forward(
                x[start:start + batch_size].astype(self.dtype, copy=False), training=False))
        return out

    predict_generator = predict

    def _predict_batch(self, xb):
        xb = data_adapter.check_inputs(xb, self.input_shape, self.dtype, what="a batch of the input")
        self._ensure_built(xb.shape)
        return to_host(self._forward(xb.astype(self.dtype, copy=False), training=False))

    def __call__(self, x, training=False):
        runtime.prepare(self.backend.name)
        x = data_adapter.check_inputs(x, self.input_shape, self.dtype)
        self._ensure_built(x.shape)
        return self._forward(x.astype(self.dtype, copy=False), training=training)

    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns the loss (and metrics) of that batch."""
        self._require_compiled("train_on_batch")
        runtime.prepare(self.backend.name)
        xb, yb = self._check_batch((x, y), "train_on_batch")
        xb, yb = self._to_device(xb), self._to_device(yb)
        for metric in self._metrics:
            metric.reset()
        loss, out = self._train_step(xb, yb)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss}; the update was not applied")
        for metric in self._metrics:
            metric.update(yb, out, self._logits)
        values = list(self._logs(loss).values())
        return values[0] if len(values) == 1 else values

    # ----- weights and description --------------------------------------------------------
    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights expects {expected} arrays for model {self.name!r}, "
                             f"got {len(weights)}")
        for layer in self.layers:
            count = len(layer.params)
            layer.set_weights(weights[:count])
            weights = weights[count:]

    def save(self, path):
        """Write architecture, weights and optimizer state to one file (atomically)."""
        from .saving import save_model
        save_model(self, path)

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print):
        """Keras's table: each layer, its output shape and its parameter count."""
        if not self.built:
            raise ValueError(f"model {self.name!r} has not been built: give the first layer "
                             f"input_shape=(...) or call build() or fit() first")
        rows = [(f"{layer.name} ({type(layer).__name__})", str((None,) + tuple(layer.output_shape)),
                 f"{layer.count_params():,}") for layer in self.layers]
        w1 = max([29] + [len(r[0]) + 2 for r in rows])
        w2 = max([26] + [len(r[1]) + 2 for r in rows])
        width = w1 + w2 + 11
        trainable = sum(l.count_params() for l in self.layers if l.trainable)
        lines = [f'Model: "{self.name}"', "_" * width,
                 f" {'Layer (type)':<{w1 - 1}}{'Output Shape':<{w2}}Param #", "=" * width]
        for i, (name, shape, count) in enumerate(rows):
            lines.append(f" {name:<{w1 - 1}}{shape:<{w2}}{count}")
            lines.append("_" * width if i < len(rows) - 1 else "=" * width)
        total = self.count_params()
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * width]
        print_fn("\n".join(lines))

    def __repr__(self):
        return f"<Sequential {self.name!r}: {len(self.layers)} layers>"
