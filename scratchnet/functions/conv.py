"""2-D convolution over channels-last images: im2col + GEMM in the backend's kernels."""
from dataclasses import dataclass

from . import activation as act


@dataclass(frozen=True)
class Config:
    strides: tuple
    pads: tuple          # (top, bottom, left, right)
    activation: object
    backend: object


def forward(x, params, config, training=False):
    z, cache = config.backend.conv2d_forward(x, params["kernel"], config.strides, config.pads)
    y, act_ctx = act.forward(z, params.get("bias"), config.activation, config.backend)
    return y, (cache, act_ctx, config.backend)


def backward(dy, ctx, need_dx=True):
    cache, act_ctx, backend = ctx
    dz, db = act.backward(dy, act_ctx)
    dx, dk = backend.conv2d_backward(dz, cache, need_dx)
    grads = {"kernel": dk}
    if db is not None:
        grads["bias"] = db
    return dx, grads
