"""Saving and loading models, Keras style: the file name's extension says the format.

    model.save("model.keras")        # Keras 3 archive: keras.models.load_model reads it
    model.save("model.h5")           # legacy HDF5, as tf.keras 2 wrote it (Keras 3 reads it too)
    model.save("model.npz")          # scratchnet's own: optimizer state too, for exact resume
    model.save_weights("w.weights.h5")   # Keras 3 weights; "w.h5": the legacy weights layout
    load_model(path)                 # any of these, from Keras or scratchnet

An extension never silently picks another format: an unknown one is refused, and a file
whose content is not what its extension says is refused with what it really is.

Modules: ``native`` (.npz), ``keras_files`` with ``keras_config`` and ``keras_weights`` (Keras
files), ``architecture`` (a model's graph as JSON, and back), ``onnx_export`` with
``onnx_builder`` and ``onnx_layers`` (ONNX), ``files`` (the error, atomic writes). Nothing here
imports scratchnet.models: Model and Sequential are found through ``scratchnet.registry``.
"""
import json
import warnings
import zipfile
from pathlib import Path

from .. import layers as layers_module, registry
from . import keras_config, keras_files, native
from .architecture import ArchitectureError, build_from_config, is_model, is_sequential, model_from_spec, model_to_spec
from .files import ModelFileError, atomic_write
from .native import read_model_file

MODEL_FORMATS = {".keras": "a Keras 3 archive", ".h5": "a legacy Keras HDF5 file",
                 ".hdf5": "a legacy Keras HDF5 file", ".npz": "scratchnet's own model file"}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _suffix(path):
    return Path(path).suffix.lower()


def save_model(model, path, extra=None, overwrite=True):
    """Write ``model`` to ``path`` in the format its extension names (see the module's doc).
    ``extra`` (JSON-serialisable: how the inputs were prepared, class names...) is stored
    beside, in .npz and .keras files (there in metadata.json, which Keras ignores)."""
    path = Path(path)
    suffix = _suffix(path)
    if path.name.endswith(".weights.h5"):
        raise ValueError(f"{path}: a .weights.h5 file holds weights only; use model.save_weights({str(path)!r}), "
                         f"or give model.save a name ending in .keras, .h5 or .npz")
    if suffix not in MODEL_FORMATS:
        raise ValueError(f"cannot tell the format from the name {str(path)!r}: expected a name ending in "
                         f"{', '.join(MODEL_FORMATS)} ({'; '.join(f'{k}: {v}' for k, v in MODEL_FORMATS.items())})")
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists and overwrite=False; nothing was written")
    if not model.built or model._graph is None:
        raise ValueError(f"model {model.name!r} has not been built, so it has no weights to save")
    if extra and suffix not in (".npz", ".keras"):
        raise ValueError(f"{path}: extra information is kept only in .npz and .keras files")
    if suffix == ".npz":
        native.save_model(model, path, extra=extra)
    elif suffix == ".keras":
        keras_files.save_keras(model, path, extra=extra)
    else:
        keras_files.save_h5(model, path)


def file_format(path):
    """'keras', 'h5' or 'npz': what the file at ``path`` holds, by its content."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == _HDF5_SIGNATURE:
        return "h5"
    if head[:4] == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is a truncated or damaged zip archive (its directory, at the end, is missing "
                             f"or unreadable)")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise ModelFileError(f"{path} is a damaged zip archive ({error})") from None
        if "config.json" in names:
            return "keras"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise ModelFileError(f"{path} is a zip archive but neither a Keras .keras archive nor a scratchnet model "
                             f"file (members {sorted(names)[:6]})")
    raise ModelFileError(f"{path} is not a model file: expected a Keras .keras archive, an HDF5 .h5 file or a "
                         f"scratchnet .npz file, got neither a zip archive nor HDF5")


_EXPECTED = {".keras": "keras", ".h5": "h5", ".hdf5": "h5", ".npz": "npz"}
_NAMES = {"keras": "a Keras .keras archive", "h5": "an HDF5 (.h5) file", "npz": "a scratchnet .npz model file"}


def load_model(path, compile=True):
    """The model in ``path``: a Keras ``.keras`` archive, a legacy Keras ``.h5`` file or a
    scratchnet ``.npz`` file (with its optimizer state, so training continues exactly)."""
    kind = file_format(path)
    expected = _EXPECTED.get(_suffix(path))
    if expected is not None and expected != kind:
        raise ModelFileError(f"{path}: the name says {_NAMES[expected]}, but the file is {_NAMES[kind]}; rename it "
                             f"to end in the right extension")
    if kind == "npz":
        return native.load_model(path, compile=compile)
    if kind == "keras":
        return keras_files.load_keras(path, compile)
    model = keras_files.load_h5(path, compile)
    model.saved_extra = {}
    return model


def model_from_json(json_string):
    """A new model, freshly initialised, from the architecture ``Model.to_json()`` (or
    Keras's) wrote; as ``keras.models.model_from_json`` (no weights, not compiled)."""
    if not isinstance(json_string, (str, bytes, bytearray)):
        raise TypeError(f"model_from_json: expected the JSON text model.to_json() returns, got "
                        f"{type(json_string).__name__}")
    where = "model_from_json"
    try:
        config = json.loads(json_string)
    except ValueError as error:
        raise ValueError(f"{where}: expected the JSON text model.to_json() returns; it does not parse: {error}") \
            from None
    except RecursionError:
        raise ValueError(f"{where}: the JSON nests deeper than Python can follow; refused") from None
    unread = []
    try:
        spec = keras_config.spec_from_keras(config, where, unread_initializers=unread)
        model = model_from_spec(spec, lambda name, shape, layer: None, where=where)
    except RecursionError:
        raise ArchitectureError(f"{where}: the model's config nests deeper than Python can follow; refused") from None
    if unread:
        warnings.warn(f"{where}: initializers scratchnet does not have (or with arguments it does not read) were "
                      f"replaced by their layer's default: {'; '.join(unread[:5])}"
                      f"{f' and {len(unread) - 5} more' if len(unread) > 5 else ''}", stacklevel=3)
    return model


def _function_initializers(model):
    """'layer.attribute' of every initializer given as a function (a config holds names only)."""
    found = []
    for layer in model.layers:
        if is_model(layer):
            found += _function_initializers(layer)
            continue
        found += [f"{layer.name}.{key}" for key, value in vars(layer).items()
                  if key.endswith("_initializer") and not isinstance(value, str)]
    return found


def clone_model(model):
    """A new model with ``model``'s layers, names and settings and freshly initialised weights
    (through scratchnet's own architecture spec, so every layer class is kept). An initializer
    given as a function has no name to carry: its layer's default is used, with a warning."""
    where = "clone_model"
    functions = _function_initializers(model)
    if functions:
        warnings.warn(f"{where}: initializers given as functions cannot go into an architecture; the clone uses "
                      f"their layer's default for {', '.join(functions[:5])}"
                      f"{f' and {len(functions) - 5} more' if len(functions) > 5 else ''}", stacklevel=3)
    if is_sequential(model) and model._graph is None:      # not built yet: a Sequential of unbuilt copies
        copies = [clone_model(layer) if is_model(layer) else
                  build_from_config(layers_module.get, type(layer).__name__, layer.get_config(), where)
                  for layer in model.layers]
        clone = registry.get("Sequential")(copies, name=model.name)
        clone.trainable = model.trainable
        return clone
    return model_from_spec(model_to_spec(model), lambda name, shape, layer: None, where=where)


def save_weights(model, path, overwrite=True):
    """Weights only: ``.weights.h5`` in Keras 3's layout, other ``.h5`` in the legacy one."""
    path = Path(path)
    if _suffix(path) not in (".h5", ".hdf5"):
        raise ValueError(f"save_weights writes HDF5: expected a name ending in .weights.h5 (Keras 3) or .h5 "
                         f"(legacy layout), got {str(path)!r}")
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists and overwrite=False; nothing was written")
    if not model.built:
        raise ValueError(f"model {model.name!r} has not been built, so it has no weights to save")
    keras_files.save_weights(model, path)


def load_weights(model, path, skip_mismatch=False, by_name=False):
    """Weights from a Keras weight or model file (``.weights.h5``, ``.h5``, ``.keras``) or a
    scratchnet ``.npz`` into the built ``model``: by structure, or for legacy ``.h5`` files
    ``by_name``; ``skip_mismatch`` skips (with a warning) layers whose weights do not fit."""
    kind = file_format(path)
    if kind == "npz":
        if by_name or skip_mismatch:
            raise ValueError(f"{path}: by_name and skip_mismatch apply to Keras files; a scratchnet .npz file is "
                             f"loaded whole")
        native.load_weights(model, path)
        return
    keras_files.load_weights(model, path, by_name=by_name, skip_mismatch=skip_mismatch)


__all__ = ["save_model", "load_model", "save_weights", "load_weights", "file_format", "atomic_write",
           "ModelFileError", "read_model_file", "MODEL_FORMATS"]
