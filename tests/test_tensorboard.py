"""callbacks.TensorBoard: its event files read back with TensorBoard's own reader (tag names,
steps and values against the History and the model's weights), the same tags as real Keras
writes, its pictures of weights, and its refusals."""
import io
import json
import os

import numpy as np
import pytest

from scratchnet import callbacks, layers, models
from scratchnet.training.tensorboard import weight_image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("tensorboardX", reason="the event writer (tensorboard extra) is not installed")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="TensorBoard's reader (dev extra) is not installed")


def read(folder):
    """TensorBoard's reader over one run folder, keeping every event."""
    reader = event_accumulator.EventAccumulator(str(folder), purge_orphaned_data=False, size_guidance={
        kind: 0 for kind in ("scalars", "histograms", "images", "tensors", "compressedHistograms")})
    reader.Reload()
    return reader


def every_tag(reader):
    tags = reader.Tags()
    return set(tags["scalars"]) | set(tags["histograms"]) | set(tags["images"]) | set(tags["tensors"])


def small_cnn(module, L):
    model = module.Sequential([L.Input((6, 6, 1)), L.Conv2D(3, 3, activation="relu", name="conv"),
                               L.Flatten(name="flat"), L.Dense(2, activation="softmax", name="head")], name="cnn")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 2, n)


def fit_with_tensorboard(module, L, log_dir, **options):
    model = small_cnn(module, L)
    x, y = data()
    board = module_callbacks(module).TensorBoard(log_dir=str(log_dir), **options)
    seen = []
    batch_logs = module_callbacks(module).LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(float(logs["loss"])))
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=data(16, seed=1), verbose=0,
                        callbacks=[board, batch_logs])
    return model, history, seen


def module_callbacks(module):
    return callbacks if module is models else module.callbacks


def test_the_event_files_hold_keras_tags_steps_and_the_historys_values(tmp_path):
    model, history, batch_losses = fit_with_tensorboard(models, layers, tmp_path, histogram_freq=1,
                                                        write_images=True, update_freq=2)
    train, validation = read(tmp_path / "train"), read(tmp_path / "validation")

    def series(reader, tag):
        events = reader.Scalars(tag)
        return [e.step for e in events], np.array([e.value for e in events])

    for name in ("loss", "accuracy"):
        steps, values = series(train, "epoch_" + name)
        assert steps == [0, 1]
        np.testing.assert_allclose(values, history.history[name], rtol=1e-6)
        steps, values = series(validation, "epoch_" + name)
        assert steps == [0, 1]
        np.testing.assert_allclose(values, history.history["val_" + name], rtol=1e-6)
        steps, values = series(validation, f"evaluation_{name}_vs_iterations")
        assert steps == [5, 10]             # 40 images in batches of 8: the optimizer's iterations
        np.testing.assert_allclose(values, history.history["val_" + name], rtol=1e-6)
    steps, rates = series(train, "epoch_learning_rate")
    assert steps == [0, 1] and np.allclose(rates, 0.01)
    steps, values = series(train, "batch_loss")
    assert steps == [2, 4, 6, 8, 10]        # every second batch, counted from 1 over the whole fit
    np.testing.assert_allclose(values, batch_losses[1::2], rtol=1e-6)

    for layer, weight in (("conv", "kernel"), ("conv", "bias"), ("head", "kernel"), ("head", "bias")):
        last = train.Histograms(f"{model.name}/{layer}/{weight}/histogram")[-1]
        values = model.get_layer(layer).params[weight]
        assert last.step == 1
        assert last.histogram_value.num == values.size
        np.testing.assert_allclose([last.histogram_value.min, last.histogram_value.max, last.histogram_value.sum],
                                   [values.min(), values.max(), values.sum()], rtol=1e-5, atol=1e-6)
    from PIL import Image
    picture = Image.open(io.BytesIO(train.Images(f"{model.name}/conv/kernel/image")[-1].encoded_image_string))
    expected = (weight_image(model.get_layer("conv").params["kernel"]) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(picture.convert("L")), expected[..., 0])


def test_the_graph_is_the_models_keras_config_which_tensorboard_draws(tmp_path):
    from tensorboard.plugins.graph import keras_util
    model, _, _ = fit_with_tensorboard(models, layers, tmp_path)
    train = read(tmp_path / "train")
    event, = train.Tensors("keras")
    config = json.loads(event.tensor_proto.string_val[0])
    assert config == json.loads(model.to_json())
    drawn = keras_util.keras_model_to_graph_def(config)
    names = [node.name for node in drawn.node]
    assert [name.split("/")[-1] for name in names[-3:]] == ["conv", "flat", "head"]
    assert train.Tags()["histograms"] == []            # histogram_freq=0: none


@pytest.mark.parametrize("update_freq", ["epoch", 2])
def test_the_same_tags_and_steps_as_keras_writes(tmp_path, update_freq):
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    options = dict(histogram_freq=1, write_images=True, update_freq=update_freq, write_steps_per_second=True)
    fit_with_tensorboard(models, layers, tmp_path / "ours", **options)
    fit_with_tensorboard(keras, keras.layers, tmp_path / "keras", **options)
    for run in ("train", "validation"):
        ours, theirs = read(tmp_path / "ours" / run), read(tmp_path / "keras" / run)
        assert every_tag(ours) == every_tag(theirs), run
        for tag in ours.Tags()["scalars"]:
            steps = [e.step for e in ours.Scalars(tag)]
            # Keras 3.15 with an update_freq in batches loses epoch 0's epoch_* summaries in both
            # runs; scratchnet writes every epoch, as Keras does with the default update_freq
            keras_lost_it = update_freq != "epoch" and tag.startswith("epoch_")
            assert steps[keras_lost_it:] == [e.step for e in theirs.Tensors(tag)], (run, tag)


def test_weight_pictures_are_laid_out_as_documented():
    kernel = np.arange(8, dtype=np.float32).reshape(2, 2, 1, 2)      # two 2x2 one-channel filters
    picture = weight_image(kernel)
    assert picture.shape == (32, 65, 1)      # each enlarged 16x to 32x32, one pixel apart
    assert picture[0, 0, 0] == 0.0 and picture[31, 31, 0] == 6 / 7      # kernel[1, 1, 0, 0] = 6 of 0..7
    assert picture[0, 33, 0] == 1 / 7 and np.all(picture[:, 32] == 1.0)
    colour = weight_image(np.random.default_rng(0).standard_normal((3, 3, 3, 9)))
    assert colour.shape == (2 * 34 - 1, 8 * 34 - 1, 3) and colour.min() == 0.0 and colour.max() == 1.0
    assert weight_image(np.ones((10, 3))).shape == (12, 40, 1)       # the longer side across, 4x
    assert weight_image(np.ones(5)).shape == (7, 35, 1)
    assert weight_image(np.ones((3, 3, 8, 4))) is None               # Keras draws no deeper filters either
    assert weight_image(np.array([1.0, np.nan])) is None


@pytest.mark.parametrize("options, message", [
    (dict(update_freq="often"), r"update_freq must be 'epoch', 'batch' or a whole number.*got 'often'"),
    (dict(update_freq=0), r"update_freq .* got 0"),
    (dict(histogram_freq=-1), r"histogram_freq must be a whole number of epochs >= 0 .*got -1"),
    (dict(histogram_freq=1.5), r"got 1.5"),
    (dict(profile_batch=(3, 1)), r"profile_batch must be .* first <= last.*got \(3, 1\)"),
    (dict(profile_batch="a,b"), r"got 'a,b'"),
])
def test_bad_arguments_say_what_was_expected_and_what_came(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        callbacks.TensorBoard(log_dir=tmp_path, **options)


def test_profiling_is_accepted_with_a_warning_and_a_missing_writer_says_how_to_install_it(tmp_path, monkeypatch):
    with pytest.warns(UserWarning, match="no profiler trace, profile_batch='10,20' is ignored"):
        board = callbacks.TensorBoard(log_dir=tmp_path, profile_batch="10,20")
    assert board.profile_batch == (10, 20)
    monkeypatch.setitem(__import__("sys").modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'scratchnet\[tensorboard\]'"):
        callbacks.TensorBoard(log_dir=tmp_path)


def test_the_tensorboard_program_serves_the_runs(tmp_path):
    """The real `tensorboard` server (its Python loader) over a fit's folder: the scalars, the
    conceptual graph, the histograms and the pictures, through its HTTP data routes."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    model, history, _ = fit_with_tensorboard(models, layers, tmp_path / "logs", histogram_freq=1, write_images=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path / "logs"),
                               "--host", "127.0.0.1", "--port", str(port), "--load_fast", "false"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(route):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/{route}", timeout=10) as answer:
            return answer.read()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if sorted(json.loads(get("runs"))) == ["train", "validation"]:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "tensorboard did not start"
            time.sleep(0.5)
        served = json.loads(get("plugin/scalars/scalars?run=validation&tag=epoch_loss"))
        assert [step for _, step, _ in served] == [0, 1]
        np.testing.assert_allclose([value for _, _, value in served], history.history["val_loss"], rtol=1e-6)
        graph = get("plugin/graphs/graph?run=train&tag=keras&conceptual=true").decode()
        assert 'name: "cnn/head"' in graph and 'input: "cnn/flat"' in graph and 's: "Conv2D"' in graph
        assert set(json.loads(get("plugin/histograms/tags"))["train"]) == {
            f"cnn/{layer}/{weight}/histogram" for layer in ("conv", "head") for weight in ("kernel", "bias")}
        pictures = json.loads(get("plugin/images/images?run=train&tag=cnn/conv/kernel/image"))
        assert [picture["step"] for picture in pictures] == [0, 1]
    finally:
        server.kill()
        server.wait()


def test_a_second_fit_adds_files_and_an_evaluation_is_on_disk_at_once(tmp_path):
    model = small_cnn(models, layers)
    x, y = data()
    board = callbacks.TensorBoard(log_dir=tmp_path)
    first = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[board])
    second = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[board])
    loss, _ = model.evaluate(x, y, verbose=0, callbacks=[board])     # the writer stays open after this
    assert len(list((tmp_path / "train").iterdir())) == 2            # in the same second, nothing overwritten
    train, validation = read(tmp_path / "train"), read(tmp_path / "validation")
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1, 0, 1]
    np.testing.assert_allclose([e.value for e in train.Scalars("epoch_loss")],
                               first.history["loss"] + second.history["loss"], rtol=1e-6)
    evaluation, = validation.Scalars("evaluation_loss_vs_iterations")
    assert evaluation.step == 20 and np.isclose(evaluation.value, loss, rtol=1e-6)


def test_to_json_is_keras_json_that_keras_reads_back():
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    ours = small_cnn(models, layers)
    theirs = keras.models.model_from_json(ours.to_json(indent=1))
    assert [layer.name for layer in theirs.layers] == ["conv", "flat", "head"]
    assert [w.shape for w in theirs.get_weights()] == [w.shape for w in ours.get_weights()]
    assert json.loads(ours.to_json())["config"]["name"] == "cnn"
