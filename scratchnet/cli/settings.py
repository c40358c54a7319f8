"""A training run's settings: which there are, their defaults, the ones this command line
gives, checking them, and spelling them as flags again."""
import math
import shlex
from pathlib import Path

from .. import backend
from .errors import UsageError, one_line
from .experiments import catsdogs_min_size

# Settings that decide what a run computes: restored by --resume, and an error if given
# again with another value. --epochs may be raised on resume to extend the run. The data
# itself is part of the run too: its fingerprint is recorded and must match on resume.
RUN_SETTINGS = ("model", "batch_size", "lr", "image_size", "augment", "seed", "limit", "from", "freeze_base",
                "scenes")
# Settings of the process that runs it (same results whatever they are, up to the last
# bits on another backend; the data's location, which may move; what the inspector
# watches): restored by --resume unless given again.
PROCESS_SETTINGS = ("data", "backend", "threads", "workers", "inspect")
CATSDOGS_ONLY = ("model", "image_size", "augment", "workers")
SEGMENT_ONLY = ("scenes",)
DEFAULTS = {
    "mnist": {"lr": 1e-3, "epochs": 5},
    "segment": {"lr": 1e-3, "epochs": 5, "scenes": 5000},
    "catsdogs": {"model": "seed", "epochs": 30, "image_size": 150, "augment": False, "workers": 2},
    "all": {"batch_size": 32, "backend": "cpu"},
}


def flag(name):
    return "--" + name.replace("_", "-")


def show(name, value):
    """A setting as it is written on the command line."""
    if value is True:
        return flag(name)
    if value is False:
        return "--no-" + name.replace("_", "-")
    return f"{flag(name)} {value}"


def given_settings(args):
    """The settings written on this command line (not their defaults)."""
    names = ("epochs",) + RUN_SETTINGS + PROCESS_SETTINGS
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    for name in CATSDOGS_ONLY:
        if name in given and args.experiment != "catsdogs":
            raise UsageError(f"{flag(name)} applies to catsdogs only, not to {args.experiment}")
    for name in SEGMENT_ONLY:
        if name in given and args.experiment != "segment":
            raise UsageError(f"{flag(name)} applies to segment only, not to {args.experiment}")
    for name in ("data", "from"):
        if given.get(name) is not None:
            given[name] = str(Path(given[name]).expanduser().resolve())
    if args.resume and "from" in given:
        raise UsageError("--from starts a new run from a saved model and --resume continues a run (whose checkpoint "
                         "already holds its model): give one of them")
    if "freeze_base" in given and "from" not in given and not args.resume:
        raise UsageError(f"{show('freeze_base', given['freeze_base'])} applies only with --from (the saved model "
                         f"whose base to freeze)")
    return given


def check_settings(settings):
    """Ranges, and that the settings fit together; raises UsageError naming the flag."""
    for name in ("epochs", "batch_size", "threads", "workers", "limit", "scenes", "inspect"):
        value = settings.get(name)
        if value is not None and value < 1:
            raise UsageError(f"{flag(name)} must be at least 1, got {value}")
    if not (math.isfinite(settings["lr"]) and settings["lr"] > 0):
        raise UsageError(f"--lr must be a positive number, got {settings['lr']}")
    if not 0 <= settings["seed"] < 2**63:
        raise UsageError(f"--seed must be a whole number from 0 to 2**63 - 1, got {settings['seed']}")
    if settings["experiment"] == "catsdogs" and settings.get("model", "seed") == "seed" and \
            not settings.get("from") and settings["image_size"] < catsdogs_min_size():
        raise UsageError(f"--image-size must be at least {catsdogs_min_size()} for the cats/dogs model "
                         f"(four 3x3 convolutions, each pooled by 2), got {settings['image_size']}")
    if settings.get("threads") is not None:
        import numba
        if settings["threads"] > numba.config.NUMBA_NUM_THREADS:
            raise UsageError(f"--threads must be at most {numba.config.NUMBA_NUM_THREADS} "
                             f"(NUMBA_NUM_THREADS), got {settings['threads']}")


def use_backend(settings, given):
    """Set the backend and threads; a recorded (not given) one this machine cannot use is
    replaced (threads) or named with the flag that overrides it (backend)."""
    threads = settings.get("threads")
    if threads is not None and "threads" not in given:
        import numba
        if threads > numba.config.NUMBA_NUM_THREADS:
            print(f"Using --threads {numba.config.NUMBA_NUM_THREADS}: the run used {threads}, and "
                  f"NUMBA_NUM_THREADS allows {numba.config.NUMBA_NUM_THREADS} here")
            settings["threads"] = numba.config.NUMBA_NUM_THREADS
    check_settings(settings)
    try:
        backend.set_backend(settings["backend"], threads=settings["threads"])
    except backend.GPUUnavailable as error:
        if "backend" in given:
            raise
        raise UsageError(f"this run used --backend {settings['backend']}, which cannot run here ({one_line(error)}); "
                         f"give --backend cpu to continue it on the CPU") from error


def start_command(settings, out):
    """The command that starts this run again from scratch, every setting spelt out."""
    words = ["python -m scratchnet.train", settings["experiment"], "--out", shlex.quote(str(out)),
             "--epochs", str(settings["epochs"])]
    for name in RUN_SETTINGS + PROCESS_SETTINGS:
        if settings.get(name) is not None and not (settings["experiment"] == "mnist" and name in CATSDOGS_ONLY):
            words.append(show(name, shlex.quote(str(settings[name])) if name in ("data", "from") else settings[name]))
    return " ".join(words)
