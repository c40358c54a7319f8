"""The kernel sets scratchnet can run on, and the one new work runs on.

A kernel set ('cpu', 'numpy', 'gpu') is an array module (``xp``) and a kernel module that
provides the functions in ``KERNEL_FUNCTIONS`` and the tuple ``KERNEL_ACTIVATIONS`` (see
``numpy_ref`` for their contracts). Layers reach them through ``scratchnet.backend``, which
re-exports these names (``backend.current()``, ``backend.get(name)``), and never import a
kernel module themselves. Like every module of scratchnet.kernels, this one imports nothing
from the package above it; ``scratchnet.backend.set_backend`` adds the thread count on top.
"""
import importlib

import numpy as np

KERNEL_FUNCTIONS = ("conv2d_forward", "conv2d_backward", "conv2d_backward_input", "maxpool2d_forward",
                    "maxpool2d_backward", "bias_activation", "bias_activation_backward", "adam_update",
                    "rmsprop_update", "dropout_mask", "avgpool2d_forward", "avgpool2d_backward",
                    "depthwise_conv2d_forward", "depthwise_conv2d_backward", "batchnorm_forward",
                    "batchnorm_backward", "batchnorm_inference", "projective_transform",
                    "projective_transform_backward")
# Kernels a backend may have; where it has not, the attribute is None: the graph runs the layers
# one by one instead of the fused conv + max-pool, Dense multiplies with the array module's @,
# UpSampling2D's 'bilinear' resizes with the array module's matrix products (image_transform), and
# the sparse categorical cross-entropy on logits computes with the array module (losses.py).
OPTIONAL_KERNEL_FUNCTIONS = ("conv2d_maxpool_forward", "conv2d_maxpool_backward", "matmul", "resize_bilinear",
                             "resize_bilinear_backward", "softmax_cross_entropy")

# name -> (kernel module in this package, description)
_BACKENDS = {
    "cpu": ("numba_cpu", "Numba-compiled CPU kernels (the default)"),
    "numpy": ("numpy_ref", "plain NumPy reference kernels"),
    "gpu": ("cupy_gpu", "CuPy arrays, cuBLAS and numba.cuda kernels on an NVIDIA GPU"),
}
GPU_INSTALL = ("pip install 'scratchnet[gpu]'  (CuPy and numba-cuda for CUDA 13; 'scratchnet[gpu-cuda12]' for a "
               "CUDA 12 driver)")


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
        module = importlib.import_module(f"{__package__}.{_BACKENDS[name][0]}")
        _loaded[name] = Backend(name, module, xp)
    return _loaded[name]


def current():
    """The backend new work runs on."""
    return get(_current_name)


def use(name):
    """Make ``name`` ('cpu', 'numpy', 'gpu') the backend new work runs on; its kernels are
    loaded first, so a backend that cannot load leaves the current one in place."""
    global _current_name
    get(name)
    _current_name = name
