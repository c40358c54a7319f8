"""The pieces the losses share: Keras's probability clip, the stable sigmoid and log-softmax,
target and sample-weight checks, and the shapes of per-pixel losses."""
import numpy as np

from .arrays import to_host

EPSILON = 1e-7  # Keras's clip for probabilities


def _sigmoid(z):
    return np.exp(-np.logaddexp(0, -z)).astype(z.dtype, copy=False)


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _clip(p):
    """Clipped probabilities and a mask of where the clip did nothing (gradient flows)."""
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    return pc, (pc == p)


def _as_float(y, dtype, loss_name):
    y = to_host(y)   # targets are checked on the host (a device array is copied explicitly)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{loss_name} expects numeric targets, got dtype {y.dtype}")
    y = y.astype(dtype, copy=False)
    if not np.isfinite(y).all():
        raise ValueError(f"{loss_name}: targets contain NaN or Inf")
    return y


def check_sample_weight(sample_weight, n, dtype, what="sample_weight", pixel_shape=()):
    """Finite weights in ``dtype``: one per sample, shape (n,), or, for outputs with pixels
    (``pixel_shape``, e.g. (H, W) of an (N, H, W, K) output), one per pixel, shape
    (n,) + pixel_shape. Taken too: (n, 1, ...) for one per sample, and a trailing axis of 1
    on the per-pixel shape, (n, H, W, 1), as Keras's losses squeeze it.

    Where Keras 3 differs: it multiplies (n,) weights into (n, H, W) losses by broadcasting
    against the last axis (an error unless n == W); here they weigh every pixel of their
    sample. Its fit fails on (n, H, W, 1) weights; here they are the (n, H, W) ones."""
    weights = np.asarray(sample_weight)
    pixel_shape = tuple(pixel_shape)
    per_pixel = (n,) + pixel_shape
    if pixel_shape and _fits(weights.shape, per_pixel + (1,)):
        weights = weights[..., 0]
    elif weights.ndim >= 2 and not _fits(weights.shape, per_pixel) and weights.shape[0] == n and weights.size == n:
        weights = weights.reshape(n)
    if weights.dtype.kind not in "biuf" or not (weights.shape == (n,) or _fits(weights.shape, per_pixel)):
        pixels = f", or one per pixel, shape {per_pixel}" if pixel_shape else ""
        raise ValueError(f"{what} must hold one number per sample, shape ({n},){pixels}; got "
                         f"{weights.dtype.name} of shape {weights.shape}")
    weights = weights.astype(dtype)
    if not np.isfinite(weights).all():
        where = np.argwhere(~np.isfinite(weights))[0]
        at = f"sample {int(where[0])}" + (f", pixel {tuple(int(i) for i in where[1:])}" if len(where) > 1 else "")
        raise ValueError(f"{what} must be finite; got {weights[~np.isfinite(weights)][0]} at {at}")
    return weights


def _weights_for(values, weights, loss_name):
    """``weights`` ((N,) or one per pixel) shaped to multiply ``values`` (per-pixel losses
    or their gradient)."""
    if weights.ndim > values.ndim:
        raise ValueError(f"{loss_name}: sample weights of shape {weights.shape} give one weight per pixel, but "
                         f"this loss gives one value per sample ({values.shape}); weigh whole samples instead")
    return weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))


def _pixels(values):
    """The loss values of one sample: 1, or the pixels of an (N, H, W) map of them."""
    return int(np.prod(values.shape[1:], dtype=np.int64))


def _fits(shape, pattern):
    """``shape`` is ``pattern``, where a None in the pattern (a size the model leaves open) fits any size."""
    return len(shape) == len(pattern) and all(p is None or p == s for s, p in zip(shape, pattern))


def _reshape_like(y, output_shape, loss_name):
    """Targets shaped like the outputs; (N,) targets fit (N, 1) outputs, (N, H, W) ones
    (N, H, W, 1) outputs."""
    output_shape = tuple(output_shape)
    if not _fits(y.shape, output_shape):
        if output_shape[-1] == 1 and _fits(y.shape, output_shape[:-1]):
            y = y[..., None]
        elif None not in output_shape and y.size == np.prod(output_shape) and y.shape[:1] == output_shape[:1]:
            y = y.reshape(output_shape)
    if not _fits(y.shape, output_shape):
        raise ValueError(f"{loss_name}: targets of shape {y.shape} do not match outputs of "
                         f"shape {output_shape}")
    return y
