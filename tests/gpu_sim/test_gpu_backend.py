"""The whole GPU backend on strict device arrays (tests/strict_cupy.py) with the simulated
kernels: training with validation and dropout under every optimizer equals the CPU
backend; what crosses between host and device per step is counted; models, optimizer
state and checkpoints go through files and come back on the device.

Shapes are tiny: the simulator runs each CUDA thread in Python."""
import numpy as np
import pytest

import scratchnet
import strict_cupy
from scratchnet import callbacks, layers, models, optimizers
from scratchnet.kernels import cupy_gpu
from twins import train_on_cpu_and_gpu


def small_cnn(dropout=0.3):
    return models.Sequential([
        layers.Conv2D(2, 2, activation="relu", padding="same", input_shape=(4, 4, 2)),
        layers.MaxPooling2D(2),
        layers.Conv2D(3, 2, activation="tanh"),
        layers.Flatten(),
        layers.Dropout(dropout),
        layers.Dense(3, activation="softmax"),
    ])


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4, 4, 2)).astype(np.float32), rng.integers(0, 3, n)


def twin_models(optimizer_factory, loss="sparse_categorical_crossentropy"):
    """The same model on the CPU and on the GPU backend, with the same weights."""
    scratchnet.set_backend("cpu")
    cpu = small_cnn()
    scratchnet.set_backend("gpu")
    gpu = small_cnn()
    gpu.set_weights(cpu.get_weights())
    for model in (cpu, gpu):
        model.compile(optimizer=optimizer_factory(), loss=loss, metrics=["accuracy"])
    return cpu, gpu


OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd-nesterov": lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(1e-2),
    "rmsprop-centered-momentum": lambda: optimizers.RMSprop(1e-2, momentum=0.5, centered=True),
    "adam": lambda: optimizers.Adam(1e-2),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fit_with_validation_and_dropout_equals_the_cpu_backend(name):
    x, y = data()
    xv, yv = data(4, seed=1)
    cpu, gpu = twin_models(OPTIMIZERS[name])
    histories = []
    for model in (cpu, gpu):
        scratchnet.set_random_seed(5)   # same shuffles and dropout seeds for both
        histories.append(model.fit(x, y, epochs=2, batch_size=4, validation_data=(xv, yv), verbose=0).history)
    assert gpu.backend.name == "gpu" and isinstance(gpu.layers[0].params["kernel"], strict_cupy.ndarray)
    for key in histories[0]:
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5, err_msg=key)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gpu.evaluate(xv, yv, verbose=0), cpu.evaluate(xv, yv, verbose=0), rtol=1e-5)
    predicted = gpu.predict(xv, batch_size=3, verbose=0)
    assert type(predicted) is np.ndarray
    np.testing.assert_allclose(predicted, cpu.predict(xv, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_training_step_copies_the_batch_in_and_only_the_loss_out():
    x, y = data(12)
    xv, yv = data(4, seed=1)
    _, gpu = twin_models(OPTIMIZERS["adam"])
    per_step = []

    class Watch(callbacks.Callback):   # the copies between one step's end and the next
        def on_epoch_begin(self, epoch, logs=None):
            self.last = dict(strict_cupy.TRANSFERS)

        def on_train_batch_end(self, batch, logs=None):   # logs arrive but are not read here
            now = dict(strict_cupy.TRANSFERS)
            per_step.append({k: now.get(k, 0) - self.last.get(k, 0) for k in ("to_host", "to_device")})
            self.last = now

    with strict_cupy.counting() as transfers:
        gpu.fit(x, y, epochs=2, batch_size=4, validation_data=(xv, yv), callbacks=[Watch()], verbose=0)
    # each step: x and y in; the loss out (dropout masks are drawn on the device, the
    # accuracy is summed there)
    assert per_step == [{"to_host": 1, "to_device": 2}] * 6
    # each epoch adds: the validation batch in (x, y); out, the training accuracy, the
    # validation loss and the validation accuracy, each read once
    assert transfers == {"to_host": 6 + 2 * 3, "to_device": 12 + 2 * 2}


def test_optimizer_state_goes_to_the_host_explicitly_when_saved_and_back_to_the_device_when_loaded(tmp_path):
    x, y = data()
    _, gpu = twin_models(OPTIMIZERS["rmsprop-centered-momentum"])
    scratchnet.set_random_seed(1)
    gpu.fit(x, y, epochs=1, batch_size=4, verbose=0)
    gpu.save(tmp_path / "model.npz")   # np.savez refuses device arrays: this needs explicit copies
    loaded = scratchnet.load_model(tmp_path / "model.npz")
    assert loaded.backend.name == "gpu"
    assert all(isinstance(v, strict_cupy.ndarray) for slot in loaded.optimizer.slots for v in slot.values())
    assert loaded.optimizer.iterations == gpu.optimizer.iterations == 2
    for model in (gpu, loaded):   # training continues identically from the file
        scratchnet.set_random_seed(2)
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    for a, b in zip(gpu.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    scratchnet.set_backend("cpu")
    on_cpu = scratchnet.load_model(tmp_path / "model.npz")
    assert on_cpu.backend.name == "cpu" and isinstance(on_cpu.optimizer.slots[0]["velocity"], np.ndarray)


def test_moving_a_trained_model_between_backends():
    x, y = data()
    _, gpu = twin_models(OPTIMIZERS["adam"])
    gpu.fit(x, y, epochs=1, batch_size=4, verbose=0)
    expected = gpu.predict(x, verbose=0)
    gpu.to("cpu")
    assert isinstance(gpu.optimizer.slots[0]["m"], np.ndarray)
    np.testing.assert_allclose(gpu.predict(x, verbose=0), expected, rtol=1e-6)
    gpu.to("gpu")
    assert isinstance(gpu.optimizer.slots[0]["m"], strict_cupy.ndarray)
    gpu.fit(x, y, epochs=1, batch_size=4, verbose=0)


def graph_cnn():
    """A small graph with the graph issue's layers: a fork, depthwise convolution, batch
    normalisation, average pooling, an Add and a Concatenate."""
    inputs = layers.Input(shape=(4, 4, 2))
    a = layers.Conv2D(2, 2, padding="same", activation="relu")(inputs)
    b = layers.DepthwiseConv2D(2, padding="same")(a)
    x = layers.BatchNormalization()(layers.Add()([a, b]))
    x = layers.Concatenate()([layers.AveragePooling2D(2)(x), layers.MaxPooling2D(2)(a)])
    outputs = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return models.Model(inputs, outputs)


def test_a_graph_with_batchnorm_depthwise_and_merges_trains_on_the_gpu_as_on_the_cpu():
    x, y = data(8)
    scratchnet.set_backend("cpu")
    cpu = graph_cnn()
    scratchnet.set_backend("gpu")
    gpu = graph_cnn()
    gpu.set_weights(cpu.get_weights())
    for model in (cpu, gpu):   # SGD: Adam would magnify the rounding of near-zero gradients (biases before BN)
        model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        scratchnet.set_random_seed(2)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):   # the moving statistics included
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0), rtol=1e-4, atol=1e-6)


def test_every_kernel_runs_with_a_signature_the_ptx_test_compiles():
    x, y = data(4)
    launched = []
    for name, build in (("adam", None), ("rmsprop", None), ("adam", graph_cnn), ("sgd", lambda: augmented_cnn(4))):
        if build is None:
            _, gpu = twin_models(OPTIMIZERS[name])
        else:
            scratchnet.set_backend("gpu")
            gpu = build()
            gpu.compile(optimizer=OPTIMIZERS[name](), loss="sparse_categorical_crossentropy")
        cupy_gpu.LAUNCH_LOG = []
        try:
            gpu.fit(x, y, epochs=1, batch_size=4, verbose=0)
            launched += cupy_gpu.LAUNCH_LOG
        finally:
            cupy_gpu.LAUNCH_LOG = None
    table = cupy_gpu.signatures()
    assert {name for name, _ in launched} == set(table)   # every kernel ran
    for name, signature in launched:
        assert signature in table[name], f"{name} launched with {signature}, not in signatures()"


def test_device_arrays_given_anywhere_are_copied_explicitly():
    from scratchnet import losses
    x, y = data()
    _, gpu = twin_models(OPTIMIZERS["sgd"])
    x_dev, y_dev = strict_cupy.asarray(x), strict_cupy.asarray(y)
    gpu.fit(x_dev, y_dev, epochs=1, batch_size=4, verbose=0)
    gpu.fit(x_dev, y_dev, epochs=1, batch_size=4, validation_split=0.25, verbose=0)
    gpu.evaluate(x_dev, y_dev, verbose=0)
    gpu.train_on_batch(x_dev, y_dev)
    np.testing.assert_allclose(gpu.predict(x_dev, verbose=0), gpu.predict(x, verbose=0))
    out = gpu(x)
    assert isinstance(out, strict_cupy.ndarray)
    per_sample = losses.sparse_categorical_crossentropy(y_dev, out)
    assert isinstance(per_sample, strict_cupy.ndarray) and per_sample.shape == (len(x),)
    np.testing.assert_allclose(per_sample.get(), losses.sparse_categorical_crossentropy(y, out.get()), rtol=1e-6)
    assert losses.SparseCategoricalCrossentropy()(y_dev, out) == pytest.approx(float(per_sample.mean()), rel=1e-6)


def test_a_live_progress_bar_reads_the_metrics_once_per_redraw(monkeypatch, capsys):
    # In a terminal or notebook the bar is redrawn at most every 0.1 s; each redraw reads
    # the metrics it shows. With every step redrawn: the loss and the accuracy, once each.
    x, y = data(12)
    _, gpu = twin_models(OPTIMIZERS["adam"])
    monkeypatch.setattr(callbacks, "_interactive", lambda stream: True)
    monkeypatch.setattr(callbacks.Progbar, "interval", 0.0)
    with strict_cupy.counting() as transfers:
        gpu.fit(x, y, epochs=1, batch_size=4, verbose=1)
    assert "accuracy:" in capsys.readouterr().out
    assert transfers["to_host"] == 3 * 2 + 1   # 3 steps x (loss, accuracy), + the epoch's accuracy


def test_cpu_vs_gpu_benchmark_runs_both_halves_on_tiny_shapes(capsys):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import cpu_vs_gpu
    cpu, gpu = cpu_vs_gpu.main(["--tiny", "--repeats", "1", "--no-write"])
    assert set(cpu) == set(gpu) and all(v > 0 for v in gpu.values())
    assert "CUDA simulator" in capsys.readouterr().out


def test_the_command_line_on_the_gpu_checkpoints_and_resumes_bit_for_bit(tmp_path, monkeypatch, capsys):
    # The CLI's own models take minutes per step in the simulator, so the MNIST experiment
    # gets a tiny model and tiny digits here; everything else is the real command line:
    # fit with validation, a checkpoint per epoch, Ctrl-C, --resume, predict, plots.
    from scratchnet import train
    from scratchnet.cli import experiments
    from cli_helpers import interrupt_after, resume_with_the_printed_command
    rng = np.random.default_rng(0)
    x = rng.random((24, 4, 4, 1)).astype(np.float32)
    y = rng.integers(0, 10, 24)
    monkeypatch.setattr(experiments, "mnist_data", lambda settings: (x[:16], y[:16], x[16:], y[16:]))
    monkeypatch.setattr(experiments, "mnist_model", lambda: models.Sequential([
        layers.Conv2D(2, 2, activation="relu", input_shape=(4, 4, 1)), layers.Flatten(),
        layers.Dropout(0.2), layers.Dense(10, activation="softmax")]))
    flags = ["mnist", "--backend", "gpu", "--batch-size", "8", "--seed", "3", "--epochs", "2"]
    assert train.main(flags + ["--out", str(tmp_path / "straight")]) == 0
    original = interrupt_after(monkeypatch, 1)
    assert train.main(flags + ["--out", str(tmp_path / "split")]) == 130
    text = capsys.readouterr().out
    monkeypatch.setattr(train.Checkpoint, "on_epoch_end", original)
    assert resume_with_the_printed_command(text) == 0
    checkpoint = scratchnet.load_model(tmp_path / "split" / "checkpoint.npz")
    assert checkpoint.saved_extra["settings"]["backend"] == "gpu" and checkpoint.backend.name == "gpu"
    straight = scratchnet.load_model(tmp_path / "straight" / "model.npz").get_weights()
    for a, b in zip(straight, scratchnet.load_model(tmp_path / "split" / "model.npz").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "split" / "confusion.png").stat().st_size > 0


def augmented_cnn(size=6):
    return models.Sequential([
        layers.Input((size, size, 2)), layers.Conv2D(2, 1), layers.Resizing(5, 5), layers.RandomFlip(), layers.RandomRotation(0.2),
        layers.RandomZoom(0.2, fill_mode="constant"), layers.RandomTranslation(0.1, 0.2, interpolation="nearest"),
        layers.RandomContrast(0.3, value_range=(-5, 5)), layers.RandomCrop(4, 4), layers.Conv2D(2, 2),
        layers.Flatten(), layers.Dense(3, activation="softmax")])


def test_augmentation_layers_train_on_the_gpu_as_on_the_cpu():
    # (a convolution first, so that the backward passes of the augmentation layers run too)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 8)
    cpu, gpu = train_on_cpu_and_gpu(augmented_cnn, x, y)
    scratchnet.set_random_seed(4)
    on_gpu = gpu(x)                                  # a direct call augments, on the device
    scratchnet.set_random_seed(4)
    np.testing.assert_allclose(strict_cupy.asnumpy(on_gpu), cpu(x), rtol=1e-4, atol=1e-6)
    from scratchnet import ops
    assert ops.sigmoid(on_gpu).shape == (8, 3) and ops.convert_to_numpy(on_gpu).shape == (8, 3)   # copied explicitly
