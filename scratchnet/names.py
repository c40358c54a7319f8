"""The error for a Keras name scratchnet lacks: what was asked for, the nearest thing it has,
and everything it has of that kind."""
import difflib

# Keras names whose nearest counterpart here is not the nearest spelling
NEAREST = {
    "layers.RandomBrightness": "RandomContrast",
    "layers.CenterCrop": "Resizing(crop_to_aspect_ratio=True)",
    "layers.Conv1D": "Conv2D", "layers.Conv3D": "Conv2D",
    "optimizers.Lion": "AdamW", "optimizers.Ftrl": "Adagrad",
    "losses.LogCosh": "Huber", "losses.Hinge": "BinaryCrossentropy",
    "metrics.Accuracy": "BinaryAccuracy or CategoricalAccuracy (or metrics=['accuracy'])",
    "datasets.cifar100": "cifar10", "datasets.imdb": None,
    "callbacks.BackupAndRestore":
        "ModelCheckpoint (python -m scratchnet.train resumes a run with --resume)",
    # Horovod's names: fit broadcasts rank 0's state and sums the metrics itself
    "distributed.callbacks": "fit itself (with a DistributedOptimizer it broadcasts rank 0's state and sums the "
                             "metrics over the ranks)",
    "distributed.BroadcastGlobalVariablesCallback": "broadcast_model (fit calls it by itself)",
    "distributed.MetricAverageCallback": "fit itself (with a DistributedOptimizer it sums the metrics over the ranks)",
    "distributed.allreduce": "Communicator.sum_",
}


def missing(kind, name, have, extra=""):
    """AttributeError: 'scratchnet has no KIND.NAME; NEAREST is the nearest; its KIND are ...'."""
    key = f"{kind}.{name}"
    nearest = NEAREST[key] if key in NEAREST else \
        (difflib.get_close_matches(name, list(have), n=1, cutoff=0.75) or [None])[0]
    hint = f"; {nearest} is the nearest" if nearest else ""
    return AttributeError(f"scratchnet has no {key}{hint}; its {kind} are {', '.join(sorted(have))}{extra}")
