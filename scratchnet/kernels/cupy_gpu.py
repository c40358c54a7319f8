"""GPU kernels: the same functions as ``numpy_ref``, on CuPy arrays.

GEMMs and reductions are CuPy's (cuBLAS); the loops CuPy lacks are numba.cuda kernels
(``cuda_conv``, ``cuda_pool``, ``cuda_elementwise``) launched on CuPy arrays through
__cuda_array_interface__. Every array in and out lives on the device; a kernel given a
host (NumPy) array refuses it instead of letting numba-cuda copy it there and back.

Under numba-cuda's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) the kernels run on the CPU
and read the arrays' memory through that same interface: with a strict CuPy double
installed as ``cupy`` (tests/strict_cupy.py), this whole path runs on a machine with no
GPU, and that is how the test suite checks it.

Nothing here imports CuPy until a function needs it.
"""
import os
import warnings

import numpy as np

from . import cuda_conv, cuda_elementwise, cuda_image, cuda_pool, im2col_gemm, image_geometry
from .cuda_conv import THREADS, blocks
from .numpy_ref import KERNEL_ACTIVATIONS, dropout_threshold  # noqa: F401  (same contract)
# Batch normalisation is reductions and elementwise arithmetic: the reference's NumPy code
# runs as it is on CuPy arrays (CuPy's own reduction kernels), through NumPy's dispatch.
from .numpy_ref import batchnorm_backward, batchnorm_forward, batchnorm_inference  # noqa: F401

CHUNK_BYTES = 64 << 20   # GPU memory is roomier than caches; still bounded


def simulating():
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def array_module():
    """CuPy (whatever ``import cupy`` gives)."""
    import cupy
    return cupy


def _zero(array):
    return array.dtype.type(0)


# Every launch goes through _launch. Tests set LAUNCH_LOG to a list to record the
# argument types of each launch, and check them against SIGNATURES, the table that the
# PTX compilation test compiles: so that table cannot fall behind the code.
LAUNCH_LOG = None


class _SimulatedDeviceMemory:
    """A device array's memory as NumPy sees it (``__array_interface__`` from its
    ``__cuda_array_interface__``): under the simulator, device memory is host memory."""

    def __init__(self, array):
        interface = array.__cuda_array_interface__
        self.__array_interface__ = {key: interface[key] for key in ("shape", "typestr", "data", "strides")}
        self.__array_interface__["version"] = 3
        self.array = array   # keeps the memory alive


def _kernel_argument(kernel, a):
    if isinstance(a, np.ndarray):
        raise TypeError(f"GPU kernel {kernel.__name__} was given a host (NumPy) array of shape {a.shape}; "
                        f"every array of the GPU backend must live on the device")
    if not hasattr(a, "__cuda_array_interface__"):
        return a                                  # a scalar
    if simulating():
        return np.asarray(_SimulatedDeviceMemory(a))
    # numba-cuda, given a CuPy array, synchronises the host with the stream the array names
    # (CUDA Array Interface v3) before every launch: one host sync per array argument.
    # The kernel runs on that same stream (_current_stream), so stream order already
    # makes it wait for the work that wrote the array: import the memory without the sync.
    from numba import cuda
    return cuda.from_cuda_array_interface(a.__cuda_array_interface__, owner=a, sync=False)


_STREAMS = {}   # {(device id, CuPy stream pointer): the numba-cuda stream over it}


def _current_stream():
    """CuPy's current stream as a numba-cuda stream, so kernels queue behind CuPy's work
    (GEMMs, reductions) and before it, with no synchronisation in between."""
    import cupy
    from numba import cuda
    key = (cupy.cuda.Device().id, cupy.cuda.get_current_stream().ptr)
    stream = _STREAMS.get(key)
    if stream is None:
        stream = cuda.legacy_default_stream() if key[1] == 0 else cuda.external_stream(key[1])
        _STREAMS[key] = stream
    return stream


def _launch(kernel, n, *args):
    args = tuple(_kernel_argument(kernel, a) for a in args)
    if LAUNCH_LOG is not None:
        import numba
        LAUNCH_LOG.append((kernel.__name__, tuple(numba.typeof(a) for a in args)))
    if simulating():
        # NumPy scalars stand in for registers, and warn when unsigned products wrap (the
        # dropout hash wraps by design); the simulator's threads share the warning filters.
        # The simulator runs every launch at once, on no stream.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "overflow encountered in scalar", RuntimeWarning)
            kernel[blocks(n), THREADS](*args)
    else:
        kernel[blocks(n), THREADS, _current_stream()](*args)


def signatures():
    """{kernel name: [argument types]} for float32 and float64, as the functions below launch."""
    from numba import types
    out = {}
    for f in (types.float32, types.float64):
        a = {d: types.Array(f, d, "C") for d in (1, 2, 4)}
        i32 = types.Array(types.int32, 4, "C")
        i, b = types.int64, types.boolean
        entries = {
            "im2col": (a[4], i, i, i, i, i, i, i, i, i, a[2]),
            "col2im": (a[2], i, i, i, i, i, i, i, i, i, i, a[4], f),
            "maxpool_forward": (a[4], i, i, i, i, i, i, a[4], i32, f),
            "maxpool_backward": (a[4], i32, i, i, i, i, i, i, a[4], f),
            "bias_activation": (a[2], a[1], b, b, f),
            "relu_backward": (a[1], a[1], a[1], f),
            "adam": (a[1], a[1], a[1], a[1], f, f, f, f),
            "rmsprop": (a[1], a[1], a[1], f, f, f, f),
            "dropout_mask": (a[1], types.uint64, types.uint64, f, f),
            "avgpool_forward": (a[4], i, i, i, i, i, i, a[4], f, f),
            "avgpool_backward": (a[4], i, i, i, i, i, i, a[4], f, f),
            "depthwise_forward": (a[4], a[2], i, i, i, i, i, i, i, a[4], f),
            "depthwise_backward_input": (a[4], a[2], i, i, i, i, i, i, i, a[4], f),
            "projective_forward": (a[4], types.Array(types.float32, 2, "C"), b, i, f, a[4]),
            "projective_backward": (a[4], types.Array(types.float32, 2, "C"), b, i, a[4]),
        }
        for name, sig in entries.items():
            out.setdefault(name, []).append(sig)
    return out


KERNELS = {"im2col": cuda_conv.im2col, "col2im": cuda_conv.col2im, "maxpool_forward": cuda_pool.maxpool_forward,
           "maxpool_backward": cuda_pool.maxpool_backward, "bias_activation": cuda_elementwise.bias_activation,
           "relu_backward": cuda_elementwise.relu_backward, "adam": cuda_elementwise.adam,
           "rmsprop": cuda_elementwise.rmsprop, "dropout_mask": cuda_elementwise.dropout_mask,
           "avgpool_forward": cuda_pool.avgpool_forward, "avgpool_backward": cuda_pool.avgpool_backward,
           "depthwise_forward": cuda_conv.depthwise_forward,
           "depthwise_backward_input": cuda_conv.depthwise_backward_input,
           "projective_forward": cuda_image.projective_forward, "projective_backward": cuda_image.projective_backward}


def _launch_im2col(x, geo, first, last, cols):
    _launch(cuda_conv.im2col, cols.size, x, *geo, first, cols)


def _launch_col2im(dcols, geo, first, last, dx):
    n = (last - first) * dx.shape[1] * dx.shape[2] * dx.shape[3]
    _launch(cuda_conv.col2im, n, dcols, *geo, first, last, dx, _zero(dx))


def conv2d_forward(x, w, strides, pads):
    """y = conv(x, w): im2col kernel + cuBLAS GEMM in chunks. Returns (y, cache)."""
    return im2col_gemm.conv2d_forward(x, w, strides, pads, xp=array_module(),
                                      im2col=_launch_im2col, chunk_bytes=CHUNK_BYTES)


def conv2d_backward(dy, cache, need_dx=True):
    """(dx or None, dw) for conv2d_forward."""
    return im2col_gemm.conv2d_backward(dy, cache, need_dx, xp=array_module(),
                                       im2col=_launch_im2col, col2im=_launch_col2im,
                                       chunk_bytes=CHUNK_BYTES)


def conv2d_backward_input(dy, w, x_shape, strides, pads):
    """dL/dx of y = conv(x, w) from dy and w alone: cuBLAS GEMM + the col2im kernel in chunks
    (pads as numpy_ref.conv2d_backward_input)."""
    return im2col_gemm.conv2d_backward_input(dy, w, x_shape, strides, pads, xp=array_module(),
                                             col2im=_launch_col2im, chunk_bytes=CHUNK_BYTES)


def maxpool2d_forward(x, pool, strides, pads):
    """Max over each window; returns (y, argmax int32: row-major index of the first max)."""
    xp = array_module()
    x = xp.ascontiguousarray(x)
    ho, wo = im2col_gemm.geometry(x.shape, pool, strides, pads)[6:]
    y = xp.empty((x.shape[0], ho, wo, x.shape[3]), x.dtype)
    argmax = xp.empty(y.shape, np.int32)
    _launch(cuda_pool.maxpool_forward, y.size, x, pool[0], pool[1], strides[0], strides[1], pads[0],
            pads[2], y, argmax, x.dtype.type(-np.inf))
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape, pool, strides, pads):
    """Route each dy to the input position its window's argmax names."""
    xp = array_module()
    dx = xp.empty(x_shape, dy.dtype)
    _launch(cuda_pool.maxpool_backward, dx.size, xp.ascontiguousarray(dy), argmax, pool[0], pool[1],
            strides[0], strides[1], pads[0], pads[2], dx, _zero(dy))
    return dx


def bias_activation(z, b, activation):
    """In place: z = activation(z + b) over the last axis ('linear' or 'relu'). Returns z."""
    xp = array_module()
    z2 = z.reshape(-1, z.shape[-1])
    bias = b if b is not None else xp.zeros(z.shape[-1], z.dtype)
    _launch(cuda_elementwise.bias_activation, z2.size, z2, bias, b is not None, activation == "relu",
            _zero(z))
    return z


def bias_activation_backward(dy, a, activation, need_db):
    """(dL/dz, dL/db or None) from dL/da and a = bias_activation(...)."""
    xp = array_module()
    if activation == "relu":
        dz = xp.empty(dy.shape, dy.dtype)
        _launch(cuda_elementwise.relu_backward, dz.size, xp.ascontiguousarray(dy).reshape(-1),
                a.reshape(-1), dz.reshape(-1), _zero(dy))
    else:
        dz = dy
    db = dz.reshape(-1, dz.shape[-1]).sum(axis=0) if need_db else None
    return dz, db


def adam_update(p, g, m, v, lr_t, beta_1, beta_2, epsilon):
    """In place, as numpy_ref.adam_update."""
    t = p.dtype.type
    _launch(cuda_elementwise.adam, p.size, p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
            t(lr_t), t(1 - beta_1), t(1 - beta_2), t(epsilon))


def rmsprop_update(p, g, s, lr, rho, epsilon):
    """In place, as numpy_ref.rmsprop_update."""
    t = p.dtype.type
    _launch(cuda_elementwise.rmsprop, p.size, p.reshape(-1), g.reshape(-1), s.reshape(-1), t(lr), t(rho),
            t(1 - rho), t(epsilon))


def dropout_mask(shape, dtype, rate, seed):
    """As numpy_ref.dropout_mask: the same mask, drawn on the device (one thread per element)."""
    dtype = np.dtype(dtype)
    mask = array_module().empty(shape, dtype)
    _launch(cuda_elementwise.dropout_mask, mask.size, mask.reshape(-1), np.uint64(seed), dropout_threshold(rate),
            dtype.type(1 / (1 - rate)), dtype.type(0))
    return mask


def projective_transform(x, transforms, interpolation, fill_mode, fill_value):
    """As numpy_ref.projective_transform: one thread per output pixel."""
    xp = array_module()
    x = xp.ascontiguousarray(x)
    y = xp.empty_like(x)
    t = xp.ascontiguousarray(xp.asarray(transforms, dtype=np.float32).reshape(x.shape[0], 8))
    _launch(cuda_image.projective_forward, x.size // x.shape[3], x, t, interpolation == "nearest",
            image_geometry.FILL_MODE_CODES[fill_mode], x.dtype.type(fill_value), y)
    return y


def projective_transform_backward(dy, transforms, interpolation, fill_mode):
    """As numpy_ref.projective_transform_backward: one thread per output pixel, adding with atomics."""
    xp = array_module()
    dy = xp.ascontiguousarray(dy)
    dx = xp.zeros_like(dy)
    t = xp.ascontiguousarray(xp.asarray(transforms, dtype=np.float32).reshape(dy.shape[0], 8))
    _launch(cuda_image.projective_backward, dy.size // dy.shape[3], dy, t, interpolation == "nearest",
            image_geometry.FILL_MODE_CODES[fill_mode], dx)
    return dx


def avgpool2d_forward(x, pool, strides, pads):
    """As numpy_ref.avgpool2d_forward: one thread per output element."""
    xp = array_module()
    x = xp.ascontiguousarray(x)
    ho, wo = im2col_gemm.geometry(x.shape, pool, strides, pads)[6:]
    y = xp.empty((x.shape[0], ho, wo, x.shape[3]), x.dtype)
    t = x.dtype.type
    _launch(cuda_pool.avgpool_forward, y.size, x, pool[0], pool[1], strides[0], strides[1], pads[0], pads[2],
            y, t(0), t(1))
    return y


def avgpool2d_backward(dy, x_shape, pool, strides, pads):
    """As numpy_ref.avgpool2d_backward: one thread per input pixel, gathering."""
    xp = array_module()
    dx = xp.empty(x_shape, dy.dtype)
    t = dy.dtype.type
    _launch(cuda_pool.avgpool_backward, dx.size, xp.ascontiguousarray(dy), pool[0], pool[1], strides[0],
            strides[1], pads[0], pads[2], dx, t(0), t(1))
    return dx


def depthwise_conv2d_forward(x, k, strides, pads):
    """As numpy_ref.depthwise_conv2d_forward: one thread per output element."""
    xp = array_module()
    x = xp.ascontiguousarray(x)
    kh, kw, c, m = k.shape
    ho, wo = im2col_gemm.geometry(x.shape, k.shape, strides, pads)[6:]
    y = xp.empty((x.shape[0], ho, wo, c * m), x.dtype)
    k2 = xp.ascontiguousarray(k).reshape(kh * kw, c * m)
    _launch(cuda_conv.depthwise_forward, y.size, x, k2, kh, kw, strides[0], strides[1], pads[0], pads[2], m, y,
            _zero(x))
    return y, (x, k, strides, pads)


def depthwise_conv2d_backward(dy, cache, need_dx=True):
    """As numpy_ref.depthwise_conv2d_backward: dx by a gathering kernel; dk from the unfolded
    windows (the im2col kernel, a chunk of images at a time) and one contraction per chunk."""
    xp = array_module()
    x, k, strides, pads = cache
    kh, kw, c, m = k.shape
    dy = xp.ascontiguousarray(dy)
    geo = im2col_gemm.geometry(x.shape, k.shape, strides, pads)
    rows = geo[6] * geo[7]
    per = max(1, min(x.shape[0], CHUNK_BYTES // max(1, rows * kh * kw * c * x.dtype.itemsize)))
    dk = xp.zeros((kh * kw, c, m), x.dtype)
    for first in range(0, x.shape[0], per):
        last = min(x.shape[0], first + per)
        cols = xp.empty(((last - first) * rows, kh * kw * c), x.dtype)
        _launch_im2col(x, geo, first, last, cols)
        dy_part = dy[first:last].reshape((last - first) * rows, c, m)
        dk += xp.einsum("rqc,rcm->qcm", cols.reshape(-1, kh * kw, c), dy_part)
    dx = None
    if need_dx:
        dx = xp.empty(x.shape, dy.dtype)
        k2 = xp.ascontiguousarray(k).reshape(kh * kw, c * m)
        _launch(cuda_conv.depthwise_backward_input, dx.size, dy, k2, kh, kw, strides[0], strides[1], pads[0],
                pads[2], m, dx, _zero(dy))
    return dx, dk.reshape(k.shape)
