"""Model files: architecture, weights and optimizer state in one file, without pickle.

The file is a NumPy .npz archive (a zip of .npy arrays) read with allow_pickle=False:
``format`` (the version), ``model.json`` (architecture, compile settings and anything
else JSON can hold, as UTF-8 bytes), ``weight_<i>`` and ``optimizer_<i>``. Before any
array is read, every member's .npy header is checked: plain numeric dtypes only, sizes
that match the bytes stored and stay under a limit. Loading builds layers only from the
known layer classes with the arguments they accept (``architecture``), checks every
weight's shape before any layer allocates one, and so a file can never run code.

Version 2 holds any model (Sequential, functional, models inside models) and names each
weight by its path (layer names, then the weight's); version 1 files (Sequential models
of earlier scratchnets) still load.

Writes go to a temporary file in the same folder, renamed over the target at the end:
a crash or Ctrl-C while saving leaves the old file intact.
"""
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .. import losses, metrics, optimizers
from ..arrays import to_host, to_module
from .architecture import ArchitectureError, build_from_config, model_from_spec, model_to_spec, weight_names
from .files import ModelFileError, atomic_write

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_ARRAY_BYTES = 2 << 30      # no single array above 2 GiB
_ALLOWED_KINDS = "biuf"


def save_model(model, path, extra=None):
    """Write ``model`` (architecture, weights, compile settings, optimizer state) to ``path``.
    ``extra`` is any JSON-serialisable dict stored beside (used by checkpoints)."""
    if not model.built or model._graph is None:
        raise ValueError(f"model {model.name!r} has not been built, so it has no weights to save")
    weights = model.get_weights()
    names = weight_names(model)
    if len(names) != len(weights):
        raise ValueError(f"model {model.name!r}: {len(weights)} weights but {len(names)} weight names")
    document = {
        "format": FORMAT_VERSION,
        "model": model_to_spec(model),
        "weights": names,
        "compile": None,
        "extra": extra or {},
    }
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)}
    if model.compiled:
        optimizer = model.optimizer
        slots = optimizer.slots or []
        document["compile"] = {
            "optimizer": {"class_name": type(optimizer).__name__, "config": optimizer.get_config(),
                          "iterations": optimizer.iterations, "state": optimizer.scalar_state(),
                          "slots": [sorted(slot) for slot in slots]},
            "loss": {"class_name": type(model.loss).__name__, "config": model.loss.get_config()},
            "metrics": [spec.saved for spec in model.metric_specs if not spec.weighted],
            "weighted_metrics": [spec.saved for spec in model.metric_specs if spec.weighted],
        }
        k = 0
        for slot in slots:
            for name in sorted(slot):
                arrays[f"optimizer_{k}"] = to_host(slot[name])   # explicit copy off the GPU
                k += 1
    arrays["format"] = np.array(FORMAT_VERSION, dtype=np.int64)
    arrays["model.json"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _metric_from_entry(entry, path):
    """A metric for compile from a file's entry (``metrics.from_saved``); a configuration its
    class refuses is a ModelFileError."""
    try:
        return metrics.from_saved(entry)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: metric {entry.get('class_name')} with {entry.get('config')}: {error}") from None


# ----- reading --------------------------------------------------------------------------------
def _check_members(path):
    """Validate every .npy header in the archive before NumPy reads any data."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelFileError(f"{path} is not a scratchnet model file (not a zip archive: {error})") from error
    with archive:
        names = set()
        for info in archive.infolist():
            if not info.filename.endswith(".npy") or "/" in info.filename:
                raise ModelFileError(f"{path}: unexpected member {info.filename!r}")
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    shape, fortran, dtype = (np.lib.format.read_array_header_1_0(member) if version == (1, 0)
                                             else np.lib.format.read_array_header_2_0(member))
                    header_end = member.tell()
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
                raise ModelFileError(f"{path}: member {info.filename!r} is not a valid array ({error})") from error
            if dtype.kind not in _ALLOWED_KINDS or dtype.hasobject:
                raise ModelFileError(f"{path}: member {info.filename!r} has dtype {dtype}; only numeric "
                                     f"arrays are allowed")
            nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if nbytes > MAX_ARRAY_BYTES:
                raise ModelFileError(f"{path}: member {info.filename!r} declares {nbytes:,} bytes, more than "
                                     f"the {MAX_ARRAY_BYTES:,} allowed")
            if info.file_size != header_end + nbytes:
                raise ModelFileError(f"{path}: member {info.filename!r} declares shape {shape} ({nbytes:,} "
                                     f"bytes) but holds {info.file_size - header_end:,}; the file is "
                                     f"truncated or corrupted")
            names.add(info.filename[:-4])
    return names


def read_model_file(path):
    """(document dict, {name: array}) from a model file, or ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    names = _check_members(path)
    if "model.json" not in names or "format" not in names:
        raise ModelFileError(f"{path} is not a scratchnet model file (no model.json / format)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in names}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ModelFileError(f"{path} could not be read: {error}") from error
    version = int(arrays.pop("format"))
    if version not in READABLE_VERSIONS:
        raise ModelFileError(f"{path} has format version {version}; this scratchnet reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
    try:
        document = json.loads(arrays.pop("model.json").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: model.json is not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise ModelFileError(f"{path}: model.json does not describe a model")
    if version == 1:   # a Sequential model of an earlier scratchnet: its layers, weights in order
        if not isinstance(document.get("layers"), list):
            raise ModelFileError(f"{path}: model.json does not describe a model")
        document = {**document, "model": {"class_name": "Sequential", "name": document.get("name"),
                                          "input_shape": document.get("input_shape"),
                                          "layers": document["layers"]}, "weights": None}
    if not isinstance(document.get("model"), dict):
        raise ModelFileError(f"{path}: model.json does not describe a model")
    return document, arrays


def _construct(kind, registry_get, spec, path):
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ModelFileError(f"{path}: a {kind} entry is malformed: {spec!r:.200}")
    return build_from_config(registry_get, spec.get("class_name"), spec["config"], path, ModelFileError)


def _weight_lookup(document, arrays, path):
    """check(path, shape, layer) for model_from_spec, and the arrays in the model's order."""
    names = document.get("weights")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise ModelFileError(f"{path}: the list of weight names is malformed")
    by_name = {name: i for i, name in enumerate(names)} if names is not None else None
    order = []

    def check(weight_path, shape, layer):
        index = by_name.get(weight_path) if by_name is not None else len(order)
        array = arrays.get(f"weight_{index}") if index is not None else None
        if array is None or array.shape != tuple(shape):
            got = None if array is None else array.shape
            raise ModelFileError(f"{path}: {layer.describe()} needs a weight of shape {tuple(shape)}, the file has "
                                 f"{got}")
        order.append(weight_path)
    return check


def load_model(path, compile=True):
    """The model stored at ``path`` by ``model.save``: same architecture, weights and, when it
    was compiled, the same optimizer state (so training continues where it stopped)."""
    document, arrays = read_model_file(path)
    check = _weight_lookup(document, arrays, path)
    try:
        model = model_from_spec(document["model"], check, where=str(path))
    except ArchitectureError as error:
        raise ModelFileError(str(error)) from None
    names = weight_names(model)
    if document.get("weights") is not None:
        index = {name: i for i, name in enumerate(document["weights"])}
        missing = [n for n in names if n not in index]
        if missing or len(index) != len(names):
            raise ModelFileError(f"{path}: the file's weights {sorted(set(index) - set(names))[:5]} and the model's "
                                 f"{missing[:5]} do not match")
        weights = [arrays[f"weight_{index[n]}"] for n in names]
    else:
        weights = [arrays.get(f"weight_{i}") for i in range(len(names))]
        if any(w is None for w in weights) or f"weight_{len(names)}" in arrays:
            raise ModelFileError(f"{path}: the file holds a different number of weights than the model's "
                                 f"{len(names)}")
    try:
        model.set_weights(weights)
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    settings = document.get("compile")
    unknown = _unknown_compile_names(settings) if compile and settings else None
    if unknown:       # a loss, metric or optimizer of the user's own: the model itself still loads
        warnings.warn(f"{path}: the model loads uncompiled, because its compile settings name {unknown}, which "
                      f"scratchnet does not have (a user's own object, not saved in files); call compile()",
                      stacklevel=3)
    if compile and settings and not unknown:
        optimizer = _construct("optimizer", optimizers.get_class, settings["optimizer"], path)
        loss = _construct("loss", losses.get_class, settings["loss"], path)
        model.compile(optimizer=optimizer, loss=loss,
                      metrics=[_metric_from_entry(m, path) for m in settings.get("metrics") or []] or None,
                      weighted_metrics=[_metric_from_entry(m, path)
                                        for m in settings.get("weighted_metrics") or []] or None)
        slot_names = settings["optimizer"].get("slots") or []
        if slot_names:
            params = model.trainable_weights
            if len(slot_names) != len(params):
                raise ModelFileError(f"{path}: optimizer state for {len(slot_names)} weights, model has "
                                     f"{len(params)}")
            slots, k, xp = [], 0, model.backend.xp
            for names_, param in zip(slot_names, params):
                slot = {}
                for name in names_:
                    value = arrays.get(f"optimizer_{k}")
                    if value is None or value.shape != param.shape:
                        raise ModelFileError(f"{path}: optimizer slot {name!r} is missing or has the "
                                             f"wrong shape")
                    slot[name] = to_module(value.astype(param.dtype), xp)   # onto the weights' device
                    k += 1
                slots.append(slot)
            optimizer.slots = slots
        optimizer.iterations = int(settings["optimizer"].get("iterations", 0))
        optimizer.set_scalar_state(settings["optimizer"].get("state") or {})
    model.saved_extra = document.get("extra") or {}
    return model


def _unknown_compile_names(settings):
    """What a file's compile settings name that scratchnet lacks ('loss class MyLoss', ...), or None."""
    found = []
    for kind, registry in (("optimizer", optimizers.get_class), ("loss", losses.get_class)):
        name = (settings.get(kind) or {}).get("class_name") if isinstance(settings.get(kind), dict) else None
        try:
            registry(name)
        except ValueError:
            found.append(f"{kind} class {name!r}")
    for entry in (settings.get("metrics") or []) + (settings.get("weighted_metrics") or []):
        try:
            metrics.get(metrics.from_saved(entry), losses.MeanSquaredError(), (1,))
        except (ValueError, TypeError):
            found.append(f"metric {entry.get('class_name') if isinstance(entry, dict) else entry!r}")
    return ", ".join(found) or None


def load_weights(model, path):
    """The weights of a scratchnet model file into ``model`` (built, same weight names and shapes)."""
    document, arrays = read_model_file(path)
    names = weight_names(model)
    stored = document.get("weights") or [f"#{i}" for i in range(len(names))]
    by_name = {name: arrays.get(f"weight_{i}") for i, name in enumerate(stored)}
    if document.get("weights") is None:    # version 1: by position
        by_name = {name: arrays.get(f"weight_{i}") for i, name in enumerate(names)}
    missing = [n for n in names if by_name.get(n) is None]
    if missing or len(by_name) != len(names):
        raise ModelFileError(f"{path}: the file's weights {sorted(set(by_name) - set(names))[:5]} and the model's "
                             f"{missing[:5]} do not match")
    current = model.get_weights()
    for name, now in zip(names, current):
        if by_name[name].shape != now.shape:
            raise ModelFileError(f"{path}: weight {name!r} has shape {now.shape} in the model and "
                                 f"{by_name[name].shape} in the file")
    model.set_weights([by_name[n].astype(now.dtype) for n, now in zip(names, current)])
