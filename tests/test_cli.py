"""python -m scratchnet.train / predict on small synthetic data: artefacts, seeds, resume, Ctrl-C."""
import json

import numpy as np
import pytest
from PIL import Image

from scratchnet import load_model, predict, train
from test_datasets import write_mnist


@pytest.fixture
def mnist_dir(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_mnist(folder, n_train=96, n_test=20)
    return folder


def run(args):
    return train.main([str(a) for a in args])


def test_mnist_run_writes_every_artefact(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 2, "--seed", 1, "--out", out]) == 0
    text = capsys.readouterr().out
    assert "Epoch 2/2" in text and "test accuracy:" in text and str(out / "model.npz") in text
    for name in ("checkpoint.npz", "model.npz", "history.json", "history.png", "confusion.png",
                 "misclassified.png"):
        assert (out / name).stat().st_size > 0, name
    record = json.loads((out / "history.json").read_text())
    assert len(record["history"]["val_accuracy"]) == 2
    assert load_model(out / "model.npz").count_params() == 93_322


def test_same_seed_same_history(mnist_dir, tmp_path):
    histories = []
    for name in ("a", "b"):
        assert run(["mnist", "--data", mnist_dir, "--epochs", 2, "--seed", 3, "--out", tmp_path / name]) == 0
        histories.append(json.loads((tmp_path / name / "history.json").read_text())["history"])
    assert histories[0] == histories[1]


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(mnist_dir, tmp_path):
    assert run(["mnist", "--data", mnist_dir, "--epochs", 3, "--seed", 4, "--out", tmp_path / "straight"]) == 0
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 4, "--out", tmp_path / "split"]) == 0
    assert run(["mnist", "--data", mnist_dir, "--epochs", 3, "--out", tmp_path / "split", "--resume"]) == 0
    straight = load_model(tmp_path / "straight" / "model.npz").get_weights()
    resumed = load_model(tmp_path / "split" / "model.npz").get_weights()
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    history = json.loads((tmp_path / "split" / "history.json").read_text())["history"]
    assert len(history["loss"]) == 3


def test_ctrl_c_saves_and_says_how_to_resume(mnist_dir, tmp_path, monkeypatch, capsys):
    original = train.Checkpoint.on_epoch_end

    def interrupt_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt
    monkeypatch.setattr(train.Checkpoint, "on_epoch_end", interrupt_after_first_epoch)
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 3, "--seed", 1, "--out", out]) == 130
    text = capsys.readouterr().out
    assert "Resume with: python -m scratchnet.train mnist --out" in text and "--resume" in text
    assert (out / "interrupted.npz").exists() and (out / "checkpoint.npz").exists()
    assert load_model(out / "checkpoint.npz").saved_extra["epoch"] == 1


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert run(["mnist", "--data", tmp_path, "--epochs", 1, "--out", tmp_path / "r"]) == 2
    assert "MNIST files missing" in capsys.readouterr().err
    assert run(["catsdogs", "--out", tmp_path / "r2"]) == 2
    assert "catsdogs needs --data" in capsys.readouterr().err


def test_catsdogs_run_and_predict(tmp_path, capsys):
    data = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("validation", 4)):
        for label, name in enumerate(("cats", "dogs")):
            (data / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 80, (20, 24, 3)) + 150 * label
                Image.fromarray(pixels.astype(np.uint8)).save(data / split / name / f"{i}.jpg")
    out = tmp_path / "run"
    assert run(["catsdogs", "--data", data, "--epochs", 2, "--image-size", 48, "--batch-size", 8,
                "--augment", "--seed", 2, "--lr", "1e-3", "--out", out]) == 0
    assert "validation accuracy:" in capsys.readouterr().out
    model = out / "model.npz"
    assert load_model(model).input_shape == (48, 48, 3)
    image = data / "validation" / "dogs" / "0.jpg"
    assert predict.main([str(model), str(image), str(tmp_path / "absent.jpg")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{image}: ") and lines[0].split(": ")[1].split()[0] in ("cats", "dogs")
    assert "cannot read" in lines[1]
