"""model.summary(): Keras's table of layers, output shapes and parameter counts; for a
graph (not a line) also the layers each one reads from, as ``name[node][tensor]``."""


def _shape_of(tensors):
    shapes = [t.shape for t in tensors]
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _rows(model, connected):
    rows = []
    graph = model._graph
    for layer in model.layers:
        nodes = [n for n in layer._inbound_nodes if n in graph.nodes or (layer.is_input and n.layer in
                                                                         graph.input_layers)]
        shape = _shape_of(nodes[0].outputs) if nodes else "?"
        row = [f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]
        if connected:
            sources = [f"{t.node.layer.name}[{t.node.index}][{t.index}]" for n in nodes for t in n.inputs]
            row.append(", ".join(sources) if sources else "-")
        rows.append(row)
    return rows


def _line_like(model):
    """A graph that is a plain chain (one input per node, no shared layer): no Connected to
    column, as in Keras."""
    graph = model._graph
    layers = [n.layer for n in graph.nodes]
    return (len(graph.inputs) == 1 and len(graph.outputs) == 1 and len(set(map(id, layers))) == len(layers)
            and all(len(n.inputs) == 1 for n in graph.nodes)
            and all(graph.nodes[i].inputs[0].node is graph.nodes[i - 1] for i in range(1, len(graph.nodes))))


def summarize(model):
    connected = type(model).__name__ != "Sequential" and not _line_like(model)
    rows = _rows(model, connected)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
    minimum = [29, 26, 10, 20]
    widths = [max([minimum[i], len(headers[i]) + 2] + [len(r[i]) + 2 for r in rows]) for i in range(len(headers))]
    width = sum(widths) + 1

    def line(cells):
        return " " + "".join(f"{c:<{w}}" for c, w in zip(cells[:-1], widths[:-1])) + cells[-1]

    total = model.count_params()
    trainable = sum(layer.params[n].size for layer, n in model.weight_pairs(trainable=True))
    out = [f'Model: "{model.name}"', "_" * width, line(headers), "=" * width]
    for i, row in enumerate(rows):
        out.append(line(row))
        out.append("_" * width if i < len(rows) - 1 else "=" * width)
    out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", "_" * width]
    return "\n".join(out)
