"""What the ranks of a job share at the start of fit: the same job (checked), and rank 0's
weights, optimizer state and random generator (copied)."""
import hashlib
import json

import numpy as np

from .. import config
from ..saving.architecture import model_to_spec
from ..version import __version__
from ..arrays import module_of, to_host
from .communicator import DistributedError


def job_description(model, data):
    """What must be equal on every rank: scratchnet's version, the model's architecture and
    weight shapes, the optimizer, the loss, and ``data`` (sizes of the data and batches)."""
    architecture = json.dumps(model_to_spec(model), sort_keys=True, default=str)
    shapes = [list(layer.params[name].shape) for layer, name in model.weight_pairs()]
    optimizer = model.optimizer
    return {"scratchnet version": __version__,
            "model architecture": hashlib.sha256(architecture.encode()).hexdigest()[:16],
            "weight shapes": hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16],
            "dtype": np.dtype(model.dtype).name,
            "optimizer": f"{type(optimizer).__name__} {json.dumps(optimizer.get_config(), sort_keys=True, default=str)}",
            "loss": type(model.loss).__name__, **data}


def check_same_job(communicator, description):
    """Raise DistributedError on every rank when any rank's ``description`` differs from
    rank 0's, naming the ranks and what differs."""
    everyone = communicator.gather_json(description, "the check that every rank runs the same job")
    root = everyone[0]
    differences = []
    for rank, theirs in enumerate(everyone[1:], start=1):
        for key in sorted(set(root) | set(theirs)):
            if root.get(key) != theirs.get(key):
                differences.append(f"rank {rank} has {key} {theirs.get(key)!r} where rank 0 has {root.get(key)!r}")
    if differences:
        raise DistributedError("the ranks of this job do not run the same training: " + "; ".join(differences[:4])
                               + ("; ..." if len(differences) > 4 else "") + ". Start every rank with the same "
                               "script, scratchnet and data")


def _flat_broadcast(communicator, arrays, root, what):
    """Overwrite every array (host or device) with root's, through one flat host buffer."""
    if not arrays:
        return
    dtype = np.result_type(*[a.dtype for a in arrays])
    flat = np.concatenate([to_host(a).ravel().astype(dtype, copy=False) for a in arrays]) \
        if communicator.rank == root else np.empty(sum(a.size for a in arrays), dtype)
    communicator.broadcast_(flat, root, what)
    start = 0
    for a in arrays:
        part = flat[start:start + a.size].reshape(a.shape)
        a[...] = module_of(a).asarray(part, dtype=a.dtype)
        start += a.size


def broadcast_training_state(model, communicator, root=0):
    """Rank ``root``'s weights (trainable or not), optimizer state and random generator on
    every rank."""
    weights = [layer.params[name] for layer, name in model.weight_pairs()]
    _flat_broadcast(communicator, weights, root, "the broadcast of the weights")
    optimizer = model.optimizer
    if optimizer is not None:
        state = communicator.broadcast_json(
            {"iterations": int(optimizer.iterations), "scalars": optimizer.scalar_state(),
             "slots": optimizer.slots is not None}, root, "the broadcast of the optimizer state")
        optimizer.iterations = state["iterations"]
        optimizer.set_scalar_state(state["scalars"])
        if state["slots"]:
            if optimizer.slots is None:
                optimizer.slots = [optimizer.new_slots(layer.params[name]) for layer, name in model.trained_weight_pairs()]
            arrays = [slot[key] for slot in optimizer.slots for key in sorted(slot)]
            _flat_broadcast(communicator, arrays, root, "the broadcast of the optimizer state")
        else:
            optimizer.slots = None
    broadcast_random_state(communicator, root, model.all_layers())


def broadcast_random_state(communicator, root=0, layers=()):
    """Rank ``root``'s state of scratchnet's random generator on every rank, and of the own
    generators of ``layers`` that have one (a Dropout or augmentation layer given a seed)."""
    generators = [config.rng()] + [layer._rng for layer in layers if getattr(layer, "_rng", None) is not None]
    states = communicator.broadcast_json([g.bit_generator.state for g in generators], root,
                                         "the broadcast of the random generators")
    for generator, state in zip(generators, states):
        generator.bit_generator.state = state
