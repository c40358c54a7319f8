"""What compile takes, as Keras takes it: losses, metrics and optimizers as names, classes,
instances or functions; from_logits; a loss of the user's own (a Loss subclass with its value and
gradient); a Python function as a metric. Compared with real Keras where it is installed."""
import os

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import gradcheck, layers, losses, metrics, optimizers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def data(n=20, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, classes, n)


def twin(keras, activation="softmax", units=3):
    def build(lib):
        return lib.Sequential([lib.Input((5,)), lib.layers.Dense(4, activation="tanh"),
                               lib.layers.Dense(units, activation=activation)])
    theirs, ours = build(keras), build(sn)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return theirs, ours


@pytest.mark.parametrize("form", ["name", "class", "instance", "function"])
def test_losses_metrics_and_optimizers_in_every_form_train_as_keras(form):
    keras = real_keras()
    x, y = data()
    onehot = np.eye(3, dtype=np.float32)[y]

    def arguments(lib):
        return {"name": dict(optimizer="nadam", loss="categorical_crossentropy",
                             metrics=["categorical_accuracy", "mae"]),
                "class": dict(optimizer="adagrad", loss=lib.losses.CategoricalCrossentropy,
                              metrics=[lib.metrics.CategoricalAccuracy, lib.metrics.MeanSquaredError]),
                "instance": dict(optimizer=lib.optimizers.Adam(0.01), loss=lib.losses.CategoricalCrossentropy(),
                                 metrics=[lib.metrics.CategoricalAccuracy(), lib.metrics.MeanAbsoluteError()]),
                "function": dict(optimizer="adamw", loss=lib.losses.categorical_crossentropy,
                                 metrics=[lib.metrics.categorical_accuracy, lib.metrics.mean_squared_error]),
                }[form]

    theirs, ours = twin(keras)
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(**arguments(lib))
        model.fit(x, onehot, batch_size=5, epochs=2, shuffle=False, verbose=0)
    assert set(ours.history.history) == set(theirs.history.history)
    for key, values in theirs.history.history.items():
        np.testing.assert_allclose(ours.history.history[key], values, rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss", ["binary", "categorical", "sparse"])
def test_from_logits_equals_keras(loss):
    keras = real_keras()
    x, y = data(classes=2 if loss == "binary" else 3)
    units = 1 if loss == "binary" else 3
    targets = {"binary": y.astype(np.float32)[:, None], "categorical": np.eye(3, dtype=np.float32)[y],
               "sparse": y}[loss]
    name = {"binary": "BinaryCrossentropy", "categorical": "CategoricalCrossentropy",
            "sparse": "SparseCategoricalCrossentropy"}[loss]
    theirs, ours = twin(keras, activation=None, units=units)
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(lib.optimizers.SGD(0.1), getattr(lib.losses, name)(from_logits=True))
        model.fit(x, targets, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.history.history["loss"], theirs.history.history["loss"], rtol=1e-5)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), rtol=1e-5, atol=1e-6)


class Huber(losses.Loss):
    """A user's own loss: 0.5 e^2 inside |e| <= 1, |e| - 0.5 outside, mean over the outputs."""

    def call(self, y_true, y_pred):
        e = np.abs(y_pred - y_true)
        return np.where(e <= 1, 0.5 * e * e, e - 0.5).mean(axis=-1)

    def gradient(self, y_true, y_pred):
        e = y_pred - y_true
        return np.clip(e, -1, 1) / y_pred.shape[-1]


def test_a_users_loss_subclass_trains_as_kerass_huber_and_its_gradient_checks():
    keras = real_keras()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 5)).astype(np.float32), (3 * rng.standard_normal((16, 2))).astype(np.float32)
    theirs, ours = twin(keras, activation=None, units=2)
    theirs.compile(keras.optimizers.SGD(0.05), keras.losses.Huber(delta=1.0))
    ours.compile(optimizers.SGD(0.05), Huber())
    for model in (theirs, ours):
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.history.history["loss"], theirs.history.history["loss"], rtol=1e-5)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), rtol=1e-5, atol=1e-6)
    assert gradcheck.check_loss(Huber(), y.astype(np.float64), rng.standard_normal((16, 2)) * 3) < 1e-6
    assert Huber().name == "huber"


def test_a_python_function_loss_is_refused_at_compile_saying_how_to_write_one():
    model = sn.Sequential([sn.Input((5,)), layers.Dense(1)])

    def my_mse(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean(axis=-1)

    with pytest.raises(TypeError, match=r"the loss 'my_mse' is a Python function, which scratchnet cannot "
                                        r"differentiate .* subclass of scratchnet.losses.Loss with call\(y_true, "
                                        r"y_pred\) .* gradient\(y_true, y_pred\)"):
        model.compile("sgd", my_mse)
    assert not model.compiled

    class NoGradient(losses.Loss):
        def call(self, y_true, y_pred):
            return ((y_true - y_pred) ** 2).mean(axis=-1)

    with pytest.raises(TypeError, match=r"the loss NoGradient defines no gradient\(\); write it as a subclass"):
        model.compile("sgd", NoGradient())


def test_a_python_function_is_a_metric_as_in_keras():
    keras = real_keras()
    x, y = data()

    def hit_rate(y_true, y_pred):              # any function of targets and probabilities, on arrays
        return (y_pred.argmax(axis=-1) == y_true.reshape(-1)).astype("float32")

    def keras_hit_rate(y_true, y_pred):        # the same in Keras, which calls it on tensors
        ops = keras.ops
        return ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), ops.cast(ops.reshape(y_true, (-1,)), "int64")),
                        "float32")
    keras_hit_rate.__name__ = "hit_rate"

    theirs, ours = twin(keras)
    theirs.compile("sgd", "sparse_categorical_crossentropy", metrics=[keras_hit_rate, "sparse_categorical_accuracy"])
    ours.compile("sgd", "sparse_categorical_crossentropy", metrics=[hit_rate, "sparse_categorical_accuracy"])
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0), rtol=1e-5)
    model = ours
    hits = model.evaluate(x, y, verbose=0, return_dict=True)
    assert hits["hit_rate"] == hits["sparse_categorical_accuracy"]


@pytest.mark.parametrize("name", ["BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
                                  "MeanSquaredError", "MeanAbsoluteError"])
def test_metric_objects_equal_kerass_with_and_without_sample_weights(name):
    keras = real_keras()
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 1, (30, 4)).astype(np.float32)
    p /= p.sum(axis=1, keepdims=True)
    y = {"BinaryAccuracy": rng.integers(0, 2, (30, 4)).astype(np.float32),
         "SparseCategoricalAccuracy": rng.integers(0, 4, 30)}.get(name, np.eye(4, dtype=np.float32)[rng.integers(0, 4, 30)])
    w = rng.uniform(0, 2, 30).astype(np.float32)
    kwargs = {"threshold": 0.3} if name == "BinaryAccuracy" else {}
    for weights in (None, w):
        theirs, ours = getattr(keras.metrics, name)(**kwargs), getattr(metrics, name)(**kwargs)
        for part in (slice(0, 13), slice(13, 30)):
            theirs.update_state(y[part], p[part], sample_weight=None if weights is None else weights[part])
            ours.update_state(y[part], p[part], sample_weight=None if weights is None else weights[part])
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6)
        assert ours.name == theirs.name


def test_unknown_names_list_what_exists():
    model = sn.Sequential([sn.Input((5,)), layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match=r"unknown metric 'f1'; expected one of \['accuracy', 'acc', .*'mae'"):
        model.compile("sgd", "categorical_crossentropy", metrics=["f1"])
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; expected one of \['binary_crossentropy'"):
        model.compile("sgd", "hinge")
    with pytest.raises(TypeError, match=r"compile\(metrics=...\) takes a list .* got str"):
        model.compile("sgd", "categorical_crossentropy", metrics="accuracy")
    with pytest.raises(AttributeError, match=r"scratchnet has no metrics.AUC; its metrics are BinaryAccuracy"):
        metrics.AUC


def test_a_users_loss_may_give_one_value_per_output_and_is_reduced_as_keras_does():
    class SquaredError(losses.Loss):        # (N, k) values: the batch loss is their mean, as Keras reduces
        def call(self, y_true, y_pred):
            return (y_pred - y_true) ** 2

        def gradient(self, y_true, y_pred):
            return 2 * (y_pred - y_true)

    rng = np.random.default_rng(4)
    y, p = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    value, grad = SquaredError().value_and_grad(y, p.copy())
    expected_value, expected_grad = losses.MeanSquaredError().value_and_grad(y, p.copy())
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)
    assert gradcheck.check_loss(SquaredError(), y, p) < 1e-6

    class WrongShape(SquaredError):
        def gradient(self, y_true, y_pred):
            return 2 * (y_pred - y_true).sum(axis=-1)

    with pytest.raises(ValueError, match=r"gradient\(\) must return an array shaped like y_pred \(6, 3\), got \(6,\)"):
        WrongShape().value_and_grad(y, p)
