"""The base of the metrics: a running (weighted) mean of a per-sample value, kept where the
outputs are, read once by ``result()``; the shapes of per-pixel values and weights; the
probabilities of a head whose activation went into the loss."""
import numpy as np

from . import activations
from .arrays import module_of


class Metric:
    """Base class: a running (weighted) mean of ``values(y_true, y_pred, logits)``, one
    value per sample. ``logits`` is False for probabilities, True for logits of an unknown
    activation, or the activation's name ('sigmoid', 'softmax') when the model hands its
    outputs before the activation the loss absorbed."""

    default_name = None

    def __init__(self, name=None, dtype=None):
        self.name = name or self.default_name
        self.weighted = False      # counts each sample by its sample weight (compile's weighted_metrics)
        self.reset_state()

    def values(self, y_true, y_pred, logits):
        raise NotImplementedError

    def reset_state(self):
        self.total = None    # a 0-d array on the outputs' device
        self.count = 0

    def reset(self):
        self.reset_state()

    def update(self, y_true, y_pred, from_logits=False, sample_weight=None):
        """Add a batch. A value per pixel (an (N, H, W) map) counts as the sample's mean, and
        weights per pixel as Keras's Mean takes them: sum(w * value) / sum(w) over the pixels."""
        values = self.values(y_true, y_pred, from_logits)
        if sample_weight is None:
            batch_total, batch_count = _sample_means(values).sum(dtype=np.float64), values.shape[0]
        else:    # a weighted mean: sum(w * value) / sum(w), the weights' sum kept on the device too
            weights = _weights_like(sample_weight, values, self.name)
            if weights.ndim == 1:
                batch_total = (_sample_means(values) * weights).sum(dtype=np.float64)
            else:
                batch_total = _sample_means(values * weights).sum(dtype=np.float64)
            batch_count = _sample_means(weights).sum(dtype=np.float64)
        self.total = batch_total if self.total is None else self.total + batch_total
        self.count = batch_count if isinstance(self.count, int) and self.count == 0 else self.count + batch_count

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Keras's form: add a batch of targets and predictions (probabilities)."""
        xp = module_of(y_pred)
        y_pred = xp.asarray(y_pred)
        y_true = xp.asarray(y_true)
        weights = None if sample_weight is None else xp.asarray(sample_weight, dtype=np.float64)
        if weights is not None and weights.ndim == 0:
            weights = xp.full(y_pred.shape[:1], float(weights))
        self.update(y_true, y_pred, False, weights)

    def result(self):
        """The mean so far, as a float (one copy from the device)."""
        count = float(self.count)
        return float(self.total) / count if count else 0.0

    def snapshot(self):
        """(total, count) as they are now; ``update`` replaces the total rather than changing
        it in place, so the snapshot stays as it was without a copy."""
        return self.total, self.count

    def sums(self):
        """What adds up across processes (data-parallel training), as floats: total and count."""
        return [0.0 if self.total is None else float(self.total), float(self.count)]

    def set_sums(self, values):
        """The state from ``sums()`` added up over every process."""
        self.total, self.count = values

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


def _sample_means(a):
    """One value per sample: a itself, or the mean of each sample's values (pixels)."""
    return a.reshape(a.shape[0], -1).mean(axis=1) if a.ndim > 1 else a


def _weights_like(weights, values, name):
    """Weights to go with ``values``: one per sample (N,), or one per value, shaped like them
    (an (N, H, W, 1) map squeezed, as Keras does); with one value per sample, per-pixel
    weights become each sample's mean weight."""
    if weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
        weights = weights[..., 0]
    if weights.ndim > 1 and weights.size == weights.shape[0]:
        weights = weights.reshape(-1)
    if weights.shape[:1] != values.shape[:1] or (weights.ndim > 1 and values.ndim > 1 and
                                                 weights.shape != values.shape):
        raise ValueError(f"metric {name!r}: sample weights of shape {weights.shape} do not fit its values of shape "
                         f"{values.shape}; give one weight per sample or one per value")
    if weights.ndim > 1 and values.ndim == 1:
        weights = _sample_means(weights)
    return weights


def _probabilities(y_pred, logits):
    if isinstance(logits, str):
        return activations.get(logits).forward(y_pred)
    return y_pred


class _Value:
    """A metric's value computed from a snapshot when read (``float(value)``)."""

    def __init__(self, metric, state):
        self.metric, self.state = metric, state

    def __float__(self):
        return self.metric._value(self.state)
