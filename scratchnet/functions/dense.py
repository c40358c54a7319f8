"""y = activation(x @ kernel + bias), along the last axis."""
from dataclasses import dataclass
from typing import NamedTuple

from . import activation as act


@dataclass(frozen=True)
class Config:
    activation: object
    backend: object


class DenseContext(NamedTuple):
    """A Dense call: its input as a matrix, the input's shape, the kernel, and the activation's context."""
    x2: object
    x_shape: tuple
    kernel: object
    activation: act.ActivationContext


def forward(x, params, config, training=False):
    """y = activation(x @ kernel + bias) along the last axis of x."""
    x2 = x.reshape(-1, x.shape[-1])
    kernel = params["kernel"]
    z = _matmul(config.backend, x2, kernel).reshape(x.shape[:-1] + (kernel.shape[1],))
    y, act_ctx = act.forward(z, params.get("bias"), config.activation, config.backend)
    return y, DenseContext(x2, x.shape, kernel, act_ctx)


def backward(dy, ctx, need_dx=True):
    """(dx or None, {'kernel', 'bias'}) from dL/dy and a DenseContext."""
    dz, db = act.backward(dy, ctx.activation)
    kernel, backend = ctx.kernel, ctx.activation.backend
    dz2 = dz.reshape(-1, kernel.shape[1])
    grads = {"kernel": _matmul(backend, ctx.x2.T, dz2)}
    if db is not None:
        grads["bias"] = db
    dx = _matmul(backend, dz2, kernel.T).reshape(ctx.x_shape) if need_dx else None
    return dx, grads


def _matmul(backend, a, b):
    """a @ b, with the backend's own product where it has one (the CPU's splits big ones in two lanes)."""
    return backend.matmul(a, b) if backend.matmul is not None else a @ b
