"""Keras's callbacks, as a tutorial uses them, checked against real Keras where it is
installed: the hooks fit/evaluate/predict call and in what order, EarlyStopping and
ReduceLROnPlateau on the same sequences of logs, ModelCheckpoint's files, CSVLogger,
TerminateOnNaN, LambdaCallback and model.stop_training."""
import csv
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scratchnet import callbacks, layers, models, optimizers
from scratchnet.saving import load_model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def tiny(module, L):
    model = module.Sequential([L.Input((3,)), L.Dense(4, activation="relu"), L.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.integers(0, 2, n)


def recorder(base):
    """A callback of ``base`` (Keras's or ours) writing down every hook call."""
    class Recorder(base):
        def __init__(self):
            super().__init__()
            self.calls = []
    names = [n for n in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
                         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin",
                         "on_test_batch_end", "on_predict_begin", "on_predict_end", "on_predict_batch_begin",
                         "on_predict_batch_end")]
    for name in names:
        def hook(self, *args, _name=name, **kwargs):
            self.calls.append((_name,) + tuple(a for a in args[:1] if isinstance(a, int)))
        setattr(Recorder, name, hook)
    return Recorder()


def test_hooks_are_called_as_keras_calls_them():
    keras = real_keras()
    x, y = data()
    runs = []
    for module, L, base in ((keras, keras.layers, keras.callbacks.Callback), (models, layers, callbacks.Callback)):
        model = tiny(module, L)
        rec = recorder(base)
        model.fit(x, y, batch_size=4, epochs=2, validation_data=(x[:6], y[:6]), callbacks=[rec], verbose=0)
        model.evaluate(x, y, batch_size=5, callbacks=[rec], verbose=0)
        model.predict(x, batch_size=3, callbacks=[rec], verbose=0)
        runs.append(rec.calls)
    assert runs[1] == runs[0]


def test_stop_training_in_the_middle_of_an_epoch_stops_after_that_batch_as_in_keras():
    keras = real_keras()
    x, y = data(20)
    counts = []
    for module, L, base in ((keras, keras.layers, keras.callbacks.Callback), (models, layers, callbacks.Callback)):
        class StopAtThird(base):
            def on_train_batch_end(self, batch, logs=None):
                self.seen = getattr(self, "seen", 0) + 1
                if batch == 2:
                    self.model.stop_training = True
        hook = StopAtThird()
        history = tiny(module, L).fit(x, y, batch_size=4, epochs=3, callbacks=[hook], verbose=0)
        counts.append((hook.seen, len(history.history["loss"])))
    assert counts[1] == counts[0] == (3, 1)


class FakeModel:
    """What EarlyStopping and ReduceLROnPlateau touch: stop_training, weights, the learning rate."""

    def __init__(self):
        self.stop_training = False
        self.weights = [np.zeros(2)]
        self.optimizer = type("Opt", (), {"learning_rate": 0.1})()

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]


def drive(callback, values, key="val_loss"):
    """Run ``callback`` through epochs whose logs hold ``values``; what it did, epoch by epoch."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin({})
    trace = []
    for epoch, value in enumerate(values):
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_end(epoch, {key: value})
        trace.append((model.stop_training, round(float(model.optimizer.learning_rate), 12)))
        if model.stop_training:
            break
    callback.on_train_end({})
    return trace, float(model.weights[0][0])


values = st.lists(st.sampled_from([0.5, 0.6, 0.55, 0.4, 0.41, 0.7, 0.39, 0.3]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(values=values, patience=st.integers(0, 3), min_delta=st.sampled_from([0, 0.02]),
       baseline=st.sampled_from([None, 0.45]), restore=st.booleans(), start=st.integers(0, 2),
       mode=st.sampled_from(["auto", "min", "max"]))
def test_early_stopping_equals_keras(values, patience, min_delta, baseline, restore, start, mode):
    keras = real_keras()
    kwargs = dict(patience=patience, min_delta=min_delta, baseline=baseline, restore_best_weights=restore,
                  start_from_epoch=start, mode=mode)
    assert drive(callbacks.EarlyStopping(**kwargs), values) == drive(keras.callbacks.EarlyStopping(**kwargs), values)


@settings(max_examples=60, deadline=None)
@given(values=values, patience=st.integers(0, 3), cooldown=st.integers(0, 2), min_lr=st.sampled_from([0.0, 0.005]),
       factor=st.sampled_from([0.1, 0.5]))
def test_reduce_lr_on_plateau_equals_keras(values, patience, cooldown, min_lr, factor):
    keras = real_keras()
    kwargs = dict(patience=patience, cooldown=cooldown, min_lr=min_lr, factor=factor)
    assert drive(callbacks.ReduceLROnPlateau(**kwargs), values) == \
        drive(keras.callbacks.ReduceLROnPlateau(**kwargs), values)


def test_monitor_direction_from_the_name_and_the_errors():
    assert drive(callbacks.EarlyStopping(monitor="val_accuracy", patience=1), [0.5, 0.6, 0.55, 0.54], "val_accuracy")[0] \
        == [(False, 0.1), (False, 0.1), (True, 0.1)]      # accuracy rises: 0.55 after 0.6 is no better
    with pytest.raises(ValueError, match="cannot tell whether it should be maximized or minimized"):
        drive(callbacks.EarlyStopping(monitor="val_thing"), [1.0, 2.0], "val_thing")
    with pytest.warns(UserWarning, match="conditioned on metric `val_loss` which is not available"):
        drive(callbacks.EarlyStopping(), [1.0], "loss")
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=2)


def test_model_checkpoint_saves_what_keras_saves_and_the_files_load(tmp_path):
    keras = real_keras()
    x, y = data(40)
    vx, vy = data(12, seed=1)
    model = tiny(models, layers)
    model.compile(optimizer=optimizers.SGD(0.5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    template = str(tmp_path / "m-{epoch:02d}-{val_loss:.3f}.keras")
    best = callbacks.ModelCheckpoint(template, save_best_only=True)
    weights = callbacks.ModelCheckpoint(str(tmp_path / "w.weights.h5"), save_weights_only=True)
    history = model.fit(x, y, epochs=6, batch_size=8, validation_data=(vx, vy), callbacks=[best, weights], verbose=0)
    losses = history.history["val_loss"]
    expected, low = [], None
    for epoch, loss in enumerate(losses):          # Keras's rule: strictly better than the best so far
        if low is None or loss < low:
            low = loss
            expected.append(f"m-{epoch + 1:02d}-{loss:.3f}.keras")
    assert sorted(p.name for p in tmp_path.glob("m-*.keras")) == sorted(expected)
    last = load_model(tmp_path / expected[-1])
    assert keras.models.load_model(tmp_path / expected[-1]).count_params() == last.count_params()
    again = tiny(models, layers)
    again.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="must end in .weights.h5"):
        callbacks.ModelCheckpoint(str(tmp_path / "w.keras"), save_weights_only=True)
    with pytest.raises(KeyError, match="names 'val_auc', which is not among the logs"):
        model.fit(x, y, epochs=1, callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "{val_auc}.keras"))],
                  verbose=0)


def test_csv_logger_writes_a_row_per_epoch_and_appends(tmp_path):
    x, y = data()
    model = tiny(models, layers)
    path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=2, validation_split=0.2, callbacks=[callbacks.CSVLogger(path)], verbose=0)
    model.fit(x, y, epochs=4, initial_epoch=2, validation_split=0.2,
              callbacks=[callbacks.CSVLogger(path, append=True)], verbose=0)
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert float(rows[1]["val_loss"]) == pytest.approx(history.history["val_loss"][1])


def test_terminate_on_nan_stops_without_an_error_and_keeps_the_weights_before():
    x, _ = data(40)
    y = (x @ np.array([1.0, -2.0, 3.0])).astype(np.float32)[:, None] * 1e3

    def exploding():
        model = models.Sequential([layers.Input((3,)), layers.Dense(1)])
        model.compile(optimizer=optimizers.SGD(1e6), loss="mse")       # diverges in a few steps
        return model
    model = exploding()
    seen = []
    probe = callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(
        (float(logs["loss"]), [w.copy() for w in model.get_weights()])))
    history = model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0,
                        callbacks=[probe, callbacks.TerminateOnNaN()])
    assert model.stop_training and len(history.history["loss"]) == 1
    assert not np.isfinite(seen[-1][0]) and all(np.isfinite(loss) for loss, _ in seen[:-1])
    for a, b in zip(seen[-1][1], seen[-2][1]):      # the batch whose loss was not finite changed nothing
        np.testing.assert_array_equal(a, b)
    from scratchnet.models import TrainingDiverged
    with pytest.raises(TrainingDiverged):            # without it: the error, as before
        exploding().fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)


def test_lambda_callback_takes_keras_hook_names_only():
    x, y = data()
    epochs = []
    tiny(models, layers).fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epochs.append((epoch, sorted(logs))))])
    assert epochs == [(0, ["accuracy", "loss"]), (1, ["accuracy", "loss"])]
    with pytest.raises(ValueError, match="LambdaCallback got \\['on_epoch_finish'\\]; the hooks are"):
        callbacks.LambdaCallback(on_epoch_finish=print)
