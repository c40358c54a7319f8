"""The execution engine: the plan a graph runs in, forward through it (returning what each
step kept for its backward pass) and backward through it (consuming that).

    outputs, tape = run_forward(graph, [images], training=True)
    input_grads, param_grads = run_backward(graph, tape, [d_outputs])
    apply_state_updates(tape)        # BatchNormalization's moving statistics, after the update

A layer's ``activity_regularizer`` is a penalty on its output: the forward pass adds its
value to ``tape.activity_penalty``, and a backward pass given ``activity_scale`` (what the
training step divides that penalty by) adds its gradient where the output is reached.

A Plan is the graph's nodes in order, each with the ids of the values it reads and makes and
of the values nobody needs after it; the fused plan runs the pairs ``fusion.RULES`` names as
one step (a ``fusion.FusedNode``). Each step calls ``layer.forward(x, training) -> (y, ctx)``
and, backward, ``layer.backward(dy, ctx, need_dx) -> (dx, grads)``: the layers, and under them
``scratchnet.functions``, do the math. This module works on any object shaped as
``graph.Graph`` (nodes, inputs, outputs, plans) and imports no layer and no graph.
"""
from typing import NamedTuple

from . import fusion
from .arrays import module_of


class Step(NamedTuple):
    """One step of a plan: a node (or a FusedNode), the ids of the tensors it reads and makes,
    and the ids of the values no later step (nor the output) needs."""
    node: object
    input_ids: list
    output_ids: list
    free: list


class Plan:
    """The steps that run a graph, in order (iterating a Plan gives its Steps)."""

    def __init__(self, steps):
        self.steps = steps
        self._below_weights = None
        self._chain = False       # not worked out yet (None: the plan is not a chain)

    def __iter__(self):
        return iter(self.steps)

    def __len__(self):
        return len(self.steps)

    def chain(self, graph):
        """For a prediction: [(layer, the call's training argument, the layer's default)] of
        each step, when the steps form one line from the graph's one input to its one output
        (each step reads only the value the one before it made, and no layer has an activity
        penalty to add up); None otherwise. Worked out once."""
        if self._chain is False:
            self._chain = _chain_of(self, graph)
        return self._chain

    @property
    def below_weights(self):
        """The ids of the steps whose inputs some layer with weights computed: only their
        dL/dx can reach a weight (layers between the inputs and the first weights, such as
        Rescaling or the augmentation layers, need no backward pass). Worked out on the first
        backward pass, once the layers have their weights."""
        if self._below_weights is None:
            after_weights, below = set(), set()
            for step in self.steps:
                node = step.node
                if any(id(t) in after_weights for t in node.inputs):
                    below.add(id(node))
                    after_weights.update(id(t) for t in node.outputs)
                elif any(part.layer.weights for part in _parts(node)):
                    after_weights.update(id(t) for t in node.outputs)
            self._below_weights = below
        return self._below_weights


class Tape(list):
    """What a forward pass keeps for the backward one: a (node, layer that ran it, ctx) per
    step, in the order the steps ran, and ``plan``, the Plan they followed. With activity
    regularizers: ``activity_penalty``, the sum of their values over the steps (those of a
    model inside included), and ``activity``, {output tensor id: (regularizer, output)};
    ``activity_scale`` is what the backward pass multiplies their gradients by (None: no
    gradient, as for the gradient of an output rather than of the loss)."""

    __slots__ = ("plan", "activity_penalty", "activity", "activity_scale")

    def __init__(self, plan):
        super().__init__()
        self.plan, self.activity_penalty, self.activity, self.activity_scale = plan, 0.0, {}, None


def _chain_of(plan, graph):
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        return None
    previous, chain = id(graph.inputs[0]), []
    for node, input_ids, output_ids, _ in plan.steps:
        if input_ids != [previous] or len(output_ids) != 1 or node.layer.takes_list or \
                any(_activity_regularizer(part) is not None for part in _parts(node)):
            return None
        chain.append((node.layer, node.training, getattr(node.layer, "training_by_default", False)))
        previous = output_ids[0]
    return chain if previous == id(graph.outputs[0]) else None


def _parts(node):
    """The graph nodes a step runs: the two of a FusedNode, else the node itself."""
    return node.nodes if isinstance(node, fusion.FusedNode) else (node,)


def plan_for(graph, fused):
    """The Plan ``graph`` runs: with its fusable pairs as one step (``fused``) or every node on
    its own. Worked out once per graph and kept in ``graph.plans``."""
    plan = graph.plans.get(fused)
    if plan is None:
        plan = graph.plans[fused] = _fused_plan(graph) if fused else _plain_plan(graph)
    return plan


def _plain_plan(graph):
    """Every node on its own, in the graph's order; a value is freed after its last reader."""
    last = {}
    for position, node in enumerate(graph.nodes):
        for t in node.inputs:
            last[id(t)] = position
    keep = {id(t) for t in graph.inputs + graph.outputs}
    free = [[] for _ in graph.nodes]
    for tensor_id, position in last.items():
        if tensor_id not in keep:
            free[position].append(tensor_id)
    return Plan([Step(node, [id(t) for t in node.inputs], [id(t) for t in node.outputs], free[i])
                 for i, node in enumerate(graph.nodes)])


def _fused_plan(graph):
    """The plain plan with each fusable pair as one step: the first node's only output is
    read only by the second (which reads nothing else), is not a model output, both run in
    the same mode, and fusion.RULES builds a step for their layers."""
    plain = plan_for(graph, False)
    readers = {}
    for node in graph.nodes:
        for t in node.inputs:
            readers.setdefault(id(t), []).append(node)
    kept = {id(t) for t in graph.outputs}
    frees = {id(step.node): step.free for step in plain}
    steps, absorbed = [], set()
    for step in plain:
        node, input_ids, output_ids, free = step
        if id(node) in absorbed:
            continue
        fused = None
        if len(node.outputs) == 1 and output_ids[0] not in kept:
            after = readers.get(output_ids[0], [])
            if len(after) == 1 and len(after[0].inputs) == 1 and after[0].training == node.training \
                    and _activity_regularizer(node) is None and _activity_regularizer(after[0]) is None:
                fused = fusion.fuse(node, after[0])
        if fused is None:
            steps.append(step)
            continue
        second = fused.nodes[1]
        absorbed.add(id(second))
        steps.append(Step(fused, input_ids, [id(t) for t in second.outputs],
                          free + [i for i in frees[id(second)] if i != output_ids[0]]))
    return Plan(steps)


def run_forward(graph, inputs, training=False, layer_for=None, keep_tape=True):
    """Run the graph on ``inputs`` (arrays, one per graph input), in training mode or not
    (``training=None``: each layer's default, as Keras's ``model(x)``; only the augmentation
    layers default to training), fused or not as ``fusion.is_enabled()`` says now.

    Returns (outputs, tape): the output arrays, and the Tape of (node, layer, ctx) per step
    in order, which ``run_backward`` consumes. ``layer_for`` may swap the layer that runs a
    node (the fused head of a compiled model). Nothing is stored on a layer: the moving
    statistics a training call computes wait in the tape for ``apply_state_updates``.
    Intermediate values are dropped once no later step needs them; with ``keep_tape=False``
    (a prediction: no backward pass, no state to store) so are the contexts, and the
    returned tape is empty."""
    plan = plan_for(graph, fusion.is_enabled())
    tape = Tape(plan)
    chain = plan.chain(graph) if not keep_tape and layer_for is None else None
    if chain is not None:       # a prediction through a line of layers: no table of values to keep
        value = inputs[0]
        for layer, call_mode, default in chain:
            mode = training if call_mode is None else call_mode
            value = layer.forward(value, default if mode is None else mode)[0]
        return [value], tape
    values = {id(t): v for t, v in zip(graph.inputs, inputs)}
    for node, input_ids, output_ids, free in plan.steps:
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
        if isinstance(ctx, Tape):      # a model inside: its penalties count here too
            tape.activity_penalty += ctx.activity_penalty
        regularizer = _activity_regularizer(node)
        if regularizer is not None:
            for tensor_id in output_ids:
                tape.activity_penalty += regularizer(values[tensor_id])
                if keep_tape:
                    tape.activity[tensor_id] = (regularizer, values[tensor_id])
        for tensor_id in free:
            del values[tensor_id]
    return [values[id(t)] for t in graph.outputs], tape


def _activity_regularizer(node):
    """The activity regularizer of a graph node's layer (a fused step has none), or None."""
    return getattr(node.layer, "activity_regularizer", None)


def apply_state_updates(tape):
    """Store the state updates of a forward pass (BatchNormalization's moving statistics),
    node by node in the order they ran: what a training step does once its update is made."""
    for node, _, ctx in tape:
        node.layer.apply_state_updates(ctx)


def _accumulate(table, key, value):
    # a new array, never an in-place add: the first gradient may be another node's array
    table[key] = value if key not in table else table[key] + value


def run_backward(graph, tape, output_grads, need_input_grads=False, capture=None, activity_scale=None):
    """Gradients of a scalar L from dL/d(outputs) and the Tape of the forward pass.

    Returns (input_grads, param_grads): dL/d(each graph input), or None where not asked,
    and {(layer, weight name): gradient}, summed over every call of a shared layer. Where a
    tensor feeds several nodes (a fork), the gradients reaching it add up. A node computes its
    dL/dx only where a weight lies below it, or when the inputs' gradients are asked for.
    ``capture`` (a dict keyed by ids of tensors the graph computes) receives dL/d(each of
    those tensors), complete once every node reading it has run backward. With
    ``activity_scale`` (else the tape's own, set by the model a nested graph is in), the
    gradients of the activity penalties times that scale join those of their outputs: L is
    then the loss of a training step."""
    scale = tape.activity_scale if activity_scale is None else activity_scale
    grads = {}
    for tensor, g in zip(graph.outputs, output_grads):
        if g is not None:
            _accumulate(grads, id(tensor), g)
    below_weights = tape.plan.below_weights
    param_grads = {}
    for node, layer, ctx in reversed(tape):
        douts = [grads.pop(id(t), None) for t in node.outputs]
        if scale is not None and tape.activity:
            douts = [_with_activity(g, tape.activity.get(id(t)), scale) for t, g in zip(node.outputs, douts)]
        if isinstance(ctx, Tape):
            ctx.activity_scale = scale
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


def _with_activity(grad, penalty, scale):
    """dL/dy plus ``scale`` times the gradient of the activity penalty on y (if any)."""
    if penalty is None:
        return grad
    regularizer, y = penalty
    extra = regularizer.gradient(y) * y.dtype.type(scale)     # a new array: a penalty's own may be kept
    return extra if grad is None else grad + extra


def _zeros_like_output(node, index, douts):
    """Zeros for output ``index`` of ``node`` (which the loss does not reach), shaped and
    placed as the gradients of its other outputs."""
    reference = next(g for g in douts if g is not None)
    shape = (reference.shape[0],) + tuple(node.outputs[index].shape[1:])
    return module_of(reference).zeros(shape, node.outputs[index].dtype)
