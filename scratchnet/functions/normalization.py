"""Batch normalisation over the last axis, as Keras's BatchNormalization.

Training: y = (x - mean) / sqrt(var + epsilon) * gamma + beta with the batch's mean and
(biased) variance per channel, then max(y, 0) with ``relu=True`` (a ReLU fused after it);
the context keeps the batch's statistics, from which ``state_updates`` computes the new
moving ones, ``moving * momentum + batch * (1 - momentum)``, when the caller stores them
(after the training step). Inference: the same with the moving statistics, a fixed affine
map of x."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Config:
    epsilon: float
    momentum: float
    backend: object


def forward(x, params, config, training=False, relu=False):
    c = x.shape[-1]
    x2 = x.reshape(-1, c)
    gamma, beta = params.get("gamma"), params.get("beta")
    kernels = config.backend
    if training:
        if x2.shape[0] < 2:
            raise ValueError(f"BatchNormalization in training needs more than one value per channel to "
                             f"estimate a variance; got inputs of shape {tuple(x.shape)} (a batch of one). "
                             f"Use a bigger batch, or call it with training=False")
        y2, mean, var, cache = kernels.batchnorm_forward(x2, gamma, beta, config.epsilon, relu)
        batch_statistics = {"moving_mean": mean, "moving_variance": var, "momentum": config.momentum}
        return y2.reshape(x.shape), ("batch", cache, gamma, beta is not None, x.shape, kernels, batch_statistics)
    mean, var = params["moving_mean"], params["moving_variance"]
    y2 = kernels.batchnorm_inference(x2, gamma, beta, mean, var, config.epsilon, relu)
    inv_std = 1 / np.sqrt(var + x.dtype.type(config.epsilon))
    cache = (x2, mean, inv_std, y2 if relu else None)
    return y2.reshape(x.shape), ("moving", cache, gamma, beta is not None, x.shape, kernels, None)


def backward(dy, ctx, need_dx=True):
    mode, cache, gamma, has_beta, x_shape, kernels, _ = ctx
    dy2 = dy.reshape(-1, x_shape[-1])
    if mode == "batch":
        dx2, dgamma, dbeta = kernels.batchnorm_backward(dy2, cache, gamma)
    else:   # fixed statistics: an affine map of x
        x2, mean, inv_std, rectified = cache
        if rectified is not None:
            dy2 = dy2 * (rectified > 0)
        dbeta = dy2.sum(axis=0)
        dgamma = (dy2 * ((x2 - mean) * inv_std)).sum(axis=0)
        dx2 = dy2 * (inv_std if gamma is None else gamma * inv_std) if need_dx else None
    grads = {}
    if gamma is not None:
        grads["gamma"] = dgamma
    if has_beta:
        grads["beta"] = dbeta
    return (dx2.reshape(x_shape) if need_dx else None), grads


def state_updates(ctx, params):
    """{name: new moving statistic} from a training call's context and the current ``params``
    (read now, so that two training calls of one layer in a step both count, in order)."""
    batch = ctx[-1] if ctx is not None else None
    if batch is None:
        return {}
    m = batch["momentum"]
    return {name: params[name] * m + batch[name] * (1 - m) for name in ("moving_mean", "moving_variance")}
