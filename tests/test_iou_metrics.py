"""The intersection-over-union metrics (IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU):
Keras 3's classes, arguments, names and results, standalone over several batches and in
fit / evaluate, compared with real Keras where it is installed."""
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet as sn
from scratchnet import metrics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


def batches(kind, k, seed, steps, weighted):
    """``steps`` (y_true, y_pred, sample_weight) batches of per-pixel targets for ``kind``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        n, h, w = rng.integers(1, 4, 3)
        labels = rng.integers(-1, k + 1, (n, h, w))          # -1 and k: out of range, counted for nothing
        scores = rng.random((n, h, w, k)).astype(np.float32)
        weights = rng.integers(0, 4, (n, h, w)) if weighted and rng.random() < 0.7 else None
        if kind == "binary":
            out.append((rng.integers(0, 2, (n, h, w, 1)), rng.random((n, h, w, 1)).astype(np.float32),
                        None if weights is None else weights[..., None]))
        elif kind == "sparse":
            out.append((labels, rng.integers(-1, k + 1, (n, h, w)), weights))
        elif kind == "dense-pred":
            out.append((labels, scores, weights))
        else:       # one-hot targets
            out.append((np.eye(k, dtype=np.float32)[np.clip(labels, 0, k - 1)], scores, weights))
    return out


CONFIGS = st.sampled_from(["IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU"])


@settings(max_examples=25, deadline=None)
@given(name=CONFIGS, k=st.integers(2, 5), seed=st.integers(0, 2**16), steps=st.integers(1, 4),
       weighted=st.booleans(), ignore=st.sampled_from([None, 0, 1, -1]), data=st.data())
def test_results_after_several_batches_equal_kerass(name, k, seed, steps, weighted, ignore, data):
    keras = real_keras()
    kwargs = {}
    if name == "BinaryIoU":
        k = 2
        kwargs["threshold"] = data.draw(st.sampled_from([0.0, 0.3, 0.5, 0.9]))
        kwargs["target_class_ids"] = data.draw(st.sampled_from([(0,), (1,), (0, 1)]))
        kind = "binary"
    else:
        kwargs = {"num_classes": k, "ignore_class": ignore}
        if name in ("IoU", "OneHotIoU"):
            kwargs["target_class_ids"] = data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k,
                                                            unique=True))
        if name.startswith("OneHot"):
            kind = "onehot"
        else:
            kind = data.draw(st.sampled_from(["sparse", "dense-pred"]))
            kwargs["sparse_y_pred"] = kind == "sparse"
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for y_true, y_pred, weights in batches(kind, k, seed, steps, weighted):
        ours.update_state(y_true, y_pred, sample_weight=weights)
        theirs.update_state(y_true, y_pred, sample_weight=weights)
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6, abs=1e-7)
    np.testing.assert_array_equal(ours.total_cm, np.asarray(theirs.total_cm.value))
    ours.reset_state()
    assert ours.result() == 0.0


def test_names_defaults_and_configs_are_kerass():
    keras = real_keras()
    cases = {"IoU": dict(num_classes=3, target_class_ids=[0, 2]), "MeanIoU": dict(num_classes=3),
             "BinaryIoU": {}, "OneHotIoU": dict(num_classes=3, target_class_ids=[1]),
             "OneHotMeanIoU": dict(num_classes=4, ignore_class=0)}
    names = {"IoU": "io_u", "MeanIoU": "mean_io_u", "BinaryIoU": "binary_io_u", "OneHotIoU": "one_hot_io_u",
             "OneHotMeanIoU": "one_hot_mean_io_u"}
    for name, kwargs in cases.items():
        ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
        assert ours.name == names[name] and theirs.name.startswith(names[name])
        config, expected = ours.get_config(), theirs.get_config()
        expected["name"] = ours.name
        assert {key: config[key] for key in expected} == {key: expected[key] for key in expected}, name
        assert set(config) == set(expected), name
    assert metrics.MeanIoU(3, name="miou").name == "miou"
    assert metrics.BinaryIoU().target_class_ids == [0, 1] and metrics.BinaryIoU().threshold == 0.5
    assert metrics.OneHotMeanIoU(3).sparse_y_true is False and metrics.MeanIoU(3).sparse_y_pred is True


def test_bad_arguments_and_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match=r"Target class id 3 is out of range, which is \[0, 3\)"):
        metrics.IoU(3, target_class_ids=[0, 3])
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        metrics.MeanIoU(0)
    m = metrics.MeanIoU(3)
    with pytest.raises(ValueError, match=r"6 true classes \(targets of shape \(2, 3\)\) but 4 predicted"):
        m.update_state(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"sample weights of shape \(5,\) do not fit targets of shape \(2, 3\)"):
        m.update_state(np.zeros((2, 3)), np.zeros((2, 3)), sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="unknown metric 'mean_io_u'"):   # Keras too needs num_classes
        metrics.get("mean_io_u", sn.losses.SparseCategoricalCrossentropy(), (4, 4, 3))


def test_matrix_dtype_weights_and_result_type_follow_keras():
    # the default matrix is of integers: float weights are cut, with Keras's warning; float32 keeps them
    y, p = np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]])
    w = np.array([[1.5, 0.7], [2.2, 1.0]])
    m = metrics.MeanIoU(2)
    with pytest.warns(UserWarning, match="weight as `float`, but dtype is `int`"):
        m.update_state(y, p, sample_weight=w)
    np.testing.assert_array_equal(m.total_cm, [[1, 0], [2, 1]])
    assert m.total_cm.dtype == np.int64
    exact = metrics.MeanIoU(2, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact.update_state(y, p, sample_weight=w)
    np.testing.assert_allclose(exact.total_cm, [[1.5, 0], [2.2, 1.7]], rtol=1e-6)
    iou0, iou1 = 1.5 / (1.5 + 2.2), 1.7 / (1.7 + 2.2)
    assert exact.result() == pytest.approx((iou0 + iou1) / 2, rel=1e-6)
    assert np.float32(exact.result()) == exact.result()      # float32 as Keras returns it
    # per-sample weights with per-pixel targets weigh every pixel of their sample
    per_sample = metrics.MeanIoU(2, dtype="float32")
    per_sample.update_state(y, p, sample_weight=np.array([2.0, 0.5]))
    np.testing.assert_allclose(per_sample.total_cm, [[2.0, 0], [0.5, 2.5]])


def seg_models(keras, metric_list, k=3):
    def build(lib):
        return lib.Sequential([lib.Input((4, 5, 2)), lib.layers.Conv2D(k, 3, padding="same", activation="softmax")])
    theirs, ours = build(keras), build(sn)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(lib.optimizers.SGD(0.3), "sparse_categorical_crossentropy", metrics=metric_list(lib))
    return theirs, ours


def test_fit_and_evaluate_logs_equal_kerass_with_a_fused_softmax_head():
    # the compiled model hands its metrics logits (the softmax went into the loss); the argmax
    # over the classes is the logits', and OneHotMeanIoU's one-hot targets come from the labels
    keras = real_keras()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 4, 5, 2)).astype(np.float32) * 3
    y = rng.integers(0, 3, (8, 4, 5))
    theirs, ours = seg_models(keras, lambda lib: [lib.metrics.MeanIoU(3, name="miou_sparse", sparse_y_pred=False,
                                                                      ignore_class=2),
                                                  lib.metrics.IoU(3, [1, 2], ignore_class=0, sparse_y_pred=False),
                                                  lib.metrics.MeanIoU(3, sparse_y_pred=False)])
    runs = [m.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0, validation_data=(x[:5], y[:5]))
            for m in (theirs, ours)]
    assert set(runs[1].history) == {"loss", "miou_sparse", "io_u", "mean_io_u", "val_loss", "val_miou_sparse",
                                    "val_io_u", "val_mean_io_u"}
    for key, values in runs[1].history.items():
        k_key = next(t for t in runs[0].history if t == key or t.startswith(key + "_") and t.rsplit("_", 1)[1].isdigit())
        np.testing.assert_allclose(values, runs[0].history[k_key], rtol=2e-5, atol=1e-6, err_msg=key)
    logs = [m.evaluate(x, y, batch_size=4, verbose=0, return_dict=True) for m in (theirs, ours)]
    assert list(logs[1]) == ["loss", "miou_sparse", "io_u", "mean_io_u"]
    for (_, a), (_, b) in zip(sorted(logs[0].items()), sorted(logs[1].items())):
        assert b == pytest.approx(a, rel=2e-5, abs=1e-6)


def test_sparse_predictions_from_a_softmax_head_are_refused_as_in_keras():
    # MeanIoU's default sparse_y_pred=True wants class ids; an (N, H, W, K) output has K scores
    # per pixel (Keras fails on the shapes too): the message says how many of each there were
    rng = np.random.default_rng(0)
    model = sn.Sequential([sn.Input((4, 5, 2)), sn.layers.Conv2D(3, 1, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[metrics.MeanIoU(3)])
    with pytest.raises(ValueError, match=r"mean_io_u: 40 true classes \(targets of shape \(2, 4, 5\)\) but 120 "
                                         r"predicted ones \(outputs of shape \(2, 4, 5, 3\)\)"):
        model.fit(rng.standard_normal((2, 4, 5, 2)), rng.integers(0, 3, (2, 4, 5)), verbose=0)
