"""Regularizing noise in training, as keras.layers: SpatialDropout2D (whole channels dropped),
GaussianNoise (additive) and GaussianDropout (multiplicative); each is the identity at
inference. The Gaussian draws come from this layer's generator (given ``seed``) or
scratchnet's, on the host, in the inputs' dtype."""
import numpy as np

from .. import config
from ..arrays import to_module
from ..functions import dropout
from .base import Layer
from .core import Dropout


class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps: each sample's channel is kept (scaled by 1/(1-rate)) or
    zeroed over all its rows and columns, as Keras's SpatialDropout2D (noise_shape (N, 1, 1, C))."""

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"SpatialDropout2D: only data_format='channels_last' is supported, got {data_format!r}")
        kwargs.pop("noise_shape", None)
        super().__init__(rate, noise_shape=(None, 1, 1, None), seed=seed, **kwargs)

    def mask_shape(self, shape):
        if len(shape) != 4:
            raise ValueError(f"{self.describe()} expects images (batch, height, width, channels), got inputs of "
                             f"shape {tuple(shape)}")
        return super().mask_shape(shape)

    def get_config(self):
        """Keras's SpatialDropout2D takes no noise_shape and no trainable."""
        config_ = super().get_config()
        del config_["noise_shape"], config_["trainable"]
        return {**config_, "data_format": "channels_last"}


class _GaussianLayer(Layer):
    """A layer that draws Gaussian noise shaped like its inputs in training."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def noise(self, x, mean, stddev):
        rng = self._rng or config.rng()
        draw = rng.standard_normal(x.shape, dtype=x.dtype) * x.dtype.type(stddev) + x.dtype.type(mean)
        return to_module(draw, self.backend.xp)


class GaussianNoise(_GaussianLayer):
    """x + N(0, stddev^2) in training; x at inference."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not stddev >= 0:
            raise ValueError(f"{self.describe()}: stddev must be >= 0, got {stddev!r}")
        self.stddev = float(stddev)

    def _forward(self, x, training):
        if not training or self.stddev == 0:
            return x, None
        return dropout.gaussian_noise_forward(x, self.noise(x, 0.0, self.stddev))

    def _backward(self, dy, ctx, need_dx):
        return dy if need_dx else None, {}

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_GaussianLayer):
    """x * N(1, rate / (1 - rate)) in training (the same mean and variance as dropout's
    scaled mask); x at inference."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"{self.describe()}: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def _forward(self, x, training):
        if not training or self.rate == 0:
            return x, None
        return dropout.gaussian_dropout_forward(x, self.noise(x, 1.0, np.sqrt(self.rate / (1 - self.rate))))

    def _backward(self, dy, ctx, need_dx):
        return dropout.backward(dy, ctx, need_dx)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
