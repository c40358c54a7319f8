"""Upsampling by whole factors, as Keras 3's UpSampling2D computes it: 'nearest' repeats each
row ``sh`` times and each column ``sw`` times; 'bilinear' resizes (H, W) to (H*sh, W*sw) as
TensorFlow's resize does (half-pixel centres, no antialiasing), with the backend's
``resize_bilinear`` kernels (two taps per axis) where it has them, else through
``image_transform.resize_forward``'s row and column matrices (dense products, the GPU's way)."""
from typing import NamedTuple

from . import image_transform

INTERPOLATIONS = ("nearest", "bilinear")


class UpSampleContext(NamedTuple):
    """An upsampling call: the factors (sh, sw), the interpolation, and for 'bilinear' the
    matrix resize's own context (its resampling matrices), or the backend whose resize kernel
    ran (``kernels``); None where not used."""
    size: tuple
    interpolation: str
    resize: object
    kernels: object = None


def upsample_forward(x, params, size, interpolation="nearest", training=False, backend=None):
    """Images (N, H, W, C) -> (N, H*sh, W*sw, C); (y, UpSampleContext). ``backend``: the
    kernel set whose ``resize_bilinear`` does 'bilinear', if it has one."""
    sh, sw = size
    if interpolation == "nearest":
        return x.repeat(sh, axis=1).repeat(sw, axis=2), UpSampleContext(size, interpolation, None)
    if interpolation != "bilinear":
        raise ValueError(f"upsampling interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    h, w = x.shape[1:3]
    if backend is not None and backend.resize_bilinear is not None:
        return backend.resize_bilinear(x, (h * sh, w * sw)), UpSampleContext(size, interpolation, None, backend)
    whole = image_transform.Window(0, 0, h, w)
    y, resize = image_transform.resize_forward(x, (h * sh, w * sw), whole, "bilinear")
    return y, UpSampleContext(size, interpolation, resize)


def upsample_backward(dy, ctx, need_dx=True):
    """(dx, {}): for 'nearest' the sum of each (sh, sw) block of dy; for 'bilinear' dy
    scattered back with the interpolation's weights (the transposed resampling matrices)."""
    if not need_dx:
        return None, {}
    (sh, sw), (n, height, width, c) = ctx.size, dy.shape
    if ctx.kernels is not None:
        return ctx.kernels.resize_bilinear_backward(dy, (height // sh, width // sw)), {}
    if ctx.interpolation == "bilinear":
        return image_transform.resize_backward(dy, ctx.resize, need_dx)
    return dy.reshape(n, height // sh, sh, width // sw, sw, c).sum(axis=(2, 4)), {}
