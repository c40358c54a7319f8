"""Numba CPU kernels of batch normalisation (with the ReLU after it, when fused)."""
import numpy as np
from numba import prange

from .numba_lanes import DIVIDING, kernel


@kernel
def _column_sums(x2, parts, zero):
    # parts[p] = column sums of the p-th of a fixed split of x2's rows
    rows, cols = x2.shape
    count = parts.shape[0]
    for p in prange(count):
        acc = parts[p]
        for k in range(cols):
            acc[k] = zero
        for r in range(p * rows // count, (p + 1) * rows // count):
            row = x2[r]
            for k in range(cols):
                acc[k] += row[k]


@kernel
def _centred_square_sums(x2, mean, parts, zero):
    # parts[p] = column sums of (x2 - mean)^2 over the p-th of a fixed split of the rows
    rows, cols = x2.shape
    count = parts.shape[0]
    for p in prange(count):
        acc = parts[p]
        for k in range(cols):
            acc[k] = zero
        for r in range(p * rows // count, (p + 1) * rows // count):
            row = x2[r]
            for k in range(cols):
                d = row[k] - mean[k]
                acc[k] += d * d


@kernel
def _scale_shift(x2, mean, scale, shift, relu, zero, y2):
    # y = (x - mean) * scale + shift, then max(y, 0) if relu; row by row
    rows, cols = x2.shape
    for r in prange(rows):
        row, out = x2[r], y2[r]
        if relu:
            for k in range(cols):
                out[k] = max((row[k] - mean[k]) * scale[k] + shift[k], zero)
        else:
            for k in range(cols):
                out[k] = (row[k] - mean[k]) * scale[k] + shift[k]


@kernel
def _bn_backward_sums(dy2, x2, mean, inv_std, y2, relu, parts_dy, parts_dyx, zero):
    # per fixed row part: column sums of g and of g * xhat, g = dy (0 where y <= 0 if relu),
    # xhat = (x - mean) * inv_std recomputed from x
    rows, cols = dy2.shape
    count = parts_dy.shape[0]
    for p in prange(count):
        a, b = parts_dy[p], parts_dyx[p]
        for k in range(cols):
            a[k] = zero
            b[k] = zero
        for r in range(p * rows // count, (p + 1) * rows // count):
            g, xr, yr = dy2[r], x2[r], y2[r]
            for k in range(cols):
                gk = g[k] if (yr[k] > zero or not relu) else zero
                a[k] += gk
                b[k] += gk * ((xr[k] - mean[k]) * inv_std[k])


@kernel(**DIVIDING)
def _bn_backward_input(dy2, x2, mean, inv_std, y2, relu, scale, dbeta, dgamma, n, zero, dx2):
    # dx = scale / n * (n * g - dbeta - xhat * dgamma), g and xhat as in _bn_backward_sums; row by row
    rows, cols = dy2.shape
    for r in prange(rows):
        g, xr, yr, out = dy2[r], x2[r], y2[r], dx2[r]
        for k in range(cols):
            gk = g[k] if (yr[k] > zero or not relu) else zero
            xh = (xr[k] - mean[k]) * inv_std[k]
            out[k] = scale[k] / n * (n * gk - dbeta[k] - xh * dgamma[k])


# ----- the kernel API -------------------------------------------------------------------------
BN_PARTS = 8   # fixed split of batch normalisation's column sums (same result for any thread count)


def batchnorm_forward(x2, gamma, beta, epsilon, relu=False):
    """As numpy_ref.batchnorm_forward. The cache keeps x (and y after a ReLU), not xhat:
    backward recomputes xhat, so forward writes one array instead of two."""
    x2 = np.ascontiguousarray(x2)
    rows, c = x2.shape
    t = x2.dtype.type
    parts = np.empty((BN_PARTS, c), x2.dtype)
    _column_sums(x2.size, x2, parts, t(0))
    mean = parts.sum(axis=0) / t(rows)
    _centred_square_sums(x2.size, x2, mean, parts, t(0))
    var = parts.sum(axis=0) / t(rows)
    inv_std = 1 / np.sqrt(var + t(epsilon))
    scale = inv_std if gamma is None else gamma * inv_std
    shift = np.zeros(c, x2.dtype) if beta is None else beta
    y2 = np.empty_like(x2)
    _scale_shift(x2.size, x2, mean, scale, shift, relu, t(0), y2)
    return y2, mean, var, (x2, mean, inv_std, y2 if relu else None)


def batchnorm_backward(dy2, cache, gamma):
    """As numpy_ref.batchnorm_backward."""
    x2, mean, inv_std, rectified = cache
    dy2 = np.ascontiguousarray(dy2)
    rows, c = dy2.shape
    t = dy2.dtype.type
    relu = rectified is not None
    y2 = rectified if relu else x2     # not read without a ReLU
    parts_dy, parts_dyx = np.empty((BN_PARTS, c), dy2.dtype), np.empty((BN_PARTS, c), dy2.dtype)
    _bn_backward_sums(dy2.size, dy2, x2, mean, inv_std, y2, relu, parts_dy, parts_dyx, t(0))
    dbeta, dgamma = parts_dy.sum(axis=0), parts_dyx.sum(axis=0)
    scale = inv_std if gamma is None else gamma * inv_std
    dx2 = np.empty_like(dy2)
    _bn_backward_input(dy2.size, dy2, x2, mean, inv_std, y2, relu, scale, dbeta, dgamma, t(rows), t(0), dx2)
    return dx2, dgamma, dbeta


def batchnorm_inference(x2, gamma, beta, mean, var, epsilon, relu=False):
    """As numpy_ref.batchnorm_inference."""
    x2 = np.ascontiguousarray(x2)
    c = x2.shape[1]
    t = x2.dtype.type
    inv_std = 1 / np.sqrt(var + t(epsilon))
    scale = inv_std if gamma is None else gamma * inv_std
    shift = np.zeros(c, x2.dtype) if beta is None else beta
    y2 = np.empty_like(x2)
    _scale_shift(x2.size, x2, mean, scale, shift, relu, t(0), y2)
    return y2
