"""The GPU backend's gradient sum on the devices themselves, through NCCL (CuPy's
``cupy.cuda.nccl``): the flat buffer never visits the host. MPI still starts the job, sends
NCCL its unique id from rank 0, and carries everything else (the few numbers of metrics,
the broadcasts)."""
import warnings

import numpy as np


def select_gpu(communicator):
    """Make this rank's GPU the current one: the rank's index among the ranks on its machine
    (so K ranks on a machine with K GPUs use one each). Call it before building the model."""
    import cupy

    from .communicator import local_rank_and_size
    index = local_rank_and_size(communicator)[0]
    count = cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(index % count).use()
    return index % count


def use_nccl(communicator):
    """Make ``communicator.sum_`` sum device buffers with NCCL's AllReduce, in place, on
    CuPy's current stream; returns the NCCL communicator."""
    import cupy
    from cupy.cuda import nccl
    unique_id = communicator.broadcast_json(list(nccl.get_unique_id()) if communicator.is_root else None,
                                            what="the broadcast of NCCL's unique id")
    ranks = nccl.NcclCommunicator(communicator.size, tuple(unique_id), communicator.rank)
    types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def device_sum(buffer):
        pointer = buffer.__cuda_array_interface__["data"][0]
        stream = cupy.cuda.get_current_stream()
        ranks.allReduce(pointer, pointer, buffer.size, types[np.dtype(buffer.dtype)], nccl.NCCL_SUM, stream.ptr)
        stream.synchronize()     # inside the watchdog's watch: a rank that never joins is noticed here

    communicator.device_sum = device_sum
    return ranks


def use_nccl_if_available(communicator):
    """``use_nccl``, or a warning that the gradients go through the host (a CuPy built
    without NCCL)."""
    try:
        from cupy.cuda import nccl   # noqa: F401
    except ImportError as error:
        warnings.warn(f"CuPy has no NCCL here ({error}); the gradient sums go through the host", stacklevel=3)
        return None
    return use_nccl(communicator)
