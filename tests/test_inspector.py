"""The training inspector's numbers against the same numbers worked out by hand (NumPy, float64)
on a tiny network; its measures on made-up activations; that an inspected run trains exactly
as one that is not; and what it writes (TensorBoard tags, the picture)."""
import numpy as np
import pytest

from scratchnet import config, layers, models, optimizers
from scratchnet.inspector import TrainingInspector, dead_fraction, saturated_fraction

LR = 0.1


def tiny(seed=0):
    """4 -> Dense(3, relu) -> Dense(1), MSE, SGD; the hidden layer's third unit is dead (bias -100)."""
    rng = np.random.default_rng(seed)
    model = models.Sequential([layers.Input((4,)), layers.Dense(3, activation="relu", name="hidden"),
                               layers.Dense(1, name="out")], name="tiny")
    model.compile(optimizer=optimizers.SGD(LR), loss="mse")
    w1 = rng.standard_normal((4, 3)).astype(np.float32)
    w2 = rng.standard_normal((3, 1)).astype(np.float32)
    model.set_weights([w1, np.array([0.1, 0.2, -100.0], np.float32), w2, np.array([0.3], np.float32)])
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    return model, x, y


def by_hand(weights, x, y):
    """Gradients (per weight) and both layers' outputs, in float64."""
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in weights)
    x, y = x.astype(np.float64), y.astype(np.float64)
    h = np.maximum(x @ w1 + b1, 0)
    p = h @ w2 + b2
    dp = 2 * (p - y) / len(x)               # Keras's MSE: the mean over samples (and the one output)
    dh = dp @ w2.T * (h > 0)
    return [x.T @ dh, dh.sum(0), h.T @ dp, dp.sum(0)], h, p


def norm(*arrays):
    return np.sqrt(sum(np.sum(np.square(a)) for a in arrays))


def test_every_measure_equals_the_hand_worked_value_on_a_tiny_network():
    model, x, y = tiny()
    before = model.get_weights()
    inspector = TrainingInspector(x, y, every=1)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[inspector])   # one full-batch step
    step_grads, _, _ = by_hand(before, x, y)
    after = model.get_weights()
    np.testing.assert_allclose(after[0], before[0] - LR * step_grads[0], rtol=1e-5, atol=1e-7)   # SGD, as assumed
    grads, h, p = by_hand(after, x, y)      # the inspector looks once the step is done
    hidden, out = inspector.records
    assert (hidden["layer"], out["layer"]) == ("hidden", "out") and hidden["step"] == out["step"] == 1
    np.testing.assert_allclose(hidden["gradient_norm"], norm(grads[0], grads[1]), rtol=1e-5)
    np.testing.assert_allclose(out["gradient_norm"], norm(grads[2], grads[3]), rtol=1e-5)
    np.testing.assert_allclose(hidden["update_ratio"], LR * norm(*step_grads[:2]) / norm(*before[:2]), rtol=1e-4)
    np.testing.assert_allclose(out["update_ratio"], LR * norm(*step_grads[2:]) / norm(*before[2:]), rtol=1e-4)
    np.testing.assert_allclose([hidden["activation_mean"], hidden["activation_std"]], [h.mean(), h.std()], rtol=1e-5)
    np.testing.assert_allclose([out["activation_mean"], out["activation_std"]], [p.mean(), p.std()], rtol=1e-5)
    assert hidden["dead_relu"] == pytest.approx(1 / 3) and np.all(h[:, :2].max(axis=0) > 0)
    assert out["dead_relu"] is None and hidden["saturated"] is None and out["saturated"] is None


def test_the_measures_on_made_up_activations():
    assert dead_fraction(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])) == pytest.approx(2 / 3)
    images = np.zeros((2, 3, 3, 4))
    images[1, 2, 2, 1] = 0.5                # channel 1 fires once, anywhere: alive
    assert dead_fraction(images) == 0.75
    assert saturated_fraction(np.array([0.005, 0.5, 0.995, 0.99]), "sigmoid") == 0.75
    assert saturated_fraction(np.array([-0.995, 0.0, 0.98]), "tanh") == pytest.approx(1 / 3)


def dropout_model():
    model = models.Sequential([layers.Input((6,)), layers.Dense(8, activation="tanh", name="a"),
                               layers.Dropout(0.5), layers.Dense(1, activation="sigmoid", name="b")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def test_an_inspected_run_trains_exactly_as_one_that_is_not(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 2, (64, 1)).astype(np.float32)
    trained = []
    for inspect in (False, True):
        config.set_random_seed(7)
        model = dropout_model()
        hooks = [TrainingInspector(x[:16], y[:16], every=2, log_dir=tmp_path, picture=tmp_path / "inspector.png")] \
            if inspect else []
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=hooks)
        trained.append(model.get_weights())
    for plain, inspected in zip(*trained):
        np.testing.assert_array_equal(plain, inspected)
    inspector = hooks[0]
    assert [r["step"] for r in inspector.records if r["layer"] == "a"] == [1, 2, 4, 6, 8]
    assert set(inspector.series("saturated")) == {"a", "b"}      # tanh and sigmoid outputs
    assert (tmp_path / "inspector.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reader = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = reader.EventAccumulator(str(tmp_path / "train"), size_guidance={"scalars": 0})
    events.Reload()
    norms = events.Scalars("gradient_norm/a")
    assert [e.step for e in norms] == [1, 2, 4, 6, 8]
    np.testing.assert_allclose([e.value for e in norms], inspector.series("gradient_norm")["a"][1], rtol=1e-6)
    assert {"update_ratio/b", "saturated/a", "activation_std/b"} <= set(events.Tags()["scalars"])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"every must be a whole number of steps >= 1; got 0"):
        TrainingInspector(np.zeros((1, 6)), np.zeros((1, 1)), every=0)
    with pytest.raises(ValueError, match=r"the measures are \[.*'dead_relu'.*\]; got 'dead'"):
        TrainingInspector(np.zeros((1, 6)), np.zeros((1, 1))).series("dead")


def test_a_nested_model_counts_as_one_layer():
    rng = np.random.default_rng(2)
    base = models.Sequential([layers.Input((5,)), layers.Dense(4, activation="relu", name="inner_a"),
                              layers.Dense(4, activation="relu", name="inner_b")], name="base")
    model = models.Sequential([layers.Input((5,)), base, layers.Dense(1, name="head")])
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((16, 5)).astype(np.float32), rng.standard_normal((16, 1)).astype(np.float32)
    inspector = TrainingInspector(x, y, every=1)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[inspector])
    by_layer = {r["layer"]: r for r in inspector.records}
    assert set(by_layer) == {"base", "head"}
    _, gradients, _ = model.compute_gradients(x, y)
    np.testing.assert_allclose(by_layer["base"]["gradient_norm"],
                               np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in gradients[:4])), rtol=1e-5)
