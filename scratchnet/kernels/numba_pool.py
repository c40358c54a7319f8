"""Numba CPU kernels of max and average pooling (a max-pooling fused with the convolution before
it is in ``numba_conv``)."""
import numpy as np
from numba import prange

from . import im2col_gemm
from .numba_lanes import kernel


@kernel
def _maxpool_forward(x, kh, kw, sh, sw, pt, pl, y, argmax, lowest):
    # y = max over each window (padding never wins); argmax = row-major index of the first max
    n, h, w, c = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for r in prange(n * ho):
        b = r // ho
        i = r % ho
        for j in range(wo):
            best = y[b, i, j]
            at = argmax[b, i, j]
            for ch in range(c):
                best[ch] = lowest
                at[ch] = 0
            for di in range(kh):
                hi = i * sh + di - pt
                if hi < 0 or hi >= h:
                    continue
                for dj in range(kw):
                    wj = j * sw + dj - pl
                    if wj < 0 or wj >= w:
                        continue
                    k = np.int32(di * kw + dj)
                    v = x[b, hi, wj]
                    for ch in range(c):      # strict > keeps the first of equal maxima
                        better = v[ch] > best[ch]
                        at[ch] = k if better else at[ch]
                        best[ch] = max(best[ch], v[ch])


@kernel
def _maxpool_backward(dy, argmax, kh, kw, sh, sw, pt, pl, dx, zero):
    # dx[window's argmax position] += dy, one image per iteration (windows may overlap)
    n, ho, wo, c = dy.shape
    h, w = dx.shape[1], dx.shape[2]
    for b in prange(n):
        image = dx[b].reshape(h * w * c)
        for t in range(h * w * c):
            image[t] = 0
        for i in range(ho):
            for j in range(wo):
                g = dy[b, i, j]
                at = argmax[b, i, j]
                for di in range(kh):
                    hi = i * sh + di - pt
                    if hi < 0 or hi >= h:
                        continue
                    for dj in range(kw):
                        wj = j * sw + dj - pl
                        if wj < 0 or wj >= w:
                            continue
                        k = np.int32(di * kw + dj)
                        dst = dx[b, hi, wj]
                        for ch in range(c):
                            dst[ch] += g[ch] if at[ch] == k else zero


@kernel
def _avgpool_forward(x, kh, kw, sh, sw, pt, pl, y, zero, one):
    # y = mean over each window of the real pixels it covers (padding not counted)
    n, h, w, c = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for r in prange(n * ho):
        b = r // ho
        i = r % ho
        for j in range(wo):
            acc = y[b, i, j]
            for ch in range(c):
                acc[ch] = zero
            count = zero
            for di in range(kh):
                hi = i * sh + di - pt
                if hi < 0 or hi >= h:
                    continue
                for dj in range(kw):
                    wj = j * sw + dj - pl
                    if wj < 0 or wj >= w:
                        continue
                    count += one
                    v = x[b, hi, wj]
                    for ch in range(c):
                        acc[ch] += v[ch]
            inv = one / count
            for ch in range(c):
                acc[ch] *= inv


@kernel
def _avgpool_backward(dy, kh, kw, sh, sw, pt, pl, dx, zero, one):
    # dx[window pixels] += dy / (real pixels in the window), one image per iteration
    n, ho, wo, c = dy.shape
    h, w = dx.shape[1], dx.shape[2]
    for b in prange(n):
        image = dx[b].reshape(h * w * c)
        for t in range(h * w * c):
            image[t] = zero
        for i in range(ho):
            for j in range(wo):
                count = zero
                for di in range(kh):
                    hi = i * sh + di - pt
                    if hi >= 0 and hi < h:
                        for dj in range(kw):
                            wj = j * sw + dj - pl
                            if wj >= 0 and wj < w:
                                count += one
                inv = one / count
                g = dy[b, i, j]
                for di in range(kh):
                    hi = i * sh + di - pt
                    if hi < 0 or hi >= h:
                        continue
                    for dj in range(kw):
                        wj = j * sw + dj - pl
                        if wj < 0 or wj >= w:
                            continue
                        dst = dx[b, hi, wj]
                        for ch in range(c):
                            dst[ch] += g[ch] * inv


# ----- the kernel API -------------------------------------------------------------------------
def maxpool2d_forward(x, pool, strides, pads):
    """Max over each window. Returns (y, argmax) with argmax (int32) the row-major index
    inside the window of the first maximum."""
    x = np.ascontiguousarray(x)
    ho, wo = im2col_gemm.geometry(x.shape, pool, strides, pads)[6:]
    y = np.empty((x.shape[0], ho, wo, x.shape[3]), x.dtype)
    argmax = np.empty(y.shape, np.int32)
    _maxpool_forward(x.size, x, pool[0], pool[1], strides[0], strides[1], pads[0], pads[2], y,
                     argmax, x.dtype.type(-np.inf))
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape, pool, strides, pads):
    """Route each dy to the input position its window's argmax names."""
    dx = np.empty(x_shape, dy.dtype)
    _maxpool_backward(dx.size, np.ascontiguousarray(dy), argmax, pool[0], pool[1], strides[0],
                      strides[1], pads[0], pads[2], dx, dy.dtype.type(0))
    return dx


def avgpool2d_forward(x, pool, strides, pads):
    """As numpy_ref.avgpool2d_forward."""
    x = np.ascontiguousarray(x)
    ho, wo = im2col_gemm.geometry(x.shape, pool, strides, pads)[6:]
    y = np.empty((x.shape[0], ho, wo, x.shape[3]), x.dtype)
    t = x.dtype.type
    _avgpool_forward(x.size, x, pool[0], pool[1], strides[0], strides[1], pads[0], pads[2], y, t(0), t(1))
    return y


def avgpool2d_backward(dy, x_shape, pool, strides, pads):
    """As numpy_ref.avgpool2d_backward."""
    dx = np.empty(x_shape, dy.dtype)
    t = dy.dtype.type
    _avgpool_backward(dx.size, np.ascontiguousarray(dy), pool[0], pool[1], strides[0], strides[1], pads[0],
                      pads[2], dx, t(0), t(1))
    return dx
