"""Regularizers, constraints and ActivityRegularization: each penalty's value against Keras's
and its gradient against finite differences, each constraint against Keras's, a model that
uses them all trained step by step beside the same model in Keras, and Keras files both
ways keeping them."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scratchnet import constraints, gradcheck, layers, models, optimizers, regularizers


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (keras 3, dev extra) is not installed")


PENALTIES = {
    "L1": lambda m: m.L1(0.03), "L2": lambda m: m.L2(0.02), "L1L2": lambda m: m.L1L2(l1=0.01, l2=0.05),
    "rows": lambda m: m.OrthogonalRegularizer(0.1), "columns": lambda m: m.OrthogonalRegularizer(0.2, mode="columns"),
}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(PENALTIES)), st.integers(2, 5), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_each_penalty_is_keras_value_and_its_gradient_the_finite_differences(kind, rows, columns, seed):
    keras = real_keras()
    w = np.random.default_rng(seed).standard_normal((rows, columns))
    ours, theirs = PENALTIES[kind](regularizers), PENALTIES[kind](keras.regularizers)
    w32 = w.astype(np.float32)
    # as Keras computes it in training: on a float32 tensor (given a NumPy array, its
    # OrthogonalRegularizer normalizes rows in 'columns' mode; it refuses float64)
    assert ours(w32) == pytest.approx(float(theirs(keras.ops.convert_to_tensor(w32))), rel=1e-5, abs=1e-7)
    error = gradcheck.compare_with_differences(ours.gradient(w), lambda: ours(w), w, abs(ours(w)))
    assert error < 1e-6, error


def test_orthogonal_penalty_of_a_row_shorter_than_epsilon():
    w = np.array([[1e-9, 0.0], [0.6, 0.8], [0.8, -0.5]])
    r = regularizers.OrthogonalRegularizer(1.0)
    u = w / np.array([[1e-7], [1.0], [np.sqrt(0.89)]])           # the short row over 1e-7, not over its norm
    expected = (abs(u[0] @ u[1]) + abs(u[0] @ u[2]) + abs(u[1] @ u[2])) * 2 / 6
    assert r(w) == pytest.approx(expected, rel=1e-9)
    assert gradcheck.compare_with_differences(r.gradient(w), lambda: r(w), w, 1.0, eps=1e-10) < 1e-5


@pytest.mark.parametrize("kind, shape", [("MaxNorm", (4, 3)), ("MaxNorm", (3, 3, 2, 4)), ("NonNeg", (4, 3)),
                                         ("UnitNorm", (4, 3)), ("MinMaxNorm", (3, 3, 2, 4))])
def test_each_constraint_projects_as_keras(kind, shape):
    keras = real_keras()
    axis = [0, 1, 2] if len(shape) == 4 else 0
    make = {"MaxNorm": lambda m: m.MaxNorm(1.5, axis=axis), "NonNeg": lambda m: m.NonNeg(),
            "UnitNorm": lambda m: m.UnitNorm(axis=axis),
            "MinMaxNorm": lambda m: m.MinMaxNorm(0.5, 1.2, rate=0.7, axis=axis)}[kind]
    w = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ours = make(constraints)(w)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(make(keras.constraints)(w)), rtol=1e-6, atol=1e-7)


def test_names_and_errors():
    assert regularizers.get("l2") == regularizers.L2(0.01) and regularizers.get("l1").l1 == 0.01
    assert regularizers.get("l1_l2") == regularizers.L1L2(0.01, 0.01)
    assert constraints.get("max_norm") == constraints.MaxNorm(2, axis=0)
    assert constraints.get({"class_name": "NonNeg", "config": {}}) == constraints.NonNeg()   # tf.keras 2's form
    with pytest.raises(ValueError, match=r"Dense layer 'd': kernel_regularizer: unknown regularizer 'l3'; "
                                         r"expected one of \['L1', 'L1L2'"):
        layers.Dense(2, kernel_regularizer="l3", name="d")
    with pytest.raises(ValueError, match="is a function; scratchnet needs a penalty's gradient"):
        layers.Dense(2, kernel_regularizer=lambda w: (w ** 2).sum())
    with pytest.raises(ValueError, match="l2 must be a non-negative number, got -1"):
        regularizers.L2(-1)
    with pytest.raises(AttributeError, match="scratchnet has no regularizers.OrthogonalRegulariser; "
                                             "OrthogonalRegularizer is the nearest"):
        regularizers.OrthogonalRegulariser
    with pytest.raises(AttributeError, match="scratchnet has no constraints.MaxNrm; MaxNorm is the nearest"):
        constraints.MaxNrm
    with pytest.raises(ValueError, match=r"Conv2D layer 'c': kernel_regularizer: OrthogonalRegularizer takes a "
                                         r"2-D weight \(a Dense kernel\), got one of shape \(3, 3, 1, 2\)"):
        models.Sequential([layers.Input((5, 5, 1)), layers.Conv2D(2, 3, name="c",
                                                                  kernel_regularizer=regularizers.OrthogonalRegularizer())])
    clip = layers.Dense(2, kernel_constraint=lambda w: w.clip(-0.1, 0.1))       # any function may be a constraint
    model = models.Sequential([layers.Input((3,)), clip])
    model.compile(optimizers.SGD(1.0), "mse")
    model.fit(np.ones((4, 3), np.float32), np.full((4, 2), 5.0, np.float32), verbose=0)
    assert np.abs(clip.get_weights()[0]).max() <= 0.1
    with pytest.raises(ValueError, match="is a constraint of one's own: a model file keeps only the built-in ones"):
        clip.get_config()


class Scaled(regularizers.Regularizer):
    """A regularizer of one's own: 3 * sum(x**4)."""

    def __call__(self, x):
        return float(3 * (x ** 4).sum())

    def gradient(self, x):
        return 12 * x ** 3


def regularized_model(dtype="float32", activity_on_output=True):
    """Every kind of penalty and constraint, on the layers that take them."""
    inputs = layers.Input((6, 6, 2), dtype=dtype)
    x = layers.Conv2D(3, 3, padding="same", activation="relu", name="conv", kernel_regularizer=regularizers.L2(0.02),
                      bias_regularizer=regularizers.L1(0.01), activity_regularizer=regularizers.L1L2(0.001, 0.002),
                      kernel_constraint=constraints.MaxNorm(0.9, axis=[0, 1, 2]), dtype=dtype)(inputs)
    x = layers.MaxPooling2D(2, name="pool", dtype=dtype)(x)        # would fuse with conv but for its activity penalty
    x = layers.BatchNormalization(name="bn", gamma_regularizer="l2", beta_constraint="non_neg", dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    x = layers.Dense(5, activation="tanh", name="hidden", kernel_regularizer=regularizers.OrthogonalRegularizer(0.05),
                     kernel_constraint=constraints.UnitNorm(), bias_constraint=constraints.MinMaxNorm(0.1, 0.3, 0.5),
                     dtype=dtype)(x)
    x = layers.ActivityRegularization(l1=0.01, l2=0.003, name="activity", dtype=dtype)(x)
    outputs = layers.Dense(3, activation="softmax", name="out", bias_regularizer="l1_l2", dtype=dtype,
                           activity_regularizer=regularizers.L2(0.01) if activity_on_output else None)(x)
    return models.Model(inputs, outputs)


def keras_twin(keras, model):
    r, c = keras.regularizers, keras.constraints
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", kernel_regularizer=r.L2(0.02),
                            bias_regularizer=r.L1(0.01), activity_regularizer=r.L1L2(0.001, 0.002),
                            kernel_constraint=c.MaxNorm(0.9, axis=[0, 1, 2]))(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.BatchNormalization(gamma_regularizer="l2", beta_constraint="non_neg")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5, activation="tanh", kernel_regularizer=r.OrthogonalRegularizer(0.05),
                           kernel_constraint=c.UnitNorm(), bias_constraint=c.MinMaxNorm(0.1, 0.3, 0.5))(x)
    x = keras.layers.ActivityRegularization(l1=0.01, l2=0.003)(x)
    outputs = keras.layers.Dense(3, activation="softmax", bias_regularizer=r.L1L2(0.01, 0.01),
                                 activity_regularizer=r.L2(0.01))(x)
    twin = keras.Model(inputs, outputs)
    twin.set_weights(model.get_weights())
    return twin


def data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, n)


def test_a_regularized_model_trains_as_in_keras():
    keras = real_keras()
    x, y = data()
    model = regularized_model()
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    twin = keras_twin(keras, model)
    twin.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    assert model.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(
        twin.evaluate(x, y, batch_size=8, verbose=0), rel=1e-5)
    ours = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    theirs = twin.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(twin.evaluate(x, y, verbose=0), rel=1e-5)
    np.testing.assert_allclose(sorted(model.losses), sorted(float(v) for v in twin.losses[-len(model.losses):]),
                               rtol=1e-5)
    kernel = model.get_layer("conv").get_weights()[0]
    assert np.sqrt((kernel ** 2).sum(axis=(0, 1, 2))).max() <= 0.9 + 1e-6       # the constraint held
    assert (model.get_layer("bn").get_weights()[1] >= 0).all()


def test_the_gradients_of_every_penalty_through_the_model_are_the_finite_differences():
    model = regularized_model("float64")
    model.get_layer("hidden").kernel_regularizer = Scaled()      # one of one's own, too
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = data(6, seed=2)
    errors = gradcheck.check_model(model, x, y)
    assert max(errors.values()) < 1e-6, errors


def test_a_frozen_layer_adds_no_penalty_and_an_unregularized_model_no_cost():
    model = regularized_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = data()
    before = model.evaluate(x, y, verbose=0)
    model.get_layer("conv").trainable = False
    model.compile("sgd", "sparse_categorical_crossentropy")
    conv_penalties = 0.02 * (model.get_layer("conv").get_weights()[0] ** 2).sum()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(before - conv_penalties, rel=1e-5)


def test_keras_files_keep_them_both_ways(tmp_path):
    keras = real_keras()
    model = regularized_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    for name in ("m.keras", "m.h5", "m.npz"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # no "loads without their effect" any more
            model.save(tmp_path / name)
            back = models.load_model(tmp_path / name)
        assert [layer.get_config() for layer in back.layers] == [layer.get_config() for layer in model.layers]
        if name == "m.npz":
            continue
        theirs = keras.models.load_model(tmp_path / name)
        dense = theirs.layers[-1]
        assert dense.bias_regularizer.get_config() == {"l1": 0.01, "l2": 0.01}
        assert theirs.layers[1].kernel_constraint.get_config() == {"max_value": 0.9, "axis": [0, 1, 2]}
        assert type(theirs.layers[-2]).__name__ == "ActivityRegularization"
    twin = keras_twin(keras, model)
    twin.save(tmp_path / "theirs.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = models.load_model(tmp_path / "theirs.keras", compile=False)
    assert ours.get_layer(twin.layers[1].name).kernel_regularizer == regularizers.L2(0.02)
    assert ours.get_layer(twin.layers[3].name).beta_constraint == constraints.NonNeg()
    ours.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    twin.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x, y = data()
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(twin.evaluate(x, y, verbose=0), rel=1e-5)
