"""The GPU kernels under numba-cuda's CUDA simulator, on strict device arrays, against
the NumPy reference.

Runs only in a process started with NUMBA_ENABLE_CUDASIM=1 (tests/test_gpu.py starts
one); the simulator runs every CUDA thread in Python, so the shapes are tiny. Inputs go
to the device with cp.asarray and results come back with .get(), as with real CuPy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import strict_cupy as cp
from strategies import window_case
from scratchnet.kernels import cupy_gpu as gpu, numpy_ref as ref

seeds = st.integers(0, 2**31 - 1)
small = dict(max_batch=2, max_channels=3, max_size=6, max_kernel=3, max_stride=2)


def close(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@settings(max_examples=12)
@given(case=window_case(**small), c_out=st.integers(1, 3), seed=seeds,
       dtype=st.sampled_from([np.float32, np.float64]), need_dx=st.booleans())
def test_conv2d(case, c_out, seed, dtype, need_dx):
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal(kernel + (c, c_out)).astype(dtype)
    y, cache = gpu.conv2d_forward(cp.asarray(x), cp.asarray(wt), strides, pads)
    y_ref, cache_ref = ref.conv2d_forward(x, wt, strides, pads)
    np.testing.assert_allclose(y.get(), y_ref, **close(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw = gpu.conv2d_backward(cp.asarray(dy), cache, need_dx)
    dx_ref, dw_ref = ref.conv2d_backward(dy, cache_ref, need_dx)
    np.testing.assert_allclose(dw.get(), dw_ref, **close(dtype))
    if need_dx:
        np.testing.assert_allclose(dx.get(), dx_ref, **close(dtype))
        assert dx.dtype == dtype


@settings(max_examples=12)
@given(case=window_case(**small), seed=seeds, ties=st.booleans())
def test_maxpool(case, seed, ties):
    n, h, w, c, pool, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, (n, h, w, c)) if ties else rng.standard_normal((n, h, w, c))).astype(np.float32)
    y, argmax = gpu.maxpool2d_forward(cp.asarray(x), pool, strides, pads)
    y_ref, argmax_ref = ref.maxpool2d_forward(x, pool, strides, pads)
    np.testing.assert_array_equal(y.get(), y_ref)
    np.testing.assert_array_equal(argmax.get(), argmax_ref)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(gpu.maxpool2d_backward(cp.asarray(dy), argmax, x.shape, pool, strides, pads).get(),
                               ref.maxpool2d_backward(dy, argmax_ref, x.shape, pool, strides, pads),
                               rtol=1e-6, atol=1e-6)


@settings(max_examples=10)
@given(rows=st.integers(1, 6), cols=st.integers(1, 4), relu=st.booleans(), bias=st.booleans(), seed=seeds)
def test_bias_activation(rows, cols, relu, bias, seed):
    rng = np.random.default_rng(seed)
    activation = "relu" if relu else "linear"
    z = rng.standard_normal((rows, cols)).astype(np.float32)
    b = rng.standard_normal(cols).astype(np.float32) if bias else None
    a = gpu.bias_activation(cp.asarray(z), None if b is None else cp.asarray(b), activation)
    a_ref = ref.bias_activation(z.copy(), b, activation)
    np.testing.assert_array_equal(a.get(), a_ref)
    dy = rng.standard_normal(z.shape).astype(np.float32)
    dz, db = gpu.bias_activation_backward(cp.asarray(dy), a, activation, True)
    dz_ref, db_ref = ref.bias_activation_backward(dy, a_ref, activation, True)
    np.testing.assert_array_equal(dz.get(), dz_ref)
    np.testing.assert_allclose(db.get(), db_ref, rtol=1e-6)


@settings(max_examples=8)
@given(size=st.integers(1, 40), seed=seeds)
def test_optimizer_updates(size, seed):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(size).astype(np.float32)
    g = rng.standard_normal(size).astype(np.float32)
    slow = [p.copy(), np.zeros_like(p), np.full_like(p, 0.1)]
    fast = [cp.asarray(a) for a in slow]
    gpu.adam_update(fast[0], cp.asarray(g), fast[1], fast[2], 1e-2, 0.9, 0.999, 1e-7)
    ref.adam_update(slow[0], g, slow[1], slow[2], 1e-2, 0.9, 0.999, 1e-7)
    gpu.rmsprop_update(fast[0], cp.asarray(g), fast[2], 1e-3, 0.9, 1e-7)
    ref.rmsprop_update(slow[0], g, slow[2], 1e-3, 0.9, 1e-7)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a.get(), b, rtol=1e-6, atol=1e-7)


@settings(max_examples=8)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 9)), rate=st.floats(0.0, 0.95),
       seed=st.integers(0, 2**64 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_dropout_mask_is_the_reference_mask_bit_for_bit(shape, rate, seed, dtype):
    mask = gpu.dropout_mask(shape, dtype, rate, seed)
    assert mask.dtype == dtype and mask.shape == shape
    np.testing.assert_array_equal(mask.get(), ref.dropout_mask(shape, dtype, rate, seed))


def test_a_host_array_given_to_a_gpu_kernel_is_refused():
    with pytest.raises(TypeError, match="host \\(NumPy\\) array"):
        gpu.bias_activation(np.zeros((2, 3), np.float32), None, "relu")


@settings(max_examples=8)
@given(case=window_case(**small), seed=seeds)
def test_avgpool(case, seed):
    n, h, w, c, pool, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    y = gpu.avgpool2d_forward(cp.asarray(x), pool, strides, pads)
    np.testing.assert_allclose(y.get(), ref.avgpool2d_forward(x, pool, strides, pads), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(gpu.avgpool2d_backward(cp.asarray(dy), x.shape, pool, strides, pads).get(),
                               ref.avgpool2d_backward(dy, x.shape, pool, strides, pads), rtol=1e-5, atol=1e-6)


@settings(max_examples=8)
@given(case=window_case(**small), multiplier=st.integers(1, 2), seed=seeds, need_dx=st.booleans())
def test_depthwise_conv(case, multiplier, seed, need_dx):
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    k = rng.standard_normal(kernel + (c, multiplier)).astype(np.float32)
    y, cache = gpu.depthwise_conv2d_forward(cp.asarray(x), cp.asarray(k), strides, pads)
    y_ref, cache_ref = ref.depthwise_conv2d_forward(x, k, strides, pads)
    np.testing.assert_allclose(y.get(), y_ref, **close(np.float32))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk = gpu.depthwise_conv2d_backward(cp.asarray(dy), cache, need_dx)
    dx_ref, dk_ref = ref.depthwise_conv2d_backward(dy, cache_ref, need_dx)
    np.testing.assert_allclose(dk.get(), dk_ref, **close(np.float32))
    if need_dx:
        np.testing.assert_allclose(dx.get(), dx_ref, **close(np.float32))


def test_batchnorm_runs_on_device_arrays():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3)).astype(np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    y, mean, var, cache = gpu.batchnorm_forward(cp.asarray(x), cp.asarray(gamma), cp.asarray(beta), 1e-3)
    y_ref, mean_ref, var_ref, cache_ref = ref.batchnorm_forward(x, gamma, beta, 1e-3)
    for a, b in ((y, y_ref), (mean, mean_ref), (var, var_ref)):
        assert isinstance(a, cp.ndarray)
        np.testing.assert_allclose(a.get(), b, rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    for a, b in zip(gpu.batchnorm_backward(cp.asarray(dy), cache, cp.asarray(gamma)),
                    ref.batchnorm_backward(dy, cache_ref, gamma)):
        np.testing.assert_allclose(a.get(), b, rtol=1e-5, atol=1e-5)
