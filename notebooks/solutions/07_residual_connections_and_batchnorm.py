"""Reference answers to notebook 7's exercises."""
import numpy as np


def batchnorm_backward(g, x, gamma, eps=1e-3):
    """(dx, dgamma, dbeta) of y = gamma * xhat + beta, per channel over the N rows of x, from g = dL/dy."""
    n = x.shape[0]
    inv_std = 1 / np.sqrt(x.var(axis=0) + eps)             # (C,)
    xhat = (x - x.mean(axis=0)) * inv_std                   # (N, C)
    dbeta, dgamma = g.sum(axis=0), (g * xhat).sum(axis=0)   # (C,), (C,)
    dx = gamma * inv_std / n * (n * g - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
