"""Per-pixel targets (issue 25, part 3): the losses of a segmentation model's (N, H, W, K)
outputs, their per-pixel sample weights and class weights, and one training step of a small
segmentation model, each compared with real Keras 3 where it is installed."""
import itertools
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet as sn
from scratchnet import gradcheck, losses, metrics
from scratchnet.training import data_adapter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def case(kind, shape, seed, logits):
    """(loss, targets, outputs) for an (N, H, W, K) output; ``kind`` names the target form."""
    rng = np.random.default_rng(seed)
    n, h, w, k = shape
    if kind.startswith("binary"):
        z = rng.standard_normal((n, h, w, 1)) * 2
        y = rng.integers(0, 2, (n, h, w) if kind == "binary-hw" else (n, h, w, 1)).astype(np.float64)
        return losses.BinaryCrossentropy(from_logits=logits), y, z if logits else 1 / (1 + np.exp(-z))
    z = rng.standard_normal((n, h, w, k)) * 2
    p = z if logits else softmax(z)
    labels = rng.integers(0, k, (n, h, w))
    if kind == "sparse-hw":
        return losses.SparseCategoricalCrossentropy(from_logits=logits), labels, p
    if kind == "sparse-hw1":
        return losses.SparseCategoricalCrossentropy(from_logits=logits), labels[..., None], p
    if kind == "onehot":
        return losses.CategoricalCrossentropy(from_logits=logits), np.eye(k)[labels], p
    dense = rng.uniform(0, 1, (n, h, w, k))
    return (losses.MeanSquaredError() if kind == "mse" else losses.MeanAbsoluteError()), dense, p


KINDS = ["sparse-hw", "sparse-hw1", "onehot", "binary-hw", "binary-hw1", "mse", "mae"]
shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(2, 5))


def weights_of(form, shape, seed):
    n, h, w, _ = shape
    rng = np.random.default_rng(seed + 7)
    return {"none": None, "pixel": rng.uniform(0, 2, (n, h, w)), "pixel1": rng.uniform(0, 2, (n, h, w, 1))}[form]


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), shape=shapes, seed=st.integers(0, 2**16), logits=st.booleans(),
       form=st.sampled_from(["none", "pixel", "pixel1"]))
def test_pixel_loss_values_equal_kerass(kind, shape, seed, logits, form):
    keras = real_keras()
    loss, y, out = case(kind, shape, seed, logits)
    weights = weights_of(form, shape, seed)
    theirs = getattr(keras.losses, type(loss).__name__)(**({"from_logits": logits} if "crossentropy" in loss.name
                                                            else {}))
    y_keras = y
    if kind == "binary-hw" and weights is not None:
        y_keras = y[..., None]   # Keras 3 averages (N, H, W) binary targets over W first, and then cannot weigh pixels
    expected = float(theirs(y_keras, out.astype(np.float32), sample_weight=weights))
    assert loss(y, out.astype(np.float32), sample_weight=weights) == pytest.approx(expected, rel=2e-5, abs=2e-6)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), shape=shapes, seed=st.integers(0, 2**16), logits=st.booleans(),
       form=st.sampled_from(["none", "sample", "pixel"]))
def test_pixel_loss_gradient_matches_central_differences(kind, shape, seed, logits, form):
    loss, y, out = case(kind, shape, seed, logits)
    if kind in ("mse", "mae"):
        logits = False
    if kind == "mae":   # |p - y| has a kink at p == y: keep the outputs away from it
        out = np.where(np.abs(out - y) < 1e-3, y + 0.1, out)
    rng = np.random.default_rng(seed)
    weights = {"none": None, "sample": rng.uniform(0, 2, shape[0]), "pixel": rng.uniform(0, 2, shape[:3])}[form]
    prepared = loss.prepare_targets(y, out.shape, np.float64)

    def value():
        return loss.value_and_grad(prepared, out, from_logits=logits, sample_weight=weights)[0]

    total, analytic = loss.value_and_grad(prepared, out, from_logits=logits, sample_weight=weights)
    assert analytic.shape == out.shape and analytic.dtype == np.float64
    assert gradcheck.compare_with_differences(analytic, value, out, abs(total) + 1e-3, eps=1e-6) < 1e-5


def test_per_sample_weights_weigh_every_pixel_of_their_sample():
    # Keras 3 broadcasts (N,) weights against the last axis of the (N, H, W) losses (an error
    # unless N == W); here they weigh whole samples, the mean of per-pixel weights equal to them
    loss, y, p = case("sparse-hw", (3, 2, 4, 3), 0, False)
    w = np.array([0.5, 2.0, 1.0])
    per_pixel = np.broadcast_to(w[:, None, None], (3, 2, 4))
    assert loss(y, p, sample_weight=w) == pytest.approx(loss(y, p, sample_weight=per_pixel), rel=1e-12)
    assert losses.sparse_categorical_crossentropy(y, p).shape == (3, 2, 4)


def test_pixel_inputs_that_do_not_fit_say_what_was_expected():
    loss, y, p = case("sparse-hw", (2, 3, 4, 5), 0, False)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\).*\(2, 3, 4, 5\), got \(2, 3, 3\)"):
        loss(y[:, :, :3], p)
    bad = y.copy()
    bad[1, 2, 0], bad[0, 0, 1] = 9, -1
    with pytest.raises(ValueError, match=r"in \[0, 5\).*got -1 at sample 0, pixel \(0, 1\) \(2 label"):
        loss(bad, p)
    with pytest.raises(ValueError, match=r"shape \(2,\), or one per pixel, shape \(2, 3, 4\); got float64 of "
                                         r"shape \(2, 3\)"):
        loss(y, p, sample_weight=np.ones((2, 3)))
    with pytest.raises(ValueError, match="integer labels of shape"):
        losses.CategoricalCrossentropy()(y, p)


# ----- training a small segmentation model: scratchnet and Keras from the same weights ---------------

def seg_data(n=6, h=5, w=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, 2)).astype(np.float32)
    return x, rng.integers(0, k, (n, h, w)), rng.uniform(0, 2, (n, h, w)).astype(np.float32)


def seg_twins(keras, k=3, activation="softmax", loss="sparse_categorical_crossentropy", metric_list=None,
              weighted=None):
    def build(lib):
        return lib.Sequential([lib.Input((5, 4, 2)), lib.layers.Conv2D(4, 3, padding="same", activation="relu"),
                               lib.layers.Conv2D(k, 1, activation=activation)])
    theirs, ours = build(keras), build(sn)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(lib.optimizers.SGD(0.5), loss, metrics=metric_list(lib) if metric_list else None,
                      weighted_metrics=weighted(lib) if weighted else None)
    return theirs, ours


def assert_same(theirs, ours, history_theirs, history_ours, names):
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), rtol=2e-5, atol=2e-6)
    assert set(history_ours.history) == set(names)
    for key in names:    # Keras numbers its metrics' names ('mean_io_u_3'): compare the values in order
        k_key = next(t for t in history_theirs.history if t == key or t.startswith(key + "_") and
                     t[len(key) + 1:].isdigit())
        np.testing.assert_allclose(history_ours.history[key], history_theirs.history[k_key], rtol=2e-5, atol=2e-6,
                                   err_msg=key)


@pytest.mark.parametrize("weights", ["none", "pixel"])
def test_segmentation_step_equals_kerass(weights):
    keras = real_keras()
    x, y, w = seg_data()
    theirs, ours = seg_twins(keras, metric_list=lambda lib: ["accuracy", lib.metrics.MeanIoU(
        num_classes=3, sparse_y_pred=False)])
    kwargs = {"sample_weight": w} if weights == "pixel" else {}
    runs = [model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0, validation_data=(x[:3], y[:3]),
                      **kwargs) for model in (theirs, ours)]
    assert_same(theirs, ours, *runs, ["loss", "accuracy", "mean_io_u", "val_loss", "val_accuracy", "val_mean_io_u"])
    logs = [model.evaluate(x, y, verbose=0, return_dict=True, **kwargs) for model in (theirs, ours)]
    assert logs[1]["loss"] == pytest.approx(logs[0]["loss"], rel=1e-5)
    assert logs[1]["mean_io_u"] == pytest.approx(next(v for k, v in logs[0].items() if k.startswith("mean_io_u")),
                                                 rel=1e-5)
    steps = [model.train_on_batch(x[:4], y[:4], sample_weight=w[:4] if kwargs else None) for model in (theirs, ours)]
    np.testing.assert_allclose(steps[1], steps[0], rtol=1e-5)     # [loss, accuracy, mean_io_u] of the batch
    assert_same(theirs, ours, *runs, ["loss", "accuracy", "mean_io_u", "val_loss", "val_accuracy", "val_mean_io_u"])


def test_a_stream_of_batches_with_pixel_weights_trains_as_the_arrays():
    x, y, w = seg_data(n=8, seed=3)

    def build():
        sn.set_random_seed(1)
        model = sn.Sequential([sn.Input((5, 4, 2)), sn.layers.Conv2D(3, 3, padding="same", activation="softmax")])
        model.compile(sn.optimizers.SGD(0.3), "sparse_categorical_crossentropy", metrics=["accuracy"],
                      weighted_metrics=[metrics.MeanIoU(3, sparse_y_pred=False, dtype="float32")])
        return model
    arrays, stream = build(), build()
    stream.set_weights(arrays.get_weights())
    a = arrays.fit(x, y, sample_weight=w[..., None], batch_size=4, epochs=2, shuffle=False, verbose=0)
    batches = [(x[i:i + 4], y[i:i + 4, :, :, None], w[i:i + 4]) for i in (0, 4)]
    b = stream.fit(itertools.cycle(batches), steps_per_epoch=2, epochs=2, verbose=0)
    for key in a.history:
        np.testing.assert_allclose(b.history[key], a.history[key], rtol=1e-6, err_msg=key)
    for p, q in zip(arrays.get_weights(), stream.get_weights()):
        np.testing.assert_allclose(q, p, rtol=1e-6)
    with pytest.raises(ValueError, match=r"a batch of the training data must hold one number per sample, shape "
                                         r"\(4,\), or one per pixel, shape \(4, 5, 4\); got float32 of shape \(4, 5\)"):
        stream.fit(iter([(x[:4], y[:4], w[:4, :, 0])]), verbose=0)


def test_one_hot_and_binary_segmentation_steps_equal_kerass():
    keras = real_keras()
    x, y, w = seg_data(seed=1)
    theirs, ours = seg_twins(keras, loss="categorical_crossentropy", metric_list=lambda lib: [
        "accuracy", lib.metrics.OneHotMeanIoU(num_classes=3)], weighted=lambda lib: ["accuracy"])
    onehot = np.eye(3, dtype=np.float32)[y]
    runs = [model.fit(x, onehot, batch_size=3, epochs=1, shuffle=False, verbose=0, sample_weight=w)
            for model in (theirs, ours)]
    assert_same(theirs, ours, *runs, ["loss", "accuracy", "one_hot_mean_io_u", "weighted_accuracy"])
    theirs, ours = seg_twins(keras, k=1, activation="sigmoid", loss="binary_crossentropy", metric_list=lambda lib: [
        "accuracy", lib.metrics.BinaryIoU(target_class_ids=[1], threshold=0.4)])
    binary = (y[..., None] > 0).astype(np.float32)     # (N, H, W, 1) targets, as Keras weighs them per pixel
    runs = [model.fit(x, binary, batch_size=6, epochs=2, shuffle=False, verbose=0, sample_weight=w)
            for model in (theirs, ours)]
    assert_same(theirs, ours, *runs, ["loss", "accuracy", "binary_io_u"])


def test_class_weight_per_pixel_weighs_each_pixel_by_its_class():
    # Keras 3's fit raises a TypeError for class_weight with (N, H, W) targets; scratchnet weighs
    # each pixel by its class, which Keras does given those weights as (N, H, W) sample weights
    keras = real_keras()
    x, y, _ = seg_data(seed=2)
    class_weight = {0: 0.25, 2: 3.0}
    per_pixel = np.vectorize(lambda c: class_weight.get(int(c), 1.0))(y).astype(np.float32)
    theirs, ours = seg_twins(keras, metric_list=lambda lib: ["accuracy"])
    with pytest.raises(TypeError):
        theirs.fit(x, y, epochs=1, verbose=0, class_weight=class_weight)
    runs = [theirs.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0, sample_weight=per_pixel),
            ours.fit(x, y[..., None], batch_size=6, epochs=1, shuffle=False, verbose=0, class_weight=class_weight)]
    assert_same(theirs, ours, *runs, ["loss", "accuracy"])
    onehot = np.eye(3)[y]
    for labels in (y, y[..., None], onehot):
        np.testing.assert_array_equal(data_adapter.class_weight_to_sample_weights(
            labels, class_weight, np.float32, (5, 4, 3)), per_pixel)
    # one label per sample keeps one weight per sample, as in Keras
    np.testing.assert_array_equal(data_adapter.class_weight_to_sample_weights(
        np.array([0, 1, 2]), class_weight, np.float32, (3,)), [0.25, 1.0, 3.0])


def test_bad_segmentation_data_is_refused_before_any_weight_changes():
    x, y, w = seg_data()
    model = sn.Sequential([sn.Input((5, 4, 2)), sn.layers.Conv2D(3, 1, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[metrics.MeanIoU(3)])
    before = [a.copy() for a in model.get_weights()]
    bad = y.copy()
    bad[4, 1, 2] = 3
    cases = [((x, y[:, :4]), r"\(6, 5, 4\).*\(6, 5, 4, 3\), got \(6, 4, 4\)"),
             ((x, bad), r"got 3 at sample 4, pixel \(1, 2\) \(1 label\(s\) out of range"),
             ((x, y, w[:, :3]), r"one per pixel, shape \(6, 5, 4\); got float32 of shape \(6, 3, 4\)"),
             ((x, y, w[:5]), r"per sample, shape \(6,\).*got float32 of shape \(5, 5, 4\)")]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            model.fit(*args[:2], sample_weight=args[2] if len(args) == 3 else None, epochs=1, verbose=0)
        with pytest.raises(ValueError, match=message):
            model.train_on_batch(*args)
    with pytest.raises(ValueError, match=r"the validation data: .*got 3 at sample 1, pixel \(1, 2\)"):
        model.fit(x, bad, validation_split=0.5, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(["SparseCategoricalAccuracy", "CategoricalAccuracy", "BinaryAccuracy",
                             "MeanSquaredError", "MeanAbsoluteError"]),
       shape=shapes, seed=st.integers(0, 2**16), form=st.sampled_from(["none", "sample", "pixel", "pixel1"]))
def test_pixel_metrics_over_several_batches_equal_kerass(name, shape, seed, form):
    # Keras's Mean: a sample's value is the mean over its pixels, weighed by (N,) weights, or
    # per pixel by (N, H, W[, 1]) ones (then sum(w * value) / sum(w))
    keras = real_keras()
    ours, theirs = getattr(metrics, name)(), getattr(keras.metrics, name)()
    rng = np.random.default_rng(seed)
    n, h, w, k = shape
    for _ in range(3):
        scores = rng.random((n, h, w, 1 if name == "BinaryAccuracy" else k)).astype(np.float32)
        labels = rng.integers(0, k, (n, h, w))
        y = {"SparseCategoricalAccuracy": labels, "CategoricalAccuracy": np.eye(k)[labels],
             "BinaryAccuracy": rng.integers(0, 2, (n, h, w, 1))}.get(name, rng.random(scores.shape))
        weights = {"none": None, "sample": rng.uniform(0, 2, n), "pixel": rng.uniform(0, 2, (n, h, w)),
                   "pixel1": rng.uniform(0, 2, (n, h, w, 1))}[form]
        ours.update_state(y, scores, sample_weight=weights)
        # (N, H, W, 1) weights: Keras's metrics fail on some shapes of them; they are the (N, H, W) ones
        theirs.update_state(y, scores, sample_weight=weights[..., 0] if form == "pixel1" else weights)
    assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-5, abs=1e-6)
