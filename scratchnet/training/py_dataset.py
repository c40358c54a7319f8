"""``keras.utils.PyDataset`` (old name ``Sequence``): a dataset of batches by index, and
the reader fit / evaluate / predict use for one.

The reader follows Keras 3's epoch iterator for a PyDataset: one epoch reads batches
``0 .. num_batches - 1`` (in a fresh random order when fit shuffles a finite one); with
``steps_per_epoch`` the same pass carries on across epochs and an epoch ends early, with a
warning, where the pass reaches the last batch; ``on_epoch_begin`` / ``on_epoch_end`` are
called around each pass, and ``on_epoch_end`` once more where Keras resets its iterator
(before fit's first epoch, before each evaluation). With ``workers > 1`` the batches of the
epoch are fetched ahead in a thread pool (a pool of forked processes with
``use_multiprocessing=True``, as Keras; threads where fork is not available), in order, at
most ``max_queue_size`` ahead.
"""
import itertools
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from .. import config
from .data_adapter import StreamBatches


class PyDataset:
    """Base class of a dataset of batches read by index, as keras.utils.PyDataset.

    Subclasses implement ``__getitem__(index)`` returning a batch ((x, y), (x, y,
    sample_weight) or x) and ``__len__`` (or a ``num_batches`` property; None means endless),
    and may implement ``on_epoch_begin`` / ``on_epoch_end``. They should call
    ``super().__init__(**kwargs)`` so that ``workers``, ``use_multiprocessing`` and
    ``max_queue_size`` are kept: with ``workers > 1`` batches are read ahead in threads."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        if not hasattr(self, "_workers"):
            self._workers, self._use_multiprocessing, self._max_queue_size = 1, False, 10
            warnings.warn("Your PyDataset class should call super().__init__(**kwargs) in its constructor; "
                          "**kwargs can include workers, use_multiprocessing and max_queue_size.", stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        """The batch at position ``index``."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) returning a batch")

    def __iter__(self):
        count = self.num_batches
        for index in (range(count) if count is not None else itertools.count()):
            yield self[index]

    @property
    def num_batches(self):
        """Batches in one epoch (``len(self)``), or None for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ or a num_batches property "
                                  f"(None for an endless dataset)")

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset


def is_py_dataset(x):
    """scratchnet's PyDataset, or Keras's own (keras.utils.PyDataset / Sequence)."""
    if isinstance(x, PyDataset):
        return True
    return any(cls.__name__ in ("PyDataset", "Sequence") and cls.__module__.startswith(("keras", "tensorflow"))
               for cls in type(x).__mro__)


_warned_processes = []


class PyDatasetBatches(StreamBatches):
    """The batches of a PyDataset, one epoch per iteration (see the module's docstring).
    ``reset_before`` is true for fit's and evaluate's data (Keras calls ``on_epoch_end``
    when it resets their iterator), false for predict's."""

    def __init__(self, dataset, steps, what, shuffle=False, reset_before=True):
        self.data, self.what, self.ran_out, self.class_weight = dataset, what, False, None
        self.steps_per_epoch = steps
        count = dataset.num_batches
        if count is None and shuffle:
            warnings.warn("shuffle=True was passed, but will be ignored since the data x was provided as an "
                          "infinite PyDataset. The PyDataset is expected to already be shuffled.", stacklevel=5)
        self.shuffle = shuffle and count is not None
        self.steps = steps or count
        self.reset_before = reset_before
        self.index = None
        self._order, self._seen = None, 0
        workers = getattr(dataset, "workers", 1) or 0
        processes = bool(getattr(dataset, "use_multiprocessing", False))
        self.workers = workers if workers > 1 or (workers > 0 and processes) else 0
        self.processes = bool(self.workers and processes)
        if self.processes and "fork" not in multiprocessing.get_all_start_methods():
            self.processes = False
            if not _warned_processes:
                _warned_processes.append(True)
                warnings.warn("PyDataset(use_multiprocessing=True): this platform cannot fork, so scratchnet "
                              "reads the batches in a thread pool instead (Keras uses processes)", stacklevel=5)
        self.queue_size = max(1, int(getattr(dataset, "max_queue_size", 10) or 1))

    def reset(self):
        """Where Keras resets its epoch iterator: a fresh pass, and ``on_epoch_end``."""
        self._order, self._seen = None, 0
        if self.reset_before:
            self.data.on_epoch_end()

    def _fresh_order(self, count):
        if count is None:
            return itertools.count()
        order = config.rng().permutation(count) if self.shuffle else np.arange(count)
        return iter(order.tolist())

    def _epoch_indices(self, count):
        """The indices this epoch reads, lazily, and whether it ends where the pass ends."""
        limit = self.steps_per_epoch or count
        if limit is None:                                  # endless, with no steps: read until stopped
            return self._fresh_order(None)
        if self._order is None or self.steps_per_epoch is None:
            self._order, self._seen = self._fresh_order(count), 0
        return self._take(limit, count)

    def _take(self, limit, count):
        for _ in range(limit):
            if count is not None and self._seen >= count:
                if self.steps_per_epoch:
                    warnings.warn(f"the PyDataset of {self.what} ran out of data: it has {count} batches, fewer than "
                                  f"steps_per_epoch={self.steps_per_epoch} from where this epoch began; the "
                                  f"epoch ends here and the next starts at batch 0 again (as in Keras)",
                                  stacklevel=6)
                break
            self._seen += 1
            yield next(self._order)
        if count is not None and self._seen >= count:
            self._order, self._seen = None, 0

    def __iter__(self):
        count = self.data.num_batches
        self.data.on_epoch_begin()
        indices = self._epoch_indices(count)
        for self.index, batch in (self._prefetched(indices) if self.workers else
                                  ((i, self.data[i]) for i in indices)):
            yield standardize(batch, self.index)
        self.index = None
        self.data.on_epoch_end()

    def _prefetched(self, indices):
        """(index, batch) in order, read up to ``queue_size`` ahead by ``workers`` threads, or
        processes forked at the start of each epoch (so each sees the dataset as on_epoch_begin
        left it; what __getitem__ changes in them stays there, as in Keras)."""
        if self.processes:
            pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_adopt, initargs=(self.data,))
            read = _read_adopted
        else:
            pool, read = ThreadPoolExecutor(self.workers), self.data.__getitem__
        pending = []
        try:
            for index in indices:
                pending.append((index, pool.submit(read, index)))
                if len(pending) >= self.queue_size:
                    index, future = pending.pop(0)
                    yield index, future.result()
            while pending:
                index, future = pending.pop(0)
                yield index, future.result()
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True)


_adopted = []


def _adopt(dataset):
    """In a forked worker: the dataset it reads (inherited through fork, not pickled)."""
    _adopted[:] = [dataset]


def _read_adopted(index):
    return _adopted[0][index]


def standardize(batch, index):
    """A batch as (x,), (x, y) or (x, y, sample_weight), or a clear error naming the index."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, tuple):
        if len(batch) in (1, 2, 3):
            return batch
        got = f"a {len(batch)}-tuple"
    elif isinstance(batch, dict) or hasattr(batch, "shape"):
        return (batch,)
    else:
        got = f"{type(batch).__name__} {str(batch)[:60]}"
    raise ValueError(f"PyDataset.__getitem__({index}) must return (x, y), (x, y, sample_weight) or x "
                     f"(arrays); got {got}")
