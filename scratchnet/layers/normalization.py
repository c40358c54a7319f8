"""BatchNormalization, as Keras 3 defines it: gamma, beta, moving_mean, moving_variance
(in that order; the moving statistics are not trainable), batch statistics in training,
moving ones in inference, and a frozen layer (trainable=False) always in inference mode."""
from .. import initializers
from ..functions import normalization
from .base import Layer


class BatchNormalization(Layer):
    """Normalise each channel (the last axis) to mean 0 and variance 1, then scale by gamma
    and shift by beta."""

    non_trainable_names = ("moving_mean", "moving_variance")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"{self.describe()}: momentum must be in [0, 1], got {momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"{self.describe()}: epsilon must be positive, got {epsilon!r}")
        self.axis = axis
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        for name in (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer):
            initializers.get(name)   # fail early on typos

    def weight_shapes(self, input_shape):
        axis = self.axis if not isinstance(self.axis, (list, tuple)) else tuple(self.axis)
        if isinstance(axis, tuple) and len(axis) == 1:    # tf.keras 2 writes axis=[3]
            axis = axis[0]
        if axis not in (-1, len(input_shape)):
            raise NotImplementedError(f"{self.describe()}: only the last axis (channels last) is supported, "
                                      f"got axis={self.axis!r} for inputs of shape {(None,) + tuple(input_shape)}")
        c = input_shape[-1]
        shapes = {}
        if self.scale:
            shapes["gamma"] = (c,)
        if self.center:
            shapes["beta"] = (c,)
        shapes["moving_mean"] = (c,)
        shapes["moving_variance"] = (c,)
        return shapes

    def make_function_config(self, input_shape):
        return normalization.Config(self.epsilon, self.momentum, self.backend)

    def uses_batch_statistics(self, training):
        """Whether a call in mode ``training`` normalises with the batch's statistics: in
        training, unless the layer is frozen (then it runs in inference mode, as in Keras 3)."""
        return training and self.trainable

    def _forward(self, x, training):
        return normalization.forward(x, self.params, self.function_config(), self.uses_batch_statistics(training))

    def _backward(self, dy, ctx, need_dx):
        return normalization.backward(dy, ctx, need_dx)

    def state_updates(self, ctx):
        return normalization.state_updates(ctx, self.params)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}
