"""A whole training step through the GPU backend (simulated, NumPy standing in for CuPy)
against the CPU backend; plus moving, saving and the launch-signature table."""
import numpy as np
import pytest

import scratchnet
from scratchnet import layers, models, optimizers
from scratchnet.kernels import cupy_gpu


def small_cnn():
    return models.Sequential([
        layers.Conv2D(3, 3, activation="relu", padding="same", input_shape=(6, 6, 2)),
        layers.MaxPooling2D(2),
        layers.Conv2D(4, 2, activation="relu"),
        layers.Flatten(),
        layers.Dense(5, activation="relu"),
        layers.Dense(3, activation="softmax"),
    ])


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_training_step_equals_the_cpu_backend(optimizer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 4)
    scratchnet.set_random_seed(1)
    cpu = small_cnn()
    cpu.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    gpu = small_cnn()
    gpu.set_weights(cpu.get_weights())
    gpu.to("gpu")
    gpu.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    assert gpu.backend.name == "gpu" and cpu.backend.name == "cpu"
    cupy_gpu.LAUNCH_LOG = []
    try:
        for _ in range(2):
            loss_cpu, grads_cpu, _ = cpu.compute_gradients(x, y)
            loss_gpu, grads_gpu, _ = gpu.compute_gradients(x, y)
            assert loss_gpu == pytest.approx(loss_cpu, rel=1e-5)
            for a, b in zip(grads_cpu, grads_gpu):
                np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
            assert cpu.train_on_batch(x, y) == pytest.approx(gpu.train_on_batch(x, y), rel=1e-5)
        for a, b in zip(cpu.get_weights(), gpu.get_weights()):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
        log = cupy_gpu.LAUNCH_LOG
    finally:
        cupy_gpu.LAUNCH_LOG = None
    table = cupy_gpu.signatures()
    other_optimizer = "rmsprop" if optimizer == "adam" else "adam"
    assert {name for name, _ in log} == set(table) - {other_optimizer}   # every other kernel ran
    for name, signature in log:
        assert signature in table[name], f"{name} launched with {signature}, not in signatures()"


def test_fit_predict_and_save_a_gpu_model_then_load_it_on_the_cpu(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    scratchnet.set_backend("gpu")
    model = small_cnn()
    model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, batch_size=6, verbose=0, validation_data=(x, y))
    assert len(history.history["val_accuracy"]) == 1
    predictions = model.predict(x)
    assert isinstance(predictions, np.ndarray)
    model.save(tmp_path / "gpu_model.npz")
    scratchnet.set_backend("cpu")
    loaded = scratchnet.load_model(tmp_path / "gpu_model.npz")
    assert loaded.backend.name == "cpu"
    np.testing.assert_allclose(loaded.predict(x), predictions, rtol=1e-5, atol=1e-6)
    back = model.to("cpu")
    np.testing.assert_allclose(back.predict(x), predictions, rtol=1e-5, atol=1e-6)


def test_cpu_vs_gpu_benchmark_runs_both_halves_on_tiny_shapes(capsys):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import cpu_vs_gpu
    cpu, gpu = cpu_vs_gpu.main(["--tiny", "--repeats", "1", "--no-write"])
    assert set(cpu) == set(gpu) and all(v > 0 for v in gpu.values())
    assert "CUDA simulator" in capsys.readouterr().out
