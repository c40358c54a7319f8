"""Pooling: the largest value of each window (its gradient goes to that one input), the
mean of each window, and the global mean or maximum of each channel."""
from dataclasses import dataclass

import numpy as np

from ..arrays import module_of


@dataclass(frozen=True)
class Config:
    pool: tuple
    strides: tuple
    pads: tuple
    backend: object


def max_forward(x, params, config, training=False):
    y, argmax = config.backend.maxpool2d_forward(x, config.pool, config.strides, config.pads)
    return y, (argmax, x.shape, config)


def max_backward(dy, ctx, need_dx=True):
    argmax, x_shape, config = ctx
    if not need_dx:
        return None, {}
    return config.backend.maxpool2d_backward(dy, argmax, x_shape, config.pool, config.strides, config.pads), {}


def average_forward(x, params, config, training=False):
    y = config.backend.avgpool2d_forward(x, config.pool, config.strides, config.pads)
    return y, (x.shape, config)


def average_backward(dy, ctx, need_dx=True):
    x_shape, config = ctx
    if not need_dx:
        return None, {}
    return config.backend.avgpool2d_backward(dy, x_shape, config.pool, config.strides, config.pads), {}


def global_average_forward(x, params, keepdims, training=False):
    return x.mean(axis=(1, 2), keepdims=keepdims), x.shape


def global_average_backward(dy, ctx, need_dx=True):
    n, h, w, c = ctx
    share = dy.reshape(n, 1, 1, c) / dy.dtype.type(h * w)
    return share.repeat(h, axis=1).repeat(w, axis=2), {}


def global_max_forward(x, params, keepdims, training=False):
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    where = flat.argmax(axis=1)                       # the first maximum, as max-pooling's ties
    y = np.take_along_axis(flat, where[:, None, :], axis=1)[:, 0, :]
    return (y.reshape(n, 1, 1, c) if keepdims else y), (x.shape, where)


def global_max_backward(dy, ctx, need_dx=True):
    (n, h, w, c), where = ctx
    xp = module_of(dy)
    winner = xp.arange(h * w)[None, :, None] == where[:, None, :]     # (n, h*w, c): the first maximum
    return (winner * dy.reshape(n, 1, c)).astype(dy.dtype, copy=False).reshape(n, h, w, c), {}
