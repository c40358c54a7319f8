"""Issue 26 part 7: label smoothing, the focal cross-entropies, Huber and KL divergence (values
against Keras 3, gradients against central differences in float64, the fused-logits forms
against activation-then-loss, one SGD step of a model), and the classification metrics (top-k,
Precision, Recall, AUC, F1Score) and confusion_matrix against Keras / TensorFlow."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet as sn
from scratchnet import gradcheck, losses
from scratchnet.activations import get as activation

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


def twin(keras, activation_name, units):
    def build(lib):
        return lib.Sequential([lib.Input((5,)), lib.layers.Dense(4, activation="tanh"),
                               lib.layers.Dense(units, activation=activation_name)])
    theirs, ours = build(keras), build(sn)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return theirs, ours


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
