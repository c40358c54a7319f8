"""Activation functions, each a forward ``f(z)`` and a hand-written backward. Most
backwards are written in terms of the output ``a = f(z)``, so a layer only has to keep
``a``; those that cannot be (swish, gelu, mish, ...: ``needs_input``) also get ``z``."""
import math

import numpy as np


class Activation:
    """A named elementwise (or, for softmax, row-wise) function and its derivative.
    ``variant(**options)`` makes the same function with Keras's keyword arguments
    (gelu's ``approximate``, elu's ``alpha``), so ``activations.gelu(x, approximate=True)``
    works as in Keras."""

    def __init__(self, name, forward, backward, needs_input=False, variant=None):
        self.name = name
        self.forward = forward      # z -> a
        self.backward = backward    # (da, a) -> dz, or (da, a, z) -> dz when needs_input
        self.needs_input = needs_input
        self.variant = variant

    def __call__(self, z, **options):
        if not options:
            return self.forward(z)
        if self.variant is None:
            raise TypeError(f"activation {self.name!r} takes no options, got {sorted(options)}")
        return self.variant(**options).forward(z)

    def gradient(self, da, a, z):
        """dL/dz from dL/da, the output a and the input z, whichever the backward uses."""
        return self.backward(da, a, z) if self.needs_input else self.backward(da, a)

    def __repr__(self):
        return f"<activation {self.name}>"


def _sigmoid(z):
    # exp(-log(1 + exp(-z))) never overflows, for z of either sign.
    return np.exp(-np.logaddexp(0, -z)).astype(z.dtype, copy=False)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_backward(da, a):
    return a * (da - (da * a).sum(axis=-1, keepdims=True))


def _elu(z):
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _softplus(z):
    return np.logaddexp(0, z).astype(z.dtype, copy=False)


def relu_with(max_value=None, negative_slope=0.0, threshold=0.0):
    """Keras's ReLU layer: x where x > threshold (clipped at max_value), else
    negative_slope * (x - threshold). Plain max(x, 0) is the registry's 'relu'."""
    if max_value is None and not negative_slope and not threshold:
        return _REGISTRY["relu"]
    top = np.inf if max_value is None else max_value

    def forward(z):
        t = z.dtype.type
        a = np.where(z > t(threshold), np.minimum(z, t(top)), t(negative_slope) * (z - t(threshold)))
        return a.astype(z.dtype, copy=False)

    def backward(da, a):
        # in terms of the output: a > 0 exactly where z > threshold (thresholds are >= 0)
        t = da.dtype.type
        slope = np.where(a > 0, (a < t(top)).astype(da.dtype), t(negative_slope))
        return da * slope

    name = f"relu(max_value={max_value}, negative_slope={negative_slope}, threshold={threshold})"
    return Activation(name, forward, backward)


def elu_with(alpha=1.0):
    """Keras's elu(x, alpha): x where x > 0, else alpha * (exp(x) - 1)."""
    alpha = float(alpha)
    if alpha == 1.0:
        return _REGISTRY["elu"]

    def forward(z):
        t = z.dtype.type
        return np.where(z > 0, z, t(alpha) * np.expm1(np.minimum(z, 0))).astype(z.dtype, copy=False)

    def backward(da, a):
        # the slope alpha * exp(z) = a + alpha where z <= 0 (Keras's gradient at 0 too)
        return da * np.where(a > 0, 1, a + da.dtype.type(alpha))

    return Activation(f"elu(alpha={alpha})", forward, backward)


# ----- the activations whose derivative needs the input z (needs_input=True) -----

def _erfc(x):
    """erfc elementwise in x's dtype (worked in float64): NumPy has no erf, so a Numba ufunc
    of math.erfc, compiled on first use; cupyx's on a GPU."""
    if type(x).__module__.startswith("cupy"):
        import cupyx.scipy.special
        return cupyx.scipy.special.erfc(x)
    if not _ERFC:
        import numba
        _ERFC.append(numba.vectorize(["float64(float64)"], nopython=True)(lambda v: math.erfc(v)))
    return _ERFC[0](np.asarray(x, dtype=np.float64)).astype(x.dtype, copy=False)


_ERFC = []      # the compiled ufunc, once made
_SQRT_HALF = 0.7071067811865476         # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327      # 1 / sqrt(2 pi)
_SQRT_2_OVER_PI = 0.7978845608028654    # sqrt(2 / pi)
_GELU_CUBIC = 0.044715


def _gelu(z):
    # x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2: no cancellation for large negative x
    t = z.dtype.type
    return (t(0.5) * z * _erfc(-z * t(_SQRT_HALF))).astype(z.dtype, copy=False)


def _gelu_backward(da, a, z):
    t = z.dtype.type
    with np.errstate(over="ignore"):
        density = np.exp(t(-0.5) * z * z) * t(_INV_SQRT_2PI)
    return da * (t(0.5) * _erfc(-z * t(_SQRT_HALF)) + z * density)


def _gelu_tanh(z):
    t = z.dtype.type
    with np.errstate(over="ignore"):     # x**3 overflows to inf for huge |x|: tanh(inf) = 1 is right
        inner = t(_SQRT_2_OVER_PI) * (z + t(_GELU_CUBIC) * z * z * z)
    return (t(0.5) * z * (1 + np.tanh(inner))).astype(z.dtype, copy=False)


def _gelu_tanh_backward(da, a, z):
    t = z.dtype.type
    zc = np.clip(z, t(-1e4), t(1e4))     # tanh has saturated long before: no inf * 0 in the slope
    th = np.tanh(t(_SQRT_2_OVER_PI) * (zc + t(_GELU_CUBIC) * zc * zc * zc))
    slope = t(0.5) * (1 + th) + t(0.5) * zc * (1 - th * th) * t(_SQRT_2_OVER_PI) * (1 + t(3 * _GELU_CUBIC) * zc * zc)
    return da * slope


def _silu(z):
    return (z * _sigmoid(z)).astype(z.dtype, copy=False)


def _silu_backward(da, a, z):
    # d/dz z s(z) = s(z) (1 + z s(-z)); s(-z) rather than 1 - s(z) keeps its precision
    return da * (_sigmoid(z) * (1 + z * _sigmoid(-z)))


def _hard_sigmoid(z):
    t = z.dtype.type                      # Keras 3: relu6(x + 3) / 6
    return np.minimum(np.maximum(z + t(3), t(0)), t(6)) / t(6)


def _hard_slope(z):
    """d hard_sigmoid / dz: 1/6 where 0 < z + 3 < 6 (relu6's open interval, as Keras's gradient)."""
    t = z.dtype.type
    shifted = z + t(3)
    return ((shifted > 0) & (shifted < 6)).astype(z.dtype) * t(1 / 6)


def _hard_silu(z):
    return z * _hard_sigmoid(z)


def _mish(z):
    return (z * np.tanh(_softplus(z))).astype(z.dtype, copy=False)


def _mish_backward(da, a, z):
    th = np.tanh(_softplus(z))
    return da * (th + z * (1 - th * th) * _sigmoid(z))


def _softsign(z):
    return z / (1 + np.abs(z))


def _softsign_backward(da, a, z):
    with np.errstate(over="ignore"):      # (1 + |z|)**2 = inf for huge |z|: the slope 0 is right
        return da / np.square(1 + np.abs(z))


_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_SCALE_ALPHA = 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def _selu(z):
    t = z.dtype.type
    return np.where(z > 0, t(_SELU_SCALE) * z, t(_SELU_SCALE_ALPHA) * np.expm1(np.minimum(z, 0))).astype(z.dtype, copy=False)


def _selu_backward(da, a):
    # in terms of the output: scale where a >= 0, else a + scale * alpha (= scale * alpha * exp(z))
    t = da.dtype.type
    return da * np.where(a < 0, a + t(_SELU_SCALE_ALPHA), t(_SELU_SCALE))


_REGISTRY = {
    "linear": Activation("linear", lambda z: z, lambda da, a: da),
    "relu": Activation("relu", lambda z: np.maximum(z, 0), lambda da, a: da * (a > 0)),
    "sigmoid": Activation("sigmoid", _sigmoid, lambda da, a: da * a * (1 - a)),
    "tanh": Activation("tanh", np.tanh, lambda da, a: da * (1 - a * a)),
    "softmax": Activation("softmax", _softmax, _softmax_backward),
    "elu": Activation("elu", _elu, lambda da, a: da * np.where(a > 0, 1, a + 1)),
    "softplus": Activation("softplus", _softplus, lambda da, a: da * -np.expm1(-a)),
}
_REGISTRY["relu6"] = Activation("relu6", relu_with(6.0).forward, relu_with(6.0).backward)
_REGISTRY["leaky_relu"] = Activation("leaky_relu", relu_with(negative_slope=0.2).forward,
                                     relu_with(negative_slope=0.2).backward)   # keras.activations.leaky_relu
_REGISTRY["relu"].variant = lambda negative_slope=0.0, max_value=None, threshold=0.0: relu_with(
    max_value, negative_slope, threshold)
_REGISTRY["leaky_relu"].variant = lambda negative_slope=0.2: relu_with(negative_slope=negative_slope)
_REGISTRY["elu"].variant = elu_with
_GELU_TANH = Activation("gelu(approximate=True)", _gelu_tanh, _gelu_tanh_backward, needs_input=True)
_REGISTRY.update({
    "silu": Activation("silu", _silu, _silu_backward, needs_input=True),
    # keras.activations.gelu's default is the exact, erf-based form (approximate=False)
    "gelu": Activation("gelu", _gelu, _gelu_backward, needs_input=True,
                       variant=lambda approximate=False: _GELU_TANH if approximate else _REGISTRY["gelu"]),
    "selu": Activation("selu", _selu, _selu_backward),
    "hard_sigmoid": Activation("hard_sigmoid", _hard_sigmoid,
                               lambda da, a, z: da * _hard_slope(z), needs_input=True),
    "hard_silu": Activation("hard_silu", _hard_silu,
                            lambda da, a, z: da * (_hard_sigmoid(z) + z * _hard_slope(z)), needs_input=True),
    "mish": Activation("mish", _mish, _mish_backward, needs_input=True),
    "softsign": Activation("softsign", _softsign, _softsign_backward, needs_input=True),
    "exponential": Activation("exponential", lambda z: np.exp(z), lambda da, a: da * a),
})
# Keras's other names for the same functions (they serialize as 'silu' and 'hard_silu', as Keras's)
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def get(identifier):
    """Look up an activation by name (None means 'linear'), or pass one through."""
    if identifier is None:
        return _REGISTRY["linear"]
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and _ALIASES.get(identifier, identifier) in _REGISTRY:
        return _REGISTRY[_ALIASES.get(identifier, identifier)]
    raise ValueError(f"unknown activation {identifier!r}; expected one of {sorted([*_REGISTRY, *_ALIASES])}")


def serialize(activation):
    return activation.name


def __getattr__(name):
    # scratchnet.activations.relu(z) etc., as keras.activations.relu.
    if _ALIASES.get(name, name) in _REGISTRY:
        return _REGISTRY[_ALIASES.get(name, name)]
    raise AttributeError(name)
