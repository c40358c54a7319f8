"""Graphs of layers: symbolic tensors, the nodes that calls of layers add, and a Graph: the
nodes between some inputs and outputs in an order that runs them. Running a graph is the
engine's (``execute.py``); its names stay importable from here.

    x = Input(shape=(28, 28, 1))          # a SymbolicTensor
    y = Dense(10)(Flatten()(x))           # each call adds a Node to its layer
    graph = Graph([x], [y])               # the nodes between them, in order
    outputs, tape = run_forward(graph, [images], training=True)
    input_grads, param_grads = run_backward(graph, tape, [d_outputs])
"""
import numpy as np

# The engine (execute.py) and the fusion switch (``fusion.enabled(False)``, which replaced the
# FUSE_LAYERS flag), importable from here as before.
from . import fusion  # noqa: F401
from .execute import Plan, Step, Tape, apply_state_updates, plan_for, run_backward, run_forward  # noqa: F401
from .fusion import FusedNode  # noqa: F401


SIZES_KEPT = 8     # input sizes whose shapes a graph keeps (Graph.output_shapes)


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
        self.plans = {}     # the engine's Plans for this graph, by whether they fuse (execute.plan_for)
        self._sizes = {}    # output shapes by input shapes, for graphs with inputs of unknown size

    def output_shapes(self, input_shapes):
        """The per-sample shape of each output for inputs of ``input_shapes`` (one per input),
        worked out node by node with each layer's ``compute_output_shape``: how a graph whose
        inputs have axes of unknown size (``Input(shape=(None, None, 3))``) learns the shapes of
        one call. Kept for the last SIZES_KEPT input sizes. A size that some layer cannot take
        (an image smaller than the model's downsampling) is a ValueError naming that layer."""
        key = tuple(tuple(s) for s in input_shapes)
        shapes = self._sizes.get(key)
        if shapes is None:
            shapes = self._propagate(key)
            if len(self._sizes) >= SIZES_KEPT:
                del self._sizes[next(iter(self._sizes))]
            self._sizes[key] = shapes
        return shapes

    def _propagate(self, input_shapes):
        known = {id(t): s for t, s in zip(self.inputs, input_shapes)}
        for node in self.nodes:
            layer = node.layer
            shapes = [known[id(t)] for t in node.inputs]
            try:
                out = layer.compute_output_shape(shapes if layer.takes_list else shapes[0])
            except ValueError as error:
                given = ", ".join(str((None,) + s) for s in input_shapes)
                raise ValueError(f"inputs of shape {given} do not fit layer {layer.name!r}: {error}") from None
            for tensor, shape in zip(node.outputs, out if isinstance(out, list) else [out]):
                known[id(tensor)] = tuple(shape)
        return [known[id(t)] for t in self.outputs]

    def fused_plan(self):
        """The Plan the engine runs with fusion on: each pair fusion.RULES names as one step
        (a FusedNode); see ``execute.plan_for``."""
        return plan_for(self, True)

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
