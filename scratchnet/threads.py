"""How many threads the CPU backend uses: Numba's kernels and the BLAS under NumPy.

    scratchnet.set_num_threads(2)     # or NUMBA_NUM_THREADS=2 / --threads 2

Numba reads NUMBA_NUM_THREADS when it starts and can then use at most that many; the
BLAS libraries loaded in the process (OpenBLAS in NumPy's wheels, or MKL) are found and
limited with threadpoolctl. Nothing changes either count unless asked to here.
"""
import operator

# BLAS's thread count and its pinning to one thread live with the kernels that need them;
# imported here so that scratchnet.threads stays the one place users reach them from.
from .kernels.blas import (get_blas_threads, one_blas_thread, pin_late_libraries,  # noqa: F401
                           set_blas_threads)


def set_num_threads(n):
    """Use ``n`` threads for the CPU backend's kernels and for BLAS."""
    import numba

    from . import runtime
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"threads must be an int, got {n!r}") from None
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"threads must be between 1 and {limit} (NUMBA_NUM_THREADS, read when "
                         f"Numba starts), got {n}")
    runtime.prepare("cpu")    # before Numba starts its threads: GOMP_SPINCOUNT is read then
    numba.set_num_threads(n)
    set_blas_threads(n)


def get_num_threads():
    """(Numba threads, BLAS threads or None if unknown)."""
    import numba
    return numba.get_num_threads(), get_blas_threads()


def blas_pinned_on_cpu(method):
    """Run a model method (fit, predict...) under one_blas_thread() when its backend is the CPU's."""
    import functools

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        if getattr(self, "backend", None) is None or self.backend.name != "cpu":
            return method(self, *args, **kwargs)
        with one_blas_thread():
            return method(self, *args, **kwargs)
    return run
