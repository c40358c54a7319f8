"""Losses: gradients against central differences, fused vs plain forms, stability, bad targets."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from scratchnet import gradcheck, losses
from scratchnet.activations import get as activation

seeds = st.integers(0, 2**31 - 1)
shapes = st.tuples(st.integers(1, 4), st.integers(2, 6))


def _case(kind, n, k, rng):
    """(loss, targets, logits, activation name) for a loss kind."""
    z = rng.standard_normal((n, k))
    if kind == "binary":
        return losses.BinaryCrossentropy(), rng.integers(0, 2, (n, k)).astype(float), z, "sigmoid"
    if kind == "categorical":
        return losses.CategoricalCrossentropy(), np.eye(k)[rng.integers(0, k, n)], z, "softmax"
    return losses.SparseCategoricalCrossentropy(), rng.integers(0, k, n), z, "softmax"


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse"])
@given(shapes, seeds)
def test_gradients_from_logits_and_from_probabilities(kind, shape, seed):
    loss, y, z, act = _case(kind, *shape, np.random.default_rng(seed))
    assert gradcheck.check_loss(loss, y, z, from_logits=True) < 1e-6
    p = activation(act)(z)
    assert gradcheck.check_loss(loss, y, p, from_logits=False) < 1e-6


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse"])
@given(shapes, seeds)
def test_fused_form_equals_activation_then_loss(kind, shape, seed):
    loss, y, z, act = _case(kind, *shape, np.random.default_rng(seed))
    y = loss.prepare_targets(y, z.shape, np.float64)
    fused_value, fused_grad = loss.value_and_grad(y, z, from_logits=True)
    p = activation(act)(z)
    plain_value, grad_p = loss.value_and_grad(y, p, from_logits=False)
    assert fused_value == pytest.approx(plain_value, rel=1e-9)
    # chain rule through the activation gives the fused gradient
    np.testing.assert_allclose(activation(act).backward(grad_p, p), fused_grad, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_give_finite_loss_and_gradient(kind, dtype):
    loss, y, _, _ = _case(kind, 4, 3, np.random.default_rng(0))
    z = np.array([[1e4, -1e4, 0], [-1e4, 1e4, 1e4], [0, 0, 0], [-1e4, -1e4, -1e4]], dtype=dtype)
    value, grad = loss.value_and_grad(loss.prepare_targets(y, z.shape, dtype), z, from_logits=True)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert grad.dtype == dtype


def test_known_values():
    # log(2) for a coin-flip prediction; -log(0.25) for a uniform 4-way softmax
    assert losses.BinaryCrossentropy()(np.array([1.0, 0.0]), np.array([[0.5], [0.5]])) == pytest.approx(np.log(2))
    z = np.zeros((2, 4))
    assert losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([0, 3]), z) == pytest.approx(np.log(4))
    per_sample = losses.categorical_crossentropy(np.eye(3)[[0, 1]], np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3]]))
    np.testing.assert_allclose(per_sample, [-np.log(0.8), -np.log(0.5)], rtol=1e-6)


def test_probabilities_are_clipped_as_in_keras():
    value = losses.BinaryCrossentropy()(np.array([1.0]), np.array([[0.0]]))
    assert value == pytest.approx(-np.log(1e-7), rel=1e-6)


def test_sparse_labels_out_of_range():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\).*from 0 to 10"):
        losses.SparseCategoricalCrossentropy().prepare_targets(np.array([0, 10]), (2, 10), np.float32)
    with pytest.raises(ValueError, match=r"from -1 to 3"):
        losses.SparseCategoricalCrossentropy().prepare_targets(np.array([-1, 3]), (2, 10), np.float32)
    with pytest.raises(ValueError, match="non-integer"):
        losses.SparseCategoricalCrossentropy().prepare_targets(np.array([0.5, 1]), (2, 10), np.float32)


def test_target_shape_errors():
    with pytest.raises(ValueError, match="use sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy().prepare_targets(np.array([1, 2]), (2, 10), np.float32)
    with pytest.raises(ValueError, match=r"expects targets in \[0, 1\]"):
        losses.BinaryCrossentropy().prepare_targets(np.array([0, 2]), (2, 1), np.float32)
    with pytest.raises(ValueError, match=r"targets of shape \(3,\) do not match outputs of shape \(2, 1\)"):
        losses.BinaryCrossentropy().prepare_targets(np.array([0, 1, 1]), (2, 1), np.float32)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="binary_crossentropy.*sparse_categorical_crossentropy"):
        losses.get("hinge_of_doom")
