"""A Conv2D and the MaxPooling2D after it, as one function: y = maxpool(activation(conv(x) + b)).

The graph runs a convolution (activation 'relu' or 'linear') whose only reader is a max-pooling
with non-overlapping windows through this function when the backend has the fused kernels
(``conv2d_maxpool_forward``/``_backward``): the convolution's output, its activation and their
gradients are then never stored whole, and the pooling's backward pass hands the gradient
straight to the convolution. The result is the two layers' (see tests/test_fusion.py).
"""
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Config:
    strides: tuple
    pads: tuple
    activation: str      # 'relu' or 'linear'
    pool: tuple
    backend: object


class ConvPoolContext(NamedTuple):
    """A fused call: what the fused kernel's forward kept for its backward, and the backend."""
    cache: object
    backend: object


def forward(x, params, config, training=False):
    """(y, ConvPoolContext): params are the convolution's ('kernel', and 'bias' if it has one)."""
    y, cache = config.backend.conv2d_maxpool_forward(x, params["kernel"], params.get("bias"), config.activation,
                                                     config.strides, config.pads, config.pool, training)
    return y, ConvPoolContext(cache, config.backend)


def backward(dy, ctx, need_dx=True):
    """(dx or None, {'kernel': dk, 'bias': db}) from dL/dy and a ConvPoolContext."""
    dx, dk, db = ctx.backend.conv2d_maxpool_backward(dy, ctx.cache, need_dx)
    grads = {"kernel": dk}
    if db is not None:
        grads["bias"] = db
    return dx, grads
