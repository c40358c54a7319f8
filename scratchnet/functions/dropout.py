"""Inverted dropout: zero each input with probability ``rate`` and scale the rest by
1/(1-rate); the mask comes from the backend's counter-based ``dropout_mask`` kernel."""
from dataclasses import dataclass

from .. import backend as backends


@dataclass(frozen=True)
class Config:
    rate: float
    backend: object


def forward(x, params, config, training=False, seed=0, mask_shape=None):
    """(x * mask, the mask as the context) in training; (x, None) otherwise. A ``mask_shape``
    with 1 on an axis shares one draw along it (Keras's noise_shape: SpatialDropout2D drops
    whole channels)."""
    if not training or config.rate == 0:
        return x, None
    mask = config.backend.dropout_mask(x.shape if mask_shape is None else tuple(mask_shape), x.dtype, config.rate,
                                       seed)
    return x * mask, mask


def seed_from(seed, first_element):
    """The seed whose mask starts where ``seed``'s mask is at element ``first_element``
    (element t's draw depends on seed + t * GOLDEN only, GOLDEN being the kernels' counter
    step): a process holding samples from k on of a larger batch draws, with it, the very
    mask one process drawing for the whole batch would give those samples. Every backend
    draws the reference kernels' mask, so their step is the one read here."""
    golden = backends.get("numpy").kernels.GOLDEN
    return (int(seed) + int(first_element) * int(golden)) % 2**64


def backward(dy, ctx, need_dx=True):
    """(dy * mask, {}); dy itself outside training (``ctx`` None). A mask of fewer draws than
    dy broadcasts as it did forward."""
    return (dy if ctx is None else dy * ctx) if need_dx else None, {}


def gaussian_noise_forward(x, noise):
    """x + noise (GaussianNoise in training); the gradient passes unchanged."""
    return x + noise, None


def gaussian_dropout_forward(x, noise):
    """x * noise, noise ~ N(1, rate / (1 - rate)) (GaussianDropout in training); the noise is the context."""
    return x * noise, noise
