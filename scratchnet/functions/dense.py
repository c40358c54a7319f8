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
    z = _matmul(config.backend, x2, kernel).reshape(x.shape[:-1] + (kernel.shape[1],))
    y, act_ctx = act.forward(z, params.get("bias"), config.activation, config.backend)
    return y, (x2, x.shape, kernel, act_ctx)


def backward(dy, ctx, need_dx=True):
    x2, x_shape, kernel, act_ctx = ctx
    dz, db = act.backward(dy, act_ctx)
    dz2 = dz.reshape(-1, kernel.shape[1])
    backend = act_ctx[3]
    grads = {"kernel": _matmul(backend, x2.T, dz2)}
    if db is not None:
        grads["bias"] = db
    dx = _matmul(backend, dz2, kernel.T).reshape(x_shape) if need_dx else None
    return dx, grads


def _matmul(backend, a, b):
    """a @ b, with the backend's own product where it has one (the CPU's splits big ones in two lanes)."""
    return backend.matmul(a, b) if backend.matmul is not None else a @ b
