"""The one collective of a training step: every gradient, and a few numbers beside them,
packed into one flat buffer and summed over the ranks in a single Allreduce."""
import numpy as np

from ..arrays import module_of, to_host


def sum_over_ranks(grads, extras, communicator):
    """(gradients summed over the ranks, extras summed over the ranks). The gradients come
    back as views of one fresh flat buffer of their dtype (float32 unless the model is
    float64), on the device they were computed on."""
    xp = module_of(grads[0]) if grads else np
    sizes = [g.size for g in grads]
    total = sum(sizes)
    dtype = grads[0].dtype if grads else np.float32
    flat = xp.empty(total + len(extras), dtype=dtype)
    start = 0
    for g, size in zip(grads, sizes):
        flat[start:start + size] = g.reshape(-1)
        start += size
    flat[total:] = xp.asarray(extras, dtype=dtype)
    communicator.sum_(flat)
    summed, start = [], 0
    for g, size in zip(grads, sizes):
        summed.append(flat[start:start + size].reshape(g.shape))
        start += size
    return summed, [float(v) for v in to_host(flat[total:])]    # a few numbers, copied once


def average_over_ranks(grads, communicator):
    """The mean over the ranks of each gradient (Horovod's DistributedOptimizer), for loops
    that call apply_gradients themselves."""
    summed, _ = sum_over_ranks(list(grads), [], communicator)
    return [g / g.dtype.type(communicator.size) for g in summed]
