"""Loss functions with their gradients, named as in ``keras.losses``.

Each loss returns the batch mean (Keras's 'sum over batch size') and its gradient with
respect to the model output. The last axis of the output is reduced to one loss per sample,
or, for an output with pixels such as a segmentation model's (N, H, W, K), one loss per
pixel; the mean then runs over every pixel of every sample, as in Keras, and sample weights
may weigh samples (N,) or pixels (N, H, W). When the model's last activation is the one a
loss can absorb (sigmoid for binary, softmax for categorical cross-entropy) the model hands
the loss the logits instead, and the loss uses the fused log-sum-exp form: finite for
logits of any size, and with the simple gradient ``activation(z) - y``.
"""
import re

import numpy as np

from .arrays import module_of, to_host

EPSILON = 1e-7  # Keras's clip for probabilities


def _sigmoid(z):
    return np.exp(-np.logaddexp(0, -z)).astype(z.dtype, copy=False)


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _clip(p):
    """Clipped probabilities and a mask of where the clip did nothing (gradient flows)."""
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    return pc, (pc == p)


def _as_float(y, dtype, loss_name):
    y = to_host(y)   # targets are checked on the host (a device array is copied explicitly)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{loss_name} expects numeric targets, got dtype {y.dtype}")
    y = y.astype(dtype, copy=False)
    if not np.isfinite(y).all():
        raise ValueError(f"{loss_name}: targets contain NaN or Inf")
    return y


def check_sample_weight(sample_weight, n, dtype, what="sample_weight", pixel_shape=()):
    """Finite weights in ``dtype``: one per sample, shape (n,), or, for outputs with pixels
    (``pixel_shape``, e.g. (H, W) of an (N, H, W, K) output), one per pixel, shape
    (n,) + pixel_shape. Taken too: (n, 1, ...) for one per sample, and a trailing axis of 1
    on the per-pixel shape, (n, H, W, 1), as Keras's losses squeeze it.

    Where Keras 3 differs: it multiplies (n,) weights into (n, H, W) losses by broadcasting
    against the last axis (an error unless n == W); here they weigh every pixel of their
    sample. Its fit fails on (n, H, W, 1) weights; here they are the (n, H, W) ones."""
    weights = np.asarray(sample_weight)
    pixel_shape = tuple(pixel_shape)
    per_pixel = (n,) + pixel_shape
    if pixel_shape and _fits(weights.shape, per_pixel + (1,)):
        weights = weights[..., 0]
    elif weights.ndim >= 2 and not _fits(weights.shape, per_pixel) and weights.shape[0] == n and weights.size == n:
        weights = weights.reshape(n)
    if weights.dtype.kind not in "biuf" or not (weights.shape == (n,) or _fits(weights.shape, per_pixel)):
        pixels = f", or one per pixel, shape {per_pixel}" if pixel_shape else ""
        raise ValueError(f"{what} must hold one number per sample, shape ({n},){pixels}; got "
                         f"{weights.dtype.name} of shape {weights.shape}")
    weights = weights.astype(dtype)
    if not np.isfinite(weights).all():
        where = np.argwhere(~np.isfinite(weights))[0]
        at = f"sample {int(where[0])}" + (f", pixel {tuple(int(i) for i in where[1:])}" if len(where) > 1 else "")
        raise ValueError(f"{what} must be finite; got {weights[~np.isfinite(weights)][0]} at {at}")
    return weights


def _weights_for(values, weights, loss_name):
    """``weights`` ((N,) or one per pixel) shaped to multiply ``values`` (per-pixel losses
    or their gradient)."""
    if weights.ndim > values.ndim:
        raise ValueError(f"{loss_name}: sample weights of shape {weights.shape} give one weight per pixel, but "
                         f"this loss gives one value per sample ({values.shape}); weigh whole samples instead")
    return weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))


def _pixels(values):
    """The loss values of one sample: 1, or the pixels of an (N, H, W) map of them."""
    return int(np.prod(values.shape[1:], dtype=np.int64))


def _fits(shape, pattern):
    """``shape`` is ``pattern``, where a None in the pattern (a size the model leaves open) fits any size."""
    return len(shape) == len(pattern) and all(p is None or p == s for s, p in zip(shape, pattern))


def _reshape_like(y, output_shape, loss_name):
    """Targets shaped like the outputs; (N,) targets fit (N, 1) outputs, (N, H, W) ones
    (N, H, W, 1) outputs."""
    output_shape = tuple(output_shape)
    if not _fits(y.shape, output_shape):
        if output_shape[-1] == 1 and _fits(y.shape, output_shape[:-1]):
            y = y[..., None]
        elif None not in output_shape and y.size == np.prod(output_shape) and y.shape[:1] == output_shape[:1]:
            y = y.reshape(output_shape)
    if not _fits(y.shape, output_shape):
        raise ValueError(f"{loss_name}: targets of shape {y.shape} do not match outputs of "
                         f"shape {output_shape}")
    return y


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


class BinaryCrossentropy(_BuiltinLoss):
    """-(y log p + (1-y) log(1-p)), averaged over the last axis then the batch."""

    default_name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def prepare_targets(self, y, output_shape, dtype):
        y = _reshape_like(_as_float(y, dtype, self.name), output_shape, self.name)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{self.name} expects targets in [0, 1], got values from "
                             f"{y.min()} to {y.max()}")
        return y

    def _from_logits(self, y, z):
        # log(1 + exp(-|z|)) + max(z, 0) - z*y  ==  -(y log s(z) + (1-y) log(1-s(z)))
        per_element = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        k = z.shape[-1]
        return per_element.mean(axis=-1), (_sigmoid(z) - y) / z.dtype.type(k)

    def _from_probabilities(self, y, p):
        pc, inside = _clip(p)
        per_element = -(y * np.log(pc) + (1 - y) * np.log1p(-pc))
        k = p.shape[-1]
        grad = (-y / pc + (1 - y) / (1 - pc)) * inside / p.dtype.type(k)
        return per_element.mean(axis=-1), grad


class CategoricalCrossentropy(_BuiltinLoss):
    """-sum(y log p) over the last axis, y one-hot (or any distribution)."""

    default_name = "categorical_crossentropy"
    fused_activation = "softmax"

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
        log_p = _log_softmax(z)
        total = y.sum(axis=-1, keepdims=True)
        return -(y * log_p).sum(axis=-1), np.exp(log_p) * total - y

    def _from_probabilities(self, y, p):
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


_CLASSES = {cls.default_name: cls for cls in (BinaryCrossentropy, CategoricalCrossentropy,
                                               SparseCategoricalCrossentropy, MeanSquaredError,
                                               MeanAbsoluteError)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}


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
    def function(y_true, y_pred, from_logits=False):
        loss = loss_class(from_logits=from_logits)
        xp = module_of(y_pred)
        y_pred = xp.asarray(y_pred)
        y_pred = y_pred.astype(np.result_type(y_pred.dtype, np.float32), copy=False)
        y = xp.asarray(loss.prepare_targets(y_true, y_pred.shape, y_pred.dtype))
        fn = loss._from_logits if from_logits else loss._from_probabilities
        return fn(y, y_pred)[0]
    function.__name__ = loss_class.default_name
    function.loss_class = loss_class
    function.__doc__ = f"Per-sample {loss_class.default_name}, as keras.losses.{loss_class.default_name}."
    return function


binary_crossentropy = _per_sample(BinaryCrossentropy)
categorical_crossentropy = _per_sample(CategoricalCrossentropy)
sparse_categorical_crossentropy = _per_sample(SparseCategoricalCrossentropy)
mean_squared_error = mse = _per_sample(MeanSquaredError)
mean_absolute_error = mae = _per_sample(MeanAbsoluteError)


def __getattr__(name):
    """A Keras loss scratchnet lacks: the nearest one it has, and all of them."""
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import missing
    functions = ["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
                 "mean_squared_error", "mse", "mean_absolute_error", "mae"]
    raise missing("losses", name, [cls.__name__ for cls in _CLASSES.values()] + functions,
                  ", and a Loss subclass of your own (" + HOW_TO_WRITE_ONE + ")")
