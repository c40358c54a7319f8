"""Reference answers to notebook 3's exercises."""
import numpy as np


def maxpool_backward(dy, x, pool, stride):
    """dL/dx of max-pooling x (N, H, W, C) in pool x pool windows every stride pixels."""
    dx = np.zeros_like(x)
    _, ho, wo, _ = dy.shape
    for i in range(ho):
        for j in range(wo):
            window = x[:, i * stride:i * stride + pool, j * stride:j * stride + pool, :]   # (N, p, p, C)
            flat = window.reshape(len(x), pool * pool, -1)
            first = flat.argmax(axis=1)                                    # (N, C): the first maximum
            rows, cols = np.unravel_index(first, (pool, pool))
            n_idx, c_idx = np.meshgrid(np.arange(len(x)), np.arange(x.shape[3]), indexing="ij")
            dx[n_idx, i * stride + rows, j * stride + cols, c_idx] += dy[:, i, j, :]
    return dx


def relu_backward(da, z):
    """dL/dz of a = max(z, 0) from dL/da (0 where z <= 0)."""
    return da * (z > 0)
