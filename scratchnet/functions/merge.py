"""Add, Multiply and Concatenate: several tensors in, one out. Add and Multiply broadcast
as Keras does (a size-1 axis stretches; a tensor with fewer axes is aligned at the end,
after the batch); their backward passes sum the gradient over the stretched axes."""
import itertools
from typing import NamedTuple

import numpy as np


def reduce_to(g, shape):
    """Sum g over the axes that broadcasting stretched to reach g's shape from ``shape``."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(1, 1 + extra)))   # axes in front, after the batch
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, g.shape)) if a == 1 and b != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _aligned(x, ndim):
    """x with size-1 axes inserted after the batch so that it has ``ndim`` axes."""
    return x.reshape((x.shape[0],) + (1,) * (ndim - x.ndim) + x.shape[1:]) if x.ndim < ndim else x


def add_forward(xs, params, config, training=False):
    """(the broadcast sum of ``xs``, the list of their shapes as the context)."""
    ndim = max(x.ndim for x in xs)
    y = _aligned(xs[0], ndim) + _aligned(xs[1], ndim)
    for x in xs[2:]:
        y = y + _aligned(x, ndim)
    return y, [x.shape for x in xs]


def add_backward(dy, ctx, need_dx=True):
    """([dy summed down to each input's shape], {})."""
    return [reduce_to(dy, shape).reshape(shape) for shape in ctx], {}


def multiply_forward(xs, params, config, training=False):
    """(the broadcast product of ``xs``, the list of the inputs, aligned, as the context)."""
    ndim = max(x.ndim for x in xs)
    aligned = [_aligned(x, ndim) for x in xs]
    y = aligned[0] * aligned[1]
    for x in aligned[2:]:
        y = y * x
    return y, aligned


def multiply_backward(dy, ctx, need_dx=True):
    """([dy times the other inputs, summed down to each input's shape], {})."""
    grads = []
    for i, x in enumerate(ctx):
        g = dy
        for j, other in enumerate(ctx):
            if j != i:
                g = g * other
        grads.append(reduce_to(g, x.shape).reshape(x.shape))
    return grads, {}


class ConcatContext(NamedTuple):
    """A concatenation: the axis, and each input's size along it."""
    axis: int
    sizes: list


def concatenate_forward(xs, params, axis, training=False):
    """(``xs`` side by side along ``axis``, ConcatContext)."""
    return np.concatenate(xs, axis=axis), ConcatContext(axis, [x.shape[axis] for x in xs])


def concatenate_backward(dy, ctx, need_dx=True):
    """([each input's slice of dy], {})."""
    axis, sizes = ctx.axis, ctx.sizes
    cuts = list(itertools.accumulate(sizes))[:-1]   # plain ints: positions, not an array
    return list(np.split(dy, cuts, axis=axis)), {}
