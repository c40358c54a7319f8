"""LayerNormalization, GroupNormalization, UnitNormalization and Normalization: backward
passes against central differences (float64, hypothesis shapes, both backends), dtypes,
errors, and equality with real Keras 3 (forward, one SGD step, adapt, .keras files both ways)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet
from scratchnet import gradcheck, layers, models, optimizers

TOLERANCE = gradcheck.TOLERANCE
seeds = st.integers(0, 2**31 - 1)
dims = st.integers(1, 4)


def randomize(layer, seed):
    """Gamma and beta away from their ones and zeros, so the check sees them work."""
    rng = np.random.default_rng(seed + 7)
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if i == 0 and layer.scale else rng.standard_normal(w.shape)
                       for i, w in enumerate(layer.get_weights())])


def assert_gradients_match(layer, x):
    errors = gradcheck.check_layer(layer, x)
    assert max(errors.values()) < TOLERANCE, errors
    return errors


# ----- gradient checks --------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), dims, dims, st.integers(2, 4), st.sampled_from([-1, [1, 3], [2, 3], 1, [-2, -1]]),
       st.booleans(), st.booleans(), seeds)
def test_layer_normalization_gradients(backend_name, n, h, w, c, axis, center, scale, seed):
    layer = layers.LayerNormalization(axis=axis, center=center, scale=scale, epsilon=1e-3, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, h, w, c)) * 2 + 0.5
    layer.build(x.shape[1:])
    randomize(layer, seed)
    errors = assert_gradients_match(layer, x)
    assert set(errors) == {"x"} | ({"gamma"} if scale else set()) | ({"beta"} if center else set())


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), dims, dims, st.sampled_from([(1, 3), (2, 2), (3, 1), (2, 3), (4, 2)]),
       st.booleans(), st.booleans(), seeds)
def test_group_normalization_gradients(backend_name, n, h, w, groups_and_width, center, scale, seed):
    groups, width = groups_and_width
    layer = layers.GroupNormalization(groups=groups, center=center, scale=scale, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, h, w, groups * width)) + 1
    layer.build(x.shape[1:])
    randomize(layer, seed)
    assert_gradients_match(layer, x)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3), dims, st.integers(2, 4), seeds)
def test_group_normalization_on_another_axis_gradients(backend_name, n, w, groups, seed):
    layer = layers.GroupNormalization(groups=groups, axis=1, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, groups * 2, w, 3))
    layer.build(x.shape[1:])
    randomize(layer, seed)
    assert_gradients_match(layer, x)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), dims, dims, dims, st.sampled_from([-1, [1, 2], [1, 2, 3], 2]), seeds)
def test_unit_normalization_gradients(backend_name, n, h, w, c, axis, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w, c)) + 0.1
    assert_gradients_match(layers.UnitNormalization(axis=axis, dtype="float64"), x)


def test_unit_normalization_of_a_zero_vector_is_zero_with_the_clamped_gradient():
    layer = layers.UnitNormalization(dtype="float64")
    x = np.zeros((2, 3))
    x[1] = [3.0, 4.0, 0.0]
    y, ctx = layer.forward(x)
    np.testing.assert_allclose(y, [[0, 0, 0], [0.6, 0.8, 0]])
    dx, _ = layer.backward(np.ones((2, 3)), ctx)
    np.testing.assert_allclose(dx[0], 1e12)      # x / 1e-12 near 0: a constant scale


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 4), dims, dims, st.sampled_from([-1, None, [1, 3]]), st.booleans(), seeds)
def test_normalization_gradients(backend_name, n, h, c, axis, invert, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, 2, c)) * 3 + 1
    layer = layers.Normalization(axis=axis, invert=invert, dtype="float64")
    layer.adapt(x)
    errors = assert_gradients_match(layer, x)
    assert set(errors) == {"x"}      # nothing trainable


# ----- dtypes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda d: layers.LayerNormalization(dtype=d),
                                  lambda d: layers.GroupNormalization(groups=2, dtype=d),
                                  lambda d: layers.UnitNormalization(dtype=d),
                                  lambda d: layers.Normalization(mean=1.0, variance=4.0, dtype=d)])
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_float32_by_default_float64_when_asked(make, dtype):
    layer = make(dtype)
    expected = np.dtype(dtype or "float32")
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 4)).astype(expected)
    y, ctx = layer.forward(x, training=True)
    dx, grads = layer.backward(np.ones_like(y), ctx)
    assert y.dtype == dx.dtype == expected
    assert all(g.dtype == expected for g in grads.values())
    assert all(p.dtype == expected for k, p in layer.params.items() if k != "count")


# ----- errors -------------------------------------------------------------------------------------
def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match=r"groups \(4\) must divide the number of channels \(6\)"):
        layers.GroupNormalization(groups=4).build((3, 3, 6))
    with pytest.raises(ValueError, match=r"groups \(8\) cannot be more than the number of channels \(6\)"):
        layers.GroupNormalization(groups=8).build((3, 3, 6))
    with pytest.raises(ValueError, match=r"axis 4 is out of range for inputs of rank 4"):
        layers.LayerNormalization(axis=4).build((3, 3, 6))
    with pytest.raises(ValueError, match=r"axis -5 is out of range"):
        layers.GroupNormalization(groups=2, axis=-5).build((3, 3, 6))
    with pytest.raises(ValueError, match="out of range"):
        layers.UnitNormalization(axis=7).build((3, 6))
    with pytest.raises(ValueError, match="batch axis"):
        layers.LayerNormalization(axis=0).build((3, 6))
    with pytest.raises(ValueError, match="both mean and variance"):
        layers.Normalization(mean=[1.0, 2.0])
    with pytest.raises(ValueError, match="one shape"):
        layers.Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="epsilon must be positive"):
        layers.LayerNormalization(epsilon=0)


def test_normalization_adapt_checks_the_shape_it_was_built_for():
    layer = layers.Normalization()
    layer.adapt(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="incompatible shape"):
        layer.adapt(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="empty iterable"):
        layers.Normalization().adapt([])


# ----- against Keras 3 ------------------------------------------------------------------------------
keras = pytest.importorskip("keras", reason="Keras (tensorflow-cpu, in the dev extra) is not installed")

CASES = {
    "layer_norm": lambda L: L.LayerNormalization(name="norm"),
    "layer_norm_hwc": lambda L: L.LayerNormalization(axis=[1, 2, 3], epsilon=1e-2, name="norm"),
    "group_norm": lambda L: L.GroupNormalization(groups=2, name="norm"),
    "group_norm_unscaled": lambda L: L.GroupNormalization(groups=4, center=False, scale=False, name="norm"),
    "unit_norm": lambda L: L.UnitNormalization(axis=[1, 2], name="norm"),
    "normalization": lambda L: L.Normalization(name="norm"),
    "normalization_invert": lambda L: L.Normalization(axis=None, invert=True, name="norm"),
    "normalization_given": lambda L: L.Normalization(mean=[0.5, -1, 0, 2], variance=[1, 2, 0.5, 4], name="norm"),
}


def small_model(L, Model, case):
    inputs = L.Input(shape=(6, 6, 3), name="image")
    x = L.Conv2D(4, 3, name="conv")(inputs)
    x = CASES[case](L)(x)
    x = L.Flatten(name="flatten")(x)
    return Model(inputs, L.Dense(2, name="out")(x))


def data(n=6):
    rng = np.random.default_rng(3)
    return rng.standard_normal((n, 6, 6, 3)).astype(np.float32), rng.standard_normal((n, 2)).astype(np.float32)


def twins(case):
    keras.utils.set_random_seed(0)
    k_model = small_model(keras.layers, keras.Model, case)
    s_model = small_model(layers, models.Model, case)
    x, _ = data()
    rng = np.random.default_rng(1)
    k_norm = k_model.get_layer("norm")
    if case.startswith("normalization") and k_norm.input_mean is None:
        features = k_model.get_layer("conv")(x)
        k_norm.adapt(np.asarray(features))
    for k_layer in k_model.layers:
        weights = k_layer.get_weights()
        if k_layer.name == "norm" and case.startswith(("layer", "group")):
            weights = [w + rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in weights]
            k_layer.set_weights(weights)
        if weights:
            s_model.get_layer(k_layer.name).set_weights(weights)
    return k_model, s_model


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_one_sgd_step_equal_keras(case):
    k_model, s_model = twins(case)
    x, y = data()
    np.testing.assert_allclose(s_model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    assert s_model.count_params() == k_model.count_params()
    k_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    s_model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    k_loss = float(k_model.train_on_batch(x, y))
    assert s_model.train_on_batch(x, y) == pytest.approx(k_loss, rel=1e-4)
    for k_layer in k_model.layers:
        s_weights = s_model.get_layer(k_layer.name).get_weights()
        assert len(s_weights) == len(k_layer.get_weights())
        for k_weight, s_weight in zip(k_layer.get_weights(), s_weights):
            assert s_weight.dtype == k_weight.dtype
            np.testing.assert_allclose(s_weight, k_weight, rtol=1e-4, atol=1e-5, err_msg=k_layer.name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_files_both_ways(case, tmp_path):
    k_model, s_model = twins(case)
    x, _ = data()
    expected = k_model.predict(x, verbose=0)
    k_model.save(tmp_path / "k.keras")
    loaded = scratchnet.saving.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    s_model.save(tmp_path / "s.keras")
    back = keras.models.load_model(tmp_path / "s.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    assert type(back.get_layer("norm")).__name__ == type(s_model.get_layer("norm")).__name__


def test_normalization_adapt_over_batches_and_datasets_equals_keras():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((10, 3, 4)) * [1, 2, 3, 4] + [0, 1, -2, 5]).astype(np.float32)
    batches = [x[:3], x[3:7], x[7:]]
    for axis in (-1, None, (1, 2)):
        for data_ in (x, batches, tf.data.Dataset.from_tensor_slices((x, x)).batch(4)):
            k, s = keras.layers.Normalization(axis=axis), layers.Normalization(axis=axis)
            k.adapt(data_)
            s.adapt(data_)
            for kw, sw in zip(k.get_weights(), s.get_weights()):
                assert kw.shape == sw.shape and kw.dtype == sw.dtype
                np.testing.assert_allclose(sw, kw, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(np.asarray(s(x)), np.asarray(k(x)), rtol=1e-5, atol=1e-5)


def test_normalization_before_adapt_is_the_identity_as_in_keras():
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(layers.Normalization()(x)), np.asarray(keras.layers.Normalization()(x)))
    np.testing.assert_allclose(np.asarray(layers.Normalization()(x)), x)


def test_unit_normalization_near_zero_equals_keras():
    x = np.array([[0, 0, 0], [1e-13, 0, 0], [3, 4, 0]], np.float32)
    np.testing.assert_allclose(np.asarray(layers.UnitNormalization()(x)),
                               np.asarray(keras.layers.UnitNormalization()(x)), rtol=1e-6)


# ----- ONNX -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opset", [13, 17, 18])
def test_onnx_export_equals_predict(tmp_path, dtype, opset):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = np.random.default_rng(2).standard_normal((3, 5, 5, 4)).astype(dtype) * 2 + 1
    inputs = layers.Input((5, 5, 4), dtype=dtype)
    outs = [layers.LayerNormalization(dtype=dtype)(inputs),
            layers.LayerNormalization(axis=[1, 3], center=False, dtype=dtype)(inputs),
            layers.GroupNormalization(groups=2, dtype=dtype)(inputs),
            layers.GroupNormalization(groups=5, axis=1, scale=False, dtype=dtype)(inputs),
            layers.UnitNormalization(dtype=dtype)(inputs),
            layers.UnitNormalization(axis=[1, 2], dtype=dtype)(inputs),
            layers.Normalization(axis=(2, 3), dtype=dtype)(inputs),
            layers.Normalization(axis=None, invert=True, dtype=dtype)(inputs),
            layers.Normalization(mean=[1, 2, 3, 4], variance=[1, 0.5, 2, 0], dtype=dtype)(inputs)]
    model = models.Model(inputs, outs)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, layers.Normalization) and layer.params:
            layer.adapt(x)
        elif layer.params:
            layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    path = tmp_path / "norms.onnx"
    model.export(path, format="onnx", verbose=False, opset=opset)
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})
    for g, e in zip(got, model.predict(x, verbose=0)):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5 * np.abs(e).max())
