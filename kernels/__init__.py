"""Hot loops of scratchnet, one module per implementation, all with the same functions.

- ``numpy_ref``: plain NumPy, the readable oracle every other kernel is tested against.

Each module provides ``conv2d_forward``, ``conv2d_backward``, ``maxpool2d_forward``
and ``maxpool2d_backward`` with identical signatures (see ``numpy_ref``). Nothing here
is imported or compiled until a backend asks for it.
"""
