"""The activations Keras 3 has (swish/silu, gelu exact and tanh-approximate, selu, elu with
alpha, hard_sigmoid, hard_swish/hard_silu, mish, softsign, exponential): values and
gradients equal Keras's (float32 and float64, large |x| included), float64 central
differences, one SGD step of Dense and Conv2D models equal Keras's, .keras files both ways,
Keras's serialization names, ONNX export against predict."""
import numpy as np
import pytest

import scratchnet
from scratchnet import activations, gradcheck, layers, models, optimizers
from scratchnet.saving.onnx_builder import OnnxExportError

NEW = ["silu", "swish", "gelu", "selu", "elu", "hard_sigmoid", "hard_silu", "hard_swish", "mish", "softsign",
       "exponential"]
# where exponential stays finite in float32 (Keras's is inf past 88.7 too)
WIDE = np.concatenate([np.linspace(-12, 12, 241), [-1e4, -300, -100, -60, -30, -3, 0, 3, 30, 60, 100, 300, 1e4],
                       [-3 - 1e-3, -3 + 1e-3, 3 - 1e-3, 3 + 1e-3]])


def inputs(name, dtype):
    x = WIDE[np.abs(WIDE) < 80] if name == "exponential" else WIDE
    return x.astype(dtype)


def keras_function(name, **options):
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    return lambda x: keras.activations.get(name)(x, **options) if options else keras.activations.get(name)(x)


def keras_value_and_gradient(name, x, **options):
    tf = pytest.importorskip("tensorflow")
    f = keras_function(name, **options)
    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = f(t)
    return np.asarray(y), np.asarray(tape.gradient(y, t))


def ours_value_and_gradient(activation, x):
    a = activation.forward(x)
    return a, activation.gradient(np.ones_like(a), a, x)


TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-300)}
CASES = [(name, {}) for name in NEW] + [("gelu", {"approximate": True}), ("elu", {"alpha": 0.5}),
                                        ("elu", {"alpha": 2.0})]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}{o or ''}" for n, o in CASES])
def test_values_and_gradients_equal_keras(name, options, dtype):
    x = inputs(name, dtype)
    k_value, k_grad = keras_value_and_gradient(name, x, **options)
    ours = activations.get(name)
    ours = ours.variant(**options) if options else ours
    value, grad = ours_value_and_gradient(ours, x)
    assert value.dtype == dtype and grad.dtype == dtype
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    tol = dict(TOL[dtype])
    if name in ("gelu", "mish") and dtype == np.float32:
        tol["rtol"] = 1e-5           # TF's float32 erfc / softplus are a few ulp off the exact value
    if name == "gelu" and not options and dtype == np.float64:
        # TF's float64 gelu multiplies by 1/sqrt(2) rounded to float32 (0x1.6a09e6p-1), so it is
        # only ~1e-8 relative near 0 and worse in the far tail; ours is exact: check it against
        # scipy's normal CDF, and Keras's within that constant's error
        scipy_special = pytest.importorskip("scipy.special")
        np.testing.assert_allclose(value, x * scipy_special.ndtr(x), rtol=1e-13, atol=1e-300)
        tol = dict(rtol=1e-7, atol=1e-8)
        near = np.abs(x) < 8
        x, value, grad, k_value, k_grad = x[near], value[near], grad[near], k_value[near], k_grad[near]
    if options.get("approximate"):
        # Eigen's tanh (TF's) rounds to -1 sooner in the far negative tail, where 1 + tanh cancels:
        # Keras gives -0.0 where the formula still has ~1e-7 (float32) / ~1e-15 (float64)
        tol["atol"] = 1e-5 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(value, k_value, **tol)
    np.testing.assert_array_equal(activations.get(name)(x, **options), value)    # the function form
    tol = dict(tol, atol=max(tol["atol"], 10 * np.finfo(dtype).eps))   # slopes near 0 from cancelling terms
    np.testing.assert_allclose(grad, k_grad, **tol)


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}{o or ''}" for n, o in CASES])
def test_float64_gradient_against_central_differences(name, options):
    x = np.random.default_rng(0).uniform(-5, 5, (3, 7))
    x = x[np.abs(np.abs(x) - 3) > 1e-3].reshape(-1)     # hard_sigmoid's kinks at +-3 have no derivative
    layer = layers.Activation(activations.get(name).variant(**options) if options else name, dtype="float64")
    errors = gradcheck.check_layer(layer, x.reshape(1, -1))
    assert errors["x"] < gradcheck.TOLERANCE, errors


def test_keras_names_and_serialization():
    keras = pytest.importorskip("keras")
    for name in NEW:
        assert activations.serialize(activations.get(name)) == keras.activations.serialize(keras.activations.get(name))
    assert activations.get("swish") is activations.get("silu") is activations.swish
    assert activations.get("hard_swish") is activations.hard_silu
    with pytest.raises(ValueError, match=r"unknown activation 'gleu'.*'gelu'.*'swish'"):
        activations.get("gleu")
    with pytest.raises(TypeError, match="takes no options"):
        activations.mish(np.zeros(2), alpha=1.0)
    x = np.array([-1.0, 0.5], np.float32)
    assert activations.gelu(x).dtype == np.float32
    assert not np.array_equal(activations.gelu(x), activations.gelu(x, approximate=True))


def twin_models(keras, activation, conv, dtype="float32"):
    """The same small model in Keras and scratchnet, with Keras's weights."""
    def build(L, Model, Input):
        x = Input((6, 6, 2)) if conv else Input((5,))
        y = L.Conv2D(3, 3, activation=activation, name="hidden")(x) if conv else \
            L.Dense(4, activation=activation, name="hidden")(x)
        y = L.Flatten(name="flat")(y) if conv else y
        y = L.Activation(activation, name="act")(L.Dense(3, name="pre")(y))
        return Model(x, L.Dense(2, name="out")(y))
    keras.utils.set_random_seed(1)
    keras.config.set_floatx(dtype)
    try:
        k_model = build(keras.layers, keras.Model, keras.Input)
    finally:
        keras.config.set_floatx("float32")
    s_model = build(layers, models.Model, lambda shape: layers.Input(shape, dtype=dtype))
    for k_layer in k_model.layers:
        if k_layer.get_weights():
            s_model.get_layer(k_layer.name).set_weights(k_layer.get_weights())
    return k_model, s_model


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv2d"])
@pytest.mark.parametrize("name", NEW)
def test_one_sgd_step_equals_keras(backend_name, name, conv):
    keras = pytest.importorskip("keras")
    k_model, s_model = twin_models(keras, name, conv)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 6, 2) if conv else (4, 5)).astype(np.float32) * (0.3 if name == "exponential" else 2)
    y = rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose(s_model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    k_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    s_model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    before = [w for layer in k_model.layers for w in layer.get_weights()]
    k_loss, s_loss = k_model.train_on_batch(x, y), s_model.train_on_batch(x, y)
    assert s_loss == pytest.approx(float(k_loss), rel=1e-5)
    after = []
    for k_layer in k_model.layers:
        for k_w, s_w in zip(k_layer.get_weights(), s_model.get_layer(k_layer.name).get_weights()):
            np.testing.assert_allclose(s_w, k_w, rtol=1e-5, atol=1e-6, err_msg=k_layer.name)
            after.append(k_w)
    assert len(after) == 6 and not np.array_equal(after[0], before[0])    # the first layer's kernel moved


@pytest.mark.parametrize("name", ["silu", "gelu", "selu", "hard_sigmoid", "hard_silu", "mish", "softsign",
                                  "exponential"])
def test_keras_files_both_ways(tmp_path, name):
    keras = pytest.importorskip("keras")
    k_model, s_model = twin_models(keras, name, conv=True)
    x = np.random.default_rng(3).standard_normal((2, 6, 6, 2)).astype(np.float32)
    s_model.save(tmp_path / "ours.keras")
    from_ours = keras.models.load_model(tmp_path / "ours.keras")
    assert keras.activations.serialize(from_ours.get_layer("hidden").activation) == name
    np.testing.assert_allclose(from_ours.predict(x, verbose=0), s_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    k_model.save(tmp_path / "theirs.keras")
    from_keras = models.load_model(tmp_path / "theirs.keras")
    assert from_keras.get_layer("hidden").activation is activations.get(name)
    np.testing.assert_allclose(from_keras.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


ONNX_CASES = CASES[:-1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,options", ONNX_CASES, ids=[f"{n}{o or ''}" for n, o in ONNX_CASES])
def test_onnx_export_equals_predict(tmp_path, name, options, dtype):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    activation = activations.get(name).variant(**options) if options else name
    inputs_ = layers.Input((6, 6, 2), dtype=dtype)
    y = inputs_
    if dtype == "float32":      # onnxruntime's CPU provider has no float64 Conv
        y = layers.Conv2D(3, 3, activation=activation, bias_initializer="glorot_uniform", name="conv", dtype=dtype)(y)
    y = layers.Dense(4, activation=activation, name="dense", dtype=dtype)(layers.Flatten(dtype=dtype)(y))
    model = models.Model(inputs_, layers.Activation(activation, name="act", dtype=dtype)(y))
    x = np.random.default_rng(4).uniform(-6, 6, (3, 6, 6, 2)).astype(dtype)
    if name == "gelu" and not options and dtype == "float64":
        with pytest.raises(OnnxExportError, match="Erf in float64"):
            model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
        return
    model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    expected = model.predict(x, verbose=0)
    assert got.dtype == expected.dtype
    assert got.dtype == np.dtype(dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_the_input_is_kept_only_when_the_derivative_needs_it():
    from scratchnet.functions import activation as act
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    backend = scratchnet.backend.current()
    _, ctx = act.forward(x.copy(), None, activations.get("gelu"), backend)
    assert ctx.input is not None
    _, ctx = act.forward(x.copy(), None, activations.get("selu"), backend)
    assert ctx.input is None
