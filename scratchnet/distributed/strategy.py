"""The data-parallel answers to the training loop's questions (``training.strategy``):
``DistributedOptimizer`` attaches a ``DataParallelStrategy`` to the optimizer, and the loop,
which imports nothing from here, calls it through that seam."""
import contextlib
import math
from typing import NamedTuple

from .. import config
from ..arrays import module_of
from ..training import data_adapter
from ..training.strategy import LocalStrategy
from .allreduce import average_over_ranks, sum_over_ranks
from .nccl import use_nccl_if_available
from .state import broadcast_random_state, broadcast_training_state, check_same_job, job_description


class RankShare(NamedTuple):
    """This rank's samples [offset, offset + n) of a global batch of ``total``;
    ``random_source`` is a rank that drew random numbers for this step when some rank had
    no samples (its generators are then shared), else None."""
    offset: int
    total: int
    random_source: object = None


class DataParallelStrategy(LocalStrategy):
    """Each rank trains on its share of the single process's global batch; one Allreduce
    per step sums the gradients with the loss and a flag for a loss that is not finite."""

    allows_empty_batches = True      # a short last batch may leave a rank nothing

    def __init__(self, communicator):
        self.communicator = communicator
        self._batches = None           # the batches fit iterates, while it does

    active = property(lambda self: self.communicator.size > 1)
    is_root = property(lambda self: self.communicator.is_root)
    shard = property(lambda self: (self.communicator.rank, self.communicator.size))

    def start(self, model, train, validation, batch_size):
        """Check that every rank runs the same job; give every rank rank 0's state."""
        ranks = self.communicator
        data = {"batch size per rank": batch_size, "steps per epoch": train.steps,
                "training samples": data_adapter.num_samples(train.x) if hasattr(train, "x") else None,
                "validation steps": None if validation is None else validation.steps}
        check_same_job(ranks, job_description(model, data))
        broadcast_training_state(model, ranks)
        if model.backend.name == "gpu" and ranks.device_sum is None:
            use_nccl_if_available(ranks)

    def check_evaluation(self, model, steps):
        check_same_job(self.communicator, job_description(model, {"evaluation steps": steps}))

    def keep_callback(self, callback):
        """Callbacks that write files (checkpoints, CSV logs) run on rank 0 only."""
        return self.is_root or not getattr(callback, "writes_files", False)

    def verbosity(self, verbose):
        return verbose if self.is_root else 0

    @contextlib.contextmanager
    def watch(self, batches):
        previous, self._batches = self._batches, batches
        try:
            yield
        finally:
            self._batches = previous

    def share(self, n):
        ranks = self.communicator
        window = getattr(self._batches, "window", None)
        if window is None:         # a stream (or train_on_batch): the ranks' batches laid end to end, in rank order
            counts = ranks.counts(n)
            if not any(counts):    # every image of this batch unreadable on every rank: no step
                return None
            source = next(rank for rank, count in enumerate(counts) if count)
            return RankShare(sum(counts[:ranks.rank]), sum(counts), source if min(counts) == 0 else None)
        offset, total = window     # array shards (shard_bounds): only the last rank is sure to have samples
        return RankShare(offset, total, ranks.size - 1 if total < ranks.size else None)

    def batch_scope(self, share):
        """Dropout masks and augmentation draws of these samples of the global batch."""
        return config.batch_window(share.offset, share.total)

    def reduce(self, gradients, loss, finite, share, params):
        """The loss was divided by the global batch size, so the sum over the ranks is the
        single process's gradient; a loss not finite on any rank stops every rank's update."""
        if gradients is None:
            gradients = [module_of(p).zeros_like(p) for p in params]
        loss_sum = loss * share.total if finite else 0.0
        summed, (loss_sum, not_finite) = sum_over_ranks(gradients, [loss_sum, 0.0 if finite else 1.0],
                                                        self.communicator)
        if not_finite:
            return summed, math.nan, False
        return summed, loss_sum / share.total, True

    def finish_step(self, model, share):
        if share.random_source is not None:   # ranks without samples drew no dropout seeds: take a rank's that did
            broadcast_random_state(self.communicator, share.random_source, model.all_layers())

    def average_gradients(self, gradients):
        return average_over_ranks(gradients, self.communicator)

    def sum_totals(self, loss_sum, seen, metrics):
        """(loss sum, samples) summed over the ranks, the metrics' sums (``Metric.sums``: a
        total and a count, or an IoU metric's confusion matrix) with them, in one Allreduce."""
        values, sizes = [loss_sum, seen], []
        for metric in metrics:
            part = metric.sums()
            values += part
            sizes.append(len(part))
        summed = self.communicator.sum_floats(values)
        start = 2
        for metric, size in zip(metrics, sizes):
            metric.set_sums(summed[start:start + size])
            start += size
        return summed[0], summed[1]
