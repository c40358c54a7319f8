"""2-D convolution over channels-last images: im2col + GEMM in the backend's kernels.

Three forms, each a forward/backward pair with a context of its own: ``forward`` (and
``depthwise_forward``) -> ConvContext, ``general_forward`` (groups, dilation) ->
GroupedConvContext, ``separable_forward`` -> SeparableContext."""
from dataclasses import dataclass
from typing import NamedTuple

from ..arrays import module_of
from . import activation as act


@dataclass(frozen=True)
class Config:
    strides: tuple
    pads: tuple          # (top, bottom, left, right)
    activation: object
    backend: object


class ConvContext(NamedTuple):
    """A convolution call: the kernel's backward, what the kernel's forward kept for it, and
    the activation's context."""
    kernel_backward: object
    cache: object
    activation: act.ActivationContext


def forward(x, params, config, training=False):
    """y = activation(conv(x, kernel) + bias); kernel (kh, kw, C, F)."""
    kernels = config.backend
    return _then_activation(kernels.conv2d_forward, kernels.conv2d_backward, x, params, config)


def _then_activation(kernel_forward, kernel_backward, x, params, config):
    """activation(kernel_forward(x, kernel) + bias), with a context for ``backward``."""
    z, cache = kernel_forward(x, params["kernel"], config.strides, config.pads)
    y, act_ctx = act.forward(z, params.get("bias"), config.activation, config.backend)
    return y, ConvContext(kernel_backward, cache, act_ctx)


def backward(dy, ctx, need_dx=True):
    """(dx or None, {'kernel', 'bias'}) from dL/dy and a ConvContext."""
    dz, db = act.backward(dy, ctx.activation)
    dx, dk = ctx.kernel_backward(dz, ctx.cache, need_dx)
    grads = {"kernel": dk}
    if db is not None:
        grads["bias"] = db
    return dx, grads


@dataclass(frozen=True)
class GeneralConfig:
    """Conv2D with ``groups`` (each group of input channels has its own filters) and
    ``dilation`` (a kernel of dilation d reads every d-th pixel: the same as the kernel
    spread out with zeros in between, which is how it is computed here)."""
    strides: tuple
    pads: tuple
    groups: int
    dilation: tuple
    activation: object
    backend: object


def dilate(kernel, dilation):
    """The kernel with dilation - 1 zeros between its taps (kh, kw, C, F) -> (kh', kw', C, F)."""
    dh, dw = dilation
    if (dh, dw) == (1, 1):
        return kernel
    kh, kw = kernel.shape[:2]
    spread = module_of(kernel).zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1) + kernel.shape[2:], kernel.dtype)
    spread[::dh, ::dw] = kernel
    return spread


class GroupedConvContext(NamedTuple):
    """A grouped or dilated convolution call: one kernel cache per group, the activation's
    context, the configuration, and the filters per group."""
    caches: list
    activation: act.ActivationContext
    config: GeneralConfig
    filters: int


def general_forward(x, params, config, training=False):
    """y = activation(conv(x, dilated kernel) + bias), each group of channels with its own filters."""
    kernel = dilate(params["kernel"], config.dilation)
    groups, kernels = config.groups, config.backend
    c_in, filters = kernel.shape[2], kernel.shape[3] // config.groups
    parts, caches = [], []
    for g in range(groups):
        z, cache = kernels.conv2d_forward(x[..., g * c_in:(g + 1) * c_in], kernel[..., g * filters:(g + 1) * filters],
                                          config.strides, config.pads)
        parts.append(z)
        caches.append(cache)
    z = parts[0] if groups == 1 else module_of(x).concatenate(parts, axis=-1)
    y, act_ctx = act.forward(z, params.get("bias"), config.activation, kernels)
    return y, GroupedConvContext(caches, act_ctx, config, filters)


def general_backward(dy, ctx, need_dx=True):
    """(dx or None, {'kernel', 'bias'}) from dL/dy and a GroupedConvContext."""
    config, filters = ctx.config, ctx.filters
    dz, db = act.backward(dy, ctx.activation)
    xp = module_of(dz)
    dxs, dks = [], []
    for g, cache in enumerate(ctx.caches):
        dx, dk = config.backend.conv2d_backward(xp.ascontiguousarray(dz[..., g * filters:(g + 1) * filters]),
                                                cache, need_dx)
        dxs.append(dx)
        dks.append(dk)
    dk = dks[0] if len(dks) == 1 else xp.concatenate(dks, axis=-1)
    dh, dw = config.dilation
    grads = {"kernel": dk[::dh, ::dw] if (dh, dw) != (1, 1) else dk}
    if db is not None:
        grads["bias"] = db
    dx = (dxs[0] if len(dxs) == 1 else xp.concatenate(dxs, axis=-1)) if need_dx else None
    return dx, grads


def depthwise_forward(x, params, config, training=False):
    """y = activation(depthwise(x, kernel) + bias); kernel (kh, kw, C, M), outputs C*M channels."""
    kernels = config.backend
    return _then_activation(kernels.depthwise_conv2d_forward, kernels.depthwise_conv2d_backward, x, params, config)


depthwise_backward = backward


class SeparableContext(NamedTuple):
    """A separable convolution call: the depthwise and the pointwise kernels' caches, the
    activation's context, and the backend whose kernels ran."""
    depthwise_cache: object
    pointwise_cache: object
    activation: act.ActivationContext
    backend: object


def separable_forward(x, params, config, training=False):
    """A depthwise convolution, then a 1x1 convolution mixing the channels, then bias and
    activation: Keras's SeparableConv2D (depthwise_kernel, pointwise_kernel, bias)."""
    kernels = config.backend
    z1, cache1 = kernels.depthwise_conv2d_forward(x, params["depthwise_kernel"], config.strides, config.pads)
    z2, cache2 = kernels.conv2d_forward(z1, params["pointwise_kernel"], (1, 1), (0, 0, 0, 0))
    y, act_ctx = act.forward(z2, params.get("bias"), config.activation, kernels)
    return y, SeparableContext(cache1, cache2, act_ctx, kernels)


def separable_backward(dy, ctx, need_dx=True):
    """(dx or None, {'depthwise_kernel', 'pointwise_kernel', 'bias'}) from dL/dy and a SeparableContext."""
    kernels = ctx.backend
    dz2, db = act.backward(dy, ctx.activation)
    dz1, dpoint = kernels.conv2d_backward(dz2, ctx.pointwise_cache, True)
    dx, ddepth = kernels.depthwise_conv2d_backward(dz1, ctx.depthwise_cache, need_dx)
    grads = {"depthwise_kernel": ddepth, "pointwise_kernel": dpoint}
    if db is not None:
        grads["bias"] = db
    return dx, grads
