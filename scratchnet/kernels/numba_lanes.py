"""How the Numba CPU kernels run: each is compiled twice, serial and parallel, and launched as
one or the other by the size of its work; and the lanes, the two halves of a big batch that run
on two cores at once, each with a one-thread BLAS.

The kernel modules (``numba_conv``, ``numba_pool``, ``numba_norm``, ``numba_elementwise``,
``numba_image``) compile their loops with ``@kernel`` (or ``njit(**JIT)``) from here.
``prange`` runs only over loops whose iterations write disjoint outputs (rows of cols, whole
images of dx), and lanes are fixed by the work, so results do not depend on the number of
threads. Compiled on first call for each dtype and cached on disk (``cache=True``).

How the kernels' loops are written so that LLVM vectorises them (each measured 3-10x):
- inner loops index 1-D views with a bare range() variable, so Numba knows the index is
  non-negative and drops its wrap-around check (a computed offset such as base + t keeps it);
- max() rather than "a if a > b else b" on the same element;
- selects mix only same-width types: argmax is int32 beside float32 values, and constants
  come in typed (zero, np.int32(k)), never as Python ints or floats that widen to 64 bits.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numba
import numpy as np
from numba import njit

from .blas import one_blas_thread
from .numba_cache import install as _lock_the_cache

_lock_the_cache()    # several processes may compile the same kernel at once (see numba_cache)

JIT = dict(nogil=True, cache=True, fastmath=False)
# For kernels whose inner loop divides: a float division by zero gives inf/nan, as in NumPy,
# instead of a check for Python's ZeroDivisionError in every iteration, which keeps the loop
# from being vectorised (Adam's update 4.5x faster). Not for every kernel: the unfolding and
# pooling kernels ran up to 5x slower on the short rows of a batch-1 prediction with it.
DIVIDING = dict(error_model="numpy")

# Below this many elements a kernel runs on the calling thread: waking the other thread
# costs more than it saves on 2 cores (measured: a 1 MB im2col takes 0.15 ms alone and
# 0.25 ms split in two), and a thread pool spinning beside BLAS's slows the next GEMM.
PARALLEL_MIN_ELEMENTS = 1 << 22


# Numba picks its threading layer at the first parallel launch (TBB, else OpenMP, else its
# own workqueue), for the whole process; scratchnet does not choose for it. The workqueue
# layer is not thread-safe, so the first launch runs under a lock and, if Numba chose
# workqueue, every later one does too.
_launch_lock = threading.Lock()
_threadsafe_layer = None   # unknown until the first parallel launch


def _launch_parallel(compiled, args):
    global _threadsafe_layer
    if _threadsafe_layer:
        return compiled(*args)
    with _launch_lock:
        if _threadsafe_layer is None:
            numba.get_num_threads()   # starts the threading layer (a cached kernel may not)
            _threadsafe_layer = numba.threading_layer() != "workqueue"
        return compiled(*args)


def kernel(function=None, **options):
    """Compile ``function`` twice, serial and parallel; the kernel is then called as
    ``name(work, *args)`` and runs the one that fits ``work`` (an element count). ``options``
    add to JIT's (``@kernel(**DIVIDING)``)."""
    if function is None:
        return lambda f: kernel(f, **options)
    flags = {**JIT, **options}
    serial = njit(**flags)(function)
    parallel = njit(parallel=True, **flags)(function)

    def run(work, *args):
        if work < PARALLEL_MIN_ELEMENTS:
            return serial(*args)
        return _launch_parallel(parallel, args)

    run.serial, run.parallel, run.__name__, run.__doc__ = serial, parallel, function.__name__, function.__doc__
    return run


class Lanes:
    """Runs the two halves of a batch (lanes) of one layer at once, each on one core with a
    one-thread BLAS (blas.one_blas_thread), when BLAS was allowed two threads or more; else one
    after the other. The halves and what each computes are fixed by the work alone, so the
    results are the same either way. Cores then never wait on each other inside a GEMM, and
    the unfolding and pooling between GEMMs, too small to split, run on both cores instead of
    one."""

    min_flops = 10e6     # below this a hand-over to the other thread costs more than it saves

    def __init__(self):
        self._pool = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget_pool)

    def _forget_pool(self):
        self._pool, self._lock = None, threading.Lock()    # a forked child has no lane thread

    def run(self, tasks):
        """[task() for task in tasks], the first on this thread and the rest on the lane thread."""
        with one_blas_thread() as threads:
            if threads < 2:
                return [task() for task in tasks]
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="scratchnet-lane")
            # NumPy's error handling and Numba's thread count are per thread: the lane gets the caller's
            errors, numba_threads = np.geterr(), numba.get_num_threads()
            futures = [self._pool.submit(_as_caller, errors, numba_threads, task) for task in tasks[1:]]
            try:
                first = tasks[0]()
            finally:
                wait(futures)     # never leave a lane running on buffers this call hands back
            return [first] + [f.result() for f in futures]


def _as_caller(errors, numba_threads, task):
    numba.set_num_threads(numba_threads)
    with np.errstate(**errors):
        return task()


LANES = Lanes()
