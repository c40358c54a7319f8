"""Optimizers against their textbook update rules, written out independently here, and every
update rule, option and learning-rate schedule against Keras 3's, step by step."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scratchnet import optimizers


def run(optimizer, steps=4, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(steps)]
    p = w.copy()
    for g in grads:
        optimizer.apply_gradients([p], [g.copy()])
    return w, grads, p


def test_sgd_plain_momentum_and_nesterov():
    w, grads, p = run(optimizers.SGD(learning_rate=0.1))
    np.testing.assert_allclose(p, w - 0.1 * sum(grads))
    for nesterov in (False, True):
        w, grads, p = run(optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov))
        v, expected = np.zeros(5), w.copy()
        for g in grads:
            v = 0.9 * v - 0.1 * g
            expected += 0.9 * v - 0.1 * g if nesterov else v
        np.testing.assert_allclose(p, expected)


def test_rmsprop():
    w, grads, p = run(optimizers.RMSprop(learning_rate=0.01))
    s, expected = np.zeros(5), w.copy()
    for g in grads:
        s = 0.9 * s + 0.1 * g ** 2
        expected -= 0.01 * g / np.sqrt(s + 1e-7)
    np.testing.assert_allclose(p, expected)


def test_adam():
    w, grads, p = run(optimizers.Adam(learning_rate=0.01))
    m, v, expected = np.zeros(5), np.zeros(5), w.copy()
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g ** 2
        expected -= 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(p, expected)


def test_keras_defaults_names_and_lr_alias():
    assert optimizers.get("adam").learning_rate == 0.001
    assert optimizers.get("RMSprop").learning_rate == 0.001
    assert optimizers.get("sgd").learning_rate == 0.01
    opt = optimizers.RMSprop(lr=1e-4)
    assert opt.learning_rate == 1e-4 and opt.lr == 1e-4
    with pytest.raises(ValueError, match=r"unknown optimizer 'lion'.*\['adadelta', 'adagrad', 'adam', 'adamax', "
                                         r"'adamw', 'nadam', 'rmsprop', 'sgd'\]"):
        optimizers.get("lion")
    with pytest.raises(TypeError, match="unexpected arguments"):
        optimizers.Adam(betas=(0.9, 0.99))


def test_updates_keep_float32_and_work_in_place():
    p = np.ones(3, np.float32)
    before = p
    for name in ("sgd", "rmsprop", "adam"):
        optimizers.get(name).apply_gradients([p], [np.full(3, 0.5, np.float32)])
    assert p is before and p.dtype == np.float32 and (p < 1).all()



# ----- against Keras 3 --------------------------------------------------------------------------------

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def keras_steps(keras, optimizer, weights, grads):
    variables = [keras.Variable(w) for w in weights]
    for step in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step], variables)
    return [np.asarray(v.numpy()) for v in variables]


def our_steps(optimizer, weights, grads):
    params = [w.copy() for w in weights]
    for step in grads:
        optimizer.apply_gradients(params, [g.copy() for g in step])
    return params


def problem(seed, steps=5, scale=1.0):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    grads = [[(rng.standard_normal(w.shape) * scale).astype(np.float32) for w in weights] for _ in range(steps)]
    return weights, grads


RULES = {
    "SGD": {"learning_rate": 0.1}, "SGD-momentum": {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
    "RMSprop": {"learning_rate": 0.01, "momentum": 0.5, "centered": True},
    "Adam": {"learning_rate": 0.01}, "AdamW": {"learning_rate": 0.01, "weight_decay": 0.1},
    "Nadam": {"learning_rate": 0.01}, "Adamax": {"learning_rate": 0.02}, "Adagrad": {"learning_rate": 0.1, "initial_accumulator_value": 0.2},
    "Adadelta": {"learning_rate": 1.0, "rho": 0.9},
}
OPTIONS = [{}, {"clipnorm": 0.5}, {"global_clipnorm": 0.7}, {"clipvalue": 0.3}, {"weight_decay": 0.05},
           {"loss_scale_factor": 4.0}]


def make(module, name, **kwargs):
    return getattr(module, name.split("-")[0])(**{**RULES[name], **kwargs})


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(RULES)), st.sampled_from(OPTIONS), st.integers(0, 2**31 - 1))
def test_every_rule_and_option_equals_keras(name, options, seed):
    keras = real_keras()
    if name == "AdamW" and "weight_decay" in options:
        options = {}
    weights, grads = problem(seed, scale=2.0)
    expected = keras_steps(keras, make(keras.optimizers, name, **options), weights, grads)
    got = our_steps(make(optimizers, name, **options), weights, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6)


SCHEDULES = [("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5)),
             ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5, staircase=True)),
             ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.7, staircase=True)),
             ("PiecewiseConstantDecay", dict(boundaries=[2, 5], values=[0.1, 0.05, 0.01])),
             ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=4, end_learning_rate=0.01, power=2.0)),
             ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=3, cycle=True)),
             ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=5, alpha=0.1)),
             ("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=4, warmup_target=0.1, warmup_steps=3))]


@pytest.mark.parametrize("name, config", SCHEDULES)
def test_schedules_equal_keras_and_drive_the_updates(name, config):
    keras = real_keras()
    theirs, ours = getattr(keras.optimizers.schedules, name)(**config), getattr(optimizers.schedules, name)(**config)
    for step in range(12):
        assert ours(step) == pytest.approx(float(theirs(step)), rel=1e-6), step
    weights, grads = problem(0, steps=9)
    expected = keras_steps(keras, keras.optimizers.SGD(theirs, momentum=0.5), weights, grads)
    got = our_steps(optimizers.SGD(ours, momentum=0.5), weights, grads)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert ours.get_config() == pytest.approx(theirs.get_config()) if name != "PiecewiseConstantDecay" else True


def test_optimizers_train_a_model_as_keras_and_round_trip_through_keras_files(tmp_path):
    keras = real_keras()
    import scratchnet as sn
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 3, 16)
    schedule = dict(initial_learning_rate=0.05, decay_steps=2, decay_rate=0.8)
    for name, kwargs in [("Nadam", {}), ("Adamax", {}), ("Adadelta", {"learning_rate": 0.5}), ("Adagrad", {"clipnorm": 0.1}),
                         ("AdamW", {"learning_rate": "schedule"})]:
        def build(lib):
            options = dict(kwargs)
            if options.get("learning_rate") == "schedule":
                options["learning_rate"] = lib.optimizers.schedules.ExponentialDecay(**schedule)
            model = lib.Sequential([lib.Input((5,)), lib.layers.Dense(4, activation="tanh"),
                                    lib.layers.Dense(3, activation="softmax")])
            model.compile(getattr(lib.optimizers, name)(**options), "sparse_categorical_crossentropy")
            return model
        theirs, ours = build(keras), build(sn)
        ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
        for model in (theirs, ours):
            model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        for a, b in zip(theirs.get_weights(), ours.get_weights()):
            np.testing.assert_allclose(b, np.asarray(a), rtol=1e-4, atol=1e-5, err_msg=name)
        ours.save(tmp_path / f"{name}.keras")                 # state saved as Keras keeps it: one more step
        again = keras.models.load_model(tmp_path / f"{name}.keras")
        theirs.save(tmp_path / f"{name}-keras.keras")
        back = sn.models.load_model(tmp_path / f"{name}-keras.keras")
        assert type(back.optimizer).__name__ == name and type(again.optimizer).__name__ == name
        for model in (theirs, again, ours, back):
            model.fit(x[:4], y[:4], batch_size=4, epochs=1, shuffle=False, verbose=0)
        for a, b, c, d in zip(theirs.get_weights(), again.get_weights(), ours.get_weights(), back.get_weights()):
            for other in (b, c, d):
                np.testing.assert_allclose(np.asarray(other), np.asarray(a), rtol=1e-4, atol=1e-5, err_msg=name)
        ours.save(tmp_path / f"{name}.npz")
        native = sn.models.load_model(tmp_path / f"{name}.npz")
        assert native.optimizer.get_config() == ours.optimizer.get_config()
        assert native.optimizer.scalar_state() == ours.optimizer.scalar_state()


def test_a_schedule_cannot_be_overwritten_by_a_number():
    opt = optimizers.Adam(optimizers.schedules.CosineDecay(0.1, 10))
    assert opt.learning_rate == pytest.approx(0.1)
    with pytest.raises(TypeError, match=r"made with a learning-rate schedule \(CosineDecay"):
        opt.learning_rate = 0.01


@pytest.mark.parametrize("make_it, message", [
    (lambda: optimizers.Adam(clipnorm=1.0, clipvalue=0.5), r"only one of clipnorm, clipvalue and global_clipnorm"),
    (lambda: optimizers.SGD(weight_decay=-0.1), r"weight_decay must be a non-negative number or None, got -0.1"),
    (lambda: optimizers.Adam(use_ema=True), r"no moving average of the weights \(use_ema=True\)"),
    (lambda: optimizers.Adam(gradient_accumulation_steps=4), r"no gradient accumulation"),
    (lambda: optimizers.Adam(amsgrad=True), r"no AMSGrad variant"),
    (lambda: optimizers.AdamW(weight_decay=None), r"weight_decay must be a number, got None"),
    (lambda: optimizers.SGD(learning_rate=-1), r"learning_rate must be a positive number or a schedule, got -1"),
    (lambda: optimizers.schedules.PiecewiseConstantDecay([1, 1], [3, 2, 1]), r"boundaries must increase strictly"),
    (lambda: optimizers.schedules.ExponentialDecay(0.1, 0, 0.5), r"decay_steps must be > 0, got 0"),
    (lambda: optimizers.Adam(learning_rate={"class_name": "CyclicalLR"}), r"unknown learning-rate schedule"),
    (lambda: optimizers.Lion, r"scratchnet has no optimizers.Lion; AdamW is the nearest; its optimizers are Adadelta, Adagrad"),
])
def test_bad_settings_say_what_was_expected(make_it, message):
    with pytest.raises((ValueError, TypeError, AttributeError), match=message):
        make_it()
