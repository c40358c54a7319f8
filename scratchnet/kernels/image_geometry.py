"""Scalar geometry of the projective image transform, shared by its kernels: written once in
plain Python, compiled by ``compiled(jit)`` with ``njit`` for ``numba_image`` and with
``cuda.jit(device=True)`` for ``cuda_image``, inlined into the kernels (so PTX compiles
without a GPU). ``numpy_ref`` has the same arithmetic on whole arrays.

Output pixel (x, y) reads input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k),
k = c0 x + c1 y + 1, in float32, then each coordinate outside the image is mapped back inside
as TensorFlow's ImageProjectiveTransformV3 does for its fill mode.
"""
import math

import numpy as np

REFLECT, WRAP, CONSTANT, NEAREST = 0, 1, 2, 3
FILL_MODE_CODES = {"reflect": REFLECT, "wrap": WRAP, "constant": CONSTANT, "nearest": NEAREST}


def map_coordinate(c, size, mode):
    # c (float32) mapped into [0, size - 1] by the fill mode; unchanged for CONSTANT. (TensorFlow
    # truncates each quotient below; all are positive, so floor is the same thing.)
    if mode == CONSTANT:
        return c
    top = np.float32(size - 1)
    if mode == REFLECT and size > 1:
        period = np.float32(2 * size)
        if c < 0:
            c = period * np.float32(math.floor(-c / period)) + c
            c = c + period if c < np.float32(-size) else -c - np.float32(1)
        elif c > top:
            c = c - period * np.float32(math.floor(c / period))
            if c >= np.float32(size):
                c = period - c - np.float32(1)
    elif mode == WRAP and size > 1:
        if c < 0:
            c = c + np.float32(size) * (np.float32(math.floor(-c / top)) + np.float32(1))
        elif c > top:
            c = c - np.float32(size) * np.float32(math.floor(c / top))
    elif size <= 1:
        c = np.float32(0)
    return min(max(c, np.float32(0)), top)


def round_half_away(c):
    # std::round: halves away from zero (NumPy's round takes them to even)
    return int(math.floor(c + np.float32(0.5))) if c >= 0 else -int(math.floor(-c + np.float32(0.5)))


def compiled(jit):
    """(sample_point, round_half_away) compiled with ``jit``, a decorator taking a function.

    sample_point(t, b, xo, yo, height, width, mode) -> (x, y, finite): the input point that
    output pixel (xo, yo) of image b reads under transform row t[b], fill mode applied;
    finite is False where k = 0 (the point is at infinity: the pixel is the fill value)."""
    map_fast = jit(map_coordinate)

    def sample_point(t, b, xo, yo, height, width, mode):
        fx, fy = np.float32(xo), np.float32(yo)
        k = t[b, 6] * fx + t[b, 7] * fy + np.float32(1)
        if k == 0:
            return np.float32(0), np.float32(0), False
        px = map_fast((t[b, 0] * fx + t[b, 1] * fy + t[b, 2]) / k, width, mode)
        py = map_fast((t[b, 3] * fx + t[b, 4] * fy + t[b, 5]) / k, height, mode)
        return px, py, True

    return jit(sample_point), jit(round_half_away)
