"""Numba CPU kernels that go element by element (or row by row): bias + activation (and its
backward), the Adam and RMSprop updates, dropout masks, and softmax cross-entropy."""
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .numba_lanes import DIVIDING, JIT, kernel
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
@intrinsic
def _pow2(typingctx, n, like):
    # 2.0 ** n in like's float type, built from its IEEE bits, for an integer n within that
    # type's normal exponents (float32: -126..127, float64: -1022..1023)
    if not isinstance(n, types.Integer) or like not in (types.float32, types.float64):
        return None
    single = like == types.float32

    def codegen(context, builder, signature, args):
        wide = ir.IntType(64)
        exponent = builder.add(builder.sext(args[0], wide) if n.bitwidth < 64 else args[0],
                               ir.Constant(wide, 127 if single else 1023))
        bits = builder.shl(exponent, ir.Constant(wide, 23 if single else 52))
        if single:
            return builder.bitcast(builder.trunc(bits, ir.IntType(32)), ir.FloatType())
        return builder.bitcast(bits, ir.DoubleType())
    return like(n, like), codegen


@njit(inline="always", **JIT)
def _exp_in_place(t, c):
    # t[j] = exp(t[j]) for t <= 0: 2^m * e^r with m = round(t / ln 2) and |r| <= ln(2) / 2 (r from a
    # two-part ln 2, exact for these m), e^r by its Taylor series to r^12 (an ulp or so in float64);
    # t below c[3] (where 2^m leaves the normal floats) counts as c[3]; NaN stays NaN. Plain
    # arithmetic and bit operations, so that the loop vectorises (np.exp calls libm per element)
    log2e, ln2_hi, ln2_lo, lowest, half = c[0], c[1], c[2], c[3], c[4]
    for j in range(t.size):
        x = t[j]
        if x < lowest:
            x = lowest
        m = np.floor(x * log2e + half)
        r = (x - m * ln2_hi) - m * ln2_lo
        p = ((((((((((c[16] * r + c[15]) * r + c[14]) * r + c[13]) * r + c[12]) * r + c[11]) * r + c[10]) * r
                   + c[9]) * r + c[8]) * r + c[7]) * r + c[6])     # sum of r^(k-2) / k! for k = 2..12
        t[j] = (c[5] + (r + r * r * p)) * _pow2(np.int64(m), x)


def _exp_constants(dtype):
    """_exp_in_place's constants in ``dtype``: log2(e), ln 2 in two parts (the first with few
    enough bits that m * it is exact), the lowest argument, 1/2 (for rounding), then 1/k! for
    k = 1..12."""
    single = np.dtype(dtype) == np.float32
    ln2_hi, ln2_lo = (0.693359375, -2.12194440e-4) if single else (6.93147180369123816490e-01,
                                                                      1.90821492927058770002e-10)
    lowest = -87.0 if single else -708.0
    factorials = [1 / math.factorial(k) for k in range(2, 13)]
    return np.array([1 / math.log(2), ln2_hi, ln2_lo, lowest, 0.5, 1.0] + factorials, dtype)


_EXP_CONSTANTS = {np.dtype(t): _exp_constants(t) for t in (np.float32, np.float64)}
_SOFTMAX_BLOCK_ROWS = 256   # rows whose exponentials are taken in one vectorised loop


@kernel(fastmath={"reassoc", "contract", "nsz", "arcp"})    # not nnan/ninf: a NaN logit gives a NaN loss
def _softmax_cross_entropy(z, labels, loss, grad, c, zero):
    # per row i: loss[i] = log(sum_k exp(z[i,k])) - z[i,labels[i]] and grad[i] = softmax(z[i]) - onehot,
    # shifted by the row's max so exp never overflows; blocks of rows: shift, exp (vectorised), normalise
    rows, cols = z.shape
    flat = grad.reshape(rows * cols)
    for block in prange((rows + _SOFTMAX_BLOCK_ROWS - 1) // _SOFTMAX_BLOCK_ROWS):
        first = block * _SOFTMAX_BLOCK_ROWS
        last = min(rows, first + _SOFTMAX_BLOCK_ROWS)
        for i in range(first, last):
            row, g = z[i], grad[i]
            top = row[0]
            for k in range(cols):
                top = max(top, row[k])
            loss[i] = top                      # kept here until the row's sum is known
            for k in range(cols):
                g[k] = row[k] - top
        _exp_in_place(flat[first * cols:last * cols], c)
        for i in range(first, last):
            row, g = z[i], grad[i]
            total = zero
            for k in range(cols):
                total += g[k]
            inverse = 1 / total
            for k in range(cols):
                g[k] *= inverse
            label = labels[i]
            loss[i] = np.log(total) + loss[i] - row[label]
            g[label] -= 1


def softmax_cross_entropy(logits, labels):
    """(loss per row, its gradient) of softmax cross-entropy with integer labels: rows of
    ``logits`` (rows, classes), each label in [0, classes) (unchecked). The reference is the
    NumPy form of ``losses.SparseCategoricalCrossentropy`` (what runs where a kernel set has
    none of this)."""
    z = np.ascontiguousarray(logits)
    loss, grad = np.empty(z.shape[0], z.dtype), np.empty_like(z)
    _softmax_cross_entropy(z.size, z, np.ascontiguousarray(labels, np.intp), loss, grad,
                           _EXP_CONSTANTS[z.dtype], z.dtype.type(0))
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
    dz = np.empty(dy.shape, dy.dtype) if relu else dy2.reshape(dy.shape)   # contiguous, as the next kernel reads it
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
