"""Callbacks called by ``fit``, ``evaluate`` and ``predict``, with Keras's names, arguments
and hooks: History (always), the progress bar, ModelCheckpoint, EarlyStopping,
ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TerminateOnNaN, LambdaCallback,
TensorBoard (in its own module), and the base class for your own."""
import csv
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

from .callback_base import Callback, call  # noqa: F401  (the base class, and call, are found here too)
from .tensorboard import TensorBoard  # noqa: F401


class LambdaCallback(Callback):
    """A callback from functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...), any
    hook by its name (Keras's on_batch_begin/on_batch_end too)."""

    def __init__(self, **hooks):
        unknown = sorted(name for name in hooks if not (name.startswith("on_") and hasattr(Callback, name)))
        if unknown:
            raise ValueError(f"LambdaCallback got {unknown}; the hooks are "
                             f"{sorted(n for n in vars(Callback) if n.startswith('on_'))}")
        for name, function in hooks.items():
            if function is not None:
                setattr(self, name, function)


def _monitor_direction(monitor, mode, who):
    """'min' or 'max' for ``monitor``: as ``mode`` says, or from its name as Keras infers it."""
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{who} mode {mode!r} is unknown, fallback to auto mode.", stacklevel=3)
        mode = "auto"
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith(("loss", "error")) or name in ("mse", "mae", "mape", "msle"):
        return "min"
    if "acc" in name or name in ("auc", "precision", "recall", "f1_score"):
        return "max"
    raise ValueError(f"{who} callback received monitor={monitor}, and cannot tell whether it should be maximized or "
                     f"minimized. Pass mode='max' to monitor the highest value, or mode='min' for the lowest.")


class _Monitor(Callback):
    """What ModelCheckpoint, EarlyStopping and ReduceLROnPlateau share: a monitored value,
    its direction and what counts as an improvement (by more than ``min_delta``)."""

    def __init__(self, monitor, mode, min_delta=0.0, baseline=None):
        self.monitor, self.mode = monitor, mode
        self.min_delta = abs(min_delta)
        self.best = baseline
        self._direction = None

    def _improved(self, value, reference):
        if self._direction is None:
            self._direction = _monitor_direction(self.monitor, self.mode, type(self).__name__)
        if reference is None:
            return True
        if self._direction == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def _value(self, logs, purpose):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{purpose} is conditioned on metric `{self.monitor}` which is not available. Available "
                          f"metrics are: {','.join(logs or {})}", stacklevel=3)
            return None
        return float(value)


class ModelCheckpoint(_Monitor):
    """Save the model (or its weights) after every epoch, or every ``save_freq`` batches, to
    ``filepath``, which may hold Keras's templates ('model-{epoch:02d}-{val_loss:.2f}.keras').
    With ``save_best_only`` only when ``monitor`` improved. The extension picks the format as
    in ``model.save``: .keras, .h5 or .npz (weights only: .weights.h5 or .h5)."""

    writes_files = True     # in data-parallel training, on rank 0 only

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.verbose, self.save_best_only, self.save_weights_only = verbose, save_best_only, save_weights_only
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive number of batches, got "
                             f"{save_freq!r}")
        self.save_freq = save_freq
        name = self.filepath.lower()
        if save_weights_only and not name.endswith((".weights.h5", ".h5")):
            raise ValueError(f"ModelCheckpoint with save_weights_only=True writes weight files: the filepath must end "
                             f"in .weights.h5 (or .h5), got {self.filepath!r}")
        if not save_weights_only and not name.endswith((".keras", ".h5", ".npz")):
            raise ValueError(f"ModelCheckpoint writes model files: the filepath must end in .keras (or .h5, .npz), "
                             f"got {self.filepath!r}")
        self._batches = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _save(self, epoch, batch, logs):
        logs = dict(logs or {})
        try:
            path = self.filepath.format(epoch=epoch + 1, batch=batch, **logs)
        except KeyError as error:
            raise KeyError(f"ModelCheckpoint: the filepath {self.filepath!r} names {error}, which is not among the "
                           f"logs {sorted(logs)} (nor 'epoch', 'batch')") from None
        if self.save_best_only:
            value = self._value(logs, "Can save best model only with it available; saving")
            if value is None:
                return
            if not self._improved(value, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous} to {value:.5f}, saving model "
                      f"to {path}")
            self.best = value
        if Path(path).is_dir():
            raise IsADirectoryError(f"ModelCheckpoint: {path} is a directory; give a file path")
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)
        if self.verbose > 0 and not self.save_best_only:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")


class EarlyStopping(_Monitor):
    """Stop training when ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` epochs; ``restore_best_weights`` puts back the weights of the best epoch
    at the end. Keras's semantics, ``baseline`` and ``start_from_epoch`` included."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs, "Early stopping")
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improved(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` (not below ``min_lr``) when ``monitor`` has not
    improved for ``patience`` epochs, then wait ``cooldown`` epochs, as Keras does."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected arguments {sorted(kwargs)}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        super().__init__(monitor, mode, min_delta)
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.cooldown_counter = self.wait = 0

    def on_train_begin(self, logs=None):
        self.best, self.cooldown_counter, self.wait = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = optimizer.learning_rate
        value = self._value(logs, "Learning rate reduction")
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value, self.best):
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and optimizer.learning_rate > self.min_lr:
                optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{optimizer.learning_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """One CSV row per epoch (epoch, then the logs in sorted order) in ``filename``, written as
    each epoch ends; ``append`` continues an existing file, as in Keras."""

    writes_files = True     # in data-parallel training, on rank 0 only

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self._file = self._writer = self._keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self._keys = None
        if exists:
            with open(self.filename, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self._keys = header[1:] if header else None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            self._writer.writerow(["epoch"] + self._keys)
        elif self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.separator)
        self._writer.writerow([epoch] + [_csv_value(logs.get(k, "NA")) for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None


def _csv_value(value):
    return float(value) if hasattr(value, "__float__") and not isinstance(value, str) else value


class TerminateOnNaN(Callback):
    """Stop training, without an error, when the loss of a batch is NaN or infinite (that
    batch's update is not applied)."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch to
    ``schedule(epoch, current_lr)``, as keras.callbacks.LearningRateScheduler."""

    def __init__(self, schedule, verbose=0):
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = float(self.schedule(epoch, optimizer.learning_rate))
        if not lr > 0:
            raise ValueError(f"the learning-rate schedule gave {lr} for epoch {epoch + 1}; it must be positive")
        optimizer.learning_rate = lr
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class BatchLogs(Mapping):
    """The logs handed to batch callbacks and the progress bar: ``{'loss': ..., 'accuracy': ...}``
    as they stood after that batch. A metric's value is read (a copy from the GPU, on the
    GPU backend) only when it is looked at, from a snapshot of its running total taken
    when the logs were made, so logs kept for later still show their own batch."""

    def __init__(self, loss, metrics):
        self._loss = loss
        self._metrics = {metric.name: metric.snapshot() for metric in metrics}

    def __getitem__(self, key):
        if key == "loss":   # a number, or (running total, count) read only now
            return float(self._loss[0]) / self._loss[1] if isinstance(self._loss, tuple) else self._loss
        total, count = self._metrics[key]
        count = float(count)     # a sample count, or (weighted metrics) a sum of weights on the device
        return float(total) / count if count else 0.0

    def __iter__(self):
        yield "loss"
        yield from self._metrics

    def __len__(self):
        return 1 + len(self._metrics)


class History(Callback):
    """``history.history['loss']`` etc.: one value per epoch for each logged quantity."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.params = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


def format_duration(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds * 1e6:.0f}us"


def format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def _interactive(stream):
    if "ipykernel" in sys.modules:
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class Progbar:
    """Keras's progress line: ``1875/1875 [=====>....] - ETA: 3s - loss: 0.1234``.

    ``verbose=1`` redraws the line in a terminal or notebook (and prints it once, when
    finished, anywhere else); ``verbose=2`` prints one summary line at the end."""

    width = 30
    interval = 0.1   # seconds between redraws (each redraw reads the metrics it shows)

    def __init__(self, target, verbose=1, stream=None, interval=None):
        self.target, self.verbose = target, verbose
        self.stream = stream or sys.stdout
        self.interactive = _interactive(self.stream)
        self.start = time.perf_counter()
        self.last_draw = 0.0
        if interval is not None:
            self.interval = interval

    def _bar(self, current):
        if self.target is None:
            return f"{current}/Unknown"
        done = int(self.width * current / self.target) if self.target else self.width
        arrow = ">" if current < self.target else "="
        bar = ("=" * max(done - 1, 0) + arrow if done else "") + "." * (self.width - done)
        digits = len(str(self.target))
        return f"{current:{digits}d}/{self.target} [{bar}]"

    def update(self, current, logs=None):
        """Draw progress after ``current`` steps (no more often than ``interval``)."""
        if self.verbose != 1 or not self.interactive:
            return
        now = time.perf_counter()
        if now - self.last_draw < self.interval:
            return
        self.last_draw = now
        elapsed = now - self.start
        eta = elapsed / current * (self.target - current) if self.target and current else 0
        line = f"{self._bar(current)} - ETA: {format_duration(eta)}"
        if logs:
            line += " - " + format_logs(logs)
        self.stream.write("\r" + line)
        self.stream.flush()

    def finish(self, current, logs=None):
        """Print the final line for ``current`` steps."""
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self.start
        per_step = format_duration(elapsed / max(current, 1))
        extra = (" - " + format_logs(logs)) if logs else ""
        if self.verbose == 1:
            line = f"{self._bar(current)} - {format_duration(elapsed)} {per_step}/step{extra}"
            self.stream.write(("\r" if self.interactive else "") + line + "\n")
        else:
            line = (f"{current}/{self.target or current} - {format_duration(elapsed)}{extra} - "
                    f"{format_duration(elapsed)}/epoch - {per_step}/step")
            self.stream.write(line + "\n")
        self.stream.flush()


def __getattr__(name):
    """A Keras callback scratchnet lacks: the nearest one it has, and all of them."""
    if name.startswith("__"):
        raise AttributeError(name)
    from ..names import missing
    have = [n for n, v in globals().items() if isinstance(v, type) and issubclass(v, Callback) and not n.startswith("_")]
    raise missing("callbacks", name, have, ", and a Callback subclass of your own")
