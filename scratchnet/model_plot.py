"""A picture of a model's graph, as keras.utils.plot_model draws it: one box per layer (its
name and class, optionally its shapes, dtype, activation and trainability), arrows along the
tensors, models inside models as one box or, with ``expand_nested``, as a framed group.

``model_to_dot`` writes the Graphviz DOT text itself (no pydot needed); ``plot_model`` has
Graphviz's ``dot`` program draw it, which must be installed (apt-get install graphviz, brew
install graphviz, or conda install graphviz); without it the error says so."""
import html
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .saving.files import atomic_write


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False):
    """The model's graph as Graphviz DOT text."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"plot_model: rankdir must be 'TB' (top to bottom) or 'LR' (left to right), got {rankdir!r}")
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ValueError(f"model {model.name!r} has not been built, so it has no graph to draw yet: give it an "
                         f"Input(...) or call build() first")
    options = dict(show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                   show_layer_activations=show_layer_activations, show_trainable=show_trainable)
    lines = [f"digraph {_quote(model.name)} {{",
             f"  graph [rankdir={rankdir}, dpi={int(dpi)}, concentrate=true];",
             '  node [shape=plaintext, fontname="Helvetica", fontsize=11];']
    _Writer(lines, options, expand_nested).model(model, prefix="")
    lines.append("}")
    return "\n".join(lines) + "\n"


class _Writer:
    """Boxes and arrows of one model (and, expanded, of the models inside it)."""

    def __init__(self, lines, options, expand_nested):
        self.lines, self.options, self.expand_nested = lines, options, expand_nested

    def model(self, model, prefix):
        """Write ``model``'s boxes under ``prefix``; return {tensor id: box id} of its outputs
        and {input position: box id} of where its inputs go in."""
        from .models import Model
        graph = model._graph
        producer = {}          # id(tensor) -> the box it comes out of
        entries = []           # the boxes the model's inputs go into, in order
        for i, tensor in enumerate(graph.inputs):
            box = f"{prefix}in{i}"
            self.box(box, tensor.node.layer, [], [tensor])
            producer[id(tensor)] = box
            entries.append(box)
        for k, node in enumerate(graph.nodes):
            box = f"{prefix}n{k}"
            if isinstance(node.layer, Model) and self.expand_nested:
                inner_entries, inner_exits = self.nested(node.layer, f"{box}_")
                for tensor, entry in zip(node.inputs, inner_entries):
                    self.edge(producer[id(tensor)], entry)
                for tensor, exit_ in zip(node.outputs, inner_exits):
                    producer[id(tensor)] = exit_
                continue
            self.box(box, node.layer, node.inputs, node.outputs)
            for tensor in node.inputs:
                self.edge(producer[id(tensor)], box)
            for tensor in node.outputs:
                producer[id(tensor)] = box
        return entries, [producer[id(t)] for t in graph.outputs]

    def nested(self, model, prefix):
        self.lines.append(f"  subgraph {_quote('cluster_' + prefix)} {{")
        self.lines.append(f"    label={_quote(model.name)}; style=dashed; fontname=\"Helvetica\";")
        entries, exits = self.model(model, prefix)
        self.lines.append("  }")
        return entries, exits

    def box(self, box, layer, inputs, outputs):
        options = self.options
        title = f"<b>{html.escape(layer.name)}</b> ({html.escape(type(layer).__name__)})" \
            if options["show_layer_names"] else f"<b>{html.escape(type(layer).__name__)}</b>"
        rows = [f'<tr><td colspan="2">{title}</td></tr>']
        activation = getattr(layer, "activation", None)
        if options["show_layer_activations"] and activation is not None:
            rows.append(f'<tr><td colspan="2">Activation: {html.escape(activation.name)}</td></tr>')
        if options["show_dtype"]:
            rows.append(f'<tr><td colspan="2">dtype: {html.escape(str(layer.dtype))}</td></tr>')
        if options["show_shapes"]:
            shapes_in = _shapes(inputs) if inputs else _shapes(outputs)
            rows.append(f"<tr><td>Input shape: {html.escape(shapes_in)}</td>"
                        f"<td>Output shape: {html.escape(_shapes(outputs))}</td></tr>")
        if options["show_trainable"]:
            rows.append(f'<tr><td colspan="2">Trainable: {"yes" if layer.trainable else "no"}</td></tr>')
        label = '<table border="0" cellborder="1" cellspacing="0" cellpadding="4">' + "".join(rows) + "</table>"
        self.lines.append(f"  {_quote(box)} [label=<{label}>];")

    def edge(self, source, target):
        self.lines.append(f"  {_quote(source)} -> {_quote(target)};")


def _shapes(tensors):
    shapes = [str(tuple(t.shape)) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "gif", "dot")


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False):
    """Draw the model's graph into ``to_file`` (its extension picks the format: png, svg, pdf,
    jpg, gif, or dot for the DOT text) with Graphviz's ``dot``; in a notebook the picture is
    returned for display, as Keras does."""
    path = Path(to_file)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        raise ValueError(f"plot_model: to_file must end in one of {', '.join('.' + f for f in FORMATS)}, "
                         f"got {str(to_file)!r}")
    text = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
                        show_layer_activations, show_trainable)
    if fmt == "dot":
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return None
    dot = shutil.which("dot")
    if dot is None:
        raise ImportError("plot_model needs Graphviz's `dot` program to draw, and it is not installed (apt-get "
                          "install graphviz, brew install graphviz, or conda install graphviz); "
                          "plot_model(model, 'model.dot') writes the graph as DOT text without it")
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "model.dot"
        source.write_text(text, encoding="utf-8")
        result = subprocess.run([dot, f"-T{'jpg' if fmt == 'jpeg' else fmt}", str(source)], capture_output=True,
                                timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"Graphviz's dot could not draw the graph: {result.stderr.decode(errors='replace')[-300:]}")
    atomic_write(path, lambda f: f.write(result.stdout))
    if "IPython" in sys.modules and fmt in ("png", "jpg", "jpeg", "gif"):
        try:
            from IPython.display import Image
            return Image(filename=os.fspath(path))
        except ImportError:
            return None
    return None
