"""How many threads the CPU backend uses: Numba's kernels and the BLAS under NumPy.

    scratchnet.set_num_threads(2)     # or NUMBA_NUM_THREADS=2 / --threads 2

Numba reads NUMBA_NUM_THREADS when it starts and can then use at most that many; the
BLAS libraries loaded in the process (OpenBLAS in NumPy's wheels, or MKL) are found and
limited with threadpoolctl. Nothing changes either count unless asked to here.
"""
import operator
import os
import sys
import threading
from contextlib import contextmanager


def _blas_controller():
    import numpy  # noqa: F401  (NumPy's BLAS must be loaded to be found)
    from threadpoolctl import ThreadpoolController
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
