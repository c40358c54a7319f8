"""applications.Xception against keras.applications.Xception: parameter counts, layer names,
order, types and weight shapes; Keras weight files (Keras 3 and the legacy .h5 of keras.io's
downloads) load with equal predictions; Keras's arguments and the inputs it refuses; small
inputs (71x71, 96x96) keep it fast on two cores."""
import os

import numpy as np
import pytest

from scratchnet import applications, config, layers, load_model
from scratchnet.models import Model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
WITH_TOP, WITHOUT_TOP = 22_910_480, 20_861_480          # Keras's counts


def keras_or_skip():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def describe(model):
    """(name, class, weight shapes) of every layer, in the model's order."""
    return [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.get_weights()]) for layer in model.layers]


def randomize_batchnorm(k_model, seed=0):
    """Moving statistics, gamma and beta far from their initial values, so that a mixed-up
    BatchNormalization shows in the predictions."""
    rng = np.random.default_rng(seed)
    for layer in k_model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = (w.shape for w in layer.get_weights())
            layer.set_weights([rng.normal(1, 0.2, gamma), rng.normal(0, 0.3, beta), rng.normal(0, 0.3, mean),
                               rng.uniform(0.5, 1.5, var)])


def close(ours, theirs):
    theirs = np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))


def test_parameter_counts_with_and_without_the_top_and_with_pooling():
    model = applications.Xception()
    assert model.count_params() == WITH_TOP and model.name == "xception"
    assert model.input_shape == (None, 299, 299, 3) and model.output_shape == (None, 1000)
    assert [layer.name for layer in model.layers[-2:]] == ["avg_pool", "predictions"]
    headless = applications.Xception(include_top=False, input_shape=(71, 71, 3))
    assert headless.count_params() == WITHOUT_TOP and headless.output_shape == (None, 3, 3, 2048)
    assert headless.layers[-1].name == "block14_sepconv2_act"
    for pooling, kind in (("avg", "GlobalAveragePooling2D"), ("max", "GlobalMaxPooling2D")):
        pooled = applications.Xception(include_top=False, input_shape=(96, 96, 3), pooling=pooling)
        assert pooled.count_params() == WITHOUT_TOP and pooled.output_shape == (None, 2048)
        assert type(pooled.layers[-1]).__name__ == kind
    small = applications.Xception(input_shape=(71, 71, 3), classes=7, classifier_activation=None, name="mine")
    assert small.count_params() == WITHOUT_TOP + 2048 * 7 + 7 and small.name == "mine"
    assert small.get_layer("predictions").get_config()["activation"] == "linear"


def test_the_blocks_keras_draws():
    model = applications.Xception(include_top=False, input_shape=(71, 71, 3))
    sep = [layer for layer in model.layers if type(layer).__name__ == "SeparableConv2D"]
    assert len(sep) == 2 + 2 + 2 + 8 * 3 + 2 + 2 and not any(layer.use_bias for layer in sep)
    assert [layer.name for layer in sep[:3]] == ["block2_sepconv1", "block2_sepconv2", "block3_sepconv1"]
    assert model.get_layer("block12_sepconv3").filters == 728 and model.get_layer("block13_sepconv2").filters == 1024
    assert model.get_layer("block14_sepconv2").filters == 2048
    shortcuts = [layer for layer in model.layers if type(layer).__name__ == "Conv2D" and layer.kernel_size == (1, 1)]
    assert [(s.filters, s.strides, s.use_bias) for s in shortcuts] == \
        [(128, (2, 2), False), (256, (2, 2), False), (728, (2, 2), False), (1024, (2, 2), False)]
    assert sum(type(layer).__name__ == "Add" for layer in model.layers) == 3 + 8 + 1
    assert model.get_layer("block1_conv1").strides == (2, 2) and model.get_layer("block1_conv1").padding == "valid"


@pytest.mark.parametrize("kwargs", [dict(), dict(include_top=False, input_shape=(96, 96, 3), pooling="avg"),
                                    dict(include_top=False, input_shape=(80, 90, 3), pooling="max")])
def test_layer_names_order_types_and_weight_shapes_equal_kerass(kwargs):
    keras = keras_or_skip()
    keras.backend.clear_session()
    config.clear_session()                      # both number their unnamed layers from zero
    theirs = describe(keras.applications.Xception(weights=None, **kwargs))
    ours = describe(applications.Xception(weights=None, **kwargs))
    assert len(ours) == len(theirs) and ours == theirs
    assert ("block5_sepconv1_act", "Activation", []) in ours and ("block13_pool", "MaxPooling2D", []) in ours


def test_keras_weight_files_load_with_equal_predictions(tmp_path, monkeypatch):
    keras = keras_or_skip()
    keras.utils.set_random_seed(0)
    kwargs = dict(include_top=False, input_shape=(96, 96, 3), pooling="avg", weights=None)
    k_model = keras.applications.Xception(**kwargs)
    randomize_batchnorm(k_model)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    expected = k_model.predict(x, verbose=0)
    k_model.save_weights(tmp_path / "w.weights.h5")
    k_model.save(tmp_path / "m.h5")                   # the legacy layout of keras.io's downloads
    k_model.save(tmp_path / "m.keras")
    for path in ("w.weights.h5", "m.h5"):
        model = applications.Xception(**{**kwargs, "weights": str(tmp_path / path)})
        close(model.predict(x, verbose=0), expected)
    loaded = load_model(tmp_path / "m.keras")
    close(loaded.predict(x, verbose=0), expected)
    model.save(tmp_path / "ours.keras")               # and back into Keras
    close(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected)
    # weights='imagenet': the file in Keras's cache, under the name Keras gives it
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    (tmp_path / "keras_home" / "models").mkdir(parents=True)
    (tmp_path / "m.h5").rename(tmp_path / "keras_home" / "models" / "xception_weights_tf_dim_ordering_tf_kernels_notop.h5")
    close(applications.Xception(**{**kwargs, "weights": "imagenet"}).predict(x, verbose=0), expected)


def test_a_keras_weight_file_with_the_top_loads_with_equal_predictions(tmp_path):
    keras = keras_or_skip()
    keras.utils.set_random_seed(1)
    kwargs = dict(input_shape=(71, 71, 3), classes=5, weights=None)
    k_model = keras.applications.Xception(**kwargs)
    randomize_batchnorm(k_model, seed=1)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 71, 71, 3)).astype(np.float32)
    k_model.save_weights(tmp_path / "w.weights.h5")
    out = applications.Xception(**{**kwargs, "weights": str(tmp_path / "w.weights.h5")}).predict(x, verbose=0)
    close(out, k_model.predict(x, verbose=0))
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


BAD = [  # (arguments, what our message says); Keras refuses each of them too
    (dict(include_top=False, input_shape=(70, 96, 3)), r"input size must be at least 71x71, got 70x96"),
    (dict(input_shape=(64, 64, 3)), r"at least 71x71, got 64x64"),
    (dict(weights="imagenet", classes=10), r"with weights='imagenet' and include_top=True, classes must be 1000"),
    (dict(weights="imagenet", input_shape=(224, 224, 3)), r"input_shape must be \(299, 299, 3\)"),
    (dict(weights="imagenet", include_top=False, input_shape=(96, 96, 1)), r"must have 3 channels, got input_shape="
                                                                          r"\(96, 96, 1\)"),
    (dict(weights="imagenet", classifier_activation="relu"), r"classifier_activation must be 'softmax' or None"),
    (dict(include_top=False, input_shape=(96, 96)), r"input_shape must be \(height, width, channels\)"),
    (dict(weights="no/such/file.h5"), r"the weight file 'no/such/file.h5' does not exist"),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_the_inputs_keras_refuses_give_clear_errors(kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        applications.Xception(**kwargs)
    keras = pytest.importorskip("keras")
    with pytest.raises(ValueError):
        keras.applications.Xception(**{"weights": None, **kwargs})


def test_more_bad_arguments_and_imagenet_without_the_cached_file(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max', got 'mean'"):
        applications.Xception(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="weights must be None, 'imagenet' or the path"):
        applications.Xception(weights=3)
    with pytest.raises(ValueError, match="classes must be a positive int, got 0"):
        applications.Xception(input_shape=(71, 71, 3), classes=0)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"Xception\(weights='imagenet'\) reads the ImageNet weights Keras "
                                                r"keeps in .*xception_weights_tf_dim_ordering_tf_kernels_notop.h5, "
                                                r"which is not there; scratchnet downloads nothing"):
        applications.Xception(weights="imagenet", include_top=False)
    with pytest.raises(FileNotFoundError, match=r"xception_weights_tf_dim_ordering_tf_kernels.h5, which is not"):
        applications.Xception(weights="imagenet")


def test_an_input_tensor_is_used_as_it_is():
    tensor = layers.Input(shape=(72, 72, 3))
    model = applications.Xception(include_top=False, input_tensor=tensor)
    assert model.inputs == [tensor] and model.output_shape == (None, 3, 3, 2048)


def test_preprocess_input_and_decode_predictions():
    keras = keras_or_skip()
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3)).astype(np.float32)
    untouched = x.copy()
    ours = applications.xception.preprocess_input(x)
    np.testing.assert_array_equal(x, untouched)
    assert ours.min() >= -1 and ours.max() <= 1 and ours.dtype == np.float32
    np.testing.assert_allclose(ours, np.asarray(keras.applications.xception.preprocess_input(x.copy())), rtol=1e-6)
    assert applications.xception.decode_predictions is applications.imagenet_utils.decode_predictions
    with pytest.raises(ValueError, match=r"shape \(samples, 1000\); got \(2, 10\)"):
        applications.xception.decode_predictions(np.zeros((2, 10)))


def test_a_base_without_input_shape_takes_any_size():
    # Keras's base without input_shape takes (None, None, 3)
    base = applications.Xception(include_top=False, weights=None, pooling="avg")
    assert base.input_shape == (None, None, None, 3) and base.output_shape == (None, 2048)
    weights = [w.copy() for w in base.get_weights()]
    direct = applications.Xception(include_top=False, weights=None, input_shape=(72, 72, 3), pooling="avg")
    direct.set_weights(weights)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 72, 72, 3)).astype(np.float32)
    np.testing.assert_allclose(base.predict(x, verbose=0), direct.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert base.predict(np.zeros((1, 80, 95, 3), np.float32), verbose=0).shape == (1, 2048)
    with pytest.raises(ValueError, match=r"do not fit layer"):       # smaller than its downsampling allows
        base.predict(np.zeros((1, 4, 4, 3), np.float32), verbose=0)


def test_a_frozen_base_under_a_new_head_trains_only_the_head():
    base = applications.Xception(include_top=False, input_shape=(71, 71, 3), pooling="avg")
    base.trainable = False
    inputs = layers.Input(shape=(71, 71, 3))
    model = Model(inputs, layers.Dense(1, activation="sigmoid")(base(inputs, training=False)))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (2, 71, 71, 3)).astype(np.float32), np.array([0, 1])
    before = base.get_weights()
    head = model.layers[-1].get_weights()[0].copy()
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights()))
    assert not np.array_equal(head, model.layers[-1].get_weights()[0])
    assert len(model.trainable_weights) == 2


def test_it_exports_to_onnx_with_equal_outputs(tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs onnx")
    pytest.importorskip("onnxruntime", reason="the ONNX check runs the file with onnxruntime")
    from test_onnx import assert_exports_exactly, images, randomize_batchnorm as randomize_ours
    model = applications.Xception(input_shape=(71, 71, 3), classes=3, weights=None)
    randomize_ours(model)
    assert_exports_exactly(model, images((2, 71, 71, 3)), tmp_path / "xception.onnx")
