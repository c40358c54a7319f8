"""scratchnet against Keras/TensorFlow and PyTorch on the CPU: whole epochs, as users run them.

    python benchmarks/compare_cpu.py [--reps 2] [--epochs 3] [--threads 2] [--baseline REV]

What is timed is what a user runs: whole shuffled epochs of real data through ``fit()``
(12,800 MNIST digits; 320 cats/dogs photos at 150x150) and whole ``predict()`` calls, each
epoch or call timed on its own after one warm-up epoch or call (JIT compilation, tracing,
allocator), the median over epochs reported. PyTorch has no ``fit()``; its loop is the
fastest a user writes: a ``torch.randperm`` order per epoch, batches gathered by index.
Each peer runs in its best layout: PyTorch both channels-first (``pytorch``) and
channels_last (``pytorch-cl``), the better of the two counting.

Each (contender, workload) runs in a fresh process, so that its peak RSS is its own and no
library's thread pool disturbs another's; contenders take turns within each repetition,
in reverse order every other repetition, and the table reports the median over
repetitions. The same run measures NumPy's sgemm rate on this machine (a 2048^3 float32
product on the same threads) and reports each workload's GEMM rate (multiply-adds of its
convolutions and dense layers, times two, per second) as a share of it. A peer that is not
installed is reported as skipped. Results go to benchmarks/RESULTS.md.

Workloads: the MNIST seed model (training at batch 32 and 128, inference at batch 1000,
batch-1 latency), the cats/dogs seed model (training and inference at batch 32), a
MobileNet-style model on the same photos (batch normalization, depthwise convolutions,
global average pooling; training and inference at batch 32) and a small U-Net trained on
960 synthetic 64x64 images with a label per pixel (skip connections, transposed
convolutions; batch 32; see unet_workload.py).

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
from unet_workload import UNET, UNET_IMAGES, keras_api_unet, torch_unet, unet_data, unet_flops  # noqa: E402

CONTENDERS = ["scratchnet", "pytorch", "pytorch-cl", "keras"]
OPTIONAL_CONTENDERS = ["scratchnet-numpy"]
WORKLOADS = ["mnist_train_32", "mnist_train_128", "mnist_infer_1000", "mnist_latency_1",
             "catsdogs_train_32", "catsdogs_infer_32", "mobile_train_32", "mobile_infer_32", "unet_train_32"]
MNIST_IMAGES, PHOTOS, LATENCY_CALLS = 12_800, 320, 200


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
# ("conv", filters, kernel, stride, padding, activation, bias), ("dwconv", kernel, stride, padding),
# ("bn",), ("relu",), ("pool",), ("gap",), ("flatten",), ("dense", units, activation)
def conv(filters, kernel=3, stride=1, padding="valid", activation="relu", bias=True):
    return ("conv", filters, kernel, stride, padding, activation, bias)


MNIST_LAYERS = [conv(32), ("pool",), conv(64), ("pool",), conv(64), ("flatten",),
                ("dense", 64, "relu"), ("dense", 10, "softmax")]
CATSDOGS_LAYERS = [conv(32), ("pool",), conv(64), ("pool",), conv(128), ("pool",),
                   conv(128), ("pool",), ("flatten",), ("dense", 512, "relu"), ("dense", 1, "sigmoid")]


def _mobile_layers():
    """MobileNet v1 style: a strided conv, then depthwise-separable blocks, each conv followed by
    batch normalization and ReLU, global average pooling and a sigmoid unit."""
    spec = [conv(32, 3, 2, "same", None, False), ("bn",), ("relu",)]
    for filters, stride in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1)):
        spec += [("dwconv", 3, stride, "same"), ("bn",), ("relu",),
                 conv(filters, 1, 1, "same", None, False), ("bn",), ("relu",)]
    return spec + [("gap",), ("dense", 1, "sigmoid")]


MOBILE_LAYERS = _mobile_layers()
TASKS = {"mnist": (MNIST_LAYERS, (28, 28, 1)), "catsdogs": (CATSDOGS_LAYERS, (150, 150, 3)),
         "mobile": (MOBILE_LAYERS, (150, 150, 3)), "unet": (UNET, UNET["input"])}   # the U-Net is a graph


def out_size(size, kernel, stride, padding):
    return -(-size // stride) if padding == "same" else (size - kernel) // stride + 1


def flops_per_image(spec, shape):
    """(forward, training) floating-point operations per image: two per multiply-add of the
    convolutions and dense layers; training adds the two backward products (gradients of the
    input and of the weights), except the input gradient of the first layer, which no one needs."""
    h, w, c = shape
    forward, first = 0, None
    for item in spec:
        if item[0] in ("conv", "dwconv"):
            k, s, pad = (item[2], item[3], item[4]) if item[0] == "conv" else item[1:4]
            h, w = out_size(h, k, s, pad), out_size(w, k, s, pad)
            out_c = item[1] if item[0] == "conv" else c
            layer = 2 * h * w * k * k * (c if item[0] == "conv" else 1) * out_c
            c = out_c
        elif item[0] == "pool":
            h, w, layer = h // 2, w // 2, 0
        elif item[0] == "gap":
            h = w = 1
            layer = 0
        elif item[0] == "flatten":
            c, h, w, layer = c * h * w, 1, 1, 0
        elif item[0] == "dense":
            layer = 2 * c * item[1]
            c = item[1]
        else:
            layer = 0
        if layer and first is None:
            first = layer
        forward += layer
    return forward, 3 * forward - first


def task_flops(task):
    """(forward, training) floating-point operations per image of a task's model."""
    return unet_flops() if task == "unet" else flops_per_image(*TASKS[task])


def build_scratchnet(spec, input_shape, backend, threads):
    import scratchnet
    from scratchnet import layers, models, optimizers
    scratchnet.set_backend(backend, threads=threads)
    if spec is UNET:
        return _compile(keras_api_unet(layers, models.Model, spec), spec, optimizers)
    model = models.Sequential([layers.Input(shape=input_shape)])
    for item in spec:
        model.add(_layer(layers, item))
    return _compile(model, spec, optimizers)


def build_keras(spec, input_shape, threads):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    if spec is UNET:
        return _compile(keras_api_unet(keras.layers, keras.Model, spec), spec, keras.optimizers)
    model = keras.Sequential([keras.Input(shape=input_shape)])
    for item in spec:
        model.add(_layer(keras.layers, item))
    return _compile(model, spec, keras.optimizers)


def _layer(layers, item):
    """The Keras-API layer for one spec item (scratchnet and Keras spell them alike)."""
    kind = item[0]
    if kind == "conv":
        _, filters, k, s, pad, activation, bias = item
        return layers.Conv2D(filters, (k, k), strides=s, padding=pad, activation=activation, use_bias=bias)
    if kind == "dwconv":
        return layers.DepthwiseConv2D((item[1], item[1]), strides=item[2], padding=item[3], use_bias=False)
    return {"bn": lambda: layers.BatchNormalization(), "relu": lambda: layers.ReLU(),
            "pool": lambda: layers.MaxPooling2D((2, 2)), "gap": lambda: layers.GlobalAveragePooling2D(),
            "flatten": lambda: layers.Flatten(),
            "dense": lambda: layers.Dense(item[1], activation=item[2] if len(item) > 2 else None)}[kind]()


def is_binary(spec):
    """Whether a model ends in one sigmoid unit (binary cross-entropy, RMSprop 1e-4); the
    others end in a softmax (sparse categorical cross-entropy, per pixel for the U-Net; Adam 1e-3)."""
    return spec is not UNET and spec[-1][1] == 1


def _compile(model, spec, optimizers):
    binary = is_binary(spec)
    model.compile(optimizer=optimizers.RMSprop(1e-4) if binary else "adam",
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy")
    return model


def build_torch(spec, input_shape, threads, channels_last=False):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    model = torch_unet(spec) if spec is UNET else torch_sequential(spec, input_shape)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    binary = is_binary(spec)
    optimizer = torch.optim.RMSprop(model.parameters(), 1e-4) if binary else torch.optim.Adam(model.parameters(), 1e-3)
    loss = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()    # (N, K[, H, W]) logits
    return model, optimizer, loss


def torch_sequential(spec, input_shape):
    """A spec's layers as a torch.nn.Sequential (NCHW); a softmax or sigmoid at the end is left
    to the loss."""
    from torch import nn
    h, w, c = input_shape
    modules = []
    for item in spec:
        kind = item[0]
        if kind in ("conv", "dwconv"):
            k, s, pad = (item[2], item[3], item[4]) if kind == "conv" else item[1:4]
            out_c = item[1] if kind == "conv" else c
            modules.append(nn.Conv2d(c, out_c, k, stride=s, padding=(k - 1) // 2 if pad == "same" else 0,
                                     groups=1 if kind == "conv" else c,
                                     bias=item[6] if kind == "conv" else False))
            if kind == "conv" and item[5] == "relu":
                modules.append(nn.ReLU())
            c, h, w = out_c, out_size(h, k, s, pad), out_size(w, k, s, pad)
        elif kind == "bn":
            modules.append(nn.BatchNorm2d(c))
        elif kind == "relu":
            modules.append(nn.ReLU())
        elif kind == "pool":
            modules.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        elif kind == "gap":
            modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif kind == "flatten":
            modules.append(nn.Flatten())
            c = c * h * w
        else:
            modules.append(nn.Linear(c, item[1]))
            c = item[1]
            if item[2] == "relu":
                modules.append(nn.ReLU())
    return nn.Sequential(*modules)


# ----- timing --------------------------------------------------------------------------------------
def epoch_timer(base):
    """A Keras-style callback (subclass of ``base``) that records each epoch's seconds."""
    class EpochTimer(base):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)
    return EpochTimer()


def timed_calls(run, calls):
    """Seconds of each of ``calls`` calls of ``run`` after one warm-up call."""
    run()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def workload_data(task, kind):
    """The images and labels a workload runs on."""
    if task == "mnist":
        return mnist_images(LATENCY_CALLS if kind == "latency" else MNIST_IMAGES)
    if task == "unet":
        return unet_data(UNET_IMAGES)
    return catsdogs_images(PHOTOS)


def worker(contender, workload, threads, epochs):
    """Run one workload for one contender; print a JSON line with its figures."""
    task, kind, batch = workload.split("_")
    batch = int(batch)
    spec, shape = TASKS[task]
    x, y = workload_data(task, kind)
    n = len(x)

    if contender.startswith("scratchnet") or contender == "keras":
        if contender == "keras":
            import keras
            model, base = build_keras(spec, shape, threads), keras.callbacks.Callback
            single = lambda: [model(x[i:i + 1], training=False) for i in range(n)]  # noqa: E731
        else:
            import scratchnet.callbacks
            model = build_scratchnet(spec, shape, "numpy" if contender.endswith("numpy") else "cpu", threads)
            base = scratchnet.callbacks.Callback
            single = lambda: [model(x[i:i + 1]) for i in range(n)]  # noqa: E731
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        if kind == "train":
            timer = epoch_timer(base)
            model.fit(x, y, batch_size=batch, epochs=1 + epochs, shuffle=True, verbose=0, callbacks=[timer])
            seconds = timer.seconds[1:]     # the first epoch is the warm-up
        elif kind == "infer":
            seconds = timed_calls(lambda: model.predict(x, batch_size=batch, verbose=0), epochs)
        else:
            seconds = timed_calls(single, epochs)
    else:
        import torch
        model, optimizer, loss_fn = build_torch(spec, shape, threads, channels_last=contender.endswith("cl"))
        images = torch.from_numpy(x)    # NHWC; permuted per batch to NCHW with the model's layout
        labels = torch.from_numpy(y).float()[:, None] if is_binary(spec) else torch.from_numpy(y)
        layout = torch.channels_last if contender.endswith("cl") else torch.contiguous_format
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)

        def nchw(batch_images):
            return batch_images.permute(0, 3, 1, 2).contiguous(memory_format=layout)

        def train_epoch():
            model.train()
            order = torch.randperm(n)
            for start in range(0, n, batch):
                index = order[start:start + batch]
                optimizer.zero_grad()
                loss_fn(model(nchw(images[index])), labels[index]).backward()
                optimizer.step()

        def infer():
            model.eval()
            with torch.no_grad():
                return torch.cat([model(nchw(images[start:start + batch])) for start in range(0, n, batch)])

        def single():
            model.eval()
            with torch.no_grad():
                return [model(nchw(images[i:i + 1])) for i in range(n)]

        seconds = timed_calls({"train": train_epoch, "infer": infer, "latency": single}[kind], epochs)
    median = float(np.median(seconds))
    value = median / n * 1e3 if kind == "latency" else n / median
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"value": value, "peak_rss_mb": peak_mb, "params": params}))


def sgemm_rate(threads, size=2048, repeats=10):
    """NumPy's float32 matrix-product rate (GFLOP/s, best of ``repeats``) on ``threads`` threads."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b, out = a.T.copy(), np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(timed_calls(lambda: np.matmul(a, b, out=out), repeats))
    print(json.dumps({"value": 2 * size ** 3 / best / 1e9}))


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


def run_worker(contender, workload, threads, epochs, trees=None):
    """Run one (contender, workload) in a fresh process. A scratchnet contender imports
    scratchnet from its tree: this working tree, or an exported revision (``trees``)."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads))
    if contender.startswith("scratchnet"):
        name, _, rev = contender.partition("@")
        env["PYTHONPATH"] = os.pathsep.join([str(trees.get(rev, ROOT)), env.get("PYTHONPATH", "")])
        contender = name
    what = ["--sgemm"] if contender == "sgemm" else ["--worker", contender, workload]
    cmd = [sys.executable, __file__, *what, "--threads", str(threads), "--epochs", str(epochs)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"  {contender} {workload} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def versions():
    import importlib.metadata as md
    found = []
    for package in ("numpy", "numba", "mkl", "torch", "tensorflow-cpu", "tensorflow", "keras"):
        try:
            found.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            pass
    try:
        from scratchnet.kernels import blas
        found.append(f"scratchnet's CPU products on {blas.name()} (scratchnet/kernels/blas.py)")
    except ImportError:
        pass
    return ", ".join(found)


def fmt(value, kind):
    if value is None:
        return "skipped"
    return f"{value:.2f} ms" if kind == "latency" else f"{value:,.0f} img/s"


def best_peer(median, workload, peers, kind):
    """The fastest of ``peers`` on ``workload`` (None if none ran)."""
    ran = [p for p in peers if (p, workload) in median]
    if not ran:
        return None
    sign = -1 if kind == "latency" else 1
    return max(ran, key=lambda p: sign * median[(p, workload)][0])


def parameter_counts(results, workloads):
    """A line: each workload's trainable parameters as each contender's process counted them,
    one number where they agree (they should: the same model in every framework)."""
    parts = []
    for workload in workloads:
        counts = {c: runs[0]["params"] for (c, w), runs in results.items() if w == workload}
        if len(set(counts.values())) == 1:
            parts.append(f"{workload} {next(iter(counts.values())):,}")
        elif counts:
            parts.append(f"{workload} " + ", ".join(f"{c} {n:,}" for c, n in counts.items()))
    return "Trainable parameters, counted in each contender's process (one number where all agree): " + \
        "; ".join(parts) + "."


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2, help="interleaved repetitions (median reported)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="timed epochs (or predict calls) per process, after one warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", nargs="*", default=WORKLOADS, choices=WORKLOADS)
    everyone = CONTENDERS + OPTIONAL_CONTENDERS
    parser.add_argument("--contenders", nargs="*", default=CONTENDERS, choices=everyone)
    parser.add_argument("--worker", nargs=2, metavar=("CONTENDER", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--sgemm", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print, but leave RESULTS.md alone")
    parser.add_argument("--section", default="cpu-comparison", help="RESULTS.md section to write")
    parser.add_argument("--quick", action="store_true", help="the throughput table only: no RSS table "
                        "or time-to-first-step")
    parser.add_argument("--fresh-copy", action="store_true",
                        help="time scratchnet from an export of HEAD (as the baseline is) instead of this tree")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also time scratchnet as of git revision REV (e.g. main~3), in the same run")
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.threads, args.epochs)
    if args.sgemm:
        return sgemm_rate(args.threads)

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
    results, sgemm = {}, []
    for rep in range(args.reps):
        sgemm.append(run_worker("sgemm", None, args.threads, args.epochs))
        for workload in args.workloads:
            # odd repetitions run the contenders in reverse order, so that no one is always first
            for contender in (args.contenders if rep % 2 == 0 else args.contenders[::-1]):
                if not installed(contender):
                    continue
                print(f"rep {rep + 1}/{args.reps}: {contender} {workload}", flush=True)
                result = run_worker(contender, workload, args.threads, args.epochs, trees)
                if result is not None:
                    results.setdefault((contender, workload), []).append(result)
    median = {key: (float(np.median([r["value"] for r in runs])), float(np.median([r["peak_rss_mb"] for r in runs])))
              for key, runs in results.items()}
    sgemm_gflops = float(np.median([r["value"] for r in sgemm if r]))

    baseline = f"scratchnet@{args.baseline}" if args.baseline else None
    peers = [c for c in args.contenders if not c.startswith("scratchnet")]
    header = ("| workload | " + " | ".join(args.contenders) + " | best peer | vs best peer |"
              + (f" vs {baseline} |" if baseline else "") + " GFLOP/s | share of sgemm |")
    lines = [header, "|" + "---|" * (len(args.contenders) + 5 + bool(baseline))]
    for workload in args.workloads:
        task, kind, _ = workload.split("_")
        cells = [fmt(median.get((c, workload), (None,))[0], kind) for c in args.contenders]
        ours = median.get(("scratchnet", workload), (None,))[0]

        def ratio(peer):
            theirs = median.get((peer, workload), (None,))[0] if peer else None
            if ours is None or theirs is None:
                return "-"
            return f"{(theirs / ours if kind == 'latency' else ours / theirs):.2f}x"
        best = best_peer(median, workload, peers, kind)
        forward, training = task_flops(task)
        per_image = training if kind == "train" else forward
        gflops = (per_image * ours / 1e9 if kind != "latency" else per_image / ours * 1e3 / 1e9) if ours else None
        rate = f" {gflops:.1f} | {gflops / sgemm_gflops:.0%} |" if gflops else " - | - |"
        lines.append(f"| {workload} | " + " | ".join(cells) + f" | {best or '-'} | {ratio(best)} |"
                     + (f" {ratio(baseline)} |" if baseline else "") + rate)
    reference = (f"NumPy's sgemm on this machine, same threads, same run: {sgemm_gflops:.1f} GFLOP/s "
                 f"(median over repetitions of the best of ten 2048x2048x2048 products). GFLOP/s counts two "
                 f"operations per multiply-add of scratchnet's convolutions and dense layers (training: forward "
                 f"plus both backward products) at scratchnet's speed; per image: "
                 + ", ".join(f"{task} {task_flops(task)[0] / 1e6:.1f} MFLOP forward, "
                             f"{task_flops(task)[1] / 1e6:.1f} training" for task in TASKS) + ".")
    lines += ["", parameter_counts(results, args.workloads)]
    rss = ["", "Peak RSS of each process (MB; each workload runs in its own process, libraries included):", "",
           "| workload | " + " | ".join(args.contenders) + " |", "|" + "---|" * (len(args.contenders) + 1)]
    for workload in args.workloads:
        rss.append(f"| {workload} | " + " | ".join(
            f"{median[(c, workload)][1]:,.0f}" if (c, workload) in median else "skipped"
            for c in args.contenders) + " |")
    intro = [f"## CPU comparison: scratchnet vs Keras and PyTorch, whole epochs ({args.threads} threads each)", "",
             f"Medians of {args.reps} interleaved repetitions, each the median of {args.epochs} timed epochs "
             f"(or predict calls) after a warm-up one, every (contender, workload) in a fresh process; training "
             f"shuffles every epoch ({MNIST_IMAGES:,} MNIST digits, {PHOTOS} photos at 150x150 or, for the "
             f"U-Net, {UNET_IMAGES} synthetic 64x64 images with 11 classes per pixel). "
             f"`pytorch` is channels-first, `pytorch-cl` channels_last"
             + (f"; `{baseline}` is scratchnet as of that git revision" if baseline else "")
             + ". Ratios are scratchnet's speed over the peer's (above 1 means scratchnet is faster), against "
             f"the fastest peer.{origin} Versions: {versions()}.", "", reference, ""]
    if args.quick:
        body = "\n".join(intro + lines)
    else:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_step_seconds(cache)
            warm = first_step_seconds(cache)
        jit = ["", f"Time from a fresh interpreter to the end of the first MNIST training step: "
                   f"cold (empty Numba cache) {cold:.1f} s, warm (cached kernels) {warm:.1f} s."]
        body = "\n".join(intro + lines + rss + jit)
    print(body)
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
