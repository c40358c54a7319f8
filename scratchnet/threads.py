"""How many threads the CPU backend uses: Numba's kernels and the BLAS under NumPy.

    scratchnet.set_num_threads(2)     # or NUMBA_NUM_THREADS=2 / --threads 2

Numba reads NUMBA_NUM_THREADS when it starts and can then use at most that many; BLAS
(OpenBLAS in NumPy's wheels) is told through its own C function, found in the
process's loaded libraries.
"""
import ctypes
import os

# C functions that set the thread count of the BLAS libraries NumPy may be built with
_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads", "MKL_Set_Num_Threads")
_BLAS_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                 "openblas_get_num_threads64_", "openblas_get_num_threads", "MKL_Get_Max_Threads")


def _loaded_blas_libraries():
    """Paths of loaded shared libraries that look like a BLAS (Linux: /proc/self/maps)."""
    import numpy  # noqa: F401  (make sure NumPy's BLAS is loaded)
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if ".so" in line}
    except OSError:
        return []
    return sorted(p for p in paths if "blas" in os.path.basename(p).lower() or "mkl_rt" in p)


def _blas_function(names):
    for path in _loaded_blas_libraries():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            if hasattr(library, name):
                return getattr(library, name)
    return None


def set_blas_threads(n):
    """Set the BLAS thread count; returns False when no known BLAS is loaded."""
    setter = _blas_function(_BLAS_SETTERS)
    if setter is None:
        return False
    setter(ctypes.c_int(n)) if "MKL" in setter.__name__ else setter(n)
    return True


def get_blas_threads():
    getter = _blas_function(_BLAS_GETTERS)
    return int(getter()) if getter is not None else None


def set_num_threads(n):
    """Use ``n`` threads for the CPU backend's kernels and for BLAS."""
    import numba
    n = int(n)
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"threads must be between 1 and {limit} (NUMBA_NUM_THREADS, read when "
                         f"Numba starts), got {n}")
    numba.set_num_threads(n)
    set_blas_threads(n)


def get_num_threads():
    """(Numba threads, BLAS threads or None if unknown)."""
    import numba
    return numba.get_num_threads(), get_blas_threads()
