"""The classification metrics of keras.metrics beyond accuracy: TopKCategoricalAccuracy and
SparseTopKCategoricalAccuracy (a running mean, as the accuracies), and Precision, Recall, AUC and
F1Score (true/false positive counts summed over the batches, as Keras keeps them, read as the
metric's value only when looked at); and ``confusion_matrix`` as tf.math.confusion_matrix.

Where the model hands its outputs before the activation its loss absorbed (a fused sigmoid or
softmax head), each metric takes the probabilities, as Keras's metrics see them."""
import numpy as np

from .arrays import module_of, to_host
from .metric_base import Metric, _probabilities, _Value

NEG_INF = -1e10     # Keras's value for the outputs top_k leaves out


def _positive_int(owner, what, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return int(value)


class TopKCategoricalAccuracy(Metric):
    """1 where the one-hot target's class is among the ``k`` largest outputs, as
    keras.metrics.TopKCategoricalAccuracy (tf.math.in_top_k: outputs tied with the k-th largest
    count as in the top k)."""

    default_name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, dtype=None):
        self.k = _positive_int(type(self).__name__, "k", k)
        super().__init__(name, dtype)

    def _labels(self, y_true, y_pred):
        return y_true.reshape(y_pred.shape).argmax(axis=-1)

    def values(self, y_true, y_pred, logits):
        p = _probabilities(y_pred, logits)
        labels = module_of(p).asarray(self._labels(y_true, p)).astype(np.int64)
        inside = (labels >= 0) & (labels < p.shape[-1])
        target = np.take_along_axis(p, np.clip(labels, 0, p.shape[-1] - 1)[..., None], axis=-1)
        above = (p > target).sum(axis=-1)
        return (inside & (above < self.k) & np.isfinite(p).all(axis=-1)).astype(np.float32)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """1 where the integer label is among the ``k`` largest outputs, as
    keras.metrics.SparseTopKCategoricalAccuracy."""

    default_name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, dtype=None, from_sorted_ids=False):
        if from_sorted_ids:
            raise ValueError("SparseTopKCategoricalAccuracy: scratchnet takes scores, not sorted ids "
                             "(from_sorted_ids=False); got from_sorted_ids=True")
        super().__init__(k, name, dtype)

    def _labels(self, y_true, y_pred):
        return y_true.reshape(y_pred.shape[:-1])


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Per-sample top-k accuracy with one-hot targets, as keras.metrics.top_k_categorical_accuracy."""
    xp = module_of(y_pred)
    return TopKCategoricalAccuracy(k).values(xp.asarray(y_true), xp.asarray(y_pred), False)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Per-sample top-k accuracy with integer labels, as keras.metrics.sparse_top_k_categorical_accuracy."""
    xp = module_of(y_pred)
    return SparseTopKCategoricalAccuracy(k).values(xp.asarray(y_true), xp.asarray(y_pred), False)


class _Counts(Metric):
    """A metric kept as named arrays of weighted counts (true positives, ...) that add up over
    the batches and over the processes of data-parallel training (``sums``/``set_sums``)."""

    state_names = ()

    def reset_state(self):
        self.state = None       # {name: float64 array} where the outputs are, once a batch came
        self.total, self.count = None, 0

    def state_shape(self):
        raise NotImplementedError

    def update(self, y_true, y_pred, from_logits=False, sample_weight=None):
        counts = self.counts(y_true, y_pred, from_logits, sample_weight)
        self.state = counts if self.state is None else {k: self.state[k] + counts[k] for k in self.state_names}

    def _weights(self, sample_weight, shape, xp):
        """Weights broadcast to ``shape`` (one per sample (N,), per value, or one number)."""
        if sample_weight is None:
            return xp.ones(shape, np.float64)
        w = xp.asarray(sample_weight, dtype=np.float64)
        if w.ndim == 1 and len(shape) > 1 and w.shape[0] == shape[0]:
            w = w.reshape((shape[0],) + (1,) * (len(shape) - 1))
        elif w.ndim == len(shape) + 1 and w.shape[-1] == 1:
            w = w[..., 0]
        try:
            return xp.broadcast_to(w, shape)
        except ValueError:
            raise ValueError(f"metric {self.name!r}: sample weights of shape {tuple(w.shape)} do not fit outputs of "
                             f"shape {tuple(shape)}; give one weight per sample or one per output") from None

    def _zeros(self):
        return {k: np.zeros(self.state_shape()) for k in self.state_names}

    def _host_state(self, state):
        return self._zeros() if state is None else {k: to_host(v) for k, v in state.items()}

    def result(self):
        return self._value(self.state)

    def _value(self, state):
        value = self.value_of(self._host_state(state))
        return float(value) if np.ndim(value) == 0 else np.asarray(value, np.float32)

    def snapshot(self):
        return _Scalar(self, self.state), 1

    def sums(self):
        state = self._host_state(self.state)
        return [float(v) for k in self.state_names for v in np.ravel(state[k])]

    def set_sums(self, values):
        values, shape = np.asarray(values, np.float64), self.state_shape()
        size = int(np.prod(shape, dtype=np.int64))
        self.state = {k: values[i * size:(i + 1) * size].reshape(shape) for i, k in enumerate(self.state_names)}


class _Scalar(_Value):
    def __float__(self):
        value = self.metric._value(self.state)
        if np.ndim(value):
            raise TypeError(f"metric {self.metric.name!r} has {np.size(value)} values ({type(self.metric).__name__} "
                            f"with several thresholds, or F1Score(average=None): one per class); fit's logs take "
                            f"one number per metric: give one threshold, or average='macro', 'micro' or 'weighted'")
        return value


def _divide(a, b):
    """a / b, 0 where b is 0 (Keras's divide_no_nan)."""
    return np.where(b != 0, a / np.where(b != 0, b, 1), 0.0)


def _thresholds(owner, thresholds, default):
    if thresholds is None:
        return [default]
    listed = [thresholds] if np.ndim(thresholds) == 0 else list(np.ravel(thresholds))
    if not listed or any(not isinstance(t, (int, float, np.number)) or not 0 <= t <= 1 for t in listed):
        raise ValueError(f"{owner}: thresholds must be numbers in [0, 1], got {thresholds!r}")
    return [float(t) for t in listed]


class _PrecisionRecall(_Counts):
    """Counts at each of ``thresholds`` (an output counts as positive where it is > the
    threshold), of the ``top_k`` largest outputs only (the others as -1e10), of class
    ``class_id`` only: as Keras's update_confusion_matrix_variables, in float32 comparisons."""

    state_names = ("true_positives", "false_positives", "false_negatives")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        owner = type(self).__name__
        self.init_thresholds = thresholds
        self.top_k = None if top_k is None else _positive_int(owner, "top_k", top_k)
        self.class_id = None if class_id is None else int(class_id)
        self.thresholds = _thresholds(owner, thresholds, 0.5 if top_k is None else NEG_INF)
        super().__init__(name, dtype)

    def state_shape(self):
        return (len(self.thresholds),)

    def counts(self, y_true, y_pred, logits, sample_weight):
        xp = module_of(y_pred)
        p = _probabilities(y_pred, logits).astype(np.float32)
        y = xp.asarray(y_true)
        if y.size != p.size:
            raise ValueError(f"{self.name}: targets of shape {tuple(y.shape)} do not match outputs of shape "
                             f"{tuple(p.shape)}")
        y = y.reshape(p.shape) != 0
        w = self._weights(sample_weight, p.shape, xp)
        if self.top_k is not None:
            rank = xp.argsort(xp.argsort(-p, axis=-1, kind="stable"), axis=-1)   # ties: the first index ahead
            p = xp.where(rank < self.top_k, p, np.float32(NEG_INF))
        if self.class_id is not None:
            if p.ndim < 2 or not 0 <= self.class_id < p.shape[-1]:
                raise ValueError(f"{self.name}: class_id {self.class_id} needs outputs (samples, classes) with more "
                                 f"than {self.class_id} classes; got outputs of shape {tuple(p.shape)}")
            p, y, w = p[..., self.class_id], y[..., self.class_id], w[..., self.class_id]
        t = xp.asarray(np.asarray(self.thresholds, np.float32))
        positive = p.reshape(1, -1) > t[:, None]
        y, w = y.reshape(1, -1), w.reshape(1, -1)
        return {"true_positives": (w * (positive & y)).sum(axis=1),
                "false_positives": (w * (positive & ~y)).sum(axis=1),
                "false_negatives": (w * (~positive & y)).sum(axis=1)}

    def _one(self, values):
        return values[0] if len(self.thresholds) == 1 else values

    def get_config(self):
        return {"name": self.name, "thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """true positives / (true positives + false positives), as keras.metrics.Precision."""

    default_name = "precision"

    def value_of(self, s):
        return self._one(_divide(s["true_positives"], s["true_positives"] + s["false_positives"]))


class Recall(_PrecisionRecall):
    """true positives / (true positives + false negatives), as keras.metrics.Recall."""

    default_name = "recall"

    def value_of(self, s):
        return self._one(_divide(s["true_positives"], s["true_positives"] + s["false_negatives"]))


class AUC(_Counts):
    """The area under the ROC or precision-recall curve, as keras.metrics.AUC: the counts at
    ``num_thresholds`` thresholds, -1e-7, 1/(n-1), ..., (n-2)/(n-1), 1 + 1e-7 (an output counts
    as positive above a threshold; Keras's buckets ceil(p (n-1)) - 1 of outputs clipped to
    [0, 1]), or at ``thresholds`` given; the targets as booleans; summed by 'interpolation'
    (the trapezoids, and for 'PR' Davis & Goadrich's interpolation, as Keras), 'minoring' or
    'majoring'. All outputs make one curve, each weighed by its label's ``label_weights``; with
    ``multi_label``, each label of (samples, labels) outputs has a curve of its own, and the
    value is their mean, weighted by ``label_weights`` when given."""

    default_name = "auc"
    state_names = ("true_positives", "false_positives", "true_negatives", "false_negatives")

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        if str(curve).upper() not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if str(summation_method).lower() not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"AUC: summation_method must be 'interpolation', 'minoring' or 'majoring', got "
                             f"{summation_method!r}")
        if num_labels is not None and not multi_label:
            raise ValueError("AUC: `num_labels` is needed only when `multi_label` is True.")
        self.num_labels = self.labels = None if num_labels is None else _positive_int("AUC", "num_labels", num_labels)
        if label_weights is not None:
            label_weights = np.asarray(label_weights, np.float64).ravel()
            if not np.isfinite(label_weights).all() or (label_weights < 0).any():
                raise ValueError(f"AUC: label_weights must be non-negative numbers, got {label_weights.tolist()}")
        self.label_weights = label_weights
        self.curve, self.summation_method = str(curve).upper(), str(summation_method).lower()
        self.from_logits, self.multi_label = bool(from_logits), bool(multi_label)
        self._given = thresholds is not None
        if self._given:
            inner = sorted(_thresholds("AUC", thresholds, None))
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) \
                    or num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. Received: "
                                 f"num_thresholds={num_thresholds}")
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.thresholds = [0.0 - 1e-7] + inner + [1.0 + 1e-7]
        self.num_thresholds = len(self.thresholds)
        super().__init__(name, dtype)

    def state_shape(self):
        if not self.multi_label:
            return (self.num_thresholds,)
        if self.labels is None:
            raise ValueError(f"{self.name}: the number of labels is known after the first batch (or num_labels)")
        return (self.num_thresholds, self.labels)

    def _host_state(self, state):
        if state is None and self.multi_label and self.labels is None:
            return {k: np.zeros((self.num_thresholds, 1)) for k in self.state_names}
        return super()._host_state(state)

    def counts(self, y_true, y_pred, logits, sample_weight):
        xp = module_of(y_pred)
        p = _probabilities(y_pred, logits).astype(np.float32)
        if self.from_logits:
            p = (1 / (1 + np.exp(-p))).astype(np.float32)
        y = xp.asarray(y_true)
        if y.size != p.size:
            raise ValueError(f"{self.name}: targets of shape {tuple(y.shape)} do not match outputs of shape "
                             f"{tuple(p.shape)}")
        w = self._weights(sample_weight, p.shape, xp)
        if self.label_weights is not None and not self.multi_label:
            w = w * xp.asarray(self._label_weights(p.shape[-1]))
        if self.multi_label:
            if p.ndim != 2:
                raise ValueError(f"{self.name}: multi_label=True takes outputs of shape (samples, labels), got "
                                 f"{tuple(p.shape)}")
            self.labels = self.labels or p.shape[1]
            if p.shape[1] != self.labels:
                raise ValueError(f"{self.name}: outputs of {p.shape[1]} labels, after {self.labels} before")
        labels = self.labels if self.multi_label else 1
        true = (y.reshape(-1, labels) != 0).astype(np.float64)        # (values, labels): one column unless multi_label
        w, p, n = w.reshape(-1, labels), p.reshape(-1, labels), self.num_thresholds
        if self._given:
            positive = p[None] > xp.asarray(np.asarray(self.thresholds, np.float32))[:, None, None]
            tp, fp = (positive * (true * w)).sum(axis=1), (positive * ((1 - true) * w)).sum(axis=1)
        else:       # bucket b of label l at b * labels + l: one bincount for every label
            buckets = np.ceil(np.clip(p, 0, 1) * np.float32(n - 1)) - 1
            buckets = (np.maximum(buckets, 0).astype(np.int64) * labels + xp.arange(labels)).ravel()
            tp, fp = (xp.bincount(buckets, weights=(v * w).ravel(), minlength=n * labels).reshape(n, labels)
                      [::-1].cumsum(axis=0)[::-1] for v in (true, 1 - true))
        counts = {"true_positives": tp, "false_positives": fp, "true_negatives": ((1 - true) * w).sum(axis=0) - fp,
                  "false_negatives": (true * w).sum(axis=0) - tp}
        return counts if self.multi_label else {k: v[:, 0] for k, v in counts.items()}

    def _label_weights(self, labels):
        if len(self.label_weights) != labels:
            raise ValueError(f"{self.name}: {len(self.label_weights)} label_weights for outputs of {labels} labels")
        return self.label_weights

    def set_sums(self, values):
        if self.multi_label and self.labels is None:
            self.labels = len(values) // (len(self.state_names) * self.num_thresholds)
        super().set_sums(values)

    def value_of(self, s):
        by_label = self._by_label(s)
        if not self.multi_label:
            return by_label
        if self.label_weights is None:
            return by_label.mean()
        weights = self._label_weights(by_label.shape[0])
        return _divide((by_label * weights).sum(), weights.sum())

    def _by_label(self, s):
        """The area under each label's curve (one curve: a number)."""
        tp, fp, tn, fn = (s[k] for k in self.state_names)
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = p[:-1] - p[1:]
            slope = _divide(dtp, np.maximum(dp, 0))
            intercept = tp[1:] - slope * p[1:]
            both = (p[:-1] > 0) & (p[1:] > 0)
            ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
            return _divide(slope * (dtp + intercept * np.log(np.where(ratio > 0, ratio, 1))),
                           np.maximum(tp[1:] + fn[1:], 0)).sum(axis=0)
        recall = _divide(tp, tp + fn)
        x, y = (_divide(fp, fp + tn), recall) if self.curve == "ROC" else (recall, _divide(tp, tp + fp))
        heights = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:]),
                   "majoring": np.maximum(y[:-1], y[1:])}[self.summation_method]
        return ((x[:-1] - x[1:]) * heights).sum(axis=0)

    def get_config(self):
        config = {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels, "from_logits": self.from_logits,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist()}
        if self._given:
            config["thresholds"] = self.thresholds[1:-1]
        return config


class F1Score(_Counts):
    """The F1 score per class (``average`` None), or their mean ('macro'), the weighted mean by
    the targets' class weights ('weighted'), or one over all classes ('micro'), as
    keras.metrics.F1Score: an output counts as positive where it is > ``threshold``, or, with
    threshold None, where it is its sample's largest (and not 0)."""

    default_name = "f1_score"
    state_names = ("true_positives", "false_positives", "false_negatives", "intermediate_weights")

    def __init__(self, average=None, threshold=None, name=None, dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"Invalid `average` argument value. Expected one of: {{None, 'micro', 'macro', "
                             f"'weighted'}}. Received: average={average}")
        if threshold is not None and (not isinstance(threshold, float) or not 0 < threshold <= 1):
            raise ValueError(f"Invalid `threshold` argument value. It should be a Python float with "
                             f"0 < threshold <= 1. Received: threshold={threshold!r}")
        self.average, self.threshold, self.classes = average, threshold, None
        super().__init__(name, dtype)

    def state_shape(self):
        if self.classes is None:
            raise ValueError(f"{self.name}: the number of classes is known after the first batch")
        return () if self.average == "micro" else (self.classes,)

    def _host_state(self, state):
        if state is None and self.classes is None:
            return {k: np.zeros(()) for k in self.state_names}
        return super()._host_state(state)

    def counts(self, y_true, y_pred, logits, sample_weight):
        xp = module_of(y_pred)
        p = _probabilities(y_pred, logits).astype(np.float32)
        if p.ndim != 2 or y_true.size != p.size:
            raise ValueError(f"F1Score expects 2D inputs with shape (batch_size, output_dim). Received input shapes: "
                             f"y_pred.shape={tuple(p.shape)} and y_true.shape={tuple(y_true.shape)}.")
        self.classes = p.shape[-1]
        if self.threshold is None:
            predicted = (p >= p.max(axis=-1, keepdims=True)) & (abs(p) > 1e-9)
        else:
            predicted = p > np.float32(self.threshold)
        predicted, y = predicted.astype(np.float64), xp.asarray(y_true).reshape(p.shape).astype(np.float64)
        w = self._weights(sample_weight, p.shape[:1], xp)[:, None]
        axis = None if self.average == "micro" else 0
        return {"true_positives": (w * predicted * y).sum(axis=axis),
                "false_positives": (w * predicted * (1 - y)).sum(axis=axis),
                "false_negatives": (w * (1 - predicted) * y).sum(axis=axis),
                "intermediate_weights": (w * y).sum(axis=axis)}

    def set_sums(self, values):
        if self.classes is None and self.average != "micro":
            self.classes = len(values) // len(self.state_names)
        super().set_sums(values)

    def value_of(self, s):
        eps = 1e-7
        precision = s["true_positives"] / (s["true_positives"] + s["false_positives"] + eps)
        recall = s["true_positives"] / (s["true_positives"] + s["false_negatives"] + eps)
        f1 = 2 * precision * recall / (precision + recall + eps)
        if self.average == "weighted":
            return (f1 * s["intermediate_weights"] / (s["intermediate_weights"].sum() + eps)).sum()
        return f1 if self.average is None else np.mean(f1)

    def get_config(self):
        return {"name": self.name, "average": self.average, "threshold": self.threshold}


def confusion_matrix(y_true, y_pred, num_classes=None, weights=None, dtype="int32"):
    """The (num_classes, num_classes) matrix counting each pair (rows the true labels, columns
    the predicted ones), as tf.math.confusion_matrix; ``num_classes`` None: one more than the
    largest label or prediction; ``weights`` (one per pair) are added instead of 1."""
    true, pred = np.asarray(to_host(y_true)), np.asarray(to_host(y_pred))
    if true.shape != pred.shape:
        raise ValueError(f"confusion_matrix: labels of shape {true.shape} and predictions of shape {pred.shape}; "
                         f"expected the same shape")
    for what, a in (("labels", true), ("predictions", pred)):
        if a.dtype.kind not in "biu" and not (a.dtype.kind == "f" and np.isfinite(a).all()):
            raise TypeError(f"confusion_matrix: {what} must be integers, got dtype {a.dtype}")
        if a.size and a.min() < 0:
            raise ValueError(f"confusion_matrix: {what} must be >= 0, got {a.min()}")
    true, pred = true.astype(np.int64).ravel(), pred.astype(np.int64).ravel()
    k = int(max(true.max(initial=-1), pred.max(initial=-1)) + 1) if num_classes is None else int(num_classes)
    if true.size and max(true.max(), pred.max()) >= k:
        raise ValueError(f"confusion_matrix: labels and predictions must be < num_classes={k}, got "
                         f"{max(true.max(), pred.max())}")
    w = None if weights is None else np.broadcast_to(np.asarray(to_host(weights), np.float64).ravel(), true.shape)
    return np.bincount(true * k + pred, weights=w, minlength=k * k).reshape(k, k).astype(dtype)
