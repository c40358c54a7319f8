"""The GPU tests run with tests/strict_cupy.py standing in for CuPy: arrays that refuse
implicit copies to the host, under numba-cuda's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
import strict_cupy

strict_cupy.install()
