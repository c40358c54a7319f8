"""A train_step / test_step of one's own, as in Keras 3: fit and evaluate call the model's
steps, and a step that returns a dict of logs has them reported."""
import itertools

import numpy as np
import pytest

import scratchnet
from scratchnet import layers, models, optimizers


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, n)


def small(model_class=models.Sequential, optimizer=None):
    scratchnet.set_random_seed(3)
    model = model_class([layers.Input((6,)), layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    model.compile(optimizer or optimizers.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Counting(models.Sequential):
    """Counts its steps and leaves them to the built-in ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = {"train": 0, "test": 0, "predict": 0}

    def train_step(self, data):
        self.calls["train"] += 1
        return super().train_step(data)

    def test_step(self, data):
        self.calls["test"] += 1
        return super().test_step(data)

    def predict_step(self, data):
        self.calls["predict"] += 1
        return super().predict_step(data)


def test_fit_evaluate_and_predict_go_through_the_models_own_steps():
    x, y = data()
    plain, counting = small(), small(Counting)
    scratchnet.set_random_seed(5)
    history = counting.fit(x, y, batch_size=16, epochs=2, validation_data=(x[:20], y[:20]), verbose=0)
    scratchnet.set_random_seed(5)
    expected = plain.fit(x, y, batch_size=16, epochs=2, validation_data=(x[:20], y[:20]), verbose=0)
    assert counting.calls == {"train": 6, "test": 4, "predict": 0}
    assert history.history == expected.history
    counting.evaluate(x, y, batch_size=32, verbose=0)
    counting.predict(x, batch_size=10, verbose=0)
    assert counting.calls == {"train": 6, "test": 6, "predict": 5}


class ClippedByHand(models.Sequential):
    """Keras 3's pattern: gradients, a change of one's own, the optimizer's update, logs."""

    def train_step(self, data):
        x, y = data[:2]
        loss, _, gradients = self.loss_and_gradients(x, y)
        gradients = [np.clip(g, -0.01, 0.01) for g in gradients]
        self.optimizer.apply_gradients(self.trained_weights(), gradients)
        return {"loss": loss, "steps": self.optimizer.iterations}

    def test_step(self, data):
        x, y = data[:2]
        return {"loss": self.loss_and_gradients(x, y)[0] * 0 + 7.0}


def test_a_train_step_of_ones_own_trains_and_reports_its_logs():
    x, y = data()
    mine = small(ClippedByHand)
    scratchnet.set_random_seed(5)
    history = mine.fit(x, y, batch_size=16, epochs=2, validation_data=(x, y), verbose=0)
    reference = small(optimizer=optimizers.SGD(0.5, clipvalue=0.01))
    scratchnet.set_random_seed(5)
    reference.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for ours, theirs in zip(mine.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert history.history["steps"] == [3, 6] and history.history["val_loss"] == [7.0, 7.0]
    assert len(history.history["loss"]) == 2
    before = mine.compute_loss(x[:16], y[:16])
    assert mine.train_on_batch(x[:16], y[:16]) == [pytest.approx(before), 7]


def test_a_sequential_model_without_an_input_shape_trains_and_evaluates_on_a_stream_of_batches():
    x, y = data()
    scratchnet.set_random_seed(3)
    model = models.Sequential([layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    model.compile(optimizers.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert not model.built
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 48, 16)]
    history = model.fit(itertools.cycle(batches), steps_per_epoch=3, epochs=2, verbose=0)
    reference = small()
    reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert model.built and history.history["loss"] == pytest.approx(reference.history.history["loss"], rel=1e-6)
    fresh = models.Sequential([layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    fresh.compile(optimizers.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert fresh.evaluate(iter(batches), verbose=0, return_dict=True).keys() == {"loss", "accuracy"}


def test_compute_gradients_are_the_losss_own_and_a_custom_step_gets_them_scaled_as_apply_gradients_expects():
    x, y = data(16)
    plain = small(optimizer=optimizers.SGD(0.1))
    scaled = small(optimizer=optimizers.SGD(0.1, loss_scale_factor=128.0))
    _, gradients, _ = plain.compute_gradients(x, y)
    _, same, _ = scaled.compute_gradients(x, y)
    for g, h in zip(gradients, same):
        np.testing.assert_allclose(h, g, rtol=1e-6)
    from scratchnet.training import inputs
    xb, yb = inputs.to_device(scaled, x), inputs.to_device(scaled, inputs.prepare_targets(scaled, y, 16))
    _, _, for_the_optimizer = scaled.loss_and_gradients(xb, yb)
    for g, h in zip(gradients, for_the_optimizer):
        np.testing.assert_allclose(h, 128.0 * g, rtol=1e-5)
