"""Numba CPU kernels of the projective image transform (RandomRotation, RandomZoom,
RandomTranslation); its geometry is ``image_geometry``'s, shared with the GPU's kernels."""
import math

import numpy as np
from numba import njit, prange

from . import image_geometry
from .numba_lanes import JIT

_sample_point, _round_half_away = image_geometry.compiled(njit(inline="always", **JIT))


@njit(parallel=True, **JIT)
def _projective_forward(x, t, nearest, mode, fill, y):
    # y[b, yo, xo, :] = x bilinearly (or nearest) read at the transformed point; fill outside
    n, height, width, channels = x.shape
    for job in prange(n * height):
        b, yo = job // height, job % height
        for xo in range(width):
            px, py, finite = _sample_point(t, b, xo, yo, height, width, mode)
            if not finite:
                y[b, yo, xo, :] = fill
                continue
            if nearest:
                r, q = _round_half_away(py), _round_half_away(px)
                if 0 <= r < height and 0 <= q < width:
                    y[b, yo, xo, :] = x[b, r, q, :]
                else:
                    y[b, yo, xo, :] = fill
                continue
            r0, q0 = int(math.floor(py)), int(math.floor(px))
            wy1, wx1 = py - np.float32(r0), px - np.float32(q0)
            wy0, wx0 = np.float32(1) - wy1, np.float32(1) - wx1
            for ch in range(channels):
                total = fill - fill
                for dr in range(2):
                    r = r0 + dr
                    wy = wy1 if dr else wy0
                    for dq in range(2):
                        q = q0 + dq
                        weight = wy * (wx1 if dq else wx0)
                        value = x[b, r, q, ch] if 0 <= r < height and 0 <= q < width else fill
                        total += value * weight
                y[b, yo, xo, ch] = total


@njit(parallel=True, **JIT)
def _projective_backward(dy, t, nearest, mode, dx):
    # dx[b] += each output pixel's gradient at the input pixels it read, by weight (one image per thread)
    n, height, width, channels = dy.shape
    for b in prange(n):
        dx[b] = 0
        for yo in range(height):
            for xo in range(width):
                px, py, finite = _sample_point(t, b, xo, yo, height, width, mode)
                if not finite:
                    continue
                if nearest:
                    r, q = _round_half_away(py), _round_half_away(px)
                    if 0 <= r < height and 0 <= q < width:
                        for ch in range(channels):
                            dx[b, r, q, ch] += dy[b, yo, xo, ch]
                    continue
                r0, q0 = int(math.floor(py)), int(math.floor(px))
                wy1, wx1 = py - np.float32(r0), px - np.float32(q0)
                wy0, wx0 = np.float32(1) - wy1, np.float32(1) - wx1
                for dr in range(2):
                    r = r0 + dr
                    wy = wy1 if dr else wy0
                    for dq in range(2):
                        q = q0 + dq
                        if 0 <= r < height and 0 <= q < width:
                            weight = wy * (wx1 if dq else wx0)
                            for ch in range(channels):
                                dx[b, r, q, ch] += dy[b, yo, xo, ch] * weight


def projective_transform(x, transforms, interpolation, fill_mode, fill_value):
    """As numpy_ref.projective_transform, one output row per task."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    t = np.ascontiguousarray(transforms, np.float32).reshape(x.shape[0], 8)
    _projective_forward(x, t, interpolation == "nearest", image_geometry.FILL_MODE_CODES[fill_mode],
                        x.dtype.type(fill_value), y)
    return y


def projective_transform_backward(dy, transforms, interpolation, fill_mode):
    """As numpy_ref.projective_transform_backward, one image per task."""
    dy = np.ascontiguousarray(dy)
    dx = np.empty_like(dy)
    t = np.ascontiguousarray(transforms, np.float32).reshape(dy.shape[0], 8)
    _projective_backward(dy, t, interpolation == "nearest", image_geometry.FILL_MODE_CODES[fill_mode], dx)
    return dx
