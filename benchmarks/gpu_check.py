"""The pieces of benchmarks/gpu_check.sh that need Python: is there a GPU to check, do the
GPU backend's training runs follow the CPU backend's, and does a training step run without
the host waiting for the device.

    python benchmarks/gpu_check.py probe                       # 'ok: <GPU>' or 'skip: <why>'
    python benchmarks/gpu_check.py compare CPU_RUN GPU_RUN OUT.md
    python benchmarks/gpu_check.py no-sync OUT.md

``no-sync`` gives the device 300 ms of other work before each phase of a training step and
checks, with a CUDA event, whether that work was done when the host finished issuing the
phase: only a phase that waited for the device finds it done (only the loss, read once a step,
should).
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def probe():
    """('ok', GPU name) where CuPy sees a GPU and scratchnet's GPU backend starts; ('skip', why) otherwise."""
    try:
        import cupy
    except ImportError as error:
        return "skip", f"no CuPy ({error})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:          # CuPy without a driver or a device raises its own CUDA errors
        return "skip", f"CuPy finds no usable GPU ({type(error).__name__}: {error})"
    if count < 1:
        return "skip", "CuPy finds no GPU"
    try:
        import scratchnet
        scratchnet.set_backend("gpu")
        scratchnet.set_backend("cpu")
    except Exception as error:
        return "skip", f"scratchnet's GPU backend does not start: {type(error).__name__}: {error}"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return "ok", name.decode() if isinstance(name, bytes) else str(name)


def _record(run):
    with open(Path(run) / "history.json") as f:
        return json.load(f)


def compare(cpu_run, gpu_run, out):
    """A table of the two runs' logs epoch by epoch, and whether they agree: the same
    settings and data, so the curves should match to float32 rounding and the order of
    the GPU's reductions (loss within 2% and accuracy within 2 points per epoch)."""
    cpu, gpu = _record(cpu_run)["history"], _record(gpu_run)["history"]
    lines = ["| log | epoch | cpu | gpu |", "|---|---|---|---|"]
    agree = set(cpu) == set(gpu)
    for key in sorted(cpu):
        for epoch, (a, b) in enumerate(zip(cpu[key], gpu.get(key, []))):
            lines.append(f"| {key} | {epoch + 1} | {a:.4f} | {b:.4f} |")
            limit = 0.02 * abs(a) + 1e-3 if "loss" in key else 0.02
            agree &= abs(a - b) <= limit
    verdict = "AGREE" if agree else "DIFFER"
    Path(out).write_text(f"{verdict}: {cpu_run} against {gpu_run}\n\n" + "\n".join(lines) + "\n")
    print(verdict, out)
    return agree


def _busy(cupy, milliseconds):
    """Queue about ``milliseconds`` of matrix products on the current stream (sized by timing one)."""
    a = cupy.ones((4096, 4096), np.float32)
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    a @ a
    stop.record()
    stop.synchronize()
    one = max(cupy.cuda.get_elapsed_time(start, stop), 1e-3)
    for _ in range(int(np.ceil(milliseconds / one))):
        a @ a


def _waited(cupy, issue):
    """(issue's result, whether the host waited for the device while issuing, host ms): the
    device is first given 300 ms of other work; a call that waits for the device finds it done."""
    _busy(cupy, 300)
    blocker = cupy.cuda.Event()
    blocker.record()
    begin = time.perf_counter()
    result = issue()
    host = (time.perf_counter() - begin) * 1000
    waited = blocker.done
    cupy.cuda.Device().synchronize()
    return result, waited, host


def no_sync(out):
    """Whether each phase of a training step (forward, loss, backward, update) makes the host
    wait for the device: only the loss, which a step reads once, should."""
    import cupy

    import scratchnet
    from scratchnet import layers, models
    from scratchnet.execute import run_backward
    scratchnet.set_backend("gpu")
    model = models.Sequential([layers.Input((150, 150, 3)), layers.Conv2D(32, 3, activation="relu"),
                               layers.MaxPooling2D(2), layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                               layers.BatchNormalization(), layers.Flatten(), layers.Dropout(0.5),
                               layers.Dense(1, activation="sigmoid")])
    model.compile("rmsprop", "binary_crossentropy")
    rng = np.random.default_rng(0)
    x = cupy.asarray(rng.random((32, 150, 150, 3), np.float32))
    y = cupy.asarray(rng.integers(0, 2, (32, 1)).astype(np.float32))
    for _ in range(3):                       # compile and warm up
        model.train_step((x, y))
    cupy.cuda.Device().synchronize()
    state = model.compile_state()
    params = state.trained_params()
    rows = []
    (out, tape), waited, host = _waited(cupy, lambda: model.run_graph(x, training=True, head=True))
    rows.append(("forward", waited, host))
    (loss, grad), waited, host = _waited(cupy, lambda: model.loss.value_and_grad(y, out, from_logits=state.logits))
    rows.append(("loss (read by the host)", waited, host))
    (_, grads), waited, host = _waited(cupy, lambda: run_backward(model.graph, tape, [grad]))
    rows.append(("backward", waited, host))
    gradients = state.gradients_in_order(grads, params)
    _, waited, host = _waited(cupy, lambda: model.optimizer.apply_gradients(params, gradients, model.backend,
                                                                               reduced=True))
    rows.append(("update (RMSprop)", waited, host))
    ok = [waited for name, waited, _ in rows] == [False, True, False, False]
    text = (f"One training step of the 2-conv model on 32 images at 150x150, {probe()[1]}; before each phase the "
            f"device was given 300 ms of other work, so a phase that waits for the device finds it done.\n\n"
            f"| phase | host waited for the device | host ms |\n|---|---|---|\n" +
            "".join(f"| {name} | {'yes' if waited else 'no'} | {host:.2f} |\n" for name, waited, host in rows) +
            f"\n{'AS EXPECTED: only the loss read waits' if ok else 'UNEXPECTED: see the table'}\n")
    Path(out).write_text(text)
    print(text)
    scratchnet.set_backend("cpu")
    return ok


def main(argv):
    if not argv:
        raise SystemExit(__doc__)
    command, args = argv[0], argv[1:]
    if command == "probe":
        status, detail = probe()
        print(f"{status}: {detail}")
        return 0
    if command == "compare":
        return 0 if compare(*args) else 1
    if command == "no-sync":
        return 0 if no_sync(*args) else 1
    raise SystemExit(f"unknown command {command!r}; expected probe, compare or no-sync")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
