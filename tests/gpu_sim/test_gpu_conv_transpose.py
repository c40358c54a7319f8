"""Conv2DTranspose on the GPU backend (strict device arrays, simulated kernels): it has no
kernel of its own, so this checks that its function reaches the GPU's convolution kernels
only through the backend and gives the CPU's output and gradients."""
import numpy as np
import pytest

import scratchnet
from scratchnet import layers


@pytest.mark.parametrize("kwargs", [dict(strides=2, padding="same"), dict(strides=(2, 3), output_padding=(1, 0)),
                                    dict(dilation_rate=2, padding="same", activation="tanh", use_bias=False)])
def test_conv2d_transpose_on_the_gpu_equals_the_cpu(kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    results = []
    for name in ("cpu", "gpu"):
        scratchnet.set_backend(name)
        layer = layers.Conv2DTranspose(3, 3, **kwargs)
        layer.build(x.shape[1:])
        layer.set_weights([np.random.default_rng(1).standard_normal(w.shape).astype(np.float32)
                           for w in layer.get_weights()])
        xp = layer.backend.xp
        y, ctx = layer.forward(xp.asarray(x), training=True)
        dy = xp.asarray(np.random.default_rng(2).standard_normal(y.shape).astype(np.float32))
        dx, grads = layer.backward(dy, ctx)
        results.append([scratchnet.arrays.to_host(a) for a in [y, dx] + [grads[k] for k in sorted(grads)]])
    scratchnet.set_backend("cpu")
    for gpu, cpu in zip(results[1], results[0]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-5)
