"""Max-pooling: the largest value of each window; its gradient goes to that one input."""
from dataclasses import dataclass


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
