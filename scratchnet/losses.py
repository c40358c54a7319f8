"""Loss functions with their gradients, named as in ``keras.losses``.

Each loss returns the batch mean (Keras's 'sum over batch size') and its gradient with
respect to the model output. The last axis of the output is reduced to one loss per sample,
or, for an output with pixels such as a segmentation model's (N, H, W, K), one loss per
pixel; the mean then runs over every pixel of every sample, as in Keras, and sample weights
may weigh samples (N,) or pixels (N, H, W). When the model's last activation is the one a
loss can absorb (sigmoid for the binary cross-entropies, focal included, softmax for the
categorical ones) the model hands
the loss the logits instead, and the loss uses the fused log-sum-exp form: finite for
logits of any size, and with the simple gradient ``activation(z) - y``.
"""
import re

import numpy as np

from .arrays import module_of, to_host
from .loss_utils import (EPSILON, _as_float, _clip, _fits, _log_softmax, _pixels, _reshape_like,  # noqa: F401
                         _sigmoid, _weights_for, check_sample_weight)


class Loss:
    """Base class of the losses. A loss of your own subclasses it and defines two methods
    (scratchnet differentiates nothing it was not told how to):

    - ``call(y_true, y_pred)``: the loss of each sample, shape (N,) (or (N, ...): then the
      mean over all its values, as Keras reduces it);
    - ``gradient(y_true, y_pred)``: the gradient of the sum of call's values with respect
      to ``y_pred``, shaped like it.

    ``scratchnet.gradcheck.check_loss`` compares the two with central differences. y_true
    arrives as floats shaped like y_pred (override ``prepare_targets`` for other targets).
    The built-in losses implement ``_from_logits`` and ``_from_probabilities`` instead, each
    returning (per-sample loss, gradient of their sum)."""

    fused_activation = None   # the output activation this loss can take the logits of
    default_name = None

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None, *, from_logits=False):
        # Keras's order (name, reduction, dtype): a loss of your own may call super().__init__(name)
        if reduction not in ("sum_over_batch_size", "auto"):
            raise ValueError(f"{type(self).__name__}: scratchnet reduces a batch's loss as Keras's default does "
                             f"(reduction='sum_over_batch_size'); got reduction={reduction!r}")
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: from_logits must be True or False, got {from_logits!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.from_logits = bool(from_logits)
        self.name = name or self.default_name or _snake_case(type(self).__name__)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__ != __name__ and _own_math(cls):
            cls.fused_activation = None    # its call sees the model's outputs as they are, never logits

    def _value_and_grad_of(self, logits):
        """The function computing (per-sample loss, gradient of their sum): a user's own
        call/gradient where the class defines them (a subclass of a built-in loss included)."""
        if _own_math(type(self)):
            return Loss._from_probabilities.__get__(self)
        return self._from_logits if logits else self._from_probabilities

    def call(self, y_true, y_pred):
        """The loss of each sample (what a loss of your own defines)."""
        return self._from_logits(y_true, y_pred)[0] if self.from_logits else \
            self._from_probabilities(y_true, y_pred)[0]

    def gradient(self, y_true, y_pred):
        """The gradient of sum(call(y_true, y_pred)) with respect to y_pred (what a loss of
        your own defines)."""
        return self._from_logits(y_true, y_pred)[1] if self.from_logits else \
            self._from_probabilities(y_true, y_pred)[1]

    def _from_probabilities(self, y, p):
        # a loss of your own: its call and gradient, reduced to one value per sample
        _check_defined(type(self))
        values, grad = self.call(y, p), self.gradient(y, p)
        if getattr(grad, "shape", None) != p.shape:
            raise ValueError(f"{self.name}: gradient() must return an array shaped like y_pred {p.shape}, got "
                             f"{getattr(grad, 'shape', type(grad).__name__)}")
        values = values.reshape(p.shape[0], -1)
        per_sample = values.mean(axis=1)
        return per_sample, (grad / grad.dtype.type(values.shape[1])).astype(p.dtype, copy=False)

    _from_logits = _from_probabilities

    @classmethod
    def is_defined_by_user(cls):
        return cls.__module__ != __name__

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Mean loss of a batch, as a float (``y_pred`` on the host or the device); with
        ``sample_weight`` (one weight per sample, or per pixel), the weighted sum over the batch
        size (times the pixels of a sample), as Keras."""
        xp = module_of(y_pred)
        if xp is np:
            y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(np.float64)
        y = self.prepare_targets(to_host(y_true), y_pred.shape, y_pred.dtype)
        if sample_weight is not None:
            sample_weight = xp.asarray(check_sample_weight(to_host(sample_weight), y_pred.shape[0], y_pred.dtype,
                                                           pixel_shape=y_pred.shape[1:-1]))
        return self.value_and_grad(xp.asarray(y), y_pred, sample_weight=sample_weight)[0]

    def value_and_grad(self, y_true, y_pred, from_logits=None, sample_weight=None, batch_size=None):
        """(mean loss over the batch as a float, d(mean loss)/d(y_pred)); y_true already
        prepared, ``sample_weight`` None, one weight per sample or one per pixel (the loss is
        then sum(w * loss) / (batch size * pixels of a sample), as Keras reduces it).
        ``batch_size`` divides instead of the samples given: the global batch of which they
        are one process's share, in data-parallel training. The float is the one copy from
        the device a training step makes."""
        logits = self.from_logits if from_logits is None else from_logits
        values, grad = self._value_and_grad_of(logits)(y_true, y_pred)
        n = y_pred.shape[0] if batch_size is None else batch_size
        count = n * _pixels(values)     # Keras's 'sum_over_batch_size' divides by every loss value
        if sample_weight is not None:
            values = values * _weights_for(values, sample_weight, self.name)
            grad *= _weights_for(grad, sample_weight, self.name)
        grad /= grad.dtype.type(count)
        return float(values.sum(dtype=np.float64) / count), grad

    def total(self, y_true, y_pred, from_logits=None, sample_weight=None):
        """Sum of the (weighted) per-sample losses of a batch (a sample's loss: the mean over
        its pixels), as a 0-d float64 array where the outputs are (evaluation adds these up
        on the device and reads the sum once)."""
        logits = self.from_logits if from_logits is None else from_logits
        values, _ = self._value_and_grad_of(logits)(y_true, y_pred)
        if sample_weight is not None:
            values = values * _weights_for(values, sample_weight, self.name)
        return values.sum(dtype=np.float64) / _pixels(values)

    def prepare_targets(self, y, output_shape, dtype):
        """Targets as the loss reads them: floats shaped like the outputs."""
        return _reshape_like(_as_float(y, dtype, self.name), output_shape, self.name)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}

    def __repr__(self):
        return f"<{type(self).__name__} from_logits={self.from_logits}>"


class _BuiltinLoss(Loss):
    """The built-in losses take from_logits first, as Keras's do."""

    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name, reduction, dtype, from_logits=from_logits)


class _Smoothing:
    """Keras's label_smoothing: targets squeezed towards the uniform ``1 / classes`` (1/2 for
    binary targets) by ``label_smoothing`` in [0, 1], before the loss sees them."""

    smoothing_classes = None      # None: the last axis (categorical); 2 for binary targets

    def _set_smoothing(self, label_smoothing, axis):
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.number)) \
                or not 0 <= label_smoothing <= 1:
            raise ValueError(f"{type(self).__name__}: label_smoothing must be a number in [0, 1], "
                             f"got {label_smoothing!r}")
        if axis != -1:
            raise ValueError(f"{type(self).__name__}: scratchnet reduces the last axis (axis=-1); got axis={axis!r}")
        self.label_smoothing = float(label_smoothing)

    def _smooth(self, y):
        if not self.label_smoothing:
            return y
        classes = self.smoothing_classes or y.shape[-1]
        ls = y.dtype.type(self.label_smoothing)
        return y * (1 - ls) + ls / y.dtype.type(classes)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class BinaryCrossentropy(_Smoothing, _BuiltinLoss):
    """-(y log p + (1-y) log(1-p)), averaged over the last axis then the batch; with
    ``label_smoothing`` the targets are y (1 - ls) + ls / 2, as Keras."""

    default_name = "binary_crossentropy"
    fused_activation = "sigmoid"
    smoothing_classes = 2

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name=None, dtype=None):
        super().__init__(from_logits, name, reduction, dtype)
        self._set_smoothing(label_smoothing, axis)

    def prepare_targets(self, y, output_shape, dtype):
        y = _reshape_like(_as_float(y, dtype, self.name), output_shape, self.name)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{self.name} expects targets in [0, 1], got values from "
                             f"{y.min()} to {y.max()}")
        return y

    def _from_logits(self, y, z):
        # log(1 + exp(-|z|)) + max(z, 0) - z*y  ==  -(y log s(z) + (1-y) log(1-s(z)))
        y = self._smooth(y)
        per_element = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        k = z.shape[-1]
        return per_element.mean(axis=-1), (_sigmoid(z) - y) / z.dtype.type(k)

    def _from_probabilities(self, y, p):
        y = self._smooth(y)
        pc, inside = _clip(p)
        per_element = -(y * np.log(pc) + (1 - y) * np.log1p(-pc))
        k = p.shape[-1]
        grad = (-y / pc + (1 - y) / (1 - pc)) * inside / p.dtype.type(k)
        return per_element.mean(axis=-1), grad


class CategoricalCrossentropy(_Smoothing, _BuiltinLoss):
    """-sum(y log p) over the last axis, y one-hot (or any distribution); with
    ``label_smoothing`` the targets are y (1 - ls) + ls / classes, as Keras."""

    default_name = "categorical_crossentropy"
    fused_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name=None, dtype=None):
        super().__init__(from_logits, name, reduction, dtype)
        self._set_smoothing(label_smoothing, axis)

    def prepare_targets(self, y, output_shape, dtype):
        y_arr = to_host(y)
        output_shape = tuple(output_shape)
        if output_shape[-1] != 1 and (_fits(y_arr.shape, output_shape[:-1]) or
                                      _fits(y_arr.shape, output_shape[:-1] + (1,))):
            raise ValueError(f"{self.name} expects one-hot targets of shape {output_shape}, "
                             f"got integer labels of shape {y_arr.shape}; use "
                             f"sparse_categorical_crossentropy for those")
        y = _as_float(y_arr, dtype, self.name)
        if not _fits(y.shape, output_shape):
            raise ValueError(f"{self.name}: targets of shape {y.shape} do not match outputs of "
                             f"shape {tuple(output_shape)}")
        return y

    def _from_logits(self, y, z):
        y = self._smooth(y)
        log_p = _log_softmax(z)
        total = y.sum(axis=-1, keepdims=True)
        return -(y * log_p).sum(axis=-1), np.exp(log_p) * total - y

    def _from_probabilities(self, y, p):
        y = self._smooth(y)
        s = p.sum(axis=-1, keepdims=True)
        q = p / s
        qc, inside = _clip(q)
        dq = -y / qc * inside
        return -(y * np.log(qc)).sum(axis=-1), (dq - (dq * q).sum(axis=-1, keepdims=True)) / s


class SparseCategoricalCrossentropy(_BuiltinLoss):
    """-log p[label] with integer labels in [0, classes)."""

    default_name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def prepare_targets(self, y, output_shape, dtype):
        """Integer labels: (N,) or (N, 1) for an (N, K) output; (N, H, W) or (N, H, W, 1),
        one per pixel, for an (N, H, W, K) one."""
        y = to_host(y)
        output_shape = tuple(output_shape)
        classes, label_shape = output_shape[-1], output_shape[:-1]
        if _fits(y.shape, label_shape + (1,)):
            y = y[..., 0]
        if not _fits(y.shape, label_shape):
            what = "one per pixel, " if len(label_shape) > 1 else ""
            raise ValueError(f"{self.name} expects integer labels of shape {label_shape} ({what}or "
                             f"{label_shape + (1,)}) for outputs of shape {output_shape}, got {y.shape}")
        if y.dtype.kind == "f":
            if not np.isfinite(y).all() or (y != np.round(y)).any():
                raise ValueError(f"{self.name} expects integer class labels, got non-integer values")
        elif y.dtype.kind not in "biu":
            raise TypeError(f"{self.name} expects integer class labels, got dtype {y.dtype}")
        bad = (y < 0) | (y >= classes)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            at = f"sample {where[0]}" + (f", pixel {where[1:]}" if len(where) > 1 else "")
            raise ValueError(f"{self.name}: labels must be in [0, {classes}) for a {classes}-class output; got "
                             f"{y[where].item()} at {at} ({int(bad.sum())} label(s) out of range, values "
                             f"from {y.min()} to {y.max()})")
        return y.astype(np.intp)

    def _from_logits(self, y, z):
        flat, labels = z.reshape(-1, z.shape[-1]), y.reshape(-1)     # one row per pixel (per sample)
        log_p = _log_softmax(flat)
        rows = module_of(z).arange(flat.shape[0])
        grad = np.exp(log_p)
        grad[rows, labels] -= 1
        return -log_p[rows, labels].reshape(z.shape[:-1]), grad.reshape(z.shape)

    def _from_probabilities(self, y, p):
        flat, labels = p.reshape(-1, p.shape[-1]), y.reshape(-1)
        rows = module_of(p).arange(flat.shape[0])
        s = flat.sum(axis=-1, keepdims=True)
        q = flat / s
        qc, inside = _clip(q[rows, labels])
        dq = np.zeros_like(flat)
        dq[rows, labels] = -1 / qc * inside
        grad = (dq - (dq * q).sum(axis=-1, keepdims=True)) / s
        return -np.log(qc).reshape(p.shape[:-1]), grad.reshape(p.shape)


class MeanSquaredError(_BuiltinLoss):
    """mean((y - p)^2) over the last axis."""

    default_name = "mean_squared_error"

    def prepare_targets(self, y, output_shape, dtype):
        return _reshape_like(_as_float(y, dtype, self.name), output_shape, self.name)

    def _from_probabilities(self, y, p):
        diff = p - y
        return (diff * diff).mean(axis=-1), 2 * diff / p.dtype.type(p.shape[-1])

    _from_logits = _from_probabilities


class MeanAbsoluteError(_BuiltinLoss):
    """mean(|y - p|) over the last axis; the gradient sign(p - y) (0 where they are equal, as
    TensorFlow's abs)."""

    default_name = "mean_absolute_error"

    def prepare_targets(self, y, output_shape, dtype):
        return _reshape_like(_as_float(y, dtype, self.name), output_shape, self.name)

    def _from_probabilities(self, y, p):
        diff = p - y
        return np.abs(diff).mean(axis=-1), np.sign(diff) / p.dtype.type(p.shape[-1])

    _from_logits = _from_probabilities



class Huber(_BuiltinLoss):
    """mean over the last axis of 0.5 e^2 where |e| <= delta, else delta |e| - 0.5 delta^2
    (e = p - y); the gradient e or delta sign(e). Named 'huber_loss', as Keras."""

    default_name = "huber_loss"

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name=None, dtype=None):
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.number)) or not delta >= 0:
            raise ValueError(f"Huber: delta must be a number >= 0, got {delta!r}")
        super().__init__(False, name, reduction, dtype)
        self.delta = float(delta)

    prepare_targets = MeanSquaredError.prepare_targets

    def _from_probabilities(self, y, p):
        e = p - y
        d = p.dtype.type(self.delta)
        small = np.abs(e) <= d
        values = np.where(small, 0.5 * e * e, d * np.abs(e) - 0.5 * d * d)
        grad = np.where(small, e, d * np.sign(e))
        return values.mean(axis=-1), (grad / p.dtype.type(p.shape[-1])).astype(p.dtype, copy=False)

    _from_logits = _from_probabilities

    def get_config(self):
        return {"name": self.name, "delta": self.delta}


class KLDivergence(_BuiltinLoss):
    """sum over the last axis of y log(y / p), y and p clipped to [1e-7, 1] as Keras; the
    gradient -y / p where the clip leaves p as it is."""

    default_name = "kl_divergence"

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(False, name, reduction, dtype)

    prepare_targets = MeanSquaredError.prepare_targets

    def _from_probabilities(self, y, p):
        yc = np.clip(y, EPSILON, 1)
        pc = np.clip(p, EPSILON, 1)
        values = (yc * np.log(yc / pc)).sum(axis=-1)
        return values, (-yc / pc * (pc == p)).astype(p.dtype, copy=False)

    _from_logits = _from_probabilities

    def get_config(self):
        return {"name": self.name}


def _focal_power(base, gamma):
    """(base ** gamma, gamma * base ** (gamma - 1)), the second 0 where base is 0 and gamma <= 1
    (the derivative's one-sided limit is taken as Keras's tape gives it nowhere finite)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        power = base ** gamma
        slope = gamma * base ** (gamma - 1) if gamma else np.zeros_like(base)
    return power, np.where(np.isfinite(slope), slope, 0)


class BinaryFocalCrossentropy(_Smoothing, _BuiltinLoss):
    """Keras 3's binary focal loss: mean over the last axis of w (1 - p_t)^gamma bce, with
    p_t = y p + (1 - y)(1 - p), bce the binary cross-entropy, w = y alpha + (1 - y)(1 - alpha)
    where ``apply_class_balancing`` (else 1), y label-smoothed first. From logits (a sigmoid
    head fused into it) bce is the exact softplus form, not clipped as Keras clips
    sigmoid(z) (the two differ only for |z| > ~16)."""

    default_name = "binary_focal_crossentropy"
    fused_activation = "sigmoid"
    smoothing_classes = 2
    prepare_targets = BinaryCrossentropy.prepare_targets

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                 axis=-1, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(from_logits, name, reduction, dtype)
        self._set_smoothing(label_smoothing, axis)
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha, self.gamma = _focal_settings(self, alpha, gamma)

    def _focal(self, y, p, bce, dbce, dp):
        """Per-sample loss and gradient from bce and its derivative; ``dp``: dp/d(input)."""
        pt = y * p + (1 - y) * (1 - p)
        factor, slope = _focal_power(1 - pt, self.gamma)
        weight = y * self.alpha + (1 - y) * (1 - self.alpha) if self.apply_class_balancing else 1
        values = weight * factor * bce
        grad = weight * (factor * dbce - slope * (2 * y - 1) * dp * bce)
        k = p.dtype.type(p.shape[-1])
        return values.mean(axis=-1), (grad / k).astype(p.dtype, copy=False)

    def _from_logits(self, y, z):
        y = self._smooth(y)
        s = _sigmoid(z)
        bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return self._focal(y, s, bce, s - y, s * (1 - s))

    def _from_probabilities(self, y, p):
        y = self._smooth(y)
        pc, inside = _clip(p)
        bce = -(y * np.log(pc) + (1 - y) * np.log1p(-pc))
        return self._focal(y, p, bce, (-y / pc + (1 - y) / (1 - pc)) * inside, 1)

    def get_config(self):
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma}


class CategoricalFocalCrossentropy(_Smoothing, _BuiltinLoss):
    """Keras 3's categorical focal loss: -sum over the last axis of alpha (1 - q)^gamma y log q,
    q = p / sum(p) clipped to [1e-7, 1 - 1e-7], y label-smoothed first. From logits (a softmax
    head fused into it) q is the exact softmax with log q from log-softmax, unclipped."""

    default_name = "categorical_focal_crossentropy"
    fused_activation = "softmax"
    prepare_targets = CategoricalCrossentropy.prepare_targets

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(from_logits, name, reduction, dtype)
        self._set_smoothing(label_smoothing, axis)
        self.alpha, self.gamma = _focal_settings(self, alpha, gamma)

    def _from_logits(self, y, z):
        y = self._smooth(y)
        log_q = _log_softmax(z)
        q = np.exp(log_q)
        factor, slope = _focal_power(1 - q, self.gamma)
        a = z.dtype.type(self.alpha)
        values = -(a * factor * y * log_q).sum(axis=-1)
        b = -a * y * (factor - slope * q * log_q)       # q * dL/dq, finite where q is tiny
        return values, (b - q * b.sum(axis=-1, keepdims=True)).astype(z.dtype, copy=False)

    def _from_probabilities(self, y, p):
        y = self._smooth(y)
        s = p.sum(axis=-1, keepdims=True)
        q = p / s
        qc, inside = _clip(q)
        factor, slope = _focal_power(1 - qc, self.gamma)
        a = p.dtype.type(self.alpha)
        log_q = np.log(qc)
        values = -(a * factor * y * log_q).sum(axis=-1)
        dq = -a * y * (factor / qc - slope * log_q) * inside
        return values, ((dq - (dq * q).sum(axis=-1, keepdims=True)) / s).astype(p.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


def _focal_settings(loss, alpha, gamma):
    for what, value in (("alpha", alpha), ("gamma", gamma)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0:
            raise ValueError(f"{type(loss).__name__}: {what} must be a number >= 0, got {value!r}")
    return float(alpha), float(gamma)

_CLASSES = {cls.default_name: cls for cls in (BinaryCrossentropy, CategoricalCrossentropy,
                                               SparseCategoricalCrossentropy, MeanSquaredError,
                                               MeanAbsoluteError, Huber, KLDivergence, BinaryFocalCrossentropy,
                                               CategoricalFocalCrossentropy)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "huber": "huber_loss",
            "kld": "kl_divergence"}


def get_class(class_name):
    """The Loss class called ``class_name`` (used when loading model files)."""
    classes = {cls.__name__: cls for cls in _CLASSES.values()}
    if class_name not in classes:
        raise ValueError(f"unknown loss class {class_name!r}; expected one of {sorted(classes)}")
    return classes[class_name]


HOW_TO_WRITE_ONE = ("write it as a subclass of scratchnet.losses.Loss with call(y_true, y_pred) (the loss of each "
                    "sample) and gradient(y_true, y_pred) (the gradient of their sum with respect to y_pred), "
                    "and check the pair with scratchnet.gradcheck.check_loss")


def get(identifier):
    """A Loss instance from a Keras name ('binary_crossentropy', ...), a Loss class or
    instance, or one of this module's loss functions (losses.categorical_crossentropy)."""
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        identifier = identifier()
    if isinstance(identifier, Loss):
        _check_defined(type(identifier))
        return identifier
    if callable(identifier) and getattr(identifier, "loss_class", None) is not None:
        return identifier.loss_class()
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name in _CLASSES:
            return _CLASSES[name]()
    if callable(identifier):
        name = getattr(identifier, "__name__", type(identifier).__name__)
        raise TypeError(f"the loss {name!r} is a Python function, which scratchnet cannot differentiate "
                        f"(it has no tape); {HOW_TO_WRITE_ONE}")
    valid = sorted(_CLASSES) + sorted(_ALIASES)
    raise ValueError(f"unknown loss {identifier!r}; expected one of {valid}, a Loss class or instance")


def _own_math(cls):
    """True where a user's class defines call and gradient (its own value and derivative)."""
    return cls.is_defined_by_user() and cls.call is not Loss.call and cls.gradient is not Loss.gradient


def _check_defined(cls):
    """TypeError unless a loss class of the user's says how to compute its value and gradient:
    both call and gradient, or neither (a subclass of a built-in loss, which computes both)."""
    if not cls.is_defined_by_user():
        return
    defined = [m for m in ("call", "gradient") if getattr(cls, m) is not getattr(Loss, m)]
    if len(defined) == 2 or (not defined and cls._from_probabilities is not Loss._from_probabilities):
        return
    missing = [m for m in ("call", "gradient") if m not in defined]
    if missing:
        raise TypeError(f"the loss {cls.__name__} defines no {' and no '.join(m + '()' for m in missing)}; "
                        f"{HOW_TO_WRITE_ONE}")


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _per_sample(loss_class):
    def function(y_true, y_pred, *args, **kwargs):
        loss = loss_class(*args, **kwargs)    # Keras's arguments after y_pred, in the class's order
        xp = module_of(y_pred)
        y_pred = xp.asarray(y_pred)
        y_pred = y_pred.astype(np.result_type(y_pred.dtype, np.float32), copy=False)
        y = xp.asarray(loss.prepare_targets(y_true, y_pred.shape, y_pred.dtype))
        return (loss._from_logits if loss.from_logits else loss._from_probabilities)(y, y_pred)[0]
    function.__name__ = loss_class.default_name
    function.loss_class = loss_class
    function.__doc__ = f"Per-sample {loss_class.default_name}, as keras.losses.{loss_class.default_name}."
    return function


binary_crossentropy = _per_sample(BinaryCrossentropy)
categorical_crossentropy = _per_sample(CategoricalCrossentropy)
sparse_categorical_crossentropy = _per_sample(SparseCategoricalCrossentropy)
mean_squared_error = mse = _per_sample(MeanSquaredError)
mean_absolute_error = mae = _per_sample(MeanAbsoluteError)
huber = _per_sample(Huber)
kl_divergence = kld = _per_sample(KLDivergence)
binary_focal_crossentropy = _per_sample(BinaryFocalCrossentropy)
categorical_focal_crossentropy = _per_sample(CategoricalFocalCrossentropy)
_FUNCTIONS = ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "mean_squared_error",
              "mse", "mean_absolute_error", "mae", "huber", "kl_divergence", "kld", "binary_focal_crossentropy",
              "categorical_focal_crossentropy"]


def __getattr__(name):
    """A Keras loss scratchnet lacks: the nearest one it has, and all of them."""
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import missing
    raise missing("losses", name, [cls.__name__ for cls in _CLASSES.values()] + _FUNCTIONS,
                  ", and a Loss subclass of your own (" + HOW_TO_WRITE_ONE + ")")
