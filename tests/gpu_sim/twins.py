"""One model built on the CPU and on the (simulated) GPU backend, trained alike."""
import numpy as np

import scratchnet
from scratchnet import optimizers


def train_on_cpu_and_gpu(build, x, y):
    """(cpu model, gpu model): ``build()`` on each backend with the CPU's weights, each trained
    two epochs by SGD from the same seed; asserts their weights and predictions agree."""
    scratchnet.set_backend("cpu")
    cpu = build()
    scratchnet.set_backend("gpu")
    gpu = build()
    gpu.set_weights(cpu.get_weights())
    for model in (cpu, gpu):
        model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        scratchnet.set_random_seed(3)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
    return cpu, gpu
