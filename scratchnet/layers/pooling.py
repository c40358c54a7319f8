"""Pooling layers: MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D."""
from ..functions import pooling
from .base import Layer, as_pair
from ..geometry import Window, check_data_format, check_padding


class _Pooling2D(Layer):
    """A window slides over each channel: ``pool_size`` windows every ``strides`` (default:
    ``pool_size``) pixels. Subclasses name the function that reduces a window."""

    forward_function = backward_function = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides")
        self.padding = check_padding(self, padding)
        check_data_format(self, data_format)

    def placement(self, input_shape):
        """Where the windows land on per-sample ``input_shape``: the pads and the output size."""
        return Window(self.pool_size, self.strides, self.padding).place(input_shape, self)

    def compute_output_shape(self, input_shape):
        ho, wo = self.placement(input_shape).size
        return (ho, wo, input_shape[2])

    def make_function_config(self, input_shape):
        return pooling.Config(self.pool_size, self.strides, self.placement(input_shape).pads, self.backend)

    def _forward(self, x, training):
        return type(self).forward_function(x, self.params, self.function_config(x.shape[1:]), training)

    def _backward(self, dy, ctx, need_dx):
        return type(self).backward_function(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """The maximum of each window. Ties send the whole gradient to the first maximum in
    row-major order."""

    forward_function, backward_function = pooling.max_forward, pooling.max_backward


class AveragePooling2D(_Pooling2D):
    """The mean of each window; with padding='same' each window averages only the real
    pixels it covers, as in Keras."""

    forward_function, backward_function = pooling.average_forward, pooling.average_backward


class _GlobalPooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        check_data_format(self, data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.describe()} expects inputs shaped (height, width, channels), got "
                             f"{(None,) + tuple(input_shape)}")
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of each channel over the whole image: (N, H, W, C) -> (N, C)."""

    def _forward(self, x, training):
        return pooling.global_average_forward(x, self.params, self.keepdims, training)

    def _backward(self, dy, ctx, need_dx):
        return pooling.global_average_backward(dy, ctx, need_dx)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """The maximum of each channel over the whole image (ties: the first, as max-pooling)."""

    def _forward(self, x, training):
        return pooling.global_max_forward(x, self.params, self.keepdims, training)

    def _backward(self, dy, ctx, need_dx):
        return pooling.global_max_backward(dy, ctx, need_dx)
