"""Flatten: (N, ...) -> (N, prod(...)), in row-major (channels-last) order as Keras."""


def flatten_forward(x, params, config, training=False):
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dy, ctx, need_dx=True):
    return (dy.reshape(ctx) if need_dx else None), {}
