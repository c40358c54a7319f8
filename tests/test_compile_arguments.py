"""What compile takes, as Keras takes it: losses, metrics and optimizers as names, classes,
instances or functions; from_logits; a loss of the user's own (a Loss subclass with its value and
gradient); a Python function as a metric. Compared with real Keras where it is installed."""
import os

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import gradcheck, layers, losses, metrics, optimizers
from oracles import dense_twins as twin

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def data(n=20, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, classes, n)


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
    with pytest.raises(AttributeError, match=r"scratchnet has no metrics.Poisson; its metrics are AUC, BinaryAccuracy"):
        metrics.Poisson


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


def test_a_subclass_of_a_built_in_loss_with_its_own_math_uses_it_and_keras_style_init_works():
    class Half(losses.MeanSquaredError):
        def call(self, y_true, y_pred):
            return 0.5 * ((y_pred - y_true) ** 2).mean(axis=-1)

        def gradient(self, y_true, y_pred):
            return (y_pred - y_true) / y_pred.shape[-1]

    class Named(losses.Loss):
        def __init__(self, name="named"):
            super().__init__(name)                 # Keras's positional order: name first

        def call(self, y_true, y_pred):
            return ((y_pred - y_true) ** 2).mean(axis=-1)

        def gradient(self, y_true, y_pred):
            return 2 * (y_pred - y_true) / y_pred.shape[-1]

    zeros, ones = np.zeros((4, 2)), np.ones((4, 2))
    assert Half()(zeros, ones) == pytest.approx(0.5)
    assert Named().name == "named" and Named().from_logits is False
    model = sn.Sequential([sn.Input((5,)), layers.Dense(2, activation="sigmoid")])
    model.compile("sgd", Named(), metrics=["mae", "binary_accuracy"])   # outputs pass through as they are
    model.fit(np.ones((4, 5)), np.ones((4, 2)), verbose=0)
    assert not model.compile_state().fused

    class OnlyCall(losses.MeanSquaredError):
        def call(self, y_true, y_pred):
            return ((y_pred - y_true) ** 2).mean(axis=-1)

    with pytest.raises(TypeError, match=r"the loss OnlyCall defines no gradient\(\)"):
        model.compile("sgd", OnlyCall())
    with pytest.raises(ValueError, match=r"reduction='sum_over_batch_size'\); got reduction=None"):
        losses.MeanSquaredError(reduction=None)
    with pytest.raises(TypeError, match=r"from_logits must be True or False, got 'yes'"):
        losses.BinaryCrossentropy(from_logits="yes")


def test_loss_scale_factor_changes_nothing_but_the_scale_in_between_as_in_keras():
    x, y = data()
    trained = []
    for scale in (None, 1024.0):
        sn.set_random_seed(0)
        model = sn.Sequential([sn.Input((5,)), layers.Dense(3, activation="softmax")])
        model.compile(optimizers.SGD(0.1, loss_scale_factor=scale), "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
        trained.append(model.get_weights())
    for a, b in zip(*trained):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_binary_accuracy_on_a_softmax_head_and_a_metric_instance_reused():
    keras = real_keras()
    x = np.array([[0.0, 0, 0, 0, 0]], np.float32)
    theirs, ours = twin(keras, units=2)
    weights = [np.zeros((5, 4)), np.zeros(4), np.zeros((4, 2)), np.array([-1.0, 0.0])]
    for model in (theirs, ours):
        model.set_weights([w.astype(np.float32) for w in weights])      # probabilities (0.27, 0.73)
        model.compile("sgd", "categorical_crossentropy", metrics=["binary_accuracy"])
    y = np.array([[0.0, 1.0]], np.float32)
    assert ours.evaluate(x, y, verbose=0)[1] == pytest.approx(theirs.evaluate(x, y, verbose=0)[1]) == 1.0
    shared = metrics.CategoricalAccuracy()
    ours.compile("sgd", "categorical_crossentropy", metrics=[shared], weighted_metrics=[shared])
    assert [m.name for m in ours.metrics] == ["categorical_accuracy", "weighted_categorical_accuracy"]
    assert shared.weighted is False and shared.name == "categorical_accuracy"     # the user's object is untouched


def test_a_model_compiled_with_the_users_own_objects_saves_and_loads_uncompiled_with_a_warning(tmp_path):
    model = sn.Sequential([sn.Input((5,)), layers.Dense(2)])

    def mean_error(y_true, y_pred):
        return (y_pred - y_true).mean(axis=-1)

    model.compile("adam", Huber(), metrics=[mean_error])
    model.fit(np.ones((4, 5)), np.ones((4, 2)), verbose=0)
    for name in ("m.npz", "m.keras"):
        model.save(tmp_path / name)
        with pytest.warns(UserWarning, match=r"loads uncompiled"):
            back = sn.models.load_model(tmp_path / name)
        assert not back.compiled
        np.testing.assert_array_equal(back.predict(np.ones((1, 5)), verbose=0), model.predict(np.ones((1, 5)), verbose=0))
