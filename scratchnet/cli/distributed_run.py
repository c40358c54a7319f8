"""``--distributed``: a training run as one rank of an MPI job. Rank 0 decides how the run
starts and tells the others; the ranks on one machine share its cores."""
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .. import distributed
from ..saving import ModelFileError
from .errors import UsageError, one_line
from .runs import Progress, resume_run, run_folder, start_run


class QuietExit(Exception):
    """A rank other than 0 ends with rank 0's exit code; rank 0 has said why."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def job_ranks(args):
    """The job's Communicator for --distributed (None without it, or with one rank alone)."""
    if not args.distributed:
        return None
    ranks = distributed.init()
    if ranks.size == 1:
        print("--distributed: this job has one rank (start it with mpiexec -n K to train on K)")
        return None
    return ranks


def agreed_start(args, given, ranks):
    """(run folder, settings, progress), decided by rank 0 (the folder's timestamp, a drawn
    seed, the checkpoint it reads) and sent to every rank. An error there is said by rank 0,
    and the other ranks end quietly with its exit code."""
    payload = {}
    if ranks.is_root:
        try:
            out = run_folder(args)
            settings, progress = resume_run(args, given, out, ranks.size) if args.resume else \
                start_run(args, given, out, ranks.size)
            payload = {"out": str(out), "settings": settings, "progress": asdict(progress)}
        except (UsageError, OSError, ValueError, ModelFileError) as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            ranks.broadcast_json({"error": 2}, what="the start of the run")
            raise QuietExit(2) from error
        except BaseException:
            ranks.broadcast_json({"error": 1}, what="the start of the run")
            raise
    payload = ranks.broadcast_json(payload, what="the start of the run")
    if "error" in payload:
        raise QuietExit(payload["error"])
    return Path(payload["out"]), payload["settings"], Progress(**payload["progress"])


def share_cores(settings, ranks):
    """Without --threads, the machine's cores shared by the ranks on it."""
    if settings.get("threads") is None:
        local, on_machine = distributed.local_rank_and_size(ranks)
        import numba
        settings["threads"] = max(1, min((os.cpu_count() or 1) // on_machine, numba.config.NUMBA_NUM_THREADS))
        print(f"--distributed: {ranks.size} ranks, {on_machine} on this machine with {settings['threads']} "
              f"thread(s) each (--threads sets it)")
