"""Pooling: the largest value of each window (its gradient goes to that one input), the
mean of each window, and the global mean or maximum of each channel."""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..arrays import module_of


@dataclass(frozen=True)
class Config:
    pool: tuple
    strides: tuple
    pads: tuple
    backend: object


class MaxPoolContext(NamedTuple):
    """A max-pooling call: where each window's maximum was, the input's shape, the configuration."""
    argmax: object
    x_shape: tuple
    config: Config


class AveragePoolContext(NamedTuple):
    """An average-pooling call: the input's shape and the configuration."""
    x_shape: tuple
    config: Config


class GlobalMaxContext(NamedTuple):
    """A global max-pooling call: the input's shape and, per image and channel, the flat
    position of the (first) maximum."""
    x_shape: tuple
    where: object


def max_forward(x, params, config, training=False):
    """(the maximum of each window, MaxPoolContext)."""
    y, argmax = config.backend.maxpool2d_forward(x, config.pool, config.strides, config.pads)
    return y, MaxPoolContext(argmax, x.shape, config)


def max_backward(dy, ctx, need_dx=True):
    """(dx: dy sent to each window's maximum, {})."""
    if not need_dx:
        return None, {}
    config = ctx.config
    return config.backend.maxpool2d_backward(dy, ctx.argmax, ctx.x_shape, config.pool, config.strides,
                                             config.pads), {}


def average_forward(x, params, config, training=False):
    """(the mean of each window, AveragePoolContext)."""
    y = config.backend.avgpool2d_forward(x, config.pool, config.strides, config.pads)
    return y, AveragePoolContext(x.shape, config)


def average_backward(dy, ctx, need_dx=True):
    """(dx: dy shared among each window's inputs, {})."""
    if not need_dx:
        return None, {}
    config = ctx.config
    return config.backend.avgpool2d_backward(dy, ctx.x_shape, config.pool, config.strides, config.pads), {}


def global_average_forward(x, params, keepdims, training=False):
    """(the mean of each channel, the input's shape as the context)."""
    return x.mean(axis=(1, 2), keepdims=keepdims), x.shape


def global_average_backward(dy, ctx, need_dx=True):
    """(dx: dy shared among every pixel of its channel, {}); ``ctx`` is the input's shape."""
    n, h, w, c = ctx
    share = dy.reshape(n, 1, 1, c) / dy.dtype.type(h * w)
    return share.repeat(h, axis=1).repeat(w, axis=2), {}


def global_max_forward(x, params, keepdims, training=False):
    """(the maximum of each channel, GlobalMaxContext)."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    where = flat.argmax(axis=1)                       # the first maximum, as max-pooling's ties
    y = np.take_along_axis(flat, where[:, None, :], axis=1)[:, 0, :]
    return (y.reshape(n, 1, 1, c) if keepdims else y), GlobalMaxContext(x.shape, where)


def global_max_backward(dy, ctx, need_dx=True):
    """(dx: dy sent to each channel's first maximum, {})."""
    n, h, w, c = ctx.x_shape
    xp = module_of(dy)
    winner = xp.arange(h * w)[None, :, None] == ctx.where[:, None, :]     # (n, h*w, c): the first maximum
    return (winner * dy.reshape(n, 1, c)).astype(dy.dtype, copy=False).reshape(n, h, w, c), {}
