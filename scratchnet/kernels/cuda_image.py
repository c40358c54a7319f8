"""CUDA kernels (numba.cuda) for the projective image transform of the augmentation layers.

Forward: one thread per output pixel, reading its (at most four) input pixels for every
channel. Backward: one thread per output pixel, adding its gradient to the pixels it read with
atomics (several output pixels may read one input pixel), so the order of its float additions,
and the last bits of dL/dx, vary from run to run (the CPU kernels are deterministic; the backward
pass runs only where an augmentation layer sits above a weight). The geometry is
image_geometry's, compiled as inlined device functions."""
import math

import numpy as np
from numba import cuda

from . import image_geometry

_sample_point, _round_half_away = image_geometry.compiled(cuda.jit(device=True, inline="always"))


@cuda.jit
def projective_forward(x, t, nearest, mode, fill, y):
    # y[b, yo, xo, :] = x bilinearly (or nearest) read at the transformed point; fill outside
    p = cuda.grid(1)
    n, height, width, channels = x.shape
    if p >= n * height * width:
        return
    xo, yo, b = p % width, (p // width) % height, p // (width * height)
    px, py, finite = _sample_point(t, b, xo, yo, height, width, mode)
    if not finite:
        for ch in range(channels):
            y[b, yo, xo, ch] = fill
        return
    if nearest:
        r, q = _round_half_away(py), _round_half_away(px)
        inside = 0 <= r < height and 0 <= q < width
        for ch in range(channels):
            y[b, yo, xo, ch] = x[b, r, q, ch] if inside else fill
        return
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
                value = x[b, r, q, ch] if 0 <= r < height and 0 <= q < width else fill
                total += value * (wy * (wx1 if dq else wx0))
        y[b, yo, xo, ch] = total


@cuda.jit
def projective_backward(dy, t, nearest, mode, dx):
    # dx (zeroed) += each output pixel's gradient at the input pixels it read, by weight (atomics)
    p = cuda.grid(1)
    n, height, width, channels = dy.shape
    if p >= n * height * width:
        return
    xo, yo, b = p % width, (p // width) % height, p // (width * height)
    px, py, finite = _sample_point(t, b, xo, yo, height, width, mode)
    if not finite:
        return
    if nearest:
        r, q = _round_half_away(py), _round_half_away(px)
        if 0 <= r < height and 0 <= q < width:
            for ch in range(channels):
                cuda.atomic.add(dx, (b, r, q, ch), dy[b, yo, xo, ch])
        return
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
                    cuda.atomic.add(dx, (b, r, q, ch), dy[b, yo, xo, ch] * weight)
