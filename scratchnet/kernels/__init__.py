"""Hot loops of scratchnet, one module per implementation, all with the same functions.

- ``numpy_ref``: plain NumPy, the readable oracle every other kernel is tested against.
- ``numba_cpu``: Numba-compiled CPU kernels, gathered from ``numba_conv``, ``numba_pool``,
  ``numba_norm``, ``numba_elementwise`` and ``numba_image``, which run as ``numba_lanes``
  decides; ``cupy_gpu`` (with ``cuda_*``): the GPU's.
- ``im2col_gemm``: the convolution drivers (chunks, lanes, the fused conv + max-pool) the
  CPU and GPU modules share, given their array module and launchers.
- ``registry``: which kernel set ('cpu', 'numpy', 'gpu') new work runs on, with its array
  module (``scratchnet.backend`` re-exports it).

Each kernel set provides the functions ``registry.KERNEL_FUNCTIONS`` names, with
identical signatures (see ``numpy_ref``), and may provide the optional ones
(``OPTIONAL_KERNEL_FUNCTIONS``: the fused ``conv2d_maxpool_*``, ``matmul``,
``resize_bilinear*``). Neither Numba
nor CuPy is imported, and nothing compiled, until a backend asks for its kernel set.
"""
