"""A Conv2D and the MaxPooling2D that alone reads it run as one fused step (layers/fused.py):
the fused kernels against the NumPy reference, the fused graph against the layers one by one,
a float64 gradient check through the fused step, and where fusion must not happen."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from strategies import window_case
from scratchnet import fusion, gradcheck, layers, models
from scratchnet.graph import FusedNode
from scratchnet.kernels import numba_cpu as fast, numpy_ref as ref

seeds = st.integers(0, 2**31 - 1)


@st.composite
def conv_pool_case(draw):
    """A convolution geometry whose output holds at least one pooling window, and the pool."""
    n, h, w, c, kernel, strides, padding, pads = draw(window_case(max_size=12))
    ho = (h + pads[0] + pads[1] - kernel[0]) // strides[0] + 1
    wo = (w + pads[2] + pads[3] - kernel[1]) // strides[1] + 1
    pool = (draw(st.integers(1, min(3, ho))), draw(st.integers(1, min(3, wo))))
    return n, h, w, c, kernel, strides, padding, pads, pool


@pytest.fixture(params=["one-lane", "two-lanes-tiny-chunks"])
def lanes_and_chunks(request, monkeypatch):
    """Also split every batch into two lanes and every lane into chunks of a band or two."""
    if request.param != "one-lane":
        monkeypatch.setattr(fast.Lanes, "min_flops", 0)
        monkeypatch.setattr(fast, "BAND_CHUNK_BYTES", 1)
    return request.param


@given(case=conv_pool_case(), c_out=st.integers(1, 5), activation=st.sampled_from(["relu", "linear"]),
       has_bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds,
       need_dx=st.booleans())
def test_fused_kernels_equal_the_reference_exactly_on_integers(lanes_and_chunks, case, c_out, activation, has_bias,
                                                               dtype, seed, need_dx):
    # Small integers make every sum exact whatever its order, and make ties (and zeros after
    # ReLU) common: the pooled values, the argmax of every window and all gradients must be equal.
    n, h, w, c, kernel, strides, _, pads, pool = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, h, w, c)).astype(dtype)
    wt = rng.integers(-2, 3, kernel + (c, c_out)).astype(dtype)
    b = rng.integers(-2, 3, c_out).astype(dtype) if has_bias else None
    y, cache = fast.conv2d_maxpool_forward(x, wt, b, activation, strides, pads, pool, True)
    y_ref, cache_ref = ref.conv2d_maxpool_forward(x, wt, b, activation, strides, pads, pool, True)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(cache[-1], cache_ref[2])          # argmax
    inference, _ = fast.conv2d_maxpool_forward(x, wt, b, activation, strides, pads, pool, False)
    np.testing.assert_array_equal(inference, y_ref)
    dy = rng.integers(-3, 4, y.shape).astype(dtype)
    dx, dw, db = fast.conv2d_maxpool_backward(dy, cache, need_dx)
    dx_ref, dw_ref, db_ref = ref.conv2d_maxpool_backward(dy, cache_ref, need_dx)
    np.testing.assert_array_equal(dw, dw_ref)
    assert dw.dtype == dtype
    if has_bias:
        np.testing.assert_array_equal(db, db_ref)
    else:
        assert db is None
    if need_dx:
        np.testing.assert_array_equal(dx, dx_ref)
    else:
        assert dx is None


@settings(max_examples=40)
@given(n=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9), c_out=st.integers(1, 40),
       activation=st.sampled_from(["relu", "linear"]), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_the_2x2_pooling_path_equals_the_reference_with_ties(n, h, w, c_out, activation, dtype, seed):
    # 2x2 windows have their own unrolled loop in the pooling kernel: ties, zeros after ReLU
    # and -0.0 are common with small integers; the first of equal maxima must win as in the reference
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, (n, h, w, 2)).astype(dtype)
    wt = rng.integers(-1, 2, (2, 2, 2, c_out)).astype(dtype)
    b = rng.integers(-1, 2, c_out).astype(dtype)
    y, cache = fast.conv2d_maxpool_forward(x, wt, b, activation, (1, 1), (0, 0, 0, 0), (2, 2), True)
    y_ref, cache_ref = ref.conv2d_maxpool_forward(x, wt, b, activation, (1, 1), (0, 0, 0, 0), (2, 2), True)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(cache[-1], cache_ref[2])
    inference, _ = fast.conv2d_maxpool_forward(x, wt, b, activation, (1, 1), (0, 0, 0, 0), (2, 2), False)
    np.testing.assert_array_equal(inference, y_ref)


@settings(max_examples=30)
@given(case=conv_pool_case(), c_out=st.integers(1, 4), seed=seeds)
def test_fused_kernels_match_the_reference_on_real_numbers(lanes_and_chunks, case, c_out, seed):
    n, h, w, c, kernel, strides, _, pads, pool = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal(kernel + (c, c_out)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    y, cache = fast.conv2d_maxpool_forward(x, wt, b, "relu", strides, pads, pool, True)
    y_ref, cache_ref = ref.conv2d_maxpool_forward(x, wt, b, "relu", strides, pads, pool, True)
    np.testing.assert_allclose(y, y_ref, rtol=2e-5, atol=2e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    for got, want in zip(fast.conv2d_maxpool_backward(dy, cache), ref.conv2d_maxpool_backward(dy, cache_ref)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def small_model(activation="relu", pool=2, strides=None, padding="valid"):
    return models.Sequential([layers.Input((10, 9, 2)),
                              layers.Conv2D(4, 3, padding="same", activation=activation,
                                            bias_initializer="glorot_uniform"),
                              layers.MaxPooling2D(pool, strides=strides, padding=padding),
                              layers.Conv2D(3, 2, activation="relu", bias_initializer="glorot_uniform"),
                              layers.MaxPooling2D(2),
                              layers.Flatten(), layers.Dense(3, activation="softmax")])


def fused_nodes(model):
    return [entry[0] for entry in model._graph.fused_plan() if isinstance(entry[0], FusedNode)]


def trained_fused_and_not(build, x, y, seed):
    """[predictions before and after two epochs, then the weights] with fusion on and off, and
    the fused nodes of the model trained with fusion on."""
    import scratchnet
    results = []
    for fuse in (True, False):
        with fusion.enabled(fuse):
            scratchnet.set_random_seed(seed)
            model = build()
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            before = model.predict(x, verbose=0)
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
            results.append([before, model.predict(x, verbose=0)] + model.get_weights())
            if fuse:
                fused = fused_nodes(model)
    return results, fused


@pytest.mark.parametrize("activation", ["relu", None])
def test_fused_training_equals_the_layers_one_by_one(backend_name, activation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 10, 9, 2)).astype(np.float32)
    results, fused = trained_fused_and_not(lambda: small_model(activation), x, rng.integers(0, 3, 24), 5)
    assert len(fused) == 2
    for with_fusion, one_by_one in zip(*results):
        np.testing.assert_allclose(with_fusion, one_by_one, rtol=1e-5, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(pool=st.integers(1, 3), activation=st.sampled_from(["relu", None]), seed=seeds)
def test_gradients_through_the_fused_step_match_finite_differences(float64, backend_name, pool, activation, seed):
    import scratchnet
    scratchnet.set_random_seed(seed)
    model = small_model(activation, pool=pool)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert len(fused_nodes(model)) == 2
    rng = np.random.default_rng(seed)
    errors = gradcheck.check_model(model, rng.standard_normal((3, 10, 9, 2)), rng.integers(0, 3, 3))
    assert max(errors.values()) < gradcheck.TOLERANCE, errors


def test_what_is_not_fused():
    # overlapping windows, padded pooling, a conv output that is a model output or read twice
    assert len(fused_nodes(small_model(pool=3, strides=2))) == 1
    assert len(fused_nodes(small_model(padding="same"))) == 1
    x = layers.Input((8, 8, 1))
    conv = layers.Conv2D(2, 3, activation="relu")(x)
    pooled = layers.MaxPooling2D()(conv)
    assert fused_nodes(models.Model(x, [conv, pooled])) == []
    doubled = layers.Add()([layers.MaxPooling2D()(conv), layers.MaxPooling2D()(conv)])
    assert fused_nodes(models.Model(x, doubled)) == []
    assert len(fused_nodes(models.Model(x, pooled))) == 1


def test_an_activation_without_a_fused_kernel_runs_the_layers_one_by_one():
    # sigmoid is fusable in the plan (the layer may change activation later) but runs unfused
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 10, 9, 2)).astype(np.float32)
    model = small_model("sigmoid")
    fused = model.predict(x, verbose=0)
    with fusion.enabled(False):
        np.testing.assert_array_equal(fused, model.predict(x, verbose=0))


def test_a_backend_without_fused_kernels_runs_the_layers_one_by_one(monkeypatch):
    # as the GPU backend does (it has no conv2d_maxpool_forward): same results, through the layers
    import scratchnet
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 10, 9, 2)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    results = []
    for fused_kernels in (True, False):
        scratchnet.set_random_seed(4)
        model = small_model()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        if not fused_kernels:
            monkeypatch.setattr(model.backend, "conv2d_maxpool_forward", None)
        out, tape = model.run_graph(x, training=True)
        assert [type(ctx).__name__ for node, _, ctx in tape if isinstance(node, FusedNode)] == \
            (["FusedContext", "FusedContext"] if fused_kernels else ["LayersContext", "LayersContext"])
        model.train_on_batch(x, y)
        results.append([out] + model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("relu", ["layer", "activation"])
def test_batchnorm_then_relu_runs_fused_and_equals_the_layers(backend_name, relu):
    # training (batch statistics, moving statistics stored), then inference, fused and not
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 6, 6, 3)).astype(np.float32)

    def build():
        return models.Sequential([layers.Input((6, 6, 3)), layers.Conv2D(4, 3, use_bias=False),
                                  layers.BatchNormalization(),
                                  layers.ReLU() if relu == "layer" else layers.Activation("relu"),
                                  layers.GlobalAveragePooling2D(), layers.Dense(2, activation="softmax")])
    results, fused = trained_fused_and_not(build, x, rng.integers(0, 2, 16), 6)
    assert [type(n.layer).__name__ for n in fused] == ["BatchNormReLU"]
    for with_fusion, one_by_one in zip(*results):
        np.testing.assert_allclose(with_fusion, one_by_one, rtol=1e-6, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(training=st.booleans(), seed=seeds)
def test_gradients_through_batchnorm_relu_match_finite_differences(float64, backend_name, training, seed):
    import scratchnet
    scratchnet.set_random_seed(seed)
    model = models.Sequential([layers.Input((5, 5, 2)), layers.Conv2D(3, 2), layers.BatchNormalization(),
                               layers.ReLU(), layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert len(fused_nodes(model)) == 1
    if not training:     # fixed statistics that are not the batch's
        model.layers[1].params["moving_mean"][...] = 0.1
        model.layers[1].params["moving_variance"][...] = 1.7
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((4, 5, 5, 2)), rng.integers(0, 2, 4)
    if training:
        errors = gradcheck.check_model(model, x, y)
    else:
        model.layers[1].trainable = False      # a frozen BatchNormalization runs on its moving statistics
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        errors = gradcheck.check_model(model, x, y)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors


def test_leaky_or_capped_relus_are_not_fused():
    for relu in (layers.ReLU(max_value=6.0), layers.LeakyReLU(), layers.ReLU(negative_slope=0.1)):
        model = models.Sequential([layers.Input((4, 4, 2)), layers.BatchNormalization(), relu])
        assert fused_nodes(model) == []


def test_a_frozen_base_called_in_inference_mode_trains_its_head(backend_name):
    # the Keras fine-tuning recipe: base(x, training=False) with base.trainable = False; the fused
    # conv + pool ran without keeping its argmax, and the backward pass still goes through it
    import scratchnet
    rng = np.random.default_rng(8)
    x = rng.standard_normal((8, 10, 9, 2)).astype(np.float32)
    y = rng.integers(0, 2, 8)
    results = []
    for fuse in (True, False):
        with fusion.enabled(fuse):
            scratchnet.set_random_seed(9)
            inputs = layers.Input((10, 9, 2))
            base = models.Sequential([layers.Input((10, 9, 2)), layers.Conv2D(3, 3, activation="relu"),
                                      layers.MaxPooling2D(2), layers.Flatten()])
            base.trainable = False
            model = models.Model(inputs, layers.Dense(2, activation="softmax")(
                layers.Dense(4, activation="relu")(base(inputs, training=False))))
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
            loss, grads, dx = model.compute_gradients(x, y, need_dx=True)
            results.append([dx] + model.get_weights())
            if fuse:
                assert len(fused_nodes(base)) == 1
    for with_fusion, one_by_one in zip(*results):
        np.testing.assert_allclose(with_fusion, one_by_one, rtol=1e-5, atol=1e-6)


def test_a_conv2d_subclass_is_not_fused():
    class Doubled(layers.Conv2D):
        def _forward(self, x, training):
            y, ctx = super()._forward(x, training)
            return 2 * y, ctx
    model = models.Sequential([layers.Input((6, 6, 1)), Doubled(2, 3), layers.MaxPooling2D()])
    assert fused_nodes(model) == []


def test_a_relu_changed_after_the_model_was_built_is_honoured():
    from scratchnet import activations
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5, 5, 2)).astype(np.float32)
    relu = layers.Activation("relu")
    model = models.Sequential([layers.Input((5, 5, 2)), layers.BatchNormalization(), relu])
    assert len(fused_nodes(model)) == 1
    relu.activation = activations.get("tanh")
    fused = model.predict(x, verbose=0)
    with fusion.enabled(False):
        np.testing.assert_array_equal(fused, model.predict(x, verbose=0))
    assert (fused < 0).any()


def test_a_conv_activation_changed_between_fused_calls_is_honoured():
    # the fused step keeps its configuration between calls: a change of the convolution's
    # activation after a call must reach the next one
    from scratchnet import activations
    x = np.random.default_rng(5).standard_normal((2, 6, 6, 1)).astype(np.float32)
    conv = layers.Conv2D(3, 3, activation="relu")
    model = models.Sequential([layers.Input((6, 6, 1)), conv, layers.MaxPooling2D()])
    assert len(fused_nodes(model)) == 1
    rectified = model.predict(x, verbose=0)
    conv.activation = activations.get("linear")
    fused = model.predict(x, verbose=0)
    with fusion.enabled(False):
        np.testing.assert_array_equal(fused, model.predict(x, verbose=0))
    assert (rectified >= 0).all() and (fused < 0).any()


@given(first=st.integers(0, 50), bands=st.integers(1, 400), per=st.integers(1, 120))
def test_band_chunks_cover_the_bands_in_as_few_and_even_chunks_as_fit(first, bands, per):
    from scratchnet.kernels.im2col_gemm import band_chunks
    chunks = list(band_chunks(first, first + bands, per))
    assert chunks[0][0] == first and chunks[-1][1] == first + bands
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    sizes = [q1 - q0 for q0, q1 in chunks]
    assert max(sizes) <= per and max(sizes) - min(sizes) <= 1 and len(chunks) == -(-bands // per)
