"""2-D transposed convolution (Keras's Conv2DTranspose) over channels-last images, from the
convolution kernels the backend has.

A transposed convolution is the adjoint of a convolution. Take the convolution C that maps an
image z of the transposed convolution's *output* size (N, Ho, Wo, filters) to one of its
*input* size (N, H, W, C) with kernel k (kh, kw, filters, C): Keras's kernel layout for
Conv2DTranspose is exactly C's kernel. The layer is y = C^T x, and for a loss L with
dL/dy = g:

    forward     y  = C^T x       C's input gradient at output gradient x: the backend's
                                 conv2d_backward_input(x, k, y's shape, ...), col2im(x k^T)
    backward    dx = C g         since y is linear in x with matrix C^T, dL/dx = C dL/dy:
                                 C's forward pass on g (conv2d_forward)
                dk = unfold(g)^T x: C's weight gradient at input g and output gradient x
                                 (conv2d_backward's dw, from that forward pass's cache)

so each pass does the multiply-adds of one convolution (two in the backward: dx and dk), as
Conv2D's do. A dilated kernel is made explicit (zeros between its taps, ``conv.dilate``) and
its gradient read back at the taps.

Where the output lands: C's padding (top, bottom, left, right) comes from Keras's rule
(``pads``). The bottom/right padding can be negative (``padding='valid'`` with
``output_padding``, or a kernel smaller than the stride): the last rows or columns of y are
then outside every window of C, get nothing from x, and hold only the bias.
conv2d_backward_input takes such pads as they are; conv2d_forward needs pads >= 0, so the
backward pass runs C on the rows and columns its windows reach (``_covered``).
"""
from dataclasses import dataclass
from typing import NamedTuple

from ..arrays import module_of
from . import activation as act
from .conv import dilate


def padding_1d(size, kernel, stride, dilation, padding, output_padding):
    """(before, after, output size) along one axis: C's padding on the output and the
    output's length. Keras's rule: the output is ``size * stride`` ('same'),
    ``size * stride + max(k - stride, 0)`` ('valid'), or with ``output_padding`` p
    ``(size - 1) * stride + k - 2 * pad + p`` with pad = k // 2 ('same') or 0 ('valid'),
    k the dilated kernel's extent. Keras's backends pad the stride-dilated input by
    (left, right) before a stride-1 correlation; C's padding is (k - 1 - left, k - 1 - right)."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        left, right = k - 1, k - 1 + extra
    else:
        total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, k - 1)
        right = total - left
    before, after = k - 1 - left, k - 1 - right
    return before, after, (size - 1) * stride + k - before - after


@dataclass(frozen=True)
class Config:
    strides: tuple
    pads: tuple          # C's (top, bottom, left, right); bottom and right may be negative
    dilation: tuple
    activation: object
    backend: object


class ConvTransposeContext(NamedTuple):
    """A transposed convolution call: its input (dL/dk needs it), the (dilated) kernel it
    used, the activation's context and the configuration."""
    x: object
    kernel: object
    activation: act.ActivationContext
    config: Config


def _covered(config, out_h, out_w):
    """C's non-negative pads and the output rows and columns its windows reach."""
    top, bottom, left, right = config.pads
    return (top, max(bottom, 0), left, max(right, 0)), (out_h + min(bottom, 0), out_w + min(right, 0))


def output_size(input_size, extent, strides, pads):
    """(rows, columns) of y for an input of ``input_size`` (rows, columns): the size C maps
    to it exactly, (size - 1) * stride + extent - before - after."""
    return tuple((size - 1) * s + k - pads[2 * i] - pads[2 * i + 1]
                 for i, (size, k, s) in enumerate(zip(input_size, extent, strides)))


def forward(x, params, config, training=False):
    """y = activation(C^T x + bias), kernel (kh, kw, filters, C) as Keras's."""
    kernels, xp = config.backend, module_of(x)
    kernel = dilate(params["kernel"], config.dilation)
    out_h, out_w = output_size(x.shape[1:3], kernel.shape[:2], config.strides, config.pads)
    z = kernels.conv2d_backward_input(xp.ascontiguousarray(x), kernel, (x.shape[0], out_h, out_w, kernel.shape[2]),
                                      config.strides, config.pads)
    y, act_ctx = act.forward(z, params.get("bias"), config.activation, kernels)
    return y, ConvTransposeContext(x, kernel, act_ctx, config)


def backward(dy, ctx, need_dx=True):
    """(dx or None, {'kernel', 'bias'}): dx = C dz, dk = C's weight gradient at (dz, x)."""
    config = ctx.config
    kernels, xp = config.backend, module_of(dy)
    dz, db = act.backward(dy, ctx.activation)
    pads, (in_h, in_w) = _covered(config, *dz.shape[1:3])
    dz = xp.ascontiguousarray(dz[:, :in_h, :in_w])
    dx, cache = kernels.conv2d_forward(dz, ctx.kernel, config.strides, pads)
    _, dk = kernels.conv2d_backward(xp.ascontiguousarray(ctx.x), cache, False)
    dh, dw = config.dilation
    grads = {"kernel": dk[::dh, ::dw] if (dh, dw) != (1, 1) else dk}
    if db is not None:
        grads["bias"] = db
    return (dx if need_dx else None), grads
