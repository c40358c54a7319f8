"""Which pairs of layers the engine runs as one step, and the switch that turns that off.

A node whose one output is read by one node only (which reads nothing else, runs in the
same mode, and is not a model output) may run together with that reader as one step when
``RULES`` has an entry for the exact classes of their two layers (a subclass may compute
something else). The entry builds the step from the two layers, or returns None where their
settings rule it out:

    RULES[(Conv2D, MaxPooling2D)](conv, pool)  ->  ConvPool(conv, pool), or None

The steps and their entries live with the layers: ``layers/fused.py`` fills RULES when the
layers are imported. This module imports nothing of scratchnet, so the engine
(``execute.py``) reads the table without importing a layer. A step offers what the engine
calls on a layer: ``name``, ``takes_list``, ``forward``, ``backward`` and
``apply_state_updates``; the gradients it returns are keyed (layer, weight name) by the
layer that owns the weights.
"""
from contextlib import contextmanager

# (first layer's class, second layer's class) -> build(first layer, second layer) -> step or None
RULES = {}

_enabled = True


def is_enabled():
    """Whether graphs run their fusable pairs as one step (the default)."""
    return _enabled


def set_enabled(on):
    """Run fusable pairs as one step (``on``) or every layer on its own, in every graph run
    from now on (the plan is chosen at each forward pass); returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(on)
    return previous


@contextmanager
def enabled(on):
    """``with fusion.enabled(False): ...`` runs every layer on its own inside the block
    (results equal the fused ones; tests compare the two)."""
    previous = set_enabled(on)
    try:
        yield
    finally:
        set_enabled(previous)


class FusedNode:
    """Two nodes of a graph the engine runs as one step: ``layer`` is the step RULES built
    for their layers; ``nodes`` (first, second) keep the graph as it is."""

    def __init__(self, layer, first, second):
        self.layer, self.nodes = layer, (first, second)
        self.inputs, self.outputs, self.training = first.inputs, second.outputs, first.training

    def __repr__(self):
        return f"<FusedNode {self.layer.name}>"


def fuse(first, second):
    """A FusedNode running node ``first`` and node ``second`` (its output's one reader) as one
    step, or None when RULES has no step for their layers."""
    build = RULES.get((type(first.layer), type(second.layer)))
    step = build(first.layer, second.layer) if build is not None else None
    return FusedNode(step, first, second) if step is not None else None
