"""Reference answers to notebook 2's exercises."""
import numpy as np


def conv_forward(x, w, b, stride):
    """'valid' convolution of x (N, H, W, C) with w (kh, kw, C, F) plus b (F,), by im2col."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    cols = np.empty((n, ho, wo, kh, kw, c))
    for a in range(kh):
        for d in range(kw):
            cols[:, :, :, a, d, :] = x[:, a:a + stride * ho:stride, d:d + stride * wo:stride, :]
    y = cols.reshape(n * ho * wo, kh * kw * c) @ w.reshape(kh * kw * c, f) + b   # one matrix product
    return y.reshape(n, ho, wo, f)


def conv_backward(dy, x, w, stride):
    """(dx, dw, db) of conv_forward from dL/dy (N, Ho, Wo, F)."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    _, ho, wo, _ = dy.shape
    cols = np.empty((n, ho, wo, kh, kw, c))
    for a in range(kh):
        for d in range(kw):
            cols[:, :, :, a, d, :] = x[:, a:a + stride * ho:stride, d:d + stride * wo:stride, :]
    dy2 = dy.reshape(-1, f)                                          # (N Ho Wo, F)
    dw = (cols.reshape(-1, kh * kw * c).T @ dy2).reshape(w.shape)   # cols^T dY
    dcols = (dy2 @ w.reshape(-1, f).T).reshape(cols.shape)           # dY W^T
    dx = np.zeros_like(x)
    for a in range(kh):                                              # col2im: every copy adds back
        for d in range(kw):
            dx[:, a:a + stride * ho:stride, d:d + stride * wo:stride, :] += dcols[:, :, :, a, d, :]
    return dx, dw, dy2.sum(axis=0)
