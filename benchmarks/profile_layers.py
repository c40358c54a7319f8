"""Where scratchnet's time goes: per layer and per kind of work, on the workloads of compare_cpu.

    python benchmarks/profile_layers.py [--workloads ...] [--threads 2] [--section NAME]

Each workload runs as compare_cpu runs it (one warm-up epoch or predict call, then one
timed), with timers around every layer's forward and backward call, every backend kernel,
the im2col/col2im launchers inside the convolution, the loss and the optimizer. A layer's
time splits into

- GEMM: the convolution kernels minus their im2col/col2im (and, fused with max-pooling,
  minus the pooling); for Dense layers, the layer's time outside kernels (its matrix
  products, and the little Python around them);
- im2col/col2im: unfolding images into GEMM rows and folding gradients back;
- pooling: the max/average pooling kernels;
- elementwise: bias + activation, batch normalization, dropout;
- depthwise: the depthwise convolution kernels;
- Python: the layer's time outside kernels (conversions, reshapes, dispatch);

and the step's rest into loss, optimizer (its update kernels) and "graph + loop" (walking
the graph, batch slicing and shuffling, metrics, callbacks: the step's time outside all of
the above). Timers cost about a microsecond per call, which lands in the Python columns.
Only the calling thread is timed: where a layer splits its batch into two lanes, the other
lane's work shows as the caller waiting for it, in GEMM. A Conv2D fused with its
MaxPooling2D shows as one part (ConvPool).
Each workload runs in a fresh process, on the Numba CPU backend.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import compare_cpu  # noqa: E402
from results import write_section  # noqa: E402

CATEGORIES = ["GEMM", "im2col/col2im", "pooling", "elementwise", "depthwise", "Python"]
KERNEL_CATEGORY = {"conv2d_forward": "GEMM", "conv2d_backward": "GEMM", "matmul": "GEMM",
                   "conv2d_maxpool_forward": "GEMM", "conv2d_maxpool_backward": "GEMM",
                   "maxpool2d_forward": "pooling", "maxpool2d_backward": "pooling",
                   "avgpool2d_forward": "pooling", "avgpool2d_backward": "pooling",
                   "depthwise_conv2d_forward": "depthwise", "depthwise_conv2d_backward": "depthwise"}


class Profiler:
    """Inclusive timers keyed by (layer, category); the innermost open layer gets the kernel time."""

    def __init__(self):
        self.seconds = defaultdict(float)        # (owner, category) -> seconds, exclusive
        self.stack = []                          # [owner, seconds spent in timed children]

    def timed(self, function, owner=None, category=None):
        profiler, main = self, threading.main_thread()

        def run(*args, **kwargs):
            if threading.current_thread() is not main:    # a lane's half: its time is in the caller's wait
                return function(*args, **kwargs)
            frame_owner = owner if owner is not None else (profiler.stack[-1][0] if profiler.stack else "?")
            profiler.stack.append([frame_owner, 0.0])
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                total = time.perf_counter() - start
                _, children = profiler.stack.pop()
                profiler.seconds[(frame_owner, category)] += total - children
                if profiler.stack:
                    profiler.stack[-1][1] += total
        return run


def instrument(model, profiler):
    """Wrap the model's layers, its backend's kernels, the im2col launchers, loss and optimizer."""
    from scratchnet import graph
    try:
        from scratchnet.kernels import numba_conv as launchers    # the convolution's launchers
    except ImportError:
        from scratchnet.kernels import numba_cpu as launchers     # an older revision: all in numba_cpu
    backend = model.backend
    for name in ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
                 "bias_activation", "bias_activation_backward", "adam_update", "rmsprop_update",
                 "dropout_mask", "avgpool2d_forward", "avgpool2d_backward", "depthwise_conv2d_forward",
                 "depthwise_conv2d_backward", "batchnorm_forward", "batchnorm_backward", "batchnorm_inference",
                 "conv2d_maxpool_forward", "conv2d_maxpool_backward", "matmul"):
        if getattr(backend, name, None) is not None:     # (an older revision may lack a kernel)
            setattr(backend, name, profiler.timed(getattr(backend, name),
                                                  category=KERNEL_CATEGORY.get(name, "elementwise")))
    launchers._launch_im2col = profiler.timed(launchers._launch_im2col, category="im2col/col2im")
    launchers._launch_col2im = profiler.timed(launchers._launch_col2im, category="im2col/col2im")
    fused = []
    band_launchers = {"_launch_im2col_bands": "im2col/col2im", "_launch_col2im_bands": "im2col/col2im",
                      "_launch_pool_bands": "pooling", "_launch_unpool_bands": "pooling",
                      "_pooled_bias_gradient": "pooling"}
    if hasattr(launchers, "_launch_pool_bands"):
        for name, category in band_launchers.items():
            setattr(launchers, name, profiler.timed(getattr(launchers, name), category=category))
    elif hasattr(launchers, "_launch_conv_pool"):      # an older revision: one launcher, told what to run
        launch = launchers._launch_conv_pool
        by_step = {what: profiler.timed(launch, category="im2col/col2im" if what in ("im2col", "col2im")
                                        else "pooling") for what in ("im2col", "col2im", "pool", "unpool", "bias")}
        launchers._launch_conv_pool = lambda what, *args: by_step[what](what, *args)
    if hasattr(launchers, "_launch_pool_bands") or hasattr(launchers, "_launch_conv_pool"):
        fused = [entry[0].layer for entry in model._graph.fused_plan() if isinstance(entry[0], graph.FusedNode)]
    for layer in list(model.layers) + fused:
        label = f"{layer.name} ({type(layer).__name__})"
        rest = "GEMM" if type(layer).__name__ in ("Dense", "ConvPool") else "Python"
        layer.forward = profiler.timed(layer.forward, owner=label, category=rest)
        layer.backward = profiler.timed(layer.backward, owner=label, category=rest)
    model.loss.value_and_grad = profiler.timed(model.loss.value_and_grad, owner="loss", category="Python")
    model.optimizer.apply_gradients = profiler.timed(model.optimizer.apply_gradients, owner="optimizer",
                                                     category="Python")


def worker(workload, threads):
    """Profile one workload; print {layer: {category: ms per batch}} and the batch time as JSON."""
    task, kind, batch = workload.split("_")
    batch = int(batch)
    spec, shape = compare_cpu.TASKS[task]
    x, y = compare_cpu.workload_data(task, kind)
    model = compare_cpu.build_scratchnet(spec, shape, "cpu", threads)
    if kind == "train":
        run = lambda: model.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0)  # noqa: E731
    else:
        run = lambda: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
    run()                                  # warm-up, uninstrumented
    profiler = Profiler()
    instrument(model, profiler)
    start = time.perf_counter()
    run()
    total = time.perf_counter() - start
    batches = -(-len(x) // batch)
    table = defaultdict(dict)
    for (owner, category), seconds in profiler.seconds.items():
        if owner in ("loss", "optimizer"):
            category = "elementwise" if category != "Python" or owner == "optimizer" else category
        table[owner][category] = table[owner].get(category, 0.0) + seconds / batches * 1e3
    accounted = sum(profiler.seconds.values())
    table["graph + loop"]["Python"] = (total - accounted) / batches * 1e3
    print(json.dumps({"batch_ms": total / batches * 1e3, "layers": table}))


def render(workload, result):
    layers = result["layers"]
    lines = [f"### {workload}: {result['batch_ms']:.2f} ms per batch", "",
             "| part | " + " | ".join(CATEGORIES) + " | total |", "|" + "---|" * (len(CATEGORIES) + 2)]
    sums = defaultdict(float)
    for owner, cells in layers.items():
        for category, ms in cells.items():
            sums[category] += ms
        lines.append(f"| {owner} | " + " | ".join(f"{cells[c]:.2f}" if c in cells else "" for c in CATEGORIES)
                     + f" | {sum(cells.values()):.2f} |")
    total = sum(sums.values())
    lines.append("| **share** | " + " | ".join(f"**{sums[c] / total:.0%}**" for c in CATEGORIES) + " | |")
    return lines, {c: sums[c] / total for c in CATEGORIES}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="*", default=[w for w in compare_cpu.WORKLOADS if "latency" not in w],
                        choices=compare_cpu.WORKLOADS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--section", default="profile", help="RESULTS.md section to write")
    parser.add_argument("--no-write", action="store_true", help="print, but leave RESULTS.md alone")
    parser.add_argument("--revision", default=None, metavar="REV",
                        help="profile scratchnet as of git revision REV (exported to a temporary folder)")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.threads)
    tree, origin = ROOT, ""
    if args.revision:
        import tempfile
        tree = compare_cpu.export_revision(args.revision, Path(tempfile.mkdtemp(prefix="scratchnet-profile-")))
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.revision], capture_output=True,
                                text=True, check=True).stdout.strip()
        origin = f" scratchnet as of commit {commit} ({args.revision})."
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]))
    tables, shares = [], {}
    for workload in args.workloads:
        print(f"profiling {workload}", flush=True)
        out = subprocess.run([sys.executable, __file__, "--worker", workload, "--threads", str(args.threads)],
                             env=env, capture_output=True, text=True, check=True)
        lines, shares[workload] = render(workload, json.loads(out.stdout.strip().splitlines()[-1]))
        tables += [""] + lines
    summary = ["| workload | " + " | ".join(CATEGORIES) + " |", "|" + "---|" * (len(CATEGORIES) + 1)]
    summary += [f"| {w} | " + " | ".join(f"{s[c]:.0%}" for c in CATEGORIES) + " |" for w, s in shares.items()]
    body = "\n".join([f"## Where scratchnet's time goes ({args.threads} threads)", "",
                      "Milliseconds per batch of one epoch (training) or one predict call (inference), by layer and "
                      "kind of work, measured by timers around layers and kernels (see "
                      "benchmarks/profile_layers.py for what each column holds)." + origin + " Shares of the whole step:", ""]
                     + summary + tables)
    print(body)
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
