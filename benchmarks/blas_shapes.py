"""One-thread sgemm speed of the BLAS libraries on the exact GEMM shapes scratchnet issues.

    python benchmarks/blas_shapes.py [--repeats 7] [--target-ms 5] [--section NAME] [--no-write]

scratchnet's CPU convolutions and Dense layers are NumPy matrix products, run with BLAS held
at one thread while the batch's two halves (lanes) run on two Python threads. What counts is
therefore each library's one-thread sgemm rate on the shapes the engine really multiplies.

1. A child process runs one training step (train_on_batch) and one predict of the cats/dogs
   seed model (150x150, batch 32) and of the MNIST seed model (batches 32 and 128), after one
   unrecorded warm-up of each, and records every 2-D product the kernels issue: (M, K, N),
   whether A or B is a transposed view, and the dtype. It wraps the entry points of
   scratchnet/kernels/im2col_gemm.py (convolutions, fused convolution + pooling, Dense's matmul) so that
   their product (``gemm``) goes through a recorder; the engine itself is not changed.
2. Each distinct shape is timed, with the same transposes, on every library installed: NumPy's
   own BLAS (threadpoolctl at one thread), BLIS (``pip install blis``), Intel MKL
   (``pip install mkl``: cblas_sgemm from libmkl_rt, sequential layer), a newer OpenBLAS
   (``pip install scipy-openblas32``: prefixed cblas_sgemm) and PyTorch's torch.mm at one
   thread as the peer; operands are fresh compact arrays (leading dimension = width: in the
   engine only Dense's dW lanes read A from a wider buffer). A library that is missing is
   skipped with the reason. Every library's result must match NumPy's to float32 tolerance
   first, or the script stops. Samples of ``--target-ms`` each (a sample loops a shape until
   then), libraries taken in turn within each of ``--repeats`` rounds; the median per call
   counts, the warm-up calls do not. Each library's process CPU time over wall time while
   timed shows it ran on one thread.
3. Prints GFLOP/s per shape and library, then per workload the time of all its GEMMs of one
   step (sum of calls x median time) per library and NumPy's time over it (above 1: faster).

Run it alone on an otherwise idle machine for real figures; it writes its tables into
benchmarks/RESULTS.md section NAME (default ``blas-shapes``) unless ``--no-write``.
"""
import argparse
import ctypes
import glob
import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import command_line, machine_info, write_section  # noqa: E402

# workload: (model, "train" or "predict", batch)
WORKLOADS = {"catsdogs_train_32": ("catsdogs", "train", 32), "catsdogs_predict_32": ("catsdogs", "predict", 32),
             "mnist_train_32": ("mnist", "train", 32), "mnist_predict_32": ("mnist", "predict", 32),
             "mnist_train_128": ("mnist", "train", 128), "mnist_predict_128": ("mnist", "predict", 128)}
ROLES = {"NN": "fwd", "TN": "dW", "NT": "dX"}     # which product a layout is, in im2col_gemm and dense


# ----- 1. the shapes (child process) ------------------------------------------------------------

def _layout(a):
    """'N' for a row-major operand (rows may be a slice of a wider buffer), 'T' for a transposed
    view of one, '?' for anything else (NumPy would copy it before calling BLAS)."""
    if a.strides[1] == a.itemsize:
        return "N"
    return "T" if a.strides[0] == a.itemsize else "?"


def _entry(site, a, b):
    return (a.shape[0], a.shape[1], b.shape[1], _layout(a) + _layout(b), str(a.dtype), site)


def record_shapes():
    """{workload: [[M, K, N, layout, dtype, site, calls per step], ...]} for every workload."""
    import numpy as np

    import scratchnet
    from scratchnet import train
    from scratchnet.kernels import im2col_gemm

    log = []
    sites = {"conv2d_forward": "conv", "conv2d_backward": "conv", "conv2d_maxpool_forward": "conv+pool",
             "conv2d_maxpool_backward": "conv+pool", "matmul": "dense"}
    for name, site in sites.items():
        def wrapped(*args, xp, gemm=None, _function=getattr(im2col_gemm, name), _site=site, **kwargs):
            product = gemm or xp.matmul

            def recording(a, b, out=None):
                log.append(_entry(_site, a, b))     # list.append is atomic: lanes may log at once
                return product(a, b, out=out)
            return _function(*args, xp=xp, gemm=recording, **kwargs)
        setattr(im2col_gemm, name, wrapped)

    scratchnet.set_backend("cpu")
    rng = np.random.default_rng(0)
    found = {}
    for workload, (task, kind, batch) in WORKLOADS.items():
        if task == "catsdogs":
            model, x = train.catsdogs_model(150), rng.random((batch, 150, 150, 3), np.float32)
            model.compile(optimizer="rmsprop", loss="binary_crossentropy")
            y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
        else:
            model, x = train.mnist_model(), rng.random((batch, 28, 28, 1), np.float32)
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            y = rng.integers(0, 10, batch)
        if kind == "train":
            run = lambda: model.train_on_batch(x, y)  # noqa: E731
        else:
            run = lambda: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
        run()                  # warm-up: compiles or loads the kernels, builds the buffers
        del log[:]
        run()
        found[workload] = [list(key) + [n] for key, n in Counter(log).items()]
    return found


# ----- 2. the libraries -----------------------------------------------------------------------

class Library:
    """name, version, kernel (which code path it runs), and bind(a, b, layout, c): a call that
    writes A @ B into c, where a and b are the row-major arrays and layout says which of them
    the product takes transposed."""

    def __init__(self, name, version, kernel, bind):
        self.name, self.version, self.kernel, self.bind = name, version, kernel, bind


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _views(a, b, layout):
    return (a.T if layout[0] == "T" else a), (b.T if layout[1] == "T" else b)


def numpy_blas():
    import numpy as np
    from threadpoolctl import threadpool_info
    own = [i for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    kernel = ", ".join(f"{i['internal_api']} {i['version']}, {i['architecture']} kernel" for i in own) or "?"

    def bind(a, b, layout, c):
        av, bv = _views(a, b, layout)
        return lambda: np.matmul(av, bv, out=c)
    return Library("NumPy", np.__version__, kernel, bind)


def blis_library():
    import blis
    import blis.py
    cy = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(blis.__file__), "cy.*.so"))[0])
    cy.bli_arch_string.restype = ctypes.c_char_p
    arch = cy.bli_arch_string(cy.bli_arch_query_id()).decode()
    threading = [t for t in ("openmp", "pthreads") if getattr(cy, f"bli_info_get_enable_{t}")()]
    if threading:    # cython-blis is built without threads; a build with them is held at one
        os.environ["BLIS_NUM_THREADS"] = "1"
        cy.bli_thread_set_num_threads(ctypes.c_long(1))
    kernel = f"{arch} kernel, threading: {'/'.join(threading) or 'none (one thread)'}"

    def bind(a, b, layout, c):
        ta, tb = layout[0] == "T", layout[1] == "T"
        return lambda: blis.py.gemm(a, b, out=c, trans1=ta, trans2=tb, alpha=1.0, beta=0.0)
    return Library("BLIS", _version("blis"), kernel, bind)


def _cblas_bind(sgemm):
    """bind() for a C cblas_sgemm: row-major, transposes as flags, leading dimensions from the arrays."""
    sgemm.restype = None
    sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
    row_major, flag = 101, {"N": 111, "T": 112}

    def bind(a, b, layout, c):
        (m, k), n = _views(a, b, layout)[0].shape, c.shape[1]
        args = (row_major, flag[layout[0]], flag[layout[1]], m, n, k, 1.0, a.ctypes.data, a.shape[1],
                b.ctypes.data, b.shape[1], 0.0, c.ctypes.data, n)
        return lambda arrays=(a, b, c): sgemm(*args)     # (the pointers' arrays live as long as the call)
    return bind


class _MKLVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("update", ctypes.c_int),
                ("status", ctypes.c_char_p), ("build", ctypes.c_char_p), ("processor", ctypes.c_char_p),
                ("platform", ctypes.c_char_p)]


def mkl_library():
    found = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    if not found:
        raise ImportError(f"no libmkl_rt.so* in {sys.prefix}/lib (pip install mkl)")
    os.environ["MKL_NUM_THREADS"] = "1"
    mkl = ctypes.CDLL(found[-1])
    mkl.MKL_Set_Threading_Layer(1)     # MKL_THREADING_SEQUENTIAL: no OpenMP pool at all
    mkl.MKL_Set_Num_Threads(1)
    info = _MKLVersion()
    mkl.MKL_Get_Version(ctypes.byref(info))
    kernel = f"MKL {info.major}.{info.minor}.{info.update}, {info.processor.decode()}, sequential"
    return Library("MKL", _version("mkl"), kernel, _cblas_bind(mkl.cblas_sgemm))


def scipy_openblas_library():
    import scipy_openblas32 as sob
    prefix = re.search(r"BLAS_SYMBOL_PREFIX=(\w*)", sob.get_pkg_config())
    lib = ctypes.CDLL(os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True)))
    candidates = ([prefix.group(1)] if prefix else []) + ["scipy_", ""]
    prefix = next((p for p in candidates if hasattr(lib, p + "cblas_sgemm")), None)
    if prefix is None:
        raise ImportError(f"no cblas_sgemm in {lib._name} under the prefixes {candidates}")
    getattr(lib, prefix + "openblas_set_num_threads")(1)
    corename = getattr(lib, prefix + "openblas_get_corename")
    corename.restype = ctypes.c_char_p
    kernel = f"{' '.join(sob.get_openblas_config().split()[:2])}, {corename().decode()} kernel, symbols {prefix}*"
    return Library("OpenBLAS-new", sob.__version__, kernel, _cblas_bind(getattr(lib, prefix + "cblas_sgemm")))


def torch_library():
    import torch
    torch.set_num_threads(1)
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    capability = torch.backends.cpu.get_cpu_capability()
    kernel = f"BLAS_INFO={blas.group(1) if blas else '?'}, CPU capability {capability}, " \
             f"{torch.get_num_threads()} thread"

    def bind(a, b, layout, c):
        av, bv = _views(a, b, layout)
        at, bt, ct = torch.from_numpy(av), torch.from_numpy(bv), torch.from_numpy(c)
        return lambda: torch.mm(at, bt, out=ct)
    return Library("torch", torch.__version__, kernel, bind)


def load_libraries():
    """The libraries that load, NumPy first; prints why any other is skipped."""
    libraries = [numpy_blas()]
    for load in (blis_library, mkl_library, scipy_openblas_library, torch_library):
        try:
            libraries.append(load())
        except (ImportError, OSError, AttributeError) as error:
            print(f"skipped {load.__name__.replace('_library', '')}: {type(error).__name__}: {error}", flush=True)
    return libraries


# ----- 3. timing -------------------------------------------------------------------------------

def operands(m, k, n, layout, rng):
    """Row-major A and B in the stored orientation (a transposed operand is stored (K, M) or (N, K))."""
    import numpy as np
    a = rng.standard_normal((k, m) if layout[0] == "T" else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if layout[1] == "T" else (k, n), dtype=np.float32)
    return a, b


def check(library, shape, call, c, reference):
    """Stop unless ``call`` writes NumPy's product into c (to float32 tolerance)."""
    import numpy as np
    c.fill(np.nan)
    call()
    error = float(np.max(np.abs(c - reference))) if np.isfinite(c).all() else float("inf")
    scale = float(np.max(np.abs(reference)))
    if not error <= 1e-4 * scale + 1e-6:
        sys.exit(f"FAIL: {library.name} gives a wrong product for shape {shape}: "
                 f"max |error| {error:.3g} against max |value| {scale:.3g}")


def time_shapes(shapes, libraries, repeats, target):
    """{(shape, library name): median seconds per call}, and {library name: CPU/wall while timed}."""
    import numpy as np
    rng = np.random.default_rng(1)
    seconds, cpu, wall = {}, Counter(), Counter()
    for shape in shapes:
        m, k, n, layout = shape
        a, b = operands(m, k, n, layout, rng)
        reference = np.matmul(*_views(a, b, layout))
        calls = {}
        for library in libraries:
            c = np.empty((m, n), np.float32)
            call = library.bind(a, b, layout, c)
            check(library, shape, call, c, reference)
            call()
            start = time.perf_counter()
            call()
            once = time.perf_counter() - start
            calls[library.name] = (call, max(1, round(target / max(once, 1e-7))))
        samples = {name: [] for name in calls}
        for _ in range(repeats):
            for name, (call, loops) in calls.items():
                w, p = time.perf_counter(), time.process_time()
                for _ in range(loops):
                    call()
                p, w = time.process_time() - p, time.perf_counter() - w
                samples[name].append(w / loops)
                cpu[name] += p
                wall[name] += w
        for name, times in samples.items():
            seconds[shape, name] = statistics.median(times)
    return seconds, {name: cpu[name] / wall[name] for name in wall}


# ----- 4. the report -----------------------------------------------------------------------------

def cpu_flags():
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        return "flags unknown"
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile")
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


def render(found, libraries, seconds, threads, repeats, target):
    names = [lib.name for lib in libraries]
    shapes = {}     # (M, K, N, layout) -> {"sites": set, workload: calls per step}
    for workload, entries in found.items():
        for m, k, n, layout, dtype, site, calls in entries:
            row = shapes.setdefault((m, k, n, layout), {"sites": set()})
            row["sites"].add(f"{site} {ROLES.get(layout, layout)}")
            row[workload] = row.get(workload, 0) + calls
    short = {w: w.replace("catsdogs", "cd").replace("mnist", "mn").replace("predict", "pred") for w in WORKLOADS}
    lines = ["## One-thread sgemm on scratchnet's GEMM shapes", "",
             "Every matrix product of one training step and one predict of the seed models, as recorded in "
             "scratchnet/kernels/im2col_gemm.py (A^T: a transposed view), timed alone with each BLAS at one thread: "
             f"median of {repeats} samples of about {target * 1e3:.0f} ms, libraries in turn. CPU flags: {cpu_flags()}.", "",
             "| library | version | kernel | CPU/wall while timed |", "|---|---|---|---|"]
    lines += [f"| {lib.name} | {lib.version} | {lib.kernel} | {threads[lib.name]:.2f} |" for lib in libraries]
    lines += ["", "GFLOP/s per shape (M x K x N, C = A @ B), largest share of a cats/dogs training step first:", "",
              "| M x K x N | product | calls per step | " + " | ".join(names) + " |",
              "|---|---|---|" + "---|" * len(names)]
    def order(s):   # FLOPs in a cats/dogs training step, then FLOPs of one call
        return -shapes[s].get("catsdogs_train_32", 0) * s[0] * s[1] * s[2], -s[0] * s[1] * s[2]
    for shape in sorted(shapes, key=order):
        m, k, n, layout = shape
        flops = 2 * m * k * n
        rates = [flops / seconds[shape, name] / 1e9 for name in names]
        best = max(rates)
        cells = [f"**{r:.1f}**" if r == best else f"{r:.1f}" for r in rates]
        product = ("A^T" if layout[0] == "T" else "A") + (" @ B^T" if layout[1] == "T" else " @ B")
        uses = ", ".join(f"{short[w]} {shapes[shape][w]}" for w in WORKLOADS if w in shapes[shape])
        lines.append(f"| {m} x {k} x {n} | {product} ({', '.join(sorted(shapes[shape]['sites']))}) | {uses} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Per workload: all the GEMMs of one step (calls x median time), ms, and NumPy's time over the "
              "library's (above 1: faster than NumPy):", "",
              "| workload | GEMM calls | GFLOP | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for workload in WORKLOADS:
        used = [(s, row[workload]) for s, row in shapes.items() if workload in row]
        total = {name: sum(calls * seconds[s, name] for s, calls in used) for name in names}
        gflop = sum(calls * 2 * s[0] * s[1] * s[2] for s, calls in used) / 1e9
        cells = [f"{total[name] * 1e3:.2f}" + ("" if name == "NumPy" else f" ({total['NumPy'] / total[name]:.2f}x)")
                 for name in names]
        lines.append(f"| {workload} | {sum(c for _, c in used)} | {gflop:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed samples per shape and library")
    parser.add_argument("--target-ms", type=float, default=5.0, help="length of one sample")
    parser.add_argument("--section", default="blas-shapes", help="RESULTS.md section to write")
    parser.add_argument("--no-write", action="store_true", help="print, but leave RESULTS.md alone")
    parser.add_argument("--record", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record:
        print(json.dumps(record_shapes()))
        return
    started = time.perf_counter()
    print("recording the GEMM shapes of the seed models' steps (child process)", flush=True)
    out = subprocess.run([sys.executable, __file__, "--record"], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"recording failed:\n{out.stderr}")
    found = json.loads(out.stdout.strip().splitlines()[-1])
    other = {e[4] for entries in found.values() for e in entries} - {"float32"}
    if other:
        print(f"note: products in {sorted(other)} too; only float32 ones are timed (sgemm)")
        found = {w: [e for e in entries if e[4] == "float32"] for w, entries in found.items()}
    odd = {tuple(e[:4]) for entries in found.values() for e in entries if "?" in e[3]}
    if odd:
        sys.exit(f"operands that are neither row-major nor transposed views (NumPy copies them): {sorted(odd)}")

    libraries = load_libraries()
    from threadpoolctl import threadpool_info, threadpool_limits
    shapes = sorted({tuple(e[:4]) for entries in found.values() for e in entries})
    print(f"timing {len(shapes)} shapes on {', '.join(lib.name for lib in libraries)}", flush=True)
    with threadpool_limits(limits=1):
        pools = [f"{i['internal_api']} {i.get('version')} ({i.get('architecture') or '-'}): {i['num_threads']} "
                 f"thread(s), {os.path.basename(i['filepath'])}" for i in threadpool_info()]
        seconds, threads = time_shapes(shapes, libraries, args.repeats, args.target_ms / 1e3)
    for name, ratio in threads.items():
        if ratio > 1.3:
            print(f"WARNING: {name} used {ratio:.2f} CPUs while timed: not one thread")
    body = render(found, libraries, seconds, threads, args.repeats, args.target_ms / 1e3)
    body += "\n\nThread pools seen by threadpoolctl while timing: " + "; ".join(pools) + "."
    from scratchnet.kernels import blas
    body += (f" scratchnet's CPU kernels run their products on {blas.name()!r} here "
             f"(scratchnet/kernels/blas.py; SCRATCHNET_BLAS={os.environ.get('SCRATCHNET_BLAS', '')!r}).")
    print(body)
    print(f"\nCommand: {command_line()}\nMachine: {machine_info()}\n({time.perf_counter() - started:.0f} s)")
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
