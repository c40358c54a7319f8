"""Metrics, named as in ``keras.metrics``, accumulated over an epoch as Keras does: a running
mean of a per-sample value (weighted by the sample weights for compile's weighted_metrics).

Accuracies (BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy; 'accuracy' picks
the one that fits the loss; per pixel for a segmentation model's (N, H, W, K) outputs),
MeanSquaredError and MeanAbsoluteError, the intersection-over-union metrics of segmentation
(IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU: a confusion matrix summed over the
batches, given as instances since they need num_classes, as in Keras; iou_metrics.py), the
classification metrics TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, Precision, Recall,
AUC and F1Score (classification_metrics.py, with ``confusion_matrix``), and any Python function
``fn(y_true, y_pred)`` giving one value per sample: a metric needs no gradient. They are given
to compile as names, classes, instances or functions. The running total stays where the
outputs are (on the GPU for the GPU backend) and is read once, by ``result()``."""
import copy
import math
from dataclasses import dataclass

from . import losses as losses_module
from .arrays import module_of
from .classification_metrics import (AUC, F1Score, Precision, Recall, SparseTopKCategoricalAccuracy,  # noqa: F401
                                     TopKCategoricalAccuracy, confusion_matrix, sparse_top_k_categorical_accuracy,
                                     top_k_categorical_accuracy)
from .iou_metrics import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU, _IoUBase  # noqa: F401
from .metric_base import Metric, _probabilities, _sample_means, _Value, _weights_like  # noqa: F401

# kept importable here, where they were and where Keras users look for them
_MOVED = (confusion_matrix, sparse_top_k_categorical_accuracy, top_k_categorical_accuracy, _IoUBase, _sample_means,
          _Value, _weights_like)


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
        predicted = y_pred.argmax(axis=-1)      # per sample, or per pixel of an (N, H, W, K) output
        return predicted == y_true.reshape(predicted.shape)


class MeanSquaredError(Metric):
    """mean((y - p)^2) over the last axis (p the probabilities, where the loss took logits)."""

    default_name = "mean_squared_error"

    def values(self, y_true, y_pred, logits):
        diff = _probabilities(y_pred, logits) - y_true.reshape(y_pred.shape)
        return (diff * diff).mean(axis=-1)     # per sample, or per pixel (update takes each sample's mean)


class MeanAbsoluteError(Metric):
    """mean(|y - p|) over the last axis."""

    default_name = "mean_absolute_error"

    def values(self, y_true, y_pred, logits):
        diff = _probabilities(y_pred, logits) - y_true.reshape(y_pred.shape)
        return abs(diff).mean(axis=-1)


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
        return values      # (N, ...) values: update takes each sample's mean, or weighs them per pixel


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
                                              MeanSquaredError, MeanAbsoluteError, TopKCategoricalAccuracy,
                                              SparseTopKCategoricalAccuracy, Precision, Recall, AUC, F1Score)}
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

    @property
    def saved(self):
        """What files keep of it: its name, or, for a metric object of a class with settings
        of its own (MeanIoU(num_classes=11)), that class and its config, as Keras 3 saves it."""
        identifier = self.identifier
        if isinstance(identifier, Metric) and type(identifier) in _CONFIGURED:
            return {"module": "keras.metrics", "class_name": type(identifier).__name__,
                    "config": identifier.get_config(), "registered_name": None}
        return self.name


def from_saved(entry):
    """A compile metric from what a file keeps (``MetricSpec.saved``): a name stays a name; a
    class and its config is that metric, made again; ValueError for a class scratchnet lacks."""
    if isinstance(entry, str):
        return entry
    name = entry.get("class_name") if isinstance(entry, dict) else None
    cls = globals().get(name) if isinstance(name, str) else None
    if not (isinstance(cls, type) and cls in _CONFIGURED):
        raise ValueError(f"metric {name if name else entry!r} is not one scratchnet can make from a file")
    return cls(**(entry.get("config") or {}))


# classes whose objects files keep with their config (the others are kept by name)
_CONFIGURED = (BinaryAccuracy, IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU, TopKCategoricalAccuracy,
               SparseTopKCategoricalAccuracy, Precision, Recall, AUC, F1Score)


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
            return _CLASSES[name](name=identifier)
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
    have = [n for n, v in globals().items() if isinstance(v, type) and issubclass(v, Metric) and
            not n.startswith("_") and v not in (Metric, FunctionMetric)]
    raise missing("metrics", name, have, ", and any function fn(y_true, y_pred)")
