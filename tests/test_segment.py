"""The segment experiment: the digit scenes (scratchnet.datasets.digit_scenes), the U-Net,
python -m scratchnet.train segment (history with mean IoU, the mask plot, resume, --from),
and python -m scratchnet.predict writing a mask overlay for a per-pixel model."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import require_mnist
from scratchnet import layers, load_model, metrics, models, predict, train
from scratchnet.cli import plots
from scratchnet.cli.segment import segment_model, mask_scores
from scratchnet.datasets import digit_scenes, mnist
from test_datasets import idx_bytes, write_mnist


def squares(labels):
    """Digit images that are solid squares (all 255), one per label: each placed digit then
    covers exactly its square on the canvas."""
    labels = np.asarray(labels, np.uint8)
    return np.full((len(labels), 28, 28), 255, np.uint8), labels


# ----- the scenes --------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_scenes_and_another_seed_others():
    rng = np.random.default_rng(0)
    digits, labels = rng.integers(0, 256, (30, 28, 28)).astype(np.uint8), rng.integers(0, 10, 30).astype(np.uint8)
    x1, m1 = digit_scenes.compose(digits, labels, 40, seed=5)
    x2, m2 = digit_scenes.compose(digits, labels, 40, seed=5)
    x3, m3 = digit_scenes.compose(digits, labels, 40, seed=6)
    assert x1.shape == (40, 64, 64, 1) and x1.dtype == np.float32 and m1.shape == (40, 64, 64) and m1.dtype == np.uint8
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(x1, x3)
    # a scene does not depend on how many scenes are drawn with it
    x4, m4 = digit_scenes.compose(digits, labels, 10, seed=5)
    np.testing.assert_array_equal(x4, x1[:10])
    np.testing.assert_array_equal(m4, m1[:10])


def test_a_pixel_is_labelled_exactly_where_the_image_passes_the_threshold():
    rng = np.random.default_rng(1)
    digits, labels = rng.integers(0, 256, (50, 28, 28)).astype(np.uint8), rng.integers(0, 10, 50).astype(np.uint8)
    x, m = digit_scenes.compose(digits, labels, 60, seed=2)
    assert 0 <= x.min() and x.max() <= 1 and m.max() <= 10
    np.testing.assert_array_equal(m > 0, x[..., 0] > digit_scenes.THRESHOLD)
    assert set(np.unique(m)) <= {0} | set((1 + labels).tolist())


def test_each_digit_lands_where_its_layout_says_and_the_later_digit_wins():
    digits, labels = squares(range(10))
    count, seed = 200, 3
    x, m = digit_scenes.compose(digits, labels, count, seed)
    present, chosen, sides, corners = digit_scenes.layout(count, len(digits), seed)
    assert present[:, :2].all() and set(present.sum(axis=1)) == {2, 3, 4}
    assert sides.min() >= digit_scenes.SIDES[0] and sides.max() <= digit_scenes.SIDES[1]
    assert (corners >= 0).all() and (corners + sides[..., None] <= 64).all()
    for scene in range(count):
        expected = np.zeros((64, 64), np.uint8)
        for slot in np.flatnonzero(present[scene]):        # pasted in slot order: later ones overwrite
            (top, left), side = corners[scene, slot], sides[scene, slot]
            expected[top:top + side, left:left + side] = 1 + labels[chosen[scene, slot]]
        np.testing.assert_array_equal(m[scene], expected)
        np.testing.assert_array_equal(x[scene, ..., 0], (expected > 0).astype(np.float32))
        # the quadrants keep every digit visible: each one still shows in the mask
        for slot in np.flatnonzero(present[scene]):
            (top, left), side = corners[scene, slot], sides[scene, slot]
            assert (m[scene, top:top + side, left:left + side] == 1 + labels[chosen[scene, slot]]).any()


def test_a_digit_is_scaled_bilinearly_and_keeps_its_range():
    digit = np.zeros((1, 28, 28), np.uint8)
    digit[0, 10:18, 10:18] = 255
    x, m = digit_scenes.compose(digit, np.array([7], np.uint8), 30, seed=0)
    present, _, sides, _ = digit_scenes.layout(30, 1, 0)
    ink = (m > 0).reshape(30, -1).sum(axis=1)
    # each 8x8 block grows or shrinks with its digit: about (8 * side / 28)**2 pixels each
    expected = (np.round(8 * sides / 28) ** 2 * present).sum(axis=1)
    assert np.all(np.abs(ink - expected) <= 4 * np.ceil(8 * sides.max() / 28) * present.sum(axis=1))
    assert set(np.unique(m)) == {0, 8} and x.max() == pytest.approx(1.0)


def test_bad_digits_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"shape \(N, 28, 28\), got \(3, 28\)"):
        digit_scenes.compose(np.zeros((3, 28)), np.zeros(3, int), 1, 0)
    with pytest.raises(ValueError, match="labels from 0 to 9, got int64 from 0 to 12"):
        digit_scenes.compose(np.zeros((2, 28, 28)), np.array([0, 12]), 1, 0)
    with pytest.raises(ValueError, match="one label per digit"):
        digit_scenes.compose(np.zeros((2, 28, 28)), np.array([0]), 1, 0)


def test_training_scenes_come_from_training_digits_and_test_scenes_from_test_digits(tmp_path):
    """Training digits are solid 255 and test digits solid 180: every lit pixel tells its split."""
    for key, stem in mnist.FILES.items():
        n = 7 if "train" in key else 5
        value = 255 if "train" in key else 180
        array = np.full((n, 28, 28), value, np.uint8) if key.startswith("x") else np.arange(n, dtype=np.uint8)
        (tmp_path / stem).write_bytes(idx_bytes(array))
    (x_train, m_train), (x_test, m_test) = digit_scenes.load_data(tmp_path, train_scenes=20, test_scenes=6)
    assert x_train.shape == (20, 64, 64, 1) and x_test.shape == (6, 64, 64, 1)
    assert np.allclose(x_train[x_train > 0], 1) and np.allclose(x_test[x_test > 0], 180 / 255)
    assert set(np.unique(m_train)) <= set(range(1, 8)) | {0} and set(np.unique(m_test)) <= set(range(1, 6)) | {0}


def test_scenes_of_the_real_mnist():
    path = require_mnist()
    (x_train, m_train), (x_test, m_test) = digit_scenes.load_data(path, train_scenes=300, test_scenes=30)
    assert set(np.unique(m_train)) == set(range(11))            # the background and every digit
    np.testing.assert_array_equal(m_test > 0, x_test[..., 0] > 0.5)
    assert 0.03 < (m_train > 0).mean() < 0.2                     # digits are thin: most pixels are background


# ----- the U-Net ---------------------------------------------------------------------------------
def keras_unet(keras, filters=(16, 32, 64)):
    """The same U-Net in Keras 3, layer for layer."""
    kl = keras.layers

    def block(x, width):
        for _ in range(2):
            x = kl.ReLU()(kl.BatchNormalization()(kl.Conv2D(width, 3, padding="same", use_bias=False)(x)))
        return x

    inputs = keras.Input((64, 64, 1))
    x, skips = inputs, []
    for width in filters[:-1]:
        x = block(x, width)
        skips.append(x)
        x = kl.MaxPooling2D(2)(x)
    x = block(x, filters[-1])
    for width, skip in zip(reversed(filters[:-1]), reversed(skips)):
        x = kl.Concatenate()([kl.Conv2DTranspose(width, 2, strides=2, padding="same")(x), skip])
        x = block(x, width)
    return keras.Model(inputs, kl.Conv2D(11, 1, activation="softmax")(x))


def test_the_unet_has_keras_s_shapes_and_parameter_count():
    model = segment_model()
    assert model.input_shape == (None, None, None, 1) and model.output_shape == (None, None, None, 11)
    assert model.count_params() == 117_883
    assert model.predict(np.zeros((1, 32, 48, 1), np.float32), verbose=0).shape == (1, 32, 48, 11)   # any size
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Conv2DTranspose", "Concatenate", "BatchNormalization", "MaxPooling2D"} <= kinds
    probabilities = model.predict(np.random.default_rng(0).random((2, 64, 64, 1), np.float32), verbose=0)
    assert probabilities.shape == (2, 64, 64, 11) and np.allclose(probabilities.sum(axis=-1), 1, atol=1e-5)
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    reference = keras_unet(keras)
    assert model.count_params() == reference.count_params()
    assert sorted(w.shape for w in model.get_weights()) == sorted(tuple(w.shape) for w in reference.get_weights())


def test_mean_iou_and_the_pixel_confusion_matrix():
    y = np.array([[0, 0, 1], [2, 2, 0]])
    p = np.array([[0, 1, 1], [2, 0, 0]])
    counts, mean_iou = mask_scores(y, p)
    np.testing.assert_array_equal(counts[:3, :3], [[2, 1, 0], [0, 1, 0], [1, 0, 1]])
    assert counts[3:].sum() == counts[:, 3:].sum() == 0
    # IoU: class 0 2/(3+3-2), class 1 1/(1+2-1), class 2 1/(2+1-1); the classes absent are left out
    assert mean_iou == pytest.approx((2 / 4 + 1 / 2 + 1 / 2) / 3, rel=1e-6)
    np.testing.assert_array_equal(plots.confusion_matrix(y, p, 11), counts)


def test_the_mask_plot_has_image_true_and_predicted_columns(tmp_path):
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 11, (3, 64, 64)).astype(np.uint8)
    path = plots.plot_masks(rng.random((3, 64, 64, 1)), masks, masks[::-1], digit_scenes.CLASS_NAMES,
                            tmp_path / "masks.png")
    with Image.open(path) as picture:
        width, height = picture.size
    assert width == 750 and abs(height - 100 * (2.4 * 3 + 0.8)) <= 1      # 3 columns, 3 rows and the legend
    assert plots.class_colours(11).shape == (11, 3) and len({tuple(c) for c in plots.class_colours(11)}) == 11


def test_the_history_plot_gets_a_mean_iou_panel(tmp_path):
    logs = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "accuracy": [0.9, 0.95], "val_accuracy": [0.9, 0.94],
            "mean_io_u": [0.2, 0.4], "val_mean_io_u": [0.2, 0.35]}
    with Image.open(plots.plot_history(logs, tmp_path / "h.png")) as picture:
        assert picture.size == (1500, 400)
    del logs["mean_io_u"], logs["val_mean_io_u"]
    with Image.open(plots.plot_history(logs, tmp_path / "h2.png")) as picture:
        assert picture.size == (1000, 400)


# ----- python -m scratchnet.predict on a per-pixel model ----------------------------------------
def threshold_model(path):
    """A 1x1 'segmentation' model: class 4 where a pixel is bright (> 0.5), class 0 elsewhere."""
    inputs = layers.Input((64, 64, 1))
    head = layers.Conv2D(11, 1, activation="softmax")
    model = models.Model(inputs, head(inputs))
    kernel = np.zeros((1, 1, 1, 11), np.float32)
    bias = np.full(11, -50, np.float32)
    kernel[..., 4], bias[0], bias[4] = 100, 0, -50
    head.set_weights([kernel, bias])
    model.save(path)
    return path


def test_predict_writes_a_mask_overlay_of_the_image_s_size_and_counts_the_classes(tmp_path, capsys):
    model = threshold_model(tmp_path / "seg.npz")
    picture = np.zeros((128, 96), np.uint8)
    picture[:64, :48] = 255                           # a quarter of the image is bright
    Image.fromarray(picture).save(tmp_path / "scene.png")
    assert predict.main([str(model), str(tmp_path / "scene.png")]) == 0
    out, err = capsys.readouterr()
    line = out.strip()
    assert "\n" not in line and line.startswith(f"{tmp_path / 'scene.png'}: 4 1024 px (0 3072 px, of 64x64)")
    assert f"mask overlay in {tmp_path / 'scene.mask.png'}" in line and "does not record" in err
    with Image.open(tmp_path / "scene.mask.png") as written:
        overlay = np.asarray(written.convert("RGB"))
    assert overlay.shape == (128, 96, 3)
    colour = np.round(0.5 * 255 + 0.5 * plots.class_colours(11)[4] * 255)
    np.testing.assert_allclose(overlay[:64, :48].reshape(-1, 3), np.broadcast_to(colour, (64 * 48, 3)), atol=1)
    assert (overlay[64:] == 0).all() and (overlay[:, 48:] == 0).all()      # the background stays clear
    # never over an existing file; --mask-dir writes elsewhere
    assert predict.main([str(model), str(tmp_path / "scene.png")]) == 1
    assert "no mask overlay" in capsys.readouterr().out
    (tmp_path / "masks").mkdir()
    assert predict.main([str(model), str(tmp_path / "scene.png"), "--mask-dir", str(tmp_path / "masks")]) == 0
    assert (tmp_path / "masks" / "scene.mask.png").exists()


def test_predict_refuses_options_that_do_not_fit_the_model_on_one_line(tmp_path, capsys):
    seg = threshold_model(tmp_path / "seg.npz")
    classifier = tmp_path / "dense.npz"
    models.Sequential([layers.Flatten(input_shape=(8, 8, 1)), layers.Dense(3, activation="softmax")]).save(classifier)
    for argv, message in (([seg, "x.png", "--explain"], "--explain draws a Grad-CAM heat map for a classifier"),
                          ([classifier, "x.png", "--mask-dir", tmp_path], "--mask-dir is for models with per-pixel"),
                          ([seg, "x.png", "--mask-dir", tmp_path / "absent"], "is not a folder")):
        assert predict.main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err, err


# ----- python -m scratchnet.train segment: the errors, before anything is built ----------------
@pytest.fixture
def mnist_dir(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_mnist(folder, n_train=60, n_test=20)
    return folder


def run(args):
    return train.main([str(a) for a in args])


@pytest.mark.parametrize("args, message", [
    (["mnist", "--scenes", 10], "--scenes applies to segment only, not to mnist"),
    (["segment", "--scenes", 0], "--scenes must be at least 1, got 0"),
    (["segment", "--image-size", 32], "--image-size applies to catsdogs only, not to segment"),
    (["segment", "--data", "{tmp}/absent"], "MNIST files missing in {tmp}/absent"),
])
def test_segment_errors_are_one_line(args, message, tmp_path, capsys):
    args = [str(a).format(tmp=tmp_path) for a in args]
    message = message.format(tmp=tmp_path)
    assert run(args + ["--out", tmp_path / "run"]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Model:" not in captured.out and not (tmp_path / "run").exists()


def test_from_a_model_of_other_images_names_the_scenes_shape(mnist_dir, tmp_path, capsys):
    other = tmp_path / "digits.npz"
    models.Sequential([layers.Flatten(input_shape=(28, 28, 1)), layers.Dense(10, activation="softmax")]).save(other)
    assert run(["segment", "--data", mnist_dir, "--from", other, "--out", tmp_path / "run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "takes inputs of shape (28, 28, 1), but segment's scenes have shape (64, 64, 1)" in err and "\n" not in err


# ----- python -m scratchnet.train segment: training ---------------------------------------------
SMALL = ["--scenes", 40, "--batch-size", 16]


def test_segment_run_writes_history_with_mean_iou_and_the_mask_plot(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["segment", "--data", mnist_dir, *SMALL, "--epochs", 2, "--seed", 1, "--out", out]) == 0
    text = capsys.readouterr().out
    assert "Epoch 2/2" in text and "test pixel accuracy:" in text and "mean IoU:" in text
    for name in ("checkpoint.npz", "model.npz", "model.keras", "history.json", "history.png", "confusion.png",
                 "masks.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "misclassified.png").exists()
    record = json.loads((out / "history.json").read_text())
    history = record["history"]
    for key in ("loss", "accuracy", "mean_io_u", "val_loss", "val_accuracy", "val_mean_io_u"):
        assert len(history[key]) == 2 and all(0 <= v for v in history[key]), key
    assert all(v <= 1 for v in history["val_mean_io_u"] + history["mean_io_u"])
    assert record["settings"]["scenes"] == 40 and record["settings"]["epochs"] == 2
    # the metric of the last epoch's validation and the report's own count over the 4 test scenes agree
    assert record["mean_iou"] == pytest.approx(history["val_mean_io_u"][-1], abs=1e-6)
    model = load_model(out / "model.npz")
    assert model.count_params() == 117_883 and model.saved_extra["class_names"] == digit_scenes.CLASS_NAMES
    with Image.open(out / "masks.png") as picture:
        assert picture.size[0] == 750                                  # image, true mask, predicted mask


def test_a_segment_run_resumes_bit_for_bit_with_the_printed_command(mnist_dir, tmp_path, monkeypatch, capsys):
    from cli_helpers import interrupt_after, resume_with_the_printed_command
    flags = ["segment", "--data", mnist_dir, *SMALL, "--epochs", 2, "--seed", 4]
    assert run(flags + ["--out", tmp_path / "straight"]) == 0
    original = interrupt_after(monkeypatch, 1)
    assert run(flags + ["--out", tmp_path / "split"]) == 130
    text = capsys.readouterr().out
    monkeypatch.setattr(train.Checkpoint, "on_epoch_end", original)
    assert resume_with_the_printed_command(text) == 0
    assert "after epoch 1 of 2 with its settings" in capsys.readouterr().out
    for a, b in zip(load_model(tmp_path / "straight" / "model.npz").get_weights(),
                    load_model(tmp_path / "split" / "model.npz").get_weights()):
        np.testing.assert_array_equal(a, b)
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    resumed = json.loads((tmp_path / "split" / "history.json").read_text())
    assert resumed["history"] == straight["history"] and resumed["settings"] == straight["settings"]
    # other scenes are another run's data
    assert run(["segment", "--out", tmp_path / "split", "--resume", "--scenes", 50]) == 2
    assert "--scenes 50 differs from this run's --scenes 40" in capsys.readouterr().err


def test_a_segment_run_from_a_saved_unet_goes_on_training_and_predict_draws_its_masks(
        mnist_dir, tmp_path, capsys):
    first = tmp_path / "first"
    assert run(["segment", "--data", mnist_dir, *SMALL, "--epochs", 1, "--seed", 2, "--out", first]) == 0
    capsys.readouterr()
    second = tmp_path / "second"
    assert run(["segment", "--data", mnist_dir, *SMALL, "--epochs", 1, "--seed", 2, "--lr", 1e-4,
                "--from", first / "model.npz", "--out", second]) == 0
    text = capsys.readouterr().out
    assert "its output (shape (None, None, 11), softmax) fits segment, so the whole model goes on training" in text
    assert json.loads((second / "history.json").read_text())["settings"]["from"] == str(first / "model.npz")
    # a U-Net has no Flatten or global pooling layer: --freeze-base cannot tell its base, and says so
    assert run(["segment", "--data", mnist_dir, *SMALL, "--from", first / "model.npz", "--freeze-base",
                "--out", tmp_path / "frozen"]) == 2
    assert "has no Flatten or global pooling layer" in capsys.readouterr().err
    # predict on a scene picture at twice the training size: the U-Net takes any size, so it reads the picture
    # as it is, and the overlay has the picture's size
    (_, _), (x_test, _) = digit_scenes.load_data(mnist_dir, train_scenes=1, test_scenes=1, verbose=False)
    scene = np.kron((x_test[0, ..., 0] * 255).astype(np.uint8), np.ones((2, 2), np.uint8))
    Image.fromarray(scene).save(tmp_path / "scene.png")
    assert predict.main([str(second / "model.npz"), str(tmp_path / "scene.png")]) == 0
    captured = capsys.readouterr()
    line = captured.out.strip()
    assert "\n" not in line and "px, of 128x128)" in line and "(background " in line and not captured.err
    with Image.open(tmp_path / "scene.mask.png") as overlay:
        assert overlay.size == (128, 128) and overlay.mode == "RGB"


def test_a_saved_model_keeps_the_arguments_of_its_metrics(tmp_path):
    """model.npz (and so the run's checkpoint) rebuilds MeanIoU(num_classes=3, sparse_y_pred=False)
    and BinaryAccuracy(threshold=0.3) at loading, so --resume continues with the same metrics."""
    model = models.Sequential([layers.Conv2D(3, 1, activation="softmax", input_shape=(4, 4, 1))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", metrics.MeanIoU(num_classes=3, sparse_y_pred=False)])
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    built = {spec.name: spec.identifier for spec in loaded.metric_specs}
    assert loaded.compiled and built["accuracy"] == "accuracy"
    assert isinstance(built["mean_io_u"], metrics.MeanIoU) and built["mean_io_u"].num_classes == 3
    assert built["mean_io_u"].sparse_y_pred is False
    x = np.random.default_rng(0).random((5, 4, 4, 1), np.float32)
    y = np.random.default_rng(1).integers(0, 3, (5, 4, 4))
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["mean_io_u"] == pytest.approx(
        model.evaluate(x, y, verbose=0, return_dict=True)["mean_io_u"])
    binary = models.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(2,))])
    binary.compile(optimizer="sgd", loss="binary_crossentropy", weighted_metrics=[metrics.BinaryAccuracy(threshold=0.3)])
    binary.save(tmp_path / "b.npz")
    spec, = load_model(tmp_path / "b.npz").metric_specs
    assert spec.weighted and isinstance(spec.identifier, metrics.BinaryAccuracy) and spec.identifier.threshold == 0.3


def test_segment_takes_its_own_settings_and_distributed_training():
    # --distributed trains segment too: the ranks sum MeanIoU's confusion matrix (tests/test_distributed.py)
    from scratchnet.cli.parser import make_parser
    from scratchnet.cli.settings import given_settings
    assert given_settings(make_parser().parse_args(["segment", "--scenes", "8"])) == {"scenes": 8}
    given_settings(make_parser().parse_args(["segment", "--distributed"]))       # no longer refused


def test_predict_runs_a_model_of_any_size_on_the_image_as_it_is(tmp_path, capsys):
    inputs = layers.Input((None, None, 1))
    head = layers.Conv2D(11, 1, activation="softmax")
    down = layers.MaxPooling2D(2)(inputs)
    models.Model(inputs, layers.Concatenate()([head(inputs), layers.UpSampling2D(2)(down)])).save(tmp_path / "m.npz")
    Image.fromarray(np.zeros((40, 24), np.uint8)).save(tmp_path / "even.png")
    Image.fromarray(np.zeros((41, 24), np.uint8)).save(tmp_path / "odd.png")
    assert predict.main([str(tmp_path / "m.npz"), str(tmp_path / "even.png"), str(tmp_path / "odd.png")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'even.png'}:") and "of 40x24" in out[0]      # read at its own size
    assert out[1].startswith(f"{tmp_path / 'odd.png'}: cannot run the model on it (") and "concatenate" in out[1]
