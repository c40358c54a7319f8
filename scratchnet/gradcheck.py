"""Finite-difference gradient checks, usable from tests and notebooks.

    >>> from scratchnet import gradcheck, layers
    >>> layer = layers.Dense(3, activation="tanh", dtype="float64")
    >>> errors = gradcheck.check_layer(layer, np.random.randn(4, 5))
    >>> max(errors.values()) < 1e-6
    True

Everything here works in float64. The step 1e-5 balances the truncation error of central
differences (about step^2) against rounding (about 1e-16 / step); errors near 1e-9 are
typical, and float32 would be useless.
"""
import contextlib

import numpy as np

from . import config


def numerical_gradient(f, x, eps=1e-5):
    """d f / d x by central differences; ``f`` is called with no argument after each
    in-place change of ``x`` (which is restored), and returns a scalar."""
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = f()
        flat_x[i] = original - eps
        f_minus = f()
        flat_x[i] = original
        flat_g[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(analytic, numeric):
    """max |a - n| / max(|a|, |n|): 0 for equal arrays, about 1 for unrelated ones."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"shapes differ: analytic {analytic.shape}, numeric {numeric.shape}")
    scale = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0))
    return 0.0 if scale == 0 else float(np.abs(analytic - numeric).max() / scale)


@contextlib.contextmanager
def _fixed_randomness(seed):
    """Every forward pass inside draws the same random numbers (e.g. dropout masks)."""
    saved = config.rng()
    try:
        yield lambda: config.set_random_seed(seed)
    finally:
        config._rng = saved


def check_layer(layer, x, eps=1e-5, seed=0, logits=False):
    """Relative errors of a layer's backward pass against central differences.

    The layer is reduced to the scalar ``sum(layer(x) * r)`` for a fixed random ``r``.
    Returns ``{'x': err, 'kernel': err, ...}``, one entry per input and weight."""
    x = np.array(x, dtype=np.float64)
    if layer.dtype != np.float64:
        raise TypeError(f"check_layer needs a float64 layer (dtype='float64'), got {layer.dtype}")
    with _fixed_randomness(seed) as reseed:
        reseed()
        y = layer.forward(x, training=True, logits=logits)
        r = np.random.default_rng(seed + 1).standard_normal(y.shape)

        def f():
            reseed()
            return float((layer.forward(x, training=True, logits=logits) * r).sum())

        reseed()
        layer.forward(x, training=True, logits=logits)
        dx = layer.backward(r.copy(), logits=logits)
        errors = {"x": relative_error(dx, numerical_gradient(f, x, eps))}
        analytic = {k: g.copy() for k, g in layer.grads.items()}
        for name, param in layer.params.items():
            errors[name] = relative_error(analytic[name], numerical_gradient(f, param, eps))
    return errors


def check_loss(loss, y_true, y_pred, from_logits=False, eps=1e-6):
    """Relative error of ``loss.value_and_grad`` against central differences in y_pred.
    (A smaller step than for layers: losses have no kinks, but -log p curves sharply
    for small probabilities.)"""
    y_pred = np.array(y_pred, dtype=np.float64)
    y = loss.prepare_targets(y_true, y_pred.shape, np.float64)
    _, analytic = loss.value_and_grad(y, y_pred, from_logits=from_logits)
    numeric = numerical_gradient(lambda: loss.value_and_grad(y, y_pred, from_logits=from_logits)[0],
                                 y_pred, eps)
    return relative_error(analytic, numeric)


def check_model(model, x, y, eps=1e-5, seed=0):
    """Relative errors of a compiled float64 model's gradients (loss and all layers
    together) against central differences: ``{'x': err, 'dense/kernel': err, ...}``."""
    x = np.array(x, dtype=np.float64)
    if model.dtype != np.float64:
        raise TypeError(f"check_model needs a float64 model, got {model.dtype}")
    with _fixed_randomness(seed) as reseed:
        def f():
            reseed()
            return model.compute_loss(x, y)

        reseed()
        _, grads, dx = model.compute_gradients(x, y, need_dx=True)
        grads, dx = [g.copy() for g in grads], dx.copy()
        errors = {"x": relative_error(dx, numerical_gradient(f, x, eps))}
        for (layer, key), grad in zip(model._trainable_pairs(), grads):
            errors[f"{layer.name}/{key}"] = relative_error(grad, numerical_gradient(f, layer.params[key], eps))
    return errors
