"""Every layer's backward pass against central differences in float64 (rel. error < 1e-6),
through both backends: the NumPy reference and the Numba kernels."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from strategies import window_case
from scratchnet import gradcheck, layers

TOLERANCE = gradcheck.TOLERANCE   # 1e-6, elementwise, in float64
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


def distinct(shape, seed):
    """Values in [-2, 2) at least 4 / size apart: a maximum never nearly ties (central
    differences cannot tell a maximum from a value closer to it than their step)."""
    size = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(size).reshape(shape) * (4.0 / size) - 2


@given(window_case(), seeds)
def test_maxpool2d_distinct_values(backend_name, case, seed):
    n, h, w, c, pool, strides, padding, _ = case
    layer = layers.MaxPooling2D(pool, strides=strides, padding=padding, dtype="float64")
    assert_gradients_match(layer, distinct((n, h, w, c), seed))


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
    y, ctx = layer.forward(tied, training=True)
    r = rng.standard_normal(y.shape)
    analytic, _ = layer.backward(r, ctx)

    broken = tied - ramp
    numeric = gradcheck.numerical_gradient(lambda: float((layer(broken) * r).sum()), broken)
    scale = np.abs(layer(broken) * r).sum()
    assert gradcheck.relative_error(analytic, numeric, gradcheck.rounding_floor(scale)) < TOLERANCE


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
    original = layer._backward

    def wrong_backward(dy, ctx, need_dx):
        dx, grads = original(dy, ctx, need_dx)
        return dx, {**grads, "kernel": grads["kernel"] * 1.01}

    layer._backward = wrong_backward
    errors = gradcheck.check_layer(layer, np.random.default_rng(0).standard_normal((2, 4)))
    assert errors["kernel"] > 1e-3 and errors["x"] < TOLERANCE


def test_relative_error_is_elementwise():
    # One entry 10% off, a million times smaller than the other: the error is that 10%
    # (0.1 / 2.1), not 1e-7 as a division by the array's largest entry would say.
    assert gradcheck.relative_error([1.0, 1e-6], [1.0, 1.1e-6]) == pytest.approx(0.1 / 2.1)
    assert gradcheck.relative_error([0.0, 2.0], [0.0, 2.0]) == 0.0
    assert gradcheck.relative_error([1e-12], [0.0]) == pytest.approx(1e-4)   # below tiny=1e-8
    with pytest.raises(ValueError, match="shapes differ"):
        gradcheck.relative_error(np.zeros(2), np.zeros(3))


def test_an_error_on_a_small_entry_cannot_hide_under_the_largest():
    # The first input feature is 1e5 times smaller than the others, so row 0 of the
    # kernel gradient is too. A backward that gets that row 10% wrong is, relative to the
    # array's largest entry, off by less than 1e-6: the old check (divide by the largest)
    # passed it. Elementwise it fails, while the untouched x gradient still passes.
    x = np.random.default_rng(0).standard_normal((3, 4))
    x[:, 0] *= 1e-5
    layer = layers.Dense(3, dtype="float64")
    original = layer._backward

    def wrong_on_the_small_row(dy, ctx, need_dx):
        dx, grads = original(dy, ctx, need_dx)
        grads["kernel"][0] *= 1.1
        return dx, grads

    layer._backward = wrong_on_the_small_row
    errors = gradcheck.check_layer(layer, x)
    assert errors["kernel"] > 10 * TOLERANCE and errors["x"] < TOLERANCE, errors

    y, ctx = layer.forward(x, training=True)
    r = np.random.default_rng(1).standard_normal(y.shape)
    analytic = layer.backward(r, ctx)[1]["kernel"].copy()
    numeric = gradcheck.numerical_gradient(lambda: float((layer(x) * r).sum()), layer.params["kernel"])
    divided_by_the_largest = np.abs(analytic - numeric).max() / np.abs(numeric).max()
    assert divided_by_the_largest < TOLERANCE   # what the old check saw


def test_a_kink_between_the_two_difference_points_is_not_reported_as_an_error():
    # relu(z) with z = 3e-6 for one entry: z - 1e-5 and z + 1e-5 straddle the kink, so the
    # central difference there is 0.65 instead of 1. The retry with a 100x smaller step
    # measures 1, as the backward pass says.
    layer = layers.Activation("relu", dtype="float64")
    x = np.array([[3e-6, 0.5, -0.7]])
    probe = x.copy()
    assert gradcheck.numerical_gradient(lambda: float(layer(probe).sum()), probe)[0, 0] \
        == pytest.approx(0.65)
    assert gradcheck.check_layer(layer, x)["x"] < TOLERANCE


def test_the_kink_retry_forgives_nothing_where_the_function_is_smooth():
    # A kernel gradient 3e-5 off (relative) on one entry, with no kink anywhere (tanh): the
    # smaller step agrees with the first, so the first judgement (a miss) stands.
    x = np.random.default_rng(3).standard_normal((3, 4))
    layer = layers.Dense(3, activation="tanh", dtype="float64")
    original = layer._backward

    def slightly_wrong(dy, ctx, need_dx):
        dx, grads = original(dy, ctx, need_dx)
        grads["kernel"][1, 2] *= 1 + 3e-5
        return dx, grads

    layer._backward = slightly_wrong
    assert gradcheck.check_layer(layer, x)["kernel"] > 10 * TOLERANCE


# ----- the graph issue's layers ----------------------------------------------------------------------
@given(st.integers(2, 4), st.integers(1, 5), st.integers(1, 5), st.integers(1, 4), st.booleans(), st.booleans(),
       st.booleans(), seeds)
def test_batch_normalization_in_both_modes(backend_name, n, h, w, c, center, scale, training, seed):
    rng = np.random.default_rng(seed)
    layer = layers.BatchNormalization(center=center, scale=scale, dtype="float64",
                                      beta_initializer="glorot_uniform", gamma_initializer="glorot_uniform")
    layer.build((h, w, c))
    layer.params["moving_mean"][...] = rng.standard_normal(c)
    layer.params["moving_variance"][...] = rng.random(c) + 0.5
    x = rng.standard_normal((n, h, w, c)) * 3 + 1
    if not training:
        layer.trainable = False          # a frozen BatchNormalization runs in inference mode
    assert_gradients_match(layer, x)


@given(window_case(), seeds)
def test_average_pooling(backend_name, case, seed):
    n, h, w, c, pool, strides, padding, _ = case
    layer = layers.AveragePooling2D(pool, strides=strides, padding=padding, dtype="float64")
    assert_gradients_match(layer, np.random.default_rng(seed).standard_normal((n, h, w, c)))


@given(window_case(max_kernel=4), st.integers(1, 3), st.sampled_from([None, "relu", "tanh"]), st.booleans(), seeds)
def test_depthwise_conv2d(backend_name, case, multiplier, activation, use_bias, seed):
    n, h, w, c, kernel, strides, padding, _ = case
    layer = layers.DepthwiseConv2D(kernel, strides=strides, padding=padding, depth_multiplier=multiplier,
                                   activation=activation, use_bias=use_bias, bias_initializer="glorot_uniform",
                                   dtype="float64")
    errors = assert_gradients_match(layer, np.random.default_rng(seed).standard_normal((n, h, w, c)))
    assert set(errors) == ({"x", "kernel", "bias"} if use_bias else {"x", "kernel"})


@given(window_case(max_kernel=4), st.integers(1, 3), st.integers(1, 2), seeds)
def test_separable_conv2d(backend_name, case, filters, multiplier, seed):
    n, h, w, c, kernel, strides, padding, _ = case
    layer = layers.SeparableConv2D(filters, kernel, strides=strides, padding=padding, depth_multiplier=multiplier,
                                   activation="relu", bias_initializer="glorot_uniform", dtype="float64")
    assert_gradients_match(layer, np.random.default_rng(seed).standard_normal((n, h, w, c)))


@given(st.integers(1, 3), st.integers(3, 7), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2]),
       st.sampled_from(["valid", "same"]), seeds)
def test_conv2d_with_groups_and_dilation(backend_name, n, size, groups, dilation, padding, seed):
    rng = np.random.default_rng(seed)
    layer = layers.Conv2D(2 * groups, 2, groups=groups, dilation_rate=dilation, padding=padding,
                          activation="tanh", bias_initializer="glorot_uniform", dtype="float64")
    x = rng.standard_normal((n, size, size, groups * 2))
    assert_gradients_match(layer, x)
    assert layer.params["kernel"].shape == (2, 2, 2, 2 * groups)


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 4), st.booleans(), seeds)
def test_global_pooling(backend_name, n, h, w, c, keepdims, seed):
    x = distinct((n, h, w, c), seed)
    for layer in (layers.GlobalAveragePooling2D(keepdims=keepdims, dtype="float64"),
                  layers.GlobalMaxPooling2D(keepdims=keepdims, dtype="float64")):
        assert_gradients_match(layer, x)


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)), seeds)
def test_zero_padding_reshape_rescaling(backend_name, n, h, w, c, pads, seed):
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    for layer in (layers.ZeroPadding2D(((pads[0], pads[1]), (pads[2], pads[3])), dtype="float64"),
                  layers.Reshape((-1, c), dtype="float64"), layers.Rescaling(1 / 255, offset=-0.5, dtype="float64")):
        assert_gradients_match(layer, x)


@given(st.sampled_from([(1, 4), (3, 1), (1, 1), (3, 4)]), st.integers(1, 3), seeds)
def test_add_multiply_concatenate_with_broadcasting(backend_name, second, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, 3, 4)), rng.standard_normal((n,) + second)
    for layer in (layers.Add(dtype="float64"), layers.Multiply(dtype="float64")):
        errors = assert_gradients_match(layer, [a, b])
        assert set(errors) == {"x0", "x1"}
    assert_gradients_match(layers.Concatenate(axis=1, dtype="float64"), [a, rng.standard_normal((n, 2, 4))])
    assert_gradients_match(layers.Add(dtype="float64"), [a, rng.standard_normal((n, 3, 4)), a])


@pytest.mark.parametrize("layer_factory", [
    lambda: layers.ReLU(6.0, dtype="float64"),
    lambda: layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5, dtype="float64"),
    lambda: layers.LeakyReLU(dtype="float64"),
    lambda: layers.Activation("relu6", dtype="float64"),
])
@given(st.integers(1, 4), st.integers(1, 6), seeds)
def test_parametric_relus(backend_name, layer_factory, n, features, seed):
    x = np.random.default_rng(seed).standard_normal((n, features)) * 4
    assert_gradients_match(layer_factory(), x)
