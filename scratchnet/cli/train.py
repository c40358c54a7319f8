"""Train the reference models from the command line.

    python -m scratchnet.train mnist
    python -m scratchnet.train catsdogs --data ../shared/data/catsdogs-128.tar
    python -m scratchnet.train segment               # a U-Net labels the pixels of digit scenes
    python -m scratchnet.train mnist --from runs/m1/model.npz --freeze-base   # transfer learning

Every run has a folder (``--out``, default runs/EXPERIMENT-TIMESTAMP) that receives a
checkpoint after each epoch, the final model, the history as JSON and PNG plots. The
checkpoint records every setting of the run; ``--resume`` restores them all and
continues from the last complete epoch (``--epochs`` may extend the run; any other
setting given again must equal the recorded one). Ctrl-C saves the weights and says how
to resume. Every error is one line on stderr and a non-zero exit.

``--from`` starts from a saved model instead of fresh weights, the way the Keras
transfer-learning tutorial does it: the whole model goes on training when its output fits
the experiment, else its convolutional base (the layers up to and including the last
Flatten or global pooling layer) gets a fresh head like the experiment's own;
``--freeze-base`` freezes that base (``trainable = False``) before compile.

``--distributed`` makes the process one rank of a data-parallel job started by mpiexec:

    mpiexec -n 2 python -m scratchnet.train mnist --distributed --batch-size 32

Each rank trains on its share of every global batch of K x --batch-size samples (the same
run as one process at that batch size and the same --lr); rank 0 alone writes the run
folder, and --resume needs the same number of ranks.

This module is the order of the steps; each step's details live beside it in scratchnet.cli.
"""
import contextlib
import os
import sys

from .. import backend, callbacks, config, distributed, optimizers
from ..datasets.download import DownloadError
from ..distributed import DistributedError
from ..inspector import TrainingInspector
from ..models import TrainingDiverged
from ..saving import ModelFileError, load_model
from . import report
from .distributed_run import QuietExit, agreed_start, job_ranks, share_cores
from .errors import UsageError, one_line
from .experiments import CATSDOGS_MODELS, EXPERIMENTS, cosine_schedule, optimizer_name
from .parser import make_parser
from .runs import CHECKPOINT, Checkpoint, resume_run, run_folder, start_run
from .settings import RUN_SETTINGS, given_settings, show, use_backend
from .transfer import load_source, transfer_model


def main(argv=None):
    args = make_parser().parse_args(argv)
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_like_ctrl_c)   # `kill` saves a checkpoint too
    try:
        ranks = job_ranks(args)
    except ImportError as error:
        print(f"error: --distributed: {one_line(error)}", file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(open(os.devnull, "w")) if ranks and not ranks.is_root \
                else contextlib.nullcontext():
            return train(args, ranks)
    except QuietExit as exit_:
        return exit_.code
    except KeyboardInterrupt:
        print("error: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    except (TrainingDiverged, MemoryError, DistributedError) as error:
        return failed(error, 1, ranks, said_alike=not isinstance(error, MemoryError))
    except (UsageError, OSError, ValueError, ModelFileError, DownloadError, backend.GPUUnavailable) as error:
        return failed(error, 2, ranks)


def _stop_like_ctrl_c(signum, frame):
    raise KeyboardInterrupt


def failed(error, code, ranks, said_alike=False):
    """Say what went wrong on one line; in a job of several ranks, an error every rank meets
    alike (``said_alike``) is said by rank 0 alone, and any other one ends every rank."""
    if ranks is None:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return code
    if said_alike:
        if ranks.is_root:
            print(f"error: {one_line(error)}", file=sys.stderr)
        return code
    ranks.abort(one_line(error), code)
    return code


def train(args, ranks=None):
    """One run, step by step: its folder and settings, the backend, the data, the model;
    then training, and the report."""
    given = given_settings(args)
    if ranks is None:
        out = run_folder(args)
        settings, progress = resume_run(args, given, out) if args.resume else start_run(args, given, out)
    else:
        out, settings, progress = agreed_start(args, given, ranks)
        share_cores(settings, ranks)
    source = load_source(settings, given) if settings.get("from") and not args.resume else None
    use_backend(settings, given)
    if ranks is not None and settings["backend"] == "gpu":
        from ..distributed.nccl import select_gpu
        select_gpu(ranks)                          # one GPU per rank on each machine
    experiment = EXPERIMENTS[settings["experiment"]]
    data = experiment.load_data(settings)          # data problems surface before any model is built
    if ranks is not None and settings["experiment"] == "catsdogs":
        for iterator in data:                      # each rank decodes only its share of each batch
            iterator.shard(ranks.rank, ranks.size)
    try:
        fingerprint = experiment.fingerprint(data)
        if progress.data_fingerprint not in (None, fingerprint):
            raise UsageError(f"the data at {settings['data'] or 'the MNIST cache'} is not the data this run was "
                             f"trained on (fingerprint {fingerprint}, recorded {progress.data_fingerprint}); "
                             f"give --data with the run's data")
        progress.data_fingerprint = fingerprint
        model = resumed_model(out, progress, settings) if args.resume else new_model(settings, experiment, source)
        if ranks is not None:
            distributed.DistributedOptimizer(model.optimizer, ranks)
        return train_and_report(settings, experiment, model, data, progress, out, ranks)
    finally:
        experiment.close(data)


def new_model(settings, experiment, source=None):
    """The run's model, compiled: built fresh, or from ``source`` (the model --from loaded)."""
    config.set_random_seed(settings["seed"])
    model = experiment.build(settings) if source is None else transfer_model(source, settings, experiment)
    optimizer = (optimizers.Adam(settings["lr"]) if optimizer_name(settings, experiment) == "adam"
                 else optimizers.RMSprop(settings["lr"]))
    model.compile(optimizer=optimizer, loss=experiment.loss, metrics=experiment.metrics())
    model.summary()
    return model


def resumed_model(out, progress, settings):
    """The model, optimizer and random state of the run's checkpoint."""
    model = load_model(out / CHECKPOINT)
    config.rng().bit_generator.state = model.saved_extra["rng"]
    shown = [show(k, settings[k]) for k in RUN_SETTINGS if settings.get(k) is not None]
    print(f"Resuming {out} after epoch {progress.initial_epoch} of {settings['epochs']} with its settings: "
          + " ".join(shown))
    if progress.initial_epoch >= settings["epochs"]:
        print("no epochs left to train: evaluating and writing the run's model and plots")
    return model


def train_and_report(settings, experiment, model, data, progress, out, ranks=None):
    """Train (checkpointing each epoch), then write the model, history.json and the plots.
    Ctrl-C saves what there is and says how to go on. In a job of several ranks, the others
    train and leave the writing to rank 0."""
    root = ranks is None or ranks.is_root
    created = not out.exists()
    if root:
        out.mkdir(parents=True, exist_ok=True)
    hook = Checkpoint(out, settings, progress.as_extra())
    hooks = [hook]
    if "model" in settings and CATSDOGS_MODELS[settings["model"]][3]:
        hooks.insert(0, callbacks.LearningRateScheduler(cosine_schedule(settings["lr"], settings["epochs"])))
    if settings.get("inspect") and root:
        x, y = experiment.probe(data)
        hooks.append(TrainingInspector(x, y, every=settings["inspect"], log_dir=out / "tensorboard",
                                       picture=out / "inspector.png"))
    try:
        result = experiment.run(settings, model, data, progress.initial_epoch, hooks, root)
        if not root:
            return 0
        record, paths = report.write_run(out, settings, model, result, progress, hook.epoch_seconds)
    except KeyboardInterrupt:
        if not root:
            return 130
        return report.interrupted(out, settings, model, hook.last_epoch or progress.initial_epoch, created)
    report.print_summary(out, experiment.held_out, record, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
