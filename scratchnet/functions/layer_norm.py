"""Per-sample normalisations, as Keras 3's LayerNormalization, GroupNormalization,
UnitNormalization and (the preprocessing layer) Normalization define them.

All work in the input's dtype (float32 stays float32; float64 when asked) with NumPy-like
array modules (NumPy or CuPy: the ufuncs used dispatch on the array), and keep what their backward pass
needs in a NamedTuple context.

Layer and group normalisation share one core: x is standardised over some axes,
xhat = (x - mean) / sqrt(var + epsilon) (biased variance), then y = xhat * gamma + beta.
With n the number of values reduced over and g = dL/dxhat = dL/dy * gamma,
dL/dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + epsilon).
Group normalisation is the same after splitting the channel axis into (groups, channels
per group) and reducing over every axis but the batch and the group (CS231n's spatial
group norm)."""
from typing import NamedTuple

import numpy as np


class StandardizeContext(NamedTuple):
    """A standardisation: xhat (in the reduced layout), 1 / sqrt(var + epsilon) (keepdims),
    the axes reduced over, gamma reshaped to broadcast (or None), whether there is a beta,
    the axes gamma and beta are summed over for their gradients, their shape, and the
    input's shape."""
    xhat: object
    inv_std: object
    axes: tuple
    gamma: object
    has_beta: bool
    param_axes: tuple
    param_shape: tuple
    x_shape: tuple


def _standardize(x, axes, gamma, beta, epsilon, broadcast, param_axes, x_shape):
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + x.dtype.type(epsilon))
    xhat = centred * inv_std
    g = None if gamma is None else gamma.reshape(broadcast)
    y = xhat if g is None else xhat * g
    if beta is not None:
        y = y + beta.reshape(broadcast)
    shape = None if gamma is None and beta is None else tuple((gamma if gamma is not None else beta).shape)
    return y, StandardizeContext(xhat, inv_std, axes, g, beta is not None, param_axes, shape, x_shape)


def _standardize_backward(dy, ctx, need_dx):
    xhat, inv_std, axes = ctx.xhat, ctx.inv_std, ctx.axes
    grads = {}
    if ctx.gamma is not None:
        grads["gamma"] = (dy * xhat).sum(axis=ctx.param_axes).reshape(ctx.param_shape)
    if ctx.has_beta:
        grads["beta"] = dy.sum(axis=ctx.param_axes).reshape(ctx.param_shape)
    if not need_dx:
        return None, grads
    g = dy if ctx.gamma is None else dy * ctx.gamma
    dx = (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)) * inv_std
    return dx.reshape(ctx.x_shape), grads


# ----- LayerNormalization ---------------------------------------------------------------
def layer_norm_forward(x, params, axes, epsilon):
    """(y, ctx): x standardised over ``axes`` (sorted, non-negative, of the whole shape,
    batch axis included), then scaled by params['gamma'] and shifted by params['beta'] (each
    optional, shaped as the sizes of ``axes``)."""
    broadcast = [1] * x.ndim
    for a in axes:
        broadcast[a] = x.shape[a]
    param_axes = tuple(a for a in range(x.ndim) if a not in axes)
    return _standardize(x, tuple(axes), params.get("gamma"), params.get("beta"), epsilon, tuple(broadcast),
                        param_axes, x.shape)


def layer_norm_backward(dy, ctx, need_dx=True):
    """(dx or None, {'gamma', 'beta'}) from dL/dy and layer_norm_forward's context."""
    return _standardize_backward(dy, ctx, need_dx)


# ----- GroupNormalization ---------------------------------------------------------------
def group_norm_forward(x, params, groups, axis, epsilon):
    """(y, ctx): the channels on ``axis`` (non-negative, of the whole shape) split into
    ``groups`` groups; each sample's group standardised over its channels and every other
    non-batch axis; then the per-channel gamma and beta."""
    c = x.shape[axis]
    grouped_shape = x.shape[:axis] + (groups, c // groups) + x.shape[axis + 1:]
    xg = x.reshape(grouped_shape)
    axes = tuple(a for a in range(1, xg.ndim) if a != axis)
    broadcast = [1] * xg.ndim
    broadcast[axis], broadcast[axis + 1] = groups, c // groups
    param_axes = tuple(a for a in range(xg.ndim) if a not in (axis, axis + 1))
    y, ctx = _standardize(xg, axes, params.get("gamma"), params.get("beta"), epsilon, tuple(broadcast),
                          param_axes, x.shape)
    return y.reshape(x.shape), ctx


def group_norm_backward(dy, ctx, need_dx=True):
    """(dx or None, {'gamma', 'beta'}) from dL/dy and group_norm_forward's context."""
    return _standardize_backward(dy.reshape(ctx.xhat.shape), ctx, need_dx)


# ----- UnitNormalization ----------------------------------------------------------------
UNIT_EPSILON = 1e-12     # Keras: x * min(1 / sqrt(sum(x^2)), 1 / 1e-12)


class UnitContext(NamedTuple):
    """y, 1 / max(||x||, epsilon) (keepdims), whether the norm was above epsilon, the axes."""
    y: object
    inv_norm: object
    unclamped: object
    axes: tuple


def unit_norm_forward(x, axes):
    """(y, ctx): x / max(||x||_2 over ``axes``, 1e-12), as Keras's ops.normalize(order=2)."""
    norm = np.sqrt((x * x).sum(axis=axes, keepdims=True))
    eps = x.dtype.type(UNIT_EPSILON)
    unclamped = norm > eps
    inv_norm = 1 / np.maximum(norm, eps)
    y = x * inv_norm
    return y, UnitContext(y, inv_norm, unclamped, tuple(axes))


def unit_norm_backward(dy, ctx, need_dx=True):
    """dL/dx: (dy - y * sum(y * dy)) / ||x|| where the norm is above epsilon (the projection
    onto the sphere's tangent), dy / epsilon where it is clamped (a constant scale)."""
    if not need_dx:
        return None, {}
    proj = ctx.y * (ctx.y * dy).sum(axis=ctx.axes, keepdims=True)
    dx = (dy - proj * ctx.unclamped) * ctx.inv_norm
    return dx, {}


# ----- Normalization (preprocessing) ----------------------------------------------------
NORMALIZATION_EPSILON = 1e-7     # Keras's backend.epsilon(): the floor of sqrt(variance)


class ScaleContext(NamedTuple):
    """The factor dL/dx = dL/dy * factor (broadcast), and the input's shape."""
    factor: object
    x_shape: tuple


def standardize_forward(x, mean, variance, invert=False):
    """(y, ctx): (x - mean) / max(sqrt(variance), 1e-7), or with ``invert`` the inverse,
    mean + x * max(sqrt(variance), 1e-7); mean and variance broadcast against x."""
    std = np.maximum(np.sqrt(variance), x.dtype.type(NORMALIZATION_EPSILON)).astype(x.dtype, copy=False)
    mean = mean.astype(x.dtype, copy=False)
    if invert:
        return mean + x * std, ScaleContext(std, x.shape)
    factor = 1 / std
    return (x - mean) * factor, ScaleContext(factor, x.shape)


def standardize_backward(dy, ctx, need_dx=True):
    if not need_dx:
        return None, {}
    return dy * ctx.factor, {}     # factor broadcasts against dy, which has x's shape


def combine_moments(total, batch_mean, batch_var, batch_count):
    """(mean, variance, count) of everything seen so far, from the totals ``total`` = (mean,
    variance, count) and one batch's moments, weighted as Keras's Normalization.adapt does
    (the lack-of-fit sum of squares)."""
    mean, var, count = total
    count = count + batch_count
    w = float(batch_count) / count
    new_mean = mean * (1 - w) + batch_mean * w
    var = (var + (mean - new_mean) ** 2) * (1 - w) + (batch_var + (batch_mean - new_mean) ** 2) * w
    return new_mean, var, count
