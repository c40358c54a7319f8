"""Numba's on-disk cache of the kernels when several processes compile at once (mpiexec -n 2
on a fresh install, pytest-xdist, two notebooks). Numba's index writes race (numba issue
#10128): run unlocked, the first test's 4 processes saving 50 signatures each at once lost or
mismatched about two thirds of them, some pointing at another signature's code. scratchnet's
kernels save and load their cache under a file lock (scratchnet/kernels/numba_cache.py)."""
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scratchnet.kernels import numba_cache

HERE = Path(__file__).resolve().parent
JOB = HERE / "cold_cache_job.py"
needs_flock = pytest.mark.skipif(numba_cache.fcntl is None, reason="no fcntl (Windows): Numba's unlocked cache remains")


def _save_at_once(path, worker, barrier, rounds):
    from numba.core.caching import IndexDataCacheFile
    numba_cache.install()
    index = IndexDataCacheFile(path, "numba_conv.kernel-1.py311", ("source stamp", 1))
    for step in range(rounds):
        barrier.wait()           # every process saves its signature of this step at the same moment
        index.save(("signature", step, worker), ("machine code", step, worker))


@needs_flock
def test_concurrent_saves_keep_every_signature_with_its_own_code(tmp_path):
    from numba.core.caching import IndexDataCacheFile
    path = tmp_path / numba_cache.CACHE_FOLDERS[1]      # what Numba names our kernels' folder under NUMBA_CACHE_DIR
    path.mkdir()
    assert numba_cache._ours(str(path)) and not numba_cache._ours(str(tmp_path))
    workers, rounds = 4, 50
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers)
    processes = [context.Process(target=_save_at_once, args=(str(path), w, barrier, rounds)) for w in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0] * workers
    index = IndexDataCacheFile(str(path), "numba_conv.kernel-1.py311", ("source stamp", 1))
    found = {(step, w): index.load(("signature", step, w)) for step in range(rounds) for w in range(workers)}
    wrong = {key: value for key, value in found.items() if value != ("machine code", *key)}
    assert not wrong, f"{len(wrong)} of {len(found)} signatures lost or pointing at another's code"


def _start(out, dtype, size, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(HERE.parent))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.Popen([sys.executable, str(JOB), str(out), dtype, size], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@needs_flock
def test_four_processes_on_an_empty_cache_compute_what_the_reference_and_a_warm_run_do(tmp_path):
    """float32 and float64 models, small (serial kernels) and big (parallel ones), all
    compiling and saving at once, then all loading what they saved."""
    cache = tmp_path / "cache"
    cache.mkdir()
    runs = [(dtype, size) for dtype in ("float32", "float64") for size in ("small", "big")]
    outcomes = {}
    for phase in ("cold", "warm"):
        jobs = {run: _start(tmp_path / f"{phase}-{run[0]}-{run[1]}.json", *run, cache) for run in runs}
        for run, job in jobs.items():
            _, err = job.communicate(timeout=600)
            assert job.returncode == 0, f"{phase} {run}: {err[-3000:]}"
            outcomes[phase, run] = json.loads((tmp_path / f"{phase}-{run[0]}-{run[1]}.json").read_text())
        if phase == "cold":
            assert list(cache.rglob("*.nbi")) and list(cache.rglob("*.nbi.lock")), "the kernels were not cached"
    for dtype, size in runs:
        cold, warm = outcomes["cold", (dtype, size)], outcomes["warm", (dtype, size)]
        assert cold["error"] < (1e-3 if dtype == "float32" else 1e-9), (dtype, size, cold)
        assert warm["digest"] == cold["digest"], f"{dtype} {size}: the cached kernels computed something else"
