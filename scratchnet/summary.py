"""model.summary(): Keras's table of layers, output shapes and parameter counts; for a
graph (not a line) also the layers each one reads from, as ``name[node][tensor]``; with
Keras's options: ``line_length``, ``positions``, ``expand_nested``, ``show_trainable`` and
``layer_range``."""
import re
import textwrap

MINIMUM_WIDTHS = [29, 26, 10, 20]


def _shape_of(tensors):
    shapes = [t.shape for t in tensors]
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _row(layer, graph, connected, show_trainable, prefix=""):
    nodes = [n for n in layer._inbound_nodes if n in graph.nodes or (layer.is_input and n.layer in graph.input_layers)]
    shape = _shape_of(nodes[0].outputs) if nodes else "?"
    row = [f"{prefix}{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]
    if connected:
        sources = [f"{t.node.layer.name}[{t.node.index}][{t.index}]" for n in nodes for t in n.inputs]
        row.append(", ".join(sources) if sources else "-")
    if show_trainable:
        row.append(("Y" if layer.trainable else "N") if layer.weights else "-")
    return row


def _rows(model, connected, show_trainable, expand_nested, layers, level=0):
    rows = []
    for layer in layers:
        prefix = "   " * level + "└ " if level else ""
        rows.append(_row(layer, model._graph, connected and not level, show_trainable, prefix))
        if connected and level:
            rows[-1].insert(3, "")
        if expand_nested and getattr(layer, "is_model", False) and layer.graph is not None:
            rows += _rows(layer, connected, show_trainable, expand_nested, layer.layers, level + 1)
    return rows


def _line_like(model):
    """A graph that is a plain chain (one input per node, no shared layer): no Connected to
    column, as in Keras."""
    graph = model._graph
    layers = [n.layer for n in graph.nodes]
    return (len(graph.inputs) == 1 and len(graph.outputs) == 1 and len(set(map(id, layers))) == len(layers)
            and all(len(n.inputs) == 1 for n in graph.nodes)
            and all(graph.nodes[i].inputs[0].node is graph.nodes[i - 1] for i in range(1, len(graph.nodes))))


def layer_bounds(layers, layer_range):
    """[first, last + 1] of the layers ``layer_range`` (two regular expressions, matched at the
    start of layer names as Keras matches them) spans; all of them for None."""
    if layer_range is None:
        return 0, len(layers)
    if len(layer_range) != 2:
        raise ValueError(f"layer_range must be a list or tuple of length 2. Received: layer_range = {layer_range} "
                         f"of length {len(layer_range)}")
    if not all(isinstance(name, str) for name in layer_range):
        raise ValueError(f"layer_range should contain string type only. Received: {layer_range}")
    lower = [i for i, layer in enumerate(layers) if re.match(layer_range[0], layer.name)]
    upper = [i for i, layer in enumerate(layers) if re.match(layer_range[1], layer.name)]
    if not lower or not upper:
        raise ValueError(f"Passed layer_names do not match the layer names in the model. Received: {layer_range}")
    if min(lower) > max(upper):
        return min(upper), max(lower) + 1
    return min(lower), max(upper) + 1


def _widths(rows, headers, line_length, positions, connected, show_trainable):
    """Column widths: fitted to the cells, or, with ``line_length`` or ``positions``, Keras's:
    each column ends at its position, a fraction of the line (or, above 1, a character count)."""
    if line_length is None and positions is None:
        minimum = MINIMUM_WIDTHS[:len(headers) - show_trainable] + ([11] if show_trainable else [])
        return [max([minimum[i], len(headers[i]) + 2] + [len(r[i]) + 2 for r in rows]) for i in range(len(headers))]
    if positions is None:
        positions = [0.3, 0.56, 0.74, 1.0] if connected else [0.45, 0.80, 1.0]
        if show_trainable:
            positions = [p * 0.90 for p in positions] + [1.0]
    if len(positions) < len(headers):
        raise ValueError(f"positions must give a position for each column, {len(headers)} ({', '.join(headers)}); "
                         f"got {list(positions)}")
    positions = list(positions)[:len(headers)]       # more are left unused, as Keras leaves them
    line_length = line_length or ((108 if connected else 88) + (12 if show_trainable else 0))
    ends = [int(p * line_length) if max(positions) <= 1 else int(p) for p in positions]
    widths = [end - start for start, end in zip([0] + ends[:-1], ends)]
    if min(widths) < 4:
        raise ValueError(f"Insufficient console width to print summary: columns of {widths} characters from "
                         f"line_length={line_length}, positions={list(positions)}")
    return widths


def summarize(model, line_length=None, positions=None, expand_nested=False, show_trainable=False, layer_range=None):
    """The summary's text (``Model.summary`` prints it)."""
    connected = type(model).__name__ != "Sequential" and not _line_like(model)
    first, last = layer_bounds(model.layers, layer_range)
    rows = _rows(model, connected, show_trainable, expand_nested, model.layers[first:last])
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else []) + \
        (["Trainable"] if show_trainable else [])
    widths = _widths(rows, headers, line_length, positions, connected, show_trainable)
    width = sum(widths) + 1

    def lines(cells):
        """The row's lines: a cell longer than its column wraps onto the next line."""
        parts = [textwrap.wrap(c, max(w - 1, 1), break_on_hyphens=False) or [""] for c, w in zip(cells, widths)]
        height = max(len(p) for p in parts)
        return [" " + "".join(f"{(p[k] if k < len(p) else ''):<{w}}" for p, w in zip(parts, widths)).rstrip()
                for k in range(height)]

    total = model.count_params()
    trainable = sum(layer.params[n].size for layer, n in model.weight_pairs(trainable=True))
    out = [f'Model: "{model.name}"', "_" * width] + lines(headers) + ["=" * width]
    for i, row in enumerate(rows):
        out += lines(row)
        out.append("_" * width if i < len(rows) - 1 else "=" * width)
    out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", "_" * width]
    return "\n".join(out)
