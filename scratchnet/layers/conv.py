"""Conv2D: 2-D convolution over channels-last images, with Keras's padding rules."""
from .. import initializers
from ..functions import conv
from ..geometry import Window, check_data_format, check_padding
from ..geometry import padding_amounts, window_geometry  # noqa: F401  (older code imports them from here)
from .base import Layer, as_pair


def set_convolution_arguments(layer, filters, kernel_size, strides, padding, data_format, dilation_rate):
    """Check and keep what every full 2-D convolution takes (Conv2D, Conv2DTranspose,
    SeparableConv2D), as Keras checks it."""
    if not isinstance(filters, int) or filters < 1:
        raise ValueError(f"{layer.describe()}: filters must be a positive int, got {filters!r}")
    layer.filters = filters
    layer.kernel_size = as_pair(kernel_size, "kernel_size")
    layer.strides = as_pair(strides, "strides")
    layer.padding = check_padding(layer, padding)
    check_data_format(layer, data_format)
    layer.dilation_rate = as_pair(dilation_rate, "dilation_rate")
    if max(layer.strides) > 1 and max(layer.dilation_rate) > 1:
        raise ValueError(f"{layer.describe()}: `strides > 1` not supported in conjunction with "
                         f"`dilation_rate > 1` (as in Keras); got strides={layer.strides}, "
                         f"dilation_rate={layer.dilation_rate}")


def set_weight_arguments(layer, use_bias, kernel_initializer, bias_initializer):
    """Keep whether there is a bias and the initializers (an unknown name fails now, not at build)."""
    layer.use_bias = use_bias
    layer.kernel_initializer = kernel_initializer
    layer.bias_initializer = bias_initializer
    initializers.get(kernel_initializer), initializers.get(bias_initializer)


class Conv2D(Layer):
    """2-D convolution: ``filters`` kernels of ``kernel_size`` slid over (N, H, W, C) inputs.
    With ``groups`` G, the input channels split into G groups, each with filters / G
    kernels of its own; with ``dilation_rate`` d, a kernel reads every d-th pixel."""

    has_activation = True
    penalized_weights = {"kernel": "kernel", "bias": "bias"}

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.set_penalties({"kernel_regularizer": kernel_regularizer, "bias_regularizer": bias_regularizer,
                            "kernel_constraint": kernel_constraint, "bias_constraint": bias_constraint})
        set_convolution_arguments(self, filters, kernel_size, strides, padding, data_format, dilation_rate)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{self.describe()}: groups must be a positive int, got {groups!r}")
        if filters % groups:
            raise ValueError(f"{self.describe()}: the number of filters must be evenly divisible by the number "
                             f"of groups; got filters={filters}, groups={groups}")
        self.groups = groups
        set_weight_arguments(self, use_bias, kernel_initializer, bias_initializer)

    @property
    def window(self):
        """The extent of a (dilated) kernel."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))

    def placement(self, input_shape):
        """Where the kernel lands on per-sample ``input_shape``: its pads and the output size."""
        return Window(self.window, self.strides, self.padding).place(input_shape, self)

    def weight_shapes(self, input_shape):
        self.placement(input_shape)
        if input_shape[-1] % self.groups:
            raise ValueError(f"{self.describe()}: the number of input channels must be evenly divisible by the "
                             f"number of groups; got {input_shape[-1]} channels, groups={self.groups}")
        shapes = {"kernel": self.kernel_size + (input_shape[-1] // self.groups, self.filters)}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape):
        ho, wo = self.placement(input_shape).size
        return (ho, wo, self.filters)

    @property
    def pads(self):
        """The padding for the input size the layer was built for (None where unknown)."""
        return self.placement(self.input_shape).pads

    def make_function_config(self, input_shape):
        pads = self.placement(input_shape).pads
        if self.groups == 1 and self.dilation_rate == (1, 1):
            return conv.Config(self.strides, pads, self.activation, self.backend)
        return conv.GeneralConfig(self.strides, pads, self.groups, self.dilation_rate, self.activation,
                                  self.backend)

    def _forward(self, x, training):
        config = self.function_config(x.shape[1:])
        if isinstance(config, conv.Config):
            return conv.forward(x, self.params, config, training)
        return conv.general_forward(x, self.params, config, training)

    def _backward(self, dy, ctx, need_dx):
        # the backward of the form the forward ran (told by its context, not the current config)
        if type(ctx) is conv.GroupedConvContext:
            return conv.general_backward(dy, ctx, need_dx)
        return conv.backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "groups": self.groups, "use_bias": self.use_bias}


class DepthwiseConv2D(Layer):
    """Each input channel convolved with ``depth_multiplier`` kernels of its own; channel c's
    m-th output is output channel c * depth_multiplier + m. Its kernel is (kh, kw, C, M),
    named 'kernel' as in Keras 3."""

    has_activation = True
    penalized_weights = {"kernel": "depthwise", "bias": "bias"}

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.set_penalties({"depthwise_regularizer": depthwise_regularizer, "bias_regularizer": bias_regularizer,
                            "depthwise_constraint": depthwise_constraint, "bias_constraint": bias_constraint})
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.strides = as_pair(strides, "strides")
        self.padding = check_padding(self, padding)
        check_data_format(self, data_format)
        if as_pair(dilation_rate, "dilation_rate") != (1, 1):
            raise NotImplementedError(f"{self.describe()}: dilation_rate other than 1 is not supported")
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise ValueError(f"{self.describe()}: depth_multiplier must be a positive int, got {depth_multiplier!r}")
        self.depth_multiplier = depth_multiplier
        self.use_bias = use_bias
        self.depthwise_initializer, self.bias_initializer = depthwise_initializer, bias_initializer
        initializers.get(depthwise_initializer), initializers.get(bias_initializer)

    def initializer_for(self, name):
        return self.depthwise_initializer if name == "kernel" else self.bias_initializer

    def placement(self, input_shape):
        """Where the kernel lands on per-sample ``input_shape``: its pads and the output size."""
        return Window(self.kernel_size, self.strides, self.padding).place(input_shape, self)

    def weight_shapes(self, input_shape):
        self.placement(input_shape)
        shapes = {"kernel": self.kernel_size + (input_shape[-1], self.depth_multiplier)}
        if self.use_bias:
            shapes["bias"] = (input_shape[-1] * self.depth_multiplier,)
        return shapes

    def compute_output_shape(self, input_shape):
        ho, wo = self.placement(input_shape).size
        return (ho, wo, input_shape[-1] * self.depth_multiplier)

    def make_function_config(self, input_shape):
        return conv.Config(self.strides, self.placement(input_shape).pads, self.activation, self.backend)

    def _forward(self, x, training):
        return conv.depthwise_forward(x, self.params, self.function_config(x.shape[1:]), training)

    def _backward(self, dy, ctx, need_dx):
        return conv.depthwise_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "depth_multiplier": self.depth_multiplier, "use_bias": self.use_bias}


class SeparableConv2D(Layer):
    """A depthwise convolution followed by a 1x1 convolution that mixes the channels:
    weights depthwise_kernel (kh, kw, C, M), pointwise_kernel (1, 1, C*M, filters), bias."""

    has_activation = True
    penalized_weights = {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise", "bias": "bias"}

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.set_penalties({"depthwise_regularizer": depthwise_regularizer,
                            "pointwise_regularizer": pointwise_regularizer, "bias_regularizer": bias_regularizer,
                            "depthwise_constraint": depthwise_constraint, "pointwise_constraint": pointwise_constraint,
                            "bias_constraint": bias_constraint})
        set_convolution_arguments(self, filters, kernel_size, strides, padding, data_format, dilation_rate)
        if self.dilation_rate != (1, 1):
            raise NotImplementedError(f"{self.describe()}: dilation_rate other than 1 is not supported")
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise ValueError(f"{self.describe()}: depth_multiplier must be a positive int, got {depth_multiplier!r}")
        self.depth_multiplier = depth_multiplier
        self.use_bias = use_bias
        self.depthwise_initializer, self.pointwise_initializer = depthwise_initializer, pointwise_initializer
        self.bias_initializer = bias_initializer
        for name in (depthwise_initializer, pointwise_initializer, bias_initializer):
            initializers.get(name)

    def initializer_for(self, name):
        return {"depthwise_kernel": self.depthwise_initializer, "pointwise_kernel": self.pointwise_initializer,
                "bias": self.bias_initializer}[name]

    def placement(self, input_shape):
        """Where the kernel lands on per-sample ``input_shape``: its pads and the output size."""
        return Window(self.kernel_size, self.strides, self.padding).place(input_shape, self)

    def weight_shapes(self, input_shape):
        self.placement(input_shape)
        c, m = input_shape[-1], self.depth_multiplier
        shapes = {"depthwise_kernel": self.kernel_size + (c, m), "pointwise_kernel": (1, 1, c * m, self.filters)}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape):
        ho, wo = self.placement(input_shape).size
        return (ho, wo, self.filters)

    def make_function_config(self, input_shape):
        return conv.Config(self.strides, self.placement(input_shape).pads, self.activation, self.backend)

    def _forward(self, x, training):
        return conv.separable_forward(x, self.params, self.function_config(x.shape[1:]), training)

    def _backward(self, dy, ctx, need_dx):
        return conv.separable_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                "use_bias": self.use_bias}
