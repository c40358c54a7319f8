"""The one interface between layers and kernels, and Keras's backend helpers.

Which kernels run is the kernel registry's business (``scratchnet/kernels/registry.py``):
its names are re-exported here, so layers call ``backend.current()`` or ``backend.get(name)``
and never import a kernel module themselves. ``set_backend`` chooses the kernels and, if
asked, the CPU threads. Below, Keras's ``K`` helpers (``from keras import backend as K``).
"""
from . import config
from .kernels import registry
from .kernels.registry import (GPU_INSTALL, KERNEL_FUNCTIONS, OPTIONAL_KERNEL_FUNCTIONS, Backend,  # noqa: F401
                               GPUUnavailable, available, current, get, use)


def set_backend(name, threads=None):
    """Make ``name`` ('cpu', 'numpy', 'gpu') the backend new layers use; ``threads``
    sets how many CPU threads its kernels and BLAS use (default: NUMBA_NUM_THREADS, or
    all cores)."""
    registry.use(name)
    if threads is not None:
        from .threads import set_num_threads
        set_num_threads(threads)


# ----- Keras's backend helpers (``from keras import backend as K`` in the tutorials) ------------------------
def image_data_format():
    """'channels_last': images are (batch, height, width, channels), the only layout here."""
    return "channels_last"


def set_image_data_format(data_format):
    """Only 'channels_last' exists here; 'channels_first' is refused with what to do instead."""
    if data_format == "channels_last":
        return
    if data_format == "channels_first":
        raise ValueError("scratchnet computes channels_last (NHWC) only, so set_image_data_format('channels_first') "
                         "is refused; keep images as (batch, height, width, channels) (np.moveaxis(x, 1, -1) "
                         "turns NCHW arrays into that)")
    raise ValueError(f"data_format must be 'channels_last' (or 'channels_first', which scratchnet lacks), got "
                     f"{data_format!r}")


def epsilon():
    """The small constant Keras adds against division by zero: 1e-7."""
    return 1e-7


def backend():
    """The name of the kernels in use ('cpu', 'numpy' or 'gpu'); Keras answers 'tensorflow' etc."""
    return current().name


floatx, set_floatx = config.floatx, config.set_floatx


def clear_session():
    """Restart layer numbering, as keras.backend.clear_session (there is no graph state to free)."""
    config.clear_session()
