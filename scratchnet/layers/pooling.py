"""MaxPooling2D: the largest value of each window; the gradient goes to that one input."""
from ..functions import pooling
from .base import Layer, as_pair
from .conv import check_data_format, check_padding, window_geometry


class MaxPooling2D(Layer):
    """Max over ``pool_size`` windows every ``strides`` (default: ``pool_size``) pixels.
    Ties send the whole gradient to the first maximum in row-major order."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides")
        self.padding = check_padding(self, padding)
        check_data_format(self, data_format)

    def compute_output_shape(self, input_shape):
        _, (ho, wo) = window_geometry(self, input_shape, self.pool_size)
        return (ho, wo, input_shape[2])

    def make_function_config(self):
        pads = window_geometry(self, self.input_shape, self.pool_size)[0]
        return pooling.Config(self.pool_size, self.strides, pads, self.backend)

    def _forward(self, x, training):
        return pooling.max_forward(x, self.params, self.function_config(), training)

    def _backward(self, dy, ctx, need_dx):
        return pooling.max_backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}
