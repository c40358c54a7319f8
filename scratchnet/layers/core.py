"""Dense, Flatten, Dropout, the activation layers, and Input."""
import math

import numpy as np

from .. import activations, config, initializers
from ..functions import dense, dropout, elementwise, reshape
from ..graph import Node, SymbolicTensor
from .base import Layer


class Dense(Layer):
    """y = activation(x @ kernel + bias), applied along the last axis."""

    has_activation = True
    penalized_weights = {"kernel": "kernel", "bias": "bias"}

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.set_penalties({"kernel_regularizer": kernel_regularizer, "bias_regularizer": bias_regularizer,
                            "kernel_constraint": kernel_constraint, "bias_constraint": bias_constraint})
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"{self.describe()}: units must be a positive int, got {units!r}")
        self.units = int(units)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)  # fail early on typos

    def weight_shapes(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"{self.describe()} needs inputs with at least one axis besides the batch, "
                             f"got input_shape {tuple(input_shape)}")
        shapes = {"kernel": (input_shape[-1], self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def make_function_config(self, input_shape):
        return dense.Config(self.activation, self.backend)

    def _forward(self, x, training):
        return dense.forward(x, self.params, self.function_config(), training)

    def _backward(self, dy, ctx, need_dx):
        return dense.backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias}


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), in row-major (channels-last) order as Keras."""

    def compute_output_shape(self, input_shape):
        return (None if None in input_shape else math.prod(input_shape),)

    def _forward(self, x, training):
        return reshape.flatten_forward(x, self.params, None, training)

    def _backward(self, dy, ctx, need_dx):
        return reshape.flatten_backward(dy, ctx, need_dx)


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
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
            if any(d is not None and d < 1 for d in noise_shape):
                raise ValueError(f"{self.describe()}: noise_shape must hold positive sizes or None, got {noise_shape}")
        self.noise_shape = noise_shape
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def mask_shape(self, shape):
        """The shape of the mask for inputs of ``shape``: ``noise_shape`` with its None axes the
        input's (a 1 shares one draw along that axis, as in Keras), else the input's."""
        if self.noise_shape is None:
            return tuple(shape)
        if len(self.noise_shape) != len(shape) or any(d not in (None, 1, n) for d, n in zip(self.noise_shape, shape)):
            raise ValueError(f"{self.describe()}: noise_shape {self.noise_shape} does not fit inputs of shape "
                             f"{tuple(shape)}: each axis must be None, 1 or the input's size")
        return tuple(n if d is None else d for d, n in zip(self.noise_shape, shape))

    def _forward(self, x, training):
        seed = 0
        mask_shape = self.mask_shape(x.shape)
        if training and self.rate:
            rng = self._rng or config.rng()
            seed = int(rng.integers(0, 2**64, dtype=np.uint64))
            window = config.sample_window()
            if window is not None and x.shape[0]:     # this process's share of a global batch
                per_sample = int(np.prod(mask_shape[1:])) if mask_shape[0] == x.shape[0] else 0
                seed = dropout.seed_from(seed, window[0] * per_sample)
        return dropout.forward(x, self.params, self.function_config(), training, seed, mask_shape)

    def make_function_config(self, input_shape):
        return dropout.Config(self.rate, self.backend)

    def _backward(self, dy, ctx, need_dx):
        return dropout.backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


class Activation(Layer):
    """Applies an activation function by name: Activation('relu')."""

    has_activation = True

    def __init__(self, activation, **kwargs):
        super().__init__(activation=activation, **kwargs)

    def make_function_config(self, input_shape):
        return elementwise.Config(self.activation, self.backend)

    def _forward(self, x, training):
        return elementwise.forward(x, self.params, self.function_config(), training)

    def _backward(self, dy, ctx, need_dx):
        return elementwise.backward(dy, ctx, need_dx)


class _FixedActivation(Activation):
    """An Activation layer whose function is given by its class, not an argument."""

    function = None

    def __init__(self, **kwargs):
        super().__init__(self.function, **kwargs)

    def get_config(self):
        config_ = super().get_config()
        config_.pop("activation")
        return config_


class ReLU(Activation):
    """max(x, 0), or Keras's general form: x where x > threshold, clipped at max_value
    (ReLU(6.0) is MobileNet's ReLU6), else negative_slope * (x - threshold)."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        for name, value in (("max_value", max_value), ("negative_slope", negative_slope), ("threshold", threshold)):
            if value is not None and value < 0:
                raise ValueError(f"ReLU: {name} must be non-negative, got {value!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)
        super().__init__(activations.relu_with(self.max_value, self.negative_slope, self.threshold), **kwargs)

    def get_config(self):
        config_ = super().get_config()
        config_.pop("activation")
        return {**config_, "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(Activation):
    """x where x > 0, else negative_slope * x (Keras 3's default slope 0.3; ``alpha`` is the
    Keras 2 name of the same argument)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be a non-negative number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        super().__init__(activations.relu_with(negative_slope=self.negative_slope), **kwargs)

    def get_config(self):
        config_ = super().get_config()
        config_.pop("activation")
        return {**config_, "negative_slope": self.negative_slope}


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


class InputLayer(Layer):
    """The start of a graph: holds the per-sample shape of the model's input. ``Input()``
    makes one and returns its symbolic output."""

    is_input = True

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, input_shape=None,
                 batch_shape=None, **kwargs):
        if batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("Input needs shape=(height, width, channels) or similar")
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        if any(d is not None and (not isinstance(d, (int, np.integer)) or d < 1) for d in shape):
            raise ValueError(f"Input shape must hold a positive size, or None for a size known only when the model "
                             f"runs, for every axis but the batch; got {tuple(shape)}")
        super().__init__(name=name or None, dtype=dtype, **kwargs)
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.batch_size = batch_size
        self.input_shape = self.output_shape = self.shape
        self.built = True
        Node(self, [], [SymbolicTensor((None,) + self.shape, self.dtype, name=self.name)])

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype.name, "shape": list(self.shape)}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
    """A symbolic input tensor, as ``keras.Input``: ``x = Input(shape=(28, 28, 1))``."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)
    return layer.output
