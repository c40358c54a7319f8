"""Upsampling by whole factors, as Keras 3's UpSampling2D computes it: 'nearest' repeats each
row ``sh`` times and each column ``sw`` times; 'bilinear' resizes (H, W) to (H*sh, W*sw) as
TensorFlow's resize does (half-pixel centres, no antialiasing), through
``image_transform.resize_forward``'s row and column matrices."""
from typing import NamedTuple

from . import image_transform

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampleContext(NamedTuple):
    """An upsampling call: the factors (sh, sw), the interpolation, and for 'bilinear' the
    resize's own context (its resampling matrices); None for 'nearest'."""
    size: tuple
    interpolation: str
    resize: object


def upsample_forward(x, params, size, interpolation="nearest", training=False):
    """Images (N, H, W, C) -> (N, H*sh, W*sw, C); (y, UpSampleContext)."""
    sh, sw = size
    if interpolation == "nearest":
        return x.repeat(sh, axis=1).repeat(sw, axis=2), UpSampleContext(size, interpolation, None)
    if interpolation != "bilinear":
        raise ValueError(f"upsampling interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    h, w = x.shape[1:3]
    whole = image_transform.Window(0, 0, h, w)
    y, resize = image_transform.resize_forward(x, (h * sh, w * sw), whole, "bilinear")
    return y, UpSampleContext(size, interpolation, resize)


def upsample_backward(dy, ctx, need_dx=True):
    """(dx, {}): for 'nearest' the sum of each (sh, sw) block of dy; for 'bilinear' dy
    scattered back with the interpolation's weights (the transposed resampling matrices)."""
    if not need_dx:
        return None, {}
    if ctx.interpolation == "bilinear":
        return image_transform.resize_backward(dy, ctx.resize, need_dx)
    (sh, sw), (n, height, width, c) = ctx.size, dy.shape
    return dy.reshape(n, height // sh, sh, width // sw, sw, c).sum(axis=(2, 4)), {}
