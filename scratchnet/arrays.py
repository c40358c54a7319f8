"""Host (NumPy) and device (CuPy) arrays: telling them apart and moving between them,
without importing CuPy unless a CuPy array is already in hand."""
import numpy as np


def is_device_array(a):
    """True for a CuPy array (or anything else living on a GPU)."""
    return type(a).__module__.split(".")[0] == "cupy"


def module_of(a):
    """The array module that owns ``a``: cupy for CuPy arrays, else numpy."""
    if is_device_array(a):
        import cupy
        return cupy
    return np


def to_host(a):
    """A NumPy array with the values of ``a`` (a copy from the GPU when needed)."""
    return a.get() if is_device_array(a) else np.asarray(a)


def to_module(a, xp):
    """``a`` as an array of module ``xp`` (numpy or cupy), copied across only if needed."""
    return to_host(a) if xp is np else xp.asarray(a)
