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


_REGISTRY = {
    "linear": Activation("linear", lambda z: z, lambda da, a: da),
    "relu": Activation("relu", lambda z: np.maximum(z, 0), lambda da, a: da * (a > 0)),
    "sigmoid": Activation("sigmoid", _sigmoid, lambda da, a: da * a * (1 - a)),
    "tanh": Activation("tanh", np.tanh, lambda da, a: da * (1 - a * a)),
    "softmax": Activation("softmax", _softmax, _softmax_backward),
    "elu": Activation("elu", _elu, lambda da, a: da * np.where(a > 0, 1, a + 1)),
    "softplus": Activation("softplus", _softplus, lambda da, a: da * -np.expm1(-a)),
}


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
