"""Dense, Flatten, Dropout, the activation layers, and Input."""
import math

import numpy as np

from .. import config, initializers
from .base import Layer


class Dense(Layer):
    """y = activation(x @ kernel + bias), applied along the last axis."""

    has_activation = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(activation=activation, **kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"{self.describe()}: units must be a positive int, got {units!r}")
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)  # fail early on typos

    def weight_shapes(self, input_shape):
        shapes = {"kernel": (input_shape[-1], self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def call(self, x, training):
        x2 = x.reshape(-1, x.shape[-1])
        y = x2 @ self.params["kernel"]
        self._cache = x2 if training else None
        return y.reshape(x.shape[:-1] + (self.units,))

    def call_backward(self, dy, need_dx):
        x2 = self._cache
        dy2 = dy.reshape(-1, self.units)
        self.grads["kernel"] = x2.T @ dy2
        if not need_dx:
            return None
        return (dy2 @ self.params["kernel"].T).reshape(dy.shape[:-1] + (x2.shape[1],))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias}


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), in row-major (channels-last) order as Keras."""

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def call(self, x, training):
        return x.reshape(x.shape[0], -1)

    def call_backward(self, dy, need_dx):
        return dy.reshape((dy.shape[0],) + self.input_shape)


class Dropout(Layer):
    """Inverted dropout: while training, zero each input with probability ``rate`` and
    scale the rest by 1/(1-rate); at inference, the identity.

    The mask is drawn by the backend's ``dropout_mask`` kernel where the inputs live (on
    the GPU for the GPU backend), from one 64-bit seed per call taken from scratchnet's
    generator (or from this layer's own, given ``seed``); every backend draws the same mask
    from the same seed."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"{self.describe()}: rate must be in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise NotImplementedError(f"{self.describe()}: noise_shape is not supported")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def call(self, x, training):
        if not training or self.rate == 0:
            self._cache = None
            return x
        rng = self._rng or config.rng()
        seed = int(rng.integers(0, 2**64, dtype=np.uint64))
        self._cache = self.backend.dropout_mask(x.shape, x.dtype, self.rate, seed)
        return x * self._cache

    def call_backward(self, dy, need_dx):
        return dy if self._cache is None else dy * self._cache

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    """Applies an activation function by name: Activation('relu')."""

    has_activation = True

    def __init__(self, activation, **kwargs):
        super().__init__(activation=activation, **kwargs)


class _FixedActivation(Activation):
    """An Activation layer whose function is given by its class, not an argument."""

    function = None

    def __init__(self, **kwargs):
        super().__init__(self.function, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("activation")
        return config


class ReLU(_FixedActivation):
    """max(x, 0)."""

    function = "relu"


class Sigmoid(_FixedActivation):
    """1 / (1 + exp(-x))."""

    function = "sigmoid"


class Softmax(_FixedActivation):
    """exp(x) / sum(exp(x)) over the last axis."""

    function = "softmax"

    def __init__(self, axis=-1, **kwargs):
        if axis != -1:
            raise NotImplementedError(f"Softmax over axis {axis}: only the last axis (-1) is supported")
        super().__init__(**kwargs)


class InputLayer:
    """Marks the input shape of a Sequential model: ``Input(shape=(28, 28, 1))``."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, input_shape=None):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("Input needs shape=(height, width, channels) or similar")
        self.shape = tuple(int(d) for d in shape)
        self.name = name


def Input(shape=None, batch_size=None, dtype=None, name=None):
    """The Keras way to give a Sequential model its input shape."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name)
