"""y = activation(x @ kernel + bias), along the last axis."""
from dataclasses import dataclass

from . import activation as act


@dataclass(frozen=True)
class Config:
    activation: object
    backend: object


def forward(x, params, config, training=False):
    x2 = x.reshape(-1, x.shape[-1])
    kernel = params["kernel"]
    z = (x2 @ kernel).reshape(x.shape[:-1] + (kernel.shape[1],))
    y, act_ctx = act.forward(z, params.get("bias"), config.activation, config.backend)
    return y, (x2, x.shape, kernel, act_ctx)


def backward(dy, ctx, need_dx=True):
    x2, x_shape, kernel, act_ctx = ctx
    dz, db = act.backward(dy, act_ctx)
    dz2 = dz.reshape(-1, kernel.shape[1])
    grads = {"kernel": x2.T @ dz2}
    if db is not None:
        grads["bias"] = db
    dx = (dz2 @ kernel.T).reshape(x_shape) if need_dx else None
    return dx, grads
