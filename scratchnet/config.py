"""Global settings: the default float type (``floatx``) and the random generator."""
import numpy as np

_FLOATX = "float32"
_VALID_FLOATX = ("float32", "float64")
_rng = np.random.default_rng()


def floatx():
    """Default dtype name of new layers' weights and of converted inputs ('float32')."""
    return _FLOATX


def set_floatx(value):
    """Set the default dtype: 'float32' (training) or 'float64' (gradient checks)."""
    global _FLOATX
    value = np.dtype(value).name
    if value not in _VALID_FLOATX:
        raise ValueError(f"floatx must be one of {_VALID_FLOATX}, got {value!r}")
    _FLOATX = value


def float_dtype(value, who="dtype"):
    """``value`` as np.float32 or np.float64 (the dtypes scratchnet computes in), or a clear error."""
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.name not in _VALID_FLOATX:
        raise ValueError(f"{who} must be one of {_VALID_FLOATX}, got {value!r:.100}")
    return dtype


def set_random_seed(seed):
    """Seed every random choice scratchnet makes (initializers, dropout, shuffling)."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng():
    """The generator behind every random choice scratchnet makes."""
    return _rng
