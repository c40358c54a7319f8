"""Data-parallel training over MPI, in the style ChainerMN and Horovod made standard.

    # run with: mpiexec -n 4 python train.py
    from scratchnet import distributed
    distributed.init()
    model.compile(optimizer=distributed.DistributedOptimizer(optimizers.Adam(1e-3 * distributed.size())), ...)
    model.fit(x, y, batch_size=32, epochs=5, verbose=1 if distributed.rank() == 0 else 0)

Every rank runs the same script on the same data. ``DistributedOptimizer`` marks the
optimizer; a model compiled with it makes ``fit`` (and ``evaluate``) collective:

- at the start of fit, the ranks check that they run the same model, optimizer, loss,
  scratchnet version and amount of data (an error on every rank otherwise), and rank 0's
  weights, optimizer state and random generator are copied to the others;
- every step takes a global batch of ``size() * batch_size`` samples, exactly the batch one
  process would take at that batch size (same shuffled order), and each rank trains on its
  share of it; dropout masks and augmentation draws are those the single process would make
  for those samples;
- the gradients are summed with one fused Allreduce per step (one flat float buffer), so
  the update equals the single process's at the global batch, up to float rounding;
- each step's loss is the global batch's; at the end of each epoch the metrics and the
  validation results are summed over the ranks, so every rank gets the same epoch logs and
  epoch-level callbacks (EarlyStopping, ReduceLROnPlateau, checkpoints) decide alike. The
  metrics in batch-level logs are each rank's own: a callback that stops training in the
  middle of an epoch must not decide from them (the ranks would part, and the watchdog end
  the job). Progress bars print on rank 0 only, and callbacks that write files
  (ModelCheckpoint, CSVLogger) run on rank 0 only.

BatchNormalization's moving statistics stay per rank, as in Horovod: each rank normalises
with its own share's batch statistics, and the moving averages saved come from rank 0. The
validation results then mix the ranks' statistics, so they describe rank 0's saved model
only approximately.

Image iterators (``flow``, ``flow_from_directory``) take ``.shard(rank, size)``; they need
the same ``seed`` on every rank. Any other iterable of batches is taken as this rank's own
share, the ranks' batches laid end to end making the global batch.

A rank that raises ends the whole job (``init`` installs the hook); a collective that waits
longer than the timeout (default 300 s, $SCRATCHNET_DISTRIBUTED_TIMEOUT) ends it too.
"""
import sys

from ..optimizers import get as get_optimizer
from ..training.data_adapter import shard_bounds
from .communicator import Communicator, DistributedError, local_rank_and_size
from .state import broadcast_training_state
from .strategy import DataParallelStrategy

__all__ = ["init", "rank", "size", "local_rank", "local_rank_and_size", "is_root", "DistributedOptimizer", "broadcast_model",
           "Communicator", "DistributedError", "shard_bounds", "world"]

_world = None


def init(timeout=None):
    """Join the job started by mpiexec (a job of one process without it) and return its
    Communicator. Calling it again returns the same one. From then on, an exception that
    reaches the top of any rank ends every rank (MPI_Abort) instead of leaving them waiting."""
    global _world
    if _world is None:
        _world = Communicator(timeout=timeout)
        if _world.size > 1:
            _install_abort_on_error(_world)
    return _world


def world():
    """The Communicator of ``init``, or None before it."""
    return _world


def rank():
    return init().rank


def size():
    return init().size


def is_root():
    return init().is_root


def local_rank():
    """This rank's index among the ranks on its machine (which GPU to use)."""
    return local_rank_and_size(init())[0]


def DistributedOptimizer(optimizer, communicator=None):   # noqa: N802 (Horovod's name)
    """Mark ``optimizer`` for data-parallel training and return it (the same object: it
    saves, schedules and reports as before). A model compiled with it trains as the module
    describes; ``apply_gradients`` called directly averages the gradients over the ranks
    first, as Horovod's does. Scale the learning rate with the global batch yourself (the
    usual rule: multiply it by ``size()``)."""
    optimizer = get_optimizer(optimizer)
    optimizer.strategy = DataParallelStrategy(communicator or init())
    return optimizer


def communicator_of(optimizer):
    """The Communicator an optimizer was marked with, when it joins more than one rank."""
    strategy = getattr(optimizer, "strategy", None)
    return strategy.communicator if isinstance(strategy, DataParallelStrategy) and strategy.active else None


def broadcast_model(model, root=0, communicator=None):
    """Copy rank ``root``'s weights and optimizer state to every rank (what fit does at its
    start); for training loops of your own."""
    broadcast_training_state(model, communicator or init(), root)


def _install_abort_on_error(communicator):
    previous = sys.excepthook

    def abort_job(kind, value, traceback):
        previous(kind, value, traceback)
        if not issubclass(kind, KeyboardInterrupt):
            communicator.abort(f"{kind.__name__}: {value}; ending every rank of the job")

    sys.excepthook = abort_job


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from ..names import missing
    raise missing("distributed", name, __all__)
