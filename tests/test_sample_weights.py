"""sample_weight, class_weight and weighted_metrics in fit, evaluate and train_on_batch, with
Keras's semantics (the loss of a batch is sum(w * loss) / batch size; only weighted_metrics see
the weights), compared with real Keras where it is installed."""
import itertools
import os

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import gradcheck, layers, losses

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = rng.integers(0, 3, n)
    w = rng.uniform(0, 3, n).astype(np.float32)
    return x, y, w


def twins(keras, loss="sparse_categorical_crossentropy", metrics=("accuracy",), weighted=("accuracy",)):
    """The same small model in Keras and here, with the same weights, compiled alike."""
    def build(lib):
        return lib.Sequential([lib.Input((6,)), lib.layers.Dense(5, activation="tanh"),
                               lib.layers.Dense(3, activation="softmax")])
    theirs, ours = build(keras), build(sn)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(lib.optimizers.SGD(0.1), loss, metrics=list(metrics), weighted_metrics=list(weighted))
    return theirs, ours


def assert_same_history(theirs, ours):
    assert set(ours.history) == set(theirs.history)
    for key in theirs.history:
        np.testing.assert_allclose(ours.history[key], theirs.history[key], rtol=1e-5, atol=1e-6, err_msg=key)


def assert_same_weights(theirs, ours):
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weights", ["sample", "class", "class-onehot"])
def test_fit_with_weights_equals_keras(weights):
    keras = real_keras()
    x, y, w = data()
    loss = "categorical_crossentropy" if weights == "class-onehot" else "sparse_categorical_crossentropy"
    labels = np.eye(3, dtype=np.float32)[y] if weights == "class-onehot" else y
    kwargs = {"sample_weight": w} if weights == "sample" else {"class_weight": {0: 0.5, 2: 4.0}}   # class 1: 1
    theirs, ours = twins(keras, loss)
    results = [model.fit(x, labels, batch_size=5, epochs=3, shuffle=False, verbose=0, validation_split=0.25,
                         **kwargs) for model in (theirs, ours)]
    assert_same_history(*results)
    assert set(results[1].history) == {"loss", "accuracy", "weighted_accuracy", "val_loss", "val_accuracy",
                                       "val_weighted_accuracy"}
    assert_same_weights(theirs, ours)


def test_evaluate_and_validation_data_with_sample_weights_equal_keras():
    keras = real_keras()
    x, y, w = data()
    theirs, ours = twins(keras, weighted=("accuracy", "sparse_categorical_accuracy"))
    for model in (theirs, ours):
        model.fit(x[:16], y[:16], batch_size=4, epochs=2, shuffle=False, verbose=0,
                  validation_data=(x[16:], y[16:], w[16:]))
    assert_same_history(theirs.history, ours.history)
    expected = theirs.evaluate(x, y, sample_weight=w, batch_size=7, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, sample_weight=w, batch_size=7, verbose=0, return_dict=True)
    assert set(got) == set(expected)
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=1e-5)
    unweighted = ours.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    assert unweighted["accuracy"] == got["accuracy"] and unweighted["loss"] != got["loss"]


def test_train_on_batch_with_weights_equals_keras():
    keras = real_keras()
    x, y, w = data(8)
    theirs, ours = twins(keras, weighted=())
    for kwargs in ({"sample_weight": w}, {"class_weight": {1: 3.0}}):
        expected = theirs.train_on_batch(x, y, **kwargs)
        got = ours.train_on_batch(x, y, **kwargs)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert_same_weights(theirs, ours)


def test_weighted_losses_equal_keras_and_their_gradients_central_differences():
    keras = real_keras()
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, (5, 3))
    p /= p.sum(axis=1, keepdims=True)
    w = rng.uniform(0, 2, 5)
    cases = [(losses.CategoricalCrossentropy(), keras.losses.CategoricalCrossentropy(), np.eye(3)[[0, 2, 1, 1, 0]]),
             (losses.SparseCategoricalCrossentropy(), keras.losses.SparseCategoricalCrossentropy(),
              np.array([0, 2, 1, 1, 0])),
             (losses.BinaryCrossentropy(), keras.losses.BinaryCrossentropy(), rng.integers(0, 2, (5, 3))),
             (losses.MeanSquaredError(), keras.losses.MeanSquaredError(), rng.standard_normal((5, 3)))]
    for ours, theirs, y in cases:
        expected = float(theirs(y.astype(np.float32), p.astype(np.float32), sample_weight=w.astype(np.float32)))
        assert ours(y, p, sample_weight=w) == pytest.approx(expected, rel=1e-5)
        target = ours.prepare_targets(y, p.shape, np.float64)
        _, analytic = ours.value_and_grad(target, p.copy(), sample_weight=w)
        numeric = gradcheck.numerical_gradient(lambda: ours.value_and_grad(target, p, sample_weight=w)[0], p)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_a_stream_of_weighted_batches_trains_as_the_arrays_do():
    x, y, w = data(12)

    def model():
        sn.set_random_seed(0)
        m = sn.Sequential([sn.Input((6,)), layers.Dense(3, activation="softmax")])
        m.compile("sgd", "sparse_categorical_crossentropy")
        return m

    arrays, stream = model(), model()
    arrays.fit(x, y, sample_weight=w, batch_size=4, shuffle=False, epochs=2, verbose=0)
    batches = [(x[i:i + 4], y[i:i + 4], w[i:i + 4]) for i in range(0, 12, 4)]
    stream.fit(itertools.cycle(batches), steps_per_epoch=3, epochs=2, verbose=0)
    for a, b in zip(arrays.get_weights(), stream.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6)
    class_weighted = model()
    pairs = [(xb, yb) for xb, yb, _ in batches]
    class_weighted.fit(itertools.cycle(pairs), steps_per_epoch=3, class_weight={0: 2.0}, verbose=0)
    assert not np.allclose(class_weighted.get_weights()[0], model().get_weights()[0])


def test_weighted_metrics_survive_saving(tmp_path):
    keras = real_keras()
    _, ours = twins(keras)
    for name in ("m.keras", "m.npz"):
        ours.save(tmp_path / name)
        back = sn.models.load_model(tmp_path / name)
        x, y, w = data(6)
        back.fit(x, y, sample_weight=w, verbose=0)
        assert set(back.history.history) == {"loss", "accuracy", "weighted_accuracy"}
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert theirs.compiled


@pytest.mark.parametrize("kwargs, message", [
    ({"sample_weight": np.ones(24), "class_weight": {0: 1.0}}, r"class_weight or sample_weight, not both"),
    ({"sample_weight": np.ones(23)}, r"one number per sample, shape \(24,\); got float64 of shape \(23,\)"),
    ({"sample_weight": np.ones((24, 2))}, r"shape \(24,\); got float64 of shape \(24, 2\)"),
    ({"sample_weight": np.r_[np.ones(23), np.nan]}, r"must be finite; got nan at sample 23"),
    ({"class_weight": [1.0, 2.0]}, r"class_weight must be a dict of class index -> weight, got list"),
    ({"class_weight": {"cat": 2.0}}, r"integer class indices to numbers; got 'cat': 2.0"),
])
def test_bad_weights_say_what_was_expected(kwargs, message):
    x, y, _ = data()
    model = sn.Sequential([sn.Input((6,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0, **kwargs)


def test_validation_data_of_the_wrong_length_is_named():
    x, y, _ = data()
    model = sn.Sequential([sn.Input((6,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"validation_data must be \(x_val, y_val\), .* tuple of 4 items"):
        model.fit(x, y, validation_data=(x, y, y, y), verbose=0)
