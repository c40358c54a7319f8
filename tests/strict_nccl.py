"""A stand-in for CuPy's ``cupy.cuda.nccl`` beside tests/strict_cupy.py, for jobs of
several ranks under mpiexec: its AllReduce really sums over the ranks (through MPI, on the
memory behind the device pointer it is given, as NCCL would on the GPU) and records each
call, so a test can check that the gradients were summed on the "device", once per step,
on CuPy's current stream, without a copy to the host.

``install()`` makes ``from cupy.cuda import nccl`` give this module; call it after
``strict_cupy.install()``."""
import ctypes
import sys

import numpy as np

NCCL_SUM = 0
NCCL_FLOAT32 = 7
NCCL_FLOAT64 = 8
_TYPES = {NCCL_FLOAT32: ctypes.c_float, NCCL_FLOAT64: ctypes.c_double}

CALLS = []       # (count, datatype, stream pointer) of every allReduce


def get_unique_id():
    return tuple(range(128))     # NCCL's is 128 chars, made on rank 0 and sent to the others


class NcclCommunicator:
    def __init__(self, ndev, commId, rank):
        from mpi4py import MPI
        self.comm = MPI.COMM_WORLD
        if ndev != self.comm.Get_size() or rank != self.comm.Get_rank():
            raise ValueError(f"NcclCommunicator({ndev}, ..., {rank}) in a job of {self.comm.Get_size()} ranks")
        if tuple(commId) != get_unique_id():
            raise ValueError("this rank got another unique id than rank 0 made")

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802 (CuPy's name)
        from mpi4py import MPI
        if op != NCCL_SUM or datatype not in _TYPES or not isinstance(sendbuf, int) or not isinstance(stream, int):
            raise TypeError("allReduce(sendbuf, recvbuf, count, datatype, op, stream) takes pointers and NCCL enums")
        send = np.ctypeslib.as_array((_TYPES[datatype] * count).from_address(sendbuf))
        receive = np.ctypeslib.as_array((_TYPES[datatype] * count).from_address(recvbuf))
        if sendbuf == recvbuf:
            self.comm.Allreduce(MPI.IN_PLACE, receive, op=MPI.SUM)
        else:
            self.comm.Allreduce(send.copy(), receive, op=MPI.SUM)
        CALLS.append((count, datatype, stream))


def install():
    cupy = sys.modules["cupy"]
    cupy.cuda.nccl = sys.modules[__name__]
    sys.modules["cupy.cuda"] = cupy.cuda
    sys.modules["cupy.cuda.nccl"] = sys.modules[__name__]
