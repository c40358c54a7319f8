"""Conv2D: 2-D convolution over channels-last images, with Keras's padding rules."""
from .. import initializers
from ..functions import conv
from .base import Layer, as_pair
from ..kernels.numpy_ref import output_size


def padding_amounts(size, k, stride, padding):
    """(before, after) padding along one axis. 'same' follows TensorFlow: the output has
    ceil(size / stride) positions and any odd padding goes after."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def window_geometry(layer, input_shape, kernel_size):
    """Padding and output size of a sliding-window layer over (H, W, C) inputs."""
    if len(input_shape) != 3:
        raise ValueError(f"{layer.describe()} expects inputs shaped (height, width, channels), "
                         f"got input_shape {tuple(input_shape)}")
    h, w = input_shape[0], input_shape[1]
    pads = (padding_amounts(h, kernel_size[0], layer.strides[0], layer.padding)
            + padding_amounts(w, kernel_size[1], layer.strides[1], layer.padding))
    ho = output_size(h, kernel_size[0], layer.strides[0], pads[0], pads[1])
    wo = output_size(w, kernel_size[1], layer.strides[1], pads[2], pads[3])
    if ho < 1 or wo < 1:
        raise ValueError(f"{layer.describe()}: a {kernel_size} window with padding {layer.padding!r} "
                         f"does not fit an input of {h}x{w}; use a smaller window or padding='same'")
    return pads, (ho, wo)


def check_padding(layer, padding):
    padding = padding.lower() if isinstance(padding, str) else padding
    if padding not in ("valid", "same"):
        raise ValueError(f"{layer.describe()}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


def check_data_format(layer, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer.describe()}: only data_format='channels_last' (N, H, W, C) is "
                         f"supported, got {data_format!r}")


class Conv2D(Layer):
    """2-D convolution: ``filters`` kernels of ``kernel_size`` slid over (N, H, W, C) inputs."""

    has_activation = True

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(activation=activation, **kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"{self.describe()}: filters must be a positive int, got {filters!r}")
        self.filters = filters
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.strides = as_pair(strides, "strides")
        self.padding = check_padding(self, padding)
        check_data_format(self, data_format)
        if as_pair(dilation_rate, "dilation_rate") != (1, 1):
            raise NotImplementedError(f"{self.describe()}: dilation_rate other than 1 is not supported")
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)  # fail early on typos

    def weight_shapes(self, input_shape):
        window_geometry(self, input_shape, self.kernel_size)
        shapes = {"kernel": self.kernel_size + (input_shape[-1], self.filters)}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape):
        _, (ho, wo) = window_geometry(self, input_shape, self.kernel_size)
        return (ho, wo, self.filters)

    @property
    def pads(self):
        return window_geometry(self, self.input_shape, self.kernel_size)[0]

    def make_function_config(self):
        return conv.Config(self.strides, self.pads, self.activation, self.backend)

    def _forward(self, x, training):
        return conv.forward(x, self.params, self.function_config(), training)

    def _backward(self, dy, ctx, need_dx):
        return conv.backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "use_bias": self.use_bias}
