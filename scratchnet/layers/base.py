"""The Layer base class: shape bookkeeping, weights, and the forward/backward contract.

A layer's ``forward(x, training)`` returns its output and, when training, keeps what
its ``backward(dy)`` needs (a cache, as in CS231n). ``backward`` returns dx and leaves
the weight gradients in ``layer.grads`` under the same names as ``layer.params``.
"""
import re
from collections import defaultdict

import numpy as np

from .. import activations, backend, config
from ..arrays import to_host, to_module

_name_counts = defaultdict(int)


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base):
    """'conv2d', then 'conv2d_1', 'conv2d_2', ... as Keras names layers."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def clear_session():
    """Restart layer numbering (conv2d, conv2d_1, ...) from zero, as keras.backend.clear_session."""
    _name_counts.clear()


def as_pair(value, what):
    """Accept 3 or (3, 3); return a pair of positive ints."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class Layer:
    """Base of every layer. Subclasses implement ``build``, ``compute_output_shape``,
    ``call`` (the linear part: no bias, no activation) and ``call_backward``; the bias
    (a weight named 'bias') and the activation are applied here, by one fused kernel."""

    has_activation = False

    def __init__(self, name=None, input_shape=None, dtype=None, activation=None, trainable=True,
                 **kwargs):
        if "batch_input_shape" in kwargs:
            input_shape = tuple(kwargs.pop("batch_input_shape"))[1:]
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}")
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self.dtype = np.dtype(dtype or config.floatx())
        self.input_shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
        self.activation = activations.get(activation) if self.has_activation else None
        self.trainable = trainable
        self.params = {}
        self.grads = {}
        self.built = False
        self.output_shape = None
        self._cache = None
        self._output = None
        self._backend_name = None   # fixed when the weights are created; model.to() changes it

    # ----- construction -------------------------------------------------------------
    def build(self, input_shape):
        """Create weights for inputs of shape ``input_shape`` (no batch dimension)."""
        from .. import initializers
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self._backend_name = self._backend_name or backend.current().name
        xp = self.backend.xp
        for name, shape in self.weight_shapes(self.input_shape).items():
            initializer = self.bias_initializer if name == "bias" else self.kernel_initializer
            self.params[name] = xp.asarray(initializers.get(initializer)(tuple(shape), self.dtype))
        self.built = True

    def to(self, name):
        """Move this layer's weights to backend ``name`` ('cpu', 'numpy', 'gpu')."""
        target = backend.get(name)
        self.params = {k: to_module(v, target.xp) for k, v in self.params.items()}
        self.grads, self._cache, self._output = {}, None, None
        if hasattr(self, "_workspace"):
            self._workspace.clear()
        self._backend_name = name
        return self

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def weight_shapes(self, input_shape):
        """{name: shape} of the weights this layer creates for ``input_shape``."""
        return {}

    # ----- forward / backward ----------------------------------------------------------
    def forward(self, x, training=False, logits=False):
        """Output for a batch x. With ``logits=True`` the activation is left out (the loss
        applies it in a fused, numerically stable form)."""
        if not self.built:
            self.build(x.shape[1:])
        self._check_input(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        z = self.call(x, training)
        kernel_activation, after = self._activation_plan(logits)
        bias = self.params.get("bias")
        if bias is not None or kernel_activation != "linear":
            if z is x or np.may_share_memory(z, x):   # the kernel works in place: never on the input
                z = z.copy()
            z = self.backend.bias_activation(z, bias, kernel_activation)
        if after is not None:
            z = after.forward(z)
        self._output = z if training else None
        return z

    def backward(self, dy, logits=False, need_dx=True):
        """Given dL/d(output), store weight gradients in ``self.grads`` and return dL/dx
        (None when ``need_dx`` is false, which spares the first layer that work)."""
        if self._output is None:
            raise RuntimeError(f"{self.describe()}: backward() needs a forward(x, training=True) first")
        kernel_activation, after = self._activation_plan(logits)
        if after is not None:
            dy = after.backward(dy, self._output)
        bias = self.params.get("bias")
        if bias is not None or kernel_activation != "linear":
            dy, db = self.backend.bias_activation_backward(dy, self._output, kernel_activation,
                                                           bias is not None)
            if bias is not None:
                self.grads["bias"] = db
        return self.call_backward(dy, need_dx)

    def _activation_plan(self, logits):
        """Split the activation into the part the backend's fused bias+activation kernel
        applies (a name) and the part left for the layer (an Activation, or None)."""
        act = self.activation
        if act is None or logits or act.name == "linear":
            return "linear", None
        if act.name in self.backend.kernel_activations:
            return act.name, None
        return "linear", act

    def call(self, x, training):
        return x

    def call_backward(self, dy, need_dx):
        return dy

    def __call__(self, x, training=False):
        return self.forward(to_module(x, self.backend.xp), training=training)

    # ----- weights ----------------------------------------------------------------
    def get_weights(self):
        """Copies of the weights as NumPy arrays (from the GPU if they live there)."""
        return [to_host(p).copy() for p in self.params.values()]

    def set_weights(self, weights):
        expected = [p.shape for p in self.params.values()]
        got = [np.shape(w) for w in weights]
        if expected != got:
            raise ValueError(f"{self.describe()} expects weights of shapes {expected}, got {got}")
        xp = self.backend.xp
        for key, value in zip(self.params, weights):
            self.params[key][...] = xp.asarray(to_host(value), dtype=self.dtype)

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    @property
    def weights(self):
        return list(self.params.values())

    # ----- helpers ----------------------------------------------------------------
    def describe(self):
        return f"{type(self).__name__} layer {self.name!r}"

    def _check_input(self, x):
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.describe()} expected input of shape {(None,) + self.input_shape}, "
                             f"got {tuple(x.shape)}")

    @property
    def backend(self):
        """The backend this layer's weights live on (the current one until it is built)."""
        return backend.get(self._backend_name) if self._backend_name else backend.current()

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype.name, "trainable": self.trainable}
        if self.activation is not None:
            config["activation"] = activations.serialize(self.activation)
        return config

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
