"""Global settings: the default float type (``floatx``), the random generator, the window
of the global batch a process trains on, and the numbering of new layers' names."""
import contextlib
import threading
from collections import defaultdict

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


_window = None


@contextlib.contextmanager
def batch_window(offset, total):
    """While training on samples ``offset .. offset + n`` of a global batch of ``total``
    samples (one process's share in data-parallel training), random draws made per sample
    (dropout masks, augmentation) are the draws one process training on the whole global
    batch would make for those samples."""
    global _window
    previous, _window = _window, (int(offset), int(total))
    try:
        yield
    finally:
        _window = previous


def sample_window():
    """(offset, total) set by ``batch_window``, or None outside data-parallel training."""
    return _window


_name_counts = defaultdict(int)
_name_lock = threading.Lock()


def unique_name(base):
    """'conv2d', then 'conv2d_1', 'conv2d_2', ... as Keras names layers."""
    with _name_lock:
        count = _name_counts[base]
        _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def clear_session():
    """Restart layer numbering (conv2d, conv2d_1, ...) from zero, as keras.backend.clear_session."""
    with _name_lock:
        _name_counts.clear()
