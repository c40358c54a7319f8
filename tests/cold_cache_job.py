"""One process of tests/test_numba_cache.py: a small convnet's gradients, prediction and one
SGD step on the CPU kernels, against the NumPy reference backend in the same process.
Writes {'digest': sha256 of the CPU results, 'error': worst relative difference} to OUT.

    python cold_cache_job.py OUT float32|float64 small|big
("big": inputs large enough that the kernels run their parallel variants.)"""
import hashlib
import json
import sys

import numpy as np

import scratchnet
from scratchnet import layers, models


def results(backend, dtype, size, batch):
    scratchnet.set_backend(backend)
    scratchnet.set_random_seed(0)
    model = models.Sequential([
        layers.Input((size, size, 3), dtype=dtype), layers.Conv2D(8, 3, activation="relu", dtype=dtype),
        layers.MaxPooling2D(2, dtype=dtype), layers.BatchNormalization(dtype=dtype), layers.Flatten(dtype=dtype),
        layers.Dense(5, activation="softmax", dtype=dtype)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((batch, size, size, 3)).astype(dtype), rng.integers(0, 5, batch)
    loss, gradients, dx = model.compute_gradients(x, y, need_dx=True)
    out = [np.float64(loss)] + [np.asarray(g) for g in gradients] + [np.asarray(dx), model.predict(x, verbose=0)]
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return out + model.get_weights()


def main():
    out, dtype, kind = sys.argv[1:4]
    size, batch = (64, 64) if kind == "big" else (12, 6)
    cpu, reference = results("cpu", dtype, size, batch), results("numpy", dtype, size, batch)
    error = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) for a, b in zip(cpu, reference))
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in cpu)).hexdigest()
    with open(out, "w") as f:
        json.dump({"digest": digest, "error": error}, f)


if __name__ == "__main__":
    main()
