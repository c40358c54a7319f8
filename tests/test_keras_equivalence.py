"""The graph issue's layers against real Keras 3 (TensorFlow backend): one model using all of
them, built in both with the same weights; predictions in inference mode, and the weights
after one SGD step on a batch (BatchNormalization's moving statistics included), agree
within 1e-4 relative. Skipped only where TensorFlow is not installed (it is in the dev
extra that CI installs)."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras", reason="Keras (tensorflow-cpu, in the dev extra) is not installed")
pytest.importorskip("tensorflow", reason="TensorFlow (tensorflow-cpu, in the dev extra) is not installed")

import scratchnet  # noqa: E402
from scratchnet import layers as ours, models, optimizers  # noqa: E402

RTOL, ATOL = 1e-4, 1e-6


def build(L, Model):
    """The same graph in Keras (L = keras.layers) or scratchnet (L = scratchnet.layers)."""
    inputs = L.Input(shape=(12, 12, 3), name="image")
    x = L.Rescaling(1 / 2, offset=0.25, name="rescale")(inputs)
    x = L.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(x)
    a = L.Conv2D(6, 3, padding="same", name="conv")(x)
    a = L.BatchNormalization(name="bn")(a)
    a = L.ReLU(max_value=6.0, name="relu6")(a)
    b = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="depthwise")(x)
    b = L.LeakyReLU(negative_slope=0.2, name="leaky")(b)
    c = L.SeparableConv2D(6, 3, padding="same", activation="relu", name="separable")(x)
    d = L.Conv2D(6, 3, padding="same", dilation_rate=2, name="dilated")(x)
    d = L.Conv2D(6, 3, padding="same", groups=3, name="grouped")(L.Concatenate(name="six")([d, x, x]))
    s = L.Add(name="add")([a, b, c])
    m = L.Multiply(name="multiply")([s, d])
    x = L.Concatenate(name="concat")([s, m])
    x = L.BatchNormalization(momentum=0.9, epsilon=1e-3, name="bn2")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="avg")(x)
    x = L.MaxPooling2D(2, name="max")(x)
    g1 = L.GlobalAveragePooling2D(name="gap")(x)
    g2 = L.GlobalMaxPooling2D(name="gmp")(x)
    x = L.Concatenate(name="heads")([g1, g2])
    x = L.Reshape((4, 6), name="reshape")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(5, activation="softmax", name="out")(x)
    return Model(inputs, outputs)


@pytest.fixture(scope="module")
def twins():
    keras.utils.set_random_seed(0)
    k_model = build(keras.layers, keras.Model)
    s_model = build(ours, models.Model)
    rng = np.random.default_rng(0)
    for k_layer in k_model.layers:
        weights = k_layer.get_weights()
        if weights:
            if k_layer.name in ("bn", "bn2"):    # non-trivial statistics, so inference mode is tested
                weights = [weights[0], weights[1], rng.standard_normal(weights[2].shape).astype(np.float32),
                           rng.random(weights[3].shape).astype(np.float32) + 0.5]
                k_layer.set_weights(weights)
            s_model.get_layer(k_layer.name).set_weights(weights)
    return k_model, s_model


def data(n=8):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 12, 12, 3)).astype(np.float32), rng.integers(0, 5, n)


def test_predictions_in_inference_mode_equal_keras(twins):
    k_model, s_model = twins
    x, _ = data()
    np.testing.assert_allclose(s_model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)
    assert s_model.count_params() == k_model.count_params()


def test_one_sgd_step_equals_keras_moving_statistics_included(twins):
    k_model, s_model = twins
    x, y = data()
    k_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    s_model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    k_loss = k_model.train_on_batch(x, y)
    s_loss = s_model.train_on_batch(x, y)
    assert s_loss == pytest.approx(float(k_loss), rel=RTOL)
    for k_layer in k_model.layers:
        for k_weight, s_weight in zip(k_layer.get_weights(), s_model.get_layer(k_layer.name).get_weights()):
            np.testing.assert_allclose(s_weight, k_weight, rtol=RTOL, atol=ATOL, err_msg=k_layer.name)
    np.testing.assert_allclose(s_model.predict(x, verbose=0), k_model.predict(x, verbose=0), rtol=RTOL, atol=ATOL)


def test_parameter_counts_of_the_applications_equal_keras():
    from scratchnet import applications
    for name, kwargs in (("MobileNetV2", dict(input_shape=(96, 96, 3), include_top=False, pooling="avg")),
                         ("ResNet50", dict(input_shape=(64, 64, 3), include_top=False))):
        keras.backend.clear_session()          # the same numbering of unnamed layers in both
        ours.clear_session()
        k_model = getattr(keras.applications, name)(weights=None, **kwargs)
        s_model = getattr(applications, name)(weights=None, **kwargs)
        assert s_model.count_params() == k_model.count_params()
        assert [layer.name for layer in s_model.layers][1:] == [layer.name for layer in k_model.layers][1:]
