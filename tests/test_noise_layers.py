"""SpatialDropout2D, GaussianNoise, GaussianDropout and Dropout's noise_shape: their training
noise (its structure and statistics, against Keras's own draws), the identity at inference,
gradients, and Keras files both ways."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scratchnet import gradcheck, layers, models


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (keras 3, dev extra) is not installed")


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**31 - 1),
       st.sampled_from(["spatial", "noise", "gaussian_dropout", "noise_shape"]))
def test_gradients_match_finite_differences(n, h, w, c, seed, kind):
    layer = {"spatial": lambda: layers.SpatialDropout2D(0.4, dtype="float64"),
             "noise": lambda: layers.GaussianNoise(0.3, dtype="float64"),
             "gaussian_dropout": lambda: layers.GaussianDropout(0.3, dtype="float64"),
             "noise_shape": lambda: layers.Dropout(0.5, noise_shape=(None, 1, None, 1), dtype="float64")}[kind]()
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    errors = gradcheck.check_layer(layer, x, seed=seed % 1000)
    assert max(errors.values()) < 1e-6, errors


def test_spatial_dropout_drops_whole_channels_scaled_as_keras():
    keras = real_keras()
    x = np.ones((64, 5, 6, 8), np.float32)
    ours = np.asarray(layers.SpatialDropout2D(0.25, seed=1)(x, training=True))
    theirs = keras.ops.convert_to_numpy(keras.layers.SpatialDropout2D(0.25, seed=1)(x, training=True))
    for y in (ours, theirs):
        per_channel = y.reshape(64, 30, 8)
        assert (per_channel == per_channel[:, :1]).all()                 # one draw per sample and channel
        assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((ours == 0).mean() - 0.25) < 0.06 and abs((theirs == 0).mean() - 0.25) < 0.06
    np.testing.assert_array_equal(layers.SpatialDropout2D(0.25)(x), x)   # inference: the identity
    with pytest.raises(ValueError, match=r"expects images \(batch, height, width, channels\)"):
        layers.SpatialDropout2D(0.5)(np.ones((2, 3), np.float32), training=True)


@pytest.mark.parametrize("name, argument, mean, std", [("GaussianNoise", 0.5, 0.0, 0.5),
                                                        ("GaussianDropout", 0.2, 1.0, np.sqrt(0.2 / 0.8))])
def test_gaussian_layers_draw_what_keras_draws(name, argument, mean, std):
    keras = real_keras()
    x = np.ones((200, 50), np.float32) if name == "GaussianDropout" else np.zeros((200, 50), np.float32)
    ours = np.asarray(getattr(layers, name)(argument, seed=3)(x, training=True))
    theirs = keras.ops.convert_to_numpy(getattr(keras.layers, name)(argument, seed=3)(x, training=True))
    for y in (ours, theirs):
        assert y.dtype == np.float32
        assert abs(y.mean() - mean) < 0.02 and abs(y.std() - std) < 0.02
    np.testing.assert_array_equal(getattr(layers, name)(argument)(x), x)       # inference: the identity


def test_noise_shape_is_checked_against_the_inputs():
    layer = layers.Dropout(0.5, noise_shape=(None, 3, 1))
    with pytest.raises(ValueError, match=r"noise_shape \(None, 3, 1\) does not fit inputs of shape \(2, 4, 5\)"):
        layer(np.ones((2, 4, 5), np.float32), training=True)
    with pytest.raises(ValueError, match="noise_shape must hold positive sizes or None"):
        layers.Dropout(0.5, noise_shape=(None, 0))


def test_a_model_with_them_trains_and_goes_through_keras_files(tmp_path):
    keras = real_keras()
    inputs = layers.Input((6, 6, 2))
    x = layers.Conv2D(3, 3, padding="same")(inputs)
    x = layers.SpatialDropout2D(0.2, name="spatial")(x)
    x = layers.GaussianNoise(0.1, name="noise")(x)
    x = layers.GaussianDropout(0.1, name="gdrop")(layers.Flatten()(x))
    model = models.Model(inputs, layers.Dense(2, activation="softmax")(x))
    model.compile("sgd", "sparse_categorical_crossentropy")
    data = np.random.default_rng(0).standard_normal((16, 6, 6, 2)).astype(np.float32)
    model.fit(data, np.arange(16) % 2, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert [type(l).__name__ for l in theirs.layers][2:5] == ["SpatialDropout2D", "GaussianNoise", "Flatten"]
    np.testing.assert_allclose(theirs.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-5, atol=1e-6)
    theirs.save(tmp_path / "back.keras")
    back = models.load_model(tmp_path / "back.keras")
    assert back.get_layer("noise").stddev == pytest.approx(0.1) and back.get_layer("gdrop").rate == pytest.approx(0.1)
    np.testing.assert_allclose(back.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-5, atol=1e-6)
