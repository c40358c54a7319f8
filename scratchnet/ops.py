"""The few ``keras.ops`` functions tutorials call around a model (``ops.expand_dims(image, 0)``,
``ops.sigmoid(logits)``), on NumPy arrays: scratchnet's tensors are arrays, so each is the NumPy
function of that name (or the activation of that name), returning a NumPy array."""
import numpy as np

from . import activations
from .arrays import to_host

_NUMPY = ("expand_dims", "squeeze", "reshape", "transpose", "stack", "concatenate", "argmax", "argmin", "max",
          "min", "mean", "sum", "exp", "log", "sqrt", "abs", "clip", "where", "round", "floor", "ceil", "maximum",
          "minimum", "square", "zeros", "ones", "arange", "linspace", "matmul", "dot", "cos", "sin", "tanh")
_ACTIVATIONS = ("sigmoid", "softmax", "relu", "elu", "softplus")


def convert_to_numpy(x):
    """x as a NumPy array (copied from the GPU if it lives there)."""
    return np.asarray(to_host(x))


def convert_to_tensor(x, dtype=None):
    """x as an array (scratchnet's tensors are arrays)."""
    return np.asarray(to_host(x), dtype=dtype)


def cast(x, dtype):
    return np.asarray(to_host(x)).astype(dtype)


def _activation(name):
    def apply(x, axis=-1):
        x = np.asarray(to_host(x))                 # a GPU model's outputs are copied to the host first
        x = x.astype(np.result_type(x.dtype, np.float32), copy=False)
        if name == "softmax" and axis != -1:
            return np.moveaxis(activations.get(name).forward(np.moveaxis(x, axis, -1)), -1, axis)
        return activations.get(name).forward(x)
    apply.__name__ = name
    apply.__doc__ = f"The {name} activation of x, as keras.ops.{name}."
    return apply


def __getattr__(name):
    if name in _NUMPY:
        return getattr(np, name)
    if name in _ACTIVATIONS:
        return _activation(name)
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import missing
    raise missing("ops", name, _NUMPY + _ACTIVATIONS + ("cast", "convert_to_numpy", "convert_to_tensor"),
                  " (NumPy's functions of those names work on its arrays)")
