"""A model's architecture as JSON, and back, without running code.

A Sequential model is its input shape and its layers; a functional model is its layers,
each with the calls that made its nodes (``inbound_nodes``: for each call, the tensors it
read as [layer name, node index, tensor index]), and the model's input and output tensors,
as Keras writes them. A model inside a model is written in place of a layer.

Rebuilding trusts nothing: only known layer classes, with the arguments they accept; every
reference must name a layer and a node that exist; a graph that never completes (a cycle
or a dangling reference) is refused; and every weight's shape is worked out from the
architecture, without allocating anything, and compared with the array the file holds
before any layer creates its weights.
"""
from .. import layers as layers_module
from .. import registry
from ..layers.core import InputLayer


class ArchitectureError(ValueError):
    """The architecture cannot be rebuilt; the message says why."""


def is_model(layer):
    """Whether ``layer`` is a model (a Model or Sequential, found through the registry: saving
    never imports scratchnet.models, which imports saving)."""
    return isinstance(layer, registry.get("Model"))


def is_sequential(model):
    return isinstance(model, registry.get("Sequential"))


# ----- writing ---------------------------------------------------------------------------------
def model_to_spec(model):
    if is_sequential(model):
        return {"class_name": "Sequential", "name": model.name, "input_shape": list(model.sample_input_shape),
                "input_dtype": model.dtype.name, "trainable": model.trainable,
                "layers": [layer_to_spec(layer) for layer in model.layers]}
    graph = model._graph
    local = local_node_indices(graph)
    entries = []
    for layer in graph.layers:
        entry = layer_to_spec(layer)
        nodes = [n for n in graph.nodes if n.layer is layer]
        entry["inbound_nodes"] = [_node_to_spec(node, local) for node in nodes]
        entries.append(entry)
    return {"class_name": "Functional", "name": model.name, "layers": entries,
            "input_layers": [_ref(t, local) for t in graph.inputs],
            "output_layers": [_ref(t, local) for t in graph.outputs],
            "single_input": model._single_input, "single_output": model._single_output,
            "trainable": model.trainable}


def layer_to_spec(layer):
    if is_model(layer):
        return model_to_spec(layer)
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def local_node_indices(graph):
    """Each node's index among its layer's calls in this graph (a layer may be in others too)."""
    counts, local = {}, {}
    for tensor in graph.inputs:
        local[id(tensor.node)] = 0
    for node in graph.nodes:
        local[id(node)] = counts.get(id(node.layer), 0)
        counts[id(node.layer)] = local[id(node)] + 1
    return local


def _ref(tensor, local):
    return [tensor.node.layer.name, local[id(tensor.node)], tensor.index]


def _node_to_spec(node, local):
    """The tensors a call read; with the call's ``training`` when it gave one."""
    refs = [_ref(t, local) for t in node.inputs]
    return refs if node.training is None else {"inputs": refs, "training": bool(node.training)}


def _node_from_spec(inbound, where):
    """(tensor references, training) of one entry of inbound_nodes."""
    if isinstance(inbound, dict):
        training = inbound.get("training")
        if training is not None and not isinstance(training, bool):
            raise ArchitectureError(f"{where}: a call's training must be true, false or absent, got {training!r:.50}")
        return inbound.get("inputs"), training
    return inbound, None


def weight_names(model, prefix=()):
    """The path (layer names, then the weight's) of each weight, in get_weights() order."""
    names = []
    seen = set()
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if is_model(layer):
            names += weight_names(layer, prefix + (layer.name,))
        else:
            names += ["/".join(prefix + (layer.name, name)) for name in layer.params]
    return names


# ----- reading ---------------------------------------------------------------------------------
def _construct(spec, where):
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        raise ArchitectureError(f"{where}: a layer entry is malformed: {spec!r:.200}")
    if spec["class_name"] in ("Sequential", "Functional"):
        return None   # a model inside: built by its own spec
    if not isinstance(spec.get("config"), dict):
        raise ArchitectureError(f"{where}: layer entry {spec.get('class_name')!r} has no config")
    return build_from_config(layers_module.get, spec["class_name"], spec["config"], where)


def build_from_config(get_class, class_name, config, where, error=ArchitectureError):
    """``get_class(class_name)(**config)`` (a layer, an optimizer, a loss), with the class
    looked up in scratchnet's own registry only; ``error`` names what failed."""
    try:
        cls = get_class(class_name)
    except ValueError as failure:
        raise error(f"{where}: {failure}") from None
    try:
        return cls(**config)
    except (TypeError, ValueError, NotImplementedError) as failure:
        raise error(f"{where}: cannot build {class_name} from {config!r:.300}: {failure}") from None


def unknown_layer_types(spec, found=None):
    """Every class name in ``spec`` (and the models inside) that is not a known layer."""
    found = set() if found is None else found
    if not isinstance(spec, dict):
        return found
    entries = spec.get("layers") if isinstance(spec.get("layers"), list) else []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("class_name") in ("Sequential", "Functional"):
            unknown_layer_types(entry, found)
        elif isinstance(entry, dict):
            try:
                layers_module.get(entry.get("class_name"))
            except ValueError:
                found.add(str(entry.get("class_name")))
    return found


class _Planner:
    """Rebuilds a model from its spec in two passes: ``shapes`` works out every layer's
    input shape and checks each weight's shape against ``check(path, shape)``, with no
    weights created; ``build`` then makes the model."""

    def __init__(self, check, where):
        self.check, self.where = check, where

    def model(self, spec, prefix=()):
        if not isinstance(spec, dict) or spec.get("class_name") not in ("Sequential", "Functional"):
            raise ArchitectureError(f"{self.where}: the file does not describe a model")
        name = spec.get("name")
        if spec["class_name"] == "Sequential":
            shape = spec.get("input_shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
                raise ArchitectureError(f"{self.where}: input_shape {shape!r:.100} is not a list of positive ints")
            entries = spec.get("layers")
            if not isinstance(entries, list):
                raise ArchitectureError(f"{self.where}: the model's layers are not a list")
            built = [self._layer(entry, prefix) for entry in entries]
            shape = tuple(shape)
            for entry, layer in zip(entries, built):
                shape = self._dry_call(layer, entry, shape, prefix)
            model = registry.get("Sequential")(name=name)
            try:
                model.add(InputLayer(shape=tuple(spec["input_shape"]), dtype=spec.get("input_dtype")))
                for layer in built:
                    model.add(layer)
            except (ValueError, TypeError) as error:
                raise ArchitectureError(f"{self.where}: {error}") from None
            if spec.get("trainable") is False:
                model.trainable = False
            return model
        return self._functional(spec, prefix, registry.get("Model"))

    def _layer(self, entry, prefix):
        if isinstance(entry, dict) and entry.get("class_name") in ("Sequential", "Functional"):
            return self.model(entry, prefix + (str(entry.get("name")),))
        return _construct(entry, self.where)

    def _dry_call(self, layer, entry, shape, prefix):
        """The output shape of ``layer`` on per-sample ``shape`` (a list for several inputs),
        after checking its weights' shapes against the file: nothing is allocated."""
        if is_model(layer):
            expected = layer.sample_input_shape
            if (list(shape) if isinstance(shape, list) else tuple(shape)) != expected:
                raise ArchitectureError(f"{self.where}: model {layer.name!r} takes inputs of shape {expected}, "
                                        f"but is given {shape}")
            return layer.sample_output_shape
        try:
            if layer.built:
                layer.check_input_shape(shape)
            else:
                for weight, weight_shape in layer.weight_shapes(shape).items():
                    self.check("/".join(prefix + (layer.name, weight)), tuple(weight_shape), layer)
            return layer.compute_output_shape(shape)
        except ValueError as error:
            if isinstance(error, ArchitectureError):
                raise
            raise ArchitectureError(f"{self.where}: {error}") from None

    def _functional(self, spec, prefix, model_class):
        entries = spec.get("layers")
        if not isinstance(entries, list):
            raise ArchitectureError(f"{self.where}: the model's layers are not a list")
        by_name, calls = {}, []
        for entry in entries:
            layer = self._layer(entry, prefix)
            if not isinstance(entry, dict) or not isinstance(entry.get("inbound_nodes", []), list):
                raise ArchitectureError(f"{self.where}: layer entry {entry!r:.200} has no list of inbound nodes")
            if layer.name in by_name:
                raise ArchitectureError(f'{self.where}: the name "{layer.name}" is used twice in the model')
            by_name[layer.name] = layer
            for index, inbound in enumerate(entry.get("inbound_nodes", [])):
                refs, training = _node_from_spec(inbound, self.where)
                if not isinstance(refs, list):
                    raise ArchitectureError(f"{self.where}: layer {layer.name!r}: a call's inputs are not a list")
                calls.append((layer, index, refs, {"training": training}))
        for key in ("input_layers", "output_layers"):
            refs = spec.get(key)
            if not isinstance(refs, list) or not refs:
                raise ArchitectureError(f"{self.where}: the model has no {key}")
        # pass 1: shapes only, checked against the file
        shapes = {}
        for layer in by_name.values():
            if isinstance(layer, InputLayer):
                shapes[(layer.name, 0, 0)] = layer.shape
        self._replay(calls, by_name, shapes, lambda layer, entry, ins: self._dry_call(
            layer, entry, ins if layer.takes_list else ins[0], prefix), "dry")
        for ref in spec["input_layers"] + spec["output_layers"]:
            if self._key(ref) not in shapes:
                raise ArchitectureError(f"{self.where}: the model's inputs or outputs name {ref!r}, which no layer "
                                        f"makes")
        # pass 2: the real graph
        tensors = {}
        for layer in by_name.values():
            if isinstance(layer, InputLayer):
                tensors[(layer.name, 0, 0)] = layer.output
        def build(layer, call, ins):
            try:
                return layer(ins if layer.takes_list else ins[0], training=call["training"])
            except (ValueError, TypeError) as error:
                raise ArchitectureError(f"{self.where}: {error}") from None
        self._replay(calls, by_name, tensors, build, "build")
        inputs = [tensors[self._key(r)] for r in spec["input_layers"]]
        outputs = [tensors[self._key(r)] for r in spec["output_layers"]]
        try:
            model = model_class(inputs[0] if spec.get("single_input", True) and len(inputs) == 1 else inputs,
                                outputs[0] if spec.get("single_output", True) and len(outputs) == 1 else outputs,
                                name=spec.get("name"))
        except ValueError as error:
            raise ArchitectureError(f"{self.where}: {error}") from None
        if spec.get("trainable") is False:
            model.trainable = False
        return model

    @staticmethod
    def _key(ref):
        if not isinstance(ref, list) or len(ref) != 3 or not isinstance(ref[0], str) or \
                not all(type(v) is int and v >= 0 for v in ref[1:]):
            raise ArchitectureError(f"a tensor reference must be [layer name, node index, tensor index], got "
                                    f"{ref!r:.100}")
        return tuple(ref)

    def _replay(self, calls, by_name, values, call, what):
        """Make each call once its inputs exist, a layer's calls in their order; what never
        becomes ready is a dangling reference or a cycle."""
        pending = list(calls)
        done = {name: 0 for name in by_name}
        while pending:
            progressed = False
            for item in list(pending):
                layer, index, inbound, entry = item
                try:
                    keys = [self._key(ref) for ref in inbound]
                except ArchitectureError as error:
                    raise ArchitectureError(f"{self.where}: layer {layer.name!r}: {error}") from None
                if done[layer.name] != index or not all(k in values for k in keys):
                    continue
                out = call(layer, entry, [values[k] for k in keys])
                outs = out if isinstance(out, list) else [out]
                for i, value in enumerate(outs):
                    values[(layer.name, index, i)] = value
                done[layer.name] += 1
                pending.remove(item)
                progressed = True
            if not progressed:
                layer, _, inbound, _ = pending[0]
                for ref in (r for _, _, refs, _ in pending for r in refs):
                    name, node, tensor = ref
                    if name not in by_name:
                        raise ArchitectureError(f"{self.where}: layer {layer.name!r} reads from layer {name!r}, "
                                                f"which the model does not have (a dangling reference)")
                    declared = sum(1 for c in pending if c[0].name == name) + done[name]
                    if node >= declared and not isinstance(by_name[name], InputLayer):
                        raise ArchitectureError(f"{self.where}: layer {layer.name!r} reads node {node} of layer "
                                                f"{name!r}, which has only {declared} (a dangling reference)")
                    if node < done[name] and (name, node, tensor) not in values:
                        raise ArchitectureError(f"{self.where}: layer {layer.name!r} reads output {tensor} of node "
                                                f"{node} of layer {name!r}, which has no such output (a dangling "
                                                f"reference)")
                raise ArchitectureError(f"{self.where}: the layers {sorted({c[0].name for c in pending})} wait "
                                        f"on each other: the graph has a cycle")


def model_from_spec(spec, check, where="the file"):
    """The model ``spec`` describes; ``check(path, shape, layer)`` is called for every weight,
    before any is created, and raises when the file does not hold that weight."""
    unknown = unknown_layer_types(spec)
    if unknown:
        raise ArchitectureError(f"{where} uses layer types scratchnet does not have: {sorted(unknown)}; it has "
                                f"{sorted(layers_module._BY_NAME)}")
    return _Planner(check, where).model(spec)


__all__ = ["ArchitectureError", "model_to_spec", "model_from_spec", "weight_names", "layer_to_spec",
           "build_from_config", "unknown_layer_types", "local_node_indices", "is_model", "is_sequential"]
