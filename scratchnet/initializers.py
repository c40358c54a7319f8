"""Weight initializers with Keras's names and formulas (variance scaling)."""
import math

import numpy as np

from . import config


def _fans(shape):
    """(fan_in, fan_out) of a Dense (in, out) or Conv2D (kh, kw, in, out) kernel."""
    if len(shape) < 2:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(shape, stddev, rng):
    """Normal(0, stddev) redrawn wherever it falls beyond two standard deviations."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


def _variance_scaling(scale, mode, distribution):
    def init(shape, dtype=None):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        rng = config.rng()
        if distribution == "uniform":
            limit = math.sqrt(3 * variance)
            values = rng.uniform(-limit, limit, shape)
        else:
            # 0.8796... is the stddev of a unit normal truncated at +-2.
            values = _truncated_normal(shape, math.sqrt(variance) / 0.87962566103423978, rng)
        return values.astype(dtype or config.floatx())
    return init


_REGISTRY = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "zeros": lambda shape, dtype=None: np.zeros(shape, dtype or config.floatx()),
    "ones": lambda shape, dtype=None: np.ones(shape, dtype or config.floatx()),
}


def names():
    """The initializers scratchnet has, by Keras name."""
    return tuple(_REGISTRY)


def get(identifier):
    """An initializer ``f(shape, dtype) -> array`` by Keras name, or a callable passed through."""
    if isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]
    if callable(identifier):
        return identifier
    raise ValueError(f"unknown initializer {identifier!r}; expected one of {sorted(_REGISTRY)}")
