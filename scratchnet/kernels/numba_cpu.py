"""Numba CPU kernels: the same functions as ``numpy_ref``, compiled and parallel; the kernel
set of the 'cpu' backend, gathered here from the modules that hold them by subject:

- ``numba_lanes``: how they run (serial or parallel by the size of the work; the two lanes a
  big batch splits into, each with a one-thread BLAS), and how their loops are written;
- ``numba_conv``: convolutions (im2col + GEMM in chunks; fused with the max-pooling after
  it, in bands; depthwise) and Dense's matrix product;
- ``numba_pool``: max- and average-pooling;
- ``numba_norm``: batch normalisation;
- ``numba_elementwise``: bias + activation, the Adam and RMSprop updates, dropout masks, softmax cross-entropy;
- ``numba_image``: the projective image transform and the bilinear resize.

The sizes that tune them (``CHUNK_BYTES`` and ``BAND_CHUNK_BYTES`` in ``numba_conv``,
``PARALLEL_MIN_ELEMENTS`` and ``Lanes.min_flops`` in ``numba_lanes``) are read where they
are defined: change them there; the copies of the chunk sizes here are for reading.
"""
from .numba_conv import (BAND_CHUNK_BYTES, CHUNK_BYTES, conv2d_backward, conv2d_backward_input,  # noqa: F401
                         conv2d_forward, conv2d_maxpool_backward, conv2d_maxpool_forward,
                         depthwise_conv2d_backward, depthwise_conv2d_forward, matmul)
from .numba_elementwise import (adam_update, bias_activation, bias_activation_backward, dropout_mask,  # noqa: F401
                                rmsprop_update, softmax_cross_entropy)
from .numba_image import (projective_transform, projective_transform_backward, resize_bilinear,  # noqa: F401
                          resize_bilinear_backward)
from .numba_lanes import LANES, Lanes  # noqa: F401
from .numba_norm import batchnorm_backward, batchnorm_forward, batchnorm_inference  # noqa: F401
from .numba_pool import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward  # noqa: F401
from .numpy_ref import projective_sampling  # noqa: F401  (host-side, for callers that want the weights)
from .numpy_ref import GOLDEN, KERNEL_ACTIVATIONS, MIX_1, MIX_2, RANDOM_BITS, dropout_threshold  # noqa: F401

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_backward_input", "maxpool2d_forward", "maxpool2d_backward",
           "bias_activation", "bias_activation_backward", "adam_update", "rmsprop_update",
           "dropout_mask", "avgpool2d_forward", "avgpool2d_backward", "depthwise_conv2d_forward",
           "depthwise_conv2d_backward", "batchnorm_forward", "batchnorm_backward", "batchnorm_inference",
           "conv2d_maxpool_forward", "conv2d_maxpool_backward", "matmul", "projective_transform",
           "projective_transform_backward", "resize_bilinear", "resize_bilinear_backward", "CHUNK_BYTES"]
