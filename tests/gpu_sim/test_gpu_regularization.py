"""Issue 26 part 6 on the (simulated) GPU backend: every penalty and constraint, computed on
the device, gives the CPU backend's weights and logs."""
import numpy as np
import strict_cupy

import scratchnet
from scratchnet import constraints, layers, regularizers


def build():
    return scratchnet.Sequential([
        scratchnet.Input((5,)),
        layers.Dense(4, activation="tanh", kernel_regularizer=regularizers.OrthogonalRegularizer(0.1),
                     bias_regularizer=regularizers.L1L2(0.01, 0.02), activity_regularizer=regularizers.L1(0.01),
                     kernel_constraint=constraints.MaxNorm(0.8), bias_constraint=constraints.MinMaxNorm(0.1, 0.5)),
        layers.ActivityRegularization(l1=0.01, l2=0.02),
        layers.Dense(3, activation="softmax", kernel_regularizer="l2", kernel_constraint=constraints.UnitNorm(),
                     bias_constraint=constraints.NonNeg(), activity_regularizer=regularizers.L2(0.05))])


def test_penalties_and_constraints_train_on_the_gpu_as_on_the_cpu():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    scratchnet.set_backend("cpu")
    cpu = build()
    scratchnet.set_backend("gpu")
    gpu = build()
    gpu.set_weights(cpu.get_weights())
    histories = []
    for model in (cpu, gpu):
        model.compile(scratchnet.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
        histories.append(model.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0,
                                   validation_data=(x[:4], y[:4])).history)
    scratchnet.set_backend("cpu")
    assert isinstance(gpu.layers[-1].params["kernel"], strict_cupy.ndarray)
    for key in histories[0]:
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(cpu.get_weights(), gpu.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
