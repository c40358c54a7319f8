"""Issue 26 part 7 on the (simulated) GPU backend: the focal, smoothed, Huber and KL losses and
the classification metrics (their counts kept on the device) give the CPU backend's weights and
logs."""
import numpy as np
import pytest
import strict_cupy

import scratchnet
from scratchnet import losses, metrics


def build(k, activation):
    return scratchnet.Sequential([scratchnet.Input((5,)), scratchnet.layers.Dense(4, activation="tanh"),
                                  scratchnet.layers.Dense(k, activation=activation)])


@pytest.mark.parametrize("head, loss, chosen", [
    ("softmax", lambda: losses.CategoricalFocalCrossentropy(gamma=1.5, label_smoothing=0.1),
     lambda: [metrics.TopKCategoricalAccuracy(k=2), metrics.Precision(top_k=1, class_id=1, name="p"),
              metrics.AUC(curve="PR", name="auc"), metrics.F1Score(average="weighted")]),
    ("sigmoid", lambda: losses.BinaryFocalCrossentropy(True, label_smoothing=0.2),
     lambda: [metrics.Recall(thresholds=0.4, name="r"), metrics.AUC(name="auc"), metrics.F1Score("micro", 0.5),
              metrics.AUC(multi_label=True, label_weights=[1, 2, 0.5], name="mauc")]),
    ("softmax", lambda: losses.CategoricalCrossentropy(label_smoothing=0.2), lambda: ["top_k_categorical_accuracy"]),
    ("softmax", lambda: losses.KLDivergence(), lambda: ["precision", "recall"]),
    (None, lambda: losses.Huber(0.5), lambda: []),
])
def test_new_losses_and_metrics_train_on_the_gpu_as_on_the_cpu(head, loss, chosen):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5)).astype(np.float32)
    y = (rng.integers(0, 2, (12, 3)) if head == "sigmoid" else np.eye(3)[rng.integers(0, 3, 12)]).astype(np.float32)
    w = rng.uniform(0, 2, 12).astype(np.float32)
    scratchnet.set_backend("cpu")
    cpu = build(3, head)
    scratchnet.set_backend("gpu")
    gpu = build(3, head)
    gpu.set_weights(cpu.get_weights())
    histories = []
    for model in (cpu, gpu):
        model.compile(scratchnet.optimizers.SGD(0.2), loss(), metrics=chosen(), weighted_metrics=chosen()[:1])
        histories.append(model.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0, sample_weight=w,
                                   validation_data=(x[:4], y[:4])).history)
    scratchnet.set_backend("cpu")
    assert isinstance(gpu.layers[-1].params["kernel"], strict_cupy.ndarray)
    assert set(histories[0]) == set(histories[1])
    for key in histories[0]:
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
