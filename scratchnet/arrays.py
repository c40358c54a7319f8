"""Host (NumPy) and device (CuPy) arrays: telling them apart and moving between them,
without importing CuPy unless a device array is already in hand.

A device array is anything with ``__cuda_array_interface__`` (CuPy's arrays, Numba's
device arrays). Copies between host and device happen here, explicitly, and nowhere
else: CuPy refuses implicit conversions, and each copy costs a synchronisation.
"""
import numpy as np


def is_device_array(a):
    """True for an array that lives on a GPU."""
    return hasattr(a, "__cuda_array_interface__")


def module_of(a):
    """The array module that owns ``a``: cupy for device arrays, else numpy."""
    if is_device_array(a):
        import cupy
        return cupy
    return np


def to_host(a):
    """A NumPy array with the values of ``a`` (copied from the GPU when it lives there)."""
    if is_device_array(a):
        import cupy
        return cupy.asnumpy(a)
    return np.asarray(a)


def to_module(a, xp):
    """``a`` as an array of module ``xp`` (numpy or cupy), copied across only if needed."""
    return to_host(a) if xp is np else xp.asarray(a)


class Tensor(np.ndarray):
    """A host array as Keras code meets a layer's or model's output, or a dataset's batch:
    a NumPy array that also has TensorFlow's ``.numpy()`` (tutorials write
    ``images[0].numpy().astype("uint8")``). Everywhere else it is the array it views."""

    def numpy(self):
        """The plain NumPy array (no copy)."""
        return np.asarray(self)


def as_tensor(a):
    """``a`` (a host array, or a list of them) viewed as Tensor; device arrays as they are."""
    if isinstance(a, list):
        return [as_tensor(v) for v in a]
    return a.view(Tensor) if type(a) is np.ndarray else a
