"""The intersection-over-union metrics of segmentation, as keras.metrics: IoU, MeanIoU,
BinaryIoU, OneHotIoU, OneHotMeanIoU (a confusion matrix summed over the batches)."""
import warnings

import numpy as np

from .arrays import module_of, to_host
from .metric_base import Metric, _probabilities, _Value


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
