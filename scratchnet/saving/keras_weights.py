"""Keras's two HDF5 weight layouts, read into and written from scratchnet models (h5py).

Keras 3 (``model.weights.h5`` inside a ``.keras`` archive, and ``.weights.h5`` files):
each layer's weights are datasets ``vars/0``, ``vars/1``... in the order the layer made
them, under a path built from the model's layers in Keras's order, each named by its class
in snake case, made unique with ``_1``, ``_2``... (``layers/conv2d_1/vars/0``); a model
inside a model nests (``layers/sequential/layers/dense/vars/0``).

Legacy (tf.keras 2 and Keras 3 ``.h5``; Keras applications' weight files): a group with
attribute ``layer_names``; one group per layer, whose attribute ``weight_names`` lists its
weights (trainable ones first), each a dataset at that name. Loaded by topology (layers
with weights, in order) or, with ``by_name``, by layer name.

Every dataset's shape and dtype are checked before its data is read.
"""
import re
import warnings

import numpy as np

from ..arrays import to_host
from .architecture import is_model, is_sequential, weight_names
from .files import ModelFileError

KERAS_VERSION_WRITTEN = "3.0.0"   # the layout version we write; Keras reads it as its own


def snake_case(name):
    """Keras's snake case of a class name: Conv2D -> conv2d, BatchNormalization -> batch_normalization."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_class_name(layer):
    if is_model(layer):
        return "Sequential" if is_sequential(layer) else "Functional"
    return type(layer).__name__


# ----- Keras 3 layout --------------------------------------------------------------------------
def keras3_layer_paths(model, prefix="", names=""):
    """[(group path, layer, weight-name prefix)] of every layer of ``model`` (models inside
    included, themselves too), as Keras 3 names their groups."""
    used, out = {}, []
    for layer in _unique(model.layers):
        base = snake_case(_keras_class_name(layer))
        used[base] = used.get(base, -1) + 1
        path = f"{prefix}layers/{base}" + (f"_{used[base]}" if used[base] else "")
        out.append((path, layer, f"{names}{layer.name}/"))
        if is_model(layer):
            out += keras3_layer_paths(layer, path + "/", f"{names}{layer.name}/")
    return out


def write_keras3(model, h5file):
    """Write ``model``'s weights into an open h5py File in Keras 3's layout."""
    h5file.create_group("vars").attrs["name"] = model.name
    h5file.require_group("layers")
    for path, layer, _ in keras3_layer_paths(model):
        group = h5file.require_group(path).create_group("vars")
        group.attrs["name"] = layer.name
        if is_model(layer):
            continue
        for i, name in enumerate(layer.params):
            group.create_dataset(str(i), data=_host(layer.params[name]))


def read_keras3(model, h5file, where, skip_mismatch=False):
    """Weights for ``model`` from an open h5py File in Keras 3's layout: {weight path: array}
    (paths as ``architecture.weight_names``), every shape checked before anything is read."""
    if "layers" not in h5file and "vars" not in h5file:
        raise ModelFileError(f"{where} is not a Keras weights file (no 'layers' group)")
    found = {}
    for path, layer, names in keras3_layer_paths(model):
        if is_model(layer):
            continue
        expected = _expected_shapes(layer)
        group = h5file.get(path + "/vars")
        if group is None and expected:
            problem = f"no weights for layer {layer.name!r} ({path}): the file and the model have different layers"
            if not skip_mismatch:
                raise ModelFileError(f"{where} has {problem}")
            warnings.warn(f"{where}: skipping layer {layer.name!r}: the file has {problem}", stacklevel=3)
            continue
        stored = _datasets(group, [str(i) for i in range(len(group))] if group is not None else [], where, path)
        arrays = _match(layer, expected, stored, where, skip_mismatch)
        if arrays is not None:
            found.update({names + name: array for (name, _), array in zip(expected, arrays)})
    return found


# ----- legacy layout ---------------------------------------------------------------------------
def legacy_weights(layer):
    """[(name, array)] of a layer's (or a model's) weights in tf.keras's order: trainable
    ones first, then the rest; a model inside gives its layers' weights."""
    if is_model(layer):
        pairs = []
        for sub in _unique(layer.layers):
            pairs += [(f"{sub.name}/{n}", a, t) for n, a, t in _flagged(sub, layer.trainable)]
    else:
        pairs = list(_flagged(layer, True))
    return [(n, a) for n, a, t in pairs if t] + [(n, a) for n, a, t in pairs if not t]


def _flagged(layer, parent_trainable):
    """(name, array, trainable) of each weight in creation order."""
    trainable = parent_trainable and layer.trainable
    if is_model(layer):
        for sub in _unique(layer.layers):
            for n, a, t in _flagged(sub, trainable):
                yield f"{sub.name}/{n}", a, t
        return
    for name, array in layer.params.items():
        yield name, array, trainable and name not in layer.non_trainable_names


def _unique(layers):
    seen, out = set(), []
    for layer in layers:
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
    return out


def write_legacy(model, group):
    """``model``'s weights into an h5py group in the legacy layout (attributes included)."""
    group.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in model.layers])
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = KERAS_VERSION_WRITTEN.encode("utf8")
    for layer in model.layers:
        sub = group.create_group(layer.name)
        pairs = legacy_weights(layer)
        names = [f"{layer.name}/{name}:0" for name, _ in pairs]
        sub.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
        for name, (_, array) in zip(names, pairs):
            sub.create_dataset(name, data=_host(array))


def read_legacy(model, group, where, by_name=False, skip_mismatch=False):
    """Weights for ``model`` from a legacy group: {weight path: array}."""
    if "layer_names" not in group.attrs:
        raise ModelFileError(f"{where} is not a Keras weights file (no layer_names attribute)")
    names = [_text(n) for n in group.attrs["layer_names"]]
    stored = {}
    for name in names:
        if name not in group:
            raise ModelFileError(f"{where}: layer {name!r} is listed but has no group; the file is damaged")
        weight_names = [_text(n) for n in group[name].attrs.get("weight_names", [])]
        stored[name] = _datasets(group[name], weight_names, where, name)
    with_weights = [layer for layer in model.layers if legacy_weights(layer)]
    found = {}
    if by_name:
        by = {layer.name: layer for layer in with_weights}
        pairs = [(by[name], stored[name]) for name in names if name in by and stored[name]]
    else:
        file_layers = [name for name in names if stored[name]]
        if len(file_layers) != len(with_weights):
            raise ModelFileError(f"{where} holds weights for {len(file_layers)} layers, the model has "
                                 f"{len(with_weights)} layers with weights: "
                                 f"file {file_layers[:6]}{'...' if len(file_layers) > 6 else ''}, model "
                                 f"{[l.name for l in with_weights][:6]}{'...' if len(with_weights) > 6 else ''}")
        pairs = [(layer, stored[name]) for layer, name in zip(with_weights, file_layers)]
    for layer, datasets in pairs:
        expected = [(n, tuple(a.shape)) for n, a in legacy_weights(layer)]
        arrays = _match(layer, expected, datasets, where, skip_mismatch)
        if arrays is not None:
            found.update({f"{layer.name}/{name}": array for (name, _), array in zip(expected, arrays)})
    return found


def assign(model, values):
    """Set ``model``'s weights from {weight path: array}; weights not named keep their values."""
    weights = model.get_weights()
    for i, name in enumerate(weight_names(model)):
        if name in values:
            weights[i] = np.asarray(values[name], dtype=weights[i].dtype)
    model.set_weights(weights)


# ----- shared ----------------------------------------------------------------------------------
def _expected_shapes(layer):
    return [(name, tuple(array.shape)) for name, array in layer.params.items()]


def _datasets(group, names, where, path):
    """The h5py datasets ``names`` of ``group``, each checked to be a numeric array (not read)."""
    import h5py
    out = []
    for name in names:
        item = group.get(name) if group is not None else None
        if item is None or not hasattr(item, "shape"):
            raise ModelFileError(f"{where}: weight {name!r} of {path!r} is missing or not an array")
        # the data must be inside this file: no links to other files, no external or virtual
        # storage (which would read any file of this machine into the weights)
        if not isinstance(group.get(name, getlink=True), h5py.HardLink) or item.external is not None or \
                item.is_virtual:
            raise ModelFileError(f"{where}: weight {name!r} of {path!r} refers to data outside the file; refused")
        if item.dtype.kind not in "fiu":
            raise ModelFileError(f"{where}: weight {name!r} of {path!r} has dtype {item.dtype}; expected numbers")
        out.append(item)
    return out


def _match(layer, expected, datasets, where, skip_mismatch):
    """The arrays of ``datasets`` if they fit ``expected`` [(name, shape)]; on a mismatch an
    error naming the layer and both shapes, or (skip_mismatch) a warning and None."""
    problem = None
    if len(datasets) != len(expected):
        problem = (f"layer {layer.name!r} ({type(layer).__name__}) has {len(expected)} weights "
                   f"{[n for n, _ in expected]}, the file holds {len(datasets)}")
    else:
        for (name, shape), data in zip(expected, datasets):
            if tuple(data.shape) != shape:
                problem = (f"layer {layer.name!r} ({type(layer).__name__}): weight {name!r} has shape {shape} in "
                           f"the model and {tuple(data.shape)} in the file")
                break
    if problem:
        if skip_mismatch:
            warnings.warn(f"{where}: skipping {problem}", stacklevel=4)
            return None
        raise ModelFileError(f"{where}: {problem}")
    return [np.asarray(data[()]) for data in datasets]


def _host(array):
    return np.asarray(to_host(array))


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


# ----- optimizer state (Keras 3 layout) --------------------------------------------------------------------
def _optimizer_order(optimizer, count):
    """[(weight index, slot name)] in the order Keras 3 keeps its optimizer's variables
    (after ``iterations`` and, for a fixed learning rate, ``learning_rate``): Adam, AdamW,
    Adamax, Nadam and Adadelta interleave each weight's two slots; RMSprop, SGD and Adagrad keep one
    list per kind."""
    kind = type(optimizer).__name__
    names = optimizer.slot_names
    if kind in ("Adam", "AdamW", "Adamax", "Nadam", "Adadelta"):
        return [(i, name) for i in range(count) for name in names]
    if kind not in ("RMSprop", "SGD", "Adagrad"):
        raise ValueError(f"no Keras layout for optimizer {kind}")
    return [(i, name) for name in names for i in range(count)]


def _first_slot(optimizer):
    """The index of the first slot variable: after iterations, and learning_rate when it is a
    number (Keras keeps no variable for a schedule or a callable)."""
    return 2 if isinstance(optimizer._learning_rate, float) else 1


def write_optimizer(model, h5file):
    """The optimizer's step count, learning rate, slots and scalar state (Nadam's momentum
    product), as Keras 3 stores them."""
    optimizer = model.optimizer
    params = [_host(p) for p in model.trainable_weights]
    slots = optimizer.slots or [{name: _host(v) for name, v in optimizer.new_slots(p).items()} for p in params]
    group = h5file.create_group("optimizer").create_group("vars")
    group.attrs["name"] = optimizer.name
    group.create_dataset("0", data=np.int64(optimizer.iterations))
    first = _first_slot(optimizer)
    if first == 2:
        group.create_dataset("1", data=np.float32(optimizer.learning_rate))
    order = _optimizer_order(optimizer, len(params))
    for k, (i, name) in enumerate(order, start=first):
        group.create_dataset(str(k), data=_host(slots[i][name]))
    for k, value in enumerate(optimizer.scalar_state().values(), start=first + len(order)):
        group.create_dataset(str(k), data=np.float32(value))


def read_optimizer(model, h5file, where):
    """Restore the compiled model's optimizer state from a Keras 3 file; False (state left
    fresh) when the file has none or a layout that does not fit this model."""
    group = h5file.get("optimizer/vars")
    optimizer = model.optimizer
    if group is None or "0" not in group:
        return False
    params = model.trainable_weights
    try:
        order = _optimizer_order(optimizer, len(params))
    except ValueError:
        return False
    first, scalars = _first_slot(optimizer), list(optimizer.scalar_state())
    needed = first + len(order) + len(scalars)
    if len(group) <= first:      # an optimizer that never stepped: Keras kept no slots, and fresh is right
        return False
    if len(group) != needed:
        warnings.warn(f"{where}: the optimizer state holds {len(group)} variables, {type(optimizer).__name__} on "
                      f"this model needs {needed}; training starts with a fresh optimizer", stacklevel=4)
        return False
    xp = model.backend.xp
    slots = [{} for _ in params]
    for k, (i, name) in enumerate(order, start=first):
        data = group[str(k)]
        if tuple(data.shape) != tuple(params[i].shape) or data.dtype.kind != "f":
            warnings.warn(f"{where}: optimizer variable {k} has shape {tuple(data.shape)}, the weight it belongs to "
                          f"{tuple(params[i].shape)}; training starts with a fresh optimizer", stacklevel=4)
            return False
        slots[i][name] = xp.asarray(np.asarray(data[()], dtype=params[i].dtype))
    optimizer.slots = slots
    optimizer.iterations = int(np.asarray(group["0"][()]))
    optimizer.set_scalar_state({key: float(np.asarray(group[str(k)][()]))
                                for k, key in enumerate(scalars, start=first + len(order))})
    return True
