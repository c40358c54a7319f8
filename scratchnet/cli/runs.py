"""The run folder: what it holds, starting a new run in it or resuming the one it holds,
and the checkpoint written there after every epoch."""
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import callbacks, config
from ..saving import ModelFileError, read_model_file, save_model
from .errors import UsageError
from .experiments import CATSDOGS_MODELS
from .settings import CATSDOGS_ONLY, DEFAULTS, PROCESS_SETTINGS, show

CHECKPOINT = "checkpoint.npz"
FINAL_MODEL = "model.npz"
KERAS_MODEL = "model.keras"      # the same model, for Keras (keras.models.load_model reads it)


class Checkpoint(callbacks.Callback):
    """Saves model, optimizer, history, timings and random state atomically after every epoch."""

    writes_files = True     # in a job of several ranks, on rank 0 only

    def __init__(self, run_dir, settings, previous):
        self.path = Path(run_dir) / CHECKPOINT
        self.settings = settings
        self.previous = previous      # Progress.as_extra(): what the run did before this process
        self.epoch_seconds = []
        self.last_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self.started)
        # History runs after every other callback (as in Keras): this epoch is in ``logs``, not yet in it
        history = merge_history(merge_history(self.previous["history"], self.model.history.history),
                                {k: [v] for k, v in (logs or {}).items()})
        save_model(self.model, self.path, extra={
            "experiment": self.settings["experiment"], "settings": self.settings, "epoch": epoch + 1,
            "history": history,
            "epoch_seconds": self.previous["epoch_seconds"] + self.epoch_seconds,
            "schedule": self.previous["schedule"], "data_fingerprint": self.previous["data_fingerprint"],
            "seconds_untimed": self.previous["seconds_untimed"], "rng": config.rng().bit_generator.state})
        self.last_epoch = epoch + 1


def merge_history(previous, current):
    merged = {k: list(v) for k, v in (previous or {}).items()}
    for key, values in current.items():
        merged.setdefault(key, []).extend(values)
    return merged


@dataclass
class Progress:
    """What a run has done before this process: empty for a new run, else from its checkpoint."""
    initial_epoch: int = 0
    history: dict = field(default_factory=dict)
    epoch_seconds: list = field(default_factory=list)   # None for epochs an older scratchnet did not time
    schedule: list = field(default_factory=list)        # --epochs at the start, and after each change
    data_fingerprint: str = None
    seconds_untimed: float = 0.0   # the total an older scratchnet kept instead of epoch_seconds

    def as_extra(self):
        return {"history": self.history, "epoch_seconds": self.epoch_seconds, "schedule": self.schedule,
                "data_fingerprint": self.data_fingerprint, "seconds_untimed": self.seconds_untimed}


def run_folder(args):
    if args.out:
        return Path(args.out)
    if args.resume:
        runs = sorted(Path("runs").glob(f"{args.experiment}-*"))
        if not runs:
            raise UsageError(f"--resume: no runs/{args.experiment}-* folder to resume; pass --out")
        return runs[-1]
    return Path("runs") / f"{args.experiment}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def start_run(args, given, out, ranks=1):
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if (out / CHECKPOINT).exists():
        raise UsageError(f"{out} already holds a run ({CHECKPOINT}); pass --resume to continue it, or choose "
                         f"another --out")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} is not empty; choose a new or empty folder (nothing in it was changed)")
    settings = {"experiment": args.experiment, "data": None, "threads": None, "limit": None, "seed": None,
                "from": None, "freeze_base": None}
    settings.update(DEFAULTS["all"])
    settings.update(DEFAULTS[args.experiment])
    settings.update(given)
    settings["ranks"] = ranks
    if settings["from"] is not None and settings["freeze_base"] is None:
        settings["freeze_base"] = False
    if settings.get("lr") is None:
        settings["lr"] = CATSDOGS_MODELS[settings["model"]][2]
    if settings["seed"] is None:
        settings["seed"] = int(np.random.SeedSequence().entropy % 2**31)
        print(f"Seed {settings['seed']} (drawn; --seed {settings['seed']} repeats this run)")
    return settings, Progress(schedule=[settings["epochs"]])


def resume_run(args, given, out, ranks=1):
    """The recorded settings, with --epochs and the process settings from this command line;
    any other setting given with a different value is an error naming both, as is another
    number of ranks."""
    checkpoint = out / CHECKPOINT
    if not checkpoint.exists():
        raise FileNotFoundError(f"--resume: {checkpoint} does not exist")
    extra = read_model_file(checkpoint)[0].get("extra") or {}
    recorded = extra.get("settings")
    if not isinstance(recorded, dict) or "epoch" not in extra:
        raise ModelFileError(f"{checkpoint} is a model file, not a training checkpoint (no settings)")
    if recorded.get("experiment") != args.experiment:
        raise UsageError(f"{checkpoint} is a {recorded.get('experiment')} run, not {args.experiment}")
    if "freeze_base" in given and not recorded.get("from"):
        raise UsageError(f"{show('freeze_base', given['freeze_base'])} applies only to runs started with --from, "
                         f"and {checkpoint} was not")
    done = int(extra["epoch"])
    recorded_ranks = int(recorded.get("ranks") or 1)
    if recorded_ranks != ranks:
        how = f"mpiexec -n {recorded_ranks} python -m scratchnet.train {args.experiment} --distributed --resume" \
            if recorded_ranks > 1 else f"python -m scratchnet.train {args.experiment} --resume, without mpiexec"
        raise UsageError(f"this run trained on {recorded_ranks} rank(s) (global batch {recorded_ranks} x "
                         f"{recorded.get('batch_size')}), and this job has {ranks}; resume it with: {how}")
    settings = {k: v for k, v in recorded.items() if not (args.experiment == "mnist" and k in CATSDOGS_ONLY)}
    for name, value in given.items():
        before = recorded.get(name)
        if name == "epochs" and value < done:
            raise UsageError(f"--epochs {value} is fewer than the {done} epochs this run has done")
        if name == "epochs" or value == before:
            settings[name] = value
        elif name in PROCESS_SETTINGS:
            print(f"Using {show(name, value)} (the run used {show(name, before)})")
            settings[name] = value
        else:
            raise UsageError(f"{show(name, value)} differs from this run's {show(name, before)} (recorded in "
                             f"{checkpoint}); leave it out to resume with the run's settings, or start a new "
                             f"run with another --out")
    if settings.get("data") and "data" not in given and not Path(settings["data"]).exists():
        raise UsageError(f"this run's data, {settings['data']}, is no longer there; give --data with its new place")
    seconds, untimed = extra.get("epoch_seconds"), float(extra.get("seconds_untimed") or 0.0)
    if seconds is None:   # written by an older scratchnet, which kept only a total
        seconds, untimed = [None] * done, float(extra.get("seconds") or 0.0)
    schedule = extra.get("schedule") or [recorded.get("epochs")]
    if schedule[-1] != settings["epochs"]:
        schedule = schedule + [settings["epochs"]]
    progress = Progress(done, extra.get("history") or {}, list(seconds), schedule, extra.get("data_fingerprint"),
                        untimed)
    return settings, progress
