"""MaxPooling2D: the largest value of each window; the gradient goes to that one input."""
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
        self.pads, (ho, wo) = window_geometry(self, input_shape, self.pool_size)
        return (ho, wo, input_shape[2])

    def call(self, x, training):
        y, argmax = self.backend.maxpool2d_forward(x, self.pool_size, self.strides, self.pads)
        self._cache = (argmax, x.shape) if training else None
        return y

    def call_backward(self, dy, need_dx):
        argmax, x_shape = self._cache
        return self.backend.maxpool2d_backward(dy, argmax, x_shape, self.pool_size, self.strides,
                                               self.pads)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}
