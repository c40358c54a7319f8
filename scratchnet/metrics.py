"""Metrics, named as in ``keras.metrics``, accumulated over an epoch as Keras does: a running
mean of a per-sample value (weighted by the sample weights for compile's weighted_metrics).

Accuracies (BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy; 'accuracy' picks
the one that fits the loss; per pixel for a segmentation model's (N, H, W, K) outputs),
MeanSquaredError and MeanAbsoluteError, the intersection-over-union metrics of segmentation
(IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU: a confusion matrix summed over the
batches, given as instances since they need num_classes, as in Keras), and any Python function
``fn(y_true, y_pred)`` giving one value per sample: a metric needs no gradient. They are given
to compile as names, classes, instances or functions. The running total stays where the
outputs are (on the GPU for the GPU backend) and is read once, by ``result()``."""
import copy
import math
import warnings
from dataclasses import dataclass

import numpy as np

from . import activations
from . import losses as losses_module
from .arrays import module_of, to_host


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


class _IoUBase(Metric):
    """Intersection over union from a confusion matrix accumulated over the batches, as
    Keras's IoU metrics: rows the true classes, columns the predicted ones, each pixel (or
    sample) adding its weight to one cell (np.bincount of ``true * num_classes + predicted``).
    A pair with either class outside [0, num_classes), or a true class equal to
    ``ignore_class``, counts for nothing. ``sparse_y_true`` / ``sparse_y_pred`` False take the
    argmax over ``axis`` (one-hot targets; scores, where the argmax of logits is that of the
    probabilities); sparse predictions are the model's outputs cast to integers, as Keras
    casts them. The matrix is of ``dtype`` (Keras's default 'int': float weights are cut to
    integers, with Keras's warning). Per-sample weights (N,) with per-pixel targets weigh
    every pixel of their sample (Keras takes one weight per target value only)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.sparse_y_true, self.sparse_y_pred, self.axis = bool(sparse_y_true), bool(sparse_y_pred), int(axis)
        self.dtype = np.dtype(np.int64 if dtype in (None, "int") else dtype)
        self._warned = False
        super().__init__(name, dtype)

    def reset_state(self):
        self.total_cm = None      # (num_classes, num_classes) of dtype, where the outputs are
        self.total, self.count = None, 0

    reset = reset_state

    def _classes(self, y_true, y_pred, logits):
        """(true classes, predicted classes), flat integer arrays."""
        xp = module_of(y_pred)
        y_true = y_true.argmax(axis=self.axis) if not self.sparse_y_true else y_true
        y_pred = y_pred.argmax(axis=self.axis) if not self.sparse_y_pred else _probabilities(y_pred, logits)
        return xp.asarray(y_true).astype(np.int64).reshape(-1), xp.asarray(y_pred).astype(np.int64).reshape(-1)

    def update(self, y_true, y_pred, from_logits=False, sample_weight=None):
        xp = module_of(y_pred)
        shapes = (tuple(y_true.shape), tuple(y_pred.shape))
        true, pred = self._classes(y_true, y_pred, from_logits)
        if true.size != pred.size:
            raise ValueError(f"{self.name}: {true.size} true classes (targets of shape {shapes[0]}) but {pred.size} "
                             f"predicted ones (outputs of shape {shapes[1]}); expected one for each")
        keep = (true >= 0) & (true < self.num_classes) & (pred >= 0) & (pred < self.num_classes)
        if self.ignore_class is not None:
            keep &= true != self.ignore_class
        k = self.num_classes
        ids = true[keep] * k + pred[keep]
        if sample_weight is None:
            cm = xp.bincount(ids, minlength=k * k)
        else:
            weights = self._weights(xp.asarray(sample_weight), true.size, shapes[0])
            cm = xp.bincount(ids, weights=weights[keep].astype(np.float64), minlength=k * k)
        cm = cm.reshape(k, k).astype(self.dtype)
        self.total_cm = cm if self.total_cm is None else self.total_cm + cm

    def _weights(self, weights, size, true_shape):
        """One weight per target value, flat, in the matrix's dtype."""
        if weights.size == size:
            weights = weights.reshape(-1)
        elif weights.size == 1:
            weights = module_of(weights).full(size, weights.reshape(-1)[0])
        elif weights.ndim == 1 and len(true_shape) > 1 and true_shape[0] == weights.shape[0]:
            weights = module_of(weights).repeat(weights, size // weights.shape[0])    # each sample's pixels
        else:
            raise ValueError(f"{self.name}: sample weights of shape {weights.shape} do not fit targets of shape "
                             f"{true_shape}; give one weight per sample or one per target value")
        if weights.dtype.kind == "f" and self.dtype.kind in "iu" and not self._warned:
            self._warned = True
            warnings.warn("You are passing weight as `float`, but dtype is `int`. This may result in an incorrect "
                          "weight due to type casting Consider using integer weights.", stacklevel=4)
        return weights.astype(self.dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Keras's form: add a batch of targets and predictions."""
        xp = module_of(y_pred)
        self.update(xp.asarray(y_true), xp.asarray(y_pred), False,
                    None if sample_weight is None else xp.asarray(sample_weight))

    def _value(self, cm):
        """The mean IoU of the target classes with a nonzero denominator, float32 as Keras."""
        if cm is None:
            return 0.0
        cm = to_host(cm)
        tp = np.diag(cm).astype(self.dtype)
        denominator = (cm.sum(axis=0).astype(self.dtype) + cm.sum(axis=1).astype(self.dtype) - tp)
        ids = list(self.target_class_ids)
        tp, denominator = tp[ids].astype(np.float32), denominator[ids].astype(np.float32)
        valid = denominator > 1e-9
        iou = np.where(valid, tp / (denominator + np.float32(1e-7)), np.float32(0))
        return float(iou.sum(dtype=np.float32) / (np.float32(valid.sum()) + np.float32(1e-7)))

    def result(self):
        return self._value(self.total_cm)

    def snapshot(self):
        """The matrix as it is now, read as the metric's value only when looked at."""
        return _Value(self, self.total_cm), 1

    def sums(self):
        """The confusion matrix, flat (what adds up across processes)."""
        k = self.num_classes
        return [float(v) for v in (np.zeros(k * k) if self.total_cm is None else to_host(self.total_cm).ravel())]

    def set_sums(self, values):
        self.total_cm = np.asarray(values, np.float64).reshape(self.num_classes, self.num_classes).astype(self.dtype)


class _Value:
    """A metric's value computed from a snapshot when read (``float(value)``)."""

    def __init__(self, metric, state):
        self.metric, self.state = metric, state

    def __float__(self):
        return self.metric._value(self.state)


class IoU(_IoUBase):
    """The IoU of the ``target_class_ids`` (their mean, for several), as keras.metrics.IoU."""

    default_name = "io_u"

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)
        ids = [int(i) for i in target_class_ids]
        if not ids or max(ids) >= num_classes or min(ids) < 0:
            raise ValueError(f"Target class id {max(ids, key=abs) if ids else None} is out of range, which is "
                             f"[0, {num_classes}).")
        self.target_class_ids = ids

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype.name, "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of two classes: targets cast to 0/1, predictions 1 where >= ``threshold`` (of the
    probabilities, where the model's sigmoid went into the loss), as keras.metrics.BinaryIoU."""

    default_name = "binary_io_u"

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(2, target_class_ids, name=name, dtype=dtype)
        self.threshold = float(threshold)

    def _classes(self, y_true, y_pred, logits):
        xp = module_of(y_pred)
        predicted = _probabilities(y_pred, logits).astype(np.float32) >= np.float32(self.threshold)
        return xp.asarray(y_true).astype(np.int64).reshape(-1), predicted.astype(np.int64).reshape(-1)

    def get_config(self):
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype.name}


class MeanIoU(IoU):
    """The mean IoU over all classes that occur (in the targets or predictions), as
    keras.metrics.MeanIoU; logged as 'mean_io_u'."""

    default_name = "mean_io_u"

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """IoU with one-hot targets (and scores as predictions), as keras.metrics.OneHotIoU."""

    default_name = "one_hot_io_u"

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot targets (and scores as predictions), as keras.metrics.OneHotMeanIoU."""

    default_name = "one_hot_mean_io_u"

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


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
_CONFIGURED = (BinaryAccuracy, IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU)


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
    have = [n for n, v in globals().items() if isinstance(v, type) and issubclass(v, Metric) and
            not n.startswith("_") and v not in (Metric, FunctionMetric)]
    raise missing("metrics", name, have, ", and any function fn(y_true, y_pred)")
