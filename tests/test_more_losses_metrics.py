"""Issue 26 part 7: label smoothing, the focal cross-entropies, Huber and KL divergence (values
against Keras 3, gradients against central differences in float64, the fused-logits forms
against activation-then-loss, one SGD step of a model), and the classification metrics (top-k,
Precision, Recall, AUC, F1Score) and confusion_matrix against Keras / TensorFlow."""
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet as sn
from scratchnet import gradcheck, losses
from scratchnet.activations import get as activation
from oracles import dense_twins as twin

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
seeds = st.integers(0, 2**31 - 1)
shapes = st.tuples(st.integers(1, 4), st.integers(2, 5))
few = settings(max_examples=15, deadline=None)


def real_keras():
    return pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")


# (our loss, Keras class name, settings, target kind, fused activation)
CASES = {
    "bce_smooth": (losses.BinaryCrossentropy, "BinaryCrossentropy", {"label_smoothing": 0.2}, "binary", "sigmoid"),
    "cce_smooth": (losses.CategoricalCrossentropy, "CategoricalCrossentropy", {"label_smoothing": 0.3}, "onehot",
                   "softmax"),
    "bfocal": (losses.BinaryFocalCrossentropy, "BinaryFocalCrossentropy", {}, "binary", "sigmoid"),
    "bfocal_balanced": (losses.BinaryFocalCrossentropy, "BinaryFocalCrossentropy",
                        {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.5, "label_smoothing": 0.1},
                        "binary", "sigmoid"),
    "cfocal": (losses.CategoricalFocalCrossentropy, "CategoricalFocalCrossentropy", {}, "onehot", "softmax"),
    "cfocal_set": (losses.CategoricalFocalCrossentropy, "CategoricalFocalCrossentropy",
                   {"alpha": 0.6, "gamma": 3.0, "label_smoothing": 0.2}, "onehot", "softmax"),
    "cfocal_gamma0": (losses.CategoricalFocalCrossentropy, "CategoricalFocalCrossentropy", {"gamma": 0.0},
                      "onehot", "softmax"),
    "huber": (losses.Huber, "Huber", {"delta": 0.7}, "real", None),
    "kld": (losses.KLDivergence, "KLDivergence", {}, "distribution", None),
}
FUSED = [c for c in CASES if CASES[c][4]]


def _targets(kind, n, k, rng):
    if kind == "binary":
        return rng.integers(0, 2, (n, k)).astype(float)
    if kind == "onehot":
        return np.eye(k)[rng.integers(0, k, n)]
    if kind == "distribution":
        return activation("softmax")(rng.standard_normal((n, k)))
    return rng.standard_normal((n, k))


def _case(case, shape, seed):
    cls, _, kwargs, kind, act = CASES[case]
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape) * 2
    y = _targets(kind, *shape, rng)
    p = activation(act)(z) if act else (activation("softmax")(z) if kind == "distribution" else z)
    return cls, kwargs, y, z, p


@pytest.mark.parametrize("case", list(CASES))
@given(shapes, seeds)
@few
def test_gradients_match_central_differences_in_float64(case, shape, seed):
    cls, kwargs, y, z, p = _case(case, shape, seed)
    assert gradcheck.check_loss(cls(**kwargs), y, p, from_logits=False) < 1e-6
    if CASES[case][4]:
        assert gradcheck.check_loss(cls(from_logits=True, **kwargs), y, z, from_logits=True) < 1e-6


@pytest.mark.parametrize("case", FUSED)
@given(shapes, seeds)
@few
def test_fused_form_equals_activation_then_loss(case, shape, seed):
    cls, kwargs, y, z, p = _case(case, shape, seed)
    loss = cls(**kwargs)
    y = loss.prepare_targets(y, z.shape, np.float64)
    fused_value, fused_grad = loss.value_and_grad(y, z, from_logits=True)
    plain_value, grad_p = loss.value_and_grad(y, p, from_logits=False)
    assert fused_value == pytest.approx(plain_value, rel=1e-9)
    np.testing.assert_allclose(activation(CASES[case][4]).backward(grad_p, p), fused_grad, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("case", list(CASES))
@given(st.tuples(st.integers(1, 4), st.integers(2, 5)), seeds, st.booleans())
@few
def test_values_equal_keras(case, shape, seed, weighted):
    keras = real_keras()
    cls, kwargs, y, z, p = _case(case, shape, seed)
    y, z, p = y.astype(np.float32), z.astype(np.float32), p.astype(np.float32)
    w = np.random.default_rng(seed).uniform(0, 2, shape[0]).astype(np.float32) if weighted else None
    theirs = getattr(keras.losses, CASES[case][1])(**kwargs)
    ours = cls(**kwargs)
    assert ours.name == theirs.name
    np.testing.assert_allclose(ours(y, p, sample_weight=w), float(theirs(y, p, sample_weight=w)), rtol=2e-5,
                               atol=1e-6)
    if CASES[case][4]:
        logit_kwargs = {**kwargs, "from_logits": True}
        np.testing.assert_allclose(cls(**logit_kwargs)(y, z, sample_weight=w),
                                   float(getattr(keras.losses, CASES[case][1])(**logit_kwargs)(y, z, sample_weight=w)),
                                   rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name, keras_name, kwargs", [
    ("binary_crossentropy", "binary_crossentropy", {"label_smoothing": 0.2, "from_logits": True}),
    ("categorical_crossentropy", "categorical_crossentropy", {"label_smoothing": 0.1}),
    ("binary_focal_crossentropy", "binary_focal_crossentropy", {"apply_class_balancing": True, "gamma": 1.0}),
    ("categorical_focal_crossentropy", "categorical_focal_crossentropy", {"from_logits": True, "alpha": 0.5}),
    ("huber", "huber", {"delta": 0.5}), ("kl_divergence", "kl_divergence", {}), ("kld", "kl_divergence", {})])
def test_function_forms_equal_keras_per_sample(name, keras_name, kwargs):
    keras = real_keras()
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 2, 1, 1]]
    p = z if kwargs.get("from_logits") or name == "huber" else activation("softmax")(z)
    np.testing.assert_allclose(getattr(losses, name)(y, p, **kwargs),
                               np.asarray(getattr(keras.losses, keras_name)(y, p, **kwargs)), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("alias, cls", [("huber", losses.Huber), ("kl_divergence", losses.KLDivergence),
                                        ("kld", losses.KLDivergence),
                                        ("binary_focal_crossentropy", losses.BinaryFocalCrossentropy),
                                        ("categorical_focal_crossentropy", losses.CategoricalFocalCrossentropy)])
def test_string_aliases(alias, cls):
    assert type(losses.get(alias)) is cls


def test_bad_settings_are_refused_saying_what_was_expected():
    with pytest.raises(ValueError, match="label_smoothing must be a number in \\[0, 1\\], got 1.5"):
        losses.BinaryCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="gamma must be a number >= 0, got -1"):
        losses.BinaryFocalCrossentropy(gamma=-1)
    with pytest.raises(ValueError, match="delta must be a number >= 0"):
        losses.Huber(delta="big")


def test_configs_rebuild_the_same_loss():
    for loss in (losses.BinaryFocalCrossentropy(True, 0.4, 1.0, label_smoothing=0.1), losses.Huber(0.3),
                 losses.CategoricalCrossentropy(label_smoothing=0.2), losses.KLDivergence()):
        again = losses.get_class(type(loss).__name__)(**loss.get_config())
        assert again.get_config() == loss.get_config()


@pytest.mark.parametrize("case, head", [(c, h) for c in CASES for h in ("fused", "logits")
                                        if h == "fused" or CASES[c][4]])
def test_one_sgd_step_equals_keras(case, head):
    """'fused': the model ends in the loss's activation (the loss takes its logits); 'logits':
    no activation and from_logits=True; Huber and KL divergence on a linear / softmax head."""
    keras = real_keras()
    _, _, kwargs, _, act = CASES[case]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = _targets(CASES[case][3], 8, 3, rng).astype(np.float32)
    if head == "logits":
        kwargs, act = {**kwargs, "from_logits": True}, None
    elif act is None:
        act = "softmax" if case == "kld" else None
    theirs, ours = twin(keras, act, 3)
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(lib.optimizers.SGD(0.5), getattr(lib.losses, CASES[case][1])(**kwargs))
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.history.history["loss"], theirs.history.history["loss"], rtol=1e-5)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), rtol=1e-5, atol=1e-6)


# ----- metrics ---------------------------------------------------------------------------------
from scratchnet import metrics  # noqa: E402

METRICS = {   # name: (settings, target kind, output activation)
    "TopKCategoricalAccuracy": ({"k": 2}, "onehot", "softmax"),
    "SparseTopKCategoricalAccuracy": ({"k": 2}, "sparse", "softmax"),
    "Precision": ({}, "binary", "sigmoid"),
    "Recall": ({"thresholds": 0.3}, "binary", "sigmoid"),
    "Precision-topk-class": ({"top_k": 2, "class_id": 1}, "onehot", "softmax"),
    "Recall-thresholds": ({"thresholds": [0.2, 0.5, 0.7]}, "binary", "sigmoid"),
    "Recall-topk": ({"top_k": 1}, "onehot", "softmax"),
    "AUC": ({}, "binary", "sigmoid"),
    "AUC-PR": ({"curve": "PR"}, "binary", "sigmoid"),
    "AUC-PR-minoring": ({"curve": "PR", "summation_method": "minoring", "num_thresholds": 17}, "binary", "sigmoid"),
    "AUC-majoring": ({"summation_method": "majoring"}, "binary", "sigmoid"),
    "AUC-thresholds": ({"thresholds": [0.1, 0.35, 0.6, 0.9]}, "binary", "sigmoid"),
    "AUC-multi": ({"multi_label": True}, "binary", "sigmoid"),
    "AUC-multi-PR-weights": ({"multi_label": True, "curve": "PR", "num_labels": 4, "label_weights": [1, 0, 2, 0.5]},
                             "binary", "sigmoid"),
    "AUC-multi-thresholds-minoring": ({"multi_label": True, "thresholds": [0.2, 0.5, 0.8],
                                       "summation_method": "minoring"}, "binary", "sigmoid"),
    "AUC-label-weights": ({"label_weights": [0.5, 1, 2, 0]}, "binary", "sigmoid"),
    "F1Score": ({}, "onehot", "softmax"),
    "F1Score-micro": ({"average": "micro", "threshold": 0.3}, "onehot", "softmax"),
    "F1Score-macro": ({"average": "macro"}, "onehot", "softmax"),
    "F1Score-weighted": ({"average": "weighted", "threshold": 0.4}, "binary", "sigmoid"),
}


def _metric_batch(kind, act, rng, n=6, k=4):
    z = rng.standard_normal((n, k)).astype(np.float32) * 2
    p = activation(act)(z).astype(np.float32)
    if kind == "sparse":
        y = rng.integers(0, k, n)
    elif kind == "onehot":
        y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
    else:
        y = rng.integers(0, 2, (n, k)).astype(np.float32)
    return y, z, p


@pytest.mark.parametrize("case", list(METRICS))
@given(seeds, st.booleans())
@settings(max_examples=8, deadline=None)
def test_metrics_equal_keras_after_several_batches(case, seed, weighted):
    """update_state on probabilities, and update on a fused head's logits, equal Keras's result."""
    keras = real_keras()
    kwargs, kind, act = METRICS[case]
    name = case.split("-")[0]
    theirs, ours, fused = (getattr(keras.metrics, name)(**kwargs), getattr(metrics, name)(**kwargs),
                           getattr(metrics, name)(**kwargs))
    assert ours.name == re.sub(r"_\d+$", "", theirs.name)      # Keras numbers its second 'auc' 'auc_1'
    rng = np.random.default_rng(seed)
    for _ in range(3):
        y, z, p = _metric_batch(kind, act, rng)
        w = rng.uniform(0, 2, len(y)).astype(np.float32) if weighted else None
        theirs.update_state(y, p, sample_weight=w)
        ours.update_state(y, p, sample_weight=w)
        fused.update(y, z, act, None if w is None else w.astype(np.float64))
    expected = np.asarray(theirs.result())
    np.testing.assert_allclose(np.asarray(ours.result()), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(fused.result()), expected, rtol=1e-5, atol=1e-6)


def test_auc_edges_and_ties_equal_keras():
    keras = real_keras()
    y = np.array([0, 1, 1, 0, 1, 0, 1, 1], np.float32)
    p = np.array([0.0, 1.0, 0.5, 0.5, 1 / 199, 2 / 199, 0.3, 1.2], np.float32).clip(0, 1)
    for curve in ("ROC", "PR"):
        theirs, ours = keras.metrics.AUC(curve=curve), metrics.AUC(curve=curve)
        theirs.update_state(y, p)
        ours.update_state(y, p)
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6)
    theirs, ours = keras.metrics.AUC(from_logits=True), metrics.AUC(from_logits=True)
    z = np.array([-3, 2, 0.5, -0.1, 1, -2, 0, 4], np.float32)
    theirs.update_state(y, z)
    ours.update_state(y, z)
    assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6)


def test_top_k_ties_count_as_in_the_top_k_as_tf_in_top_k():
    keras = real_keras()
    p = np.array([[0.3, 0.3, 0.3, 0.1], [0.1, 0.2, 0.3, 0.4]], np.float32)
    y = np.array([2, 0])
    np.testing.assert_array_equal(metrics.sparse_top_k_categorical_accuracy(y, p, k=1),
                                  np.asarray(keras.metrics.sparse_top_k_categorical_accuracy(y, p, k=1)))
    onehot = np.eye(4, dtype=np.float32)[y]
    np.testing.assert_array_equal(metrics.top_k_categorical_accuracy(onehot, p, k=2),
                                  np.asarray(keras.metrics.top_k_categorical_accuracy(onehot, p, k=2)))


@pytest.mark.parametrize("identifier", ["top_k_categorical_accuracy", "precision", "recall", "auc",
                                        "sparse_top_k_categorical_accuracy"])
def test_metric_names_in_compile_and_fit_logs_equal_keras(identifier):
    keras = real_keras()
    sparse = identifier.startswith("sparse")
    binary = identifier in ("precision", "recall", "auc")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((24, 5)).astype(np.float32)
    labels = rng.integers(0, 2 if binary else 3, 24)
    y = labels.astype(np.float32)[:, None] if binary else (labels if sparse else np.eye(3, dtype=np.float32)[labels])
    loss = "binary_crossentropy" if binary else ("sparse_categorical_crossentropy" if sparse
                                                 else "categorical_crossentropy")
    theirs, ours = twin(keras, "sigmoid" if binary else "softmax", 1 if binary else 3)
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(lib.optimizers.SGD(0.1), loss, metrics=[identifier])
        model.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    assert identifier in ours.history.history
    np.testing.assert_allclose(ours.history.history[identifier], theirs.history.history[identifier], rtol=1e-5,
                               atol=1e-6)


def test_metric_objects_in_fit_on_a_fused_head_equal_keras():
    keras = real_keras()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 30)]

    def made(lib):
        return [lib.metrics.TopKCategoricalAccuracy(k=2), lib.metrics.Precision(top_k=1, class_id=2, name="precision"),
                lib.metrics.Recall(thresholds=0.4, name="recall"), lib.metrics.AUC(curve="PR", name="auc"),
                lib.metrics.F1Score(average="macro")]
    theirs, ours = twin(keras, "softmax", 3)
    for model, lib in ((theirs, keras), (ours, sn)):
        model.compile(lib.optimizers.SGD(0.3), "categorical_crossentropy", metrics=made(lib))
        model.fit(x, y, batch_size=7, epochs=2, shuffle=False, verbose=0)
    for key in ("top_k_categorical_accuracy", "precision", "recall", "auc", "f1_score"):
        np.testing.assert_allclose(ours.history.history[key], theirs.history.history[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)


@pytest.mark.parametrize("metric", [metrics.Precision(thresholds=[0.3, 0.6]), metrics.Recall(top_k=2),
                                    metrics.AUC(num_thresholds=9), metrics.AUC(multi_label=True), metrics.F1Score(),
                                    metrics.F1Score(average="micro"), metrics.TopKCategoricalAccuracy(k=2)])
def test_sums_over_two_ranks_give_the_result_of_all_the_data(metric):
    """What data-parallel training does: each rank's sums(), added, set_sums() on each."""
    rng = np.random.default_rng(0)
    batches = [_metric_batch("onehot", "softmax", rng) for _ in range(4)]
    whole, ranks = type(metric)(**metric.get_config()), [type(metric)(**metric.get_config()) for _ in range(2)]
    for i, (y, _, p) in enumerate(batches):
        whole.update_state(y, p)
        ranks[i % 2].update_state(y, p)
    assert ranks[0].result() is not None
    summed = np.add(ranks[0].sums(), ranks[1].sums())
    for rank in ranks:
        rank.set_sums(list(summed))
        np.testing.assert_allclose(np.asarray(rank.result()), np.asarray(whole.result()), rtol=1e-6)


@pytest.mark.parametrize("metric", [metrics.Precision(thresholds=0.3, class_id=1), metrics.AUC(curve="PR"),
                                    metrics.AUC(multi_label=True, label_weights=[1, 2, 3]),
                                    metrics.AUC(thresholds=[0.2, 0.4]), metrics.F1Score("weighted", 0.5),
                                    metrics.SparseTopKCategoricalAccuracy(k=3, name="top3"), metrics.Recall(top_k=2)])
def test_configured_metrics_are_saved_as_class_and_config(metric):
    saved = metrics.MetricSpec(metric).saved
    assert saved["class_name"] == type(metric).__name__
    again = metrics.from_saved(saved)
    assert type(again) is type(metric) and again.get_config() == metric.get_config()
    keras = real_keras()
    theirs = getattr(keras.metrics, type(metric).__name__).from_config(saved["config"])
    assert re.sub(r"_\d+$", "", theirs.name) == metric.name


def test_an_array_valued_metric_in_fit_logs_says_what_to_do():
    model = sn.Sequential([sn.Input((5,)), sn.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=[metrics.F1Score()])
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    with pytest.raises(TypeError, match="average='macro'"):
        model.fit(x, np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]], verbose=0)


def test_bad_metric_settings_are_refused():
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        metrics.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match="thresholds must be numbers in \\[0, 1\\]"):
        metrics.Precision(thresholds=1.5)
    with pytest.raises(ValueError, match="curve must be 'ROC' or 'PR'"):
        metrics.AUC(curve="PRGAIN")
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="samples")
    with pytest.raises(ValueError, match="num_labels` is needed only when `multi_label` is True"):
        metrics.AUC(num_labels=3)
    with pytest.raises(ValueError, match=r"label_weights must be non-negative numbers, got \[1.0, -1.0\]"):
        metrics.AUC(label_weights=[1, -1])
    with pytest.raises(ValueError, match=r"multi_label=True takes outputs of shape \(samples, labels\)"):
        metrics.AUC(multi_label=True).update_state(np.ones((2, 3, 4)), np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="3 label_weights for outputs of 4 labels"):
        metrics.AUC(label_weights=[1, 2, 3]).update_state(np.ones((2, 4)), np.ones((2, 4)))


@given(seeds, st.integers(1, 5), st.booleans(), st.booleans())
@settings(max_examples=20, deadline=None)
def test_confusion_matrix_equals_tensorflows(seed, classes, given_classes, weighted):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(seed)
    true, pred = rng.integers(0, classes, 12), rng.integers(0, classes, 12)
    w = rng.integers(0, 4, 12) if weighted else None
    k = classes + 1 if given_classes else None
    np.testing.assert_array_equal(metrics.confusion_matrix(true, pred, num_classes=k, weights=w),
                                  tf.math.confusion_matrix(true, pred, num_classes=k, weights=w).numpy())


def test_confusion_matrix_refuses_labels_beyond_num_classes():
    with pytest.raises(ValueError, match="must be < num_classes=2, got 3"):
        metrics.confusion_matrix([0, 3], [1, 1], num_classes=2)


def test_a_saved_model_keeps_its_loss_settings_and_metric_configs(tmp_path):
    model = sn.Sequential([sn.Input((5,)), sn.layers.Dense(3, activation="sigmoid")])
    model.compile("sgd", losses.BinaryFocalCrossentropy(True, 0.4, 1.5, label_smoothing=0.1),
                  metrics=[metrics.Precision(thresholds=0.3, class_id=2), metrics.AUC(curve="PR", num_thresholds=50),
                           "recall"])
    model.save(tmp_path / "m.npz")
    loaded = sn.models.load_model(tmp_path / "m.npz")
    assert loaded.loss.get_config() == model.loss.get_config()
    built = {spec.name: spec.identifier for spec in loaded.metric_specs}
    assert built["precision"].get_config() == model.metric_specs[0].identifier.get_config()
    assert built["auc"].get_config() == model.metric_specs[1].identifier.get_config() and built["recall"] == "recall"
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((9, 5)).astype(np.float32), rng.integers(0, 2, (9, 3)).astype(np.float32)
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(
        model.evaluate(x, y, verbose=0, return_dict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_kerass_config_of_each_loss_builds_ours(case):
    """What a Keras file keeps of a loss object (class and config) makes the same loss here."""
    keras = real_keras()
    cls, keras_name, kwargs, _, _ = CASES[case]
    config = getattr(keras.losses, keras_name)(**kwargs).get_config()
    ours = losses.get_class(keras_name)(**config)
    for key, value in kwargs.items():
        assert getattr(ours, key) == (value if key in config else getattr(cls(), key))   # Keras's Huber keeps no delta
    assert ours.name == config["name"]
    assert cls(**kwargs).get_config().items() >= kwargs.items()        # ours keeps every setting


def test_data_parallel_sum_totals_adds_the_new_metrics_over_ranks():
    """DataParallelStrategy.sum_totals (one Allreduce of every metric's sums) with two ranks'
    metrics, the Allreduce played by a communicator that adds the ranks' buffers."""
    from scratchnet.distributed.strategy import DataParallelStrategy

    def made():
        return [metrics.Precision(thresholds=[0.2, 0.6]), metrics.AUC(num_thresholds=11), metrics.F1Score(),
                metrics.TopKCategoricalAccuracy(k=2), metrics.OneHotMeanIoU(4)]
    rng = np.random.default_rng(5)
    whole, ranks = made(), [made(), made()]
    for i in range(4):
        y, _, p = _metric_batch("onehot", "softmax", rng)
        for metric, mine in zip(whole, ranks[i % 2]):
            metric.update_state(y, p)
            mine.update_state(y, p)
    buffers = [[0.0, 0.0] + [v for metric in mine for v in metric.sums()] for mine in ranks]

    class Ranks:          # the Allreduce: each rank's buffer plus the other rank's
        def __init__(self, other):
            self.other = other

        def sum_floats(self, values, what=""):
            return list(np.add(values, buffers[self.other]))

    for rank, mine in enumerate(ranks):
        strategy = DataParallelStrategy.__new__(DataParallelStrategy)
        strategy.communicator = Ranks(1 - rank)
        assert strategy.sum_totals(0.0, 0, mine) == (0.0, 0)
    for mine in ranks:
        for metric, summed in zip(whole, mine):
            np.testing.assert_allclose(np.asarray(summed.result()), np.asarray(metric.result()), rtol=1e-6)


@pytest.mark.parametrize("case", ["bfocal_balanced", "cfocal_set", "huber", "kld", "cce_smooth"])
def test_per_pixel_outputs_check_and_equal_keras(case):
    """(N, H, W, K) outputs: one loss per pixel, as Keras; per-pixel weights too."""
    keras = real_keras()
    cls, keras_name, kwargs, _, act = CASES[case]
    rng = np.random.default_rng(7)
    y = _targets(CASES[case][3], 2 * 3 * 2, 4, rng).reshape(2, 3, 2, 4)
    z = rng.standard_normal((2, 3, 2, 4))
    p = activation(act)(z) if act else (activation("softmax")(z) if case == "kld" else z)
    assert gradcheck.check_loss(cls(**kwargs), y, p) < 1e-6
    if act:
        assert gradcheck.check_loss(cls(from_logits=True, **kwargs), y, z, from_logits=True) < 1e-6
    w = rng.uniform(0, 2, (2, 3, 2)).astype(np.float32)
    y32, p32 = y.astype(np.float32), p.astype(np.float32)
    np.testing.assert_allclose(cls(**kwargs)(y32, p32, sample_weight=w),
                               float(getattr(keras.losses, keras_name)(**kwargs)(y32, p32, sample_weight=w)),
                               rtol=2e-5)


def _ignored_labels(rng, shape, classes, ignore):
    labels = rng.integers(0, classes, shape)
    labels[rng.random(shape) < 0.3] = ignore
    return labels


@pytest.mark.parametrize("shape, ignore, from_logits, weighted", [
    ((5, 4), -1, True, False), ((5, 4), 3, False, True), ((3, 4, 5, 4), 255, True, True),
    ((3, 4, 5, 4), 255, False, False)])
def test_ignore_class_is_kerass_mean_over_the_labels_kept(shape, ignore, from_logits, weighted):
    keras = real_keras()
    rng = np.random.default_rng(1)
    z = rng.standard_normal(shape).astype(np.float32)
    y_pred = z if from_logits else np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    y = _ignored_labels(rng, shape[:-1], shape[-1], ignore)
    w = rng.uniform(0.2, 2, shape[:-1]).astype(np.float32) if weighted else None     # per sample or per pixel
    ours = losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=ignore)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=ignore)
    assert ours(y, y_pred, sample_weight=w) == pytest.approx(float(theirs(y, y_pred, sample_weight=w)), rel=1e-5)
    assert ours(np.full_like(y, ignore), y_pred) == 0.0 == float(theirs(np.full_like(y, ignore), y_pred))
    assert gradcheck.check_loss(losses.SparseCategoricalCrossentropy(from_logits, ignore), y,
                                y_pred.astype(np.float64), from_logits) < 1e-6
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\) for a 4-class output; got 7"):
        ours(np.where(y == ignore, 7, y), y_pred)


def test_a_segmenter_with_unlabelled_pixels_trains_as_in_keras():
    keras = real_keras()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 6, 6, 2)).astype(np.float32)
    y = _ignored_labels(rng, (10, 6, 6), 3, 255)
    model = sn.Sequential([sn.Input((6, 6, 2)), sn.layers.Conv2D(3, 3, padding="same", activation="softmax")])
    twin = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3, padding="same", activation="softmax")])
    twin.set_weights(model.get_weights())
    histories = []
    for library, net in ((sn, model), (keras, twin)):
        net.compile(library.optimizers.SGD(0.5), library.losses.SparseCategoricalCrossentropy(ignore_class=255),
                    metrics=["accuracy", library.metrics.MeanIoU(3, ignore_class=255, sparse_y_pred=False, name="miou")])
        histories.append(net.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0,
                                 validation_data=(x[:3], y[:3])).history)
    assert set(histories[0]) == set(histories[1])
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5, err_msg=key)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    loss = losses.SparseCategoricalCrossentropy(ignore_class=255)
    probabilities = np.full((4, 3), 1 / 3, np.float32)
    with pytest.raises(NotImplementedError, match="ignore_class in data-parallel training is not supported"):
        loss.value_and_grad(loss.prepare_targets(np.array([0, 1, 255, 2]), (4, 3), np.float32), probabilities,
                            batch_size=8)


@pytest.mark.parametrize("make", [lambda m: m.CategoricalCrossentropy(label_smoothing=0.1),
                                  lambda m: m.SparseCategoricalCrossentropy(from_logits=False, ignore_class=255),
                                  lambda m: m.BinaryFocalCrossentropy(gamma=3.0)])
def test_keras_files_keep_every_loss_setting_both_ways(tmp_path, make):
    keras = real_keras()
    model = sn.Sequential([sn.Input((5,)), sn.layers.Dense(3, activation="softmax")])
    model.compile("sgd", make(losses))
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        theirs = keras.models.load_model(tmp_path / name)
        expected = make(keras.losses).get_config()
        assert {k: v for k, v in theirs.loss.get_config().items() if k in expected} == expected
        assert sn.models.load_model(tmp_path / name).loss.get_config() == model.loss.get_config()
    theirs.save(tmp_path / "theirs.keras")
    assert sn.models.load_model(tmp_path / "theirs.keras").loss.get_config() == model.loss.get_config()
