"""CUDA kernels (numba.cuda) for elementwise work: fused bias + ReLU, its backward, the
Adam and RMSprop updates, and dropout masks. One thread per element of a flattened array."""
import math

import numpy as np
from numba import cuda

from .numpy_ref import GOLDEN, MIX_1, MIX_2, RANDOM_BITS

_S27, _S30, _S31, _SKEEP = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(64 - RANDOM_BITS)


@cuda.jit
def bias_activation(z, bias, has_bias, relu, zero):
    # in place on z (rows, cols): z = relu?(z + bias)
    t = cuda.grid(1)
    rows, cols = z.shape
    if t >= rows * cols:
        return
    r, k = t // cols, t % cols
    v = z[r, k]
    if has_bias:
        v += bias[k]
    if relu and v < zero:
        v = zero
    z[r, k] = v


@cuda.jit
def relu_backward(dy, a, dz, zero):
    # dz = dy where a > 0, else 0 (all flat)
    t = cuda.grid(1)
    if t >= dz.size:
        return
    dz[t] = dy[t] if a[t] > zero else zero


@cuda.jit
def adam(p, g, m, v, lr_t, one_minus_b1, one_minus_b2, eps):
    # m += (1-b1)(g-m); v += (1-b2)(g^2-v); p -= lr_t m / (sqrt(v) + eps)
    t = cuda.grid(1)
    if t >= p.size:
        return
    gt = g[t]
    m[t] += one_minus_b1 * (gt - m[t])
    v[t] += one_minus_b2 * (gt * gt - v[t])
    p[t] -= lr_t * m[t] / (math.sqrt(v[t]) + eps)


@cuda.jit
def rmsprop(p, g, s, lr, rho, one_minus_rho, eps):
    # s = rho s + (1-rho) g^2; p -= lr g / sqrt(s + eps)
    t = cuda.grid(1)
    if t >= p.size:
        return
    gt = g[t]
    s[t] = rho * s[t] + one_minus_rho * gt * gt
    p[t] -= lr * gt / math.sqrt(s[t] + eps)


@cuda.jit
def dropout_mask(mask, seed, threshold, scale, zero):
    # mask[t] = scale if the top bits of splitmix64(seed + (t+1) * golden) >= threshold else 0
    t = cuda.grid(1)
    if t >= mask.size:
        return
    z = seed + np.uint64(t + 1) * GOLDEN
    z = (z ^ (z >> _S30)) * MIX_1
    z = (z ^ (z >> _S27)) * MIX_2
    z = z ^ (z >> _S31)
    mask[t] = scale if (z >> _SKEEP) >= threshold else zero
