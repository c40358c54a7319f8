"""Callbacks called by ``fit``: History (always), the progress bar, and a base class for
your own, with Keras's hook names."""
import sys
import time
from collections.abc import Mapping


class Callback:
    """Override any hook; ``self.model`` is set before training starts."""

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


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
        if key == "loss":
            return self._loss
        total, count = self._metrics[key]
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
