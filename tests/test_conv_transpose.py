"""Conv2DTranspose: its gradients against central differences, its output and one SGD step
against the real Keras 3, the NumPy and Numba backends against each other, bad arguments,
and Keras files both ways."""
import itertools
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import scratchnet
from scratchnet import gradcheck, layers, models, optimizers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
RTOL, ATOL = 1e-4, 1e-5
seeds = st.integers(0, 2**31 - 1)


def keras_or_skip():
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    pytest.importorskip("tensorflow", reason="the Keras oracle's backend (tensorflow-cpu, dev extra) is not installed")
    return keras


@st.composite
def transpose_case(draw):
    """(n, h, w, c, kwargs of a Conv2DTranspose) over every argument it has."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilated = draw(st.booleans())
    strides = (1, 1) if dilated else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    padding = draw(st.sampled_from(["valid", "same"]))
    output_padding = draw(st.one_of(st.none(), st.tuples(st.integers(0, strides[0] - 1),
                                                         st.integers(0, strides[1] - 1))))
    kwargs = dict(filters=draw(st.integers(1, 3)), kernel_size=kernel, strides=strides, padding=padding,
                  output_padding=output_padding, dilation_rate=dilation,
                  activation=draw(st.sampled_from([None, "relu", "tanh"])), use_bias=draw(st.booleans()))
    return n, h, w, c, kwargs


def make(kwargs, **extra):
    return layers.Conv2DTranspose(**kwargs, **extra)


@given(transpose_case(), seeds)
def test_gradients_match_central_differences(backend_name, case, seed):
    n, h, w, c, kwargs = case
    layer = make(kwargs, dtype="float64", bias_initializer="glorot_uniform" if kwargs["use_bias"] else "zeros")
    try:
        layer.compute_output_shape((h, w, c))
    except ValueError:
        assume(False)      # an empty output (see test_bad_arguments_are_refused)
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    errors = gradcheck.check_layer(layer, x)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors
    assert set(errors) == ({"x", "kernel", "bias"} if kwargs["use_bias"] else {"x", "kernel"})


@given(transpose_case(), seeds)
def test_numpy_reference_and_numba_kernels_agree(case, seed):
    n, h, w, c, kwargs = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    results = []
    for name in ("numpy", "cpu"):
        scratchnet.set_backend(name)
        layer = make(kwargs, bias_initializer="glorot_uniform" if kwargs["use_bias"] else "zeros")
        try:
            layer.build((h, w, c))
        except ValueError:
            assume(False)
        layer.set_weights([np.random.default_rng(seed + 1).standard_normal(p.shape).astype(np.float32)
                           for p in layer.get_weights()])
        y, ctx = layer.forward(x, training=True)
        dy = np.random.default_rng(seed + 2).standard_normal(y.shape).astype(np.float32)
        dx, grads = layer.backward(dy, ctx)
        assert y.dtype == dx.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
        results.append([np.asarray(y), np.asarray(dx)] + [np.asarray(grads[k]) for k in sorted(grads)])
    for ours, reference in zip(*results):
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)


class RecordingBackend:
    """A backend that records the names of the kernels called through it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        value = getattr(self.inner, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            self.calls.append(name)
            return value(*args, **kwargs)
        return call


def test_forward_is_one_input_gradient_and_backward_one_convolution_and_its_weight_gradient(backend_name):
    # the forward pass once ran a convolution of zeros and threw a weight gradient away
    from dataclasses import replace
    from scratchnet.functions import conv_transpose
    layer = layers.Conv2DTranspose(3, 3, strides=2, padding="valid", output_padding=1, activation="relu")
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 2)).astype(np.float32)
    layer.build(x.shape[1:])
    recording = RecordingBackend(layer.backend)
    config = replace(layer.make_function_config(x.shape[1:]), backend=recording)
    assert min(config.pads) < 0        # the output padding adds a row and a column in no window of C
    y, ctx = conv_transpose.forward(x, layer.params, config, training=True)
    assert [c for c in recording.calls if c.startswith("conv")] == ["conv2d_backward_input"]
    np.testing.assert_array_equal(y, layer.forward(x, training=True)[0])
    recording.calls.clear()
    conv_transpose.backward(np.ones_like(y), ctx)
    assert [c for c in recording.calls if c.startswith("conv")] == ["conv2d_forward", "conv2d_backward"]


def test_float64_stays_float64_and_float32_is_the_default():
    x = np.ones((1, 3, 3, 2))
    assert layers.Conv2DTranspose(2, 3)(x).dtype == np.float32
    layer = layers.Conv2DTranspose(2, 3, strides=2, dtype="float64")
    y, ctx = layer.forward(x, training=True)
    dx, grads = layer.backward(np.ones_like(y), ctx)
    assert y.dtype == dx.dtype == grads["kernel"].dtype == grads["bias"].dtype == np.float64


GRID = [dict(kernel_size=k, strides=s, padding=p, output_padding=op, dilation_rate=d)
        for k, s, p, op, d in itertools.product([1, 2, 3, 4], [1, 2, 3], ["valid", "same"], [None, 0, 1, 2], [1, 2])
        if (op is None or op < s) and not (s > 1 and d > 1)]


def test_forward_equals_keras_over_the_arguments():
    keras = keras_or_skip()
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 3)).astype(np.float32)
    for kwargs in GRID:
        k_layer = keras.layers.Conv2DTranspose(2, bias_initializer="glorot_uniform", **kwargs)
        try:
            expected = np.asarray(k_layer(x))
        except Exception:      # TensorFlow refuses some 'same' output sizes its other backends take
            continue
        ours = layers.Conv2DTranspose(2, **kwargs)
        ours.build(x.shape[1:])
        ours.set_weights(k_layer.get_weights())
        assert ours.compute_output_shape(x.shape[1:]) == tuple(k_layer.compute_output_shape(x.shape)[1:]), kwargs
        np.testing.assert_allclose(np.asarray(ours(x)), expected, rtol=RTOL, atol=ATOL, err_msg=str(kwargs))


def build(L, M):
    x = L.Input((5, 6, 3))
    y = L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", name="up")(x)
    y = L.Conv2DTranspose(3, (2, 3), strides=(1, 2), output_padding=(0, 1), name="wide")(y)
    y = L.Conv2DTranspose(2, 3, dilation_rate=(2, 1), padding="same", use_bias=False, activation="tanh",
                          name="dilated")(y)
    y = L.Flatten(name="flat")(y)
    return M(x, L.Dense(5, activation="softmax", name="out")(y))


def twins(keras):
    keras.utils.set_random_seed(0)
    k_model = build(keras.layers, keras.Model)
    s_model = build(layers, models.Model)
    for k_layer in k_model.layers:
        if k_layer.get_weights():
            rng = np.random.default_rng(len(k_layer.name))
            weights = [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in k_layer.get_weights()]
            k_layer.set_weights(weights)
            s_model.get_layer(k_layer.name).set_weights(weights)
    return k_model, s_model


def test_prediction_and_one_sgd_step_equal_keras():
    keras = keras_or_skip()
    k_model, s_model = twins(keras)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 5, 6, 3)).astype(np.float32), rng.integers(0, 5, 6)
    np.testing.assert_allclose(s_model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)
    assert s_model.count_params() == k_model.count_params()
    k_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    s_model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    assert s_model.train_on_batch(x, y) == pytest.approx(float(k_model.train_on_batch(x, y)), rel=RTOL)
    assert [layer.name for layer in s_model.layers if layer.weights] == \
        [layer.name for layer in k_model.layers if layer.weights]
    for k_layer in [layer for layer in k_model.layers if layer.weights]:   # (the input layers' names differ)
        for k_weight, s_weight in zip(k_layer.get_weights(), s_model.get_layer(k_layer.name).get_weights()):
            np.testing.assert_allclose(s_weight, k_weight, rtol=RTOL, atol=ATOL, err_msg=k_layer.name)


def test_config_weights_and_summary_are_keras_s(capsys):
    keras = keras_or_skip()
    k_layer = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1)
    k_layer.build((None, 5, 6, 3))
    ours = layers.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1)
    ours.build((5, 6, 3))
    assert [tuple(w.shape) for w in ours.get_weights()] == [tuple(w.shape) for w in k_layer.get_weights()]
    assert list(ours.params) == ["kernel", "bias"]
    assert set(ours.get_config()) <= set(k_layer.get_config())
    model = models.Sequential([layers.Input((5, 6, 3)), layers.Conv2DTranspose(4, 3, strides=2, name="up")])
    model.summary()
    out = capsys.readouterr().out
    assert "up (Conv2DTranspose)" in out and "(None, 11, 13, 4)" in out and "112" in out


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"output_padding \(2, 2\) must be smaller than the stride"):
        layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="must be smaller than the stride"):
        layers.Conv2DTranspose(2, 3, output_padding=(0, 1))
    with pytest.raises(ValueError, match="strides > 1` not supported in conjunction with `dilation_rate > 1"):
        layers.Conv2DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="channels_last"):
        layers.Conv2DTranspose(2, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        layers.Conv2DTranspose(2, 3, padding="full")
    with pytest.raises(ValueError, match="gives an output of 0"):   # the window does not fit: nothing comes out
        layers.Conv2DTranspose(2, 2, padding="same", output_padding=0)(np.ones((1, 1, 4, 1), np.float32))
    with pytest.raises(ValueError, match=r"expects inputs shaped \(height, width, channels\)"):
        layers.Conv2DTranspose(2, 2)(np.ones((1, 4, 1), np.float32))


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_files_both_ways(tmp_path, fmt):
    keras = keras_or_skip()
    k_model, s_model = twins(keras)
    x = np.random.default_rng(3).standard_normal((3, 5, 6, 3)).astype(np.float32)
    s_model.save(tmp_path / f"ours.{fmt}")
    loaded = keras.models.load_model(tmp_path / f"ours.{fmt}")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), s_model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)
    k_model.save(tmp_path / f"theirs.{fmt}")
    ours = scratchnet.saving.load_model(tmp_path / f"theirs.{fmt}")
    assert type(ours.get_layer("wide")).__name__ == "Conv2DTranspose"
    assert ours.get_layer("wide").output_padding == (0, 1)
    np.testing.assert_allclose(ours.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)


@settings(max_examples=15)
@given(transpose_case(), seeds)
def test_onnx_export_runs_the_same_in_onnxruntime(tmp_path_factory, case, seed):
    onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx: pip install 'scratchnet[onnx]'")
    ort = pytest.importorskip("onnxruntime", reason="the exported file is run with onnxruntime (dev extra)")
    n, h, w, c, kwargs = case
    try:
        model = models.Sequential([layers.Input((h, w, c)), make(kwargs, bias_initializer="glorot_uniform")])
    except ValueError:
        assume(False)
    path = tmp_path_factory.mktemp("onnx") / "transpose.onnx"
    model.export(path, format="onnx", verbose=False)
    onnx.checker.check_model(str(path), full_check=True)
    assert "ConvTranspose" in {node.op_type for node in onnx.load(str(path)).graph.node}
    x = np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    expected = model.predict(x, verbose=0)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(np.abs(expected).max(), 1))


def test_onnx_export_of_a_float64_layer_is_refused(tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs onnx: pip install 'scratchnet[onnx]'")
    model = models.Sequential([layers.Input((4, 4, 2)), layers.Conv2DTranspose(2, 3, strides=2, dtype="float64")])
    with pytest.raises(ValueError, match="ConvTranspose in float64"):
        model.export(tmp_path / "double.onnx", format="onnx", verbose=False)


def test_tf_keras_2_h5_files_both_ways(tmp_path):
    K = pytest.importorskip("tf_keras", reason="tf-keras (tf.keras 2, dev extra) is not installed")
    x = np.random.default_rng(4).standard_normal((2, 4, 5, 2)).astype(np.float32)
    ours = models.Sequential([layers.Input((4, 5, 2)),
                              layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1,
                                                     activation="relu", bias_initializer="glorot_uniform")])
    ours.save(tmp_path / "ours.h5")
    np.testing.assert_allclose(K.models.load_model(tmp_path / "ours.h5").predict(x, verbose=0),
                               ours.predict(x, verbose=0), rtol=RTOL, atol=ATOL)
    theirs = K.Sequential([K.Input((4, 5, 2)),
                           K.layers.Conv2DTranspose(3, (2, 3), strides=(1, 2), output_padding=(0, 1),
                                                    bias_initializer="glorot_uniform")])
    theirs.save(tmp_path / "theirs.h5")
    np.testing.assert_allclose(scratchnet.saving.load_model(tmp_path / "theirs.h5").predict(x, verbose=0),
                               theirs.predict(x, verbose=0), rtol=RTOL, atol=ATOL)
