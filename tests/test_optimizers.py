"""Optimizers against their textbook update rules, written out independently here."""
import numpy as np
import pytest

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
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamw'.*\['adam', 'rmsprop', 'sgd'\]"):
        optimizers.get("adamw")
    with pytest.raises(TypeError, match="unexpected arguments"):
        optimizers.Adam(betas=(0.9, 0.99))


def test_updates_keep_float32_and_work_in_place():
    p = np.ones(3, np.float32)
    before = p
    for name in ("sgd", "rmsprop", "adam"):
        optimizers.get(name).apply_gradients([p], [np.full(3, 0.5, np.float32)])
    assert p is before and p.dtype == np.float32 and (p < 1).all()
