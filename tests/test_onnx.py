"""model.export(path, format='onnx'): every layer, the seed models and the applications give
in onnxruntime what model.predict gives; the file passes onnx's checker, is written
atomically, and what cannot be exported is refused clearly."""
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from strategies import window_case
from scratchnet import activations, applications, layers, models
from scratchnet.graph import FusedNode
from scratchnet.layers.fused import BatchNormReLU, ConvPool
from scratchnet.saving import onnx_export
from scratchnet.saving.onnx_export import OnnxExportError
from scratchnet.train import CATSDOGS_MODELS, mnist_model

onnx = pytest.importorskip("onnx", reason="ONNX export tests need onnx: pip install 'scratchnet[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests run the files with onnxruntime (the dev extra)")

RTOL = 1e-5
seeds = st.integers(0, 2**31 - 1)


# ----- helpers ---------------------------------------------------------------------------------

def run_onnx(path, xs):
    """onnxruntime's outputs for inputs ``xs`` (one array per model input)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})


def relative_error(got, expected):
    """The largest |got - expected| over the output's largest |value| (floating-point sums
    that cancel keep the rounding of their terms, not of their small result)."""
    return float(np.abs(got - expected).max() / max(np.abs(expected).max(), np.finfo(expected.dtype).tiny))


def assert_exports_exactly(model, xs, path, rtol=RTOL, **kwargs):
    """Export ``model``, check the file, and compare onnxruntime with predict: each value
    within ``rtol`` of its own size plus ``rtol`` of the output's largest (for values near 0)."""
    xs = xs if isinstance(xs, list) else [xs]
    model.export(path, format="onnx", verbose=False, **kwargs)
    onnx.checker.check_model(str(path), full_check=True)
    expected = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    got = run_onnx(path, xs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * np.abs(e).max())


def images(shape, seed=0, low=-1.0, high=1.0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def randomize_batchnorm(model, seed=0):
    """Non-trivial gamma, beta and moving statistics in every BatchNormalization, so that an
    export reading the wrong ones (or the batch's) is caught."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, models.Model):
            randomize_batchnorm(layer, int(rng.integers(2**31)))
        elif isinstance(layer, layers.BatchNormalization):
            c = layer.input_shape[-1]
            values = {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.3, c),
                      "moving_mean": rng.normal(0, 0.5, c), "moving_variance": rng.uniform(0.3, 2.0, c)}
            layer.set_weights([values[name] for name in layer.params])


def transposes(path):
    return sum(node.op_type == "Transpose" for node in onnx.load(str(path)).graph.node)


def fused_layers(model):
    return {type(entry[0].layer) for entry in model._graph.fused_plan() if isinstance(entry[0], FusedNode)}


def random_bias(shape, dtype=None):
    return np.random.default_rng(len(shape) + shape[0]).normal(0, 0.5, shape).astype(dtype)


def functional(inputs, outputs):
    return models.Model(inputs, outputs)


# ----- the seed models and the applications ------------------------------------------------------

def test_the_mnist_model_compiled_with_its_fused_head(tmp_path):
    model = mnist_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert fused_layers(model) == {ConvPool}     # predict runs conv+pool fused; the file has both layers
    x = images((5, 28, 28, 1), low=0, high=1)
    assert_exports_exactly(model, x, tmp_path / "mnist.onnx")
    out = run_onnx(tmp_path / "mnist.onnx", [x])[0]
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)     # the softmax is in the file


@pytest.mark.parametrize("name", sorted(CATSDOGS_MODELS))
def test_the_catsdogs_models(tmp_path, name):
    model = CATSDOGS_MODELS[name][0](64)
    randomize_batchnorm(model)
    assert fused_layers(model) == ({ConvPool} if name == "seed" else {BatchNormReLU})
    assert_exports_exactly(model, images((3, 64, 64, 3), low=0, high=1), tmp_path / f"{name}.onnx")
    # NCHW from the input on: transposed back only before Flatten (the seed model's)
    assert transposes(tmp_path / f"{name}.onnx") == (2 if name == "seed" else 1)


@pytest.mark.parametrize("name, size", [("VGG16", 32), ("ResNet50", 32), ("InceptionV3", 75), ("MobileNetV2", 32)])
@pytest.mark.parametrize("include_top", [False, True])
def test_the_applications(tmp_path, name, size, include_top):
    model = getattr(applications, name)(include_top=include_top, input_shape=(size, size, 3), classes=3,
                                        weights=None)
    randomize_batchnorm(model)
    assert_exports_exactly(model, images((2, size, size, 3), low=0, high=1), tmp_path / f"{name}.onnx")


# ----- one layer kind at a time ----------------------------------------------------------------------

CONV_ACTIVATIONS = ["linear", "relu", "sigmoid", "relu6"]


@settings(max_examples=12)
@given(case=window_case(max_batch=3, max_channels=3, max_size=9, max_kernel=4), filters=st.integers(1, 3),
       dilation=st.sampled_from([1, 2]), groups=st.sampled_from([1, 2]), use_bias=st.booleans(),
       activation=st.sampled_from(CONV_ACTIVATIONS), seed=seeds)
def test_conv2d(tmp_path, case, filters, dilation, groups, use_bias, activation, seed):
    n, h, w, c, kernel, strides, padding, _ = case
    if dilation > 1:
        strides = (1, 1)    # Keras refuses strides and dilation together
        assume(padding == "same" or (kernel[0] - 1) * dilation < h and (kernel[1] - 1) * dilation < w)
    model = models.Sequential([layers.Input((h, w, c * groups)),
                               layers.Conv2D(filters * groups, kernel, strides=strides, padding=padding,
                                             dilation_rate=dilation, groups=groups, use_bias=use_bias,
                                             activation=activation, bias_initializer=random_bias)])
    assert_exports_exactly(model, images((n, h, w, c * groups), seed), tmp_path / "conv.onnx")


@settings(max_examples=12)
@given(case=window_case(max_batch=3, max_channels=3, max_size=9, max_kernel=4), multiplier=st.integers(1, 3),
       separable=st.booleans(), use_bias=st.booleans(), activation=st.sampled_from(CONV_ACTIVATIONS), seed=seeds)
def test_depthwise_and_separable_conv2d(tmp_path, case, multiplier, separable, use_bias, activation, seed):
    n, h, w, c, kernel, strides, padding, _ = case
    options = dict(strides=strides, padding=padding, depth_multiplier=multiplier, use_bias=use_bias,
                   activation=activation, bias_initializer=random_bias)
    layer = layers.SeparableConv2D(3, kernel, **options) if separable else layers.DepthwiseConv2D(kernel, **options)
    model = models.Sequential([layers.Input((h, w, c)), layer])
    assert_exports_exactly(model, images((n, h, w, c), seed), tmp_path / "depthwise.onnx")


@settings(max_examples=16)
@given(case=window_case(max_batch=3, max_channels=3, max_size=9, max_kernel=4),
       pooling=st.sampled_from([layers.MaxPooling2D, layers.AveragePooling2D]), seed=seeds)
def test_pooling(tmp_path, case, pooling, seed):
    # 'same' with strides pads more at the bottom and right; average pooling counts only real pixels
    n, h, w, c, pool, strides, padding, _ = case
    model = models.Sequential([layers.Input((h, w, c)), pooling(pool, strides=strides, padding=padding)])
    assert_exports_exactly(model, images((n, h, w, c), seed), tmp_path / "pool.onnx")


def test_same_padding_puts_the_odd_row_at_the_bottom_and_right(tmp_path):
    # a window of 3 every 2 pixels over 6 pads one row and column, after (TensorFlow's rule):
    # the last window averages its 4 real pixels
    model = models.Sequential([layers.Input((6, 6, 1)), layers.AveragePooling2D(3, strides=2, padding="same")])
    x = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    assert_exports_exactly(model, x, tmp_path / "same.onnx")
    assert run_onnx(tmp_path / "same.onnx", [x])[0][0, -1, -1, 0] == np.mean([28, 29, 34, 35])


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_flatten_reshape_and_zero_padding(tmp_path, keepdims):
    inputs = layers.Input((5, 6, 3))
    x = layers.ZeroPadding2D(((1, 2), (0, 3)))(inputs)
    x = layers.Conv2D(4, 3, activation="relu")(x)
    outputs = [layers.GlobalAveragePooling2D(keepdims=keepdims)(x), layers.GlobalMaxPooling2D(keepdims=keepdims)(x),
               layers.GlobalMaxPooling2D(keepdims=keepdims)(inputs),      # straight from the NHWC input
               layers.Flatten()(x), layers.Reshape((-1, 4))(x), layers.Reshape((7, 6, 4))(x),
               layers.ZeroPadding2D(2)(inputs)]
    assert_exports_exactly(functional(inputs, outputs), images((3, 5, 6, 3)), tmp_path / "shapes.onnx")


def test_dense_on_two_three_and_four_axes_dropout_and_activity_regularization(tmp_path):
    inputs = layers.Input((4, 5, 3))
    four = layers.Dense(6, activation="tanh", bias_initializer=random_bias)(inputs)
    three = layers.Dense(2, use_bias=False)(layers.Reshape((20, 6))(four))
    flat = layers.Dropout(0.5)(layers.Flatten()(layers.Conv2D(2, 3, activity_regularizer="l2")(four)))
    flat = layers.ActivityRegularization(l1=0.1)(flat)
    two = layers.Dense(3, activation="softmax")(layers.Dense(7, use_bias=False)(flat))
    model = functional(inputs, [four, three, two, layers.Dropout(0.3)(inputs)])
    assert_exports_exactly(model, images((4, 4, 5, 3)), tmp_path / "dense.onnx")


@pytest.mark.parametrize("name", sorted(activations._REGISTRY))
def test_every_activation(tmp_path, name):
    # on NHWC tensors (the input), on NCHW ones (after a convolution: softmax over the
    # channels) and after Dense; the inputs reach +-30 (overflow of exp, softplus)
    inputs = layers.Input((4, 4, 3))
    conv = layers.Conv2D(5, 3, padding="same", activation=name, bias_initializer=random_bias)(inputs)
    dense = layers.Dense(4, activation=name)(layers.Flatten()(conv))
    model = functional(inputs, [layers.Activation(name)(inputs), conv, dense])
    assert_exports_exactly(model, images((3, 4, 4, 3), low=-30, high=30), tmp_path / f"{name}.onnx")


@pytest.mark.parametrize("max_value, negative_slope, threshold",
                         [(None, 0.0, 0.0), (6.0, 0.0, 0.0), (0.0, 0.0, 0.0), (None, 0.1, 0.0), (4.0, 0.3, 0.0),
                          (None, 0.0, 1.5), (3.0, 0.2, 0.5), (None, 1.5, 0.25)])
def test_relu_arguments_and_the_other_activation_layers(tmp_path, max_value, negative_slope, threshold):
    inputs = layers.Input((4, 4, 3))
    conv = layers.Conv2D(3, 3, padding="same")(inputs)
    relu = layers.ReLU(max_value=max_value, negative_slope=negative_slope, threshold=threshold)
    outputs = [relu(inputs), relu(conv), layers.LeakyReLU()(conv), layers.LeakyReLU(negative_slope=0.05)(inputs),
               layers.Sigmoid()(conv), layers.Softmax()(conv), layers.Softmax(axis=-1)(layers.Flatten()(conv))]
    model = functional(inputs, outputs)
    assert_exports_exactly(model, images((3, 4, 4, 3), low=-8, high=8), tmp_path / "relu.onnx")


def test_batch_normalization_with_moving_statistics(tmp_path):
    inputs = layers.Input((5, 5, 3))
    conv = layers.Conv2D(4, 3, use_bias=False)(inputs)
    outputs = [layers.BatchNormalization()(conv),                                          # NCHW
               layers.BatchNormalization(epsilon=0.1, center=False)(inputs),               # from NHWC
               layers.BatchNormalization(scale=False)(layers.Dense(6)(layers.Flatten()(conv))),  # 2-D
               layers.BatchNormalization(center=False, scale=False)(layers.Reshape((9, 4))(conv)),  # 3-D
               layers.ReLU()(layers.BatchNormalization()(conv))]                           # fused with its ReLU
    model = functional(inputs, outputs)
    randomize_batchnorm(model)
    assert BatchNormReLU in fused_layers(model)
    assert_exports_exactly(model, images((4, 5, 5, 3)), tmp_path / "bn.onnx")


def test_add_multiply_concatenate_rescaling(tmp_path):
    inputs = layers.Input((4, 4, 3))
    a = layers.Conv2D(3, 3, padding="same")(inputs)                       # NCHW inside the file
    pooled = layers.GlobalAveragePooling2D()(a)                            # (N, C): broadcast over H, W
    one_channel = layers.Conv2D(1, 1)(inputs)                              # a size-1 axis stretches
    outputs = [layers.Add()([a, inputs]), layers.Add()([a, pooled, one_channel]),
               layers.Multiply()([inputs, pooled]), layers.Multiply()([a, a, one_channel]),
               layers.Concatenate()([a, inputs]), layers.Concatenate(axis=1)([a, inputs, a]),
               layers.Concatenate(axis=2)([inputs, inputs]), layers.Concatenate()([pooled, pooled]),
               layers.Rescaling(1 / 255)(inputs), layers.Rescaling(2.0, offset=-1.0)(a),
               layers.Rescaling([1.0, 2.0, 3.0], offset=[0.0, 1.0, -1.0])(a)]
    assert_exports_exactly(functional(inputs, outputs), images((3, 4, 4, 3), low=0, high=255),
                           tmp_path / "merge.onnx")


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12), st.integers(1, 12),
       st.sampled_from(["bilinear", "nearest"]), st.sampled_from(["plain", "crop", "pad"]), seeds)
def test_resizing_and_the_inference_crop(tmp_path, height, width, out_height, out_width, interpolation, aspect,
                                         seed):
    inputs = layers.Input((height, width, 2))
    conv = layers.Conv2D(2, 1)(inputs)                                      # NCHW inside the file
    resized = layers.Resizing(out_height, out_width, interpolation=interpolation, fill_value=3.0,
                              crop_to_aspect_ratio=aspect == "crop", pad_to_aspect_ratio=aspect == "pad")
    outputs = [resized(conv), layers.RandomCrop(out_height, out_width)(inputs)]
    assert_exports_exactly(functional(inputs, outputs), images((2, height, width, 2), seed), tmp_path / "resize.onnx")


def test_augmentation_layers_are_the_identity(tmp_path):
    inputs = layers.Input((6, 5, 3))
    x = layers.RandomFlip()(inputs)
    for layer in (layers.RandomRotation(0.2), layers.RandomZoom(0.2), layers.RandomTranslation(0.1, 0.1),
                  layers.RandomContrast(0.3)):
        x = layer(x)
    model = functional(inputs, layers.Conv2D(2, 3)(x))
    assert_exports_exactly(model, images((2, 6, 5, 3)), tmp_path / "augment.onnx")
    assert {node.op_type for node in onnx.load(str(tmp_path / "augment.onnx")).graph.node} <= {"Transpose", "Conv", "Identity"}


def test_models_inside_models_multiple_inputs_and_outputs_and_shared_layers(tmp_path):
    block = models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same", use_bias=False),
                               layers.BatchNormalization(), layers.ReLU(), layers.MaxPooling2D()], name="block")
    inner_in = layers.Input((4, 4, 4))
    two_heads = functional(inner_in, [layers.GlobalAveragePooling2D()(inner_in), layers.Flatten()(inner_in)])
    left, right = layers.Input((8, 8, 3), name="left"), layers.Input((8, 8, 3), name="right")
    shared = layers.Dense(5, activation="relu", name="shared")
    features = [block(left), block(right)]                  # one nested model, called twice
    pooled, flat = two_heads(layers.Add()(features))
    outputs = [shared(pooled), shared(layers.Dense(4)(flat)), layers.Concatenate(name="joined")(features)]
    model = models.Model([left, right], outputs, name="outer")
    randomize_batchnorm(model)
    path = tmp_path / "nested.onnx"
    assert_exports_exactly(model, [images((3, 8, 8, 3), 1), images((3, 8, 8, 3), 2)], path)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["left", "right"]
    assert [o.name for o in graph.output] == ["shared", "shared_1", "joined"]
    assert len([i for i in graph.initializer if i.name.startswith("block/")]) == 5   # shared, not copied
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_a_dynamic_batch_and_opsets_13_to_21(tmp_path):
    model = mnist_model()
    for opset in (13, 18, 21):
        path = tmp_path / f"opset{opset}.onnx"
        model.export(path, format="onnx", verbose=False, opset=opset)
        assert onnx.load(str(path)).opset_import[0].version == opset
        for n in (1, 7):
            x = images((n, 28, 28, 1), n)
            np.testing.assert_allclose(run_onnx(path, [x])[0], model.predict(x, verbose=0), rtol=RTOL, atol=RTOL)
    model.export(tmp_path / "default.onnx", format="onnx", verbose=False)
    default = onnx.load(str(tmp_path / "default.onnx"))
    assert (default.opset_import[0].version, default.ir_version) == (17, 8)   # loads in onnxruntime >= 1.13


def test_every_layer_class_has_an_exporter():
    assert set(layers._CLASSES) - set(onnx_export.EXPORTERS) == {layers.InputLayer}   # the graph's inputs


# ----- float64 ----------------------------------------------------------------------------------------

def test_float64_models_export_as_double(tmp_path, float64):
    inputs = layers.Input((6, 6, 2))
    x = layers.ZeroPadding2D(1)(layers.MaxPooling2D(2, padding="same")(inputs))      # NCHW inside the file
    x = layers.BatchNormalization()(layers.Dense(5, activation="elu")(layers.BatchNormalization()(x)))
    outputs = [layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D(keepdims=True)(x),
               layers.Dense(3, activation="softplus")(layers.Flatten()(x)),
               layers.LeakyReLU(0.1)(x), layers.ReLU(4.0, 0.2, 0.5)(inputs), layers.Activation("leaky_relu")(inputs),
               layers.Concatenate()([layers.Multiply()([x, x]), layers.Add()([x, x])]),
               layers.Dense(2, dtype="float32")(layers.Flatten()(x))]          # a float32 layer in a float64 model
    model = functional(inputs, outputs)
    randomize_batchnorm(model)
    x = images((3, 6, 6, 2), low=-40, high=40, dtype=np.float64)
    assert_exports_exactly(model, x, tmp_path / "double.onnx")
    got, expected = run_onnx(tmp_path / "double.onnx", [x]), model.predict(x, verbose=0)
    assert [g.dtype for g in got] == [np.float64] * 7 + [np.float32]
    assert max(relative_error(g, e) for g, e in zip(got[:7], expected[:7])) < 1e-12


@pytest.mark.parametrize("layer", [lambda: layers.Conv2D(2, 3), lambda: layers.AveragePooling2D(),
                                   lambda: layers.SeparableConv2D(2, 3), lambda: layers.Resizing(3, 4)])
def test_float64_layers_onnxruntime_cannot_run_are_refused(tmp_path, float64, layer):
    model = models.Sequential([layers.Input((6, 6, 2)), layer()])
    with pytest.raises(OnnxExportError, match=rf"layer '{model.layers[0].name}' is float64 .* float32 copy"):
        model.export(tmp_path / "double.onnx", format="onnx", verbose=False)
    assert not (tmp_path / "double.onnx").exists()


@pytest.mark.parametrize("op_type", onnx_export.NO_FLOAT64_KERNEL)
def test_onnxruntime_still_lacks_the_float64_kernels_the_exporter_refuses(op_type):
    # when onnxruntime gains one, the exporter should stop refusing it
    helper = onnx.helper
    double = onnx.TensorProto.DOUBLE
    if op_type == "Resize":
        weights = [onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.int64), "sizes")]
        node = helper.make_node(op_type, ["x", "", "", "sizes"], ["y"], mode="linear")
    else:
        weights = [onnx.numpy_helper.from_array(np.ones((1, 1, 1, 1)), "w")] if op_type.startswith("Conv") else []
        node = helper.make_node(op_type, ["x"] + [w.name for w in weights], ["y"], kernel_shape=[1, 1])
    graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", double, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("y", double, [1, 1, 2, 2])], weights)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(Exception, match="NOT_IMPLEMENTED|Could not find an implementation"):
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


# ----- what is refused, and the file ----------------------------------------------------------------

class Doubling(layers.Layer):
    def _forward(self, x, training):
        return x * 2, None


class MyConv(layers.Conv2D):
    """A subclass may compute something else: not exported as a Conv2D."""


@pytest.mark.parametrize("make, cls", [(lambda: Doubling(name="twice"), "Doubling"),
                                       (lambda: MyConv(2, 3, name="twice"), "MyConv")])
def test_an_unknown_layer_is_named_and_nothing_is_written(tmp_path, make, cls):
    model = models.Sequential([layers.Input((5, 5, 1)), layers.Conv2D(2, 1), make()])
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(OnnxExportError, match=rf"{cls} layer 'twice' .* no layer of class {cls}"):
        model.export(path, format="onnx", verbose=False)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_an_activation_with_no_onnx_form_is_named(tmp_path):
    cube = activations.Activation("cube", lambda z: z ** 3, lambda da, a: da * 3 * np.cbrt(a) ** 2)
    model = models.Sequential([layers.Input((3,)), layers.Dense(2, activation=cube, name="cubed")])
    with pytest.raises(OnnxExportError, match=r"activation 'cube' of Dense layer 'cubed'"):
        model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_check_writes_nothing(tmp_path, monkeypatch):
    def failing_check(model, full_check=False):
        raise onnx.checker.ValidationError("checker says no")
    monkeypatch.setattr(onnx.checker, "check_model", failing_check)
    path = tmp_path / "model.onnx"
    with pytest.raises(onnx.checker.ValidationError):
        mnist_model().export(path, format="onnx", verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_an_export_replaces_a_file_and_says_so(tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous")
    model = mnist_model()
    model.export(path, format="onnx")
    assert capsys.readouterr().out == f"Saved artifact at '{path}'.\n"
    assert onnx.load(str(path)).graph.output[0].name == model.layers[-1].name


@pytest.mark.parametrize("training_layer", [lambda x: layers.Dropout(0.5)(x, training=True),
                                            lambda x: layers.BatchNormalization()(x, training=True),
                                            lambda x: layers.RandomFlip()(layers.Reshape((2, 2, 1))(x),
                                                                          training=True)])
def test_a_layer_called_in_training_mode_is_refused(tmp_path, training_layer):
    inputs = layers.Input((4,))
    with pytest.raises(OnnxExportError, match="training=True"):
        functional(inputs, training_layer(inputs)).export(tmp_path / "m.onnx", format="onnx", verbose=False)
    frozen = layers.BatchNormalization(trainable=False)       # a frozen one normalizes with its moving statistics
    model = functional(inputs, frozen(inputs, training=True))
    randomize_batchnorm(model)
    assert_exports_exactly(model, images((3, 4)), tmp_path / "frozen.onnx")


def test_bad_format_options_and_unbuilt_models_are_refused(tmp_path, monkeypatch):
    model = mnist_model()
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=r"scratchnet exports format='onnx' only .* got format='tf_saved_model'"):
        model.export(path)
    with pytest.raises(ValueError, match=r"got format='ONNX'"):
        model.export(path, format="ONNX")
    with pytest.raises(TypeError, match=r"takes the keyword argument opset, got \['input_signature'\]"):
        model.export(path, format="onnx", input_signature=None)
    for opset in (12, "17", 10**3):
        with pytest.raises(ValueError, match=rf"opset must be an int from 13 to \d+ .* got {opset!r}"):
            model.export(path, format="onnx", opset=opset)
    with pytest.raises(ValueError, match="has not been built"):
        models.Sequential([layers.Dense(2)]).export(path, format="onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)     # as if onnx were not installed
    with pytest.raises(ImportError, match=r"pip install 'scratchnet\[onnx\]'"):
        model.export(path, format="onnx")
    assert list(tmp_path.iterdir()) == []
