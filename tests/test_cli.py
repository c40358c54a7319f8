"""python -m scratchnet.train / predict on small synthetic data: artefacts, seeds, resume with
every setting restored, Ctrl-C, and one-line errors for everything a user can get wrong."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import interrupt_after, resume_with_the_printed_command
from scratchnet import load_model, predict, train
from scratchnet.cli import experiments
from scratchnet.cli import train as train_steps
from test_datasets import write_mnist


@pytest.fixture
def mnist_dir(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_mnist(folder, n_train=96, n_test=20)
    return folder


@pytest.fixture
def photos(tmp_path):
    """A tiny cats/dogs folder: dark cats, bright dogs."""
    data = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("validation", 4)):
        for label, name in enumerate(("cats", "dogs")):
            (data / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 80, (20, 24, 3)) + 150 * label
                Image.fromarray(pixels.astype(np.uint8)).save(data / split / name / f"{i}.jpg")
    return data


def run(args):
    return train.main([str(a) for a in args])


def weights(folder, name="model.npz"):
    return load_model(folder / name).get_weights()


def test_mnist_run_writes_every_artefact(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 2, "--seed", 1, "--out", out]) == 0
    text = capsys.readouterr().out
    assert "Epoch 2/2" in text and "test accuracy:" in text and str(out / "model.npz") in text
    for name in ("checkpoint.npz", "model.npz", "model.keras", "history.json", "history.png", "confusion.png",
                 "misclassified.png"):
        assert (out / name).stat().st_size > 0, name
    for_keras = load_model(out / "model.keras")
    assert [w.tolist() for w in for_keras.get_weights()] == [w.tolist() for w in weights(out)]
    assert for_keras.saved_extra["class_names"] == load_model(out / "model.npz").saved_extra["class_names"]
    record = json.loads((out / "history.json").read_text())
    assert len(record["history"]["val_accuracy"]) == 2 and len(record["epoch_seconds"]) == 2
    assert record["settings"]["seed"] == 1 and record["settings"]["batch_size"] == 32
    assert load_model(out / "model.npz").count_params() == 93_322


def test_same_seed_same_history_and_a_drawn_seed_is_printed_and_recorded(mnist_dir, tmp_path, capsys):
    histories = []
    for name in ("a", "b"):
        assert run(["mnist", "--data", mnist_dir, "--epochs", 2, "--seed", 3, "--out", tmp_path / name]) == 0
        histories.append(json.loads((tmp_path / name / "history.json").read_text())["history"])
    assert histories[0] == histories[1]
    capsys.readouterr()
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--out", tmp_path / "drawn"]) == 0
    seed = json.loads((tmp_path / "drawn" / "history.json").read_text())["settings"]["seed"]
    assert isinstance(seed, int) and f"--seed {seed} repeats this run" in capsys.readouterr().out


@pytest.mark.parametrize("experiment", ["mnist", "catsdogs"])
def test_resuming_with_the_printed_command_restores_every_setting_bit_for_bit(
        experiment, mnist_dir, photos, tmp_path, monkeypatch, capsys):
    flags = (["mnist", "--data", mnist_dir, "--batch-size", 16, "--lr", 2e-3, "--limit", 64, "--seed", 4]
             if experiment == "mnist" else
             ["catsdogs", "--data", photos, "--image-size", 48, "--batch-size", 8, "--augment", "--lr", 1e-3,
              "--limit", 16, "--seed", 2, "--workers", 1])
    assert run(flags + ["--epochs", 3, "--out", tmp_path / "straight"]) == 0
    original = interrupt_after(monkeypatch, 1)
    assert run(flags + ["--epochs", 3, "--out", tmp_path / "split"]) == 130
    text = capsys.readouterr().out
    monkeypatch.setattr(train.Checkpoint, "on_epoch_end", original)
    assert resume_with_the_printed_command(text) == 0
    assert "after epoch 1 of 3 with its settings" in capsys.readouterr().out
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "split")):
        np.testing.assert_array_equal(a, b)
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    resumed = json.loads((tmp_path / "split" / "history.json").read_text())
    assert resumed["history"] == straight["history"] and resumed["settings"] == straight["settings"]
    assert len(resumed["epoch_seconds"]) == 3


def test_resume_extends_with_epochs_and_refuses_a_changed_setting_naming_both(photos, tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["catsdogs", "--data", photos, "--image-size", 48, "--batch-size", 8, "--seed", 1, "--out", out]
    assert run(flags + ["--epochs", 1]) == 0
    capsys.readouterr()
    assert run(["catsdogs", "--out", out, "--resume", "--image-size", 64]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "--image-size 64 differs from this run's --image-size 48" in err and str(out) in err
    assert run(["catsdogs", "--out", out, "--resume", "--no-augment", "--batch-size", 8, "--epochs", 2,
                "--workers", 1]) == 0
    text = capsys.readouterr().out
    assert "Using --workers 1 (the run used --workers 2)" in text and "Epoch 2/2" in text
    record = json.loads((out / "history.json").read_text())
    assert len(record["history"]["loss"]) == 2 and record["schedule"] == [1, 2]   # the extension is on record


def test_ctrl_c_saves_and_says_how_to_resume(mnist_dir, tmp_path, monkeypatch, capsys):
    interrupt_after(monkeypatch, 1)
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 3, "--seed", 1, "--out", out]) == 130
    text = capsys.readouterr().out
    assert f"Resume with: python -m scratchnet.train mnist --out {out} --resume" in text
    assert (out / "interrupted.npz").exists() and (out / "checkpoint.npz").exists()
    assert load_model(out / "checkpoint.npz").saved_extra["epoch"] == 1


def test_catsdogs_run_and_predict(photos, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["catsdogs", "--data", photos, "--epochs", 2, "--image-size", 48, "--batch-size", 8,
                "--augment", "--seed", 2, "--lr", "1e-3", "--out", out]) == 0
    assert "validation accuracy:" in capsys.readouterr().out
    model = out / "model.npz"
    assert load_model(model).input_shape == (None, 48, 48, 3)
    image = photos / "validation" / "dogs" / "0.jpg"
    assert predict.main([str(model), str(image), str(tmp_path / "absent.jpg")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{image}: ") and lines[0].split(": ")[1].split()[0] in ("cats", "dogs")
    assert "cannot read" in lines[1]


# ----- errors: one line on stderr, a non-zero exit, no traceback, nothing built first -----------
def corrupt_file(tmp_path):
    path = tmp_path / "broken" / "checkpoint.npz"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 not really a zip")
    return path.parent


def saved_model(folder, name, input_shape=(28, 28, 1), units=10, activation="softmax", pooled=True):
    """A small model saved at folder/name: a base (conv, BatchNormalization, ReLU, global average
    pooling) and a Dense head; without ``pooled`` only a convolution (no base to tell apart)."""
    from scratchnet import layers, models
    inputs = layers.Input(shape=input_shape)
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    if pooled:
        x = layers.ReLU(name="relu")(layers.BatchNormalization(momentum=0.5, name="norm")(x))
        x = layers.Dense(units, activation=activation, name="head")(layers.GlobalAveragePooling2D(name="pool")(x))
    path = Path(folder) / name
    models.Model(inputs, x).save(path)
    return path


def garbage(folder):
    path = Path(folder) / "garbage.npz"
    path.write_bytes(b"not a model at all")
    return path


ERRORS = {
    "zero epochs": (lambda t, m, p: ["mnist", "--data", m, "--epochs", 0], "--epochs must be at least 1, got 0"),
    "negative batch": (lambda t, m, p: ["mnist", "--data", m, "--batch-size", -4],
                       "--batch-size must be at least 1, got -4"),
    "zero lr": (lambda t, m, p: ["mnist", "--data", m, "--lr", 0], "--lr must be a positive number, got 0.0"),
    "zero inspect": (lambda t, m, p: ["mnist", "--data", m, "--inspect", 0], "--inspect must be at least 1, got 0"),
    "not a number": (lambda t, m, p: ["mnist", "--epochs", "five"], "invalid int value: 'five'"),
    "missing mnist files": (lambda t, m, p: ["mnist", "--data", t / "nowhere"], "MNIST files missing in"),
    "no catsdogs data": (lambda t, m, p: ["catsdogs"], "catsdogs needs --data"),
    "empty catsdogs folder": (lambda t, m, p: ["catsdogs", "--data", t], "has no train/{cats,dogs}"),
    "missing catsdogs archive": (lambda t, m, p: ["catsdogs", "--data", t / "none.tar"],
                                 "cats/dogs data not found at"),
    "mnist with a catsdogs flag": (lambda t, m, p: ["mnist", "--data", m, "--augment"],
                                   "--augment applies to catsdogs only"),
    "image too small": (lambda t, m, p: ["catsdogs", "--data", p, "--image-size", 20],
                        "--image-size must be at least 46"),
    "too many threads": (lambda t, m, p: ["mnist", "--data", m, "--threads", 10_000], "--threads must be at most"),
    "resume without a run": (lambda t, m, p: ["mnist", "--out", t / "empty", "--resume"], "does not exist"),
    "resume a corrupt checkpoint": (lambda t, m, p: ["mnist", "--out", corrupt_file(t), "--resume"],
                                    "is not a scratchnet model file"),
    "from a missing file": (lambda t, m, p: ["mnist", "--data", m, "--from", t / "absent.npz"], "does not exist"),
    "from a file that is no model": (lambda t, m, p: ["mnist", "--data", m, "--from", garbage(t)], "model file"),
    "from with resume": (lambda t, m, p: ["mnist", "--out", t, "--resume", "--from", garbage(t)],
                         "--from starts a new run from a saved model and --resume continues a run"),
    "freeze-base without from": (lambda t, m, p: ["mnist", "--data", m, "--freeze-base"],
                                 "--freeze-base applies only with --from"),
    "from a model of other images": (lambda t, m, p: ["mnist", "--data", m, "--from",
                                                      saved_model(t, "rgb.npz", input_shape=(32, 32, 3))],
                                     "takes inputs of shape (32, 32, 3), but mnist's digits have shape (28, 28, 1)"),
    "from a model of another size": (lambda t, m, p: ["catsdogs", "--data", p, "--image-size", 48, "--from",
                                                      saved_model(t, "rgb.npz", input_shape=(32, 32, 3))],
                                     "takes inputs of shape (32, 32, 3), but catsdogs' photos at --image-size 48 "
                                     "have shape (48, 48, 3)"),
    "from a model without a base": (lambda t, m, p: ["mnist", "--data", m, "--from",
                                                     saved_model(t, "conv.npz", pooled=False)],
                                    "has no Flatten or global pooling layer"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_every_cli_error_is_one_line_before_anything_is_built(case, mnist_dir, photos, tmp_path, capsys):
    make_args, message = ERRORS[case]
    try:
        code = run(make_args(tmp_path, mnist_dir, photos))
    except SystemExit as stop:   # argparse's own errors
        code = stop.code
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Traceback" not in captured.err and "Model:" not in captured.out


def test_an_existing_run_is_never_overwritten_without_resume(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 1, "--out", out]) == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 2, "--out", out]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "checkpoint.npz").read_bytes() == before


def test_a_diverging_run_ends_with_one_line(mnist_dir, tmp_path, capsys):
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--lr", 1e30, "--seed", 1,
                "--out", tmp_path / "r"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the loss became") and "\n" not in err


@pytest.mark.skipif("cupy" in sys.modules, reason="checks the machine without CuPy")
def test_asking_for_the_gpu_without_one_is_one_line_from_the_real_command(mnist_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "scratchnet.train", "mnist", "--backend", "gpu", "--data",
                          str(mnist_dir), "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    if out.returncode == 0:
        pytest.skip("this machine has a usable GPU")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: the GPU backend ")
    assert "Model:" not in out.stdout


def test_predict_errors_are_one_line(tmp_path, capsys):
    from scratchnet import layers, models
    dense = models.Sequential([layers.Dense(2, input_shape=(3,))])
    dense.save(tmp_path / "dense.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    for model, message in ((tmp_path / "bad.npz", "is not a model file"),
                           (tmp_path / "absent.npz", "does not exist"),
                           (tmp_path / "dense.npz", "takes inputs of shape (None, 3), not images")):
        assert predict.main([str(model), "x.png"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


# ----- the corners of resuming and of run folders --------------------------------------------------
def test_ctrl_c_in_the_first_epoch_keeps_nothing_and_prints_a_command_that_starts_again(
        mnist_dir, tmp_path, monkeypatch, capsys):
    original = train.Checkpoint.on_epoch_begin

    def stop_at_once(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt
    monkeypatch.setattr(train.Checkpoint, "on_epoch_begin", stop_at_once)
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 2, "--batch-size", 48, "--out", out]) == 130
    text = capsys.readouterr().out
    assert "nothing was saved" in text and "Resume with" not in text and not out.exists()
    monkeypatch.setattr(train.Checkpoint, "on_epoch_begin", original)
    command = text.split("Start again with: ")[1].splitlines()[0]
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "scratchnet.train"] and "--seed" in words and "--batch-size" in words
    assert train.main(words[3:]) == 0 and (out / "model.npz").exists()


def test_a_folder_that_is_not_empty_or_is_a_file_is_refused(mnist_dir, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    (tmp_path / "afile").write_text("x")
    for out, message in ((tmp_path / "mine", "is not empty"), (tmp_path / "afile", "is a file")):
        assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--out", out]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me" and (tmp_path / "afile").read_text() == "x"


def test_resume_follows_moved_data_and_refuses_other_data(photos, tmp_path, capsys):
    import shutil
    out = tmp_path / "run"
    assert run(["catsdogs", "--data", photos, "--image-size", 48, "--batch-size", 8, "--seed", 1, "--epochs", 1,
                "--out", out]) == 0
    moved = tmp_path / "moved"
    shutil.move(photos, moved)
    capsys.readouterr()
    assert run(["catsdogs", "--out", out, "--resume", "--epochs", 2]) == 2      # the recorded folder is gone
    assert "is no longer there; give --data with its new place" in capsys.readouterr().err
    assert run(["catsdogs", "--out", out, "--resume", "--epochs", 2, "--data", moved]) == 0
    assert f"Using --data {moved}" in capsys.readouterr().out
    (moved / "train" / "cats" / "0.jpg").unlink()                               # now other data
    assert run(["catsdogs", "--out", out, "--resume", "--epochs", 3, "--data", moved]) == 2
    assert "is not the data this run was trained on" in capsys.readouterr().err
    assert run(["catsdogs", "--out", out, "--resume", "--epochs", 1, "--data", moved]) == 2
    assert "--epochs 1 is fewer than the 2 epochs this run has done" in capsys.readouterr().err


def test_a_recorded_process_setting_this_machine_cannot_use(mnist_dir, tmp_path, monkeypatch, capsys):
    import numba
    from scratchnet.saving import save_model
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 1, "--threads", 2, "--out", out]) == 0
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 1)
    capsys.readouterr()
    assert run(["mnist", "--out", out, "--resume", "--epochs", 2]) == 0
    assert "Using --threads 1: the run used 2" in capsys.readouterr().out
    monkeypatch.undo()
    model = load_model(out / "checkpoint.npz")
    extra = dict(model.saved_extra, settings={**model.saved_extra["settings"], "backend": "gpu"})
    save_model(model, out / "checkpoint.npz", extra=extra)
    assert run(["mnist", "--out", out, "--resume", "--epochs", 3]) == 2
    err = capsys.readouterr().err
    assert "this run used --backend gpu, which cannot run here" in err and "--backend cpu" in err


def test_a_checkpoint_from_an_older_scratchnet_resumes_and_keeps_its_time(mnist_dir, tmp_path, capsys):
    from scratchnet.saving import save_model
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 1, "--out", out]) == 0
    model = load_model(out / "checkpoint.npz")
    old = {k: v for k, v in model.saved_extra.items() if k not in ("epoch_seconds", "schedule", "data_fingerprint",
                                                                   "seconds_untimed")}
    save_model(model, out / "checkpoint.npz", extra={**old, "seconds": 12.5})
    assert run(["mnist", "--out", out, "--resume", "--epochs", 2]) == 0
    record = json.loads((out / "history.json").read_text())
    assert record["epoch_seconds"][0] is None and record["seconds"] > 12.5 and record["schedule"] == [1, 2]
    import sys as _sys
    _sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import record_run
    assert "| 1 |" in record_run.body(record) and " - |" in record_run.body(record)


def test_seed_out_of_range_and_ctrl_c_while_loading_are_one_line(mnist_dir, tmp_path, monkeypatch, capsys):
    assert run(["mnist", "--data", mnist_dir, "--seed", -1, "--out", tmp_path / "a"]) == 2
    assert "--seed must be a whole number from 0" in capsys.readouterr().err

    def interrupted(settings):
        raise KeyboardInterrupt
    monkeypatch.setattr(experiments, "mnist_data", interrupted)
    assert run(["mnist", "--out", tmp_path / "b"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "error: interrupted before training started; nothing was saved"


def test_the_residual_network_trains_from_the_command_line_with_a_cosine_schedule(photos, tmp_path, capsys):
    out = tmp_path / "resnet"
    assert run(["catsdogs", "--model", "resnet", "--data", photos, "--image-size", 32, "--batch-size", 8,
                "--epochs", 2, "--seed", 1, "--out", out]) == 0
    record = json.loads((out / "history.json").read_text())
    assert record["settings"]["model"] == "resnet" and record["settings"]["lr"] == 1e-3
    assert record["history"]["learning_rate"] == [1e-3, 1e-5]          # cosine from lr to 1% of it
    model = load_model(out / "model.npz")
    assert type(model).__name__ == "Functional" and any(type(l).__name__ == "Add" for l in model.layers)
    assert run(["mnist", "--model", "resnet"]) == 2
    assert "--model applies to catsdogs only" in capsys.readouterr().err


# ----- starting from a saved model (--from): transfer learning ------------------------------------
def spy_on_the_new_model(monkeypatch):
    """Record the weights of the model a run builds, before it trains."""
    seen = {}
    original = train_steps.new_model

    def new_model(*args):
        model = original(*args)
        seen["weights"] = [w.copy() for w in model.get_weights()]
        return model
    monkeypatch.setattr(train_steps, "new_model", new_model)
    return seen


def test_from_a_saved_mnist_model_the_whole_model_goes_on_training(mnist_dir, tmp_path, monkeypatch, capsys):
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--limit", 64, "--seed", 1,
                "--out", tmp_path / "base"]) == 0
    source = tmp_path / "base" / "model.npz"
    capsys.readouterr()
    start = spy_on_the_new_model(monkeypatch)
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--limit", 64, "--seed", 2, "--lr", 1e-4,
                "--from", source, "--out", tmp_path / "tuned"]) == 0
    assert f"Starting from {source}: its output (10 units, softmax) fits mnist, so the whole model goes on " \
           f"training" in capsys.readouterr().out
    for saved, started in zip(weights(tmp_path / "base"), start["weights"]):
        np.testing.assert_array_equal(saved, started)                           # the saved weights, not fresh ones
    assert all(not np.array_equal(a, b) for a, b in zip(weights(tmp_path / "base"), weights(tmp_path / "tuned")))
    settings = json.loads((tmp_path / "tuned" / "history.json").read_text())["settings"]
    assert settings["from"] == str(source) and settings["freeze_base"] is False and settings["lr"] == 1e-4


def test_a_frozen_base_keeps_its_weights_and_batchnorm_statistics_while_the_head_trains_then_fine_tunes(
        mnist_dir, tmp_path, capsys):
    source = saved_model(tmp_path, "bn.npz")
    out = tmp_path / "frozen"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 2, "--seed", 1, "--from", source, "--freeze-base",
                "--out", out]) == 0
    text = capsys.readouterr().out
    assert "--freeze-base: the base's 4 layers, up to and including 'pool', do not train " \
           "(56 weights; its BatchNormalization layer runs in inference mode)" in text
    assert "Trainable params: 50" in text and "Non-trainable params: 56" in text
    before, after = load_model(source), load_model(out / "model.npz")
    for layer in before.layers:
        old, new = layer.get_weights(), after.get_layer(layer.name).get_weights()
        if type(layer).__name__ == "Dense":
            assert not any(np.array_equal(a, b) for a, b in zip(old, new)), "the head did not train"
        else:   # kernel, bias, gamma, beta, moving mean and variance: all as saved
            assert all(np.array_equal(a, b) for a, b in zip(old, new)), layer.name
    # the tutorial's second step: from that model, without --freeze-base, every layer trains
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 1, "--lr", 1e-4, "--from", out / "model.npz",
                "--out", tmp_path / "tuned"]) == 0
    text = capsys.readouterr().out
    assert "The file marks 4 layers as frozen (conv, norm, relu, ...); here --freeze-base alone decides" in text
    assert "Non-trainable params: 8" in text                       # the moving statistics, as in Keras
    tuned = load_model(tmp_path / "tuned" / "model.npz")
    assert not np.array_equal(tuned.get_layer("conv").get_weights()[0], after.get_layer("conv").get_weights()[0])


def test_a_model_with_another_output_gets_a_fresh_head_like_the_experiment_s_own(
        mnist_dir, photos, tmp_path, capsys):
    source = saved_model(tmp_path, "three.npz", units=3)
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 1, "--from", source, "--freeze-base",
                "--out", tmp_path / "to-mnist"]) == 0
    text = capsys.readouterr().out
    assert "its output (3 units, softmax) does not fit mnist (10 units, softmax), so its base (the layers up to " \
           "and including 'pool') gets a fresh head like mnist's own" in text
    model = load_model(tmp_path / "to-mnist" / "model.npz")
    head = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [(layer.units, layer.activation.name) for layer in head] == [(64, "relu"), (10, "softmax")]
    assert model.count_params() == 56 + (4 * 64 + 64) + (64 * 10 + 10)
    for layer in load_model(source).layers[:-1]:                              # the base, frozen: as saved
        for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # cats/dogs: the image size comes from the model, and the head is the cats/dogs model's
    source = saved_model(tmp_path, "rgb.npz", input_shape=(32, 32, 3))
    assert run(["catsdogs", "--data", photos, "--epochs", 1, "--batch-size", 8, "--seed", 1, "--workers", 1,
                "--from", source, "--out", tmp_path / "to-catsdogs"]) == 0
    assert "(10 units, softmax) does not fit catsdogs (1 unit, sigmoid)" in capsys.readouterr().out
    model = load_model(tmp_path / "to-catsdogs" / "model.npz")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 1)
    assert json.loads((tmp_path / "to-catsdogs" / "history.json").read_text())["settings"]["image_size"] == 32


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_model_file_starts_a_run_too(suffix, mnist_dir, tmp_path, capsys):
    pytest.importorskip("h5py")
    source = saved_model(tmp_path, "keras" + suffix, units=3)
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--seed", 1, "--from", source, "--freeze-base",
                "--out", out]) == 0
    assert "does not fit mnist (10 units, softmax), so its base" in capsys.readouterr().out
    model = load_model(out / "model.npz")
    for layer in load_model(source).layers[:-1]:
        for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_a_from_run_resumes_bit_for_bit_without_its_source_file(mnist_dir, tmp_path, monkeypatch, capsys):
    source = saved_model(tmp_path, "three.npz", units=3)
    flags = ["mnist", "--data", mnist_dir, "--limit", 64, "--batch-size", 16, "--seed", 3, "--from", source,
             "--freeze-base", "--epochs", 3]
    assert run(flags + ["--out", tmp_path / "straight"]) == 0
    original = interrupt_after(monkeypatch, 1)
    assert run(flags + ["--out", tmp_path / "split"]) == 130
    text = capsys.readouterr().out
    monkeypatch.setattr(train.Checkpoint, "on_epoch_end", original)
    source.unlink()                                           # the checkpoint holds the model: no --from needed
    assert resume_with_the_printed_command(text) == 0
    assert f"--from {source} --freeze-base" in capsys.readouterr().out
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "split")):
        np.testing.assert_array_equal(a, b)
    straight = json.loads((tmp_path / "straight" / "history.json").read_text())
    resumed = json.loads((tmp_path / "split" / "history.json").read_text())
    assert resumed["history"] == straight["history"] and resumed["settings"] == straight["settings"]
    assert resumed["settings"]["from"] == str(source) and resumed["settings"]["freeze_base"] is True
    assert run(["mnist", "--out", tmp_path / "split", "--resume", "--no-freeze-base", "--epochs", 4]) == 2
    assert "--no-freeze-base differs from this run's --freeze-base" in capsys.readouterr().err


def test_inspect_draws_the_inspector_and_writes_it_for_tensorboard(mnist_dir, photos, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["mnist", "--data", mnist_dir, "--epochs", 1, "--batch-size", 16, "--seed", 1, "--inspect", 2,
                "--out", out]) == 0
    assert (out / "inspector.png").read_bytes()[:4] == b"\x89PNG"
    assert list((out / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert json.loads((out / "history.json").read_text())["settings"]["inspect"] == 2
    assert run(["catsdogs", "--data", photos, "--epochs", 1, "--image-size", 48, "--batch-size", 8, "--seed", 1,
                "--workers", 1, "--inspect", 1, "--out", tmp_path / "photos-run"]) == 0
    assert (tmp_path / "photos-run" / "inspector.png").exists()
