"""Batch normalisation over the last axis, as Keras's BatchNormalization.

Training: y = (x - mean) / sqrt(var + epsilon) * gamma + beta with the batch's mean and
(biased) variance per channel, then max(y, 0) when the configuration says ``then_relu``
(the BatchNormReLU step of layers/fused.py: a ReLU run in the same pass); the context keeps
the batch's statistics, from which ``state_updates`` computes the new moving ones,
``moving * momentum + batch * (1 - momentum)``, when the caller stores them (after the
training step). Inference: the same with the moving statistics, a fixed affine map of x."""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Config:
    epsilon: float
    momentum: float
    backend: object
    then_relu: bool = False     # rectify the output in the same pass


class BatchStatistics(NamedTuple):
    """A training call's batch statistics per channel, and the momentum to fold them in with."""
    mean: object
    variance: object
    momentum: float


class FixedStatistics(NamedTuple):
    """What an inference call keeps for its backward pass: its input as a matrix, the moving
    mean, 1 / sqrt(moving variance + epsilon), and the rectified output (None without ReLU)."""
    x2: object
    mean: object
    inv_std: object
    rectified: object


class NormContext(NamedTuple):
    """A call: the kernel's cache (training) or FixedStatistics (inference), gamma (or None),
    whether there is a beta, the input's shape, the backend, and the BatchStatistics of a
    training call (None in inference)."""
    cache: object
    gamma: object
    has_beta: bool
    x_shape: tuple
    backend: object
    batch: object


def forward(x, params, config, training=False):
    """(y, NormContext): normalised with the batch's statistics when ``training``, else the
    moving ones; rectified when ``config.then_relu``."""
    c = x.shape[-1]
    x2 = x.reshape(-1, c)
    gamma, beta = params.get("gamma"), params.get("beta")
    kernels, relu = config.backend, config.then_relu
    if training:
        if x2.shape[0] < 2:
            raise ValueError(f"BatchNormalization in training needs more than one value per channel to "
                             f"estimate a variance; got inputs of shape {tuple(x.shape)} (a batch of one). "
                             f"Use a bigger batch, or call it with training=False")
        y2, mean, var, cache = kernels.batchnorm_forward(x2, gamma, beta, config.epsilon, relu)
        batch = BatchStatistics(mean, var, config.momentum)
        return y2.reshape(x.shape), NormContext(cache, gamma, beta is not None, x.shape, kernels, batch)
    mean, var = params["moving_mean"], params["moving_variance"]
    y2 = kernels.batchnorm_inference(x2, gamma, beta, mean, var, config.epsilon, relu)
    inv_std = 1 / np.sqrt(var + x.dtype.type(config.epsilon))
    cache = FixedStatistics(x2, mean, inv_std, y2 if relu else None)
    return y2.reshape(x.shape), NormContext(cache, gamma, beta is not None, x.shape, kernels, None)


def backward(dy, ctx, need_dx=True):
    """(dx or None, {'gamma', 'beta'}) from dL/dy and a NormContext."""
    gamma, x_shape = ctx.gamma, ctx.x_shape
    dy2 = dy.reshape(-1, x_shape[-1])
    if ctx.batch is not None:
        dx2, dgamma, dbeta = ctx.backend.batchnorm_backward(dy2, ctx.cache, gamma)
    else:   # fixed statistics: an affine map of x
        x2, mean, inv_std, rectified = ctx.cache
        if rectified is not None:
            dy2 = dy2 * (rectified > 0)
        dbeta = dy2.sum(axis=0)
        dgamma = (dy2 * ((x2 - mean) * inv_std)).sum(axis=0)
        dx2 = dy2 * (inv_std if gamma is None else gamma * inv_std) if need_dx else None
    grads = {}
    if gamma is not None:
        grads["gamma"] = dgamma
    if ctx.has_beta:
        grads["beta"] = dbeta
    return (dx2.reshape(x_shape) if need_dx else None), grads


def state_updates(ctx, params):
    """{name: new moving statistic} from a training call's context and the current ``params``
    (read now, so that two training calls of one layer in a step both count, in order)."""
    batch = ctx.batch if ctx is not None else None
    if batch is None:
        return {}
    m = batch.momentum
    return {"moving_mean": params["moving_mean"] * m + batch.mean * (1 - m),
            "moving_variance": params["moving_variance"] * m + batch.variance * (1 - m)}
