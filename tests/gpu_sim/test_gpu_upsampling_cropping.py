"""UpSampling2D and Cropping2D on the GPU backend (strict device arrays, simulated kernels):
the same training steps and predictions as on the CPU."""
import numpy as np

from scratchnet import layers, models
from twins import train_on_cpu_and_gpu


def resampling_cnn():
    return models.Sequential([
        layers.Input((5, 4, 2)), layers.Conv2D(2, 1), layers.UpSampling2D((2, 3), interpolation="bilinear"),
        layers.Cropping2D(((1, 0), (2, 1))), layers.Conv2D(3, 3, activation="relu"), layers.UpSampling2D(2),
        layers.Cropping2D(1), layers.Conv2D(2, 3, strides=3), layers.Flatten(), layers.Dense(3, activation="softmax")])


def test_upsampling_and_cropping_train_on_the_gpu_as_on_the_cpu():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 5, 4, 2)).astype(np.float32), rng.integers(0, 3, 8)
    train_on_cpu_and_gpu(resampling_cnn, x, y)
