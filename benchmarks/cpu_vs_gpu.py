"""Each kernel and a training step of both seed models, on the CPU and on the GPU backend.

    python benchmarks/cpu_vs_gpu.py            # writes its table to benchmarks/RESULTS.md

GPU timings synchronise the device before reading the clock, after a warm-up. With no
GPU (or no CuPy) the CPU half is measured and the table says plainly that the GPU half
was not. ``--tiny`` runs small shapes (the test suite runs it under the CUDA simulator,
so this script cannot rot on machines without a GPU).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def synchronize(backend_name):
    if backend_name == "gpu" and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        import cupy
        cupy.cuda.Device().synchronize()


def timed(run, backend_name, repeats):
    run()
    synchronize(backend_name)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(backend_name)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cases(tiny):
    """(label, input shape, conv filters, model builder) at full or tiny size."""
    from scratchnet.train import catsdogs_model, mnist_model
    if tiny:
        return [("MNIST-like, tiny", (2, 8, 8, 1), 2, None), ("cats/dogs-like, tiny", (2, 10, 10, 3), 2, None)]
    return [("MNIST seed model", (32, 28, 28, 1), 32, mnist_model),
            ("cats/dogs seed model (150x150)", (32, 150, 150, 3), 32, lambda: catsdogs_model(150))]


def measure(backend_name, tiny, repeats):
    """{(case, what): seconds} on one backend."""
    import scratchnet
    from scratchnet import layers, models
    scratchnet.set_backend(backend_name)
    kernels = scratchnet.backend.current()
    xp = kernels.xp
    rng = np.random.default_rng(0)
    results = {}
    for label, shape, filters, build in cases(tiny):
        x = xp.asarray(rng.standard_normal(shape).astype(np.float32))
        w = xp.asarray(rng.standard_normal((3, 3, shape[3], filters)).astype(np.float32))
        pads = (0, 0, 0, 0)
        y, cache = kernels.conv2d_forward(x, w, (1, 1), pads)
        pooled, argmax = kernels.maxpool2d_forward(y, (2, 2), (2, 2), pads)
        results[(label, "conv forward")] = timed(lambda: kernels.conv2d_forward(x, w, (1, 1), pads),
                                                 backend_name, repeats)
        results[(label, "conv backward")] = timed(lambda: kernels.conv2d_backward(y, cache, True),
                                                  backend_name, repeats)
        results[(label, "max-pool forward")] = timed(lambda: kernels.maxpool2d_forward(y, (2, 2), (2, 2), pads),
                                                     backend_name, repeats)
        results[(label, "max-pool backward")] = timed(
            lambda: kernels.maxpool2d_backward(pooled, argmax, y.shape, (2, 2), (2, 2), pads), backend_name, repeats)
        model = build() if build else models.Sequential([
            layers.Conv2D(filters, 3, activation="relu", input_shape=shape[1:]), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy" if model.output_shape[-1] > 1
                      else "binary_crossentropy")
        labels = rng.integers(0, 2, shape[0])
        host_x = rng.standard_normal(shape).astype(np.float32)
        results[(label, "training step")] = timed(lambda: model.train_on_batch(host_x, labels), backend_name, repeats)
    return results


def gpu_available():
    import scratchnet
    try:
        scratchnet.backend.get("gpu")
    except scratchnet.backend.GPUUnavailable as error:
        return False, str(error)
    import cupy
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True, f"CUDA simulator with {name}: timings are NOT GPU speed"
    return True, name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small shapes (for tests and simulators)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    cpu = measure("cpu", args.tiny, args.repeats)
    has_gpu, device = gpu_available()
    gpu = measure("gpu", args.tiny, args.repeats) if has_gpu else {}
    lines = ["| model | what | CPU (ms) | GPU (ms) | CPU / GPU |", "|---|---|---|---|---|"]
    for (label, what), seconds in cpu.items():
        g = gpu.get((label, what))
        gpu_cell = f"{g * 1e3:.2f}" if g is not None else "not measured"
        ratio = f"{seconds / g:.1f}x" if g else "-"
        lines.append(f"| {label} | {what} | {seconds * 1e3:.2f} | {gpu_cell} | {ratio} |")
    note = (f"GPU: {device}." if has_gpu else
            f"**The GPU half was not measured: no usable GPU on this machine** ({device}).")
    body = "\n".join(["## CPU vs GPU backend", "", f"Batch 32, float32, medians of {args.repeats} after a "
                      f"warm-up; GPU timings synchronised. {note}", ""] + lines)
    print(body)
    if not args.no_write and not args.tiny:
        from results import write_section
        write_section("cpu-vs-gpu", body)
    return cpu, gpu


if __name__ == "__main__":
    main()
