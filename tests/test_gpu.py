"""The GPU backend, checked on a machine without a GPU:
- its kernels and the whole backend (fit, evaluate, predict, save, load, checkpoints,
  --resume) run under the CUDA simulator on strict CuPy-like device arrays
  (tests/gpu_sim, in a process of its own, since the simulator must be on before Numba
  is imported);
- every kernel compiles to PTX for compute capability 8.0 and 9.0 with every signature
  the backend launches it with (skipped only where a part of the CUDA toolchain is absent,
  named in the reason; a failure to compile with the toolchain present fails);
- asking for the GPU without CuPy or a GPU gives one clear error.
Tests marked ``gpu`` need a real GPU: ``pytest -m gpu`` on a GPU machine."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scratchnet

HERE = Path(__file__).resolve().parent


def test_gpu_kernels_and_training_step_under_the_cuda_simulator():
    pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "gpu_sim")],
                         env=env, capture_output=True, text=True, cwd=HERE.parent, timeout=1500)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


def _missing_cuda_toolchain_parts():
    """The parts of the CUDA toolchain that PTX compilation needs and this machine lacks:
    numba-cuda, libNVVM, libdevice, NVRTC. A part counts as missing only when looking for
    it finds nothing; any other error is raised, so a broken toolchain fails the test."""
    if importlib.util.find_spec("numba") is None or importlib.util.find_spec("numba.cuda") is None:
        return ["numba-cuda (pip install numba-cuda)"]
    from numba.cuda.cudadrv import libs, nvvm
    from numba.cuda.cudadrv.error import CudaSupportError, NvvmSupportError
    missing = []
    if not nvvm.is_available():
        missing.append("libNVVM (the CUDA toolkit's nvvm/lib64/libnvvm.so; set CUDA_HOME)")
    try:
        libdevice = libs.get_libdevice()
    except (CudaSupportError, NvvmSupportError, OSError):
        libdevice = None
    if not libdevice or not Path(libdevice).is_file():
        missing.append("libdevice (the CUDA toolkit's nvvm/libdevice/libdevice.10.bc)")
    nvrtc = libs.get_cuda_paths().get("nvrtc")
    if nvrtc is None or not nvrtc.info or not Path(nvrtc.info).exists():
        missing.append("NVRTC (pip install nvidia-cuda-nvrtc, in the dev extra)")
    return missing


def _require_cuda_toolchain():
    missing = _missing_cuda_toolchain_parts()
    if missing:
        pytest.skip("cannot compile PTX here; missing: " + "; ".join(missing))
    from numba import cuda
    return cuda


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)])
def test_every_gpu_kernel_compiles_to_ptx(cc):
    cuda = _require_cuda_toolchain()
    from scratchnet.kernels import cupy_gpu
    compiled = 0
    for name, signatures in cupy_gpu.signatures().items():
        for signature in signatures:
            ptx, _ = cuda.compile_ptx(cupy_gpu.KERNELS[name].py_func, signature, cc=cc)
            assert ".entry" in ptx and f"sm_{cc[0]}{cc[1]}" in ptx, name
            compiled += 1
    assert compiled == 2 * len(cupy_gpu.KERNELS)


def test_a_compilation_failure_with_the_toolchain_present_fails_instead_of_skipping(monkeypatch):
    cuda = _require_cuda_toolchain()

    def broken(*args, **kwargs):
        raise RuntimeError("NVVM_ERROR_COMPILATION: simulated")
    monkeypatch.setattr(cuda, "compile_ptx", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        test_every_gpu_kernel_compiles_to_ptx((8, 0))


def test_a_missing_toolchain_part_is_named_in_the_skip(monkeypatch):
    pytest.importorskip("numba.cuda")
    from numba.cuda.cudadrv import nvvm
    monkeypatch.setattr(nvvm, "is_available", lambda: False)
    with pytest.raises(pytest.skip.Exception, match="missing: libNVVM"):
        _require_cuda_toolchain()


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="the simulator stands in for a GPU")
def test_asking_for_the_gpu_without_one_says_what_is_missing():
    try:
        import cupy  # noqa: F401
        has_cupy = True
    except ImportError:
        has_cupy = False
    if has_cupy:
        pytest.skip("CuPy is installed; this checks the message on machines without it")
    with pytest.raises(scratchnet.backend.GPUUnavailable, match=r"needs CuPy.*pip install 'scratchnet\[gpu\]'"):
        scratchnet.set_backend("gpu")
    assert scratchnet.backend.current().name == "cpu"   # nothing changed


def test_device_input_to_a_cpu_model_is_copied_to_the_host_explicitly(monkeypatch):
    import strict_cupy
    monkeypatch.setitem(sys.modules, "cupy", strict_cupy)
    from scratchnet.data_adapter import check_inputs
    x = np.ones((2, 3), np.float32)
    with strict_cupy.counting() as transfers:
        converted = check_inputs(strict_cupy.asarray(x), (3,), np.float32)
    assert isinstance(converted, np.ndarray) and converted.shape == (2, 3)
    assert transfers == {"to_device": 1, "to_host": 1}
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(strict_cupy.asarray(x))


@pytest.mark.gpu
def test_real_gpu_matches_cpu():
    pytest.importorskip("cupy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    from scratchnet import layers, models
    cpu = models.Sequential([layers.Conv2D(8, 3, activation="relu", input_shape=(12, 12, 3)), layers.MaxPooling2D(2),
                             layers.Flatten(), layers.Dense(4, activation="softmax")])
    cpu.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    gpu = models.Sequential([layers.Conv2D(8, 3, activation="relu", input_shape=(12, 12, 3)), layers.MaxPooling2D(2),
                             layers.Flatten(), layers.Dense(4, activation="softmax")])
    gpu.set_weights(cpu.get_weights())
    gpu.to("gpu")
    gpu.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    for _ in range(3):
        assert gpu.train_on_batch(x, y) == pytest.approx(cpu.train_on_batch(x, y), rel=1e-4)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


def test_cpu_vs_gpu_benchmark_says_when_the_gpu_half_was_not_measured(capsys, monkeypatch):
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    import cpu_vs_gpu
    monkeypatch.setattr(cpu_vs_gpu, "gpu_available", lambda: (False, "no CuPy"))
    cpu, gpu = cpu_vs_gpu.main(["--tiny", "--repeats", "1", "--no-write"])
    assert gpu == {} and len(cpu) == 10
    assert "The GPU half was not measured" in capsys.readouterr().out


class _RecordedKernel:
    """Stands in for a compiled numba-cuda kernel: records its launch configuration."""
    __name__ = "recorded"

    def __init__(self):
        self.launches = []

    def __getitem__(self, configuration):
        return lambda *args: self.launches.append((configuration, args))


def test_kernels_queue_on_cupys_current_stream_without_a_host_sync(monkeypatch):
    """Off the simulator, each array goes to numba-cuda as a device view imported without
    the stream synchronisation numba does by default, and the kernel is launched on
    CuPy's current stream: stream order, not the host, makes it wait for CuPy's work.
    (No GPU here: numba's two entry points are recorded instead of called.)"""
    import inspect

    import strict_cupy
    from numba import cuda

    from scratchnet.kernels import cupy_gpu
    parameters = inspect.signature(cuda.from_cuda_array_interface).parameters
    assert {"desc", "owner", "sync"} <= set(parameters)   # the real API has what we call
    assert callable(cuda.external_stream) and callable(cuda.legacy_default_stream)

    monkeypatch.setitem(sys.modules, "cupy", strict_cupy)
    monkeypatch.setattr(cupy_gpu, "simulating", lambda: False)
    monkeypatch.setattr(cupy_gpu, "_STREAMS", {})
    imported = []

    def from_cuda_array_interface(desc, owner=None, sync=True):
        imported.append((desc["stream"], owner, sync))
        return ("view", owner)
    monkeypatch.setattr(cuda, "from_cuda_array_interface", from_cuda_array_interface)
    monkeypatch.setattr(cuda, "legacy_default_stream", lambda: "legacy default stream")
    monkeypatch.setattr(cuda, "external_stream", lambda ptr: f"external stream {ptr:#x}")

    kernel = _RecordedKernel()
    a, b = strict_cupy.zeros(5, np.float32), strict_cupy.ones(5, np.float32)
    cupy_gpu._launch(kernel, 5, a, b, np.float32(2))
    with strict_cupy.cuda.Stream(0xBEEF):
        cupy_gpu._launch(kernel, 5, a, np.float32(2))
    cupy_gpu._launch(kernel, 5, b)

    assert [config[2] for config, _ in kernel.launches] == [
        "legacy default stream", "external stream 0xbeef", "legacy default stream"]
    assert kernel.launches[0][1] == (("view", a), ("view", b), np.float32(2))
    assert [sync for *_, sync in imported] == [False] * 4
    assert [stream for stream, *_ in imported] == [1, 1, 0xBEEF, 1]
    assert len(cupy_gpu._STREAMS) == 2   # each stream wrapped once
    with pytest.raises(TypeError, match="host \\(NumPy\\) array"):
        cupy_gpu._launch(kernel, 5, np.zeros(5, np.float32))


def test_the_gpu_check_script_skips_cleanly_without_a_gpu(tmp_path):
    """benchmarks/gpu_check.sh, meant for a machine with an NVIDIA GPU, exits 0 here and says why."""
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: the script would run the real checks")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run(["bash", str(HERE.parent / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "SKIPPED").read_text().startswith("no CuPy")
    assert "gpu_check: skipped: no CuPy" in done.stdout
    assert "numba" in (tmp_path / "out" / "environment.txt").read_text()


def test_the_gpu_checks_comparison_of_two_runs(tmp_path):
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    import gpu_check
    for name, loss, accuracy in (("cpu", [0.50, 0.30], [0.80, 0.90]), ("same", [0.505, 0.301], [0.81, 0.90]),
                                 ("off", [0.50, 0.40], [0.80, 0.90])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.json").write_text(json.dumps({"history": {"loss": loss, "accuracy": accuracy}}))
    assert gpu_check.compare(tmp_path / "cpu", tmp_path / "same", tmp_path / "same.md")
    assert not gpu_check.compare(tmp_path / "cpu", tmp_path / "off", tmp_path / "off.md")
    assert (tmp_path / "off.md").read_text().startswith("DIFFER") and "| loss | 2 | 0.3000 | 0.4000 |" in \
        (tmp_path / "off.md").read_text()
