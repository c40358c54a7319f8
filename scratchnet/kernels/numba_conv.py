"""Numba CPU kernels of the convolutions, and Dense's matrix product.

Convolution is im2col + one BLAS GEMM per chunk of images (``im2col_gemm``); the
unfolded matrix lives in a buffer of at most CHUNK_BYTES, so a batch of 1000 images, or of
32 photos of 150x150, never needs hundreds of MB. A convolution followed by a max-pooling
runs fused, in cache-sized bands of pooled rows (BAND_CHUNK_BYTES). Big batches split into
two lanes (``numba_lanes``). The depthwise convolution is direct loops over its windows.
"""
import numpy as np
from numba import njit, prange

from . import blas, im2col_gemm
from .numba_elementwise import DB_PARTS
from .numba_lanes import JIT, LANES, kernel

CHUNK_BYTES = 8 << 20   # largest im2col buffer per layer; bigger batches go in chunks
BAND_CHUNK_BYTES = 2 << 20   # im2col rows + GEMM output of one chunk of the fused conv + pool: cache-sized


# ----- im2col and col2im ----------------------------------------------------------------------

@njit(inline="always", **JIT)
def _unfold_row(x3, b, i, count, kh, kw, sh, sw, pt, pl, c, cols, base):
    # cols[base + j, (di * kw + dj) * c + ch] = xpad[b, i*sh + di, j*sw + dj, ch] for j < count
    h, w = x3.shape[1], x3.shape[2] // c
    seg = kw * c
    for j in range(count):
        crow = cols[base + j]
        w0 = j * sw - pl
        for di in range(kh):
            hi = i * sh + di - pt
            dst = crow[di * seg:(di + 1) * seg]
            if hi < 0 or hi >= h:
                for t in range(seg):
                    dst[t] = 0
            elif w0 >= 0 and w0 + kw <= w:
                src = x3[b, hi, w0 * c:w0 * c + seg]
                for t in range(seg):
                    dst[t] = src[t]
            else:
                for dj in range(kw):
                    wj = w0 + dj
                    d = dst[dj * c:(dj + 1) * c]
                    if 0 <= wj < w:
                        src = x3[b, hi, wj * c:(wj + 1) * c]
                        for ch in range(c):
                            d[ch] = src[ch]
                    else:
                        for ch in range(c):
                            d[ch] = 0


@njit(inline="always", **JIT)
def _fold_row(dcols, base, b, i, count, kh, kw, sh, sw, pt, pl, c, dx3):
    # dx3[b] += the windows of output pixels (b, i, j < count) held in dcols[base + j] (adjoint of _unfold_row)
    h, w = dx3.shape[1], dx3.shape[2] // c
    seg = kw * c
    for j in range(count):
        crow = dcols[base + j]
        w0 = j * sw - pl
        for di in range(kh):
            hi = i * sh + di - pt
            if hi < 0 or hi >= h:
                continue
            src = crow[di * seg:(di + 1) * seg]
            if w0 >= 0 and w0 + kw <= w:
                dst = dx3[b, hi, w0 * c:w0 * c + seg]
                for t in range(seg):
                    dst[t] += src[t]
            else:
                for dj in range(kw):
                    wj = w0 + dj
                    if 0 <= wj < w:
                        dst = dx3[b, hi, wj * c:(wj + 1) * c]
                        s = src[dj * c:(dj + 1) * c]
                        for ch in range(c):
                            dst[ch] += s[ch]


@kernel
def _im2col(x, kh, kw, sh, sw, pt, pl, ho, wo, first, last, cols):
    # cols[((b - first) * ho + i) * wo + j, (di * kw + dj) * c + ch] = xpad[b, i*sh + di, j*sw + dj, ch]
    n, h, w, c = x.shape
    x3 = x.reshape(n, h, w * c)       # a window row (kw pixels x c channels) is contiguous here
    for r in prange((last - first) * ho):
        _unfold_row(x3, first + r // ho, r % ho, wo, kh, kw, sh, sw, pt, pl, c, cols, r * wo)


@kernel
def _col2im(dcols, kh, kw, sh, sw, pt, pl, ho, wo, first, last, dx):
    # dx[b] = sum over windows of dcols (the adjoint of _im2col), images first..last-1
    n, h, w, c = dx.shape
    dx3 = dx.reshape(n, h, w * c)
    for b in prange(first, last):
        image = dx3[b].reshape(h * w * c)
        for t in range(h * w * c):
            image[t] = 0
        for i in range(ho):
            _fold_row(dcols, ((b - first) * ho + i) * wo, b, i, wo, kh, kw, sh, sw, pt, pl, c, dx3)


# ----- convolution + activation + max-pooling, in bands of pooled rows -------------------
# Band q = b * hp + ip is the ph conv rows ip*ph .. ip*ph + ph-1 of image b, restricted to the
# wc = wp * pw columns a pooling window covers; a chunk of bands q0..q1-1 is one GEMM, whose
# rows are ((q - q0) * ph + t) * wc + j. Rows and columns no window covers are never computed.

@kernel
def _im2col_bands(x, kh, kw, sh, sw, pt, pl, ph, hp, wc, q0, q1, cols):
    # cols[((q - q0) * ph + t) * wc + j] = the window of conv pixel (q // hp, (q % hp) * ph + t, j)
    n, h, w, c = x.shape
    x3 = x.reshape(n, h, w * c)
    for r in prange((q1 - q0) * ph):
        q = q0 + r // ph
        _unfold_row(x3, q // hp, (q % hp) * ph + r % ph, wc, kh, kw, sh, sw, pt, pl, c, cols, r * wc)


@kernel
def _col2im_bands(dcols, kh, kw, sh, sw, pt, pl, ph, hp, wc, q0, q1, dx):
    # dx += the adjoint of _im2col_bands for bands q0..q1-1 (one thread: neighbouring bands' windows overlap)
    n, h, w, c = dx.shape
    dx3 = dx.reshape(n, h, w * c)
    for r in range((q1 - q0) * ph):
        q = q0 + r // ph
        _fold_row(dcols, r * wc, q // hp, (q % hp) * ph + r % ph, wc, kh, kw, sh, sw, pt, pl, c, dx3)


@njit(inline="always", **JIT)
def _pool_step(v, relu, zero, k, m, a):
    # one window position k of a max-pool holding (max m, argmax a): v rectified if relu; the
    # first of equal maxima wins
    if relu:
        v = max(v, zero)
    return max(m, v), (k if v > m else a)


@kernel
def _bias_act_maxpool(z, bias, relu, ph, pw, hp, wp, q0, q1, y, argmax, keep_argmax, lowest, zero):
    # y[b, ip, jp] = max over the window of act(z + bias), act = relu or identity; argmax (if kept) =
    # the row-major window index of the first maximum: max-pooling of bias_activation's output
    f = z.shape[1]
    wc = wp * pw
    for r in prange((q1 - q0) * wp):
        qq = r // wp
        jp = r % wp
        q = q0 + qq
        b = q // hp
        ip = q % hp
        best = y[b, ip, jp]
        at = argmax[b, ip, jp] if keep_argmax else argmax[0, 0, 0]
        if ph == 2 and pw == 2:
            # the common 2x2 window: the same steps as the general loop below, in registers,
            # one store per channel instead of a load and a store per window position
            base = qq * 2 * wc + jp * 2
            r0, r1, r2, r3 = z[base], z[base + 1], z[base + wc], z[base + wc + 1]
            for ch in range(f):
                m, a = _pool_step(r0[ch] + bias[ch], relu, zero, np.int32(0), lowest, np.int32(0))
                m, a = _pool_step(r1[ch] + bias[ch], relu, zero, np.int32(1), m, a)
                m, a = _pool_step(r2[ch] + bias[ch], relu, zero, np.int32(2), m, a)
                m, a = _pool_step(r3[ch] + bias[ch], relu, zero, np.int32(3), m, a)
                best[ch] = m
                if keep_argmax:
                    at[ch] = a
            continue
        for ch in range(f):
            best[ch] = lowest
        if keep_argmax:
            for ch in range(f):
                at[ch] = 0
        for t in range(ph):
            for dj in range(pw):
                k = np.int32(t * pw + dj)
                row = z[(qq * ph + t) * wc + jp * pw + dj]
                if keep_argmax:
                    for ch in range(f):
                        v = row[ch] + bias[ch]
                        if relu:
                            v = max(v, zero)
                        better = v > best[ch]      # strict: the first of equal maxima wins
                        at[ch] = k if better else at[ch]
                        best[ch] = max(best[ch], v)
                else:
                    for ch in range(f):
                        v = row[ch] + bias[ch]
                        if relu:
                            v = max(v, zero)
                        best[ch] = max(best[ch], v)


@kernel
def _maxpool_act_backward(dy, y, argmax, relu, ph, pw, hp, wp, q0, q1, dz, zero):
    # dz (rows as z) = dy at each window's argmax, where the pooled output y > 0 if relu; 0 elsewhere:
    # max-pooling's backward and the activation's in one pass (windows do not overlap: every dz written once)
    f = dz.shape[1]
    wc = wp * pw
    for r in prange((q1 - q0) * wp):
        qq = r // wp
        jp = r % wp
        q = q0 + qq
        b = q // hp
        ip = q % hp
        g, out, at = dy[b, ip, jp], y[b, ip, jp], argmax[b, ip, jp]
        for t in range(ph):
            for dj in range(pw):
                k = np.int32(t * pw + dj)
                row = dz[(qq * ph + t) * wc + jp * pw + dj]
                for ch in range(f):
                    keep = at[ch] == k and (out[ch] > zero or not relu)
                    row[ch] = g[ch] if keep else zero


@kernel
def _masked_column_sums(dy2, y2, relu, parts, zero):
    # parts[p] = column sums of dy (where y > 0 if relu) over the p-th of a fixed split of the rows
    rows, cols = dy2.shape
    count = parts.shape[0]
    for p in prange(count):
        acc = parts[p]
        for k in range(cols):
            acc[k] = zero
        for r in range(p * rows // count, (p + 1) * rows // count):
            g, out = dy2[r], y2[r]
            for k in range(cols):
                acc[k] += g[k] if (out[k] > zero or not relu) else zero


# ----- depthwise convolution ------------------------------------------------------------------

@kernel
def _depthwise_forward(x, k2, kh, kw, sh, sw, pt, pl, mult, y, zero):
    # y[b, i, j, ch*mult + m] = sum over the window of x[b, hi, wj, ch] * k2[di*kw + dj, ch*mult + m]
    n, h, w, c = x.shape
    ho, wo = y.shape[1], y.shape[2]
    cm = c * mult
    for r in prange(n * ho):
        b = r // ho
        i = r % ho
        for j in range(wo):
            out = y[b, i, j]
            for t in range(cm):
                out[t] = zero
            for di in range(kh):
                hi = i * sh + di - pt
                if hi < 0 or hi >= h:
                    continue
                for dj in range(kw):
                    wj = j * sw + dj - pl
                    if wj < 0 or wj >= w:
                        continue
                    v = x[b, hi, wj]
                    kk = k2[di * kw + dj]
                    if mult == 1:
                        for t in range(c):
                            out[t] += v[t] * kk[t]
                    else:
                        for t in range(cm):
                            out[t] += v[t // mult] * kk[t]


@kernel
def _depthwise_backward_input(dy, k2, kh, kw, sh, sw, pt, pl, mult, dx, zero):
    # dx[b, hi, wj, ch] = sum over the windows and m of dy[b, i, j, ch*mult + m] * k2[di*kw + dj, ch*mult + m]
    n, ho, wo, cm = dy.shape
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    for b in prange(n):
        image = dx[b].reshape(h * w * c)
        for t in range(h * w * c):
            image[t] = zero
        for i in range(ho):
            for j in range(wo):
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
                        kk = k2[di * kw + dj]
                        if mult == 1:
                            for t in range(c):
                                dst[t] += g[t] * kk[t]
                        else:
                            for t in range(cm):
                                dst[t // mult] += g[t] * kk[t]


@kernel
def _depthwise_backward_kernel(x, dy, kh, kw, sh, sw, pt, pl, mult, parts, zero):
    # parts[p, di*kw + dj, ch*mult + m] = sum over images of part p, windows of x[..., ch] * dy[..., ch*mult + m]
    n, h, w, c = x.shape
    ho, wo, cm = dy.shape[1], dy.shape[2], dy.shape[3]
    count = parts.shape[0]
    for p in prange(count):
        acc = parts[p]
        for q in range(kh * kw):
            row = acc[q]
            for t in range(cm):
                row[t] = zero
        for b in range(p * n // count, (p + 1) * n // count):
            for i in range(ho):
                for j in range(wo):
                    g = dy[b, i, j]
                    for di in range(kh):
                        hi = i * sh + di - pt
                        if hi < 0 or hi >= h:
                            continue
                        for dj in range(kw):
                            wj = j * sw + dj - pl
                            if wj < 0 or wj >= w:
                                continue
                            v = x[b, hi, wj]
                            row = acc[di * kw + dj]
                            if mult == 1:
                                for t in range(c):
                                    row[t] += v[t] * g[t]
                            else:
                                for t in range(cm):
                                    row[t] += v[t // mult] * g[t]


# ----- the kernel API -------------------------------------------------------------------------
def _launch_im2col(x, geo, first, last, cols):
    _im2col(cols.size, x, *geo, first, last, cols)


def _launch_col2im(dcols, geo, first, last, dx):
    _col2im(dcols.size, dcols, *geo, first, last, dx)


def conv2d_forward(x, w, strides, pads):
    """y = conv(x, w): im2col + BLAS GEMM in chunks of images. Returns (y, cache)."""
    return im2col_gemm.conv2d_forward(x, w, strides, pads, xp=np, gemm=blas.matmul,
                                      im2col=_launch_im2col, chunk_bytes=CHUNK_BYTES, lanes=LANES)


def conv2d_backward(dy, cache, need_dx=True):
    """(dx or None, dw) for conv2d_forward."""
    return im2col_gemm.conv2d_backward(dy, cache, need_dx, xp=np, gemm=blas.matmul,
                                       im2col=_launch_im2col, col2im=_launch_col2im, chunk_bytes=CHUNK_BYTES,
                                       lanes=LANES)


def conv2d_backward_input(dy, w, x_shape, strides, pads):
    """dL/dx of y = conv(x, w) from dy and w alone: col2im(dy @ w^T), in chunks and lanes as
    conv2d_backward's dx (pads as numpy_ref.conv2d_backward_input)."""
    return im2col_gemm.conv2d_backward_input(dy, w, x_shape, strides, pads, xp=np, gemm=blas.matmul,
                                             col2im=_launch_col2im, chunk_bytes=CHUNK_BYTES, lanes=LANES)


# The band launchers of im2col_gemm's fused convolution + max-pooling (their contracts are there).
def _launch_im2col_bands(x, geo, pool, hp, wc, q0, q1, cols):
    _im2col_bands(cols.size, x, *geo[:6], pool[0], hp, wc, q0, q1, cols)


def _launch_col2im_bands(dcols, geo, pool, hp, wc, q0, q1, dx):
    _col2im_bands.serial(dcols, *geo[:6], pool[0], hp, wc, q0, q1, dx)


def _launch_pool_bands(z, bias, relu, pool, hp, wp, q0, q1, y, argmax):
    t = z.dtype.type
    keep = argmax is not None
    _bias_act_maxpool(z.size, z, bias, relu, pool[0], pool[1], hp, wp, q0, q1, y,
                      argmax if keep else np.zeros((1, 1, 1, 1), np.int32), keep, t(-np.inf), t(0))


def _launch_unpool_bands(dy, y, argmax, relu, pool, hp, wp, q0, q1, dz):
    _maxpool_act_backward(dz.size, dy, y, argmax, relu, pool[0], pool[1], hp, wp, q0, q1, dz, dz.dtype.type(0))


def _pooled_bias_gradient(dy, y, relu):
    c = dy.shape[-1]
    parts = np.empty((DB_PARTS, c), dy.dtype)
    _masked_column_sums(dy.size, dy.reshape(-1, c), y.reshape(-1, c), relu, parts, dy.dtype.type(0))
    return parts.sum(axis=0)


def matmul(a, b):
    """a @ b, rows split between the two lanes when the product is big enough."""
    return im2col_gemm.matmul(a, b, xp=np, gemm=blas.matmul, lanes=LANES)


def conv2d_maxpool_forward(x, w, b, activation, strides, pads, pool, training):
    """maxpool(activation(conv(x, w) + b)) with non-overlapping pool x pool windows, in
    cache-sized bands of pooled rows. Returns (y, cache); see numpy_ref."""
    return im2col_gemm.conv2d_maxpool_forward(x, w, b, activation, strides, pads, pool, training,
                                              xp=np, gemm=blas.matmul, im2col_bands=_launch_im2col_bands,
                                              pool_bands=_launch_pool_bands, chunk_bytes=BAND_CHUNK_BYTES,
                                              lanes=LANES)


def conv2d_maxpool_backward(dy, cache, need_dx=True):
    """(dx or None, dw, db or None) for conv2d_maxpool_forward."""
    return im2col_gemm.conv2d_maxpool_backward(dy, cache, need_dx, xp=np, gemm=blas.matmul,
                                               im2col_bands=_launch_im2col_bands, unpool_bands=_launch_unpool_bands,
                                               col2im_bands=_launch_col2im_bands,
                                               bias_gradient=_pooled_bias_gradient, chunk_bytes=BAND_CHUNK_BYTES,
                                               lanes=LANES)


DK_PARTS = 8   # fixed split of the depthwise kernel gradient's sum (same result for any thread count)


def depthwise_conv2d_forward(x, k, strides, pads):
    """As numpy_ref.depthwise_conv2d_forward (k: kh, kw, C, M)."""
    x = np.ascontiguousarray(x)
    kh, kw, c, m = k.shape
    ho, wo = im2col_gemm.geometry(x.shape, k.shape, strides, pads)[6:]
    y = np.empty((x.shape[0], ho, wo, c * m), x.dtype)
    k2 = np.ascontiguousarray(k).reshape(kh * kw, c * m)
    _depthwise_forward(y.size * kh * kw, x, k2, kh, kw, strides[0], strides[1], pads[0], pads[2], m, y,
                       x.dtype.type(0))
    return y, (x, k, strides, pads)


def depthwise_conv2d_backward(dy, cache, need_dx=True):
    """As numpy_ref.depthwise_conv2d_backward."""
    x, k, strides, pads = cache
    kh, kw, c, m = k.shape
    dy = np.ascontiguousarray(dy)
    zero = dy.dtype.type(0)
    parts = np.empty((DK_PARTS, kh * kw, c * m), dy.dtype)
    _depthwise_backward_kernel(dy.size * kh * kw, x, dy, kh, kw, strides[0], strides[1], pads[0], pads[2], m,
                               parts, zero)
    dk = parts.sum(axis=0).reshape(k.shape)
    dx = None
    if need_dx:
        dx = np.empty(x.shape, dy.dtype)
        k2 = np.ascontiguousarray(k).reshape(kh * kw, c * m)
        _depthwise_backward_input(dy.size * kh * kw, dy, k2, kh, kw, strides[0], strides[1], pads[0], pads[2], m,
                                  dx, zero)
    return dx, dk
