"""Nothing process-wide changes at import or when a model is built; what training or
prediction changes is listed, and each switch turns its part off. Threads through
threadpoolctl; parallel kernels safe from many threads whatever layer Numba picks."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import scratchnet

# Runs in a fresh interpreter: records malloc tuning (a spy on ctypes), the environment,
# Numba's threading-layer setting and BLAS's thread count after import + build, and again
# after one predict().
PROBE = r"""
import ctypes, json, os, sys
mallopt_calls = []

class Spy(ctypes.CDLL):
    def __getattr__(self, name):
        if name == "mallopt":
            mallopt_calls.append(name)
        return super().__getattr__(name)

ctypes.CDLL = Spy
import numpy as np
from threadpoolctl import threadpool_info
import numba

def state():
    return {"mallopt": len(mallopt_calls), "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
            "threading_layer_setting": numba.config.THREADING_LAYER,
            "blas_threads": {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}}

before = state()
import scratchnet
from scratchnet.train import mnist_model
model = mnist_model()                       # builds the weights: loads the CPU kernels
built = state()
model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
print(json.dumps({"before": before, "built": built, "predicted": state(),
                  "applied": scratchnet.runtime.applied()}))
"""


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "SCRATCHNET_KEEP_MEMORY",
                                                               "SCRATCHNET_GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_and_building_a_model_change_nothing_process_wide():
    result = probe()
    assert result["built"] == result["before"]
    assert result["before"]["GOMP_SPINCOUNT"] is None and result["before"]["mallopt"] == 0


def test_prediction_applies_the_documented_settings_once():
    result = probe()
    after = result["predicted"]
    assert after["mallopt"] >= 1 and after["GOMP_SPINCOUNT"] == "1000"
    # left alone: Numba's threading-layer choice and BLAS's thread count
    assert after["threading_layer_setting"] == result["before"]["threading_layer_setting"]
    # (MKL, when scratchnet loads it for its products, comes in sequential: one thread, its own)
    before = result["before"]["blas_threads"]
    assert before and {path: after["blas_threads"][path] for path in before} == before
    assert set(result["applied"]) == {"malloc", "GOMP_SPINCOUNT"}
    assert "M_MMAP_THRESHOLD" in result["applied"]["malloc"]


def test_each_switch_turns_its_setting_off():
    result = probe(SCRATCHNET_KEEP_MEMORY="0", SCRATCHNET_GOMP_SPINCOUNT="0")
    assert result["predicted"]["mallopt"] == 0 and result["predicted"]["GOMP_SPINCOUNT"] is None
    assert "SCRATCHNET_KEEP_MEMORY=0" in result["applied"]["malloc"]
    mine = probe(GOMP_SPINCOUNT="77")
    assert mine["predicted"]["GOMP_SPINCOUNT"] == "77" and "already set" in mine["applied"]["GOMP_SPINCOUNT"]


def test_blas_threads_are_set_through_threadpoolctl():
    from threadpoolctl import threadpool_info
    numba = pytest.importorskip("numba")
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("no BLAS library found by threadpoolctl")
    original = scratchnet.get_num_threads()
    try:
        scratchnet.set_num_threads(1)
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {1}
        assert scratchnet.get_num_threads() == (1, 1)
    finally:
        scratchnet.set_num_threads(original[0])
        scratchnet.threads.set_blas_threads(original[1])
    with pytest.raises(ValueError, match=f"between 1 and {numba.config.NUMBA_NUM_THREADS}.*got 0"):
        scratchnet.set_num_threads(0)
    with pytest.raises(TypeError, match="must be an int, got 1.5"):
        scratchnet.set_num_threads(1.5)


CONCURRENT = r"""
import sys, threading
import numpy as np
from scratchnet.kernels import numba_cpu as k, numba_lanes
numba_lanes.PARALLEL_MIN_ELEMENTS = 0            # every launch takes the parallel variant
rng = np.random.default_rng(0)
xs = [rng.standard_normal((4, 20, 20, 3)).astype(np.float32) for _ in range(8)]
w = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)
expected = [k.maxpool2d_forward(k.conv2d_forward(x, w, (1, 1), (0, 0, 0, 0))[0], (2, 2), (2, 2), (0, 0, 0, 0))[0]
            for x in xs]
results = [None] * 8
def work(i):
    for _ in range(20):
        y = k.conv2d_forward(xs[i], w, (1, 1), (0, 0, 0, 0))[0]
        results[i] = k.maxpool2d_forward(y, (2, 2), (2, 2), (0, 0, 0, 0))[0]
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert all(np.array_equal(r, e) for r, e in zip(results, expected))
import numba
print(numba.threading_layer(), numba_lanes._threadsafe_layer)
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_parallel_kernels_are_safe_from_eight_threads_on_any_threading_layer(layer):
    # Numba's workqueue layer aborts the process when two threads launch at once; the
    # kernels serialise launches only when Numba picked that layer.
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    out = subprocess.run([sys.executable, "-c", CONCURRENT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    chosen, threadsafe = out.stdout.split()
    assert (chosen == "workqueue") == (layer == "workqueue")
    assert threadsafe == ("False" if chosen == "workqueue" else "True")

