"""UpSampling2D and Cropping2D on the GPU backend (strict device arrays, simulated kernels):
the same training steps and predictions as on the CPU."""
import numpy as np

import scratchnet
from scratchnet import layers, models, optimizers


def resampling_cnn():
    return models.Sequential([
        layers.Input((5, 4, 2)), layers.Conv2D(2, 1), layers.UpSampling2D((2, 3), interpolation="bilinear"),
        layers.Cropping2D(((1, 0), (2, 1))), layers.Conv2D(3, 3, activation="relu"), layers.UpSampling2D(2),
        layers.Cropping2D(1), layers.Conv2D(2, 3, strides=3), layers.Flatten(), layers.Dense(3, activation="softmax")])


def test_upsampling_and_cropping_train_on_the_gpu_as_on_the_cpu():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 5, 4, 2)).astype(np.float32), rng.integers(0, 3, 8)
    scratchnet.set_backend("cpu")
    cpu = resampling_cnn()
    scratchnet.set_backend("gpu")
    gpu = resampling_cnn()
    gpu.set_weights(cpu.get_weights())
    for model in (cpu, gpu):
        model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        scratchnet.set_random_seed(3)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
