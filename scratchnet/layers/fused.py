"""Two layers the graph runs as one: a Conv2D and the MaxPooling2D that alone reads it; a
BatchNormalization and the ReLU that alone reads it. The end of this module puts which
pairs of classes in ``scratchnet.fusion.RULES``, the table the engine reads.

``ConvPool`` holds no weights of its own: it runs its convolution's weights through
``functions.conv_pool`` and returns their gradients under the convolution's name, so that
training, freezing, saving and summaries see the two layers as they are. Where the fused
path does not apply to a call (a backend without the fused kernels, an activation other
than 'relu' or 'linear', overlapping or padded pooling windows, an input that rebuilds the
layer) it runs the two layers one after the other.
"""
import dataclasses
from typing import NamedTuple

from .. import fusion
from ..functions import conv as conv_function
from ..functions import conv_pool, normalization
from ..geometry import shape_fits
from .conv import Conv2D
from .core import Activation, ReLU
from .normalization import BatchNormalization
from .pooling import MaxPooling2D

FUSABLE_ACTIVATIONS = ("relu", "linear")


class LayersContext(NamedTuple):
    """A fused step that ran its two layers one after the other: each layer's context."""
    first: object
    second: object


class FusedContext(NamedTuple):
    """A ConvPool step that ran as one function: that function's context and, since an
    inference call keeps no argmax, what a backward pass needs to run it again: the input,
    the configuration, the mode."""
    function: object
    x: object
    config: object
    training: bool


def fuse_conv_pool(conv, pool):
    """A ConvPool for a Conv2D followed by a MaxPooling2D, or None when they cannot run as
    one: overlapping or padded pooling windows, a grouped or dilated convolution."""
    if pool.strides != pool.pool_size or pool.padding != "valid" or conv.groups != 1 or conv.dilation_rate != (1, 1):
        return None
    return ConvPool(conv, pool)


class ConvPool:
    """maxpool(conv(x)) as one graph step; see the module's docstring."""

    takes_list = False

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool
        self.name = f"{conv.name}+{pool.name}"
        self._fused_config = (None, None)    # (the convolution's config it was made from, it)

    def _config(self, x):
        """The fused function's configuration for this call, or None if it must run unfused."""
        conv, pool = self.conv, self.pool
        if (not conv.built or not shape_fits(conv.input_shape, tuple(x.shape[1:])) or x.dtype != conv.dtype
                or not pool.built or pool.input_shape != conv.output_shape):
            return None
        config = conv.function_config(x.shape[1:])
        activation = conv.activation.name if conv.activation is not None else "linear"
        if (not isinstance(config, conv_function.Config) or activation not in FUSABLE_ACTIVATIONS
                or config.backend.conv2d_maxpool_forward is None or pool.backend is not config.backend):
            return None
        made_from, fused = self._fused_config     # made once per configuration: this runs every call
        if made_from is not config or fused.activation != activation or fused.pool != pool.pool_size:
            fused = conv_pool.Config(config.strides, config.pads, activation, pool.pool_size, config.backend)
            self._fused_config = (config, fused)
        return fused

    def forward(self, x, training=False):
        """(maxpool(conv(x)), FusedContext), or the two layers' (y, LayersContext) where the
        fused function does not apply."""
        config = self._config(x)
        if config is None:
            z, conv_ctx = self.conv.forward(x, training)
            y, pool_ctx = self.pool.forward(z, training)
            return y, LayersContext(conv_ctx, pool_ctx)
        y, ctx = conv_pool.forward(x, self.conv.params, config, training)
        return y, FusedContext(ctx, x, config, training)

    def backward(self, dy, ctx, need_dx=True):
        """(dx or None, {(conv, weight name): gradient}) from dL/dy."""
        if type(ctx) is LayersContext:
            dz, _ = self.pool.backward(dy, ctx.second, True)
            dx, grads = self.conv.backward(dz, ctx.first, need_dx)
        else:
            fused_ctx = ctx.function
            if not ctx.training:   # an inference call keeps no argmax: a frozen base's backward recomputes it
                _, fused_ctx = conv_pool.forward(ctx.x, self.conv.params, ctx.config, True)
            dx, grads = conv_pool.backward(dy, fused_ctx, need_dx)
        return dx, {(self.conv, name): g for name, g in grads.items()}

    def apply_state_updates(self, ctx):
        """Neither layer keeps statistics."""

    def __repr__(self):
        return f"<ConvPool {self.name}>"


def fuse_batchnorm_relu(norm, relu):
    """A BatchNormReLU for a BatchNormalization followed by a ReLU or Activation layer that is
    plain max(x, 0) in its dtype, or None."""
    return BatchNormReLU(norm, relu) if BatchNormReLU.plain_relu(norm, relu) else None


class BatchNormReLU:
    """relu(batchnorm(x)) as one graph step: the normalisation's kernels rectify their output
    as they write it and, backward, mask the gradient as they read it (no array for the ReLU
    either way). The normalisation's moving statistics are stored as its own."""

    takes_list = False

    def __init__(self, norm, relu):
        self.norm, self.relu = norm, relu
        self.name = f"{norm.name}+{relu.name}"
        self._fused_config = (None, None)    # (the normalisation's config it was made from, it)

    @staticmethod
    def plain_relu(norm, relu):
        """Whether ``relu`` is max(x, 0) in the normalisation's dtype (checked at every call:
        a layer's activation may be changed after the model is built)."""
        activation = getattr(relu, "activation", None)
        return activation is not None and activation.name == "relu" and not relu.params and relu.dtype == norm.dtype

    def forward(self, x, training=False):
        """(relu(batchnorm(x)), the normalisation's NormContext), or the two layers' (y,
        LayersContext) where the second is no longer a plain ReLU or the input would rebuild
        the normalisation."""
        norm = self.norm
        if (not self.plain_relu(norm, self.relu) or not norm.built
                or not shape_fits(norm.input_shape, tuple(x.shape[1:])) or x.dtype != norm.dtype):
            y, norm_ctx = norm.forward(x, training)
            a, relu_ctx = self.relu.forward(y, training)
            return a, LayersContext(norm_ctx, relu_ctx)
        return normalization.forward(x, norm.params, self._config(), norm.uses_batch_statistics(training))

    def _config(self):
        """The normalisation's configuration with ``then_relu`` (made once per configuration)."""
        config = self.norm.function_config()
        made_from, fused = self._fused_config
        if made_from is not config:
            fused = dataclasses.replace(config, then_relu=True)
            self._fused_config = (config, fused)
        return fused

    def backward(self, dy, ctx, need_dx=True):
        """(dx or None, {(norm, weight name): gradient}) from dL/dy."""
        if type(ctx) is LayersContext:
            dy, _ = self.relu.backward(dy, ctx.second, True)
        dx, grads = self.norm.backward(dy, _norm_context(ctx), need_dx)
        return dx, {(self.norm, name): g for name, g in grads.items()}

    def apply_state_updates(self, ctx):
        """Store the normalisation's new moving statistics (after a training call)."""
        self.norm.apply_state_updates(_norm_context(ctx))

    def __repr__(self):
        return f"<BatchNormReLU {self.name}>"


def _norm_context(ctx):
    """The normalisation's context in a BatchNormReLU step's context (either kind)."""
    return ctx.first if type(ctx) is LayersContext else ctx


# The pairs the engine runs as one step: (first layer's class, second's) -> the function that
# builds the step for two such layers, or None where their settings rule it out. Exact
# classes only: a subclass may compute something else.
fusion.RULES.update({
    (Conv2D, MaxPooling2D): fuse_conv_pool,
    (BatchNormalization, ReLU): fuse_batchnorm_relu,
    (BatchNormalization, Activation): fuse_batchnorm_relu,
})
