"""Keras model configurations, to scratchnet's architecture spec and back.

Reading takes the ``config.json`` of a Keras 3 ``.keras`` archive or the ``model_config`` of a
legacy ``.h5`` file (written by tf.keras 2 or Keras 3), and turns it into the spec that
``architecture.model_from_spec`` rebuilds (which checks every reference and every weight
shape before anything is allocated). Nothing in a config is ever run: a ``Lambda`` layer or
any serialized function is refused, as is any layer scratchnet does not have (all of them
named at once), ``channels_first``, and settings scratchnet cannot honour.

Writing gives Keras 3's config (``keras_model_config``) or tf.keras 2's legacy one
(``legacy=True``, which both Keras 3 and tf.keras read from ``.h5`` files).
"""
import inspect
import math
import re
import warnings

from .. import constraints, initializers, layers as layers_module, regularizers
from .architecture import ArchitectureError, is_model, is_sequential, local_node_indices

MODEL_CLASSES = ("Sequential", "Functional", "Model")
CODE_CLASSES = ("Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__", "__python_function__", "function")
MAX_SAMPLE_ELEMENTS = 1 << 31      # an input of more values per sample than this is refused

# Keras settings scratchnet does not take: dropped when they ask for nothing (these values),
# refused otherwise.
_ACCEPTED_DEFAULTS = {
    "data_format": ("channels_last", None),
    "dilation_rate": ([1, 1], 1, None),
    "groups": (1, None),
    "noise_shape": (None,),
    "renorm": (False, None),
    "renorm_clipping": (None,),
    "virtual_batch_size": (None,),
    "adjustment": (None,),
    "synchronized": (False, None),
    "lora_rank": (None,),
    "interpolation": ("bilinear", None),
}
_ALWAYS_DROPPED = ("sparse", "ragged", "optional", "renorm_momentum", "fused", "lora_alpha",
                   "quantization_config", "gradient_checkpointing")
# a layer's penalties and constraints: read by name only (a custom one is refused)
_PENALTY = re.compile(r"^\w+_(regularizer|constraint)$")
_RENAMED = {"LeakyReLU": {"alpha": "negative_slope"}}


def _initializer_name(value):
    """scratchnet's name of a Keras initializer config ('glorot_uniform', or Keras 3's and
    tf.keras 2's {class_name: 'GlorotUniform', config: {seed: ...}}), or None when scratchnet
    has no such initializer (one with arguments: a seed is not honoured, the rest is not read)."""
    if isinstance(value, dict):
        arguments = {k: v for k, v in (value.get("config") or {}).items() if v is not None and k != "seed"}
        if arguments or not isinstance(value.get("class_name"), str):
            return None
        value = re.sub(r"(?<!^)(?=[A-Z])", "_", value["class_name"]).lower()    # GlorotUniform -> glorot_uniform
    return value if isinstance(value, str) and value in initializers.names() else None


def _initializer_entry(name, legacy):
    """Keras's config of the initializer scratchnet calls ``name``."""
    class_name = "".join(part.capitalize() for part in name.split("_"))
    config = {} if name in ("zeros", "ones") else {"seed": None}
    if legacy:
        return {"class_name": class_name, "config": config}
    return {"module": "keras.initializers", "class_name": class_name, "config": config, "registered_name": None}


# ----- reading ---------------------------------------------------------------------------------
def refuse_code(config, where, path="the model"):
    """ArchitectureError if anything in ``config`` is serialized code (never executed here)."""
    if isinstance(config, dict):
        name = config.get("class_name")
        if name in CODE_CLASSES:
            layer = config.get("config", {}).get("name") if isinstance(config.get("config"), dict) else None
            raise ArchitectureError(f"{where}: {path} holds a {name} ({layer or 'unnamed'}): serialized Python "
                                    f"code, which scratchnet never runs; rebuild that part with layers")
        for key, value in config.items():
            refuse_code(value, where, path)
    elif isinstance(config, list):
        for value in config:
            refuse_code(value, where, path)


def _entries(config):
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    entries = inner.get("layers")
    return entries if isinstance(entries, list) else []


def unknown_layers(config, found=None):
    """Every class name in a Keras model config (models inside included) scratchnet lacks."""
    found = {} if found is None else found
    for entry in _entries(config):
        if not isinstance(entry, dict):
            continue
        name = entry.get("class_name")
        if name in MODEL_CLASSES:
            unknown_layers(entry, found)
        elif name not in layers_module._BY_NAME:
            registered = entry.get("registered_name")
            found[str(name)] = f" (a custom layer, registered as {registered!r})" if registered and \
                registered != name else ""
    return found


def spec_from_keras(config, where, unread_initializers=None):
    """scratchnet's spec of the model a Keras config describes (ArchitectureError if not);
    initializers it cannot read (their layer's default is used) are added to the list
    ``unread_initializers`` when one is given."""
    if not isinstance(config, dict) or config.get("class_name") not in MODEL_CLASSES:
        got = config.get("class_name") if isinstance(config, dict) else None
        what = (f"the config of a {got!r} layer" if got in layers_module._BY_NAME else
                f"class {got!r} (a subclassed model's code is not in its config)" if isinstance(got, str) else
                f"a {type(config).__name__}" if not isinstance(config, dict) else "a config with no class_name")
        raise ArchitectureError(f"{where}: expected the config of a Keras Sequential or functional model, got {what}")
    refuse_code(config, where)
    unknown = unknown_layers(config)
    if unknown:
        listed = ", ".join(f"{name}{note}" for name, note in sorted(unknown.items()))
        raise ArchitectureError(f"{where} uses layer types scratchnet does not have: {listed}; scratchnet has "
                                f"{', '.join(sorted(layers_module._BY_NAME))}")
    reader = _Reader(where)
    spec = reader.model(config)
    if unread_initializers is not None:
        unread_initializers.extend(reader.unread_initializers)
    return spec


class _Reader:
    def __init__(self, where):
        self.where = where
        self.unread_initializers = []     # initializers scratchnet does not have: their layer's default is used

    def model(self, entry):
        config = entry.get("config")
        if not isinstance(config, dict):
            raise ArchitectureError(f"{self.where}: a model entry has no config")
        spec = self._sequential(entry, config) if entry["class_name"] == "Sequential" else \
            self._functional(config)
        if config.get("trainable") is False:
            spec["trainable"] = False
        return spec

    def _sequential(self, entry, config):
        entries = [e for e in config.get("layers", []) if isinstance(e, dict)]
        if len(entries) != len(config.get("layers", [])):
            raise ArchitectureError(f"{self.where}: a layer entry of Sequential {config.get('name')!r} is malformed")
        shape, dtype = None, None
        if entries and entries[0].get("class_name") == "InputLayer":
            first = entries.pop(0).get("config") or {}
            shape, dtype = first.get("batch_shape") or first.get("batch_input_shape"), first.get("dtype")
        elif entries:
            first = entries[0].get("config") or {}
            shape = first.get("batch_shape") or first.get("batch_input_shape")
        if shape is None:
            shape = (entry.get("build_config") or {}).get("input_shape") or config.get("build_input_shape")
        if shape is None:
            raise ArchitectureError(f"{self.where}: Sequential model {config.get('name')!r} does not say the shape "
                                    f"of its input, so its weights cannot be placed; Keras builds such a model on "
                                    f"its first call")
        layers = [self.model(e) if e.get("class_name") in MODEL_CLASSES else self.layer(e) for e in entries]
        return {"class_name": "Sequential", "name": config.get("name"), "input_shape": self._sample_shape(shape),
                "input_dtype": _dtype_name(dtype, self.where) if dtype is not None else None, "layers": layers}

    def _functional(self, config):
        entries = config.get("layers", [])
        for entry in entries:
            if not isinstance(entry, dict):
                raise ArchitectureError(f"{self.where}: a layer entry is malformed: {entry!r:.200}")
        # How a model inside this one numbers its calls. tf.keras 2 (calls in lists) counts such a
        # model's own construction as its node 0, everywhere; Keras 3 does so only for a
        # functional model, and only in input_layers/output_layers.
        legacy = any(isinstance(node, list) for e in entries for node in e.get("inbound_nodes") or [])
        from_one = _numbered_from_one(entries, config.get("output_layers")) if legacy else set()
        outputs_from_one = from_one if legacy else {
            e.get("name") or (e.get("config") or {}).get("name") for e in entries
            if e.get("class_name") in ("Functional", "Model")}
        out = []
        for entry in entries:
            spec = self.model(entry) if entry.get("class_name") in MODEL_CLASSES else self.layer(entry)
            if entry.get("class_name") in MODEL_CLASSES and entry.get("name"):
                spec["name"] = entry["name"]
            spec["inbound_nodes"] = [self._node(node, entry, from_one) for node in entry.get("inbound_nodes") or []]
            out.append(spec)
        inputs, single_in = self._refs(config.get("input_layers"), "input_layers")
        outputs, single_out = self._refs(config.get("output_layers"), "output_layers")
        outputs = [_renumber(ref, outputs_from_one) for ref in outputs]
        return {"class_name": "Functional", "name": config.get("name"), "layers": out, "input_layers": inputs,
                "output_layers": outputs, "single_input": single_in, "single_output": single_out}

    def _refs(self, refs, key):
        if isinstance(refs, dict):   # Keras 3 may name outputs: their order is the dict's
            refs = list(refs.values())
        if not isinstance(refs, list) or not refs:
            raise ArchitectureError(f"{self.where}: the model has no {key}")
        if isinstance(refs[0], str):
            return [list(refs[:3])], True
        return [list(r[:3]) if isinstance(r, list) else r for r in refs], len(refs) == 1

    def _node(self, node, entry, from_one):
        """One call of a layer: Keras 3's {"args": [...], "kwargs": {...}} or tf.keras 2's
        [[name, node, tensor, kwargs], ...]."""
        where = f"{self.where}: layer {entry.get('name')!r}"
        if isinstance(node, dict):
            refs = []
            for arg in node.get("args") or []:
                refs += _history(arg)
            kwargs = dict(node.get("kwargs") or {})
        elif isinstance(node, list):
            refs, kwargs = [], {}
            for item in node:
                if not isinstance(item, list) or len(item) < 3:
                    raise ArchitectureError(f"{where}: a call's input {item!r:.100} is malformed")
                refs.append(_renumber(list(item[:3]), from_one))
                if len(item) > 3 and isinstance(item[3], dict):
                    kwargs.update(item[3])
        else:
            raise ArchitectureError(f"{where}: a call {node!r:.100} is malformed")
        training = kwargs.pop("training", None)
        kwargs.pop("mask", None)
        if any(value is not None for value in kwargs.values()):
            raise ArchitectureError(f"{where} is called with {sorted(kwargs)}, which scratchnet's layers do not take")
        return refs if training is None else {"inputs": refs, "training": bool(training)}

    def layer(self, entry):
        name = entry.get("class_name")
        config = entry.get("config")
        if not isinstance(config, dict):
            raise ArchitectureError(f"{self.where}: layer entry {name!r} has no config")
        cls = layers_module.get(name)
        where = f"{self.where}: {name} {config.get('name')!r}"
        if name == "InputLayer":
            shape = config.get("batch_shape") or config.get("batch_input_shape")
            if shape is None:
                raise ArchitectureError(f"{where} does not give its shape")
            return {"class_name": name, "config": {"name": config.get("name"), "shape": self._sample_shape(shape),
                                                   "dtype": _dtype_name(config.get("dtype"), where)}}
        accepted = _accepted(cls)
        renamed = _RENAMED.get(name, {})
        kwargs = {}
        for key, value in config.items():
            key = renamed.get(key, key)
            if key == "dtype":
                kwargs["dtype"] = _dtype_name(value, where)
            elif key in ("batch_input_shape", "batch_shape", "input_shape", "batch_size"):
                continue    # the model's input shape, read by _sequential
            elif key == "data_format" and value == "channels_first":
                raise ArchitectureError(f"{where} is channels_first; scratchnet computes channels_last (NHWC) only: "
                                        f"expected data_format='channels_last', got 'channels_first'")
            elif key == "activation" and isinstance(value, dict):
                raise ArchitectureError(f"{where} has an activation given as an object ({value.get('class_name')!r}); "
                                        f"scratchnet reads activations by name")
            elif key.endswith("_initializer") and key in accepted and _initializer_name(value) is not None:
                kwargs[key] = _initializer_name(value)     # for a clone; a loaded model's weights come from the file
            elif key.endswith("_initializer"):
                self.unread_initializers.append(f"{config.get('name')!r}: {key}={_short(value)}")
            elif key in _ALWAYS_DROPPED:
                continue
            elif _PENALTY.match(key) and key in accepted and value is not None:
                module = regularizers if key.endswith("_regularizer") else constraints
                try:
                    kwargs[key] = module.get(value, f"{where}: {key}")
                except ValueError as error:
                    raise ArchitectureError(str(error)) from None
            elif key in accepted:
                kwargs[key] = value
            elif key in _ACCEPTED_DEFAULTS and _equal_any(value, _ACCEPTED_DEFAULTS[key]):
                continue
            elif value is None or value is False:
                continue
            else:
                raise ArchitectureError(f"{where} sets {key}={_short(value)}, which scratchnet's {name} does not "
                                        f"support")
        return {"class_name": name, "config": kwargs}

    def _sample_shape(self, shape):
        """The per-sample shape of a batch shape [None, ...]: each size a positive int, or None
        (a size known only when the model runs, as an image's in Input(shape=(None, None, 3)))."""
        if not isinstance(shape, (list, tuple)) or len(shape) < 2:
            raise ArchitectureError(f"{self.where}: an input's shape {shape!r:.100} is not [batch, sizes...]")
        sizes = list(shape[1:])
        if not all(d is None or type(d) is int and d > 0 for d in sizes):
            raise ArchitectureError(f"{self.where}: input shape {_short(list(shape))} must be positive ints or None")
        if math.prod(d for d in sizes if d is not None) > MAX_SAMPLE_ELEMENTS:
            raise ArchitectureError(f"{self.where}: input shape {_short(list(shape))} declares "
                                    f"{math.prod(d for d in sizes if d is not None):,} values per sample, more than the {MAX_SAMPLE_ELEMENTS:,} "
                                    f"scratchnet accepts")
        return sizes


def _renumber(ref, from_one):
    """A reference to a model inside a model whose calls are numbered from 1, numbered from 0."""
    if isinstance(ref, list) and len(ref) == 3 and ref[0] in from_one and type(ref[1]) is int:
        return [ref[0], ref[1] - 1, ref[2]]
    return ref


def _numbered_from_one(entries, outputs):
    """The models inside whose calls a tf.keras 2 config numbers from 1: tf.keras 2 counts such
    a model's own construction as its node 0, Keras 3 (also in its .h5 files) does not. In the
    list form of inbound nodes, a model inside that is never read at node 0 is numbered from 1."""
    nested = {e.get("name") or (e.get("config") or {}).get("name") for e in entries
              if e.get("class_name") in MODEL_CLASSES}
    refs = [item for e in entries for node in e.get("inbound_nodes") or [] if isinstance(node, list)
            for item in node if isinstance(item, list) and len(item) >= 3]
    if not refs:
        return set()
    refs += [r for r in (outputs or []) if isinstance(r, list)]
    used = {}
    for ref in refs:
        if ref[0] in nested and type(ref[1]) is int:
            used[ref[0]] = min(used.get(ref[0], ref[1]), ref[1])
    return {name for name, lowest in used.items() if lowest >= 1}


def _history(arg):
    """The [layer, node, tensor] references inside one call argument (a tensor or a list)."""
    if isinstance(arg, list):
        return [ref for item in arg for ref in _history(item)]
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        history = (arg.get("config") or {}).get("keras_history")
        if not isinstance(history, list) or len(history) != 3:
            raise ArchitectureError(f"a tensor reference {arg!r:.100} has no keras_history")
        return [list(history)]
    raise ArchitectureError(f"a call argument {arg!r:.100} is not a tensor; scratchnet's layers take tensors only")


def _accepted(cls):
    """The keyword arguments a layer class takes (its own and the base Layer's)."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= {p for p in inspect.signature(klass.__init__).parameters if p not in ("self", "kwargs")}
    return names


def _dtype_name(value, where):
    """'float32' from Keras's forms: a name, a DTypePolicy / tf.keras Policy object, or None."""
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name")
    if value is None:
        return None
    if value in ("mixed_float16", "mixed_bfloat16"):
        warnings.warn(f"{where}: dtype policy {value!r} (float16 math, float32 weights) loads as float32",
                      stacklevel=5)
        return "float32"
    if value not in ("float32", "float64"):
        raise ArchitectureError(f"{where}: dtype {value!r} is not one scratchnet computes in; expected float32 or "
                                f"float64")
    return value


def _equal_any(value, allowed):
    return any(value == a or (isinstance(value, (list, tuple)) and isinstance(a, list) and list(value) == a)
               for a in allowed)


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ----- writing ---------------------------------------------------------------------------------
def keras_model_config(model, legacy=False):
    """The config Keras writes for ``model``: Keras 3's (config.json of a .keras archive) or,
    with ``legacy``, tf.keras 2's (model_config of a .h5 file)."""
    if is_sequential(model):
        entries = [_input_entry(model.sample_input_shape, model.dtype.name, model.name + "_input", legacy)]
        entries += [_layer_entry(layer, legacy) for layer in model.layers]
        config = {"name": model.name, "trainable": model.trainable, "layers": entries}
        if not legacy:
            config["dtype"] = model.dtype.name
        return _wrap("Sequential", config, legacy, build_config={"input_shape": list(model.input_shape)})
    graph = model._graph
    local = local_node_indices(graph)
    entries = []
    for layer in graph.layers:
        entry = _layer_entry(layer, legacy) if not layer.is_input else \
            _input_entry(layer.shape, layer.dtype.name, layer.name, legacy)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [_node_entry(node, local, legacy) for node in graph.nodes if node.layer is layer]
        entries.append(entry)
    ins = [_ref(t, local) for t in graph.inputs]
    outs = [_ref(t, local, output=True) for t in graph.outputs]
    config = {"name": model.name, "trainable": model.trainable, "layers": entries,
              "input_layers": ins[0] if model._single_input and not legacy else ins,
              "output_layers": outs[0] if model._single_output and not legacy else outs}
    return _wrap("Functional", config, legacy)


def _wrap(class_name, config, legacy, build_config=None):
    if legacy:
        return {"class_name": class_name, "config": config}
    entry = {"module": "keras.src.models.functional" if class_name == "Functional" else "keras",
             "class_name": class_name, "config": config,
             "registered_name": "Functional" if class_name == "Functional" else None}
    if build_config:
        entry["build_config"] = build_config
    return entry


def _layer_entry(layer, legacy):
    if is_model(layer):
        return keras_model_config(layer, legacy)
    config = dict(layer.get_config())
    name = type(layer).__name__
    if "data_format" in _accepted(type(layer)):
        config["data_format"] = "channels_last"
    if legacy and name == "LeakyReLU":
        config["alpha"] = config.pop("negative_slope")
    if legacy:     # tf.keras 2 writes a regularizer or constraint as {class_name, config}
        for key, value in config.items():
            if _PENALTY.match(key) and isinstance(value, dict):
                config[key] = {"class_name": value["class_name"], "config": value["config"]}
    for key, value in config.items():
        if key.endswith("_initializer") and isinstance(value, str):
            config[key] = _initializer_entry(value, legacy)
    if name == "Sigmoid":     # Keras has no Sigmoid layer: the same thing is Activation('sigmoid')
        name, config["activation"] = "Activation", "sigmoid"
    if name == "ZeroPadding2D":
        config["padding"] = [list(p) for p in config["padding"]]
    entry = {"class_name": name, "config": config}
    if not legacy:
        entry = {"module": "keras.layers", **entry, "registered_name": None}
        if layer.built and not layer.takes_list:
            entry["build_config"] = {"input_shape": [None, *layer.input_shape]}
        elif layer.built:
            entry["build_config"] = {"input_shape": [[None, *shape] for shape in layer.input_shape]}
    return entry


def _input_entry(shape, dtype, name, legacy):
    key = "batch_input_shape" if legacy else "batch_shape"
    entry = {"class_name": "InputLayer", "config": {key: [None, *shape], "dtype": dtype, "sparse": False,
                                                    "ragged": False, "name": name}}
    return entry if legacy else {"module": "keras.layers", **entry, "registered_name": None}


def _ref(tensor, local, output=False):
    """[layer, call, tensor]. A model's output made by a functional model inside it names that
    model's calls from 1, as Keras 3 writes and reads it (its construction is call 0); calls
    read by layers are numbered from 0 (tf.keras 2 numbered those from 1 too: see
    ``nested_models``)."""
    layer = tensor.node.layer
    from_one = output and is_model(layer) and not is_sequential(layer)
    return [layer.name, local[id(tensor.node)] + from_one, tensor.index]


def nested_models(model):
    """The models used as layers of ``model`` (a legacy .h5 file with any is for Keras 3 only)."""
    return [layer.name for layer in model.layers if is_model(layer)]


def _node_entry(node, local, legacy):
    kwargs = {} if node.training is None else {"training": bool(node.training)}
    if legacy:
        return [[*_ref(t, local), kwargs] for t in node.inputs]
    tensors = [{"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": t.dtype.name, "keras_history": _ref(t, local)}}
               for t in node.inputs]
    return {"args": [tensors if node.layer.takes_list else tensors[0]], "kwargs": kwargs}


__all__ = ["spec_from_keras", "keras_model_config", "unknown_layers", "refuse_code"]
