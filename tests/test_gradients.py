"""The public gradient API (scratchnet.gradients) against float64 central differences, on a
graph with BatchNormalization, a residual add and max-pooling, in inference and training
mode; its translation of the Keras tutorials' GradientTape blocks; and its bad inputs."""
import numpy as np
import pytest

import scratchnet
from scratchnet import gradients, layers, models
from scratchnet.gradcheck import compare_with_differences

from conftest import rng


@pytest.fixture
def graph_model(float64):
    """Input -> conv -> BN -> ReLU -> [conv -> BN] + shortcut -> ReLU -> max-pool -> conv -> GAP -> Dense softmax."""
    scratchnet.set_random_seed(0)
    inputs = layers.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    shortcut = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(4, 3, padding="same", name="branch")(shortcut)
    y = layers.BatchNormalization(name="branch_bn")(y)
    x = layers.ReLU(name="joined")(layers.Add(name="add")([shortcut, y]))
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(5, 3, padding="same", activation="tanh", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(x)
    model = models.Model(inputs, outputs)
    r = rng(1)
    for layer in model.layers:                   # BatchNormalization with statistics of its own
        if isinstance(layer, layers.BatchNormalization):
            layer.params["moving_mean"][...] = r.normal(0, 0.3, layer.params["moving_mean"].shape)
            layer.params["moving_variance"][...] = r.uniform(0.5, 2.0, layer.params["moving_variance"].shape)
            layer.params["gamma"][...] = r.uniform(0.5, 1.5, layer.params["gamma"].shape)
    return model


def batch(n=3):
    return rng(2).normal(size=(n, 8, 8, 2))


CASES = [  # (of, target, wrt)
    ("output", np.array([0, 2, 1]), "input"),
    ("output", 1, "stem_relu"),             # a fork: the shortcut and the branch both read it
    ("output", 2, "pool"),
    ("last_conv", 3, "input"),               # a filter's mean activation
    ("last_conv", 0, "branch_bn"),
]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("of, target, wrt", CASES, ids=[f"{c[0]}[{c[1]}]-wrt-{c[2]}" for c in CASES])
def test_gradients_equal_central_differences(graph_model, of, target, wrt, training):
    x = batch()
    result = gradients.gradient(graph_model, x, target, of=of, wrt=wrt, training=training)
    assert result.gradient.shape == result.wrt_value.shape and result.gradient.dtype == np.float64
    np.testing.assert_allclose(result.value, gradients.score_with(graph_model, x, target, of=of,
                                                                  training=training), rtol=1e-12)
    if wrt == "input":
        point = x.copy()
        f = lambda: gradients.score_with(graph_model, point, target, of=of, training=training).sum()  # noqa: E731
    else:
        point = result.wrt_value.copy()
        f = lambda: gradients.score_with(graph_model, x, target, of=of, training=training,  # noqa: E731
                                         replace=(wrt, point)).sum()
    error = compare_with_differences(result.gradient, f, point, scale=float(np.abs(result.value).max()))
    assert error < 1e-6, f"relative error {error:.2e}"
    assert np.abs(result.gradient).max() > 0


def test_a_seed_and_logits(graph_model):
    x = batch()
    seed = rng(3).normal(size=(3, 4, 4, 4))
    result = gradients.gradient(graph_model, x, of="pool", seed=seed, wrt=["input", "stem"])
    f = lambda: gradients.score_with(graph_model, point, of="pool", seed=seed).sum()  # noqa: E731
    point = x.copy()
    assert compare_with_differences(result.gradient[0], f, point, scale=1.0) < 1e-6
    assert isinstance(result.gradient, list) and result.gradient[1].shape == (3, 8, 8, 4)
    logits = gradients.gradient(graph_model, x, 1, logits=True)
    point = x.copy()
    f = lambda: gradients.score_with(graph_model, point, 1, logits=True).sum()  # noqa: E731
    assert compare_with_differences(logits.gradient, f, point, scale=1.0) < 1e-6
    probabilities = graph_model.predict(x, verbose=0)
    np.testing.assert_allclose(logits.outputs, probabilities, rtol=1e-12)
    scores = np.stack([gradients.gradient(graph_model, x, k, logits=True).value for k in range(3)], axis=1)
    np.testing.assert_allclose(np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True), probabilities,
                               rtol=1e-12)


def test_per_sample_gradients_in_inference_mode(graph_model):
    x = batch()
    together = gradients.gradient(graph_model, x, 2).gradient
    for k in range(3):
        alone = gradients.gradient(graph_model, x[k:k + 1], 2).gradient
        np.testing.assert_allclose(alone[0], together[k], rtol=1e-10, atol=1e-14)


def test_the_keras_grad_cam_block_translates(graph_model):
    """tape.gradient(preds[:, i], conv_output) of the Keras tutorial, with the conv output and
    the predictions it returns."""
    x = batch()
    result = gradients.gradient(graph_model, x, target=0, wrt="last_conv")
    conv_output, grads, preds = result.wrt_value, result.gradient, result.outputs
    assert conv_output.shape == grads.shape == (3, 4, 4, 5)
    np.testing.assert_allclose(preds, graph_model.predict(x, verbose=0), rtol=1e-12)
    np.testing.assert_allclose(result.value, preds[:, 0], rtol=1e-12)
    sub = models.Model(graph_model.inputs, graph_model.get_layer("last_conv").output)
    np.testing.assert_allclose(conv_output, sub.predict(x, verbose=0), rtol=1e-12)


def test_bad_requests_say_what_was_expected(graph_model):
    x = batch()
    with pytest.raises(ValueError, match=r"no layer named 'block5_conv3'; its names are \['input', 'output', "):
        gradients.gradient(graph_model, x, 0, wrt="block5_conv3")
    with pytest.raises(ValueError, match=r"target 3 is out of range: the tensor has 3 entries on its last axis "
                                         r"\(0 to 2\)"):
        gradients.gradient(graph_model, x, 3)
    with pytest.raises(ValueError, match=r"holds 3 values per sample .* give target= .* or seed="):
        gradients.gradient(graph_model, x)
    with pytest.raises(ValueError, match=r"the seed must be shaped like the tensor it weighs, \(3, 3\)"):
        gradients.gradient(graph_model, x, seed=np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"does not depend on 'probabilities'"):
        gradients.gradient(graph_model, x, 0, of="last_conv", wrt="probabilities")
    with pytest.raises(ValueError, match=r"one int per sample \(3\)"):
        gradients.gradient(graph_model, x, [0, 1])


def test_scores_are_what_the_module_says(graph_model):
    x = batch()
    conv = models.Model(graph_model.inputs, graph_model.get_layer("last_conv").output).predict(x, verbose=0)
    np.testing.assert_allclose(gradients.gradient(graph_model, x, 3, of="last_conv").value,
                               conv[..., 3].mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(gradients.gradient(graph_model, x, [2, 0, 1]).value,
                               graph_model.predict(x, verbose=0)[[0, 1, 2], [2, 0, 1]], rtol=1e-12)
    seed = rng(5).normal(size=conv.shape)
    np.testing.assert_allclose(gradients.gradient(graph_model, x, of="last_conv", seed=seed).value,
                               (seed * conv).sum(axis=(1, 2, 3)), rtol=1e-12)


def test_the_numpy_reference_backend_gives_the_same_gradients(graph_model):
    x = batch()
    on_cpu = gradients.gradient(graph_model, x, 1, wrt=["input", "stem_relu"])
    graph_model.to("numpy")
    on_numpy = gradients.gradient(graph_model, x, 1, wrt=["input", "stem_relu"])
    for a, b in zip(on_numpy.gradient, on_cpu.gradient):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
