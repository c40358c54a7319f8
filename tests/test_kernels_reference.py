"""The NumPy reference kernels against loop-by-loop oracles, on hypothesis-drawn geometry."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from oracles import (avgpool_naive, conv2d_naive, depthwise_naive, dropout_mask_naive, maxpool_backward_naive,
                     maxpool_naive)
from strategies import cut_window_case, window_case
from scratchnet.kernels import numpy_ref as ref


@given(window_case(), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_conv2d_forward_matches_direct_loops(case, c_out, seed):
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    wt = rng.standard_normal(kernel + (c, c_out))
    b = rng.standard_normal(c_out)
    y, _ = ref.conv2d_forward(x, wt, strides, pads)
    y = ref.bias_activation(y, b, "linear")
    np.testing.assert_allclose(y, conv2d_naive(x, wt, b, strides, pads), rtol=1e-12, atol=1e-12)


@given(window_case(), st.integers(0, 2**31 - 1))
def test_col2im_is_the_adjoint_of_im2col(case, seed):
    # <im2col(x), c> == <x, col2im(c)> for all x, c: the backward pass of an unfold.
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    cols = ref.im2col(x, kernel[0], kernel[1], strides, pads)
    probe = rng.standard_normal(cols.shape)
    lhs = float((cols * probe).sum())
    rhs = float((x * ref.col2im(probe, x.shape, strides, pads)).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


@given(window_case(), st.integers(0, 2**31 - 1), st.booleans())
def test_maxpool_matches_loops_including_ties(case, seed, with_ties):
    n, h, w, c, pool, strides, _, pads = case
    rng = np.random.default_rng(seed)
    # Small integers make exact ties common; the first maximum in row-major order must win.
    x = rng.integers(0, 3, (n, h, w, c)).astype(np.float32) if with_ties else \
        rng.standard_normal((n, h, w, c)).astype(np.float32)
    y, argmax = ref.maxpool2d_forward(x, pool, strides, pads)
    y_loop, where = maxpool_naive(x, pool, strides, pads)
    np.testing.assert_array_equal(y, y_loop)
    assert y.dtype == np.float32
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = ref.maxpool2d_backward(dy, argmax, x.shape, pool, strides, pads)
    np.testing.assert_allclose(dx, maxpool_backward_naive(dy, where, x.shape), rtol=1e-6, atol=1e-6)
    assert dx.dtype == np.float32


def test_maxpool_tie_goes_to_first_in_row_major_order():
    x = np.array([[1, 5], [5, 5]], dtype=np.float32).reshape(1, 2, 2, 1)
    y, argmax = ref.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0, 0, 0))
    dx = ref.maxpool2d_backward(np.ones_like(y), argmax, x.shape, (2, 2), (2, 2), (0, 0, 0, 0))
    np.testing.assert_array_equal(dx.reshape(2, 2), [[0, 1], [0, 0]])


@settings(max_examples=25)
@given(cut_window_case(), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_conv2d_backward_input_is_the_adjoint_of_the_convolution(case, c_out, seed):
    # <conv(x, w), dy> == <x, conv2d_backward_input(dy, w)> with the convolution as direct loops; a
    # negative bottom/right pad leaves the last rows/columns of x out of every window: conv sees x
    # without them, and their gradient is exactly 0.
    n, h, w, c, kernel, strides, (pt, pb, pl, pr) = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    wt = rng.standard_normal(kernel + (c, c_out))
    inner_h, inner_w = h + min(pb, 0), w + min(pr, 0)
    y = conv2d_naive(x[:, :inner_h, :inner_w], wt, None, strides, (pt, max(pb, 0), pl, max(pr, 0)))
    dy = rng.standard_normal(y.shape)
    dx = ref.conv2d_backward_input(dy, wt, x.shape, strides, (pt, pb, pl, pr))
    assert dx.shape == x.shape and dx.dtype == np.float64
    lhs, rhs = float((y * dy).sum()), float((x * dx).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))
    assert not dx[:, inner_h:].any() and not dx[:, :, inner_w:].any()


@settings(max_examples=25)
@given(window_case(), st.integers(1, 4), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_conv2d_backward_input_is_conv2d_backwards_dx(case, c_out, dtype, seed):
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal(kernel + (c, c_out)).astype(dtype)
    y, cache = ref.conv2d_forward(x, wt, strides, pads)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ref.conv2d_backward_input(dy, wt, x.shape, strides, pads)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, ref.conv2d_backward(dy, cache)[0])


def test_conv2d_backward_input_refuses_arguments_that_disagree():
    w = np.ones((3, 3, 2, 4), np.float32)
    dy = np.ones((1, 2, 2, 4), np.float32)
    assert ref.conv2d_backward_input(dy, w, (1, 4, 4, 2), (1, 1), (0, 0, 0, 0)).shape == (1, 4, 4, 2)
    with pytest.raises(ValueError, match=r"gives dy of shape \(1, 3, 3, 4\), got \(1, 2, 2, 4\)"):
        ref.conv2d_backward_input(dy, w, (1, 5, 5, 2), (1, 1), (0, 0, 0, 0))
    with pytest.raises(ValueError, match="gives dy of shape"):
        ref.conv2d_backward_input(dy, w, (1, 4, 4, 3), (1, 1), (0, 0, 0, 0))     # channels of x and w
    with pytest.raises(ValueError, match="top and left pads must be >= 0"):
        ref.conv2d_backward_input(dy, w, (1, 5, 4, 2), (1, 1), (-1, 0, 0, 0))
    with pytest.raises(TypeError, match="one dtype, got float64 and float32"):
        ref.conv2d_backward_input(dy.astype(np.float64), w, (1, 4, 4, 2), (1, 1), (0, 0, 0, 0))


@settings(max_examples=25)
@given(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.integers(1, 13), st.integers(1, 13),
       st.integers(1, 3), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_resize_bilinear_is_the_resize_matrices_and_its_backward_the_adjoint(n, h, w, out_h, out_w, c, dtype, seed):
    # the two-tap kernels against image_transform's dense row and column matrices (which the
    # Keras tests of Resizing and UpSampling2D check), up- and downscaling
    from scratchnet.functions.image_transform import resize_matrix
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    y = ref.resize_bilinear(x, (out_h, out_w))
    rows, cols = resize_matrix(h, out_h, "bilinear", dtype), resize_matrix(w, out_w, "bilinear", dtype)
    assert y.dtype == dtype and y.shape == (n, out_h, out_w, c)
    # float32: two sums in another order, so an output near 0 from terms near |x| differs by their rounding
    tol = dict(rtol=1e-5, atol=4e-7 * max(h, w) * np.abs(x).max()) if dtype == np.float32 else \
        dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(y, np.einsum("ia,jb,nabc->nijc", rows, cols, x), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ref.resize_bilinear_backward(dy, (h, w))
    assert dx.dtype == dtype and dx.shape == x.shape
    if dtype == np.float32:
        tol["atol"] = 4e-7 * max(out_h, out_w) * np.abs(dy).max()
    np.testing.assert_allclose(dx, np.einsum("ia,jb,nijc->nabc", rows, cols, dy), **tol)


def test_kernels_keep_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    y, cache = ref.conv2d_forward(x, w, (1, 1), (1, 1, 1, 1))
    y = ref.bias_activation(y, np.zeros(4, np.float32), "relu")
    dz, db = ref.bias_activation_backward(np.ones_like(y), y, "relu", True)
    dx, dw = ref.conv2d_backward(dz, cache)
    assert {a.dtype for a in (y, dx, dw, db, dz)} == {np.dtype(np.float32)}


@given(st.tuples(st.integers(1, 5), st.integers(1, 7)), st.floats(0, 0.99), st.integers(0, 2**64 - 1))
def test_dropout_mask_matches_the_integer_oracle(shape, rate, seed):
    mask = ref.dropout_mask(shape, np.float64, rate, seed)
    np.testing.assert_array_equal(mask, dropout_mask_naive(shape, rate, seed))


def test_dropout_masks_keep_one_minus_rate_and_differ_between_seeds():
    # 200,000 draws: the kept fraction is within 5 standard deviations of 1 - rate, and the
    # masks of neighbouring seeds, or of neighbouring elements, are not correlated.
    n = 200_000
    for rate in (0.1, 0.5, 0.8):
        keep = ref.dropout_mask((n,), np.float32, rate, 12345) > 0
        sd = np.sqrt(rate * (1 - rate) / n)
        assert abs(keep.mean() - (1 - rate)) < 5 * sd
        other = ref.dropout_mask((n,), np.float32, rate, 12346) > 0
        both = (keep & other).mean()
        assert abs(both - (1 - rate) ** 2) < 5 * np.sqrt((1 - rate) ** 2 / n)
        shifted = (keep[1:] & keep[:-1]).mean()
        assert abs(shifted - (1 - rate) ** 2) < 5 * np.sqrt((1 - rate) ** 2 / n)
    mask = ref.dropout_mask((4, 5), np.float32, 0.25, 7)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {np.float32(0), np.float32(1 / 0.75)}


@given(window_case(), st.integers(0, 2**31 - 1))
def test_avgpool_matches_direct_loops_and_its_backward_is_the_adjoint(case, seed):
    n, h, w, c, pool, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    y = ref.avgpool2d_forward(x, pool, strides, pads)
    np.testing.assert_allclose(y, avgpool_naive(x, pool, strides, pads), rtol=1e-12, atol=1e-12)
    probe = rng.standard_normal(y.shape)     # <avg(x), p> == <x, avg_backward(p)>
    lhs = float((y * probe).sum())
    rhs = float((x * ref.avgpool2d_backward(probe, x.shape, pool, strides, pads)).sum())
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


@given(window_case(max_kernel=4), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_depthwise_matches_direct_loops(case, multiplier, seed):
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    k = rng.standard_normal(kernel + (c, multiplier))
    y, _ = ref.depthwise_conv2d_forward(x, k, strides, pads)
    np.testing.assert_allclose(y, depthwise_naive(x, k, strides, pads), rtol=1e-12, atol=1e-12)


@given(st.integers(2, 40), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_batchnorm_normalises_each_column(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)) * rng.random(cols) * 5 + rng.standard_normal(cols)
    y, mean, var, _ = ref.batchnorm_forward(x, None, None, 1e-3)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=0), rtol=1e-12, atol=1e-12)     # biased, as Keras
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), rtol=1e-10, atol=1e-12)
    gamma, beta = rng.standard_normal(cols), rng.standard_normal(cols)
    np.testing.assert_allclose(ref.batchnorm_inference(x, gamma, beta, mean, var, 1e-3),
                               ref.batchnorm_forward(x, gamma, beta, 1e-3)[0], rtol=1e-10, atol=1e-12)


@given(st.integers(2, 40), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_batchnorm_with_relu_is_the_relu_of_batchnorm_and_its_gradient_is_masked(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal((rows, cols)), rng.standard_normal((rows, cols))
    gamma, beta = rng.standard_normal(cols), rng.standard_normal(cols)
    y, mean, var, plain = ref.batchnorm_forward(x, gamma, beta, 1e-3)
    rectified, mean_r, var_r, cache = ref.batchnorm_forward(x, gamma, beta, 1e-3, relu=True)
    np.testing.assert_array_equal(rectified, np.maximum(y, 0))
    np.testing.assert_array_equal(mean_r, mean)
    np.testing.assert_array_equal(var_r, var)
    for a, b in zip(ref.batchnorm_backward(dy, cache, gamma), ref.batchnorm_backward(dy * (y > 0), plain, gamma)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref.batchnorm_inference(x, gamma, beta, mean, var, 1e-3, relu=True),
                                  np.maximum(ref.batchnorm_inference(x, gamma, beta, mean, var, 1e-3), 0))
