"""The CPU kernels' matrix product, ``matmul(a, b, out)``: out = a @ b.

NumPy's BLAS (OpenBLAS, in NumPy's wheels) unless Intel MKL's ``cblas_?gemm`` is available
and chosen. On one core of an AVX-512 Intel CPU, MKL ran the GEMMs of a seed model's step
1.19-1.30x faster than NumPy's OpenBLAS (``benchmarks/blas_shapes.py``, section
``blas-shapes`` of benchmarks/RESULTS.md); BLIS and a newer OpenBLAS were not faster.

Which one runs (``SCRATCHNET_BLAS``):
- unset: MKL when the ``mkl`` package is installed (``pip install 'scratchnet[mkl]'``) and
  the CPU is an Intel one (the only kind it was measured on), else NumPy's;
- ``mkl``: MKL, or an error saying how to install it;
- ``numpy``: NumPy's.

MKL is loaded from the ``mkl`` package's own files, sequential (each call on the calling
thread: the lanes of numba_lanes give each core its own product). Its bits depend on the
operands only, not on where they sit in memory (tests/test_blas.py checks it), so the
results with 1 and 2 threads stay equal; its reproducible mode (CBWR) is not needed for
that, and cost most of its speed here. Products MKL cannot take as they are (other dtypes,
strides that are not a row-major matrix or its transpose, a dimension of 1, or too small
to repay a foreign call) go to NumPy.

Below that, how many threads the BLAS libraries in the process run (found and set with
threadpoolctl), and ``one_blas_thread``, which holds them at one thread while the CPU
kernels' lanes run (``scratchnet.threads`` offers these to users).
"""
import ctypes
import glob
import os
import sys
import threading
from contextlib import contextmanager

import numpy as np

ENVIRONMENT_VARIABLE = "SCRATCHNET_BLAS"
MIN_MKL_WORK = 1 << 21          # M*N*K below which NumPy is faster: an MKL call costs ~8 us more (measured)

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112      # CBLAS enums
_THREADING_SEQUENTIAL = 1                           # MKL_THREADING_SEQUENTIAL
_INT_MAX = 2**31 - 1                                # MKL's LP64 interface: 32-bit sizes

_lock = threading.Lock()
_mkl = None          # (library, {dtype: gemm}) once loaded; False when NumPy's BLAS is used


def _mkl_files():
    """libmkl_rt files the ``mkl`` package installed (its record first, then the prefix)."""
    try:
        from importlib.metadata import PackageNotFoundError, files
        found = [str(f.locate()) for f in files("mkl") or () if "mkl_rt" in f.name]
    except PackageNotFoundError:
        return []
    pattern = "mkl_rt*.dll" if sys.platform == "win32" else "libmkl_rt.so*"
    return sorted(found) or sorted(glob.glob(os.path.join(sys.prefix, "lib", pattern)))


def _intel_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return "GenuineIntel" in f.read(4096)
    except OSError:
        import platform
        return "Intel" in platform.processor()


def _load_mkl(paths):
    """(library, {dtype: gemm}), or False when MKL already runs threaded in this process."""
    library = ctypes.CDLL(paths[-1])
    if library.MKL_Set_Threading_Layer(_THREADING_SEQUENTIAL) != _THREADING_SEQUENTIAL:
        import warnings
        warnings.warn("MKL was started with its own threads before scratchnet loaded it (by another library "
                      "in this process): scratchnet's CPU kernels use NumPy's BLAS instead", RuntimeWarning,
                      stacklevel=4)
        return False
    gemms = {}
    for dtype, name, scalar in ((np.float32, "cblas_sgemm", ctypes.c_float),
                                (np.float64, "cblas_dgemm", ctypes.c_double)):
        gemm = getattr(library, name)
        i, p = ctypes.c_int, ctypes.c_void_p
        gemm.argtypes = [i, i, i, i, i, i, scalar, p, i, p, i, scalar, p, i]
        gemm.restype = None
        gemms[np.dtype(dtype)] = gemm
    return library, gemms


def _chosen_mkl():
    """The loaded MKL (library, gemms), or False for NumPy's BLAS; decided once."""
    global _mkl
    if _mkl is None:
        with _lock:
            if _mkl is None:
                choice = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
                if choice not in ("", "mkl", "numpy"):
                    raise ValueError(f"{ENVIRONMENT_VARIABLE} must be 'mkl', 'numpy' or unset, got {choice!r}")
                paths = _mkl_files() if choice != "numpy" else []
                if choice == "mkl" and not paths:
                    raise ImportError(f"{ENVIRONMENT_VARIABLE}=mkl, but the mkl package is not installed: "
                                      f"pip install 'scratchnet[mkl]'")
                use = bool(paths) and (choice == "mkl" or _intel_cpu())
                _mkl = _load_mkl(paths) if use else False
    return _mkl


def name():
    """'mkl' or 'numpy': the library the CPU kernels' products run on."""
    return "mkl" if _chosen_mkl() else "numpy"


def _operand(a, rows, cols, itemsize):
    """(transpose flag, leading dimension) of a 2-D operand for a row-major CBLAS call, or None."""
    s0, s1 = a.strides
    if s1 == itemsize and s0 % itemsize == 0 and cols <= s0 // itemsize <= _INT_MAX:
        return _NO_TRANS, s0 // itemsize
    if s0 == itemsize and s1 % itemsize == 0 and rows <= s1 // itemsize <= _INT_MAX:
        return _TRANS, s1 // itemsize          # the transpose of a row-major (cols, rows) matrix
    return None


def matmul(a, b, out=None):
    """out = a @ b for 2-D a (M, K) and b (K, N); ``out`` (M, N) is written if given."""
    mkl = _mkl if _mkl is not None else _chosen_mkl()
    if not mkl or a.ndim != 2 or b.ndim != 2 or a.shape[0] * a.shape[1] * b.shape[1] < MIN_MKL_WORK:
        return np.matmul(a, b, out=out)
    (m, k), n = a.shape, b.shape[1]
    dtype = a.dtype
    gemm = mkl[1].get(dtype)
    if gemm is None or b.dtype != dtype or b.shape[0] != k or min(m, n, k) < 2 or max(m, n, k) > _INT_MAX:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((m, n), dtype)
    elif out.shape != (m, n) or out.dtype != dtype:
        return np.matmul(a, b, out=out)        # NumPy's checks and messages
    itemsize = dtype.itemsize
    first, second = _operand(a, m, k, itemsize), _operand(b, k, n, itemsize)
    result = _operand(out, m, n, itemsize)
    if first is None or second is None or result is None or result[0] != _NO_TRANS:
        return np.matmul(a, b, out=out)
    if np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return np.matmul(a, b, out=out)
    one, zero = 1.0, 0.0
    gemm(_ROW_MAJOR, first[0], second[0], m, n, k, one, a.ctypes.data, first[1], b.ctypes.data, second[1],
         zero, out.ctypes.data, result[1])
    return out


# ----- how many threads the BLAS libraries run ----------------------------------------------
def _blas_controller():
    from threadpoolctl import ThreadpoolController     # (NumPy, and with it its BLAS, is loaded above)
    return ThreadpoolController().select(user_api="blas")


def set_blas_threads(n):
    """Limit every loaded BLAS to ``n`` threads; returns False when none is loaded. While a
    model runs (one_blas_thread), BLAS stays at one thread and gets ``n`` when the run ends."""
    global _saved
    controller = _blas_controller()
    if not controller.lib_controllers:
        return False
    with _pin_lock:
        if _pins:
            _saved = [int(n)] * len(_saved)
            return True
        controller.limit(limits=int(n))
    return True


def get_blas_threads():
    """Threads of the loaded BLAS (the largest, if several), or None when none is loaded; while
    a model runs (one_blas_thread), the count it gets back when the run ends."""
    with _pin_lock:
        if _pins:
            return max(_saved, default=None)
    counts = [lib.num_threads for lib in _blas_controller().lib_controllers]
    return max(counts) if counts else None


# ----- one pool: BLAS at one thread while scratchnet runs its own lanes ------------------------
_pin_lock = threading.Lock()
_pins = 0
_saved = []
_pinned = []
_libraries = _libraries_key = None


def _after_fork_in_child():
    global _pin_lock, _pins
    _pin_lock, _pins = threading.Lock(), 0     # the parent's run does not continue in the child


os.register_at_fork(after_in_child=_after_fork_in_child)


def _blas_libraries():
    """The loaded BLAS libraries, looked up again once Python has imported more modules (a
    package such as SciPy brings a BLAS of its own, which must be pinned too)."""
    global _libraries, _libraries_key
    key = len(sys.modules)
    if _libraries is None or key != _libraries_key:
        _libraries, _libraries_key = _blas_controller().lib_controllers, key
    return _libraries


@contextmanager
def one_blas_thread():
    """Inside, every loaded BLAS runs on the calling thread only; yields the BLAS thread count
    from before (what the CPU backend's lanes may use instead). Re-entrant and thread-safe:
    the count comes back when the outermost user leaves. A multi-threaded BLAS leaves its
    workers spinning for a while after each call, taking the core a lane needs next."""
    global _pins, _saved
    with _pin_lock:
        if _pins == 0:
            _pinned[:] = _blas_libraries()      # the ones given back at the end, whatever loads meanwhile
            _saved = [lib.get_num_threads() or 1 for lib in _pinned]
            for lib in _pinned:
                lib.set_num_threads(1)
        _pins += 1
        threads = max(_saved, default=1)
    try:
        yield threads
    finally:
        with _pin_lock:
            _pins -= 1
            if _pins == 0:
                for lib, count in zip(_pinned, _saved):
                    lib.set_num_threads(count)


def pin_late_libraries():
    """While pinned, pin also any BLAS loaded since (Numba imports SciPy, and with it SciPy's
    BLAS, when it first compiles a function that needs one): a cheap check, once per step."""
    if _libraries_key == len(sys.modules):
        return
    with _pin_lock:
        known = {id(lib) for lib in _pinned}
        for lib in _blas_libraries():
            if _pins and id(lib) not in known and all(lib.filepath != old.filepath for old in _pinned):
                _pinned.append(lib)
                _saved.append(lib.get_num_threads() or 1)
                lib.set_num_threads(1)
