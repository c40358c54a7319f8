"""Weight and activity penalties with Keras's names, formulas and defaults.

A regularizer ``r`` is a penalty on one array: ``r(x)`` is its value (a float added to the
loss), ``r.gradient(x)`` is dr/dx (an array shaped as ``x``, added to the gradient). A
layer takes them as ``kernel_regularizer=``, ``bias_regularizer=`` (a penalty on a weight,
counted while the weight trains) and ``activity_regularizer=`` (a penalty on the layer's
output, divided by the batch size, as Keras 3). ``training/trainer.py`` adds them to the loss
and ``execute.py`` adds the activity penalties' gradients on the way back.

A regularizer of one's own subclasses ``Regularizer`` and gives both ``__call__`` and
``gradient``: scratchnet differentiates by hand, so a bare function cannot be a regularizer.
"""
import math

from . import keras_objects
from .arrays import module_of

EPSILON = 1e-7      # Keras's backend.epsilon(): the smallest norm OrthogonalRegularizer divides by


class Regularizer(keras_objects.KerasObject):
    """Base class: ``__call__(x) -> float``, ``gradient(x) -> array like x``, ``get_config``."""

    def __call__(self, x):
        raise NotImplementedError(f"{type(self).__name__} gives no penalty (__call__)")

    def gradient(self, x):
        raise NotImplementedError(f"{type(self).__name__} gives no gradient; a regularizer of one's own needs "
                                  f"gradient(x) -> dpenalty/dx as well as __call__")

    def check(self, shape, where):
        """ValueError, naming ``where``, when the penalty cannot apply to arrays of ``shape``."""


def _factor(value, name, who):
    """A non-negative finite float (Keras's check of a penalty factor)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{who}: {name} must be a non-negative number, got {value!r}")
    return float(value)


class L1L2(Regularizer):
    """l1 * sum(|x|) + l2 * sum(x**2); both 0 by default (``L1L2(l1=0.01)``)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(l1, "l1", type(self).__name__) or 0.0
        self.l2 = _factor(l2, "l2", type(self).__name__) or 0.0

    def __call__(self, x):
        xp = module_of(x)
        total = 0.0
        if self.l1:
            total += float(x.dtype.type(self.l1) * xp.abs(x).sum())
        if self.l2:
            total += float(x.dtype.type(self.l2) * (x * x).sum())
        return total

    def gradient(self, x):
        xp = module_of(x)
        grad = xp.zeros_like(x)
        if self.l1:
            grad += x.dtype.type(self.l1) * xp.sign(x)      # 0 at 0, as the gradient of |x| in Keras
        if self.l2:
            grad += x.dtype.type(2 * self.l2) * x
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|x|); ``'l1'`` gives l1=0.01."""

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(x**2); ``'l2'`` gives l2=0.01."""

    def __init__(self, l2=0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """factor * mean over pairs i != j of |u_i . u_j|, u the rows (``mode='rows'``) or columns
    (``'columns'``) of a 2-D weight scaled to unit length (a norm below 1e-7 counts as 1e-7):
    a push towards orthogonal rows or columns. Keras's formula, written as
    factor * 0.5 * sum_{i != j} |P_ij| / (n (n - 1) / 2) with P = U U^T."""

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor(factor, "factor", type(self).__name__)
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got {mode!r}")
        self.mode = mode

    def check(self, shape, where):
        if len(shape) != 2:
            raise ValueError(f"{where}: OrthogonalRegularizer takes a 2-D weight (a Dense kernel), got one of "
                             f"shape {tuple(shape)}")
        n = shape[0] if self.mode == "rows" else shape[1]
        if n < 2:
            raise ValueError(f"{where}: OrthogonalRegularizer(mode={self.mode!r}) needs at least 2 {self.mode} to "
                             f"compare, got a weight of shape {tuple(shape)}")

    def _unit_rows(self, w):
        # (U: the rows of w (columns: rows of w.T) each over max(|row|, EPSILON), the norms |row|,
        # U U^T), after checking the shape
        self.check(w.shape, "OrthogonalRegularizer")
        xp = module_of(w)
        rows = w if self.mode == "rows" else w.T
        norms = xp.sqrt((rows * rows).sum(axis=1, keepdims=True))
        u = rows / xp.maximum(norms, w.dtype.type(EPSILON))
        return u, norms, u @ u.T

    def __call__(self, w):
        u, _, product = self._unit_rows(w)
        n = u.shape[0]
        product = module_of(w).abs(product)
        off_diagonal = product.sum() - module_of(w).trace(product)
        return float(w.dtype.type(self.factor) * off_diagonal / w.dtype.type(n * (n - 1)))

    def gradient(self, w):
        xp = module_of(w)
        u, norms, product = self._unit_rows(w)
        n = u.shape[0]
        signs = xp.sign(product)
        signs[xp.arange(n), xp.arange(n)] = 0
        du = (2 * self.factor / (n * (n - 1))) * (signs @ u)          # d/dU of sum |U U^T| off the diagonal
        du = du.astype(w.dtype, copy=False)
        # through U = rows / max(|row|, EPSILON): where the norm is above EPSILON, it moves too
        eps = w.dtype.type(EPSILON)
        radial = (u * du).sum(axis=1, keepdims=True)
        drows = xp.where(norms <= eps, du, du - u * radial) / xp.maximum(norms, eps)
        return drows if self.mode == "rows" else drows.T

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


_CLASSES = {cls.__name__: cls for cls in (L1, L2, L1L2, OrthogonalRegularizer)}
# Keras's snake-case names; the name 'l1_l2' is tf.keras 2's (and Keras 3's documented) l1=l2=0.01
_NAMES = {"l1": L1, "l2": L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}
_DEFAULTS = {"l1_l2": lambda: L1L2(l1=0.01, l2=0.01)}


def get(identifier, where="regularizer"):
    """A Regularizer from None, a name ('l2'), a class, a config dict (as Keras files keep it)
    or an instance; ValueError naming ``where`` otherwise."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier in _DEFAULTS:
            return _DEFAULTS[identifier]()
        cls = _NAMES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"{where}: unknown regularizer {identifier!r}; expected one of "
                             f"{sorted(set(_NAMES) | set(_DEFAULTS) | set(_CLASSES))}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier, where)
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if callable(identifier):
        raise ValueError(f"{where}: {identifier!r} is a function; scratchnet needs a penalty's gradient as well as "
                         f"its value, so a regularizer of one's own subclasses scratchnet.regularizers.Regularizer "
                         f"with __call__(x) and gradient(x)")
    raise ValueError(f"{where}: expected a regularizer (a name such as 'l2', or L1/L2/L1L2/OrthogonalRegularizer), "
                     f"got {identifier!r}")


def serialize(regularizer):
    """Keras 3's form, {'module', 'class_name', 'config', 'registered_name'}; None for None."""
    return keras_objects.serialize(regularizer, _CLASSES, "keras.regularizers", "regularizer")


def deserialize(config, where="regularizer"):
    """The regularizer a Keras config dict describes (Keras 3's or tf.keras 2's form); nothing
    in it is run."""
    return keras_objects.deserialize(config, {**_NAMES, **_CLASSES}, "regularizer", where)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import missing
    raise missing("regularizers", name, _CLASSES)


l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer     # Keras 3's lower-case names
