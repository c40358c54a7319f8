"""Finite-difference gradient checks, usable from tests and notebooks.

    >>> from scratchnet import gradcheck, layers
    >>> layer = layers.Dense(3, activation="tanh", dtype="float64")
    >>> errors = gradcheck.check_layer(layer, np.random.randn(4, 5))
    >>> max(errors.values()) < gradcheck.TOLERANCE
    True

Everything here works in float64, and every error is elementwise: for each entry,
|a - n| / max(|a| + |n|, tiny), and the largest of those. A wrong value on a small entry
counts as much as one on a large entry; it cannot hide under the array's largest.

``tiny`` is where central differences stop being able to tell: their result carries a
rounding error of about eps64 * S / h (S the size of the terms the checked scalar is
made of, h the step), about 1e-11 for S = 1 and h = 1e-5, plus a truncation error of
about h^2 that is of the same order. Entries smaller than ``tiny`` are judged against
``tiny`` instead of their own size; ``tiny`` is set so that an absolute error ten times
that rounding error already fails the 1e-6 bar.

ReLU and max-pooling have kinks. When x - h and x + h fall on two sides of one, the
central difference is wrong for that entry (a few times in a thousand checks of a small
CNN). An entry that misses the bar is therefore measured again with a step 100 times
smaller. Only if the two differences disagree with each other (beyond the rounding of
the smaller step) was there a kink, and the entry is judged by the smaller step; if they
agree, the function is smooth there and the first, stricter judgement stands. A real
mistake in a backward pass is wrong against both and still fails. (A kink closer than
the smaller step, such as two inputs of a max within 1e-7 of each other, cannot be
resolved by differences at all: check such functions away from their ties.)
"""
import contextlib

import numpy as np

from . import config

TOLERANCE = 1e-6          # the bar the checks are built for: relative error below this passes
STEP = 1e-5               # central-difference step for layers and models
ROUNDING_MARGIN = 10      # how far above the rounding error of a difference an error must be to fail
KINK_RETRY_RATIO = 100    # an entry that misses the bar is measured again with step / this


def numerical_gradient(f, x, eps=STEP, entries=None):
    """d f / d x by central differences; ``f`` is called with no argument after each
    in-place change of ``x`` (which is restored), and returns a scalar. With ``entries``
    (flat indices), only those entries are computed; the others are 0."""
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    for i in (range(flat_x.size) if entries is None else entries):
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = f()
        flat_x[i] = original - eps
        f_minus = f()
        flat_x[i] = original
        flat_g[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def rounding_floor(scale, eps=STEP):
    """The ``tiny`` of ``relative_error`` for a scalar made of terms of total size ``scale``
    differentiated with step ``eps``: below it, central differences cannot give six digits."""
    rounding = np.finfo(np.float64).eps * max(float(scale), 1.0) / eps
    return ROUNDING_MARGIN * rounding / TOLERANCE


def elementwise_errors(analytic, numeric, tiny=1e-8):
    """|a - n| / max(|a| + |n|, tiny) for every entry (an array shaped like both)."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if analytic.shape != numeric.shape:
        raise ValueError(f"shapes differ: analytic {analytic.shape}, numeric {numeric.shape}")
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), tiny)


def relative_error(analytic, numeric, tiny=1e-8):
    """max over entries of |a - n| / max(|a| + |n|, tiny): 0 for equal arrays, 1 where one
    side is zero and the other is not (and above ``tiny``), so no entry can hide."""
    return float(elementwise_errors(analytic, numeric, tiny).max(initial=0.0))


def compare_with_differences(analytic, f, x, scale, eps=STEP, entries=None):
    """Relative error of ``analytic`` (d f / d x) against central differences, elementwise,
    with the floor ``rounding_floor(scale, eps)`` and the kink retry described above; with
    ``entries`` (flat indices), over those entries only (for inputs too big to difference
    whole)."""
    entries = np.arange(x.size) if entries is None else np.asarray(entries)
    numeric = numerical_gradient(f, x, eps, entries).reshape(-1)[entries]
    analytic = np.asarray(analytic).reshape(-1)[entries]
    errors = elementwise_errors(analytic, numeric, rounding_floor(scale, eps))
    missed = np.flatnonzero(errors >= TOLERANCE)
    if missed.size:
        small = eps / KINK_RETRY_RATIO
        floor = rounding_floor(scale, small)
        numeric_small = numerical_gradient(f, x, small, entries[missed]).reshape(-1)[entries[missed]]
        kink = elementwise_errors(numeric[missed], numeric_small, floor) >= TOLERANCE
        again = elementwise_errors(analytic[missed], numeric_small, floor)
        errors[missed[kink]] = again[kink]
    return float(errors.max(initial=0.0))


@contextlib.contextmanager
def _fixed_randomness(seed):
    """Every forward pass inside draws the same random numbers (e.g. dropout masks)."""
    saved = config.rng()
    try:
        yield lambda: config.set_random_seed(seed)
    finally:
        config._rng = saved


def check_layer(layer, x, eps=STEP, seed=0):
    """Relative errors of a layer's backward pass against central differences.

    The layer is reduced to the scalar ``sum(layer(x) * r)`` for a fixed random ``r``.
    ``x`` is an array, or a list of arrays for a layer that takes several inputs.
    Returns ``{'x': err, 'kernel': err, ...}`` (``'x0'``, ``'x1'``, ... for several
    inputs), one entry per input and weight."""
    several = isinstance(x, (list, tuple))
    xs = [np.array(a, dtype=np.float64) for a in (x if several else [x])]
    if layer.dtype != np.float64:
        raise TypeError(f"check_layer needs a float64 layer (dtype='float64'), got {layer.dtype}")

    def run():
        return layer.forward(xs if several else xs[0], training=True)

    with _fixed_randomness(seed) as reseed:
        reseed()
        y, _ = run()
        r = np.random.default_rng(seed + 1).standard_normal(y.shape)
        scale = np.abs(y * r).sum()   # the size of the terms f is made of

        def f():
            reseed()
            return float((run()[0] * r).sum())

        reseed()
        _, ctx = run()
        dx, grads = layer.backward(r.copy(), ctx)
        dxs = dx if several else [dx]
        names = [f"x{i}" for i in range(len(xs))] if several else ["x"]
        errors = {name: compare_with_differences(d, f, a, scale, eps) for name, d, a in zip(names, dxs, xs)}
        for name, param in layer.params.items():
            if name in grads:
                errors[name] = compare_with_differences(grads[name], f, param, scale, eps)
    return errors


def check_loss(loss, y_true, y_pred, from_logits=False, eps=1e-6):
    """Relative error of ``loss.value_and_grad`` against central differences in y_pred.
    (A smaller step than for layers: losses have no kinks, but -log p curves sharply
    for small probabilities.)"""
    y_pred = np.array(y_pred, dtype=np.float64)
    y = loss.prepare_targets(y_true, y_pred.shape, np.float64)
    value, analytic = loss.value_and_grad(y, y_pred, from_logits=from_logits)
    return compare_with_differences(
        analytic, lambda: loss.value_and_grad(y, y_pred, from_logits=from_logits)[0], y_pred, abs(value), eps)


def check_model(model, x, y, eps=STEP, seed=0):
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
        loss, grads, dx = model.compute_gradients(x, y, need_dx=True)
        grads, dx = [g.copy() for g in grads], dx.copy()
        errors = {"x": compare_with_differences(dx, f, x, abs(loss), eps)}
        for (layer, key), grad in zip(model.trained_weight_pairs(), grads):
            errors[f"{layer.name}/{key}"] = compare_with_differences(grad, f, layer.params[key], abs(loss), eps)
    return errors
