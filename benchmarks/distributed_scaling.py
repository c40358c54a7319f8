"""Data-parallel scaling: measured on this machine at 1 and 2 ranks, modelled for K machines.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/distributed_scaling.py

Measured: the seed MNIST and cats/dogs models (150x150) and ResNet50 (224x224), 32 samples
per rank, on random arrays of their input shape (the step, not the data loading), each rank
with one thread: throughput at 1 and 2 ranks under mpiexec, the share of rank 0's step time
spent in the gradient Allreduce (waiting for the slower rank included), and one process with
both cores (2 threads). Each figure is the mean over a fixed number of steps after fixed
warm-up steps, rule fixed before the first run.

Modelled: a job of K machines like this one (2 cores each), 32 samples per machine. A step
computes for t_c (the step time of one process with 2 threads, measured above), then sums
4 bytes per trainable weight with a ring Allreduce, which scratchnet does not overlap with
the backward pass:

    T_allreduce(K) = 2 (K - 1) / K * bytes / bandwidth + 2 (K - 1) * latency

at 10, 25 and 100 Gbit/s, with a latency of 50 us per message (an assumption: MPI over
Ethernet through one switch). Efficiency E(K) = t_c / (t_c + T_allreduce(K)); speedup
K * E(K). The bandwidth term stays below 2 * bytes / bandwidth however many machines there
are; the latency term grows with K and caps the speedup at t_c / (2 * latency). Writes
section ``distributed-scaling`` of RESULTS.md.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH = 32
MEASURED = {"mnist": {"warmup": 5, "steps": 60}, "catsdogs": {"warmup": 2, "steps": 10},
            "ResNet50": {"warmup": 1, "steps": 2}}
LABELS = {"mnist": "mnist (seed)", "catsdogs": "catsdogs (seed, 150x150)", "ResNet50": "ResNet50 (224x224)"}
BANDWIDTHS_GBIT = (10, 25, 100)
LATENCY = 50e-6
LARGEST = 4096          # the modelled jobs go up to this many machines


def build(name):
    from scratchnet import optimizers
    from scratchnet.train import catsdogs_model, mnist_model
    if name == "mnist":
        model, loss, shape = mnist_model(), "sparse_categorical_crossentropy", (28, 28, 1)
        optimizer = optimizers.Adam(1e-3)
    elif name == "catsdogs":
        model, loss, shape = catsdogs_model(150), "binary_crossentropy", (150, 150, 3)
        optimizer = optimizers.RMSprop(1e-4)
    else:   # ResNet50
        from scratchnet.applications import ResNet50
        model, loss, shape = ResNet50(weights=None), "sparse_categorical_crossentropy", (224, 224, 3)
        optimizer = optimizers.SGD(0.01)
    return model, loss, shape, optimizer


def trainable_weights(model):
    return sum(layer.params[name].size for layer, name in model.weight_pairs(trainable=True))


class StepTimer:
    """Wall time of the steps after the warm-up ones, and the Allreduce time within them."""

    def __init__(self, warmup, communicator):
        from scratchnet import callbacks

        class Hook(callbacks.Callback):
            def on_train_batch_begin(hook, batch, logs=None):
                if batch == warmup:
                    self.started = time.perf_counter()
                    self.sums_before = communicator.seconds_in_sums if communicator else 0.0

            def on_train_end(hook, logs=None):
                self.seconds = time.perf_counter() - self.started
                self.sums = (communicator.seconds_in_sums if communicator else 0.0) - self.sums_before
        self.hook = Hook()


def worker(name, result_path, distributed_run):
    """One rank (or the one process) of a measurement: fit on random arrays, time the steps."""
    import scratchnet
    from scratchnet import distributed
    scratchnet.set_random_seed(0)
    model, loss, shape, optimizer = build(name)
    communicator = None
    if distributed_run:
        communicator = distributed.init()
        optimizer = distributed.DistributedOptimizer(optimizer, communicator)
    model.compile(optimizer=optimizer, loss=loss)
    plan = MEASURED[name]
    ranks = communicator.size if communicator else 1
    steps = plan["warmup"] + plan["steps"]
    rng = np.random.default_rng(0)
    x = rng.random((steps * BATCH * ranks,) + shape, dtype=np.float32)
    y = rng.integers(0, 2 if name == "catsdogs" else 10, len(x))
    timer = StepTimer(plan["warmup"], communicator)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[timer.hook])
    if communicator is None or communicator.is_root:
        result = {"seconds": timer.seconds, "steps": plan["steps"], "samples": plan["steps"] * BATCH * ranks,
                  "allreduce_seconds": timer.sums, "weights": trainable_weights(model)}
        Path(result_path).write_text(json.dumps(result))


def launch(name, ranks, threads):
    """Run ``worker`` in a fresh process (under mpiexec for ranks > 1); its result."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        command = [sys.executable, __file__, "--worker", name, str(out)]
        if ranks > 1:
            mpiexec = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                    os.environ["PATH"]]))
            command = [mpiexec, "-n", str(ranks)] + command + ["--distributed"]
        subprocess.run(command, check=True, env=env)
        return json.loads(out.read_text())


def allreduce_seconds(nbytes, machines, gbit):
    if machines == 1:
        return 0.0
    return 2 * (machines - 1) / machines * nbytes / (gbit * 1e9 / 8) + 2 * (machines - 1) * LATENCY


def samples_per_second(value):
    return f"{value:,.0f} samples/s" if value >= 100 else f"{value:.2f} samples/s"


def first_below(efficiencies, level):
    below = [k for k, e in efficiencies if e < level]
    return f"{below[0]}" if below else f"none up to {LARGEST}"


def report(measured, modelled):
    lines = ["## Data-parallel training: scaling measured on one machine, modelled for K machines", "",
             f"Measured on this machine: {BATCH} samples per rank, random arrays of the model's input shape (the "
             "step, without data loading), the mean over a fixed number of steps after fixed warm-up steps. "
             "A rank has one thread. The allreduce share is the part of rank 0's step time spent in the gradient "
             "Allreduce, waiting for the slower rank included.", "",
             "| model | trainable weights | gradient bytes per step | 1 rank, 1 thread | 2 ranks, 1 thread each | "
             "speed-up | allreduce share at 2 ranks | 1 process, 2 threads |",
             "|---|---|---|---|---|---|---|---|"]
    for name, runs in measured.items():
        one, two, both = runs["1x1"], runs["2x1"], runs["1x2"]
        rate = {key: r["samples"] / r["seconds"] for key, r in runs.items()}
        lines.append(f"| {LABELS[name]} | {one['weights']:,} | {4 * one['weights'] / 1e6:.2f} MB | "
                     f"{samples_per_second(rate['1x1'])} | {samples_per_second(rate['2x1'])} | "
                     f"{rate['2x1'] / rate['1x1']:.2f}x | "
                     f"{100 * two['allreduce_seconds'] / two['seconds']:.1f}% "
                     f"({1000 * two['allreduce_seconds'] / two['steps']:.2f} ms per step) | "
                     f"{samples_per_second(rate['1x2'])} |")
    lines += ["", f"Modelled: K machines like this one, {BATCH} samples per machine per step, the step's compute "
              f"time t_c that of one process with 2 threads above; a ring Allreduce of the float32 gradients after the backward "
              f"pass (not overlapped), 2 (K - 1) / K x bytes / bandwidth + 2 (K - 1) x {LATENCY * 1e6:.0f} us of "
              f"latency (assumed). Efficiency = t_c / (t_c + allreduce); speed-up = K x efficiency.", "",
              "| model | gradient bytes | t_c per step | bandwidth | allreduce at K = 2 / 8 / 128 | "
              "efficiency at K = 2 / 8 / 32 / 128 | efficiency below 90% from K = | below 50% from K = | "
              "speed-up limit t_c / (2 x latency) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, (seconds, weights) in modelled.items():
        nbytes = 4 * weights
        for gbit in BANDWIDTHS_GBIT:
            efficiency = [(k, seconds / (seconds + allreduce_seconds(nbytes, k, gbit))) for k in range(2, LARGEST + 1)]
            at = dict(efficiency)
            lines.append(
                f"| {LABELS[name]} | {nbytes / 1e6:.1f} MB | {1000 * seconds:.0f} ms | {gbit} Gbit/s | "
                + " / ".join(f"{1000 * allreduce_seconds(nbytes, k, gbit):.1f}" for k in (2, 8, 128)) + " ms | "
                + " / ".join(f"{100 * at[k]:.0f}%" for k in (2, 8, 32, 128)) + " | "
                f"{first_below(efficiency, 0.9)} | {first_below(efficiency, 0.5)} | "
                f"{seconds / (2 * LATENCY):,.0f}x |")
    lines += ["", "Where scaling stops: the bandwidth term never exceeds 2 x bytes / bandwidth, so a model whose "
              "gradients take less time to send than its step takes to compute keeps most of its efficiency as K "
              f"grows; the latency term grows by {2 * LATENCY * 1e6:.0f} us per machine and ends it (the last two "
              "columns). A machine that computes a step 50x faster (a GPU) divides t_c by 50 and moves both "
              "thresholds down by about as much; more samples per machine raise t_c and move them up."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "RESULT"), help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.distributed)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from results import write_section
    measured = {}
    for name in MEASURED:
        measured[name] = {"1x1": launch(name, 1, 1), "2x1": launch(name, 2, 1), "1x2": launch(name, 1, 2)}
        print(name, {key: f"{r['samples'] / r['seconds']:.0f} samples/s" for key, r in measured[name].items()})
    modelled = {name: (runs["1x2"]["seconds"] / runs["1x2"]["steps"], runs["1x2"]["weights"])
                for name, runs in measured.items()}
    write_section("distributed-scaling", report(measured, modelled))


if __name__ == "__main__":
    main()
