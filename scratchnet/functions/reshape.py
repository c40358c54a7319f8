"""Reshaping: Flatten ((N, ...) -> (N, prod(...)), in row-major channels-last order as
Keras), Reshape, and zero padding around images."""
from typing import NamedTuple

from ..arrays import module_of


def flatten_forward(x, params, config, training=False):
    """(x as (N, -1), x's shape as the context)."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dy, ctx, need_dx=True):
    """(dy in the input's shape ``ctx``, {})."""
    return (dy.reshape(ctx) if need_dx else None), {}


def reshape_forward(x, params, target_shape, training=False):
    """(each sample of x in ``target_shape``, x's shape as the context)."""
    return x.reshape((x.shape[0],) + tuple(target_shape)), x.shape


def reshape_backward(dy, ctx, need_dx=True):
    """(dy in the input's shape ``ctx``, {})."""
    return (dy.reshape(ctx) if need_dx else None), {}


class PadContext(NamedTuple):
    """A zero-padding call: the pads ((top, bottom), (left, right)) and the input's shape."""
    pads: tuple
    x_shape: tuple


def zero_pad_forward(x, params, pads, training=False):
    """(x with rows and columns of zeros around each image, PadContext); pads: ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = pads
    y = module_of(x).zeros((x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]), x.dtype)
    y[:, top:top + x.shape[1], left:left + x.shape[2], :] = x
    return y, PadContext(pads, x.shape)


def zero_pad_backward(dy, ctx, need_dx=True):
    """(dy without the padding, {})."""
    ((top, _), (left, _)), shape = ctx.pads, ctx.x_shape
    return (dy[:, top:top + shape[1], left:left + shape[2], :] if need_dx else None), {}


def crop_forward(x, params, cropping, training=False):
    """(x without ``cropping`` ((top, bottom), (left, right)) rows and columns at its edges,
    as a new array; PadContext: the backward pass pads dy back with zeros)."""
    (top, bottom), (left, right) = cropping
    h, w = x.shape[1:3]
    return x[:, top:h - bottom, left:w - right, :].copy(), PadContext(cropping, x.shape)


def crop_backward(dy, ctx, need_dx=True):
    """(dy with rows and columns of zeros where the crop cut, {})."""
    return (zero_pad_forward(dy, None, ctx.pads)[0] if need_dx else None), {}
