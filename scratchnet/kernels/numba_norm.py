"""Numba CPU kernels of batch normalisation (with the ReLU after it, when fused)."""
import numpy as np
from numba import njit, prange

from .numba_lanes import DIVIDING, JIT, kernel


@kernel
def _part_moments(x2, means, squares, zero):
    # per part p of a fixed split of x2's rows: the part's column means, and its column sums of
    # squared deviations from them; the part's second pass reads it from cache
    rows, cols = x2.shape
    count = means.shape[0]
    for p in prange(count):
        first, last = p * rows // count, (p + 1) * rows // count
        mean, square = means[p], squares[p]
        for k in range(cols):
            mean[k] = zero
            square[k] = zero
        if last == first:
            continue
        for r in range(first, last):
            row = x2[r]
            for k in range(cols):
                mean[k] += row[k]
        for k in range(cols):
            mean[k] /= last - first
        for r in range(first, last):
            row = x2[r]
            for k in range(cols):
                d = row[k] - mean[k]
                square[k] += d * d


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


@njit(inline="always", **JIT)
def _passed(g, x, mean, scale, shift, relu, zero):
    # dy where the forward pass's ReLU let it through (all of it without one): the forward
    # pass's pre-ReLU value, recomputed from x by the same expression as _scale_shift, is > 0
    if not relu or (x - mean) * scale + shift > zero:
        return g
    return zero


@kernel
def _bn_backward_sums(dy2, x2, mean, inv_std, scale, shift, relu, parts_dy, parts_dyx, zero):
    # per fixed row part: column sums of g and of g * xhat, g = dy through the ReLU (if any),
    # xhat = (x - mean) * inv_std recomputed from x
    rows, cols = dy2.shape
    count = parts_dy.shape[0]
    for p in prange(count):
        a, b = parts_dy[p], parts_dyx[p]
        for k in range(cols):
            a[k] = zero
            b[k] = zero
        for r in range(p * rows // count, (p + 1) * rows // count):
            g, xr = dy2[r], x2[r]
            for k in range(cols):
                gk = _passed(g[k], xr[k], mean[k], scale[k], shift[k], relu, zero)
                a[k] += gk
                b[k] += gk * ((xr[k] - mean[k]) * inv_std[k])


@kernel(**DIVIDING)
def _bn_backward_input(dy2, x2, mean, inv_std, scale, shift, relu, dbeta, dgamma, n, zero, dx2):
    # dx = scale / n * (n * g - dbeta - xhat * dgamma), g and xhat as in _bn_backward_sums; row by row
    rows, cols = dy2.shape
    for r in prange(rows):
        g, xr, out = dy2[r], x2[r], dx2[r]
        for k in range(cols):
            gk = _passed(g[k], xr[k], mean[k], scale[k], shift[k], relu, zero)
            xh = (xr[k] - mean[k]) * inv_std[k]
            out[k] = scale[k] / n * (n * gk - dbeta[k] - xh * dgamma[k])


# ----- the kernel API -------------------------------------------------------------------------
BN_PARTS = 8   # fixed split of batch normalisation's column sums (same result for any thread count)
BN_PART_BYTES = 256 << 10   # at most this much of x per part of the mean and variance: it stays in cache


def _moments(x2):
    """(mean, variance) per column: each part's mean and squared deviations (_part_moments),
    combined as Chan, Golub and LeVeque do, M2 = sum(M2_p + n_p (mean_p - mean)^2). One pass
    over memory instead of two; as exact as the two-pass formula. The split depends on the
    size alone."""
    rows, c = x2.shape
    t = x2.dtype.type
    count = max(1, min(rows, max(BN_PARTS, -(-x2.nbytes // BN_PART_BYTES))))
    means, squares = np.empty((count, c), x2.dtype), np.empty((count, c), x2.dtype)
    _part_moments(x2.size, x2, means, squares, t(0))
    mean, var = np.empty(c, x2.dtype), np.empty(c, x2.dtype)
    _combine_moments(means, squares, rows, mean, var)
    return mean, var


@njit(**JIT)
def _combine_moments(means, squares, rows, mean, var):
    # mean and var of all rows from the parts' means and squared deviations (parts as in _part_moments)
    count, cols = means.shape
    for k in range(cols):
        total = means[0, k] * 0
        for p in range(count):
            total += means[p, k] * ((p + 1) * rows // count - p * rows // count)
        mean[k] = total / rows
    for k in range(cols):
        total = means[0, k] * 0
        for p in range(count):
            d = means[p, k] - mean[k]
            total += squares[p, k] + d * d * ((p + 1) * rows // count - p * rows // count)
        var[k] = total / rows


def batchnorm_forward(x2, gamma, beta, epsilon, relu=False):
    """As numpy_ref.batchnorm_forward. The cache keeps x and what the output was made with,
    not xhat or y: backward recomputes xhat and the ReLU's mask, so forward writes one array
    and backward reads two."""
    x2 = np.ascontiguousarray(x2)
    c = x2.shape[1]
    t = x2.dtype.type
    mean, var = _moments(x2)
    inv_std = 1 / np.sqrt(var + t(epsilon))
    scale = inv_std if gamma is None else gamma * inv_std
    shift = np.zeros(c, x2.dtype) if beta is None else np.ascontiguousarray(beta)
    y2 = np.empty_like(x2)
    _scale_shift(x2.size, x2, mean, scale, shift, relu, t(0), y2)
    return y2, mean, var, (x2, mean, inv_std, scale, shift, relu)


def batchnorm_backward(dy2, cache, gamma):
    """As numpy_ref.batchnorm_backward."""
    x2, mean, inv_std, scale, shift, relu = cache
    dy2 = np.ascontiguousarray(dy2)
    rows, c = dy2.shape
    t = dy2.dtype.type
    parts_dy, parts_dyx = np.empty((BN_PARTS, c), dy2.dtype), np.empty((BN_PARTS, c), dy2.dtype)
    _bn_backward_sums(dy2.size, dy2, x2, mean, inv_std, scale, shift, relu, parts_dy, parts_dyx, t(0))
    dbeta, dgamma = parts_dy.sum(axis=0), parts_dyx.sum(axis=0)
    dx2 = np.empty_like(dy2)
    _bn_backward_input(dy2.size, dy2, x2, mean, inv_std, scale, shift, relu, dbeta, dgamma, t(rows), t(0), dx2)
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
