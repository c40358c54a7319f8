"""The processes of one data-parallel job, over MPI (mpi4py): sums of flat buffers, broadcasts,
and a watchdog that ends the whole job when a collective waits longer than ``timeout``
seconds (a rank died, hangs, or took another path), so that no rank hangs for ever."""
import json
import os
import sys
import threading
import time

import numpy as np

from ..arrays import is_device_array, module_of, to_host

DEFAULT_TIMEOUT = 300.0     # seconds a collective may wait for the slowest rank
TIMEOUT_VARIABLE = "SCRATCHNET_DISTRIBUTED_TIMEOUT"


class DistributedError(RuntimeError):
    """The ranks of a job disagree (model, data, scratchnet version) or cannot go on."""


def import_mpi():
    """mpi4py's MPI module, or an error saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("distributed training needs mpi4py and an MPI library: pip install "
                          "'scratchnet[distributed]' (mpi4py with MPICH, which brings mpiexec)") from error
    return MPI


def timeout_from_environment():
    value = os.environ.get(TIMEOUT_VARIABLE)
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be a positive number of seconds, got {value!r}")
    return seconds


class Watchdog:
    """A thread that aborts the job when one collective has waited ``timeout`` seconds.

    ``with watchdog.waiting("the gradient sum"):`` marks a collective in flight; entering
    and leaving cost two attribute writes, and the thread wakes twice a second."""

    def __init__(self, timeout, on_expiry):
        self.timeout, self.on_expiry = timeout, on_expiry
        self._deadline, self._what = None, None
        threading.Thread(target=self._watch, name="scratchnet-mpi-watchdog", daemon=True).start()

    def waiting(self, what):
        return _Waiting(self, what)

    def _watch(self):
        while True:
            time.sleep(0.5)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                self.on_expiry(f"{self._what} waited {self.timeout:g} s for the other ranks (one of them died, "
                               f"hangs or stopped calling the same collectives); ending the job")
                return


class _Waiting:
    def __init__(self, watchdog, what):
        self.watchdog, self.what = watchdog, what

    def __enter__(self):
        self.watchdog._what = self.what
        self.watchdog._deadline = time.monotonic() + self.watchdog.timeout

    def __exit__(self, *exc):
        self.watchdog._deadline = None


class Communicator:
    """Rank ``rank`` of ``size`` processes (MPI's COMM_WORLD unless ``comm`` is given).

    Every method is a collective: all ranks call it, in the same order. Each waits at most
    ``timeout`` seconds (default: $SCRATCHNET_DISTRIBUTED_TIMEOUT, else 300) before the
    watchdog ends the job."""

    def __init__(self, comm=None, timeout=None):
        self.MPI = import_mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(timeout) if timeout is not None else timeout_from_environment()
        self.watchdog = Watchdog(self.timeout, self.abort) if self.size > 1 else None
        self.device_sum = None      # set by use_nccl(): sums device buffers on the device
        self.seconds_in_sums = 0.0  # wall time spent in sum_ (the allreduce share of a step)

    @property
    def is_root(self):
        return self.rank == 0

    def describe(self):
        return f"rank {self.rank} of {self.size}"

    def _waiting(self, what):
        return self.watchdog.waiting(what) if self.watchdog is not None else _NoWait()

    def abort(self, message, code=1):
        """Say why on stderr, then end every rank of the job (MPI_Abort)."""
        print(f"error: {self.describe()}: {message}", file=sys.stderr, flush=True)
        time.sleep(1.0)     # mpiexec forwards the line before the abort tears its pipes down
        self.comm.Abort(code)

    # ----- collectives --------------------------------------------------------------------------
    def sum_(self, buffer, what="the gradient sum"):
        """Replace a flat float array (host, or device with NCCL set up) by its sum over all
        ranks, in one call; a device buffer without NCCL goes through the host."""
        started = time.perf_counter()
        with self._waiting(what):
            if is_device_array(buffer):
                if self.device_sum is not None:
                    self.device_sum(buffer)
                else:
                    host = to_host(buffer)
                    self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
                    buffer[...] = module_of(buffer).asarray(host)
            else:
                self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.seconds_in_sums += time.perf_counter() - started
        return buffer

    def sum_floats(self, values, what="the metrics' sums"):
        """Sums over all ranks of a few numbers, in float64."""
        buffer = np.array(values, dtype=np.float64)
        with self._waiting(what):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        return [float(v) for v in buffer]

    def broadcast_(self, buffer, root=0, what="the broadcast of the weights"):
        """Overwrite a host array with root's, in place."""
        with self._waiting(what):
            self.comm.Bcast(buffer, root=root)
        return buffer

    def broadcast_json(self, value, root=0, what="a broadcast"):
        """Root's JSON-able ``value`` on every rank (sent as JSON text: nothing is unpickled)."""
        data = json.dumps(value).encode() if self.rank == root else b""
        size = np.array([len(data)], dtype=np.int64)
        with self._waiting(what):
            self.comm.Bcast(size, root=root)
            buffer = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == root else \
                np.empty(int(size[0]), dtype=np.uint8)
            self.comm.Bcast(buffer, root=root)
        return json.loads(buffer.tobytes().decode())

    def gather_json(self, value, what="a comparison of the ranks"):
        """Every rank's JSON-able ``value``, in rank order, on every rank."""
        data = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
        with self._waiting(what):
            sizes = np.zeros(self.size, dtype=np.int64)
            self.comm.Allgather(np.array([len(data)], dtype=np.int64), sizes)
            gathered = np.empty(int(sizes.sum()), dtype=np.uint8)
            self.comm.Allgatherv(data, [gathered, sizes])
        ends = np.cumsum(sizes)
        return [json.loads(gathered[end - size:end].tobytes().decode()) for end, size in zip(ends, sizes)]

    def counts(self, count, what="the batch sizes"):
        """Every rank's ``count``, in rank order."""
        counts = np.zeros(self.size, dtype=np.int64)
        with self._waiting(what):
            self.comm.Allgather(np.array([count], dtype=np.int64), counts)
        return [int(c) for c in counts]

    def barrier(self, what="a barrier"):
        with self._waiting(what):
            self.comm.Barrier()


class _NoWait:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def local_rank_and_size(communicator):
    """(this rank's index among the ranks on its machine, how many ranks that machine runs)."""
    local = communicator.comm.Split_type(communicator.MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_rank(), local.Get_size()
    finally:
        local.Free()
