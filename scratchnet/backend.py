"""The one interface between layers and kernels.

A backend names an array module (``xp``) and a kernel module that provides the
functions in ``KERNEL_FUNCTIONS`` and the tuple ``KERNEL_ACTIVATIONS`` (see
``kernels/numpy_ref.py`` for their contracts).
Layers call ``backend.current()`` and never import a kernel module themselves.
"""
import importlib

import numpy as np

KERNEL_FUNCTIONS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
                    "bias_activation", "bias_activation_backward", "adam_update", "rmsprop_update")

# name -> (kernel module, description)
_BACKENDS = {
    "cpu": ("scratchnet.kernels.numba_cpu", "Numba-compiled CPU kernels (the default)"),
    "numpy": ("scratchnet.kernels.numpy_ref", "plain NumPy reference kernels"),
}


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
        module = importlib.import_module(_BACKENDS[name][0])
        _loaded[name] = Backend(name, module)
    return _loaded[name]


def current():
    """The backend new work runs on."""
    return get(_current_name)


def set_backend(name, threads=None):
    """Make ``name`` ('cpu', 'numpy') the backend that layers use from now on; ``threads``
    sets how many CPU threads its kernels and BLAS use (default: NUMBA_NUM_THREADS, or
    all cores)."""
    global _current_name
    get(name)
    _current_name = name
    if threads is not None:
        from .threads import set_num_threads
        set_num_threads(threads)
