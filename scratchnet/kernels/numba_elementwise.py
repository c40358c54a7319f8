"""Numba CPU kernels that go element by element (or row by row): bias + activation (and its
backward), the Adam and RMSprop updates, dropout masks, and softmax cross-entropy."""
import numpy as np
from numba import prange

from .numba_lanes import DIVIDING, kernel
from .numpy_ref import GOLDEN, MIX_1, MIX_2, RANDOM_BITS, dropout_threshold


@kernel
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


@kernel
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


@kernel(**DIVIDING)
def _adam(p, g, m, v, lr_t, one_minus_b1, one_minus_b2, eps):
    # m += (1-b1)(g-m); v += (1-b2)(g^2-v); p -= lr_t m / (sqrt(v) + eps)
    for k in prange(p.size):
        gk = g[k]
        m[k] += one_minus_b1 * (gk - m[k])
        v[k] += one_minus_b2 * (gk * gk - v[k])
        p[k] -= lr_t * m[k] / (np.sqrt(v[k]) + eps)


@kernel(**DIVIDING)
def _rmsprop(p, g, s, lr, rho, one_minus_rho, eps):
    # s = rho s + (1-rho) g^2; p -= lr g / sqrt(s + eps)
    for k in prange(p.size):
        gk = g[k]
        s[k] = rho * s[k] + one_minus_rho * gk * gk
        p[k] -= lr * gk / np.sqrt(s[k] + eps)


_S27, _S30, _S31, _SKEEP = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(64 - RANDOM_BITS)


@kernel
def _dropout_mask(mask, seed, threshold, scale, zero):
    # mask[t] = scale if the top bits of splitmix64(seed + (t+1) * golden) >= threshold else 0
    for t in prange(mask.size):
        z = seed + np.uint64(t + 1) * GOLDEN
        z = (z ^ (z >> _S30)) * MIX_1
        z = (z ^ (z >> _S27)) * MIX_2
        z = z ^ (z >> _S31)
        mask[t] = scale if (z >> _SKEEP) >= threshold else zero


# ----- the kernel API -------------------------------------------------------------------------
@kernel
def _softmax_cross_entropy(z, labels, loss, grad, zero):
    # per row i: loss[i] = log(sum_k exp(z[i,k])) - z[i,labels[i]] and grad[i] = softmax(z[i]) - onehot,
    # shifted by the row's max so exp never overflows
    rows, cols = z.shape
    for i in prange(rows):
        row, g = z[i], grad[i]
        top = row[0]
        for k in range(cols):
            top = max(top, row[k])
        total = zero
        for k in range(cols):
            g[k] = np.exp(row[k] - top)
            total += g[k]
        inverse = 1 / total
        for k in range(cols):
            g[k] *= inverse
        label = labels[i]
        loss[i] = np.log(total) + top - row[label]
        g[label] -= 1


def softmax_cross_entropy(logits, labels):
    """(loss per row, its gradient) of softmax cross-entropy with integer labels: rows of
    ``logits`` (rows, classes), each label in [0, classes) (unchecked). The reference is the
    NumPy form of ``losses.SparseCategoricalCrossentropy`` (what runs where a kernel set has
    none of this)."""
    z = np.ascontiguousarray(logits)
    loss, grad = np.empty(z.shape[0], z.dtype), np.empty_like(z)
    _softmax_cross_entropy(z.size, z, np.ascontiguousarray(labels, np.intp), loss, grad, z.dtype.type(0))
    return loss, grad


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
