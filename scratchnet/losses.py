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
import numpy as np

from .arrays import module_of, to_host
from .loss_base import HOW_TO_WRITE_ONE, Loss, _BuiltinLoss, _Smoothing, _check_defined  # noqa: F401
from .loss_utils import (EPSILON, _as_float, _clip, _fits, _log_softmax, _pixels, _reshape_like,  # noqa: F401
                         _sigmoid, _weights_for, check_sample_weight)


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
    """-log p[label] with integer labels in [0, classes). With ``ignore_class``, a label of
    that value (e.g. 255 or -1 for a segmentation's unlabelled pixels) adds nothing, and the
    batch's loss is the mean over the other labels, as Keras 3."""

    default_name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, name=None, reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(from_logits, name, reduction, dtype)
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(ignore_class, (int, np.integer))):
            raise TypeError(f"{type(self).__name__}: ignore_class must be an int label or None, got {ignore_class!r}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}

    def _count(self, y_true, values, batch_size=None):
        if self.ignore_class is None:
            return super()._count(y_true, values, batch_size)
        if batch_size is not None and batch_size != values.shape[0]:
            raise NotImplementedError(f"{self.name}: ignore_class in data-parallel training is not supported: the mean "
                                      f"over the labels kept needs their count over every rank's share")
        return int((y_true != self.ignore_class).sum())

    def _value_and_grad_of(self, logits, kernels=None):
        compute = super()._value_and_grad_of(logits)
        fused = getattr(kernels, "softmax_cross_entropy", None)
        if fused is None or compute != self._from_logits:
            return compute
        return lambda y, z: self._kept(lambda labels, logits_: self._kernel_loss(fused, labels, logits_), y, z)

    @staticmethod
    def _kernel_loss(fused, y, z):
        values, grad = fused(z.reshape(-1, z.shape[-1]), y.reshape(-1))   # the kernel set's, one row per pixel
        return values.reshape(z.shape[:-1]), grad.reshape(z.shape)

    def _from_logits(self, y, z):
        return self._kept(self._logits_loss, y, z)

    def _from_probabilities(self, y, p):
        return self._kept(self._probabilities_loss, y, p)

    def _kept(self, loss, y, z):
        """The per-label loss and its gradient, zero where the label is ``ignore_class``."""
        if self.ignore_class is None:
            return loss(y, z)
        ignored = y == self.ignore_class
        values, grad = loss(module_of(z).where(ignored, 0, y), z)
        values[ignored], grad[ignored] = 0, 0
        return values, grad

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
        if self.ignore_class is not None:
            bad &= y != self.ignore_class
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            at = f"sample {where[0]}" + (f", pixel {where[1:]}" if len(where) > 1 else "")
            raise ValueError(f"{self.name}: labels must be in [0, {classes}) for a {classes}-class output; got "
                             f"{y[where].item()} at {at} ({int(bad.sum())} label(s) out of range, values "
                             f"from {y.min()} to {y.max()})")
        return y.astype(np.intp)

    def _logits_loss(self, y, z):
        flat, labels = z.reshape(-1, z.shape[-1]), y.reshape(-1)     # one row per pixel (per sample)
        log_p = _log_softmax(flat)
        rows = module_of(z).arange(flat.shape[0])
        grad = np.exp(log_p)
        grad[rows, labels] -= 1
        return -log_p[rows, labels].reshape(z.shape[:-1]), grad.reshape(z.shape)

    def _probabilities_loss(self, y, p):
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
