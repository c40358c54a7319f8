"""Per-pixel targets on the (simulated) GPU backend: a segmentation model trained with
per-pixel sample weights or class weights, and the IoU metrics' confusion matrices kept on
the device, give the CPU backend's weights and logs."""
import numpy as np
import pytest
import strict_cupy

import scratchnet
from scratchnet import metrics


def build(k, activation):
    return scratchnet.Sequential([scratchnet.Input((4, 3, 2)), scratchnet.layers.Conv2D(k, 3, padding="same",
                                                                                      activation=activation)])


@pytest.mark.filterwarnings("ignore:You are passing weight as `float`")   # the weighted IoU's integer matrix, as Keras
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_segmentation_with_pixel_weights_trains_on_the_gpu_as_on_the_cpu(head):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 3, 2)).astype(np.float32)
    k = 3 if head == "softmax" else 1
    y = rng.integers(0, k + (head == "sigmoid"), (6, 4, 3))
    w = rng.uniform(0, 2, (6, 4, 3)).astype(np.float32)
    loss = "sparse_categorical_crossentropy" if head == "softmax" else "binary_crossentropy"
    chosen = ([metrics.MeanIoU(3, sparse_y_pred=False), metrics.IoU(3, [1], ignore_class=0, sparse_y_pred=False)]
              if head == "softmax" else [metrics.BinaryIoU(threshold=0.4)])
    scratchnet.set_backend("cpu")
    cpu = build(k, head)
    scratchnet.set_backend("gpu")
    gpu = build(k, head)
    gpu.set_weights(cpu.get_weights())
    histories = []
    for model in (cpu, gpu):
        model.compile(scratchnet.optimizers.SGD(0.2), loss, metrics=["accuracy"] + chosen,
                      weighted_metrics=["accuracy"] + chosen[:1])
        histories.append(model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, sample_weight=w,
                                   validation_data=(x[:3], y[:3])).history)
        histories.append(model.fit(x, y[..., None], batch_size=4, epochs=1, shuffle=False, verbose=0,
                                   class_weight={0: 0.5, 1: 2.0}).history)
    scratchnet.set_backend("cpu")
    assert isinstance(gpu.layers[0].params["kernel"], strict_cupy.ndarray)
    for ours, theirs in zip(histories[2:], histories[:2]):
        assert set(ours) == set(theirs)
        for key in theirs:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
