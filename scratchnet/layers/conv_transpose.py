"""Conv2DTranspose: the transposed (fractionally strided) 2-D convolution, as Keras 3's."""
from ..functions import conv_transpose
from ..geometry import image_shape
from .base import Layer
from .conv import set_convolution_arguments, set_weight_arguments


class Conv2DTranspose(Layer):
    """The adjoint of a Conv2D: each input pixel spreads a (kh, kw, filters) patch, scaled by
    its channels, over an output ``strides`` times larger. Its kernel is
    (kh, kw, filters, input channels), Keras's layout (the one of the Conv2D it transposes);
    the output size follows Keras's rule (see ``functions.conv_transpose.padding_1d``)."""

    has_activation = True
    penalized_weights = {"kernel": "kernel", "bias": "bias"}

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.set_penalties({"kernel_regularizer": kernel_regularizer, "bias_regularizer": bias_regularizer,
                            "kernel_constraint": kernel_constraint, "bias_constraint": bias_constraint})
        set_convolution_arguments(self, filters, kernel_size, strides, padding, data_format, dilation_rate)
        if output_padding is not None:
            output_padding = (output_padding,) * 2 if isinstance(output_padding, int) else tuple(output_padding)
            if len(output_padding) != 2 or not all(isinstance(p, int) and p >= 0 for p in output_padding):
                raise ValueError(f"{self.describe()}: output_padding must be None, a non-negative int or a pair "
                                 f"of them, got {output_padding!r}")
            if any(p >= s for p, s in zip(output_padding, self.strides)):
                raise ValueError(f"{self.describe()}: output_padding {output_padding} must be smaller than the "
                                 f"stride on each axis, got output_padding={output_padding}, strides={self.strides}")
        self.output_padding = output_padding
        set_weight_arguments(self, use_bias, kernel_initializer, bias_initializer)

    @property
    def window(self):
        """The extent of a (dilated) kernel."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))

    def placement(self, input_shape):
        """(pads, (rows, columns)): the padding of the convolution this layer transposes, on
        the output, and the output's size for per-sample ``input_shape`` (H, W, C)."""
        image_shape(self, input_shape)
        pads, size = (), ()
        for axis in range(2):
            extra = None if self.output_padding is None else self.output_padding[axis]
            known = input_shape[axis]      # None: an image of unknown size (the padding does not depend on it)
            before, after, length = conv_transpose.padding_1d(1 if known is None else known, self.kernel_size[axis],
                                                              self.strides[axis], self.dilation_rate[axis],
                                                              self.padding, extra)
            if known is None:
                length = None
            elif length < 1:
                raise ValueError(f"{self.describe()}: a {self.window} kernel with padding {self.padding!r} and "
                                 f"strides {self.strides} gives an output of {length} on axis {axis} for an input "
                                 f"of {input_shape[0]}x{input_shape[1]}; use padding='valid' or a larger input")
            pads, size = pads + (before, after), size + (length,)
        return pads, size

    def weight_shapes(self, input_shape):
        self.placement(input_shape)
        shapes = {"kernel": self.kernel_size + (self.filters, input_shape[-1])}
        if self.use_bias:
            shapes["bias"] = (self.filters,)
        return shapes

    def compute_output_shape(self, input_shape):
        return self.placement(input_shape)[1] + (self.filters,)

    def make_function_config(self, input_shape):
        pads, _ = self.placement(input_shape)
        return conv_transpose.Config(self.strides, pads, self.dilation_rate, self.activation, self.backend)

    def _forward(self, x, training):
        return conv_transpose.forward(x, self.params, self.function_config(x.shape[1:]), training)

    def _backward(self, dy, ctx, need_dx):
        return conv_transpose.backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "output_padding": self.output_padding,
                "dilation_rate": self.dilation_rate, "use_bias": self.use_bias}
