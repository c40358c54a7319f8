"""The Loss base class (what a loss of one's own subclasses), the built-in losses' base and
Keras's label smoothing; the losses themselves are in ``losses.py``."""
import re

import numpy as np

from .arrays import module_of, to_host
from .loss_utils import _as_float, _pixels, _reshape_like, _weights_for, check_sample_weight

BUILTIN_MODULES = (__name__, __name__.rpartition(".")[0] + ".losses")     # where scratchnet's own losses live


HOW_TO_WRITE_ONE = ("write it as a subclass of scratchnet.losses.Loss with call(y_true, y_pred) (the loss of each "
                    "sample) and gradient(y_true, y_pred) (the gradient of their sum with respect to y_pred), "
                    "and check the pair with scratchnet.gradcheck.check_loss")


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
        if cls.__module__ not in BUILTIN_MODULES and _own_math(cls):
            cls.fused_activation = None    # its call sees the model's outputs as they are, never logits

    def _value_and_grad_of(self, logits, kernels=None):
        """The function computing (per-sample loss, gradient of their sum): a user's own
        call/gradient where the class defines them (a subclass of a built-in loss included);
        ``kernels``, the model's kernel set, for a loss that has a kernel of its own."""
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
        return cls.__module__ not in BUILTIN_MODULES

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

    def value_and_grad(self, y_true, y_pred, from_logits=None, sample_weight=None, batch_size=None, kernels=None):
        """(mean loss over the batch as a float, d(mean loss)/d(y_pred)); y_true already
        prepared, ``sample_weight`` None, one weight per sample or one per pixel (the loss is
        then sum(w * loss) / (batch size * pixels of a sample), as Keras reduces it).
        ``batch_size`` divides instead of the samples given: the global batch of which they
        are one process's share, in data-parallel training. The float is the one copy from
        the device a training step makes. ``kernels``: the model's kernel set (backend), for
        the losses that have a kernel there."""
        logits = self.from_logits if from_logits is None else from_logits
        values, grad = self._value_and_grad_of(logits, kernels)(y_true, y_pred)
        count = max(self._count(y_true, values, batch_size), 1)
        if sample_weight is not None:
            values = values * _weights_for(values, sample_weight, self.name)
            grad *= _weights_for(grad, sample_weight, self.name)
        grad /= grad.dtype.type(count)
        return float(values.sum(dtype=np.float64) / count), grad

    def _count(self, y_true, values, batch_size=None):
        """What Keras's 'sum_over_batch_size' divides a batch's loss by: its number of loss
        values (``batch_size`` samples, when given, instead of those here)."""
        return (values.shape[0] if batch_size is None else batch_size) * _pixels(values)

    def total(self, y_true, y_pred, from_logits=None, sample_weight=None, kernels=None):
        """Sum of the (weighted) per-sample losses of a batch (a sample's loss: the mean over
        its pixels), as a 0-d float64 array where the outputs are (evaluation adds these up
        on the device and reads the sum once)."""
        logits = self.from_logits if from_logits is None else from_logits
        values, _ = self._value_and_grad_of(logits, kernels)(y_true, y_pred)
        if sample_weight is not None:
            values = values * _weights_for(values, sample_weight, self.name)
        per_sample = self._count(y_true, values) / values.shape[0]     # a batch's mean loss counts n times
        return values.sum(dtype=np.float64) / per_sample if per_sample else values.sum(dtype=np.float64)

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
