"""Preprocessing layers that are part of the model: Rescaling."""
from .base import Layer


class Rescaling(Layer):
    """y = x * scale + offset (e.g. Rescaling(1 / 255) turns 0..255 pixels into 0..1), in
    training and inference alike."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def _forward(self, x, training):
        t = x.dtype.type
        return x * t(self.scale) + t(self.offset), None

    def _backward(self, dy, ctx, need_dx):
        return (dy * dy.dtype.type(self.scale) if need_dx else None), {}

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
