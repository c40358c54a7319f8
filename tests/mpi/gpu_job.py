"""Data-parallel training on the GPU backend with strict device arrays (tests/strict_cupy.py)
and a recording NCCL (tests/strict_nccl.py), under the CUDA simulator: run under mpiexec by
tests/test_distributed.py, which compares it with the same job on the CPU backend.

    NUMBA_ENABLE_CUDASIM=1 mpiexec -n 2 python gpu_job.py OUT gpu|cpu [--no-nccl]
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import strict_cupy  # noqa: E402
import strict_nccl  # noqa: E402

strict_cupy.install()
if "--no-nccl" not in sys.argv:        # else: a CuPy without NCCL, whose sums go through the host
    strict_nccl.install()

import scratchnet  # noqa: E402
from scratchnet import callbacks, distributed, layers, models, optimizers  # noqa: E402


class CountTransfers(callbacks.Callback):
    """Host<->device copies of each training step."""

    def __init__(self):
        self.per_step = []

    def on_train_batch_begin(self, batch, logs=None):
        self.before = dict(strict_cupy.TRANSFERS)

    def on_train_batch_end(self, batch, logs=None):
        now = dict(strict_cupy.TRANSFERS)
        self.per_step.append({k: now.get(k, 0) - self.before.get(k, 0) for k in ("to_host", "to_device")})


def main():
    out, backend = sys.argv[1], sys.argv[2]
    communicator = distributed.init()
    scratchnet.set_backend(backend)
    scratchnet.set_random_seed(3)
    model = models.Sequential([layers.Input((4, 4, 2)), layers.Conv2D(3, 2, activation="relu"), layers.Flatten(),
                               layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=distributed.DistributedOptimizer(optimizers.Adam(1e-2)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4, 4, 2)).astype(np.float32), rng.integers(0, 3, 20)
    counter = CountTransfers()
    history = model.fit(x[:16], y[:16], batch_size=4, epochs=2, validation_data=(x[16:], y[16:]), verbose=0,
                        callbacks=[counter])
    if communicator.is_root:
        kernel = model.layers[0].params["kernel"]
        np.savez(out, *model.get_weights(), history=json.dumps(history.history),
                 calls=json.dumps(strict_nccl.CALLS), transfers=json.dumps(counter.per_step),
                 on_device=isinstance(kernel, strict_cupy.ndarray))


if __name__ == "__main__":
    main()
