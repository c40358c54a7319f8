"""What scratchnet changes in the process, when, and the switch that turns each off.

Nothing here runs at ``import scratchnet`` or when a model is built. ``prepare(backend)``
runs when training or prediction starts on the ``cpu`` backend (``fit``, ``evaluate``,
``predict``, ``train_on_batch``, calling the model) and when threads are set with
``set_num_threads``; it acts once per process:

- **malloc keeps freed memory** (glibc only): the mmap threshold goes to 256 MB and the
  trim threshold to 1 GB, so the MB-sized arrays a training step frees are reused by the
  next step instead of being unmapped and faulted in again (page faults per step, with and
  without: ``benchmarks/runtime_settings.py``, section runtime-settings of RESULTS.md).
  Every library in the process shares malloc, so this applies to them too.
  Off: ``SCRATCHNET_KEEP_MEMORY=0``.
- **GOMP_SPINCOUNT=1000** when the variable is unset and GNU OpenMP is not loaded yet:
  Numba's OpenMP threads then stop spinning soon after a parallel kernel, instead of
  holding the core BLAS needs for the next GEMM (a GEMM right after a parallel kernel,
  with and without: the same section). It applies to every OpenMP user that loads
  libgomp later, and to child processes. Off: ``SCRATCHNET_GOMP_SPINCOUNT=0`` (or set
  GOMP_SPINCOUNT yourself).

Left alone: Numba's threading layer (scratchnet's kernels take a lock around their own
parallel launches only if Numba chose its workqueue layer, which is not thread-safe;
other Numba code in the process is not covered by that lock) and BLAS's thread count
(changed only by ``set_num_threads`` / ``set_backend(threads=)`` / ``--threads``).
``applied()`` says what was done in this process.
"""
import ctypes
import ctypes.util
import os
import threading

MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30
GOMP_SPINCOUNT = "1000"

_lock = threading.Lock()
_done = False
_applied = {}


def applied():
    """{setting: what was done} for this process (empty until ``prepare`` ran)."""
    return dict(_applied)


def prepare(backend_name="cpu"):
    """Apply the settings above, once per process, if ``backend_name`` is 'cpu'."""
    global _done
    if _done or backend_name != "cpu":
        return
    with _lock:
        if _done:
            return
        _applied["malloc"] = _keep_freed_memory()
        _applied["GOMP_SPINCOUNT"] = _short_openmp_spin()
        _done = True


def _switched_off(variable):
    return os.environ.get(variable, "1").strip() == "0"


def _keep_freed_memory():
    if _switched_off("SCRATCHNET_KEEP_MEMORY"):
        return "left alone (SCRATCHNET_KEEP_MEMORY=0)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        m_trim_threshold, m_mmap_threshold = -1, -3   # glibc's malloc.h
        ok = libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD) and libc.mallopt(m_trim_threshold, TRIM_THRESHOLD)
    except (OSError, AttributeError, TypeError):   # not glibc: nothing to tune
        return "left alone (no glibc mallopt)"
    return (f"M_MMAP_THRESHOLD={MMAP_THRESHOLD >> 20} MB, M_TRIM_THRESHOLD={TRIM_THRESHOLD >> 30} GB"
            if ok else "left alone (mallopt refused)")


def _openmp_loaded():
    from threadpoolctl import threadpool_info
    return any(info.get("internal_api") == "openmp" for info in threadpool_info())


def _short_openmp_spin():
    if _switched_off("SCRATCHNET_GOMP_SPINCOUNT"):
        return "left alone (SCRATCHNET_GOMP_SPINCOUNT=0)"
    if "GOMP_SPINCOUNT" in os.environ:
        return f"left alone (already set to {os.environ['GOMP_SPINCOUNT']})"
    if _openmp_loaded():
        return "left alone (OpenMP was already loaded, so it would have no effect)"
    os.environ["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT
    return f"set to {GOMP_SPINCOUNT}"
