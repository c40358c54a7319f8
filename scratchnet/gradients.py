"""Gradients of a score with respect to a model's input or to any layer's activation, from
the engine's own backward pass (what saliency maps, Grad-CAM and filter visualization use).

A score is one number per sample, read from a tensor of the model (``of``: its output, or a
layer's activation by name):

- ``target=k`` picks entry k: a class score of a (N, classes) output, or, of an
  image-shaped activation (N, H, W, C), the mean of filter k's map over its positions;
  ``target`` may also give one index per sample;
- ``seed=S``, an array shaped like the tensor, scores each sample by sum(S * tensor) (the
  ``output_gradients`` of a GradientTape);
- a tensor holding one value per sample (a sigmoid output) is its own score.

``gradient`` returns d(sum of the scores over the batch)/d(wrt). In inference mode (the
default) samples do not interact, so each sample's row is the gradient of its own score. The
Keras tutorials' GradientTape block

    grad_model = keras.Model(model.inputs, [model.get_layer("conv").output, model.output])
    with tf.GradientTape() as tape:
        conv_output, preds = grad_model(images)
        class_channel = preds[:, pred_index]
    grads = tape.gradient(class_channel, conv_output)

reads here

    result = gradients.gradient(model, images, target=pred_index, wrt="conv")
    conv_output, grads, preds = result.wrt_value, result.gradient, result.outputs

and ``tape.gradient(loss, input_image)`` (filter visualization, saliency) is
``gradient(model, image, of="conv", target=filter_index).gradient`` (``wrt`` is the input by
default). ``logits=True`` scores the output before its activation (the unnormalised class
scores CS231n's saliency maps use)."""
from dataclasses import dataclass

import numpy as np

from .arrays import module_of, to_host
from .graph import Graph, run_backward, run_forward
from .training import inputs as inputs_module

INPUT = "input"


@dataclass
class Gradients:
    """What ``gradient`` computed, on the host: ``value`` (N,) the scores; ``gradient`` the
    gradient of their sum with respect to ``wrt`` (an array, or a list for a list of
    ``wrt``); ``wrt_value`` the input or activations it was taken at; ``outputs`` the
    model's outputs."""
    value: np.ndarray
    gradient: object
    wrt_value: object
    outputs: object


def layer_names(model):
    """The names ``of`` and ``wrt`` accept: 'input', 'output', and the model's layers."""
    return [INPUT, "output"] + [layer.name for layer in model.layers if not getattr(layer, "is_input", False)]


def tensor_of(model, name, what):
    """The symbolic tensor a name stands for in ``model``'s graph: its (single) input or
    output, or the output of the layer so named; an error listing the names otherwise."""
    graph = model._graph
    if name == INPUT or any(t.node.layer.name == name for t in graph.inputs):
        if len(graph.inputs) != 1:
            raise ValueError(f"{what}: the model has {len(graph.inputs)} inputs; name one of "
                             f"{[t.node.layer.name for t in graph.inputs]}")
        return next((t for t in graph.inputs if t.node.layer.name == name), graph.inputs[0])
    if name == "output":
        if len(graph.outputs) != 1:
            raise ValueError(f"{what}: the model has {len(graph.outputs)} outputs; name the layer of one")
        return graph.outputs[0]
    nodes = [node for node in graph.nodes if node.layer.name == name]
    if not nodes:
        nested = [layer.name for layer in model.layers if hasattr(layer, "_graph") and
                  any(inner.name == name for inner in layer.layers)]
        inside = f" (it is inside the nested model {nested[0]!r}: explain that model instead)" if nested else ""
        raise ValueError(f"{what}: the model has no layer named {name!r}{inside}; its names are "
                         f"{layer_names(model)}")
    if len(nodes) > 1 or len(nodes[0].outputs) != 1:
        raise ValueError(f"{what}: layer {name!r} is called {len(nodes)} times in the model, so its output is "
                         f"ambiguous; name a layer called once")
    return nodes[0].outputs[0]


def _graph_for(model, source, wanted):
    """The model's graph with ``source`` and ``wanted`` as outputs too (kept, so never fused
    away), made once per combination."""
    cache = model.__dict__.setdefault("_gradient_graphs", {})
    key = (id(model._graph), id(source)) + tuple(id(t) for t in wanted)
    if key not in cache:
        cache[key] = Graph(model._graph.inputs, [source] + list(wanted) + list(model._graph.outputs))
    return cache[key]


def _score_seed(tensor, target, seed, what):
    """(d(sum of scores)/d(tensor), the scores) for a tensor of values of the batch."""
    xp = module_of(tensor)
    n = tensor.shape[0]
    if seed is not None:
        if target is not None:
            raise ValueError(f"{what}: give target or seed, not both")
        seed = xp.asarray(to_host(seed) if xp is np else seed, dtype=tensor.dtype)
        if tuple(seed.shape) != tuple(tensor.shape):
            raise ValueError(f"{what}: the seed must be shaped like the tensor it weighs, {tuple(tensor.shape)}; "
                             f"got {tuple(seed.shape)}")
        return seed, to_host((seed * tensor).reshape(n, -1).sum(axis=1))
    per_sample = int(np.prod(tensor.shape[1:]))
    if target is None:
        if per_sample != 1:
            raise ValueError(f"{what}: this tensor holds {per_sample} values per sample (shape "
                             f"{(None,) + tuple(tensor.shape[1:])}); give target= (a class or filter index) or "
                             f"seed= (an array shaped like it) to make one score per sample")
        return xp.ones_like(tensor), to_host(tensor.reshape(n))
    channels = tensor.shape[-1]
    index = np.asarray(target)
    if index.dtype.kind not in "iu" or index.ndim > 1 or (index.ndim == 1 and len(index) != n):
        raise ValueError(f"{what}: target must be an int or one int per sample ({n}); got {target!r:.80}")
    index = np.broadcast_to(index, (n,))
    if index.min() < -channels or index.max() >= channels:
        bad = index[(index < -channels) | (index >= channels)][0]
        raise ValueError(f"{what}: target {int(bad)} is out of range: the tensor has {channels} entries on its last "
                         f"axis (0 to {channels - 1})")
    index = index % channels
    positions = per_sample // channels           # image-shaped: the mean of a filter's map
    seed = np.zeros((n, positions, channels), dtype=tensor.dtype)
    seed[np.arange(n), :, index] = 1.0 / positions
    seed = seed.reshape(tensor.shape)
    seed_device = xp.asarray(seed)
    return seed_device, to_host((seed_device * tensor).reshape(n, -1).sum(axis=1))


def gradient(model, x, target=None, *, of="output", wrt=INPUT, seed=None, logits=False, training=False):
    """The gradient of the scores (the module says how ``of``, ``target`` and ``seed`` make
    them) summed over the batch ``x``, with respect to ``wrt``: 'input' (the default), a
    layer's name (its activation), or a list of them. ``training=True`` runs dropout and
    BatchNormalization as in training (batch statistics; nothing is stored). Runs on the
    model's backend; returns a ``Gradients`` of host arrays."""
    model.require_graph("gradients.gradient")
    what = "gradients.gradient"
    x = inputs_module.check_x(model, x, "x")
    source = tensor_of(model, of, f"{what}: of={of!r}")
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    if not names:
        raise ValueError(f"{what}: wrt names nothing; give 'input' or layer names")
    wanted = [tensor_of(model, name, f"{what}: wrt={name!r}") for name in names]
    inner = [t for t in wanted if t.node is not None and not getattr(t.node.layer, "is_input", False)]
    graph = _graph_for(model, source, inner)
    layer_for = None
    if logits:
        if of != "output" or not getattr(source.node.layer, "activation", None):
            raise ValueError(f"{what}: logits=True scores the model's output before its activation; the output "
                             f"layer must have one (of='output')")
        plain = source.node.layer.without_activation()
        layer_for = lambda node: plain if node is source.node else node.layer  # noqa: E731
    inputs = [inputs_module.to_device(model, a) for a in (x if isinstance(x, list) else [x])]
    outs, tape = run_forward(graph, inputs, training=training, layer_for=layer_for)
    d_source, value = _score_seed(outs[0], target, seed, f"{what}: of={of!r}")
    capture = {id(t): None for t in inner}
    input_grads, _ = run_backward(graph, tape, [d_source] + [None] * (len(outs) - 1), need_input_grads=True,
                                  capture=capture)
    values = dict(zip([id(t) for t in graph.outputs], outs))
    grads, at = [], []
    for name, tensor in zip(names, wanted):
        if tensor in inner:
            g = capture[id(tensor)]
            if g is None:
                raise ValueError(f"{what}: the score read from {of!r} does not depend on {name!r} (it is not "
                                 f"between the input and {of!r})")
            grads.append(to_host(g))
            at.append(to_host(values[id(tensor)]))
        else:
            index = model._graph.inputs.index(tensor)
            g = input_grads[index]
            grads.append(to_host(g) if g is not None else np.zeros_like(to_host(inputs[index])))
            at.append(to_host(inputs[index]))
    model_outputs = outs[1 + len(inner):]
    if logits:                 # the output layer ran without its activation: the outputs get it back
        model_outputs = [source.node.layer.activation.forward(v) if t is source else v
                         for t, v in zip(model._graph.outputs, model_outputs)]
    model_outputs = [to_host(v) for v in model_outputs]
    single = isinstance(wrt, str)
    return Gradients(value=np.asarray(value), gradient=grads[0] if single else grads,
                     wrt_value=at[0] if single else at,
                     outputs=model_outputs[0] if len(model_outputs) == 1 else model_outputs)


def score_with(model, x, target=None, *, of="output", replace=None, seed=None, logits=False, training=False):
    """The scores ``gradient`` differentiates, with the activation of layer ``replace[0]``
    replaced by the array ``replace[1]``: what a finite-difference check of a gradient with
    respect to an activation evaluates. Host arrays in, (N,) scores out."""
    model.require_graph("gradients.score_with")
    x = inputs_module.check_x(model, x, "x")
    source = tensor_of(model, of, f"score_with: of={of!r}")
    swapped = tensor_of(model, replace[0], "score_with: replace") if replace is not None else None
    graph = _graph_for(model, source, [swapped] if swapped is not None else [])
    plain = source.node.layer.without_activation() if logits else None
    forced = inputs_module.to_device(model, np.asarray(replace[1], dtype=model.dtype)) if replace is not None else None

    def layer_for(node):
        layer = plain if logits and node is source.node else node.layer
        if swapped is not None and (node is swapped.node or swapped.node in getattr(node, "nodes", ())):
            return _Constant(layer, forced)
        return layer

    inputs = [inputs_module.to_device(model, a) for a in (x if isinstance(x, list) else [x])]
    outs, _ = run_forward(graph, inputs, training=training, layer_for=layer_for, keep_tape=False)
    return _score_seed(outs[0], target, seed, "score_with")[1]


class _Constant:
    """A layer stand-in whose forward returns a fixed array (score_with's replacement)."""

    def __init__(self, layer, value):
        self.layer, self.value = layer, value
        self.takes_list = layer.takes_list

    def forward(self, inputs, training=False):
        return self.value, None

