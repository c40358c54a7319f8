#!/usr/bin/env bash
# Every check of the GPU backend on a machine with an NVIDIA GPU, in under 8 minutes, from the
# repository alone (no network): the GPU test marker, the kernel and step timings against the
# CPU, one MNIST epoch and 50 cats/dogs steps on --backend gpu against the CPU backend, and
# whether a training step makes the host wait for the device. Results go to OUT (the argument).
# Without a GPU (or CuPy) it says why in OUT/SKIPPED and exits 0.
#
#     bash benchmarks/gpu_check.sh OUT
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset NUMBA_ENABLE_CUDASIM
DATA=$(cd .. && pwd)/shared/data
[ -d "$DATA" ] || DATA=$PWD/shared/data
status=0

step() {   # step NAME SECONDS COMMAND...: run with a time limit, output to OUT/NAME.txt
    local name=$1 limit=$2; shift 2
    local begin=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - begin)) s" | tee -a "$OUT/summary.txt"
    [ $rc -eq 0 ] || status=1
}

{ date -u; nvidia-smi 2>&1 || echo "no nvidia-smi"; $PY -c "import sys; print(sys.version)"
  $PY -c "import cupy; print('cupy', cupy.__version__)" 2>&1
  $PY -c "import numba, numpy; print('numba', numba.__version__, 'numpy', numpy.__version__)" 2>&1
  $PY -c "import numba_cuda; print('numba-cuda', numba_cuda.__version__)" 2>&1; } > "$OUT/environment.txt"

probe=$($PY benchmarks/gpu_check.py probe 2>&1 | tail -1)
if [[ "$probe" != ok:* ]]; then
    echo "${probe#skip: }" > "$OUT/SKIPPED"
    echo "gpu_check: skipped: ${probe#skip: }"
    exit 0
fi
echo "gpu_check: ${probe#ok: }" | tee "$OUT/summary.txt"

step pytest_gpu 150 $PY -m pytest -q -p no:cacheprovider -m gpu tests
step no_host_sync 90 $PY benchmarks/gpu_check.py no-sync "$OUT/no_host_sync.md"
step cpu_vs_gpu 120 $PY benchmarks/cpu_vs_gpu.py      # writes its section of benchmarks/RESULTS.md
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
if [ -d "$DATA/mnist" ]; then
    for backend in gpu cpu; do
        step "mnist_$backend" 150 $PY -m scratchnet.train mnist --backend "$backend" --epochs 1 --seed 0 \
            --data "$DATA/mnist" --out "$OUT/runs/mnist-$backend"
    done
    step mnist_compare 30 $PY benchmarks/gpu_check.py compare "$OUT/runs/mnist-cpu" "$OUT/runs/mnist-gpu" \
        "$OUT/mnist_compare.md"
fi
if [ -f "$DATA/catsdogs-128.tar" ]; then
    for backend in gpu cpu; do     # 50 steps of 32 photos
        step "catsdogs_$backend" 150 $PY -m scratchnet.train catsdogs --backend "$backend" --epochs 1 --seed 0 \
            --limit 1600 --data "$DATA/catsdogs-128.tar" --out "$OUT/runs/catsdogs-$backend"
    done
    step catsdogs_compare 30 $PY benchmarks/gpu_check.py compare "$OUT/runs/catsdogs-cpu" \
        "$OUT/runs/catsdogs-gpu" "$OUT/catsdogs_compare.md"
fi
echo "gpu_check: done in $SECONDS s, $([ $status -eq 0 ] && echo 'every step passed' || echo 'some steps failed')" \
    | tee -a "$OUT/summary.txt"
exit $status
