"""The re-entrant core: a call's state lives in the context it returns, never on a layer, so
one model serves many threads and two models train side by side undisturbed."""
import threading

import numpy as np
import pytest

import scratchnet
from scratchnet import layers, models
from scratchnet.kernels import numba_lanes
from scratchnet.train import mnist_model


@pytest.mark.parametrize("parallel_kernels", [False, True])
def test_eight_threads_predicting_with_one_model_get_what_one_thread_gets(monkeypatch, parallel_kernels):
    if parallel_kernels:   # let even these small batches take the parallel (threaded) kernels
        monkeypatch.setattr(numba_lanes, "PARALLEL_MIN_ELEMENTS", 0)
    model = mnist_model()
    rng = np.random.default_rng(0)
    batches = [rng.random((8 + i, 28, 28, 1), dtype=np.float32) for i in range(8)]
    expected = [model.predict(b, verbose=0) for b in batches]
    results = [[] for _ in batches]

    def work(i):
        for _ in range(20):
            results[i].append(model.predict(batches[i], verbose=0))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, outs in enumerate(results):
        assert len(outs) == 20
        for out in outs:
            np.testing.assert_array_equal(out, expected[i])


def small_model(seed):
    scratchnet.set_random_seed(seed)
    model = models.Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 2)),
                               layers.MaxPooling2D(2), layers.Flatten(),
                               layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_two_models_training_interleaved_are_unaffected_by_each_other():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((6, 8, 8, 2)).astype(np.float32) for _ in range(4)]
    ys = [rng.integers(0, 3, 6) for _ in range(4)]
    alone = []
    for seed in (1, 2):
        model = small_model(seed)
        for x, y in zip(xs, ys):
            model.train_on_batch(x, y)
        alone.append(model.get_weights())
    a, b = small_model(1), small_model(2)
    for x, y in zip(xs, ys):
        a.train_on_batch(x, y)
        b.train_on_batch(x[::-1], (y[::-1] + 1) % 3)   # different data in between
        b.train_on_batch(x, y)
    for w_alone, w_interleaved in zip(alone[0], a.get_weights()):
        np.testing.assert_array_equal(w_alone, w_interleaved)


def test_a_layer_keeps_nothing_of_a_call():
    layer = layers.Dense(3, activation="relu")
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    before = dict(vars(layer))
    y, ctx = layer.forward(x, training=True)
    layer.backward(np.ones_like(y), ctx)
    after = dict(vars(layer))
    built = {"params", "built", "input_shape", "output_shape", "_backend_name", "_configs"}
    assert {k for k in after if after[k] is not before.get(k)} <= built


def test_predict_keeps_no_call_contexts():
    # a prediction needs no backward pass: each layer's input is freed once the next layer has run,
    # instead of every layer's input staying alive in the tape until the end of the batch
    import tracemalloc
    from scratchnet import layers, models
    model = models.Sequential([layers.Input((512,))] + [layers.Dense(512, activation="relu") for _ in range(8)])
    x = np.ones((256, 512), np.float32)          # 0.5 MB per activation
    model.predict(x, batch_size=256, verbose=0)
    tracemalloc.start()
    try:
        model.predict(x, batch_size=256, verbose=0)
        model(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * 2**20, f"{peak / 2**20:.1f} MB traced at the peak of a prediction"


def test_a_prediction_through_a_line_of_layers_skips_the_value_table_and_computes_the_same(monkeypatch):
    from scratchnet import execute, fusion, regularizers
    line = mnist_model()
    inputs = layers.Input((8, 8, 2))
    a = layers.Conv2D(3, 3, padding="same")(inputs)
    forked = models.Model(inputs, layers.Add()([a, layers.Conv2D(3, 3, padding="same")(a)]))
    penalised = models.Sequential([layers.Input((5,)), layers.Dense(3, activity_regularizer=regularizers.L1(0.1))])
    for fused in (True, False):
        with fusion.enabled(fused):
            assert execute.plan_for(line.graph, fused).chain(line.graph) is not None
            assert execute.plan_for(forked.graph, fused).chain(forked.graph) is None
            assert execute.plan_for(penalised.graph, fused).chain(penalised.graph) is None
            x = np.random.default_rng(0).random((7, 28, 28, 1)).astype(np.float32)
            quick = line.predict(x, verbose=0)
            monkeypatch.setattr(execute.Plan, "chain", lambda plan, graph: None)
            np.testing.assert_array_equal(line.predict(x, verbose=0), quick)
            monkeypatch.undo()
    x, y = np.ones((2, 5), np.float32), np.zeros((2, 3), np.float32)
    penalised.compile("sgd", "mse")
    out = penalised.predict(x, verbose=0)                  # the activity penalty still counts in evaluate:
    expected = (out ** 2).mean() + 0.1 * np.abs(out).sum() / 2
    assert penalised.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
