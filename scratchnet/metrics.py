"""Accuracy metrics, accumulated over an epoch as Keras does.

The running total stays where the outputs are (on the GPU for the GPU backend) and is
read once, by ``result()``: no copy to the host per batch."""
import numpy as np

from . import losses as losses_module


def _binary_correct(y, out, from_logits):
    # sigmoid(z) > 0.5  <=>  z > 0
    predicted = out > 0 if from_logits else out > 0.5
    return (predicted == (y.reshape(out.shape) > 0.5)).mean(axis=-1)


def _categorical_correct(y, out, from_logits):
    return out.argmax(axis=-1) == y.argmax(axis=-1)


def _sparse_correct(y, out, from_logits):
    return out.argmax(axis=-1) == y.reshape(-1)


_FUNCTIONS = {
    "binary_accuracy": _binary_correct,
    "categorical_accuracy": _categorical_correct,
    "sparse_categorical_accuracy": _sparse_correct,
}


class Accuracy:
    """A running mean of per-sample accuracy; ``name`` is what History records."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind
        self._correct = _FUNCTIONS[kind]
        self.reset()

    def reset(self):
        self.total = None    # a 0-d array on the outputs' device
        self.count = 0

    def update(self, y_true, y_pred, from_logits=False):
        correct = self._correct(y_true, y_pred, from_logits)
        batch_total = correct.sum(dtype=np.float64)
        self.total = batch_total if self.total is None else self.total + batch_total
        self.count += correct.shape[0]

    def result(self):
        """The mean so far, as a float (one copy from the device)."""
        return float(self.total) / self.count if self.count else 0.0

    def snapshot(self):
        """(total, count) as they are now; ``update`` replaces the total rather than changing
        it in place, so the snapshot stays as it was without a copy."""
        return self.total, self.count


def get(identifier, loss, output_shape):
    """A metric for ``identifier``. 'accuracy'/'acc' pick the variant that fits the loss,
    as Keras does."""
    if identifier in ("accuracy", "acc"):
        if isinstance(loss, losses_module.SparseCategoricalCrossentropy):
            kind = "sparse_categorical_accuracy"
        elif isinstance(loss, losses_module.BinaryCrossentropy) or output_shape[-1] == 1:
            kind = "binary_accuracy"
        else:
            kind = "categorical_accuracy"
        return Accuracy(identifier, kind)
    if identifier in _FUNCTIONS:
        return Accuracy(identifier, identifier)
    raise ValueError(f"unknown metric {identifier!r}; expected one of "
                     f"{['accuracy', 'acc'] + sorted(_FUNCTIONS)}")
