"""Reshaping: Flatten ((N, ...) -> (N, prod(...)), in row-major channels-last order as
Keras), Reshape, and zero padding around images."""


def flatten_forward(x, params, config, training=False):
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dy, ctx, need_dx=True):
    return (dy.reshape(ctx) if need_dx else None), {}


def reshape_forward(x, params, target_shape, training=False):
    return x.reshape((x.shape[0],) + tuple(target_shape)), x.shape


def reshape_backward(dy, ctx, need_dx=True):
    return (dy.reshape(ctx) if need_dx else None), {}


def zero_pad_forward(x, params, pads, training=False):
    """pads: ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = pads
    from ..arrays import module_of
    y = module_of(x).zeros((x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]), x.dtype)
    y[:, top:top + x.shape[1], left:left + x.shape[2], :] = x
    return y, (pads, x.shape)


def zero_pad_backward(dy, ctx, need_dx=True):
    ((top, _), (left, _)), shape = ctx
    return (dy[:, top:top + shape[1], left:left + shape[2], :] if need_dx else None), {}
