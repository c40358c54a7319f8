"""Numba's on-disk cache of the compiled kernels, made safe for processes that compile at once.

Numba keeps one index file per function, mapping each compiled signature to a data file of
machine code. ``IndexDataCacheFile.save`` reads the index, takes the first free data-file
number, writes the index, then the data, with no lock between processes (numba issue #10128).
Two processes saving two signatures of one kernel at once (``mpiexec -n 2`` on a fresh
install, pytest-xdist, two notebooks: a float32 and a float64 model) take the same number,
and the index can end up pointing one signature at the other's machine code. Run unlocked,
the first test of ``tests/test_numba_cache.py`` (4 processes saving 50 signatures each at
once) lost or mismatched 135 and 136 of the 200 in two runs; in the first, 28 pointed at
another signature's code.

``install()`` (called when the kernels are imported) wraps Numba's save and load for
scratchnet's kernels in a lock on a file beside the index: saving holds it alone (``flock``
LOCK_EX), loading shares it (LOCK_SH), so a save reads, numbers and writes the index and data
with no other process in between, and a load never reads an index whose data is half
written. Where ``fcntl`` is missing (Windows) or the lock file cannot be made, Numba's own
unlocked behaviour remains.
"""
import contextlib
import functools
import hashlib
import os

try:
    import fcntl
except ImportError:      # Windows: no flock
    fcntl = None

_installed = False


KERNELS = os.path.dirname(os.path.abspath(__file__))
# The folders Numba caches these kernels in: __pycache__ beside them, or, under NUMBA_CACHE_DIR
# or the user-wide cache, a folder named by Numba's rule: the folder's name, '_', the SHA-1
# of its path.
CACHE_FOLDERS = (os.path.join(KERNELS, "__pycache__"),
                 "kernels_" + hashlib.sha1(KERNELS.encode()).hexdigest())


def _ours(cache_path):
    """Whether a Numba cache folder is the one of scratchnet's kernels."""
    path = os.path.normpath(cache_path)
    return path == CACHE_FOLDERS[0] or os.path.basename(path) == CACHE_FOLDERS[1]


@contextlib.contextmanager
def locked(index_path, exclusive):
    """Hold ``index_path``.lock, alone or shared, for the block (no lock where none can be had)."""
    handle = None
    if fcntl is not None:
        try:
            handle = open(index_path + ".lock", "a")
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:
            if handle is not None:
                handle.close()
            handle = None
    try:
        yield
    finally:
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def _under_lock(method, exclusive):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not _ours(self._cache_path):
            return method(self, *args, **kwargs)
        with locked(self._index_path, exclusive):
            return method(self, *args, **kwargs)
    wrapper.scratchnet_locked = True
    return wrapper


def install():
    """Put Numba's cache index reads and writes for scratchnet's kernels under the file lock
    (once per process)."""
    global _installed
    if _installed:
        return
    from numba.core.caching import IndexDataCacheFile
    if not getattr(IndexDataCacheFile.save, "scratchnet_locked", False):
        IndexDataCacheFile.save = _under_lock(IndexDataCacheFile.save, exclusive=True)
        IndexDataCacheFile.load = _under_lock(IndexDataCacheFile.load, exclusive=False)
    _installed = True
