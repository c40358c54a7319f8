"""Weight constraints with Keras's names, formulas and defaults.

A constraint ``c`` projects a weight after each optimizer update: ``w[...] = c(w)``, as
Keras 3's optimizer does after applying the gradients (``optimizers/base.py``). A layer
takes them as ``kernel_constraint=`` and ``bias_constraint=`` (and ``depthwise_``/
``pointwise_``/``gamma_``/``beta_constraint`` where it has those weights). Any function
``w -> w`` may be one; only the built-in ones can be saved in a model file.
"""
from . import keras_objects
from .arrays import module_of

EPSILON = 1e-7      # Keras's backend.epsilon(), added to the norms divided by


class Constraint(keras_objects.KerasObject):
    """Base class: ``__call__(w) -> w`` projected (the identity here), ``get_config``."""

    def __call__(self, w):
        return w


def _axis(axis):
    return tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)


def _norms(w, axis):
    xp = module_of(w)
    return xp.sqrt((w * w).sum(axis=_axis(axis), keepdims=True))


class MaxNorm(Constraint):
    """Scale down each slice along ``axis`` whose L2 norm exceeds ``max_value``: for a Dense
    kernel (in, out) with axis=0, each unit's incoming weights; for a Conv2D kernel, use
    axis=[0, 1, 2]. w * clip(norm, 0, max_value) / (1e-7 + norm)."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        xp = module_of(w)
        norms = _norms(w, self.axis)
        desired = xp.clip(norms, 0, w.dtype.type(self.max_value))
        return w * (desired / (w.dtype.type(EPSILON) + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """max(w, 0): weights stay non-negative."""

    def __call__(self, w):
        return module_of(w).maximum(w, w.dtype.type(0))


class UnitNorm(Constraint):
    """w / (1e-7 + norm along ``axis``): each slice of unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (w.dtype.type(EPSILON) + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Each slice's norm moved towards [min_value, max_value] by ``rate`` (1: all the way):
    w * (rate * clip(norm, min, max) + (1 - rate) * norm) / (1e-7 + norm)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        xp = module_of(w)
        t = w.dtype.type
        norms = _norms(w, self.axis)
        desired = t(self.rate) * xp.clip(norms, t(self.min_value), t(self.max_value)) + t(1 - self.rate) * norms
        return w * (desired / (t(EPSILON) + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


_CLASSES = {cls.__name__: cls for cls in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_NAMES = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}


def get(identifier, where="constraint"):
    """A constraint from None, a name ('max_norm'), a class, a config dict (as Keras files keep
    it), an instance or any function w -> w; ValueError naming ``where`` otherwise."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"{where}: unknown constraint {identifier!r}; expected one of "
                             f"{sorted(set(_NAMES) | set(_CLASSES))}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier, where)
    if isinstance(identifier, type) and issubclass(identifier, Constraint):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"{where}: expected a constraint (a name such as 'max_norm', MaxNorm/NonNeg/UnitNorm/MinMaxNorm, "
                     f"or a function w -> w), got {identifier!r}")


def serialize(constraint):
    """Keras 3's form, {'module', 'class_name', 'config', 'registered_name'}; None for None."""
    return keras_objects.serialize(constraint, _CLASSES, "keras.constraints", "constraint")


def deserialize(config, where="constraint"):
    """The constraint a Keras config dict describes (Keras 3's or tf.keras 2's form); nothing
    in it is run."""
    return keras_objects.deserialize(config, {**_NAMES, **_CLASSES}, "constraint", where)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import missing
    raise missing("constraints", name, _CLASSES)


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
