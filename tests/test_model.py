"""Sequential: the Keras surface (summary, fit, evaluate, predict, History) and its errors."""
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet
from scratchnet import gradcheck, layers, optimizers
from scratchnet.layers import Conv2D, Dense, Flatten
from scratchnet.models import Sequential
# The seed tutorials' models as the command line builds them (the MNIST one is the seed code
# verbatim; benchmarks/mnist_seed.py and notebook 4 run that code as a user writes it).
from scratchnet.train import catsdogs_model, mnist_model


def tiny_images(n=64, seed=0, classes=3):
    """A learnable toy task: the class is which third of the image holds a bright blob."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 0.1, (n, 6, 6, 1)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, :, 2 * label:2 * label + 2, 0] += 1
    return x, y


def tiny_model(classes=3, activation="softmax"):
    return Sequential([layers.Conv2D(4, 3, activation="relu", padding="same", input_shape=(6, 6, 1)),
                       layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(classes, activation=activation)])


# ----- summary -------------------------------------------------------------------------
def test_summary_parameter_counts_equal_keras(capsys):
    mnist_model().summary()
    text = capsys.readouterr().out
    assert "Total params: 93,322" in text and "Trainable params: 93,322" in text
    assert re.search(r"conv2d\S* \(Conv2D\)\s+\(None, 26, 26, 32\)\s+320", text)
    assert re.search(r"dense\S* \(Dense\)\s+\(None, 10\)\s+650", text)
    model = catsdogs_model()
    assert model.count_params() == 3_453_121
    assert model.layers[-3].output_shape == (6272,)


def test_summary_before_build_is_a_clear_error():
    with pytest.raises(ValueError, match="has not been built"):
        Sequential([layers.Dense(3)]).summary()


def test_input_object_and_build_give_the_same_model():
    a = Sequential([layers.Input(shape=(6, 6, 1)), layers.Conv2D(2, 3)])
    b = Sequential([layers.Conv2D(2, 3)])
    b.build((None, 6, 6, 1))
    assert a.layers[0].output_shape == b.layers[0].output_shape == (4, 4, 2)


# ----- training ----------------------------------------------------------------------
def test_fit_learns_and_history_has_keras_keys(capsys):
    x, y = tiny_images(96)
    model = tiny_model()
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=16, validation_data=(x[:32], y[:32]), verbose=2)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.epoch == list(range(8)) and model.history is history
    assert history.history["accuracy"][-1] > 0.9
    assert history.history["loss"][-1] < history.history["loss"][0]
    out = capsys.readouterr().out
    assert "Epoch 1/8" in out and "Epoch 8/8" in out
    assert re.search(r"6/6 - \S+ - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: .* - val_accuracy: .*/step", out)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9 and loss < history.history["loss"][0]


def test_verbose_1_prints_a_progress_bar(capsys):
    x, y = tiny_images(40)
    model = tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert re.search(r"5/5 \[=+\] - \S+ \S+/step - loss: \d\.\d{4} - accuracy: \d\.\d{4}", out)
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_old_keras_style_acc_metric_rmsprop_lr_and_binary_labels():
    x, y3 = tiny_images(64)
    y = (y3 == 0).astype(int)
    model = Sequential()
    model.add(Conv2D(4, (3, 3), activation="relu", input_shape=(6, 6, 1)))
    model.add(Flatten())
    model.add(Dense(1, activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer=optimizers.RMSprop(lr=1e-2), metrics=["acc"])
    history = model.fit(x, y, epochs=5, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert history.history["acc"][-1] > 0.8


def test_fit_from_a_generator_with_steps_and_the_fit_generator_alias():
    x, y = tiny_images(64)

    def batches():
        while True:
            for start in range(0, 64, 16):
                yield x[start:start + 16], y[start:start + 16]

    model = tiny_model()
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit_generator(batches(), steps_per_epoch=4, epochs=6, validation_data=batches(),
                                  validation_steps=2, verbose=0)
    assert len(history.history["val_accuracy"]) == 6
    assert history.history["accuracy"][-1] > 0.8
    # a re-iterable with a length (like keras.utils.Sequence): its length is the number of steps
    model.fit(Batches(x, y, 16), epochs=2, verbose=0)
    assert model.evaluate(batches(), steps=4, verbose=0)[1] > 0.8


class Batches:
    """Re-iterable batches with a length, as a Keras Sequence or DirectoryIterator."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __iter__(self):
        for start in range(0, len(self.x), self.size):
            yield self.x[start:start + self.size], self.y[start:start + self.size]


def test_one_shot_generator_that_runs_out_stops_training_with_a_warning():
    x, y = tiny_images(32)
    model = tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    gen = ((x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8))
    with pytest.warns(UserWarning, match="ran out of data after 0 of 4 steps"):
        history = model.fit(gen, steps_per_epoch=4, epochs=3, verbose=0)
    assert len(history.epoch) == 1


def test_same_seed_same_history():
    x, y = tiny_images(48)
    runs = []
    for _ in range(2):
        scratchnet.set_random_seed(7)
        model = Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(6, 6, 1)),
                            layers.Flatten(), layers.Dropout(0.2), layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        runs.append(model.fit(x, y, epochs=2, batch_size=8, verbose=0).history)
    assert runs[0] == runs[1]


def test_predict_is_batched_and_equals_one_big_forward():
    x, _ = tiny_images(70)
    model = tiny_model()
    whole = model(x)
    np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), whole, rtol=1e-6)
    assert model.predict(x).dtype == np.float32
    np.testing.assert_allclose(model.predict(x.astype(np.float64))[:3], whole[:3], rtol=1e-6)


def test_integer_and_float64_inputs_are_converted_to_float32():
    rng = np.random.default_rng(0)
    x_int = rng.integers(0, 255, (8, 6, 6, 1)).astype(np.uint8)
    y = rng.integers(0, 3, 8)
    model = tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x_int, y, verbose=0)
    model.fit(x_int.astype(np.float64) / 255, y.astype(float), verbose=0)
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_evaluate_without_metrics_returns_a_float():
    x, y = tiny_images(16)
    model = tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, y, verbose=0), float)


# ----- weights --------------------------------------------------------------------------
def test_weights_use_keras_layouts_and_round_trip():
    model = tiny_model()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 3, 1, 4), (4,), (36, 3), (3,)]
    new = [np.full(s, 0.5, np.float32) for s in shapes]
    model.set_weights(new)
    assert all((w == 0.5).all() for w in model.get_weights())


def test_set_weights_with_wrong_shapes():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"expects weights of shapes \[\(3, 3, 1, 4\), \(4,\)\], got \[\(3, 3, 4\), \(4,\)\]"):
        model.layers[0].set_weights([np.zeros((3, 3, 4)), np.zeros(4)])
    with pytest.raises(ValueError, match="expects 4 arrays.*got 1"):
        model.set_weights([np.zeros(4)])


# ----- bad input -------------------------------------------------------------------------
@pytest.fixture
def compiled():
    model = tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_wrong_input_shape_names_what_was_expected(compiled):
    x, y = tiny_images(8)
    with pytest.raises(ValueError, match=r"x has shape \(8, 6, 5, 1\); the model expects .*\(None, 6, 6, 1\)"):
        compiled.fit(x[:, :, :5], y, verbose=0)
    compiled.fit(x[..., 0], y, verbose=0)    # no channel axis: added, as Keras 3 does
    with pytest.raises(ValueError, match=r"Conv2D layer 'conv2d\S*' expected input of shape \(None, 6, 6, 1\), got \(8, 5, 6, 1\)"):
        compiled.layers[0].forward(x[:, :5])


def test_length_mismatch_labels_out_of_range_nan_and_empty(compiled):
    x, y = tiny_images(8)
    with pytest.raises(ValueError, match="x has 8, y has 7"):
        compiled.fit(x, y[:7], verbose=0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*from 0 to 5"):
        compiled.fit(x, np.array([0, 1, 2, 5, 0, 1, 2, 0]), verbose=0)
    bad = x.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or Inf in 1 sample\(s\), the first at index 3"):
        compiled.fit(bad, y, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        compiled.fit(x[:0], y[:0], verbose=0)


def test_wrong_order_and_unknown_names():
    x, y = tiny_images(8)
    model = tiny_model()
    with pytest.raises(RuntimeError, match=r"compile\(.*\) before model.fit\(\)"):
        model.fit(x, y)
    with pytest.raises(RuntimeError, match=r"before model.evaluate\(\)"):
        model.evaluate(x, y)
    with pytest.raises(ValueError, match=r"unknown activation 'relu7'.*'relu'"):
        layers.Dense(3, activation="relu7")
    with pytest.raises(ValueError, match=r"unknown initializer 'he_normall'.*'he_normal'"):
        layers.Dense(3, kernel_initializer="he_normall")
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile(optimizer="lion", loss="mse")
    with pytest.raises(ValueError, match=r"unknown metric 'auroc'"):
        model.compile(optimizer="adam", loss="mse", metrics=["auroc"])
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        layers.Conv2D(3, 3, padding="full")
    with pytest.raises(ValueError, match="does not fit an input of 2x2"):
        Sequential([layers.Conv2D(3, 3, input_shape=(2, 2, 1))])


def test_nan_loss_stops_training_naming_epoch_and_step():
    x, y = tiny_images(64)
    model = tiny_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=1e30), loss="sparse_categorical_crossentropy")
    with pytest.raises(scratchnet.TrainingDiverged, match=r"at epoch \d+, step \d+/8"):
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())


# ----- gradients of whole models ------------------------------------------------------------
@pytest.mark.parametrize("loss, last_activation, make_y", [
    ("sparse_categorical_crossentropy", "softmax", lambda rng, n: rng.integers(0, 3, n)),
    ("categorical_crossentropy", "softmax", lambda rng, n: np.eye(3)[rng.integers(0, 3, n)]),
    ("binary_crossentropy", "sigmoid", lambda rng, n: rng.integers(0, 2, (n, 3))),
    ("mse", "tanh", lambda rng, n: rng.standard_normal((n, 3))),
])
@settings(max_examples=10)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_whole_model_gradients(backend_name, loss, last_activation, make_y, n, seed):
    rng = np.random.default_rng(seed)
    model = Sequential([
        layers.Conv2D(3, 3, activation="relu", padding="same", input_shape=(7, 7, 2), dtype="float64"),
        layers.MaxPooling2D(3, strides=2, dtype="float64"),
        layers.Conv2D(2, 2, strides=2, activation="tanh", dtype="float64"),
        layers.Flatten(dtype="float64"),
        layers.Dropout(0.3, dtype="float64"),
        layers.Dense(4, activation="elu", bias_initializer="glorot_uniform", dtype="float64"),
        layers.Dense(3, activation=last_activation, dtype="float64"),
    ])
    model.compile(optimizer="sgd", loss=loss)
    errors = gradcheck.check_model(model, rng.standard_normal((n, 7, 7, 2)), make_y(rng, n), seed=seed)
    assert max(errors.values()) < 1e-6, errors
    assert model.compile_state().fused == (loss != "mse")


def test_batch_logs_kept_by_a_callback_show_their_own_batch():
    # Keras hands each batch callback the logs of that batch; keeping them must not show
    # later batches' values (the metric is read lazily, from a snapshot).
    x, y = tiny_images(32)
    model = tiny_model()
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    kept, seen = [], []

    class Keep(scratchnet.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            kept.append(logs)
            seen.append(dict(logs))
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, callbacks=[Keep()], verbose=0)
    assert [dict(logs) for logs in kept] == seen and len({s["accuracy"] for s in seen}) > 1
