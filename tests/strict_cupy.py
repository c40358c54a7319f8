"""A strict stand-in for CuPy, so the GPU backend's host/device boundary is tested
without a GPU.

``install()`` puts this module in ``sys.modules['cupy']``; scratchnet's GPU backend then
imports it as CuPy and, under numba-cuda's simulator, launches its kernels on the arrays
through ``__cuda_array_interface__``, as it does on real CuPy arrays. Like
``cupy.ndarray``, the array type here:

- refuses implicit conversion to NumPy (``__array__`` raises TypeError, so ``np.asarray``,
  ``np.savez`` and friends fail on it), and refuses NumPy arrays as operands or indices;
- is copied back only explicitly (``.get()``, ``asnumpy``) or by reading a scalar
  (``float()``, ``int()``, ``bool()``, ``.item()``, ``.tolist()``); each of those counts
  one device-to-host copy in ``TRANSFERS['to_host']``, and each ``asarray`` of host data
  one host-to-device copy in ``TRANSFERS['to_device']``;
- returns 0-d device arrays from reductions and scalar indexing, as CuPy does;
- hands out uninitialised memory from ``empty`` (NaN for floats, a large sentinel for
  ints), so a kernel that forgets to write an element is caught;
- names, in ``__cuda_array_interface__``, the current stream (``cuda.Stream``,
  ``cuda.get_current_stream``) that a consumer must synchronise with or queue on.

The "device memory" is a NumPy array private to each instance.
"""
import contextlib
import sys
import types
from collections import Counter

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

TRANSFERS = Counter()

# NumPy functions whose result describes arrays rather than being one: returned as is.
_HOST_RESULTS = {np.may_share_memory, np.shares_memory, np.shape, np.ndim, np.size, np.result_type,
                 np.can_cast, np.iscomplexobj, np.isrealobj}


@contextlib.contextmanager
def counting():
    """Reset the transfer counters; yields them (a Counter) for reading afterwards."""
    TRANSFERS.clear()
    yield TRANSFERS


def _unwrap(value):
    """Device arrays -> their memory; scalars pass; host arrays are refused, as CuPy does."""
    if isinstance(value, ndarray):
        return value._memory
    if isinstance(value, np.ndarray):
        raise TypeError(f"Unsupported type {type(value)}: a NumPy array cannot be mixed with device "
                        f"arrays; copy it with cupy.asarray() first")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return ndarray(value)
    if isinstance(value, np.generic):         # CuPy reductions give 0-d arrays, not scalars
        return ndarray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _on_device(function):
    def run(*args, **kwargs):
        out = kwargs.get("out")
        result = function(*_unwrap(args), **_unwrap(kwargs))
        return out if out is not None else _wrap(result)
    run.__name__ = getattr(function, "__name__", "function")
    if isinstance(function, np.ufunc):        # cupy.add.at(a, indices, b): in place, on the device
        run.at = lambda a, indices, b=None: function.at(*_unwrap((a, indices, b)))
    return run


class ndarray(NDArrayOperatorsMixin):
    """A device array: NumPy memory behind a CuPy-like, strict interface."""

    __array_priority__ = 1000

    def __init__(self, memory):
        if not isinstance(memory, np.ndarray):
            raise TypeError("strict_cupy.ndarray wraps a NumPy array; use cupy.asarray(...)")
        self._memory = memory

    # ----- what CuPy refuses -------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                        "construct a NumPy array explicitly.")

    # ----- explicit copies to the host (counted) -----------------------------------
    def get(self, stream=None, order="C", out=None):
        TRANSFERS["to_host"] += 1
        return self._memory.copy(order=order)

    def _scalar(self, convert):
        if self._memory.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars, got shape {self.shape}")
        TRANSFERS["to_host"] += 1
        return convert(self._memory.reshape(()))

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __bool__(self):
        return self._scalar(bool)

    def __complex__(self):
        return self._scalar(complex)

    def item(self):
        return self._scalar(lambda m: m.item())

    def tolist(self):
        TRANSFERS["to_host"] += 1
        return self._memory.tolist()

    def __repr__(self):
        TRANSFERS["to_host"] += 1    # printing values copies them, as in CuPy
        return f"strict_cupy.{np.array_repr(self._memory)}"

    __str__ = __repr__

    # ----- metadata (no copy) -----------------------------------------------------------
    shape = property(lambda self: self._memory.shape)
    dtype = property(lambda self: self._memory.dtype)
    ndim = property(lambda self: self._memory.ndim)
    size = property(lambda self: self._memory.size)
    nbytes = property(lambda self: self._memory.nbytes)
    itemsize = property(lambda self: self._memory.itemsize)
    strides = property(lambda self: self._memory.strides)
    flags = property(lambda self: self._memory.flags)
    T = property(lambda self: ndarray(self._memory.T))

    def __len__(self):
        return len(self._memory)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def __cuda_array_interface__(self):
        memory = self._memory
        contiguous = memory.flags.c_contiguous
        # as CuPy: the stream a consumer must order its work after (1: the legacy default)
        stream = _CURRENT_STREAM[0].ptr or 1
        return {"shape": memory.shape, "typestr": memory.dtype.str, "version": 3,
                "data": (memory.__array_interface__["data"][0], False),
                "strides": None if contiguous else memory.strides, "stream": stream}

    # ----- computing on the device ------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        result = func(*_unwrap(args), **_unwrap(kwargs))
        if func in _HOST_RESULTS:
            return result
        out = kwargs.get("out")
        return out if out is not None else _wrap(result)

    def __getitem__(self, key):
        return _wrap(self._memory[_unwrap(key)])

    def __setitem__(self, key, value):
        self._memory[_unwrap(key)] = _unwrap(value)

    def __deepcopy__(self, memo):
        return ndarray(self._memory.copy())


_METHODS = ("reshape", "astype", "copy", "sum", "mean", "max", "min", "argmax", "argmin", "transpose",
            "ravel", "flatten", "squeeze", "any", "all", "fill", "view", "swapaxes", "prod", "cumsum",
            "clip", "round", "nonzero", "take", "repeat", "dot", "std", "var")


def _method(name):
    def method(self, *args, **kwargs):
        return _wrap(getattr(self._memory, name)(*_unwrap(args), **_unwrap(kwargs)))
    method.__name__ = name
    return method


for _name in _METHODS:
    setattr(ndarray, _name, _method(_name))


# ----- module functions -------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """A device array: ``a`` itself if it is one (of that dtype), else a copy to the device."""
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    TRANSFERS["to_device"] += 1
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


array = asarray


def asnumpy(a, stream=None, order="C", out=None):
    return a.get() if isinstance(a, ndarray) else np.asarray(a, order=order)


def empty(shape, dtype=float, order="C"):
    memory = np.empty(shape, dtype, order)
    if memory.dtype.kind in "fc":
        memory.fill(np.nan)
    elif memory.dtype.kind in "iu":
        memory.fill(np.iinfo(memory.dtype).max)
    return ndarray(memory)


def empty_like(a, dtype=None):
    return empty(a.shape, dtype or a.dtype)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


def __getattr__(name):
    # Everything else NumPy has, run on the device memory: zeros, arange, matmul, exp, ...
    value = getattr(np, name)
    if isinstance(value, type) or not callable(value):   # dtypes (float32, ...) and constants
        return value
    return _on_device(value)


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1

    @staticmethod
    def getDeviceProperties(device):
        return {"name": b"strict_cupy (a test double: no GPU)"}


class _Device:
    def __init__(self, device=0):
        self.id = device

    def synchronize(self):
        pass

    def use(self):
        _CURRENT_DEVICE[0] = self.id


_CURRENT_DEVICE = [0]


class Stream:
    """A stream handle; ``with Stream(ptr):`` makes it current, as in CuPy."""
    null = None

    def __init__(self, ptr=0):
        self.ptr = ptr

    def __enter__(self):
        self._previous = _CURRENT_STREAM[0]
        _CURRENT_STREAM[0] = self
        return self

    def __exit__(self, *exc):
        _CURRENT_STREAM[0] = self._previous

    def synchronize(self):
        pass


Stream.null = Stream(0)
_CURRENT_STREAM = [Stream.null]


def get_current_stream():
    return _CURRENT_STREAM[0]


cuda = types.SimpleNamespace(runtime=_Runtime(), Device=_Device, Stream=Stream,
                             get_current_stream=get_current_stream)


def install():
    """Make ``import cupy`` give this module (in this process)."""
    sys.modules["cupy"] = sys.modules[__name__]
