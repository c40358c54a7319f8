"""scratchnet.gradients and scratchnet.visualize on the GPU backend (strict device arrays,
simulated kernels): the same gradients, heat maps and saliency as on the CPU, handed back as
host arrays."""
import numpy as np

import scratchnet
from scratchnet import gradients, layers, models, visualize


def twin_models():
    scratchnet.set_backend("cpu")
    scratchnet.set_random_seed(2)

    def build():
        return models.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(3, 3, activation="relu", name="conv"),
                                  layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3, activation="softmax")])
    cpu = build()
    scratchnet.set_backend("gpu")
    gpu = build()
    gpu.set_weights(cpu.get_weights())
    return cpu, gpu


def test_gradients_and_pictures_on_the_gpu_equal_the_cpus():
    cpu, gpu = twin_models()
    x = np.random.default_rng(0).random((2, 6, 6, 2)).astype(np.float32)
    for kwargs in ({"target": 1}, {"target": 2, "wrt": "conv", "logits": True}, {"target": 0, "of": "conv"}):
        on_cpu, on_gpu = gradients.gradient(cpu, x, **kwargs), gradients.gradient(gpu, x, **kwargs)
        assert type(on_gpu.gradient) is np.ndarray and type(on_gpu.wrt_value) is np.ndarray
        np.testing.assert_allclose(on_gpu.gradient, on_cpu.gradient, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(on_gpu.value, on_cpu.value, rtol=1e-5)
    np.testing.assert_allclose(visualize.grad_cam(gpu, x), visualize.grad_cam(cpu, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(visualize.saliency(gpu, x), visualize.saliency(cpu, x), rtol=1e-5, atol=1e-7)
