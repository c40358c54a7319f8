"""Metrics, named as in ``keras.metrics``, accumulated over an epoch as Keras does: a running
mean of a per-sample value (weighted by the sample weights for compile's weighted_metrics).

Accuracies (BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy; 'accuracy' picks
the one that fits the loss), MeanSquaredError and MeanAbsoluteError, and any Python function
``fn(y_true, y_pred)`` giving one value per sample: a metric needs no gradient. They are given
to compile as names, classes, instances or functions. The running total stays where the
outputs are (on the GPU for the GPU backend) and is read once, by ``result()``."""
import copy
import math
from dataclasses import dataclass

import numpy as np

from . import activations
from . import losses as losses_module
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

    reset = reset_state

    def update(self, y_true, y_pred, from_logits=False, sample_weight=None):
        values = self.values(y_true, y_pred, from_logits)
        if sample_weight is None:
            batch_total, batch_count = values.sum(dtype=np.float64), values.shape[0]
        else:    # a weighted mean: sum(w * value) / sum(w), the weights' sum kept on the device too
            batch_total = (values * sample_weight).sum(dtype=np.float64)
            batch_count = sample_weight.sum(dtype=np.float64)
        self.total = batch_total if self.total is None else self.total + batch_total
        self.count = batch_count if isinstance(self.count, int) and self.count == 0 else self.count + batch_count

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Keras's form: add a batch of targets and predictions (probabilities)."""
        xp = module_of(y_pred)
        y_pred = xp.asarray(y_pred)
        y_true = xp.asarray(y_true)
        weights = None if sample_weight is None else xp.asarray(sample_weight, dtype=np.float64).reshape(-1)
        self.update(y_true, y_pred, False, weights)

    def result(self):
        """The mean so far, as a float (one copy from the device)."""
        count = float(self.count)
        return float(self.total) / count if count else 0.0

    def snapshot(self):
        """(total, count) as they are now; ``update`` replaces the total rather than changing
        it in place, so the snapshot stays as it was without a copy."""
        return self.total, self.count

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


def _probabilities(y_pred, logits):
    if isinstance(logits, str):
        return activations.get(logits).forward(y_pred)
    return y_pred


class BinaryAccuracy(Metric):
    """The share of outputs on the right side of ``threshold``, per sample."""

    default_name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        if not 0 < threshold < 1:
            raise ValueError(f"BinaryAccuracy: threshold must be in (0, 1), got {threshold!r}")
        self.threshold = float(threshold)
        super().__init__(name, dtype)

    def values(self, y_true, y_pred, logits):
        if logits is True or logits == "sigmoid":    # sigmoid(z) > t  <=>  z > log(t / (1 - t))
            predicted = y_pred > math.log(self.threshold / (1 - self.threshold))
        else:                                       # probabilities (a softmax head's made from its logits)
            predicted = _probabilities(y_pred, logits) > self.threshold
        return (predicted == (y_true.reshape(y_pred.shape) > 0.5)).mean(axis=-1)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    """1 where the largest output is the one-hot target's class."""

    default_name = "categorical_accuracy"

    def values(self, y_true, y_pred, logits):
        return y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)


class SparseCategoricalAccuracy(Metric):
    """1 where the largest output is the integer label's class."""

    default_name = "sparse_categorical_accuracy"

    def values(self, y_true, y_pred, logits):
        return y_pred.argmax(axis=-1) == y_true.reshape(-1)


class MeanSquaredError(Metric):
    """mean((y - p)^2) over the last axis (p the probabilities, where the loss took logits)."""

    default_name = "mean_squared_error"

    def values(self, y_true, y_pred, logits):
        diff = _probabilities(y_pred, logits) - y_true.reshape(y_pred.shape)
        return (diff * diff).reshape(diff.shape[0], -1).mean(axis=1)


class MeanAbsoluteError(Metric):
    """mean(|y - p|) over the last axis."""

    default_name = "mean_absolute_error"

    def values(self, y_true, y_pred, logits):
        diff = _probabilities(y_pred, logits) - y_true.reshape(y_pred.shape)
        return abs(diff).reshape(diff.shape[0], -1).mean(axis=1)


class FunctionMetric(Metric):
    """A Python function fn(y_true, y_pred) -> one value per sample (or more: their mean),
    given probabilities, as Keras calls a metric function."""

    def __init__(self, function, name=None):
        self.function = function
        super().__init__(name or getattr(function, "__name__", "metric"))

    def values(self, y_true, y_pred, logits):
        y_pred = _probabilities(y_pred, logits)
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        values = module_of(y_pred).asarray(self.function(y_true, y_pred))
        if values.ndim == 0 or values.shape[0] != y_pred.shape[0]:
            raise ValueError(f"metric {self.name!r} must give one value per sample (shape ({y_pred.shape[0]},)), "
                             f"got shape {values.shape}")
        return values.reshape(values.shape[0], -1).mean(axis=1)


def _function(metric_class):
    def function(y_true, y_pred):
        xp = module_of(y_pred)
        y_pred, y_true = xp.asarray(y_pred), xp.asarray(y_true)
        return metric_class().values(y_true, y_pred, False)
    function.__name__ = metric_class.default_name
    function.__doc__ = f"Per-sample {metric_class.default_name}, as keras.metrics.{metric_class.default_name}."
    function.metric_class = metric_class
    return function


binary_accuracy = _function(BinaryAccuracy)
categorical_accuracy = _function(CategoricalAccuracy)
sparse_categorical_accuracy = _function(SparseCategoricalAccuracy)
mean_squared_error = mse = _function(MeanSquaredError)
mean_absolute_error = mae = _function(MeanAbsoluteError)

_CLASSES = {cls.default_name: cls for cls in (BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                              MeanSquaredError, MeanAbsoluteError)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


@dataclass(frozen=True)
class MetricSpec:
    """One entry of compile's metrics (``weighted``: of its weighted_metrics)."""
    identifier: object
    weighted: bool = False

    @property
    def name(self):
        """The name the metric is saved under (Keras files keep names)."""
        identifier = self.identifier
        if isinstance(identifier, str):
            return identifier
        if isinstance(identifier, Metric):
            return identifier.name
        if isinstance(identifier, type):
            return identifier.default_name
        return getattr(identifier, "__name__", "metric")


def compiled(specs, loss, output_shape):
    """The metrics of compile's ``specs`` (plain ones, then weighted ones), named as Keras names
    them: a weighted metric whose name is already taken becomes 'weighted_<name>'."""
    metrics, taken = [], set()
    for spec in specs:
        metric = get(spec.identifier, loss, output_shape)
        if metric is spec.identifier:      # the user's own instance: configured and counted in a copy
            metric = copy.copy(metric)
            metric.reset_state()
        if spec.weighted:
            metric.weighted = True
            if metric.name in taken:
                metric.name = f"weighted_{metric.name}"
        taken.add(metric.name)
        metrics.append(metric)
    return metrics


def get(identifier, loss, output_shape):
    """A metric for ``identifier``: a name ('accuracy'/'acc' pick the variant that fits the
    loss, as Keras does), a Metric class or instance, or a function."""
    if identifier in ("accuracy", "acc"):
        if isinstance(loss, losses_module.SparseCategoricalCrossentropy):
            metric = SparseCategoricalAccuracy(identifier)
        elif isinstance(loss, losses_module.BinaryCrossentropy) or output_shape[-1] == 1:
            metric = BinaryAccuracy(identifier)
        else:
            metric = CategoricalAccuracy(identifier)
        return metric
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name in _CLASSES:
            return _CLASSES[name](identifier)
        raise ValueError(f"unknown metric {identifier!r}; expected one of "
                         f"{['accuracy', 'acc'] + sorted(_CLASSES) + sorted(_ALIASES)}, a Metric class or "
                         f"instance, or a function fn(y_true, y_pred)")
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, Metric):
        identifier.reset_state()
        return identifier
    if callable(identifier):
        if getattr(identifier, "metric_class", None) is not None:
            return identifier.metric_class()
        return FunctionMetric(identifier)
    raise ValueError(f"unknown metric {identifier!r}; expected a name, a Metric class or instance, or a function")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import missing
    raise missing("metrics", name, [cls.__name__ for cls in _CLASSES.values()], ", and any function fn(y_true, y_pred)")
