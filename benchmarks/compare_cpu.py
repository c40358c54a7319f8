"""scratchnet against Keras/TensorFlow and PyTorch on the CPU, in one run, on the same threads.

    python benchmarks/compare_cpu.py [--reps 3] [--threads 2] [--baseline REV]

Each (contender, workload) runs in a fresh process, so that its peak RSS is its own and
no library's thread pool disturbs another's; the contenders take turns within each
repetition (interleaved, in reverse order every other repetition, so that no one always
goes first), and the table reports the median over repetitions. A peer
that is not installed is reported as skipped. Results go to benchmarks/RESULTS.md.

Workloads: the MNIST seed model (training at batch 32 and 128, inference at batch 1000
and batch-1 latency) on real MNIST digits, and the cats/dogs seed model (training and
inference at batch 32) on real photos from ../shared/data/catsdogs-128.tar resized to
150x150; plus per-kernel timings and the time to the first training step.

``scratchnet`` is the working tree this script sits in. ``--baseline REV`` adds the
contender ``scratchnet@REV``, that git revision of scratchnet (exported to a temporary
folder), timed in the same run, interleaved with the others: how a change moved speed.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from results import SHARED_DATA, write_section  # noqa: E402

CONTENDERS = ["scratchnet", "scratchnet-numpy", "pytorch", "keras"]
WORKLOADS = ["mnist_train_32", "mnist_train_128", "mnist_infer_1000", "mnist_latency_1",
             "catsdogs_train_32", "catsdogs_infer_32"]


# ----- data ----------------------------------------------------------------------------------
def mnist_images(n):
    from scratchnet.datasets import mnist
    (x, y), _ = mnist.load_data(SHARED_DATA / "mnist")
    return (x[:n, :, :, None] / 255.0).astype(np.float32), y[:n].astype(np.int64)


def catsdogs_images(n, size=150):
    """n real photos (half cats, half dogs) from the shared tar, resized to size x size."""
    from PIL import Image
    images, labels = [], []
    with tarfile.open(SHARED_DATA / "catsdogs-128.tar") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and "/train/" in m.name]
        for label, kind in enumerate(("cats", "dogs")):
            chosen = [m for m in members if f"/{kind}/" in m.name][:n // 2]
            for member in chosen:
                with Image.open(tar.extractfile(member)) as image:
                    images.append(np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR)))
                labels.append(label)
    return np.stack(images).astype(np.float32) / 255.0, np.array(labels, np.float32)


# ----- models, one builder per contender ----------------------------------------------------------
MNIST_LAYERS = [("conv", 32), ("pool",), ("conv", 64), ("pool",), ("conv", 64), ("flatten",),
                ("dense", 64, "relu"), ("dense", 10, "softmax")]
CATSDOGS_LAYERS = [("conv", 32), ("pool",), ("conv", 64), ("pool",), ("conv", 128), ("pool",),
                   ("conv", 128), ("pool",), ("flatten",), ("dense", 512, "relu"), ("dense", 1, "sigmoid")]


def build_scratchnet(spec, input_shape, backend, threads):
    import scratchnet
    from scratchnet import layers, models, optimizers
    scratchnet.set_backend(backend, threads=threads)
    model = models.Sequential([layers.Input(shape=input_shape)])
    for item in spec:
        if item[0] == "conv":
            model.add(layers.Conv2D(item[1], (3, 3), activation="relu"))
        elif item[0] == "pool":
            model.add(layers.MaxPooling2D((2, 2)))
        elif item[0] == "flatten":
            model.add(layers.Flatten())
        else:
            model.add(layers.Dense(item[1], activation=item[2]))
    binary = spec[-1][1] == 1
    model.compile(optimizer=optimizers.RMSprop(1e-4) if binary else "adam",
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy")
    return model


def build_keras(spec, input_shape, threads):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    model = keras.Sequential([keras.Input(shape=input_shape)])
    for item in spec:
        if item[0] == "conv":
            model.add(keras.layers.Conv2D(item[1], (3, 3), activation="relu"))
        elif item[0] == "pool":
            model.add(keras.layers.MaxPooling2D((2, 2)))
        elif item[0] == "flatten":
            model.add(keras.layers.Flatten())
        else:
            model.add(keras.layers.Dense(item[1], activation=item[2]))
    binary = spec[-1][1] == 1
    model.compile(optimizer=keras.optimizers.RMSprop(1e-4) if binary else "adam",
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy")
    return model


def build_torch(spec, input_shape, threads, channels_last=False):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    h, w, c = input_shape
    modules = []
    for item in spec:
        if item[0] == "conv":
            modules += [nn.Conv2d(c, item[1], 3), nn.ReLU()]
            c, h, w = item[1], h - 2, w - 2
        elif item[0] == "pool":
            modules.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        elif item[0] == "flatten":
            modules.append(nn.Flatten())
            c = c * h * w
        else:
            modules.append(nn.Linear(c, item[1]))
            c = item[1]
            if item[2] == "relu":
                modules.append(nn.ReLU())
    model = nn.Sequential(*modules)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    binary = spec[-1][1] == 1
    optimizer = torch.optim.RMSprop(model.parameters(), 1e-4) if binary else torch.optim.Adam(model.parameters(), 1e-3)
    loss = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
    return model, optimizer, loss, channels_last


# ----- timing helpers -----------------------------------------------------------------------------
def median_seconds(run, repeats):
    run()   # warm-up (JIT, caches, allocator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def worker(contender, workload, threads, train_batches=None):
    """Run one workload for one contender; print a JSON line with its figures."""
    task, kind, batch = workload.split("_")
    batch = int(batch)
    spec, shape = (MNIST_LAYERS, (28, 28, 1)) if task == "mnist" else (CATSDOGS_LAYERS, (150, 150, 3))
    steps = train_batches or (4 if task == "catsdogs" else 40)
    n = {"train": batch * steps, "infer": batch * 5, "latency": 50}[kind]
    if task == "catsdogs" and kind == "train" and contender == "scratchnet-numpy":
        n = batch * 2
    x, y = mnist_images(n) if task == "mnist" else catsdogs_images(max(n, 2))
    x, y = x[:n], y[:n]

    if contender.startswith("scratchnet"):
        model = build_scratchnet(spec, shape, "numpy" if contender.endswith("numpy") else "cpu", threads)
        train = lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # noqa: E731
        infer = lambda: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
        single = lambda: [model(x[i:i + 1]) for i in range(len(x))]  # noqa: E731
    elif contender == "keras":
        model = build_keras(spec, shape, threads)
        train = lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # noqa: E731
        infer = lambda: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
        single = lambda: [model(x[i:i + 1], training=False) for i in range(len(x))]  # noqa: E731
    else:
        import torch
        model, optimizer, loss_fn, channels_last = build_torch(spec, shape, threads,
                                                               channels_last=contender.endswith("cl"))
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
        yt = torch.from_numpy(y).float()[:, None] if task == "catsdogs" else torch.from_numpy(y)

        def train():
            model.train()
            for start in range(0, n, batch):
                optimizer.zero_grad()
                loss_fn(model(xt[start:start + batch]), yt[start:start + batch]).backward()
                optimizer.step()

        def infer():
            model.eval()
            with torch.no_grad():
                return [model(xt[start:start + batch]) for start in range(0, n, batch)]

        def single():
            model.eval()
            with torch.no_grad():
                return [model(xt[i:i + 1]) for i in range(n)]

    run = {"train": train, "infer": infer, "latency": single}[kind]
    seconds = median_seconds(run, 3)
    value = seconds / n * 1e3 if kind == "latency" else n / seconds
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"value": value, "peak_rss_mb": peak_mb}))


def kernel_timings(threads):
    """Reference vs Numba for each kernel at the shapes of the two seed models' second conv."""
    import scratchnet
    from scratchnet.kernels import numba_cpu, numpy_ref
    scratchnet.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []
    for label, x_shape, c_out in (("MNIST conv2 (32x13x13x32 -> 64)", (32, 13, 13, 32), 64),
                                  ("cats/dogs conv2 (32x74x74x32 -> 64)", (32, 74, 74, 32), 64)):
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal((3, 3, x_shape[3], c_out)).astype(np.float32)
        pads = (0, 0, 0, 0)
        for name, module in (("numpy", numpy_ref), ("numba", numba_cpu)):
            workspace = {}
            y, cache = module.conv2d_forward(x, w, (1, 1), pads, workspace)
            dy = np.ones_like(y)
            pooled, argmax = module.maxpool2d_forward(y, (2, 2), (2, 2), pads)
            timings = {
                "conv forward": median_seconds(lambda: module.conv2d_forward(x, w, (1, 1), pads, workspace), 5),
                "conv backward": median_seconds(lambda: module.conv2d_backward(dy, cache, True, workspace), 5),
                "bias+relu": median_seconds(lambda: module.bias_activation(y.copy(), w[0, 0, 0], "relu"), 5),
                "max-pool forward": median_seconds(lambda: module.maxpool2d_forward(y, (2, 2), (2, 2), pads), 5),
                "max-pool backward": median_seconds(
                    lambda: module.maxpool2d_backward(np.ones_like(pooled), argmax, y.shape, (2, 2), (2, 2), pads), 5),
            }
            for kernel, seconds in timings.items():
                rows.append((label, kernel, name, seconds))
    print(json.dumps(rows))


def first_step_seconds(cache_dir):
    """Seconds from a fresh interpreter to the end of the first MNIST training step."""
    code = ("import time; t = time.perf_counter(); import numpy as np, scratchnet; "
            "from scratchnet.train import mnist_model; m = mnist_model(); "
            "m.compile(optimizer='adam', loss='sparse_categorical_crossentropy'); "
            "m.train_on_batch(np.zeros((32, 28, 28, 1), np.float32), np.zeros(32, int)); "
            "print(time.perf_counter() - t)")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# ----- orchestration --------------------------------------------------------------------------------
def installed(contender):
    module = {"pytorch": "torch", "pytorch-cl": "torch", "keras": "tensorflow"}.get(contender)
    if module is None:
        return True
    import importlib.util
    return importlib.util.find_spec(module) is not None


def export_revision(rev, folder):
    """The tree of git revision ``rev`` of this repository, written into ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_worker(contender, workload, threads, train_batches=None, trees=None):
    """Run one (contender, workload) in a fresh process. A scratchnet contender imports
    scratchnet from its tree: this working tree, or an exported revision (``trees``)."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads))
    if contender.startswith("scratchnet"):
        name, _, rev = contender.partition("@")
        env["PYTHONPATH"] = os.pathsep.join([str(trees.get(rev, ROOT)), env.get("PYTHONPATH", "")])
        contender = name
    cmd = [sys.executable, __file__, "--worker", contender, workload, "--threads", str(threads)]
    if train_batches:
        cmd += ["--train-batches", str(train_batches)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"  {contender} {workload} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def versions():
    import importlib.metadata as md
    found = []
    for package in ("numpy", "numba", "torch", "tensorflow-cpu", "tensorflow", "keras"):
        try:
            found.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(found)


def fmt(value, kind):
    if value is None:
        return "skipped"
    return f"{value:.2f} ms" if kind == "latency" else f"{value:,.0f} img/s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (median reported)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", nargs="*", default=WORKLOADS, choices=WORKLOADS)
    parser.add_argument("--contenders", nargs="*", default=CONTENDERS + ["pytorch-cl"],
                        choices=CONTENDERS + ["pytorch-cl"])
    parser.add_argument("--worker", nargs=2, metavar=("CONTENDER", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--kernels", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print, but leave RESULTS.md alone")
    parser.add_argument("--train-batches", type=int, default=None,
                        help="batches per timed training run (default 40 for MNIST, 4 for cats/dogs); "
                             "more amortises each framework's per-fit() overhead")
    parser.add_argument("--section", default="cpu-comparison", help="RESULTS.md section to write")
    parser.add_argument("--quick", action="store_true", help="the throughput table only: no RSS table, "
                        "kernel timings or time-to-first-step")
    parser.add_argument("--fresh-copy", action="store_true",
                        help="time scratchnet from an export of HEAD (as the baseline is) instead of this tree")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also time scratchnet as of git revision REV (e.g. main~3), in the same run")
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.threads, args.train_batches)
    if args.kernels:
        return kernel_timings(args.threads)

    import tempfile
    trees = {}
    origin = ""
    if args.fresh_copy:   # this tree's last commit, exported like the baseline: same kind of copy, cold caches
        trees[""] = export_revision("HEAD", Path(tempfile.mkdtemp(prefix="scratchnet-head-")))
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        origin = f" `scratchnet` is commit {head}, exported as the baseline is."
    if args.baseline:
        trees[args.baseline] = export_revision(args.baseline, Path(tempfile.mkdtemp(prefix="scratchnet-baseline-")))
        args.contenders = args.contenders[:1] + [f"scratchnet@{args.baseline}"] + args.contenders[1:]
    results = {}
    for rep in range(args.reps):
        for workload in args.workloads:
            # odd repetitions run the contenders in reverse order, so that no one is always first
            for contender in (args.contenders if rep % 2 == 0 else args.contenders[::-1]):
                if contender == "pytorch-cl" and not workload.startswith("catsdogs"):
                    continue
                if not installed(contender):
                    continue
                print(f"rep {rep + 1}/{args.reps}: {contender} {workload}", flush=True)
                result = run_worker(contender, workload, args.threads, args.train_batches, trees)
                if result is not None:
                    results.setdefault((contender, workload), []).append(result)
    median = {key: (float(np.median([r["value"] for r in runs])), float(np.median([r["peak_rss_mb"] for r in runs])))
              for key, runs in results.items()}

    baseline = f"scratchnet@{args.baseline}" if args.baseline else None
    header = ("| workload | " + " | ".join(args.contenders) + " | vs Keras | vs PyTorch |"
              + (f" vs {baseline} |" if baseline else ""))
    lines = [header, "|" + "---|" * (len(args.contenders) + 3 + bool(baseline))]
    for workload in args.workloads:
        kind = workload.split("_")[1]
        cells = [fmt(median.get((c, workload), (None,))[0], kind) for c in args.contenders]
        ours = median.get(("scratchnet", workload), (None,))[0]

        def ratio(peer):
            theirs = median.get((peer, workload), (None,))[0]
            if ours is None or theirs is None:
                return "-"
            return f"{(theirs / ours if kind == 'latency' else ours / theirs):.2f}x"
        best_torch = max(("pytorch", "pytorch-cl"), key=lambda p: median.get((p, workload), (0,))[0]
                         if kind != "latency" else -median.get((p, workload), (1e9,))[0])
        lines.append(f"| {workload} | " + " | ".join(cells) + f" | {ratio('keras')} | {ratio(best_torch)} |"
                     + (f" {ratio(baseline)} |" if baseline else ""))
    rss = ["", "Peak RSS of each process (MB; each workload runs in its own process):", "",
           "| workload | " + " | ".join(args.contenders) + " |", "|" + "---|" * (len(args.contenders) + 1)]
    for workload in args.workloads:
        rss.append(f"| {workload} | " + " | ".join(
            f"{median[(c, workload)][1]:,.0f}" if (c, workload) in median else "skipped"
            for c in args.contenders) + " |")

    if args.quick:
        body = "\n".join([f"## CPU comparison, {args.train_batches or 'default'} batches per timed training run "
                          f"({args.threads} threads each)", "", f"Medians of {args.reps} interleaved repetition(s); "
                          f"ratios as in the main comparison.{origin} Versions: {versions()}.", ""] + lines)
        print(body)
        if not args.no_write:
            write_section(args.section, body)
        return
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, __file__, "--kernels", "--threads", str(args.threads)], env=env,
                         capture_output=True, text=True, check=True)
    kernel_rows = json.loads(out.stdout.strip().splitlines()[-1])
    table = {}
    for label, kernel, name, seconds in kernel_rows:
        table.setdefault((label, kernel), {})[name] = seconds
    kernels = ["", "Per-kernel medians (ms), NumPy reference vs Numba, float32, batch 32:", "",
               "| layer | kernel | numpy | numba | speed-up |", "|---|---|---|---|---|"]
    for (label, kernel), t in table.items():
        kernels.append(f"| {label} | {kernel} | {t['numpy'] * 1e3:.2f} | {t['numba'] * 1e3:.2f} | "
                       f"{t['numpy'] / t['numba']:.1f}x |")

    with tempfile.TemporaryDirectory() as cache:
        cold = first_step_seconds(cache)
        warm = first_step_seconds(cache)
    jit = ["", f"Time from a fresh interpreter to the end of the first MNIST training step: "
               f"cold (empty Numba cache) {cold:.1f} s, warm (cached kernels) {warm:.1f} s."]

    body = "\n".join([f"## CPU comparison: scratchnet vs Keras and PyTorch ({args.threads} threads each)", "",
                      f"Medians of {args.reps} interleaved repetitions; every (contender, workload) in a "
                      f"fresh process. `scratchnet` is the Numba backend, `scratchnet-numpy` the NumPy "
                      f"reference; `pytorch-cl` is PyTorch with channels_last (cats/dogs only)"
                      + (f"; `{baseline}` is scratchnet as of that git revision" if baseline else "")
                      + f". Ratios "
                      f"are scratchnet's speed over the peer's (above 1 means scratchnet is faster); "
                      f"against PyTorch the better of its two layouts. Versions: {versions()}.", ""]
                     + lines + rss + kernels + jit)
    print(body)
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
