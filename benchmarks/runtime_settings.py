"""What each process-wide setting of scratchnet/runtime.py buys, with each switch on and off.

    python benchmarks/runtime_settings.py [--reps 3] [--steps 150]

Every configuration runs in a fresh process (the settings act once per process), the
configurations take turns within each repetition, and the table reports medians:
the MNIST seed model's training step at batch 32 (after a warm-up) and its minor page
faults per step; the cats/dogs seed model's training step at batch 32 on 150x150 inputs,
whose big layers run Numba's parallel kernels right before BLAS GEMMs (what
GOMP_SPINCOUNT is about: OpenMP threads still spinning hold the cores BLAS wants); and a
300x300 float32 GEMM started right after a parallel kernel. Results go to
benchmarks/RESULTS.md, section runtime-settings.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

CONFIGURATIONS = {
    "both on (default)": {},
    "malloc left alone": {"SCRATCHNET_KEEP_MEMORY": "0"},
    "GOMP_SPINCOUNT left alone": {"SCRATCHNET_GOMP_SPINCOUNT": "0"},
    "both off": {"SCRATCHNET_KEEP_MEMORY": "0", "SCRATCHNET_GOMP_SPINCOUNT": "0"},
}

WORKER = r"""
import json, resource, sys, time
import numpy as np
import scratchnet
from scratchnet.kernels import numba_conv
from scratchnet.train import catsdogs_model, mnist_model
steps, photo_steps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.random((32 * steps, 28, 28, 1), dtype=np.float32)
y = rng.integers(0, 10, 32 * steps)
model = mnist_model()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:32 * 20], y[:32 * 20], batch_size=32, epochs=1, verbose=0)        # warm-up (and the settings)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = time.perf_counter()
model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
step_ms = (time.perf_counter() - start) / steps * 1e3
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
photos = catsdogs_model(150)
photos.compile(optimizer="rmsprop", loss="binary_crossentropy")
px = rng.random((32 * photo_steps, 150, 150, 3), dtype=np.float32)
py = rng.integers(0, 2, 32 * photo_steps)
photos.fit(px[:64], py[:64], batch_size=32, epochs=1, verbose=0)                  # warm-up
start = time.perf_counter()
photos.fit(px, py, batch_size=32, epochs=1, verbose=0, shuffle=False)
photo_ms = (time.perf_counter() - start) / photo_steps * 1e3
a = rng.random((300, 300), dtype=np.float32)
images = rng.random((64, 40, 40, 8), dtype=np.float32)
cols = np.empty((64 * 38 * 38, 72), np.float32)
gemm = []
for _ in range(30):
    numba_conv._im2col.parallel(images, 3, 3, 1, 1, 0, 0, 38, 38, 0, 64, cols)   # a parallel kernel, then
    t = time.perf_counter()
    a @ a                                                                       # BLAS at once
    gemm.append(time.perf_counter() - t)
print(json.dumps({"step_ms": step_ms, "faults_per_step": faults, "photo_ms": photo_ms,
                  "gemm_ms": float(np.median(gemm)) * 1e3,
                  "applied": scratchnet.runtime.applied()}))
"""


def run(configuration, steps, photo_steps, threads):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "SCRATCHNET_KEEP_MEMORY",
                                                            "SCRATCHNET_GOMP_SPINCOUNT")}
    env.update(CONFIGURATIONS[configuration], NUMBA_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", WORKER, str(steps), str(photo_steps)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="timed MNIST training steps per process")
    parser.add_argument("--photo-steps", type=int, default=12, help="timed cats/dogs training steps per process")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = {name: [] for name in CONFIGURATIONS}
    for rep in range(args.reps):
        for name in CONFIGURATIONS:
            print(f"rep {rep + 1}/{args.reps}: {name}", flush=True)
            results[name].append(run(name, args.steps, args.photo_steps, args.threads))
    rows = ["| configuration | MNIST training step (ms) | its minor page faults | cats/dogs training step "
            "(ms) | 300x300 GEMM after a parallel kernel (ms) | what runtime.py did |", "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        median = {key: float(np.median([r[key] for r in runs]))
                  for key in ("step_ms", "faults_per_step", "photo_ms", "gemm_ms")}
        did = "; ".join(f"{k}: {v}" for k, v in runs[0]["applied"].items())
        rows.append(f"| {name} | {median['step_ms']:.2f} | {median['faults_per_step']:,.0f} | "
                    f"{median['photo_ms']:.0f} | {median['gemm_ms']:.2f} | {did} |")
    body = "\n".join([
        "## Process-wide settings: what each buys", "",
        f"Each configuration in a fresh process, {args.threads} threads, medians of {args.reps} interleaved "
        f"repetitions; {args.steps} timed training steps of the MNIST seed model and {args.photo_steps} of the "
        f"cats/dogs seed model (150x150, random pixels), both at batch 32 after a warm-up, and the median of 30 "
        f"GEMMs each started right after a parallel Numba kernel. The switches are "
        f"SCRATCHNET_KEEP_MEMORY=0 and SCRATCHNET_GOMP_SPINCOUNT=0 (scratchnet/runtime.py).", ""] + rows)
    print(body)
    if not args.no_write:
        from results import write_section
        write_section("runtime-settings", body)


if __name__ == "__main__":
    main()
