"""Activation functions, each a forward ``f(z)`` and a backward written in terms of
the output ``a = f(z)``, so a layer only has to keep ``a`` for its backward pass."""
import numpy as np


class Activation:
    """A named elementwise (or, for softmax, row-wise) function and its derivative."""

    def __init__(self, name, forward, backward):
        self.name = name
        self.forward = forward      # z -> a
        self.backward = backward    # (da, a) -> dz

    def __call__(self, z):
        return self.forward(z)

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


def get(identifier):
    """Look up an activation by name (None means 'linear'), or pass one through."""
    if identifier is None:
        return _REGISTRY["linear"]
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]
    raise ValueError(f"unknown activation {identifier!r}; expected one of {sorted(_REGISTRY)}")


def serialize(activation):
    return activation.name


def __getattr__(name):
    # scratchnet.activations.relu(z) etc., as keras.activations.relu.
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise AttributeError(name)
