"""Numba CPU kernels: the same functions as ``numpy_ref``, compiled and parallel.

Convolution is im2col + one BLAS GEMM per chunk of images (``im2col_gemm``); the
unfolded matrix lives in a buffer of at most CHUNK_BYTES, so a batch of 1000 images, or of
32 photos of 150x150, never needs hundreds of MB. A convolution followed by a max-pooling
runs fused, in cache-sized bands of pooled rows (BAND_CHUNK_BYTES). Big batches split into
two lanes (``Lanes``), run on two cores with BLAS at one thread each. ``prange`` runs only
over loops whose iterations write disjoint outputs (rows of cols, whole images of dx), and
lanes are fixed by the work, so results do not depend on the number of threads.

Compiled on first call for each dtype and cached on disk (``cache=True``).
"""
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numba
import numpy as np
from numba import njit, prange

from . import blas, im2col_gemm, image_geometry
from .numpy_ref import projective_sampling  # noqa: F401  (host-side, for callers that want the weights)
from .numpy_ref import GOLDEN, KERNEL_ACTIVATIONS, MIX_1, MIX_2, RANDOM_BITS, dropout_threshold  # noqa: F401

__all__ = ["conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
           "bias_activation", "bias_activation_backward", "adam_update", "rmsprop_update",
           "dropout_mask", "avgpool2d_forward", "avgpool2d_backward", "depthwise_conv2d_forward",
           "depthwise_conv2d_backward", "batchnorm_forward", "batchnorm_backward", "batchnorm_inference",
           "conv2d_maxpool_forward", "conv2d_maxpool_backward", "matmul", "projective_transform",
           "projective_transform_backward", "CHUNK_BYTES"]

CHUNK_BYTES = 8 << 20   # largest im2col buffer per layer; bigger batches go in chunks
BAND_CHUNK_BYTES = 2 << 20   # im2col rows + GEMM output of one chunk of the fused conv + pool: cache-sized

_jit = dict(nogil=True, cache=True, fastmath=False)
# For kernels whose inner loop divides: a float division by zero gives inf/nan, as in NumPy,
# instead of a check for Python's ZeroDivisionError in every iteration, which keeps the loop
# from being vectorised (Adam's update 4.5x faster). Not for every kernel: the unfolding and
# pooling kernels ran up to 5x slower on the short rows of a batch-1 prediction with it.
_DIVIDING = dict(error_model="numpy")

# Below this many elements a kernel runs on the calling thread: waking the other thread
# costs more than it saves on 2 cores (measured: a 1 MB im2col takes 0.15 ms alone and
# 0.25 ms split in two), and a thread pool spinning beside BLAS's slows the next GEMM.
PARALLEL_MIN_ELEMENTS = 1 << 22


# Numba picks its threading layer at the first parallel launch (TBB, else OpenMP, else its
# own workqueue), for the whole process; scratchnet does not choose for it. The workqueue
# layer is not thread-safe, so the first launch runs under a lock and, if Numba chose
# workqueue, every later one does too.
_launch_lock = threading.Lock()
_threadsafe_layer = None   # unknown until the first parallel launch


def _launch_parallel(kernel, args):
    global _threadsafe_layer
    if _threadsafe_layer:
        return kernel(*args)
    with _launch_lock:
        if _threadsafe_layer is None:
            numba.get_num_threads()   # starts the threading layer (a cached kernel may not)
            _threadsafe_layer = numba.threading_layer() != "workqueue"
        return kernel(*args)


def _kernel(function=None, **options):
    """Compile ``function`` twice, serial and parallel; call the one that fits the work.
    ``options`` add to _jit's (``@_kernel(**_DIVIDING)``)."""
    if function is None:
        return lambda f: _kernel(f, **options)
    flags = {**_jit, **options}
    serial = njit(**flags)(function)
    parallel = njit(parallel=True, **flags)(function)

    def run(work, *args):
        if work < PARALLEL_MIN_ELEMENTS:
            return serial(*args)
        return _launch_parallel(parallel, args)

    run.serial, run.parallel, run.__name__, run.__doc__ = serial, parallel, function.__name__, function.__doc__
    return run


class Lanes:
    """Runs the two halves of a batch (lanes) of one layer at once, each on one core with a
    one-thread BLAS (blas.one_blas_thread), when BLAS was allowed two threads
    or more; else one after the other. The halves and what each computes are fixed by the
    work alone, so the results are the same either way. Cores then never wait on each other
    inside a GEMM, and the unfolding and pooling between GEMMs, too small to split, run on
    both cores instead of one."""

    min_flops = 10e6     # below this a hand-over to the other thread costs more than it saves

    def __init__(self):
        self._pool = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget_pool)

    def _forget_pool(self):
        self._pool, self._lock = None, threading.Lock()    # a forked child has no lane thread

    def run(self, tasks):
        """[task() for task in tasks], the first on this thread and the rest on the lane thread."""
        with blas.one_blas_thread() as threads:
            if threads < 2:
                return [task() for task in tasks]
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="scratchnet-lane")
            # NumPy's error handling and Numba's thread count are per thread: the lane gets the caller's
            errors, numba_threads = np.geterr(), numba.get_num_threads()
            futures = [self._pool.submit(_as_caller, errors, numba_threads, task) for task in tasks[1:]]
            try:
                first = tasks[0]()
            finally:
                wait(futures)     # never leave a lane running on buffers this call hands back
            return [first] + [f.result() for f in futures]


def _as_caller(errors, numba_threads, task):
    numba.set_num_threads(numba_threads)
    with np.errstate(**errors):
        return task()


LANES = Lanes()


# ----- kernels --------------------------------------------------------------------------
# How these loops are written so that LLVM vectorises them (each measured 3-10x):
# - inner loops index 1-D views with a bare range() variable, so Numba knows the index is
#   non-negative and drops its wrap-around check (a computed offset such as base + t keeps it);
# - max() rather than "a if a > b else b" on the same element;
# - selects mix only same-width types: argmax is int32 beside float32 values, and constants
#   come in typed (zero, np.int32(k)), never as Python ints or floats that widen to 64 bits.

@njit(inline="always", **_jit)
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


@njit(inline="always", **_jit)
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


@_kernel
def _im2col(x, kh, kw, sh, sw, pt, pl, ho, wo, first, last, cols):
    # cols[((b - first) * ho + i) * wo + j, (di * kw + dj) * c + ch] = xpad[b, i*sh + di, j*sw + dj, ch]
    n, h, w, c = x.shape
    x3 = x.reshape(n, h, w * c)       # a window row (kw pixels x c channels) is contiguous here
    for r in prange((last - first) * ho):
        _unfold_row(x3, first + r // ho, r % ho, wo, kh, kw, sh, sw, pt, pl, c, cols, r * wo)


@_kernel
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

@_kernel
def _im2col_bands(x, kh, kw, sh, sw, pt, pl, ph, hp, wc, q0, q1, cols):
    # cols[((q - q0) * ph + t) * wc + j] = the window of conv pixel (q // hp, (q % hp) * ph + t, j)
    n, h, w, c = x.shape
    x3 = x.reshape(n, h, w * c)
    for r in prange((q1 - q0) * ph):
        q = q0 + r // ph
        _unfold_row(x3, q // hp, (q % hp) * ph + r % ph, wc, kh, kw, sh, sw, pt, pl, c, cols, r * wc)


@_kernel
def _col2im_bands(dcols, kh, kw, sh, sw, pt, pl, ph, hp, wc, q0, q1, dx):
    # dx += the adjoint of _im2col_bands for bands q0..q1-1 (one thread: neighbouring bands' windows overlap)
    n, h, w, c = dx.shape
    dx3 = dx.reshape(n, h, w * c)
    for r in range((q1 - q0) * ph):
        q = q0 + r // ph
        _fold_row(dcols, r * wc, q // hp, (q % hp) * ph + r % ph, wc, kh, kw, sh, sw, pt, pl, c, dx3)


@njit(inline="always", **_jit)
def _pool_step(v, relu, zero, k, m, a):
    # one window position k of a max-pool holding (max m, argmax a): v rectified if relu; the
    # first of equal maxima wins
    if relu:
        v = max(v, zero)
    return max(m, v), (k if v > m else a)


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel(**_DIVIDING)
def _adam(p, g, m, v, lr_t, one_minus_b1, one_minus_b2, eps):
    # m += (1-b1)(g-m); v += (1-b2)(g^2-v); p -= lr_t m / (sqrt(v) + eps)
    for k in prange(p.size):
        gk = g[k]
        m[k] += one_minus_b1 * (gk - m[k])
        v[k] += one_minus_b2 * (gk * gk - v[k])
        p[k] -= lr_t * m[k] / (np.sqrt(v[k]) + eps)


@_kernel(**_DIVIDING)
def _rmsprop(p, g, s, lr, rho, one_minus_rho, eps):
    # s = rho s + (1-rho) g^2; p -= lr g / sqrt(s + eps)
    for k in prange(p.size):
        gk = g[k]
        s[k] = rho * s[k] + one_minus_rho * gk * gk
        p[k] -= lr * gk / np.sqrt(s[k] + eps)


@_kernel
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


@_kernel
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


@_kernel
def _bias_activation(z, bias, has_bias, relu, zero):
    # in place: z = relu?(z + bias) row by row; zero is 0 in z's dtype
    rows, cols = z.shape
    for r in prange(rows):
        row = z[r]
        if relu:
            for k in range(cols):
                row[k] = max(row[k] + bias[k], zero)
        elif has_bias:
            for k in range(cols):
                row[k] += bias[k]


@_kernel
def _bias_activation_backward(dy, a, relu, dz, parts, zero):
    # dz = dy where a > 0 else 0 (or dz = dy when not relu); parts[p] = column sums of dz over
    # the p-th of a fixed split of the rows, so db = parts.sum(0) whatever the thread count
    rows, cols = dy.shape
    count = parts.shape[0]
    for p in prange(count):
        acc = parts[p]
        for k in range(cols):
            acc[k] = zero
        for r in range(p * rows // count, (p + 1) * rows // count):
            g, out, d = dy[r], a[r], dz[r]
            if relu:
                for k in range(cols):
                    d[k] = g[k] if out[k] > zero else zero
            for k in range(cols):
                acc[k] += d[k]


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel
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


@_kernel(**_DIVIDING)
def _bn_backward_input(dy2, x2, mean, inv_std, y2, relu, scale, dbeta, dgamma, n, zero, dx2):
    # dx = scale / n * (n * g - dbeta - xhat * dgamma), g and xhat as in _bn_backward_sums; row by row
    rows, cols = dy2.shape
    for r in prange(rows):
        g, xr, yr, out = dy2[r], x2[r], y2[r], dx2[r]
        for k in range(cols):
            gk = g[k] if (yr[k] > zero or not relu) else zero
            xh = (xr[k] - mean[k]) * inv_std[k]
            out[k] = scale[k] / n * (n * gk - dbeta[k] - xh * dgamma[k])


_S27, _S30, _S31, _SKEEP = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(64 - RANDOM_BITS)


@_kernel
def _dropout_mask(mask, seed, threshold, scale, zero):
    # mask[t] = scale if the top bits of splitmix64(seed + (t+1) * golden) >= threshold else 0
    for t in prange(mask.size):
        z = seed + np.uint64(t + 1) * GOLDEN
        z = (z ^ (z >> _S30)) * MIX_1
        z = (z ^ (z >> _S27)) * MIX_2
        z = z ^ (z >> _S31)
        mask[t] = scale if (z >> _SKEEP) >= threshold else zero


# ----- the kernel API ---------------------------------------------------------------------
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


def _geometry(x_shape, kh, kw, strides, pads):
    return im2col_gemm.geometry(x_shape, (kh, kw), strides, pads)[6:]


def maxpool2d_forward(x, pool, strides, pads):
    """Max over each window. Returns (y, argmax) with argmax (int32) the row-major index
    inside the window of the first maximum."""
    x = np.ascontiguousarray(x)
    ho, wo = _geometry(x.shape, pool[0], pool[1], strides, pads)
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


def bias_activation(z, b, activation):
    """In place: z = activation(z + b) over the last axis ('linear' or 'relu'). Returns z."""
    z2 = z.reshape(-1, z.shape[-1])
    has_bias = b is not None
    _bias_activation(z2.size, z2, b if has_bias else np.zeros(z.shape[-1], z.dtype), has_bias,
                     activation == "relu", z.dtype.type(0))
    return z


DB_PARTS = 8   # fixed split of the bias-gradient sum (same result for any thread count)


def bias_activation_backward(dy, a, activation, need_db):
    """(dL/dz, dL/db or None) from dL/da and a = bias_activation(...), in one pass."""
    relu = activation == "relu"
    if not relu and not need_db:
        return dy, None
    c = dy.shape[-1]
    dy2 = np.ascontiguousarray(dy).reshape(-1, c)
    dz = np.empty(dy.shape, dy.dtype) if relu else dy
    parts = np.empty((DB_PARTS, c), dy.dtype)
    _bias_activation_backward(dy2.size, dy2, a.reshape(-1, c), relu, dz.reshape(-1, c), parts,
                              dy.dtype.type(0))
    return dz, (parts.sum(axis=0) if need_db else None)


def adam_update(p, g, m, v, lr_t, beta_1, beta_2, epsilon):
    """In place, as numpy_ref.adam_update."""
    t = p.dtype.type
    _adam(p.size, p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(lr_t), t(1 - beta_1),
          t(1 - beta_2), t(epsilon))


def rmsprop_update(p, g, s, lr, rho, epsilon):
    """In place, as numpy_ref.rmsprop_update."""
    t = p.dtype.type
    _rmsprop(p.size, p.reshape(-1), g.reshape(-1), s.reshape(-1), t(lr), t(rho), t(1 - rho), t(epsilon))


def dropout_mask(shape, dtype, rate, seed):
    """As numpy_ref.dropout_mask: the same mask, drawn in parallel."""
    dtype = np.dtype(dtype)
    mask = np.empty(shape, dtype)
    _dropout_mask(mask.size, mask.reshape(-1), np.uint64(seed), dropout_threshold(rate),
                  dtype.type(1 / (1 - rate)), dtype.type(0))
    return mask


def avgpool2d_forward(x, pool, strides, pads):
    """As numpy_ref.avgpool2d_forward."""
    x = np.ascontiguousarray(x)
    ho, wo = _geometry(x.shape, pool[0], pool[1], strides, pads)
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


DK_PARTS = 8   # fixed split of the depthwise kernel gradient's sum (same result for any thread count)


def depthwise_conv2d_forward(x, k, strides, pads):
    """As numpy_ref.depthwise_conv2d_forward (k: kh, kw, C, M)."""
    x = np.ascontiguousarray(x)
    kh, kw, c, m = k.shape
    ho, wo = _geometry(x.shape, kh, kw, strides, pads)
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



# ----- projective image transform ------------------------------------------------------------------
_sample_point, _round_half_away = image_geometry.compiled(njit(inline="always", **_jit))


@njit(parallel=True, **_jit)
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


@njit(parallel=True, **_jit)
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
