"""The training inspector: a callback that looks inside a training run every few steps and
writes down, per layer, what tells a healthy run from a broken one (CS231n's "babysitting the
learning process"):

- ``gradient_norm``: the L2 norm of the loss gradient of the layer's trained weights, on a
  fixed probe batch (vanishing: tiny in the first layers beside the last ones);
- ``update_ratio``: ||weights after the step - before|| / ||weights before|| over the
  training step just taken (about 1e-3 is healthy; 1e-1 and up, the learning rate is too
  large; 1e-6, too small);
- ``activation_mean`` and ``activation_std`` of the layer's output on the probe batch;
- ``dead_relu``: for a ReLU output, the fraction of its units (features, or channels of an
  image) that are zero for every sample and position of the probe batch;
- ``saturated``: for a sigmoid or tanh output, the fraction of values within 0.01 of the
  function's bounds, where its gradient is almost nothing.

The probe batch runs in inference mode for the activations (dropout off, normalisation by
the moving statistics) and in training mode for the gradients, as a step would; nothing of
the model changes, and the random draws of its dropout layers are given back, so a run
inspected trains exactly as one that is not. The numbers go to ``records`` (and
``series``), to TensorBoard (``log_dir``: tags ``<measure>/<layer>`` in its 'train' run) and
to a picture (``plot``; saved as ``picture`` when training ends).
"""
import math

import numpy as np

from . import config, layers as layers_module
from .arrays import to_host
from .gradients import tensor_of
from .graph import Graph, run_forward
from .training import inputs as inputs_module
from .training.callback_base import Callback

MEASURES = ("gradient_norm", "update_ratio", "activation_mean", "activation_std", "dead_relu", "saturated")
SATURATION = 0.01      # a sigmoid below this or above 1 - this (a tanh beyond +-(1 - this)) is saturated


class TrainingInspector(Callback):
    """``TrainingInspector(x, y, every=50, log_dir=None, picture=None)``: every ``every``
    training steps (and at the first), the measures of the module's docstring for each
    top-level layer with weights (a nested model counts as one) or a ReLU, sigmoid or tanh
    output, on the probe batch (x, y) (keep it small: a few hundred samples). ``records``
    lists dicts (step, counted over every fit it watches; layer; each measure, None where it
    does not apply)."""

    def __init__(self, x, y, every=50, log_dir=None, picture=None):
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"TrainingInspector: every must be a whole number of steps >= 1; got {every!r}")
        self.x, self.y, self.every = x, y, int(every)
        self.log_dir, self.picture = log_dir, picture
        self.records = []
        self._files = None
        self._step = 0
        self._before = None

    # ----- the hooks ---------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self.log_dir is not None and self._files is None:
            from .training.tensorboard import EventFiles
            self._files = EventFiles(self.log_dir)

    def on_train_batch_begin(self, batch, logs=None):
        self._step += 1
        if self._inspected(self._step) and self.model.compiled and self.model.graph is not None:
            self._before = [to_host(w).copy() for w in self.model.trained_weights()]

    def on_train_batch_end(self, batch, logs=None):
        if not self._inspected(self._step):
            return
        before, self._before = self._before, None
        for record in self.inspect(before):
            record["step"] = self._step
            self.records.append(record)
            if self._files is not None:
                for measure in MEASURES:
                    if record[measure] is not None:
                        self._files.scalar("train", f"{measure}/{record['layer']}", record[measure], self._step)

    def on_train_end(self, logs=None):
        if self._files is not None:
            self._files.close()
            self._files = None
        if self.picture is not None and self.records:
            self.plot().savefig(self.picture, dpi=100)

    def _inspected(self, step):
        return step == 1 or step % self.every == 0

    # ----- the measures ------------------------------------------------------------------
    def inspect(self, before=None):
        """One record per inspected layer, now; ``before``: the trained weights before the
        last step (for the update ratios)."""
        model = self.model
        x = inputs_module.to_device(model, inputs_module.check_x(model, self.x))
        saved = [(rng, rng.bit_generator.state) for rng in _random_generators(model)]
        try:       # a dropout layer draws here as in a step: the run's own draws are left as they were
            _, gradients, _ = model.compute_gradients(self.x, self.y)
        finally:
            for rng, state in saved:
                rng.bit_generator.state = state
        owner = {}      # a weight of a nested model (a pretrained base) counts for that model's layer
        for top in model.layers:
            for inner in top.all_layers() if hasattr(top, "all_layers") else (top,):
                owner.setdefault(id(inner), top.name)
        weights = model.trained_weights()
        grad_sq, weight_sq, change_sq = {}, {}, {}
        for i, (layer, _) in enumerate(model.compile_state().trained_pairs):
            name = owner.get(id(layer), layer.name)
            grad_sq[name] = grad_sq.get(name, 0.0) + _sum_sq(to_host(gradients[i]))
            if before is not None:
                weight_sq[name] = weight_sq.get(name, 0.0) + _sum_sq(before[i])
                change_sq[name] = change_sq.get(name, 0.0) + _sum_sq(to_host(weights[i]) - before[i])
        inspected = [layer for layer in model.layers
                     if layer.name in grad_sq or _kind(layer) is not None]
        outputs = [tensor_of(model, layer.name, "TrainingInspector") for layer in inspected]
        values, _ = run_forward(_probe_graph(model, outputs), [x], training=False, keep_tape=False)
        records = []
        for layer, value in zip(inspected, values):
            value = to_host(value)
            kind = _kind(layer)
            ratio = math.sqrt(change_sq[layer.name] / weight_sq[layer.name]) \
                if layer.name in change_sq and weight_sq[layer.name] > 0 else None
            records.append({
                "layer": layer.name,
                "gradient_norm": math.sqrt(grad_sq[layer.name]) if layer.name in grad_sq else None,
                "update_ratio": ratio,
                "activation_mean": float(value.mean(dtype=np.float64)),
                "activation_std": float(value.std(dtype=np.float64)),
                "dead_relu": dead_fraction(value) if kind == "relu" else None,
                "saturated": saturated_fraction(value, kind) if kind in ("sigmoid", "tanh") else None,
            })
        return records

    def series(self, measure):
        """{layer: (steps, values)} of one measure, over the records so far."""
        if measure not in MEASURES:
            raise ValueError(f"TrainingInspector: the measures are {list(MEASURES)}; got {measure!r}")
        found = {}
        for record in self.records:
            if record[measure] is not None:
                steps, values = found.setdefault(record["layer"], ([], []))
                steps.append(record["step"])
                values.append(record[measure])
        return found

    def plot(self):
        """A matplotlib figure: one panel per measure, one line per layer, over the steps. Built
        without pyplot, so it changes no backend and keeps no global figure (a notebook shows
        it; ``figure.savefig`` writes it anywhere, no screen needed)."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        figure = Figure(figsize=(15, 8), layout="constrained")
        axes = figure.subplots(2, 3)
        names = list(dict.fromkeys(record["layer"] for record in self.records))
        palette = colormaps["tab10" if len(names) <= 10 else "viridis"]
        colours = {name: palette(i if len(names) <= 10 else i / max(1, len(names) - 1))
                   for i, name in enumerate(names)}
        for axis, measure in zip(axes.flat, MEASURES):
            found = self.series(measure)
            for layer, (steps, values) in found.items():
                axis.plot(steps, values, marker=".", color=colours[layer], label=layer)
            if not found:
                axis.text(0.5, 0.5, "no layer of this kind", ha="center", va="center", transform=axis.transAxes)
            axis.set_title(measure.replace("_", " "))
            axis.set_xlabel("step")
            if measure in ("dead_relu", "saturated"):
                axis.set_ylim(-0.02, 1.02)
            elif measure in ("gradient_norm", "update_ratio") and any(v > 0 for _, vs in found.values() for v in vs):
                axis.set_yscale("log")
        handles = [Line2D([], [], color=colours[name], marker=".", label=name) for name in names]
        if handles:
            figure.legend(handles=handles, loc="outside right upper", fontsize="small")
        figure.suptitle(f"training inspector: {self.model.name}")
        return figure


def dead_fraction(values):
    """The fraction of units (last axis) that are zero for every sample and position."""
    flat = values.reshape(-1, values.shape[-1])
    return float(np.mean(np.all(flat == 0, axis=0)))


def saturated_fraction(values, kind):
    """The fraction of a sigmoid's (or tanh's) outputs within SATURATION of its bounds."""
    low, high = (0.0, 1.0) if kind == "sigmoid" else (-1.0, 1.0)
    return float(np.mean((values <= low + SATURATION) | (values >= high - SATURATION)))


def _kind(layer):
    """'relu', 'sigmoid' or 'tanh' for a layer whose output is one of those, else None (a
    ReLU layer with a negative slope cannot die)."""
    if isinstance(layer, layers_module.ReLU):
        return "relu" if layer.negative_slope == 0 else None
    name = getattr(getattr(layer, "activation", None), "name", None)
    return name if name in ("relu", "sigmoid", "tanh") else None


def _random_generators(model):
    """The generators a training step may draw from: the global one and layers' own."""
    found = [config.rng()]
    for layer in model.all_layers():
        own = getattr(layer, "_rng", None)
        if own is not None and all(own is not other for other in found):
            found.append(own)
    return found


def _probe_graph(model, outputs):
    cache = model.__dict__.setdefault("_inspector_graphs", {})
    key = (id(model._graph),) + tuple(id(t) for t in outputs)
    if key not in cache:
        cache[key] = Graph(model._graph.inputs, outputs)
    return cache[key]


def _sum_sq(array):
    return float(np.dot(array.ravel().astype(np.float64), array.ravel().astype(np.float64)))
