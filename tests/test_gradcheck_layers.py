"""Every layer's backward pass against central differences in float64 (rel. error < 1e-6),
through both backends: the NumPy reference and the Numba kernels."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from strategies import window_case
from scratchnet import gradcheck, layers

TOLERANCE = 1e-6
seeds = st.integers(0, 2**31 - 1)


def assert_gradients_match(layer, x, **kwargs):
    errors = gradcheck.check_layer(layer, x, **kwargs)
    assert max(errors.values()) < TOLERANCE, errors
    return errors


@given(window_case(), st.integers(1, 4), st.sampled_from([None, "relu", "tanh"]), st.booleans(), seeds)
def test_conv2d(backend_name, case, filters, activation, use_bias, seed):
    n, h, w, c, kernel, strides, padding, _ = case
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation=activation,
                          use_bias=use_bias, bias_initializer="glorot_uniform" if use_bias else "zeros",
                          dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    errors = assert_gradients_match(layer, x)
    assert set(errors) == ({"x", "kernel", "bias"} if use_bias else {"x", "kernel"})


@given(window_case(), seeds)
def test_maxpool2d_distinct_values(backend_name, case, seed):
    n, h, w, c, pool, strides, padding, _ = case
    layer = layers.MaxPooling2D(pool, strides=strides, padding=padding, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    assert_gradients_match(layer, x)


@given(window_case(), seeds)
def test_maxpool2d_ties_send_everything_to_the_first_maximum(backend_name, case, seed):
    # At a tie the function has no derivative, so compare with the one-sided limit that
    # the rule "first maximum in row-major order wins" promises: subtract a tiny ramp
    # that grows in row-major order (earlier pixels end up larger, so among tied values
    # the first is now the strict maximum), take central differences there, and expect
    # exactly the analytic gradient computed at the tied input.
    n, h, w, c, pool, strides, padding, _ = case
    rng = np.random.default_rng(seed)
    tied = rng.integers(0, 3, (n, h, w, c)).astype(np.float64)
    ramp = np.arange(h * w, dtype=np.float64).reshape(1, h, w, 1) * (0.25 / (h * w))

    layer = layers.MaxPooling2D(pool, strides=strides, padding=padding, dtype="float64")
    y = layer.forward(tied, training=True)
    r = rng.standard_normal(y.shape)
    analytic = layer.backward(r)

    broken = tied - ramp
    numeric = gradcheck.numerical_gradient(lambda: float((layer.forward(broken) * r).sum()), broken)
    assert gradcheck.relative_error(analytic, numeric) < TOLERANCE


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5),
       st.sampled_from([None, "relu", "sigmoid", "tanh", "softmax", "elu", "softplus"]), seeds)
def test_dense(backend_name, n, features, units, activation, seed):
    layer = layers.Dense(units, activation=activation, bias_initializer="glorot_uniform", dtype="float64")
    x = np.random.default_rng(seed).standard_normal((n, features))
    assert_gradients_match(layer, x)


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.integers(1, 4), seeds)
def test_flatten(backend_name, n, h, w, c, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    assert_gradients_match(layers.Flatten(dtype="float64"), x)


@given(st.integers(1, 4), st.integers(1, 8), st.floats(0.0, 0.9), seeds)
def test_dropout_with_its_mask_held_fixed(backend_name, n, features, rate, seed):
    x = np.random.default_rng(seed).standard_normal((n, features))
    assert_gradients_match(layers.Dropout(rate, dtype="float64"), x, seed=seed)


@pytest.mark.parametrize("layer_factory", [
    lambda: layers.Activation("relu", dtype="float64"),
    lambda: layers.Activation("tanh", dtype="float64"),
    lambda: layers.ReLU(dtype="float64"),
    lambda: layers.Sigmoid(dtype="float64"),
    lambda: layers.Softmax(dtype="float64"),
])
@given(st.integers(1, 4), st.integers(1, 6), seeds)
def test_activation_layers(backend_name, layer_factory, n, features, seed):
    x = np.random.default_rng(seed).standard_normal((n, features))
    assert_gradients_match(layer_factory(), x)


def test_gradcheck_catches_a_wrong_backward():
    # A check that cannot fail proves nothing: break Dense's backward and expect a miss.
    layer = layers.Dense(3, dtype="float64")
    original = layer.call_backward

    def wrong_backward(dy, need_dx):
        dx = original(dy, need_dx)
        layer.grads["kernel"] = layer.grads["kernel"] * 1.01
        return dx

    layer.call_backward = wrong_backward
    errors = gradcheck.check_layer(layer, np.random.default_rng(0).standard_normal((2, 4)))
    assert errors["kernel"] > 1e-3 and errors["x"] < TOLERANCE
