"""Image transforms for the preprocessing and augmentation layers, each linear in the pixels.

Geometric transforms (rotation, zoom, translation) are a sampling: each output pixel is a
weighted sum of at most four input pixels (bilinear) or one (nearest), plus ``fill_value``
times the weight that fell outside the image (``fill_mode='constant'``). The backend's
``projective_transform`` kernel gathers; its backward scatters the same weights back.
Resizing is separable: one matrix along the height and one along the width, y = Rh x Rw^T
per channel.

Coordinates follow TensorFlow's ImageProjectiveTransformV3, which Keras calls: output pixel
(x, y) reads input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k) with
k = c0 x + c1 y + 1, computed in float32; the fill modes map a point outside the image back
inside before interpolating, as TensorFlow does (``reflect``: d c b a | a b c d | d c b a;
``wrap``: a b c d | a b c d; ``nearest``: a a | a b c d | d d; ``constant``: fill_value).
"""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..arrays import module_of

FILL_MODES = ("reflect", "wrap", "constant", "nearest")   # kernels/image_geometry.FILL_MODE_CODES
INTERPOLATIONS = ("bilinear", "nearest")


# ----- projective transforms (rotation, zoom, translation) ------------------------------------------
@dataclass(frozen=True)
class Projective:
    """How a projective transform reads: ``interpolation`` ('bilinear' or 'nearest'),
    ``fill_mode`` and ``fill_value``, and the backend whose kernels run it."""
    interpolation: str
    fill_mode: str
    fill_value: float
    backend: object


class ProjectiveContext(NamedTuple):
    """A projective transform call: the transforms (N, 8) and the configuration."""
    transforms: object
    config: Projective


def projective_forward(x, transforms, config):
    """Images x (N, H, W, C) under one transform each: ``transforms`` (N, 8), rows a0 a1 a2 b0
    b1 b2 c0 c1 (see the module's docstring); (y, ProjectiveContext)."""
    transforms = np.ascontiguousarray(transforms, np.float32).reshape(x.shape[0], 8)
    y = config.backend.projective_transform(x, transforms, config.interpolation, config.fill_mode, config.fill_value)
    return y, ProjectiveContext(transforms, config)


def projective_backward(dy, ctx, need_dx=True):
    """(dx: dy scattered back along the sampling weights, {})."""
    if not need_dx:
        return None, {}
    transforms, config = ctx.transforms, ctx.config
    return config.backend.projective_transform_backward(dy, transforms, config.interpolation, config.fill_mode), {}


# ----- flips ----------------------------------------------------------------------------------------
class FlipContext(NamedTuple):
    """A flip call: which images were flipped top to bottom (rows) and left to right (cols),
    as (N, 1, 1, 1) masks."""
    rows: object
    cols: object


def flip_forward(x, flip_rows, flip_cols):
    """Flip the images whose entry of ``flip_rows`` (N,) is true top to bottom, and those of
    ``flip_cols`` left to right; the context is the two masks (a flip is its own inverse)."""
    xp = module_of(x)
    rows, cols = xp.asarray(flip_rows).reshape(-1, 1, 1, 1), xp.asarray(flip_cols).reshape(-1, 1, 1, 1)
    y = xp.where(rows, x[:, ::-1], x)
    y = xp.where(cols, y[:, :, ::-1], y)
    return y, FlipContext(rows, cols)


def flip_backward(dy, ctx, need_dx=True):
    """(dx: dy flipped back, {})."""
    if not need_dx:
        return None, {}
    xp = module_of(dy)
    rows, cols = ctx.rows, ctx.cols
    dx = xp.where(cols, dy[:, :, ::-1], dy)
    return xp.where(rows, dx[:, ::-1], dx), {}


# ----- contrast -----------------------------------------------------------------------------------
class ContrastContext(NamedTuple):
    """A contrast call: each image's factor (N, 1, 1, 1) and where the output was not clipped."""
    factors: object
    inside: object


def contrast_forward(x, factors, low, high):
    """y = clip((x - m) * f + m, low, high) with m each image's mean per channel and f its
    factor (N,)."""
    xp = module_of(x)
    f = xp.asarray(factors, dtype=x.dtype).reshape(-1, 1, 1, 1)
    mean = x.mean(axis=(1, 2), keepdims=True)
    z = (x - mean) * f + mean
    inside = (z >= low) & (z <= high)
    return xp.clip(z, x.dtype.type(low), x.dtype.type(high)), ContrastContext(f, inside)


def contrast_backward(dy, ctx, need_dx=True):
    """(dx, {}): through the clip, the scaling and each image's mean."""
    if not need_dx:
        return None, {}
    f, inside = ctx.factors, ctx.inside
    g = dy * inside
    pixels = g.shape[1] * g.shape[2]
    return g * f + (1 - f) * g.sum(axis=(1, 2), keepdims=True) / g.dtype.type(pixels), {}


# ----- resizing -----------------------------------------------------------------------------------
def resize_matrix(in_size, out_size, interpolation="bilinear", dtype=np.float32):
    """(out_size, in_size): the 1-D resampling TensorFlow's resize does along one axis
    (half-pixel centres, no antialiasing)."""
    scale = np.float32(in_size / out_size)
    position = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
    matrix = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    if interpolation == "nearest":
        matrix[rows, np.minimum(np.floor(position).astype(int), in_size - 1)] = 1
        return matrix.astype(dtype)
    position -= np.float32(0.5)
    floor = np.floor(position)
    lerp = position - floor
    np.add.at(matrix, (rows, np.maximum(floor, 0).astype(int)), 1 - lerp)
    np.add.at(matrix, (rows, np.minimum(floor + 1, in_size - 1).astype(int)), lerp)
    return matrix.astype(dtype)


@dataclass(frozen=True)
class Window:
    """The part of (H, W) a resize reads: rows top..top+height, columns left..left+width;
    with ``pad`` > 0 rows (or columns) of fill on each side instead (pad_to_aspect_ratio)."""
    top: int
    left: int
    height: int
    width: int
    pad_rows: int = 0
    pad_cols: int = 0


class ResizeContext(NamedTuple):
    """A resize call: the input's shape, the Window it read, and the row and column
    resampling matrices (None when no resampling was needed)."""
    x_shape: tuple
    window: Window
    rows: object
    cols: object


def resize_forward(x, size, window, interpolation="bilinear", fill_value=0.0):
    """Images (N, H, W, C) cropped (or padded) to ``window`` and resized to ``size``; (y, ResizeContext)."""
    xp = module_of(x)
    part = x[:, window.top:window.top + window.height, window.left:window.left + window.width]
    if window.pad_rows or window.pad_cols:
        pads = ((0, 0), (window.pad_rows,) * 2, (window.pad_cols,) * 2, (0, 0))
        part = xp.pad(part, pads, constant_values=x.dtype.type(fill_value))
    height, width = part.shape[1:3]
    if (height, width) == tuple(size):
        return part.copy(), ResizeContext(x.shape, window, None, None)     # a new array, never a view of the input
    rows = xp.asarray(resize_matrix(height, size[0], interpolation, x.dtype))
    cols = xp.asarray(resize_matrix(width, size[1], interpolation, x.dtype))
    n, channels = x.shape[0], x.shape[3]
    t = xp.matmul(rows, part.reshape(n, height, width * channels)).reshape(n, size[0], width, channels)
    return xp.matmul(cols, t), ResizeContext(x.shape, window, rows, cols)


def resize_backward(dy, ctx, need_dx=True):
    """(dx: dy resampled back and placed in the window it came from, {})."""
    if not need_dx:
        return None, {}
    xp = module_of(dy)
    in_shape, window, rows, cols = ctx.x_shape, ctx.window, ctx.rows, ctx.cols
    n, channels = dy.shape[0], dy.shape[3]
    if rows is not None:
        dt = xp.matmul(cols.T, dy)
        width = cols.shape[1]
        dy = xp.matmul(rows.T, dt.reshape(n, dt.shape[1], width * channels)).reshape(n, rows.shape[1], width, channels)
    if window.pad_rows or window.pad_cols:
        dy = dy[:, window.pad_rows:dy.shape[1] - window.pad_rows, window.pad_cols:dy.shape[2] - window.pad_cols]
    dx = xp.zeros(in_shape, dy.dtype)
    dx[:, window.top:window.top + window.height, window.left:window.left + window.width] = dy
    return dx, {}
