"""Keras model files: ``.keras`` archives (Keras 3), legacy ``.h5`` files (tf.keras 2 and
Keras 3) and weight files (``.weights.h5``, legacy ``.h5``), in and out.

A ``.keras`` archive is a zip of ``metadata.json``, ``config.json`` (the architecture and
compile settings) and ``model.weights.h5``. A legacy ``.h5`` file holds the architecture as
the JSON attribute ``model_config`` and the weights in its ``model_weights`` group. Reading
never runs code (see ``keras_config``) and checks every weight's shape before reading it;
writing is atomic. A ``.keras`` archive of a compiled model also holds the optimizer's
state (Adam, RMSprop, SGD, in Keras 3's layout), so training continues where it stopped in
either library; legacy ``.h5`` files keep the compile settings only.
"""
import io
import json
import math
import os
import warnings
import zipfile
from datetime import datetime, timezone

from .. import losses, metrics as metrics_module, optimizers
from ..version import __version__
from . import keras_config, keras_weights
from .architecture import ArchitectureError, model_from_spec
from .files import ModelFileError, atomic_write

ARCHIVE_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")
MAX_CONFIG_BYTES = 64 << 20
MAX_WEIGHT_BYTES = 8 << 30
MAX_EXPANSION = 100               # a compressed member may expand at most this much (Keras stores them uncompressed)
KERAS_VERSION_WRITTEN = "3.0.0"   # the format's version, as Keras records it


def _h5py():
    import h5py
    return h5py


# ----- writing ---------------------------------------------------------------------------------
def save_keras(model, path, extra=None):
    """A Keras 3 ``.keras`` archive of ``model`` (architecture, weights, compile settings);
    ``extra`` goes into metadata.json as "scratchnet_extra"."""
    config = keras_config.keras_model_config(model)
    compile_config = _compile_config(model)
    if compile_config:
        config["compile_config"] = compile_config
    weights = io.BytesIO()
    with _h5py().File(weights, "w") as h5file:
        keras_weights.write_keras3(model, h5file)
        if compile_config:
            keras_weights.write_optimizer(model, h5file)
    metadata = {"keras_version": KERAS_VERSION_WRITTEN, "date_saved": datetime.now(timezone.utc).strftime(
        "%Y-%m-%d@%H:%M:%S"), "written_by": f"scratchnet {__version__}"}
    if extra:
        metadata["scratchnet_extra"] = extra

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata))
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("model.weights.h5", weights.getvalue())
    atomic_write(path, write)


def save_h5(model, path):
    """A legacy ``.h5`` file of ``model``, in tf.keras 2's layout (Keras 3 reads it too)."""
    config = keras_config.keras_model_config(model, legacy=True)
    nested = keras_config.nested_models(model)
    if nested:
        warnings.warn(f"{path}: this model uses models as layers ({', '.join(nested)}); Keras 3 reads the .h5 file, "
                      f"tf.keras 2 numbers such models' calls otherwise and cannot. Save as .keras for Keras 3, or "
                      f"flatten the model for tf.keras 2", stacklevel=3)

    def write(f):
        with _h5py().File(f, "w") as h5file:
            h5file.attrs["model_config"] = json.dumps(config).encode("utf8")
            h5file.attrs["backend"] = b"tensorflow"
            h5file.attrs["keras_version"] = KERAS_VERSION_WRITTEN.encode("utf8")
            compile_config = _compile_config(model, legacy=True)
            if compile_config:
                h5file.attrs["training_config"] = json.dumps(compile_config).encode("utf8")
            keras_weights.write_legacy(model, h5file.create_group("model_weights"))
    atomic_write(path, write)


def save_weights(model, path):
    """Weights only: Keras 3's layout for ``.weights.h5`` (with a compiled model's optimizer
    state, as Keras 3 writes it), the legacy one for other ``.h5``."""
    legacy = not str(path).endswith(".weights.h5")

    def write(f):
        with _h5py().File(f, "w") as h5file:
            if legacy:
                keras_weights.write_legacy(model, h5file)
                return
            keras_weights.write_keras3(model, h5file)
            if getattr(model, "compiled", False) and _compile_config(model):   # as Keras 3 does
                keras_weights.write_optimizer(model, h5file)
    atomic_write(path, write)


def _compile_config(model, legacy=False):
    if not getattr(model, "compiled", False):
        return None
    optimizer = model.optimizer
    config = {"optimizer": {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
                            "config": optimizer.get_config(), "registered_name": None},
              "loss": _loss_config(model.loss),
              "metrics": _metric_names(model, weighted=False) or None, "loss_weights": None,
              "weighted_metrics": _metric_names(model, weighted=True) or None}
    if legacy:     # tf.keras 2's optimizers take none of Keras 3's new settings: left out where unused
        keras3_only = {"weight_decay": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                       "loss_scale_factor": None, "gradient_accumulation_steps": None, "clipnorm": None,
                       "clipvalue": None, "global_clipnorm": None}
        legacy_config = {k: v for k, v in config["optimizer"]["config"].items()
                         if not (k in keras3_only and v == keras3_only[k])}
        config["optimizer_config"] = {"class_name": config["optimizer"]["class_name"], "config": legacy_config}
        del config["optimizer"]
    else:
        config.update({"run_eagerly": False, "steps_per_execution": 1, "jit_compile": False})
    return config


def _loss_config(loss):
    """Keras's name for a loss at its defaults ('binary_crossentropy'); else its class and its
    every setting (from_logits, label_smoothing, ignore_class, ...); for a loss of the user's
    own, its class under the user's module (which Keras, as scratchnet, loads only when given it)."""
    if type(loss).is_defined_by_user():
        return {"module": type(loss).__module__, "class_name": type(loss).__name__,
                "config": {"name": loss.name}, "registered_name": type(loss).__name__}
    config = loss.get_config()
    if config == type(loss)().get_config():
        return type(loss).default_name
    return {"module": "keras.losses", "class_name": type(loss).__name__, "config": config, "registered_name": None}


# ----- reading ---------------------------------------------------------------------------------
def load_keras(path, compile=True):
    """The model in a Keras 3 ``.keras`` archive."""
    config, weights, metadata = _open_archive(path)
    try:
        with _h5py().File(weights, "r") as h5file:
            model = _build(config, path, weights.getbuffer().nbytes)
            values = keras_weights.read_keras3(model, h5file, str(path))
            keras_weights.assign(model, values)
            if compile and _compile_from(model, config.get("compile_config"), path):
                keras_weights.read_optimizer(model, h5file, str(path))
    except OSError as error:
        raise ModelFileError(f"{path}: model.weights.h5 is not a readable HDF5 file ({error})") from None
    extra = metadata.get("scratchnet_extra")
    model.saved_extra = extra if isinstance(extra, dict) else {}
    return model


def load_h5(path, compile=True):
    """The model in a legacy Keras ``.h5`` file."""
    with _open_h5(path) as h5file:
        if "model_config" not in h5file.attrs:
            hint = " (it holds weights only: build the model and call load_weights)" if \
                "layer_names" in h5file.attrs or "layers" in h5file else ""
            raise ModelFileError(f"{path} is an HDF5 file but not a Keras model file: it has no model_config{hint}")
        config = _json(h5file.attrs["model_config"], path, "model_config")
        model = _build(config, path, os.path.getsize(path))
        group = h5file["model_weights"] if "model_weights" in h5file else h5file
        values = keras_weights.read_legacy(model, group, str(path))
        training = h5file.attrs.get("training_config")
        training = _json(training, path, "training_config") if training is not None else None
    keras_weights.assign(model, values)
    if compile and training:
        optimizer = training.get("optimizer_config")
        _compile_from(model, {**training, "optimizer": optimizer}, path)
    return model


def load_weights(model, path, by_name=False, skip_mismatch=False):
    """Weights from a ``.weights.h5`` (Keras 3), a legacy ``.h5`` weight or model file, or a
    ``.keras`` archive into ``model``, which must already be built."""
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built yet; call it on data or give it an input shape "
                         f"before load_weights")
    if str(path).endswith(".keras"):
        _, weights, _ = _open_archive(path)
        try:
            with _h5py().File(weights, "r") as h5file:
                values = keras_weights.read_keras3(model, h5file, str(path), skip_mismatch)
                keras_weights.assign(model, values)
                if getattr(model, "compiled", False):     # as Keras: the optimizer's state too
                    keras_weights.read_optimizer(model, h5file, str(path))
        except OSError as error:
            raise ModelFileError(f"{path}: model.weights.h5 is not a readable HDF5 file ({error})") from None
        return
    else:
        with _open_h5(path) as h5file:
            legacy = "layer_names" in h5file.attrs or "model_weights" in h5file
            if by_name and not legacy:
                raise ValueError(f"{path}: by_name=True works with legacy .h5 weight files (as in Keras); this "
                                 f"file has Keras 3's layout, which is loaded by structure")
            if legacy:
                group = h5file["model_weights"] if "model_weights" in h5file else h5file
                values = keras_weights.read_legacy(model, group, str(path), by_name, skip_mismatch)
            else:
                values = keras_weights.read_keras3(model, h5file, str(path), skip_mismatch)
                keras_weights.assign(model, values)
                if getattr(model, "compiled", False):
                    keras_weights.read_optimizer(model, h5file, str(path))
                return
    keras_weights.assign(model, values)


def _open_h5(path):
    try:
        return _h5py().File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {path} does not exist") from None
    except OSError as error:
        raise ModelFileError(f"{path} is not a readable HDF5 file ({error})") from None


def _open_archive(path):
    """(config, model.weights.h5 as a file object, metadata) of a ``.keras`` archive, after
    checking its members: only Keras's, no path leaving the archive, sizes within limits."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelFileError(f"{path} is not a Keras .keras archive (not a zip file: {error})") from None
    with archive:
        members = {}
        for info in archive.infolist():
            name = info.filename
            if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
                raise ModelFileError(f"{path}: member {name!r} points outside the archive; refused")
            members[name] = info
        missing = [m for m in ("config.json", "model.weights.h5") if m not in members]
        if missing:
            raise ModelFileError(f"{path} is not a Keras .keras archive: it lacks {missing} (it has "
                                 f"{sorted(members)[:8]})")
        if members["config.json"].file_size > MAX_CONFIG_BYTES:
            raise ModelFileError(f"{path}: config.json declares {members['config.json'].file_size:,} bytes, more "
                                 f"than the {MAX_CONFIG_BYTES:,} allowed")
        for name in ("config.json", "model.weights.h5", "metadata.json"):
            info = members.get(name)
            if info is not None and info.file_size > MAX_EXPANSION * max(info.compress_size, 1) + (1 << 20):
                raise ModelFileError(f"{path}: member {name!r} would expand {info.compress_size:,} bytes to "
                                     f"{info.file_size:,}; refused (a zip bomb, or a damaged archive)")
        if members["model.weights.h5"].file_size > MAX_WEIGHT_BYTES:
            raise ModelFileError(f"{path}: model.weights.h5 declares {members['model.weights.h5'].file_size:,} "
                                 f"bytes, more than the {MAX_WEIGHT_BYTES:,} allowed")
        try:
            config = _json(archive.read("config.json"), path, "config.json")
            weights = io.BytesIO(archive.read("model.weights.h5"))
            metadata = {}
            if "metadata.json" in members and members["metadata.json"].file_size <= MAX_CONFIG_BYTES:
                metadata = _json(archive.read("metadata.json"), path, "metadata.json")
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ModelFileError(f"{path} is truncated or corrupted ({error})") from None
    return config, weights, metadata


def _json(raw, path, what):
    try:
        value = json.loads(raw.decode("utf8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: {what} is not valid JSON ({error})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: {what} nests deeper than Python can follow; refused") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: {what} does not describe a model")
    return value


def _build(config, path, weight_bytes):
    """The model a config describes; before any layer allocates a weight, its size is checked
    against the bytes of weights the file holds (a config cannot make us allocate more)."""
    planned = [0]

    def check(name, shape, layer):
        values = math.prod(shape)
        planned[0] += values
        if planned[0] * 2 > weight_bytes:     # no stored float is smaller than 2 bytes
            raise ArchitectureError(f"{path}: {layer.describe()} would need a weight {name!r} of shape {tuple(shape)} "
                                    f"({values:,} values; {planned[0]:,} for the model so far), more than the file's "
                                    f"{weight_bytes:,} bytes of weights hold")
    try:
        spec = keras_config.spec_from_keras(config, str(path))
        return model_from_spec(spec, check, where=str(path))
    except ArchitectureError as error:
        raise ModelFileError(str(error)) from None
    except RecursionError:
        raise ModelFileError(f"{path}: the model's config nests deeper than Python can follow; refused") from None


def _compile_from(model, compile_config, path):
    """Compile as the file says, when scratchnet has its optimizer and loss; otherwise warn
    and leave the model uncompiled (as Keras does)."""
    if not compile_config:
        return False
    try:
        if compile_config.get("loss_weights") is not None:
            raise ValueError(f"loss_weights={compile_config['loss_weights']!r}: scratchnet trains one loss")
        optimizer = _object(compile_config.get("optimizer"), optimizers.get, optimizers.get_class)
        loss = _object(compile_config.get("loss"), losses.get, losses.get_class)
        metrics = _metrics_from(compile_config.get("metrics")) or None
        weighted = _metrics_from(compile_config.get("weighted_metrics")) or None
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, weighted_metrics=weighted)
    except (ValueError, TypeError, NotImplementedError) as error:
        warnings.warn(f"{path}: the model loads uncompiled, because its compile settings are not ones scratchnet "
                      f"has ({error}); call compile()", stacklevel=3)
        return False
    return True


def _object(spec, by_name, by_class):
    """An optimizer or loss from Keras's forms: a name, or {class_name, config}. Settings
    scratchnet lacks are dropped when they ask for nothing, refused otherwise."""
    if isinstance(spec, str):
        return by_name(spec)
    if not isinstance(spec, dict):
        raise ValueError(f"expected a name or a {{class_name, config}} entry, got {spec!r:.80}")
    name = str(spec.get("class_name"))
    cls = by_class(name.split(">")[-1])     # tf.keras 2 writes 'Custom>Adam'
    accepted = keras_config._accepted(cls)
    kwargs = {}
    for key, value in (spec.get("config") or {}).items():
        if isinstance(value, dict) and key == "learning_rate":
            kwargs[key] = value              # a schedule: the optimizer rebuilds it by class name, or refuses
            continue
        if isinstance(value, dict):
            raise ValueError(f"{name} {key} is a {value.get('class_name', 'object')} (an object); "
                             f"scratchnet takes a number there")
        if key in accepted:
            kwargs[key] = value
        elif value is not None and key not in _SPEED_HINTS and _KERAS_DEFAULTS.get(key, object()) != value:
            raise ValueError(f"{name} setting {key}={value!r}, which scratchnet's {cls.__name__} does not have")
    return cls(**kwargs)


# Keras optimizer and loss settings scratchnet does not take, at the values that ask for nothing
_KERAS_DEFAULTS = {"use_ema": False, "ema_momentum": 0.99, "amsgrad": False, "reduction": "sum_over_batch_size",
                   "axis": -1, "label_smoothing": 0.0, "dtype": "float32", "is_legacy_optimizer": False,
                   "decay": 0.0}
_SPEED_HINTS = ("jit_compile",)      # how Keras ran, not what it computes: ignored whatever their value


def _metric_names(model, weighted):
    """The compile metrics as Keras 3 keeps them: names, or a metric object's class and config."""
    return [spec.saved for spec in model.metric_specs if spec.weighted == weighted]


def _metrics_from(entries):
    """The metrics of a file's compile config scratchnet can make: names, and objects of the
    metric classes files keep with their config (others, such as a user's own, are left out)."""
    made = []
    for entry in entries or []:
        try:
            made.append(metrics_module.from_saved(entry))
        except ValueError:
            continue
    return made
