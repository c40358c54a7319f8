"""Graphs of layers: symbolic tensors, nodes, the topological order, and the one execution
engine that runs a graph forward (returning the contexts of that call) and backward
(consuming them). Sequential models and functional models both run here.

    x = Input(shape=(28, 28, 1))          # a SymbolicTensor
    y = Dense(10)(Flatten()(x))           # each call adds a Node to its layer
    graph = Graph([x], [y])               # the nodes between them, in order
    outputs, tape = run_forward(graph, [images], training=True)
    input_grads, param_grads = run_backward(graph, tape, [d_outputs])
"""
import numpy as np


class GraphError(ValueError):
    """A graph that cannot be built or run: disconnected, cyclic, misnamed, mis-shaped."""


class SymbolicTensor:
    """A tensor of a graph under construction, as Keras's KerasTensor: a shape whose first
    entry (the batch) is None, a dtype, and the node that makes it."""

    def __init__(self, shape, dtype, node=None, index=0, name=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    def describe(self):
        origin = f" from {self.node.layer.name}" if self.node is not None else ""
        return f"tensor of shape {self.shape}{origin}"

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype.name} name={self.name!r}>"

    def __array__(self, *args, **kwargs):
        raise TypeError("a symbolic tensor (from Input(...) or a layer called on one) has no values; build a "
                        "Model(inputs, outputs) and call predict() on data")


class Node:
    """One call of a layer in a graph: the tensors it read and the tensors it made."""

    def __init__(self, layer, inputs, outputs, training=None):
        self.layer = layer
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.training = training   # as the call said (layer(x, training=False)), or None: the model's mode
        self.index = len(layer._inbound_nodes)   # which call of this layer it is
        for i, tensor in enumerate(self.outputs):
            tensor.node, tensor.index = self, i
        layer._inbound_nodes.append(self)

    def detach(self):
        """Remove this node from its layer (a Sequential model rebuilding its graph)."""
        if self in self.layer._inbound_nodes:
            self.layer._inbound_nodes.remove(self)

    def __repr__(self):
        return f"<Node {self.layer.name}[{self.index}]>"


class FusedNode:
    """Two nodes the engine runs as one step (a layer whose output only the next layer reads,
    and that pair has a fused form: ``first.layer.fused_with(second.layer)``)."""

    def __init__(self, layer, first, second):
        self.layer, self.nodes = layer, (first, second)
        self.inputs, self.outputs, self.training = first.inputs, second.outputs, first.training

    def __repr__(self):
        return f"<FusedNode {self.layer.name}>"


# Run fusable pairs of layers as one step (the default); tests turn it off to compare.
FUSE_LAYERS = True


def flatten_tensors(value):
    """A list of the tensors (or arrays) in ``value``: one, a list, a tuple or a dict's values."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


class Graph:
    """The nodes between ``inputs`` (tensors made by Input) and ``outputs``, in an order in
    which every node comes after the nodes that make its inputs."""

    def __init__(self, inputs, outputs):
        self.inputs = flatten_tensors(inputs)
        self.outputs = flatten_tensors(outputs)
        for tensor in self.inputs + self.outputs:
            if not isinstance(tensor, SymbolicTensor):
                raise GraphError(f"a model's inputs and outputs must be symbolic tensors (from Input(...) and "
                                 f"layers called on them), got {type(tensor).__name__}")
        for tensor in self.inputs:
            if tensor.node is None or tensor.node.inputs or not getattr(tensor.node.layer, "is_input", False):
                raise GraphError(f"model inputs must come straight from Input(...); {tensor.describe()} does not")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise GraphError("the same Input tensor is given twice as a model input")
        self.nodes = self._order()
        self._check_names()
        free = self._values_to_free()
        # what run_forward needs of each node, worked out once: (node, input ids, output ids, ids to free)
        self._plan = [(node, [id(t) for t in node.inputs], [id(t) for t in node.outputs], free[i])
                      for i, node in enumerate(self.nodes)]

    def fused_plan(self):
        """The plan with each fusable pair of nodes as one FusedNode (worked out once): the
        first node's only output is read only by the second, is not a model output, both run
        in the same mode, and the first's layer has a fused form with the second's."""
        if getattr(self, "_fused_plan", None) is None:
            readers = {}
            for node in self.nodes:
                for t in node.inputs:
                    readers.setdefault(id(t), []).append(node)
            kept = {id(t) for t in self.outputs}
            frees = {id(entry[0]): entry[3] for entry in self._plan}
            plan, absorbed = [], set()
            for node, input_ids, output_ids, free in self._plan:
                if id(node) in absorbed:
                    continue
                fused = None
                if len(node.outputs) == 1 and output_ids[0] not in kept and hasattr(node.layer, "fused_with"):
                    after = readers.get(output_ids[0], [])
                    if len(after) == 1 and len(after[0].inputs) == 1 and after[0].training == node.training:
                        layer = node.layer.fused_with(after[0].layer)
                        fused = FusedNode(layer, node, after[0]) if layer is not None else None
                if fused is None:
                    plan.append((node, input_ids, output_ids, free))
                    continue
                second = fused.nodes[1]
                absorbed.add(id(second))
                plan.append((fused, input_ids, [id(t) for t in second.outputs],
                             free + [i for i in frees[id(second)] if i != output_ids[0]]))
            self._fused_plan = plan
        return self._fused_plan

    def _order(self):
        """Depth-first from the outputs; an Input not among the model's inputs is a
        disconnected graph; a node met again on the current path is a cycle."""
        known = {id(t) for t in self.inputs}
        ordered, done, path = [], set(), []
        self._first_seen = {}   # layer -> when the search from the outputs first met it

        def visit(tensor, consumer):
            if tensor.node is not None:
                self._first_seen.setdefault(id(tensor.node.layer), len(self._first_seen))
            if id(tensor) in known:
                return
            node = tensor.node
            if node is None or getattr(node.layer, "is_input", False):
                raise GraphError(
                    f"graph disconnected: {tensor.describe()} is needed by layer "
                    f"{consumer.layer.name if consumer else '(the outputs)'!r} but does not come from the model's "
                    f"inputs {[t.name for t in self.inputs]}; pass every Input the outputs depend on")
            if id(node) in done:
                return
            if any(n is node for n in path):
                raise GraphError(f"the graph has a cycle through layer {node.layer.name!r}")
            path.append(node)
            for t in node.inputs:
                visit(t, node)
            path.pop()
            done.add(id(node))
            ordered.append(node)

        for tensor in self.outputs:
            visit(tensor, None)
        return ordered

    def _check_names(self):
        seen = {}
        for layer in self.layers:
            seen.setdefault(layer.name, []).append(layer)
        for name, holders in seen.items():
            if len(holders) > 1:
                raise GraphError(f'The name "{name}" is used {len(holders)} times in the model. All layer names '
                                 f'should be unique: pass name= to tell them apart.')

    def _values_to_free(self):
        """For each node, the ids of the tensors no later node (nor the output) needs."""
        last = {}
        for position, node in enumerate(self.nodes):
            for t in node.inputs:
                last[id(t)] = position
        keep = {id(t) for t in self.inputs + self.outputs}
        free = [[] for _ in self.nodes]
        for tensor_id, position in last.items():
            if tensor_id not in keep:
                free[position].append(tensor_id)
        return free

    @property
    def input_layers(self):
        return [t.node.layer for t in self.inputs]

    @property
    def layers(self):
        """Every layer once, in Keras's order (which Keras's files rely on): by depth, deepest
        first, then in the order the search from the outputs met them. A node's depth is the
        longest path from it to an output, except that a shared layer's later node is first
        raised to the depth the layer already has, and passes that on to the nodes before it,
        as Keras does. The input layers come first; a chain comes out in its own order."""
        if getattr(self, "_layers", None) is None:
            depth, layer_depth, layers = {}, {}, {}
            for node in reversed(self.nodes):
                d = max(depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
                depth[id(node)] = layer_depth[id(node.layer)] = d
                layers[id(node.layer)] = node.layer
                for t in node.inputs:
                    if t.node is not None:
                        depth[id(t.node)] = max(depth.get(id(t.node), 0), d + 1)
            for tensor in self.inputs:
                layer = tensor.node.layer
                layers[id(layer)] = layer
                layer_depth[id(layer)] = max(layer_depth.get(id(layer), 0), depth.get(id(tensor.node), 0))
            self._layers = sorted(layers.values(), key=lambda l: (-layer_depth[id(l)],
                                                                  self._first_seen.get(id(l), -1)))
        return self._layers


def run_forward(graph, inputs, training=False, layer_for=None, keep_tape=True):
    """Run the graph on ``inputs`` (arrays, one per graph input), in training mode or not
    (``training=None``: each layer's default, as Keras's ``model(x)``; only the augmentation
    layers default to training).

    Returns (outputs, tape): the output arrays, and each node's (node, layer, ctx) in
    order, which ``run_backward`` consumes. ``layer_for`` may swap the layer that runs a
    node (the fused head of a compiled model). Nothing is stored on a layer: the moving
    statistics a training call computes wait in the tape for ``apply_state_updates``.
    Intermediate values are dropped once no later node needs them; with ``keep_tape=False``
    (a prediction: no backward pass, no state to store) so are the contexts, and the
    returned tape is empty."""
    values = {id(t): v for t, v in zip(graph.inputs, inputs)}
    tape = []
    for node, input_ids, output_ids, free in (graph.fused_plan() if FUSE_LAYERS else graph._plan):
        layer = node.layer if layer_for is None else layer_for(node)
        mode = training if node.training is None else node.training
        if mode is None:    # a call that did not say: the layer's default (a model passes None on)
            mode = getattr(layer, "training_by_default", False)
        if len(input_ids) == 1 and not node.layer.takes_list:
            out, ctx = layer.forward(values[input_ids[0]], mode)
        else:
            out, ctx = layer.forward([values[i] for i in input_ids], mode)
        if len(output_ids) == 1:
            values[output_ids[0]] = out
        else:
            values.update(zip(output_ids, out))
        if keep_tape:
            tape.append((node, layer, ctx))
        for tensor_id in free:
            del values[tensor_id]
    return [values[id(t)] for t in graph.outputs], tape


def apply_state_updates(tape):
    """Store the state updates of a forward pass (BatchNormalization's moving statistics),
    node by node in the order they ran: what a training step does once its update is made."""
    for node, _, ctx in tape:
        node.layer.apply_state_updates(ctx)


def _accumulate(table, key, value):
    # a new array, never an in-place add: the first gradient may be another node's array
    table[key] = value if key not in table else table[key] + value


def run_backward(graph, tape, output_grads, need_input_grads=False, capture=None):
    """Gradients of a scalar L from dL/d(outputs) and the tape of the forward pass.

    Returns (input_grads, param_grads): dL/d(each graph input), or None where not asked,
    and {(layer, weight name): gradient}, summed over every call of a shared layer. Where a
    tensor feeds several nodes (a fork), the gradients reaching it add up. A node computes its
    dL/dx only where a weight lies below it, or when the inputs' gradients are asked for.
    ``capture`` (a dict keyed by ids of tensors the graph computes) receives dL/d(each of
    those tensors), complete once every node reading it has run backward."""
    grads = {}
    for tensor, g in zip(graph.outputs, output_grads):
        if g is not None:
            _accumulate(grads, id(tensor), g)
    below_weights = _nodes_below_weights(graph, tape)
    param_grads = {}
    for node, layer, ctx in reversed(tape):
        douts = [grads.pop(id(t), None) for t in node.outputs]
        if capture is not None:
            for t, g in zip(node.outputs, douts):
                if id(t) in capture:
                    capture[id(t)] = g
        if all(g is None for g in douts):
            continue   # this node's outputs do not reach the loss
        douts = [g if g is not None else _zeros_like_output(node, i, douts) for i, g in enumerate(douts)]
        need_dx = need_input_grads or id(node) in below_weights
        dinputs, dparams = node.layer.backward(douts if len(douts) > 1 else douts[0], ctx, need_dx)
        if need_dx:
            for tensor, g in zip(node.inputs, dinputs if isinstance(dinputs, list) else [dinputs]):
                if g is not None:
                    _accumulate(grads, id(tensor), g)
        for key, g in dparams.items():
            _accumulate(param_grads, key if isinstance(key, tuple) else (node.layer, key), g)
    return [grads.get(id(t)) for t in graph.inputs], param_grads


def _nodes_below_weights(graph, tape):
    """The nodes whose inputs some layer with weights computed: only their dL/dx can reach a
    weight. (Layers between the inputs and the first weights, such as Rescaling or the
    augmentation layers, need no backward pass.) Worked out once per plan the tape followed
    (the fused one or not, told apart by their lengths), not every step."""
    cache = graph.__dict__.setdefault("_below_weights", {})
    if len(tape) not in cache:
        after_weights, below = set(), set()
        for node, _, _ in tape:
            if any(id(t) in after_weights for t in node.inputs):
                below.add(id(node))
                after_weights.update(id(t) for t in node.outputs)
            elif any(part.layer.weights for part in getattr(node, "nodes", (node,))):
                after_weights.update(id(t) for t in node.outputs)
        cache[len(tape)] = below
    return cache[len(tape)]


def _zeros_like_output(node, index, douts):
    from .arrays import module_of
    reference = next(g for g in douts if g is not None)
    shape = (reference.shape[0],) + tuple(node.outputs[index].shape[1:])
    return module_of(reference).zeros(shape, node.outputs[index].dtype)
