"""UpSampling2D ('nearest' and 'bilinear') and Cropping2D: hand-written backward passes against
central differences in float64, forward passes and one SGD step against real Keras 3, the
NumPy reference and the Numba CPU backend alike, Keras's argument forms and errors, Keras
files both ways, and ONNX export in onnxruntime."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet
from scratchnet import gradcheck, layers, models, optimizers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
RTOL, ATOL = 1e-5, 1e-6
seeds = st.integers(0, 2**31 - 1)


def real_keras():
    pytest.importorskip("tensorflow", reason="the Keras oracle needs TensorFlow (tensorflow-cpu, dev extra)")
    return pytest.importorskip("keras", reason="the Keras oracle (keras 3, dev extra) is not installed")


@st.composite
def crops(draw, h, w):
    """A cropping in one of Keras's three forms that leaves at least one row and column."""
    top, left = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
    bottom, right = draw(st.integers(0, h - 1 - top)), draw(st.integers(0, w - 1 - left))
    form = draw(st.sampled_from(["int", "pair", "pairs"]))
    if form == "int" and min(h, w) >= 3:
        return min(top, (min(h, w) - 1) // 2)
    if form == "pair":
        return ((h - 1) // 2 if top > (h - 1) // 2 else top, (w - 1) // 2 if left > (w - 1) // 2 else left)
    return ((top, bottom), (left, right))


# ----- (a) gradients ---------------------------------------------------------------------------------
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 3), st.sampled_from(["nearest", "bilinear"]), seeds)
def test_upsampling_gradients(backend_name, n, h, w, c, sh, sw, interpolation, seed):
    layer = layers.UpSampling2D((sh, sw), interpolation=interpolation, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    errors = gradcheck.check_layer(layer, x)
    assert set(errors) == {"x"} and errors["x"] < gradcheck.TOLERANCE, errors


@given(st.data(), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 3), seeds)
def test_cropping_gradients(backend_name, data, n, h, w, c, seed):
    cropping = data.draw(crops(h, w))
    layer = layers.Cropping2D(cropping, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    errors = gradcheck.check_layer(layer, x)
    assert set(errors) == {"x"} and errors["x"] < gradcheck.TOLERANCE, errors


def test_nearest_backward_sums_each_block_and_cropping_backward_pads_with_zeros():
    dy = np.arange(2 * 4 * 6 * 1, dtype=np.float32).reshape(2, 4, 6, 1)
    layer = layers.UpSampling2D((2, 3))
    _, ctx = layer.forward(np.zeros((2, 2, 2, 1), np.float32))
    dx, grads = layer.backward(dy, ctx)
    assert grads == {} and dx.dtype == np.float32
    np.testing.assert_array_equal(dx, dy.reshape(2, 2, 2, 2, 3, 1).sum(axis=(2, 4)))
    crop = layers.Cropping2D(((1, 0), (0, 2)))
    y, ctx = crop.forward(np.ones((1, 3, 4, 1), np.float32))
    dx, _ = crop.backward(np.full(y.shape, 5, np.float32), ctx)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 0, 0], [5, 5, 0, 0], [5, 5, 0, 0]])


# ----- (b) against Keras 3 ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [2, (1, 3), (3, 2)])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling_equals_keras(size, interpolation):
    keras = real_keras()
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32)
    ours, theirs = layers.UpSampling2D(size, interpolation=interpolation), keras.layers.UpSampling2D(
        size, interpolation=interpolation)
    got = np.asarray(ours(x))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(theirs(x)), rtol=RTOL, atol=ATOL)
    assert ours.get_config() | {"name": None, "dtype": None} == \
        {**theirs.get_config(), "name": None, "dtype": None}


@pytest.mark.parametrize("cropping", [0, 1, (1, 0), (0, 2), ((0, 1), (2, 1)), ((2, 0), (0, 1)), ((1, 3), (1, 0))])
def test_cropping_equals_keras(cropping):
    keras = real_keras()
    x = np.random.default_rng(1).standard_normal((2, 6, 5, 3)).astype(np.float32)
    ours, theirs = layers.Cropping2D(cropping), keras.layers.Cropping2D(cropping)
    np.testing.assert_array_equal(np.asarray(ours(x)), keras.ops.convert_to_numpy(theirs(x)))
    assert ours.get_config() | {"name": None, "dtype": None} == \
        {**theirs.get_config(), "name": None, "dtype": None}


def small_model(L, Model):
    inputs = L.Input(shape=(5, 6, 2))
    x = L.Conv2D(3, 3, padding="same", name="conv1")(inputs)
    x = L.UpSampling2D((2, 3), interpolation="bilinear", name="up_bilinear")(x)
    x = L.Cropping2D(((1, 2), (3, 0)), name="crop")(x)
    x = L.Conv2D(4, 3, activation="relu", name="conv2")(x)
    x = L.UpSampling2D(2, name="up_nearest")(x)
    x = L.Cropping2D(1, name="crop2")(x)
    x = L.Conv2D(2, 3, strides=2, name="conv3")(x)
    outputs = L.Dense(3, activation="softmax", name="out")(L.Flatten(name="flatten")(x))
    return Model(inputs, outputs)


def test_a_model_with_them_predicts_and_takes_one_sgd_step_as_keras():
    keras = real_keras()
    keras.utils.set_random_seed(0)
    k_model, s_model = small_model(keras.layers, keras.Model), small_model(layers, models.Model)
    s_model.set_weights(k_model.get_weights())
    assert [l.output.shape[1:] for l in s_model.layers] == [tuple(l.output.shape[1:]) for l in k_model.layers]
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 5, 6, 2)).astype(np.float32), rng.integers(0, 3, 6)
    np.testing.assert_allclose(s_model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=1e-4, atol=ATOL)
    k_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    s_model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    assert s_model.train_on_batch(x, y) == pytest.approx(float(k_model.train_on_batch(x, y)), rel=1e-4)
    for k_weight, s_weight in zip(k_model.get_weights(), s_model.get_weights()):
        np.testing.assert_allclose(s_weight, k_weight, rtol=1e-4, atol=ATOL)


def test_summary_shows_their_output_shapes(capsys):
    model = small_model(layers, models.Model)
    model.summary()
    out = capsys.readouterr().out
    for name, shape in (("up_bilinear", (None, 10, 18, 3)), ("crop", (None, 7, 15, 3)),
                        ("up_nearest", (None, 10, 26, 4)), ("crop2", (None, 8, 24, 4))):
        assert name in out and str(shape) in out, (name, out)


# ----- (c) the backends agree --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_reference_and_numba_cpu_agree(dtype):
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 3)).astype(dtype)
    results = {}
    for name in ("numpy", "cpu"):
        scratchnet.set_backend(name)
        out = []
        for layer in (layers.UpSampling2D((2, 3), dtype=dtype), layers.UpSampling2D(3, interpolation="bilinear",
                                                                                   dtype=dtype),
                      layers.Cropping2D(((1, 0), (2, 1)), dtype=dtype)):
            y, ctx = layer.forward(x, training=True)
            dx, _ = layer.backward(np.ones_like(y) * np.linspace(-1, 1, y.size).reshape(y.shape).astype(dtype), ctx)
            assert y.dtype == dx.dtype == np.dtype(dtype)      # no silent upcast
            out += [y, dx]
        results[name] = out
    for a, b in zip(results["numpy"], results["cpu"]):
        np.testing.assert_array_equal(a, b)


# ----- (d) errors ---------------------------------------------------------------------------------------
def test_bad_arguments_and_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match=r"interpolation must be one of \('nearest', 'bilinear'\).*got 'bicubic'"):
        layers.UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match=r"interpolation must be one of .*got 'area'"):
        layers.UpSampling2D(interpolation="area")
    assert layers.UpSampling2D(interpolation="Bilinear").interpolation == "bilinear"    # Keras lower-cases
    with pytest.raises(ValueError, match=r"size must be a positive int or a pair of them, got 0"):
        layers.UpSampling2D(0)
    with pytest.raises(ValueError, match=r"size must be .*got \(1, 2, 3\)"):
        layers.UpSampling2D((1, 2, 3))
    with pytest.raises(ValueError, match="channels_last"):
        layers.UpSampling2D(data_format="channels_first")
    with pytest.raises(ValueError, match="channels_last"):
        layers.Cropping2D(data_format="channels_first")
    with pytest.raises(ValueError, match=r"cropping must not be negative, got -1"):
        layers.Cropping2D(-1)
    with pytest.raises(ValueError, match=r"cropping must be an int, a pair .*got \(1, 2, 3\)"):
        layers.Cropping2D((1, 2, 3))
    with pytest.raises(ValueError, match=r"rows entry must be a non-negative int or a pair of them, got \(1, -2\)"):
        layers.Cropping2D(((1, -2), (0, 0)))
    with pytest.raises(ValueError, match=r"cropping \(\(2, 2\), \(2, 2\)\) leaves nothing of input \(None, 4, 5, 3\)"):
        layers.Cropping2D(2)(layers.Input((4, 5, 3)))
    with pytest.raises(ValueError, match=r"cropping \(\(0, 0\), \(3, 2\)\) leaves nothing of input \(None, 6, 5, 1\)"):
        layers.Cropping2D(((0, 0), (3, 2)))(np.zeros((1, 6, 5, 1), np.float32))
    for layer in (layers.UpSampling2D(), layers.Cropping2D(1)):
        with pytest.raises(ValueError, match=r"expects inputs shaped \(height, width, channels\), got \(None, 7\)"):
            layer(layers.Input((7,)))


# ----- (e) Keras files both ways ----------------------------------------------------------------------
def test_scratchnet_s_own_file_keeps_them(tmp_path):
    from scratchnet import load_model
    x = np.random.default_rng(4).standard_normal((3, 5, 6, 2)).astype(np.float32)
    model = small_model(layers, models.Model)
    model.save(tmp_path / "model.npz")
    again = load_model(tmp_path / "model.npz")
    assert [l.get_config() for l in again.layers] == [l.get_config() for l in model.layers]
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_files_both_ways(tmp_path, fmt):
    keras = real_keras()
    from scratchnet import load_model
    x = np.random.default_rng(4).standard_normal((3, 5, 6, 2)).astype(np.float32)
    ours = small_model(layers, models.Model)
    ours.save(tmp_path / f"ours.{fmt}")
    theirs = keras.models.load_model(tmp_path / f"ours.{fmt}")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-4, atol=ATOL)
    keras.utils.set_random_seed(1)
    theirs = small_model(keras.layers, keras.Model)
    theirs.save(tmp_path / f"theirs.{fmt}")
    again = load_model(tmp_path / f"theirs.{fmt}")
    assert [type(l).__name__ for l in again.layers][2:6] == ["UpSampling2D", "Cropping2D", "Conv2D", "UpSampling2D"]
    assert again.get_layer("up_bilinear").interpolation == "bilinear"
    assert again.get_layer("crop").cropping == ((1, 2), (3, 0))
    np.testing.assert_allclose(again.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=ATOL)


# ----- (f) ONNX -------------------------------------------------------------------------------------------
@settings(max_examples=10, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["nearest", "bilinear"]), st.data())
def test_onnx_export_runs_in_onnxruntime_as_predict(tmp_path_factory, h, w, sh, sw, interpolation, data):
    onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx")
    ort = pytest.importorskip("onnxruntime", reason="the exported files run in onnxruntime")
    inputs = layers.Input((h, w, 2))
    conv = layers.Conv2D(2, 1)(inputs)                          # NCHW inside the file
    up = layers.UpSampling2D((sh, sw), interpolation=interpolation)(conv)
    outputs = [layers.Cropping2D(data.draw(crops(h * sh, w * sw)))(up), up,
               layers.Cropping2D(data.draw(crops(h, w)))(inputs)]
    model = models.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    model.export(path, format="onnx", verbose=False)
    onnx.checker.check_model(str(path), full_check=True)
    x = np.random.default_rng(5).uniform(-1, 1, (2, h, w, 2)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})
    for g, e in zip(got, model.predict(x, verbose=0)):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=RTOL)


def test_onnx_float64_cropping_exports_and_float64_upsampling_is_refused(tmp_path, float64):
    pytest.importorskip("onnx", reason="ONNX export needs onnx")
    ort = pytest.importorskip("onnxruntime", reason="the exported files run in onnxruntime")
    from scratchnet.saving.onnx_export import OnnxExportError
    model = models.Sequential([layers.Input((6, 5, 2)), layers.Cropping2D(((1, 2), (0, 1)))])
    model.export(tmp_path / "crop.onnx", format="onnx", verbose=False)
    x = np.random.default_rng(6).standard_normal((2, 6, 5, 2))
    session = ort.InferenceSession(str(tmp_path / "crop.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, model.predict(x, verbose=0))
    model = models.Sequential([layers.Input((6, 5, 2)), layers.UpSampling2D()])     # Resize has no float64 kernel
    with pytest.raises(OnnxExportError, match=r"is float64 and needs the ONNX operator Resize"):
        model.export(tmp_path / "up.onnx", format="onnx", verbose=False)


def test_legacy_h5_files_load_in_tf_keras_2(tmp_path):
    real_keras()
    K = pytest.importorskip("tf_keras", reason="tf-keras (tf.keras 2, dev extra) is not installed")
    x = np.random.default_rng(7).standard_normal((3, 5, 6, 2)).astype(np.float32)
    ours = small_model(layers, models.Model)
    ours.save(tmp_path / "ours.h5")
    theirs = K.models.load_model(tmp_path / "ours.h5")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-4, atol=ATOL)
