"""Numba CPU kernels of the projective image transform (RandomRotation, RandomZoom,
RandomTranslation), whose geometry is ``image_geometry``'s, shared with the GPU's kernels;
and of the bilinear resize (UpSampling2D's 'bilinear'), with numpy_ref's taps."""
import math

import numpy as np
from numba import njit, prange

from . import image_geometry
from .numba_lanes import JIT, kernel
from .numpy_ref import bilinear_taps

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


@kernel
def _resize_bilinear(x, r0, r1, a0, a1, c0, c1, b0, b1, y):
    # y[b, i, j] = b0[j] * (a0[i] x[b, r0[i], c0[j]] + a1[i] x[b, r1[i], c0[j]])
    #            + b1[j] * (a0[i] x[b, r0[i], c1[j]] + a1[i] x[b, r1[i], c1[j]])
    n, out_h, out_w, channels = y.shape
    for job in prange(n * out_h):
        b, i = job // out_h, job % out_h
        top, bottom, u, v = x[b, r0[i]], x[b, r1[i]], a0[i], a1[i]
        for j in range(out_w):
            out, p, q, s, t = y[b, i, j], c0[j], c1[j], b0[j], b1[j]
            for ch in range(channels):
                out[ch] = s * (u * top[p, ch] + v * bottom[p, ch]) + t * (u * top[q, ch] + v * bottom[q, ch])


@kernel
def _resize_bilinear_backward(dy, r0, r1, a0, a1, c0, c1, b0, b1, dx):
    # dx[b] = the adjoint of _resize_bilinear on image b: each dy row's columns added back onto
    # the input columns (rows[i]), then each rows[i] onto its two input rows, with their weights;
    # in numpy_ref's order (all first taps, then all second taps), so the sums are the same bits
    n, out_h, out_w, channels = dy.shape
    width = dx.shape[2]
    for b in prange(n):
        rows = np.zeros((out_h, width, channels), dy.dtype)
        for taps, weights in ((c0, b0), (c1, b1)):
            for i in range(out_h):
                for j in range(out_w):
                    g, dst, s = dy[b, i, j], rows[i, taps[j]], weights[j]
                    for ch in range(channels):
                        dst[ch] += s * g[ch]
        dx[b] = 0
        for taps, weights in ((r0, a0), (r1, a1)):
            for i in range(out_h):
                dst, src, u = dx[b, taps[i]], rows[i], weights[i]
                for q in range(width):
                    for ch in range(channels):
                        dst[q, ch] += u * src[q, ch]


def resize_bilinear(x, size):
    """As numpy_ref.resize_bilinear, one output row per task."""
    x = np.ascontiguousarray(x)
    y = np.empty((x.shape[0], size[0], size[1], x.shape[3]), x.dtype)
    taps = bilinear_taps(x.shape[1], size[0], x.dtype) + bilinear_taps(x.shape[2], size[1], x.dtype)
    _resize_bilinear(y.size, x, *taps, y)
    return y


def resize_bilinear_backward(dy, in_size):
    """As numpy_ref.resize_bilinear_backward, one image per task."""
    dy = np.ascontiguousarray(dy)
    dx = np.empty((dy.shape[0], in_size[0], in_size[1], dy.shape[3]), dy.dtype)
    taps = bilinear_taps(in_size[0], dy.shape[1], dy.dtype) + bilinear_taps(in_size[1], dy.shape[2], dy.dtype)
    _resize_bilinear_backward(dy.size, dy, *taps, dx)
    return dx
