"""keras.applications rebuilt: parameter and layer counts equal Keras's, Keras's layer names,
the arguments, a forward pass at the smallest size, a frozen base under a new head, saving."""
import numpy as np
import pytest

from scratchnet import applications, layers, load_model
from scratchnet.models import Model

# (total with top, without top, trainable with top, layers with top, without) from Keras
COUNTS = {
    "VGG16": (138_357_544, 14_714_688, 138_357_544, 23, 19),
    "ResNet50": (25_636_712, 23_587_712, 25_583_592, 177, 175),
    "InceptionV3": (23_851_784, 21_802_784, 23_817_352, 313, 311),
    "MobileNetV2": (3_538_984, 2_257_984, 3_504_872, 156, 154),
}


def trainable_count(model):
    return sum(layer.params[name].size for layer, name in model.weight_pairs(trainable=True))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_and_layer_counts_equal_keras(name):
    build = getattr(applications, name)
    total, no_top, trainable, n_layers, n_layers_no_top = COUNTS[name]
    model = build()
    assert (model.count_params(), trainable_count(model), len(model.layers)) == (total, trainable, n_layers)
    assert model.layers[-1].name == "predictions" and model.output_shape == (None, 1000)
    headless = build(include_top=False, input_shape=(150, 150, 3))
    assert (headless.count_params(), len(headless.layers)) == (no_top, n_layers_no_top)


def test_keras_layer_names():
    resnet = applications.ResNet50(include_top=False, input_shape=(64, 64, 3), pooling="avg")
    names = [l.name for l in resnet.layers]
    assert names[0].startswith("input_layer")
    assert names[1:7] == ["conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool"]
    assert {"conv2_block1_0_conv", "conv3_block4_out", "conv5_block3_add", "avg_pool"} <= set(names)
    assert resnet.get_layer("conv2_block1_1_bn").epsilon == 1.001e-5
    mobile = applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False)
    assert mobile.name == "mobilenetv2_1.00_96"
    assert {"Conv1", "bn_Conv1", "expanded_conv_depthwise", "block_1_pad", "block_16_project_BN", "out_relu",
            "block_2_add"} <= {l.name for l in mobile.layers}
    assert mobile.get_layer("block_2_expand_BN").momentum == 0.999
    inception = applications.InceptionV3(include_top=False, input_shape=(75, 75, 3))
    assert {"mixed0", "mixed9_0", "mixed9_1", "mixed10"} <= {l.name for l in inception.layers}
    vgg = applications.VGG16()
    assert [l.name for l in vgg.layers][-4:] == ["flatten", "fc1", "fc2", "predictions"]


@pytest.mark.parametrize("name, size", [("VGG16", 32), ("ResNet50", 32), ("InceptionV3", 75), ("MobileNetV2", 32)])
def test_a_forward_pass_at_the_smallest_size(name, size):
    model = getattr(applications, name)(include_top=True, input_shape=(size, size, 3), classes=7) \
        if name != "VGG16" else applications.VGG16(include_top=False, input_shape=(size, size, 3), pooling="max")
    x = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    out = model.predict(x, verbose=0)
    assert np.isfinite(out).all()
    if name != "VGG16":
        assert out.shape == (2, 7)
        np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    else:
        assert out.shape == (2, 512)


def test_arguments_keras_users_pass_and_the_errors():
    model = applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.5, include_top=False, pooling="avg")
    assert model.output_shape == (None, 1280)
    with pytest.raises(FileNotFoundError, match=r"reads the ImageNet weights Keras keeps in .*vgg16_weights_tf_dim_"
                                                r"ordering_tf_kernels_notop.h5, which is not there; scratchnet "
                                                r"downloads nothing"):
        applications.VGG16(weights="imagenet", include_top=False)
    with pytest.raises(ValueError, match="classes must be 1000"):
        applications.VGG16(weights="imagenet", classes=10)
    with pytest.raises(FileNotFoundError, match="the weight file 'missing.h5' does not exist"):
        applications.VGG16(weights="missing.h5")
    with pytest.raises(ValueError, match="at least 75x75, got 64x64"):
        applications.InceptionV3(input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max'"):
        applications.ResNet50(include_top=False, pooling="mean")
    tensor = layers.Input(shape=(48, 48, 3))
    assert applications.ResNet50(include_top=False, input_tensor=tensor).inputs == [tensor]


def test_a_frozen_base_under_a_new_head_trains_only_the_head(tmp_path):
    # the classic transfer-learning recipe, with a small base
    base = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, pooling="avg")
    base.trainable = False
    inputs = layers.Input(shape=(32, 32, 3))
    outputs = layers.Dense(1, activation="sigmoid")(base(inputs, training=False))
    model = Model(inputs, outputs)
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x, y = rng.random((8, 32, 32, 3), dtype=np.float32), rng.integers(0, 2, 8)
    before = base.get_weights()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights()))
    assert len(model.trainable_weights) == 2
    model.save(tmp_path / "transfer.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "transfer.npz").predict(x), model.predict(x))


def test_a_base_called_with_training_false_keeps_batchnorm_in_inference_when_unfrozen():
    # Keras's fine-tuning recipe: base(inputs, training=False) keeps BatchNormalization's
    # statistics fixed even once the base's weights are trainable again.
    base = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, pooling="avg")
    inputs = layers.Input(shape=(32, 32, 3))
    model = Model(inputs, layers.Dense(1, activation="sigmoid")(base(inputs, training=False)))
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    bn = base.get_layer("bn_Conv1")
    before = bn.params["moving_mean"].copy()
    x = np.random.default_rng(2).random((4, 32, 32, 3), dtype=np.float32)
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    np.testing.assert_array_equal(before, bn.params["moving_mean"])               # statistics fixed
    assert len(model.trainable_weights) == len(base.trainable_weights) + 2 > 2   # while the base trains


def test_a_call_s_training_argument_is_saved(tmp_path):
    inputs = layers.Input(shape=(4,))
    x = layers.Dropout(0.5)(layers.Dense(4)(inputs), training=True)       # Monte Carlo dropout
    model = Model(inputs, layers.Dense(1)(x))
    model.save(tmp_path / "mc.npz")
    loaded = load_model(tmp_path / "mc.npz")
    x = np.ones((64, 4), np.float32)
    assert loaded.get_layer(model.layers[2].name)._inbound_nodes[0].training is True
    assert not np.array_equal(loaded.predict(x), loaded.predict(x))          # dropout active in predict


@pytest.mark.parametrize("module", ["vgg16", "resnet50", "inception_v3", "mobilenet_v2"])
def test_preprocess_input_equals_kerass(module):
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3)).astype(np.float32)
    untouched = x.copy()
    ours = getattr(applications, module).preprocess_input(x)
    np.testing.assert_array_equal(x, untouched)                           # the input is left as it was
    np.testing.assert_allclose(ours, np.asarray(getattr(keras.applications, module).preprocess_input(x.copy())),
                               rtol=1e-6)


def test_decode_predictions_reads_the_class_index_keras_caches(web_server, tmp_path, monkeypatch):
    import hashlib
    import json
    from scratchnet.applications import imagenet_utils
    root, base = web_server
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (root / "imagenet_class_index.json").write_text(json.dumps(index))
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_URL", base + "imagenet_class_index.json")
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_MD5",
                        hashlib.md5((root / "imagenet_class_index.json").read_bytes()).hexdigest())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [7, 3]], preds[1, 999] = (0.7, 0.2), 1.0
    decoded = applications.vgg16.decode_predictions(preds, top=2)
    assert decoded[0] == [("n00000007", "class_7", pytest.approx(0.7)), ("n00000003", "class_3", pytest.approx(0.2))]
    assert decoded[1][0][:2] == ("n00000999", "class_999")
    assert (tmp_path / "keras" / "models" / "imagenet_class_index.json").is_file()     # where Keras keeps it
    with pytest.raises(ValueError, match=r"shape \(samples, 1000\); got \(2, 10\)"):
        applications.resnet50.decode_predictions(np.zeros((2, 10)))


def test_another_input_size_says_how_to_build_for_it():
    base = applications.VGG16(include_top=False, weights=None, input_shape=(224, 224, 3))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 224, 224, 3\), got \(None, 180, 180, 3\); "
                                         r"build it with Input\(shape=\(None, None, 3\)\) to take images of any size "
                                         r"\(an application: input_shape=None with include_top=False\)"):
        base(layers.Input((180, 180, 3)))


# MobileNetV2 at 64: every stride-2 block sees an even size, where Keras pads as it does for an unknown one
@pytest.mark.parametrize("name, size", [("VGG16", 48), ("ResNet50", 40), ("MobileNetV2", 64), ("InceptionV3", 80)])
def test_a_base_made_without_an_input_shape_takes_any_size(name, size):
    # Keras's base without input_shape takes (None, None, 3): the DLwP transfer-learning code calls it on 180x180
    make = getattr(applications, name)
    base = make(include_top=False, weights=None)
    assert base.input_shape == (None, None, None, 3) and base.output_shape[1:3] == (None, None)
    weights = [w.copy() for w in base.get_weights()]
    base.trainable = False
    inputs = layers.Input((size, size, 3))
    features = base(inputs)
    assert features.shape[:3] == (None,) + direct_size(make, size)      # the nested call knows its size
    model = Model(inputs, layers.Dense(1)(layers.GlobalAveragePooling2D()(features)))
    assert base.input_shape == (None, None, None, 3) and not any(layer.trainable for layer in base.layers)
    assert model.count_params() - base.count_params() == base.output_shape[-1] + 1
    for a, b in zip(base.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    direct = make(include_top=False, weights=None, input_shape=(size, size, 3))
    direct.set_weights(weights)
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    np.testing.assert_allclose(base.predict(x, verbose=0), direct.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    bigger = np.zeros((1, size + 16, size + 16, 3), np.float32)
    assert base.predict(bigger, verbose=0).shape[1:] == base.compute_output_shape(bigger.shape[1:])  # any size
    assert model.predict(x, verbose=0).shape == (2, 1)


def direct_size(make, size):
    """The feature map's (rows, columns) of the base built for size x size images."""
    return tuple(make(include_top=False, weights=None, input_shape=(size, size, 3)).output_shape[1:3])


def test_a_base_built_with_an_input_shape_or_a_top_keeps_its_size():
    for base in (applications.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3)),
                 applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))):
        with pytest.raises(ValueError, match=r"expects inputs of shape"):
            base(layers.Input((80, 80, 3)))


@pytest.mark.parametrize("module", ["vgg16", "resnet50", "inception_v3", "mobilenet_v2"])
def test_preprocess_input_inside_a_model_equals_it_on_arrays(module, tmp_path):
    preprocess = getattr(applications, module).preprocess_input
    inputs = layers.Input((4, 4, 3))
    model = Model(inputs, preprocess(inputs))
    x = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), preprocess(x), rtol=1e-6, atol=1e-4)
    assert model.count_params() == model.count_params() - sum(w.size for w in model.trainable_weights)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(load_model(tmp_path / "m.keras").predict(x, verbose=0), preprocess(x), rtol=1e-6,
                               atol=1e-4)
