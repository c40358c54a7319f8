"""The Numba kernels against the NumPy reference, on hypothesis-drawn geometry.

Max-pool and im2col-based data movement must match exactly; sums (GEMMs, bias
gradients) match to float32 rounding, since the order of summation differs."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from strategies import cut_window_case, window_case
from scratchnet.kernels import im2col_gemm, numba_conv, numba_cpu as fast, numba_lanes, numpy_ref as ref

seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([np.float32, np.float64])


def tolerance(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(params=[None, 1 << 10], ids=["one-chunk", "many-chunks"])
def chunk_bytes(request, monkeypatch):
    """Also run with a tiny chunk so that the chunked path (and its recomputed im2col) is used."""
    if request.param:
        monkeypatch.setattr(numba_conv, "CHUNK_BYTES", request.param)
    return request.param


@given(case=window_case(), c_out=st.integers(1, 5), dtype=dtypes, seed=seeds, need_dx=st.booleans())
def test_conv2d_matches_reference(chunk_bytes, case, c_out, dtype, seed, need_dx):
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal(kernel + (c, c_out)).astype(dtype)
    y, cache = fast.conv2d_forward(x, wt, strides, pads)
    y_ref, cache_ref = ref.conv2d_forward(x, wt, strides, pads)
    assert y.dtype == dtype and y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, **tolerance(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw = fast.conv2d_backward(dy, cache, need_dx)
    dx_ref, dw_ref = ref.conv2d_backward(dy, cache_ref, need_dx)
    np.testing.assert_allclose(dw, dw_ref, **tolerance(dtype))
    assert dw.dtype == dtype
    if need_dx:
        np.testing.assert_allclose(dx, dx_ref, **tolerance(dtype))
        assert dx.dtype == dtype
    else:
        assert dx is None


@settings(max_examples=40)
@given(case=window_case(max_stride=1, max_channels=6), c_out=st.integers(1, 13), dtype=dtypes, seed=seeds)
def test_conv2d_backward_turns_stride_one_dx_into_a_convolution(monkeypatch, chunk_bytes, case, c_out, dtype, seed):
    # at stride 1 with c_out <= 2 * c_in and y not much smaller than x, dx and dw come from one
    # unfolding of dy (dx as a convolution of dy with the turned kernel); both must equal the
    # reference's, and the turn must be taken exactly then
    n, h, w, c, kernel, strides, _, pads = case
    turned = []
    original = im2col_gemm._transposed_pads
    monkeypatch.setattr(im2col_gemm, "_transposed_pads", lambda *a: turned.append(original(*a)) or turned[-1])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    wt = rng.standard_normal(kernel + (c, c_out)).astype(dtype)
    y, cache = fast.conv2d_forward(x, wt, strides, pads)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw = fast.conv2d_backward(dy, cache, True)
    dx_ref, dw_ref = ref.conv2d_backward(dy, ref.conv2d_forward(x, wt, strides, pads)[1], True)
    np.testing.assert_allclose(dx, dx_ref, **tolerance(dtype))
    np.testing.assert_allclose(dw, dw_ref, **tolerance(dtype))
    assert dx.shape == x.shape and dx.dtype == dtype
    pointwise = kernel == (1, 1) and pads == (0, 0, 0, 0)
    small_y = 4 * h * w > 5 * y.shape[1] * y.shape[2]
    assert (turned[0] is not None) == (c_out <= 2 * c and not pointwise and not small_y)


@settings(max_examples=25)
@given(case=cut_window_case(), c_out=st.integers(1, 5), dtype=dtypes, seed=seeds, lanes=st.booleans())
def test_conv2d_backward_input_matches_reference(monkeypatch, chunk_bytes, case, c_out, dtype, seed, lanes):
    # pads include the negative bottom/right ones of a transposed convolution; in one chunk or
    # many, in one lane or two
    n, h, w, c, kernel, strides, pads = case
    monkeypatch.setattr(fast.Lanes, "min_flops", 0 if lanes else 1 << 62)
    rng = np.random.default_rng(seed)
    wt = rng.standard_normal(kernel + (c, c_out)).astype(dtype)
    ho, wo = im2col_gemm.geometry((n, h, w, c), wt.shape, strides, pads)[6:]
    dy = rng.standard_normal((n, ho, wo, c_out)).astype(dtype)
    dx = fast.conv2d_backward_input(dy, wt, (n, h, w, c), strides, pads)
    assert dx.dtype == dtype and dx.shape == (n, h, w, c)
    np.testing.assert_allclose(dx, ref.conv2d_backward_input(dy, wt, (n, h, w, c), strides, pads), **tolerance(dtype))


def test_conv2d_backward_input_refuses_what_the_reference_refuses():
    w = np.ones((3, 3, 2, 4), np.float32)
    with pytest.raises(ValueError, match=r"gives dy of shape \(1, 3, 3, 4\), got \(1, 2, 2, 4\)"):
        fast.conv2d_backward_input(np.ones((1, 2, 2, 4), np.float32), w, (1, 5, 5, 2), (1, 1), (0, 0, 0, 0))
    with pytest.raises(TypeError, match="one dtype"):
        fast.conv2d_backward_input(np.ones((1, 2, 2, 4)), w, (1, 4, 4, 2), (1, 1), (0, 0, 0, 0))


@settings(max_examples=25)
@given(n=st.integers(1, 3), size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       out=st.tuples(st.integers(1, 20), st.integers(1, 20)), c=st.integers(1, 4), dtype=dtypes, seed=seeds,
       parallel=st.booleans())
def test_resize_bilinear_matches_reference(monkeypatch, n, size, out, c, dtype, seed, parallel):
    monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0 if parallel else 1 << 62)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + size + (c,)).astype(dtype)
    y = fast.resize_bilinear(x, out)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref.resize_bilinear(x, out), **tolerance(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = fast.resize_bilinear_backward(dy, size)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ref.resize_bilinear_backward(dy, size), **tolerance(dtype))


@given(case=window_case(), dtype=dtypes, seed=seeds, ties=st.booleans())
def test_maxpool_matches_reference_exactly(case, dtype, seed, ties):
    n, h, w, c, pool, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 3, (n, h, w, c)) if ties else rng.standard_normal((n, h, w, c))).astype(dtype)
    y, argmax = fast.maxpool2d_forward(x, pool, strides, pads)
    y_ref, argmax_ref = ref.maxpool2d_forward(x, pool, strides, pads)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = fast.maxpool2d_backward(dy, argmax, x.shape, pool, strides, pads)
    dx_ref = ref.maxpool2d_backward(dy, argmax_ref, x.shape, pool, strides, pads)
    # overlapping windows add several dy into one dx: same values, maybe another order
    np.testing.assert_allclose(dx, dx_ref, **tolerance(dtype))
    assert y.dtype == dx.dtype == dtype


@given(rows=st.integers(1, 50), cols=st.integers(1, 9), activation=st.sampled_from(["linear", "relu"]),
       has_bias=st.booleans(), need_db=st.booleans(), dtype=dtypes, seed=seeds)
def test_bias_activation_matches_reference(rows, cols, activation, has_bias, need_db, dtype, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, 2, cols)).astype(dtype)
    b = rng.standard_normal(cols).astype(dtype) if has_bias else None
    a = fast.bias_activation(z.copy(), b, activation)
    a_ref = ref.bias_activation(z.copy(), b, activation)
    np.testing.assert_array_equal(a, a_ref)
    dy = rng.standard_normal(z.shape).astype(dtype)
    dz, db = fast.bias_activation_backward(dy, a, activation, need_db)
    dz_ref, db_ref = ref.bias_activation_backward(dy, a_ref, activation, need_db)
    np.testing.assert_array_equal(dz, dz_ref)
    if need_db:
        np.testing.assert_allclose(db, db_ref, **tolerance(dtype))
    else:
        assert db is None


@given(size=st.integers(1, 300), dtype=dtypes, seed=seeds, steps=st.integers(1, 3))
def test_optimizer_kernels_match_reference(size, dtype, seed, steps):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(size).astype(dtype)
    # parameters, Adam's m and v, RMSprop's s
    states = {name: [p.copy(), np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)] for name in ("fast", "ref")}
    for _ in range(steps):
        g = rng.standard_normal(size).astype(dtype)
        for module, (q, m, v, s) in ((fast, states["fast"]), (ref, states["ref"])):
            module.adam_update(q, g, m, v, 1e-2, 0.9, 0.999, 1e-7)
            module.rmsprop_update(q, g, s, 1e-3, 0.9, 1e-7)
    for a, b in zip(states["fast"], states["ref"]):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, **tolerance(dtype))
        assert a.dtype == dtype


@settings(max_examples=10)
@given(case=window_case(max_batch=8, max_channels=8, max_size=16), seed=seeds)
def test_serial_and_parallel_variants_agree_bit_for_bit(monkeypatch, case, seed):
    # Force every kernel onto its parallel variant, then onto its serial one.
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal(kernel + (c, 3)).astype(np.float32)
    results = []
    for threshold in (0, 1 << 62):
        monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", threshold)
        y, cache = fast.conv2d_forward(x, wt, strides, pads)
        a = fast.bias_activation(y, rng.standard_normal(3).astype(np.float32) * 0 + 0.1, "relu")
        pool = (min(2, a.shape[1]), min(2, a.shape[2]))   # a window that fits the conv output
        p, argmax = fast.maxpool2d_forward(a, pool, (1, 1), (0, 0, 0, 0))
        dp = fast.maxpool2d_backward(np.ones_like(p), argmax, a.shape, pool, (1, 1), (0, 0, 0, 0))
        dz, db = fast.bias_activation_backward(dp, a, "relu", True)
        dx, dw = fast.conv2d_backward(dz, cache, True)
        results.append([y, p, argmax, dp, dz, db, dx, dw])
    for serial, parallel in zip(*results):
        np.testing.assert_array_equal(serial, parallel)


def test_one_and_two_threads_give_equal_training_steps(monkeypatch):
    import scratchnet
    from scratchnet import layers, models
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0)   # use the threads even on small data
    monkeypatch.setattr(fast.Lanes, "min_flops", 0)          # and split every batch into two lanes
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    weights = []
    for threads in (1, 2):
        scratchnet.set_backend("cpu", threads=threads)
        scratchnet.set_random_seed(3)
        model = models.Sequential([layers.Conv2D(8, 3, activation="relu", input_shape=(12, 12, 3)),
                                   layers.MaxPooling2D(2), layers.Conv2D(8, 3, activation="relu"),
                                   layers.Flatten(), layers.Dense(4, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        weights.append(model.get_weights())
    scratchnet.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for one, two in zip(*weights):
        np.testing.assert_array_equal(one, two)


@given(shape=st.tuples(st.integers(1, 8), st.integers(1, 300)), rate=st.floats(0, 0.99),
       seed=st.integers(0, 2**64 - 1), dtype=dtypes, parallel=st.booleans())
def test_dropout_mask_is_the_reference_mask_bit_for_bit(monkeypatch, shape, rate, seed, dtype, parallel):
    monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0 if parallel else 1 << 62)
    mask = fast.dropout_mask(shape, dtype, rate, seed)
    assert mask.dtype == dtype and mask.shape == shape
    np.testing.assert_array_equal(mask, ref.dropout_mask(shape, dtype, rate, seed))


@given(case=window_case(), dtype=dtypes, seed=seeds, parallel=st.booleans())
def test_avgpool_matches_reference(monkeypatch, case, dtype, seed, parallel):
    monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0 if parallel else 1 << 62)
    n, h, w, c, pool, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    y = fast.avgpool2d_forward(x, pool, strides, pads)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref.avgpool2d_forward(x, pool, strides, pads), **tolerance(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(fast.avgpool2d_backward(dy, x.shape, pool, strides, pads),
                               ref.avgpool2d_backward(dy, x.shape, pool, strides, pads), **tolerance(dtype))


@given(case=window_case(max_kernel=4), multiplier=st.integers(1, 3), dtype=dtypes, seed=seeds,
       need_dx=st.booleans(), parallel=st.booleans())
def test_depthwise_conv_matches_reference(monkeypatch, case, multiplier, dtype, seed, need_dx, parallel):
    monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0 if parallel else 1 << 62)
    n, h, w, c, kernel, strides, _, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    k = rng.standard_normal(kernel + (c, multiplier)).astype(dtype)
    y, cache = fast.depthwise_conv2d_forward(x, k, strides, pads)
    y_ref, cache_ref = ref.depthwise_conv2d_forward(x, k, strides, pads)
    np.testing.assert_allclose(y, y_ref, **tolerance(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    (dx, dk), (dx_ref, dk_ref) = fast.depthwise_conv2d_backward(dy, cache, need_dx), \
        ref.depthwise_conv2d_backward(dy, cache_ref, need_dx)
    np.testing.assert_allclose(dk, dk_ref, **tolerance(dtype))
    assert dk.dtype == dtype
    if need_dx:
        np.testing.assert_allclose(dx, dx_ref, **tolerance(dtype))
    else:
        assert dx is None


@given(rows=st.integers(2, 500), cols=st.integers(1, 9), dtype=dtypes, seed=seeds, affine=st.booleans(),
       relu=st.booleans(), parallel=st.booleans())
def test_batchnorm_matches_reference(monkeypatch, rows, cols, dtype, seed, affine, relu, parallel):
    monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0 if parallel else 1 << 62)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, cols)) * 3 + 2).astype(dtype)
    gamma = rng.standard_normal(cols).astype(dtype) if affine else None
    beta = rng.standard_normal(cols).astype(dtype) if affine else None
    fast_out = fast.batchnorm_forward(x, gamma, beta, 1e-3, relu)
    ref_out = ref.batchnorm_forward(x, gamma, beta, 1e-3, relu)
    for a, b in zip(fast_out[:3], ref_out[:3]):
        np.testing.assert_allclose(a, b, **tolerance(dtype))
        assert a.dtype == dtype
    if relu:
        assert (fast_out[0] >= 0).all()
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy[np.abs(ref_out[0]) < 1e-3] = 0     # where rounding could put y on either side of the ReLU's kink
    for a, b in zip(fast.batchnorm_backward(dy, fast_out[3], gamma), ref.batchnorm_backward(dy, ref_out[3], gamma)):
        np.testing.assert_allclose(a, b, **tolerance(dtype))
    np.testing.assert_allclose(fast.batchnorm_inference(x, gamma, beta, ref_out[1], ref_out[2], 1e-3, relu),
                               ref.batchnorm_inference(x, gamma, beta, ref_out[1], ref_out[2], 1e-3, relu),
                               **tolerance(dtype))


@pytest.mark.parametrize("lanes", [False, True])
def test_chunked_buffers_stay_small(monkeypatch, lanes):
    # a batch larger than one chunk must not grow any lane's im2col buffer beyond CHUNK_BYTES
    if lanes:
        monkeypatch.setattr(fast.Lanes, "min_flops", 0)
    buffers = []      # (name, bytes) of every scratch array a lane allocates
    allocate = im2col_gemm.lane_buffer

    def recording(xp, name, shape, dtype):
        array = allocate(xp, name, shape, dtype)
        buffers.append((name, array.nbytes))
        return array

    monkeypatch.setattr(im2col_gemm, "lane_buffer", recording)
    x = np.ones((64, 10, 10, 4), np.float32)
    w = np.ones((3, 3, 4, 2), np.float32)
    monkeypatch.setattr(numba_conv, "CHUNK_BYTES", 64 * 36 * 4 * 4)   # room for 4 images' windows
    y, cache = fast.conv2d_forward(x, w, (1, 1), (0, 0, 0, 0))
    assert [name for name, _ in buffers].count("cols") == (2 if lanes else 1)     # one per lane
    fast.conv2d_backward(np.ones_like(y), cache, True)
    assert all(0 < size <= numba_conv.CHUNK_BYTES for name, size in buffers if name == "cols")
    np.testing.assert_array_equal(y, np.full(y.shape, 36, np.float32))
    # the fused convolution + max-pooling keeps its unfolded rows and GEMM output within BAND_CHUNK_BYTES
    monkeypatch.setattr(numba_conv, "BAND_CHUNK_BYTES", 2 * 8 * (36 + 2) * 4)    # two bands of 2 x 8 rows
    buffers.clear()
    pooled, cache = fast.conv2d_maxpool_forward(x, w, None, "relu", (1, 1), (0, 0, 0, 0), (2, 2), True)
    fast.conv2d_maxpool_backward(np.ones_like(pooled), cache, True)
    largest = {wanted: max(size for name, size in buffers if name == wanted) for wanted in ("cols", "z")}
    assert largest["cols"] + largest["z"] <= numba_conv.BAND_CHUNK_BYTES
    np.testing.assert_array_equal(pooled, np.full(pooled.shape, 36, np.float32))


def test_disk_cache_survives_a_change_of_thread_count(tmp_path):
    # parallel + cache=True once crashed when the cache was written under one thread count
    # and read under another (numba#7518): run both ways on one cache directory.
    import os
    import subprocess
    import sys
    code = ("import numpy as np; from scratchnet.kernels import numba_conv as k; "
            "x = np.arange(2 * 20 * 20 * 3, dtype=np.float32).reshape(2, 20, 20, 3); "
            "cols = np.empty((2 * 18 * 18, 27), np.float32); "
            "k._im2col.parallel(x, 3, 3, 1, 1, 0, 0, 18, 18, 0, 2, cols); print(float(cols.sum()))")
    sums = []
    for threads in ("1", "2", "1"):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NUMBA_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        sums.append(out.stdout.strip())
    assert len(set(sums)) == 1


def actual_blas_threads():
    """What the loaded BLAS runs on right now (threadpoolctl, bypassing scratchnet's bookkeeping)."""
    from threadpoolctl import threadpool_info
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_blas_runs_on_one_thread_inside_fit_and_gets_its_threads_back():
    # the CPU backend's lanes are the only threads doing GEMMs during a step (no BLAS worker spins)
    import scratchnet
    from scratchnet import callbacks, layers, models, threads
    before = actual_blas_threads()
    with threads.one_blas_thread() as saved:
        assert saved == before and actual_blas_threads() == 1
        assert threads.get_blas_threads() == before     # what it gets back when the run ends
        with threads.one_blas_thread() as inner:
            assert inner == before
        assert actual_blas_threads() == 1
    assert actual_blas_threads() == before == threads.get_blas_threads()
    scratchnet.set_backend("cpu")
    seen = []
    model = models.Sequential([layers.Input((4,)), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 4), np.float32), np.ones((8, 2), np.float32), verbose=0,
              callbacks=[type("Record", (callbacks.Callback,), {
                  "on_train_batch_end": lambda self, batch, logs=None: seen.append(actual_blas_threads())})()])
    assert seen and set(seen) == {1}
    assert actual_blas_threads() == before


def test_a_blas_loaded_after_the_first_run_is_pinned_too():
    # SciPy brings a BLAS of its own; imported after scratchnet first pinned BLAS, it must be pinned as well
    from scratchnet import threads
    with threads.one_blas_thread():
        pass
    pytest.importorskip("scipy.linalg", reason="SciPy (a second BLAS) is not installed")
    with threads.one_blas_thread():
        assert actual_blas_threads() == 1


def test_a_lane_handles_floating_point_errors_as_its_caller_does(monkeypatch):
    # NumPy's error state is per thread; a diverging step that silences overflow must not warn from a lane
    import warnings
    from scratchnet import threads
    monkeypatch.setattr(fast.Lanes, "min_flops", 0)
    x = np.full((8, 6, 6, 2), 1e30, np.float32)
    w = np.full((3, 3, 2, 4), 1e30, np.float32)
    with threads.one_blas_thread() as blas_threads, warnings.catch_warnings():
        if blas_threads < 2:
            pytest.skip("needs two BLAS threads for the lanes to run at once")
        warnings.simplefilter("error")
        with np.errstate(over="ignore", invalid="ignore"):
            y, _ = fast.conv2d_forward(x, w, (1, 1), (0, 0, 0, 0))
        assert np.isinf(y).all()
        with np.errstate(over="raise"), pytest.raises(FloatingPointError):
            fast.conv2d_forward(x, w, (1, 1), (0, 0, 0, 0))


def test_threads_set_during_a_run_take_effect_when_it_ends():
    from scratchnet import threads
    before = actual_blas_threads()
    try:
        with threads.one_blas_thread():
            threads.set_blas_threads(1)
            assert threads.get_blas_threads() == 1       # a callback saving and restoring sees what it set
        assert actual_blas_threads() == 1               # what was asked for, not what was saved
    finally:
        threads.set_blas_threads(before)
    assert actual_blas_threads() == before


@settings(max_examples=30)
@given(m=st.integers(1, 40), k=st.integers(1, 30), n=st.integers(1, 20), dtype=dtypes, seed=seeds,
       lanes=st.booleans())
def test_matmul_in_lanes_matches_numpy(monkeypatch, m, k, n, dtype, seed, lanes):
    # Dense's product: rows split between two lanes give the rows one product gives
    monkeypatch.setattr(fast.Lanes, "min_flops", 0 if lanes else float("inf"))
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    got = fast.matmul(a, b)
    assert got.dtype == dtype and got.shape == (m, n)
    np.testing.assert_allclose(got, a @ b, **tolerance(dtype))
    np.testing.assert_allclose(fast.matmul(a.T.copy().T, b), got, **tolerance(dtype))


def projective_rows(rng, n, height, width):
    """Random rotations, zooms, shears and shifts, some with perspective terms (c0, c1)."""
    angle, zoom = rng.uniform(-3.2, 3.2, n), rng.uniform(0.3, 2.0, (n, 2))
    rows = np.stack([zoom[:, 0] * np.cos(angle), -np.sin(angle) + rng.uniform(-0.3, 0.3, n),
                     rng.uniform(-2, 2, n) * width, np.sin(angle), zoom[:, 1] * np.cos(angle),
                     rng.uniform(-2, 2, n) * height, rng.uniform(-0.05, 0.05, n) * rng.integers(0, 2, n),
                     rng.uniform(-0.05, 0.05, n) * rng.integers(0, 2, n)], axis=1)
    rows[rng.random(n) < 0.2] = [1, 0, 0.5, 0, 1, -1.5, 0, 0]      # half-pixel shifts: rounding ties
    return rows.astype(np.float32)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 3), dtypes,
       st.sampled_from(["bilinear", "nearest"]), st.sampled_from(["reflect", "wrap", "constant", "nearest"]),
       st.floats(-3, 3), seeds)
def test_projective_transform_matches_reference(n, height, width, channels, dtype, interpolation, fill_mode, fill,
                                                seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, height, width, channels)).astype(dtype)
    rows = projective_rows(rng, n, height, width)
    y = fast.projective_transform(x, rows, interpolation, fill_mode, fill)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, ref.projective_transform(x, rows, interpolation, fill_mode, fill),
                               **tolerance(dtype))
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = fast.projective_transform_backward(dy, rows, interpolation, fill_mode)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ref.projective_transform_backward(dy, rows, interpolation, fill_mode),
                               **tolerance(dtype))


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 300), classes=st.integers(1, 12), scale=st.sampled_from([1.0, 30.0, 200.0]),
       dtype=dtypes, seed=seeds, parallel=st.booleans())
def test_softmax_cross_entropy_matches_the_losss_numpy_form(monkeypatch, rows, classes, scale, dtype, seed, parallel):
    """The kernel against the NumPy code of SparseCategoricalCrossentropy (its reference, which
    runs where a kernel set has no such kernel), logits up to +-200 included."""
    from scratchnet.losses import SparseCategoricalCrossentropy
    if parallel:
        monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0)
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((rows, classes)) * scale).astype(dtype)
    labels = rng.integers(0, classes, rows)
    loss, grad = fast.softmax_cross_entropy(z, labels)
    loss_ref, grad_ref = SparseCategoricalCrossentropy()._logits_loss(labels, z)
    assert loss.dtype == grad.dtype == dtype and np.isfinite(loss).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, loss_ref, rtol=tolerance(dtype)["rtol"] * 10, atol=tolerance(dtype)["atol"] * 10)
    np.testing.assert_allclose(grad, grad_ref, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_vectorised_exp_is_within_two_ulps_of_numpys(dtype):
    # the softmax kernels' exp of t <= 0, against NumPy's in float64, over its whole normal range
    from scratchnet.kernels import numba_elementwise
    lowest = -87.0 if dtype == np.float32 else -708.0
    t = np.concatenate([np.linspace(lowest, 0, 200_001), -np.logspace(-12, 0, 1001)]).astype(dtype)
    got = t.copy()
    numba_elementwise._exp_in_place(got, numba_elementwise._EXP_CONSTANTS[np.dtype(dtype)])
    exact = np.exp(t.astype(np.float64))
    assert got.dtype == dtype
    assert np.abs(got / exact - 1).max() <= 2 * np.finfo(dtype).eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_keeps_nan_and_infinite_logits_as_numpy_does(dtype):
    # a NaN or +inf logit anywhere in a row makes its loss NaN (the fit loop then stops); a -inf one is exp 0
    from scratchnet.losses import SparseCategoricalCrossentropy
    z = np.zeros((4, 5), dtype)
    z[0, 3], z[1, 1], z[2, 2], z[3] = np.nan, np.inf, -np.inf, [-1e30, 0, 1, 2, 3]
    labels = np.array([0, 0, 0, 4])
    loss, grad = fast.softmax_cross_entropy(z, labels)
    with np.errstate(invalid="ignore"):
        loss_ref, grad_ref = SparseCategoricalCrossentropy()._logits_loss(labels, z)
    assert np.isnan(loss[:2]).all() and np.isnan(loss_ref[:2]).all()
    np.testing.assert_allclose(loss[2:], loss_ref[2:], **tolerance(dtype))
    np.testing.assert_allclose(grad[2:], grad_ref[2:], **tolerance(dtype))


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 300), cols=st.integers(1, 9), part_bytes=st.integers(4, 400), dtype=dtypes, seed=seeds)
def test_batchnorm_moments_from_many_uneven_parts_match_numpys(monkeypatch, rows, cols, part_bytes, dtype, seed):
    # the mean and variance combined from parts of one row or a few each equal NumPy's
    # two-pass ones, for data far from zero too
    from scratchnet.kernels import numba_norm
    monkeypatch.setattr(numba_norm, "BN_PART_BYTES", part_bytes)
    x = (np.random.default_rng(seed).standard_normal((rows, cols)) * 3 + 1000).astype(dtype)
    mean, var = numba_norm._moments(x)
    assert mean.dtype == var.dtype == dtype
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=0), rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-4 if dtype == np.float32 else 1e-10)
