"""Conv2DTranspose on the GPU backend (strict device arrays, simulated kernels): its forward
kernel, conv2d_backward_input, against the NumPy reference, and the layer's output and
gradients against the CPU's (it reaches the GPU's kernels only through the backend)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import scratchnet
import strict_cupy as cp
from scratchnet import layers
from scratchnet.kernels import cupy_gpu as gpu, im2col_gemm, numpy_ref as ref
from strategies import cut_window_case


@settings(max_examples=12)
@given(case=cut_window_case(max_batch=2, max_channels=3, max_size=6, max_kernel=3, max_stride=2),
       c_out=st.integers(1, 3), seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       chunked=st.booleans())
def test_conv2d_backward_input_matches_reference(monkeypatch, case, c_out, seed, dtype, chunked):
    # pads include a transposed convolution's negative bottom/right ones; a tiny chunk size
    # sends each image through its own GEMM and col2im launch
    n, h, w, c, kernel, strides, pads = case
    monkeypatch.setattr(gpu, "CHUNK_BYTES", 1 if chunked else 64 << 20)
    rng = np.random.default_rng(seed)
    wt = rng.standard_normal(kernel + (c, c_out)).astype(dtype)
    ho, wo = im2col_gemm.geometry((n, h, w, c), wt.shape, strides, pads)[6:]
    dy = rng.standard_normal((n, ho, wo, c_out)).astype(dtype)
    dx = gpu.conv2d_backward_input(cp.asarray(dy), cp.asarray(wt), (n, h, w, c), strides, pads)
    assert dx.dtype == dtype and dx.shape == (n, h, w, c)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx.get(), ref.conv2d_backward_input(dy, wt, (n, h, w, c), strides, pads), **tol)


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
    for gpu_result, cpu_result in zip(results[1], results[0]):
        np.testing.assert_allclose(gpu_result, cpu_result, rtol=1e-5, atol=1e-5)
