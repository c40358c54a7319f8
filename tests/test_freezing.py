"""Freezing, as Keras 3 defines it: frozen weights do not change, a frozen BatchNormalization
runs in inference mode and keeps its moving statistics, summary() splits the counts, and a
change of ``trainable`` takes effect at the next compile (with Keras's warning before)."""
import warnings

import numpy as np
import pytest

from scratchnet import layers, models, optimizers
from scratchnet.models import Model


def base_and_head():
    inputs = layers.Input(shape=(6, 6, 2))
    x = layers.Conv2D(4, 3, activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    base = Model(inputs, layers.GlobalAveragePooling2D()(x), name="base")
    outer_in = layers.Input(shape=(6, 6, 2))
    outputs = layers.Dense(3, activation="softmax", name="head")(base(outer_in))
    return base, Model(outer_in, outputs)


def data(n=24):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 6, 6, 2)).astype(np.float32) * 2 + 1, rng.integers(0, 3, n)


def test_a_frozen_base_with_batchnorm_keeps_every_weight_and_statistic():
    base, model = base_and_head()
    base.trainable = False
    assert all(not layer.trainable for layer in base.layers)
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in base.get_weights()]
    head_before = model.get_layer("head").get_weights()[0].copy()
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(before, base.get_weights()):          # kernel, bias, gamma, beta, moving mean, variance
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head_before, model.get_layer("head").get_weights()[0])
    # frozen BatchNormalization: inference mode even in training
    bn = base.layers[2]
    np.testing.assert_allclose(model(x, training=True), model(x, training=False), rtol=1e-6)
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 6
    assert bn.trainable is False


def test_summary_counts_trainable_and_not(capsys):
    base, model = base_and_head()
    model.summary()
    text = capsys.readouterr().out
    # conv 3*3*2*4 + 4 = 76, batchnorm 4*4 = 16 (gamma, beta trainable), dense 4*3 + 3 = 15
    assert "Total params: 107" in text and "Trainable params: 99" in text and "Non-trainable params: 8" in text
    base.trainable = False
    model.summary()
    text = capsys.readouterr().out
    assert "Trainable params: 15" in text and "Non-trainable params: 92" in text


def test_unfrozen_batchnorm_updates_its_moving_statistics_with_keras_s_momentum():
    layer = layers.BatchNormalization(momentum=0.9)
    model = models.Sequential([layers.Input(shape=(3,)), layer, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32) * 2 + 5
    model.train_on_batch(x, np.zeros(8))
    np.testing.assert_allclose(layer.params["moving_mean"], 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.params["moving_variance"], 0.9 + 0.1 * x.var(axis=0), rtol=1e-5)


def test_batchnorm_training_on_a_batch_of_one_is_refused_and_changes_nothing():
    layer = layers.BatchNormalization()
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(3), layer, layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    x = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"more than one value per channel.*shape \(1, 3\) \(a batch of one\)"):
        model.train_on_batch(x, np.zeros(1))
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert model.predict(x, verbose=0).shape == (1, 1)          # inference on one sample is fine


def test_changing_trainable_after_compile_waits_for_the_next_compile_and_warns():
    model = models.Sequential([layers.Dense(4, input_shape=(3,), name="first"), layers.Dense(1, name="second")])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), np.float32), np.ones(4)
    first = model.get_layer("first")
    first.trainable = False
    before = first.get_weights()[0].copy()
    with pytest.warns(UserWarning, match=r"trainable` state has changed since the model was compiled.*\['first'\]"):
        model.train_on_batch(x, y)
    assert not np.array_equal(before, first.get_weights()[0])     # still training until recompiled
    model.compile(optimizer="sgd", loss="mse")
    before = first.get_weights()[0].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.train_on_batch(x, y)
    np.testing.assert_array_equal(before, first.get_weights()[0])


def test_an_optimizer_with_state_for_other_weights_is_refused_at_compile():
    model = models.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(1)])
    adam = optimizers.Adam()
    model.compile(optimizer=adam, loss="mse")
    model.train_on_batch(np.ones((2, 3), np.float32), np.ones(2))
    model.layers[0].trainable = False
    with pytest.raises(ValueError, match="already holds state for 4 weights.*now trains 2"):
        model.compile(optimizer=adam, loss="mse")
