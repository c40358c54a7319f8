"""The one interface between layers and kernels.

A backend names an array module (``xp``) and a kernel module that provides the
functions in ``KERNEL_FUNCTIONS`` and the tuple ``KERNEL_ACTIVATIONS`` (see
``kernels/numpy_ref.py`` for their contracts).
Layers call ``backend.current()`` and never import a kernel module themselves.
"""
import importlib

import numpy as np

from . import config

KERNEL_FUNCTIONS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
                    "bias_activation", "bias_activation_backward", "adam_update", "rmsprop_update",
                    "dropout_mask", "avgpool2d_forward", "avgpool2d_backward", "depthwise_conv2d_forward",
                    "depthwise_conv2d_backward", "batchnorm_forward", "batchnorm_backward",
                    "batchnorm_inference", "projective_transform", "projective_transform_backward")
# Kernels a backend may have; where it has not, the attribute is None: the graph runs the layers
# one by one instead of the fused conv + max-pool, and Dense multiplies with the array module's @.
OPTIONAL_KERNEL_FUNCTIONS = ("conv2d_maxpool_forward", "conv2d_maxpool_backward", "matmul")

# name -> (kernel module, description)
_BACKENDS = {
    "cpu": ("scratchnet.kernels.numba_cpu", "Numba-compiled CPU kernels (the default)"),
    "numpy": ("scratchnet.kernels.numpy_ref", "plain NumPy reference kernels"),
    "gpu": ("scratchnet.kernels.cupy_gpu", "CuPy arrays, cuBLAS and numba.cuda kernels on an NVIDIA GPU"),
}
GPU_INSTALL = "pip install 'scratchnet[gpu]'  (CuPy for CUDA 12 and numba-cuda)"


class GPUUnavailable(RuntimeError):
    """The GPU backend was asked for on a machine that cannot run it."""


def _gpu_array_module():
    """CuPy, checked to see a GPU that numba-cuda can use too; else GPUUnavailable.
    (Under numba-cuda's CUDA simulator, NUMBA_ENABLE_CUDASIM=1, the kernels run on the
    CPU; CuPy, or a stand-in installed as ``cupy``, still holds the arrays.)"""
    missing = []
    try:
        import cupy
    except ImportError as error:
        missing.append(f"CuPy is not installed ({error})")
        cupy = None
    try:
        from numba import cuda
    except ImportError as error:
        missing.append(f"numba-cuda is not installed ({error})")
        cuda = None
    if missing:
        raise GPUUnavailable("the GPU backend needs CuPy and numba-cuda: " + "; ".join(missing)
                             + f". Install them with: {GPU_INSTALL}")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:   # CUDARuntimeError without a driver or device
        raise GPUUnavailable(f"the GPU backend found no usable NVIDIA GPU: {error}. Check the driver "
                             f"with nvidia-smi, or use the 'cpu' backend") from error
    if count == 0 or not cuda.is_available():
        raise GPUUnavailable("the GPU backend found no NVIDIA GPU (CuPy sees none, or numba-cuda cannot "
                             "use it); use the 'cpu' backend")
    return cupy


class Backend:
    """A named set of kernels plus the array module they work on."""

    def __init__(self, name, kernel_module, xp=np):
        self.name = name
        self.xp = xp
        missing = [f for f in KERNEL_FUNCTIONS if not hasattr(kernel_module, f)]
        if missing:
            raise TypeError(f"kernel module {kernel_module.__name__} lacks {missing}")
        for f in KERNEL_FUNCTIONS:
            setattr(self, f, getattr(kernel_module, f))
        for f in OPTIONAL_KERNEL_FUNCTIONS:
            setattr(self, f, getattr(kernel_module, f, None))
        self.kernel_activations = kernel_module.KERNEL_ACTIVATIONS
        self.kernels = kernel_module

    def __repr__(self):
        return f"<Backend {self.name!r}>"


_loaded = {}
_current_name = "cpu"


def available():
    """Names of the backends this build knows about."""
    return tuple(_BACKENDS)


def get(name):
    """The backend called ``name``, loading its kernels on first use."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {available()}")
    if name not in _loaded:
        xp = _gpu_array_module() if name == "gpu" else np
        module = importlib.import_module(_BACKENDS[name][0])
        _loaded[name] = Backend(name, module, xp)
    return _loaded[name]


def current():
    """The backend new work runs on."""
    return get(_current_name)


def set_backend(name, threads=None):
    """Make ``name`` ('cpu', 'numpy', 'gpu') the backend new layers use; ``threads``
    sets how many CPU threads its kernels and BLAS use (default: NUMBA_NUM_THREADS, or
    all cores)."""
    global _current_name
    get(name)
    _current_name = name
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
