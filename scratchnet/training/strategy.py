"""The seam between the training loop and how many processes train.

The loop asks its optimizer's ``strategy`` (``LocalStrategy`` unless
``distributed.DistributedOptimizer`` attached a data-parallel one) the few questions whose
answers differ when several processes share each step; it never asks how many there are.
One process answers them all with "as they are", which is what this class does. The
data-parallel answers live in ``scratchnet.distributed.strategy``, which subclasses it
(Horovod and ChainerMN likewise wrap the optimizer and leave the loop alone).
"""
import contextlib
from typing import NamedTuple


class StepShare(NamedTuple):
    """Where this process's batch lies in the step's global batch: it holds samples
    [offset, offset + n) of ``total``."""
    offset: int
    total: int


class LocalStrategy:
    """Training in one process: every question answered with "as given"."""

    active = True             # (a data-parallel strategy of one rank is not: it trains alone)
    is_root = True            # this process prints progress and writes files
    shard = None              # (rank, ranks) for array data, or None: the whole batch is ours
    allows_empty_batches = False

    def start(self, model, train, validation, batch_size):
        """At the start of fit, before the first step: nothing to agree on alone."""

    def check_evaluation(self, model, steps):
        """At the start of evaluate: nothing to agree on alone."""

    def keep_callback(self, callback):
        """Whether ``callback`` runs in this process (all do)."""
        return True

    def verbosity(self, verbose):
        return verbose

    def watch(self, batches):
        """A context for fit's loop over ``batches`` (another strategy reads, while it lasts,
        where each batch lies in its global batch)."""
        return contextlib.nullcontext()

    def share(self, n):
        """Where a batch of ``n`` samples lies in its step's global batch (all of it), or None
        where no process has a sample of this step."""
        return StepShare(0, n)

    def batch_scope(self, share):
        """A context for the forward pass of this share (dropout and augmentation draws)."""
        return contextlib.nullcontext()

    def reduce(self, gradients, loss, finite, share, params):
        """(gradients, loss, finite) of the whole step from this process's (gradients None
        where it had no sample; ``params`` the weights they are for): its own."""
        return gradients, loss, finite

    def finish_step(self, model, share):
        """After a step's update: nothing to share."""

    def average_gradients(self, gradients):
        """For loops of one's own that call apply_gradients: the gradients as they are."""
        return gradients

    def sum_totals(self, loss_sum, seen, metrics):
        """The loss sum, sample count and metrics' totals over every process: these."""
        return loss_sum, seen


LOCAL = LocalStrategy()


def strategy_of(optimizer):
    """The strategy an optimizer carries, or the one-process strategy."""
    strategy = getattr(optimizer, "strategy", None)
    return strategy if strategy is not None and strategy.active else LOCAL
