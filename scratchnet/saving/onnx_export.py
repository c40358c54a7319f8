"""A model as an ONNX graph for inference elsewhere: ``model.export('m.onnx', format='onnx')``.

The graph takes the model's own NHWC inputs (first axis: a dynamic ``batch``) and gives its
outputs, in the layer names of the model. Inside, a 4-D tensor is turned to NCHW once, when
a convolution, pooling or normalization first needs it, and kept so through such chains;
it goes back to NHWC before a layer that reads the channels-last order (Flatten, Reshape,
Dense) and before every output, so a flattened image has Keras's order.

Each node of the model's graph is exported as its layer computes at inference: BatchNormalization
with its moving statistics, Dropout and the random augmentation layers as the identity, RandomCrop
as its centred window. The pairs the engine runs as one step
(``layers/fused.py``: Conv2D + MaxPooling2D, BatchNormalization + ReLU) are substituted only in
the plan the engine runs (``Graph.fused_plan``); the graph's nodes keep the two layers, which
are exported one after the other and compute the same values. A model inside a model is
exported inline, with its layer names under the model's name.

float32 and float64 models are exported in their own precision, except where onnxruntime's
CPU provider has no float64 kernel for the ONNX operator a layer needs: such a model is
refused, naming the layer. ``onnx`` is imported only when a model is exported.

Here: the entry points and the walk over the model's graph; ``onnx_builder``: the graph being
written; ``onnx_layers``: each layer's exporter.
"""
import numpy as np

from ..version import __version__
from .architecture import is_model
from .files import atomic_write
from .onnx_builder import NO_FLOAT64_KERNEL, Builder, OnnxExportError, Value
from .onnx_layers import EXPORTERS

DEFAULT_OPSET = 17
MIN_OPSET = 13          # Softmax over one axis, Unsqueeze and Clip with tensor inputs


def export_model(model, filepath, format="tf_saved_model", verbose=True, **kwargs):
    """``Model.export``: Keras 3's spelling, of which scratchnet writes ``format='onnx'``."""
    if format != "onnx":
        raise ValueError(f"scratchnet exports format='onnx' only (Keras's other formats need TensorFlow); "
                         f"got format={format!r}")
    unknown = sorted(set(kwargs) - {"opset"})
    if unknown:
        raise TypeError(f"export(format='onnx') takes the keyword argument opset, got {unknown}")
    export_onnx(model, filepath, **kwargs)
    if verbose:
        print(f"Saved artifact at '{filepath}'.")


def export_onnx(model, path, opset=None):
    """Write ``model`` to ``path`` as an ONNX model of operator set ``opset`` (default 17),
    checked by ``onnx.checker`` first and written atomically: nothing is written on failure."""
    onnx = import_onnx()
    proto = model_proto(model, opset)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))


def import_onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"exporting to ONNX needs the onnx package: pip install 'scratchnet[onnx]' "
                          f"({error})") from error
    return onnx


def check_opset(onnx, opset):
    """The operator set to write: ``opset``, or the default; an int from MIN_OPSET to the
    newest the installed onnx knows."""
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest} (the newest this onnx "
                         f"{onnx.__version__} knows), got {opset!r}")
    return int(opset)


def model_proto(model, opset=None):
    """The ``onnx.ModelProto`` of ``model`` (not yet checked)."""
    onnx = import_onnx()
    helper = onnx.helper
    opset = check_opset(onnx, opset)
    graph = graph_of(model)
    builder = Builder(onnx, opset)
    input_names = [builder.reserve(t.node.layer.name) for t in graph.inputs]
    output_names = [builder.reserve(t.node.layer.name) for t in graph.outputs]
    inputs = [Value(name, t.dtype, len(t.shape)) for name, t in zip(input_names, graph.inputs)]
    outputs = export_graph(builder, graph, inputs, training=False)
    for name, value in zip(output_names, outputs):
        builder.node("Identity", [builder.nhwc(value).name], output=name)
    proto = helper.make_graph(
        builder.nodes, model.name,
        [tensor_info(helper, name, t) for name, t in zip(input_names, graph.inputs)],
        [tensor_info(helper, name, t) for name, t in zip(output_names, graph.outputs)],
        builder.initializers)
    opsets = [helper.make_opsetid("", opset)]
    result = helper.make_model(proto, opset_imports=opsets, producer_name="scratchnet",
                               producer_version=__version__)
    result.ir_version = helper.find_min_ir_version_for(opsets)   # what older runtimes accept
    return result


def graph_of(model):
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ValueError(f"model {model.name!r} has not been built, so it has no graph to export: give the first "
                         f"layer input_shape=(...), start with Input(shape=(...)), or call build()")
    return graph


def tensor_info(helper, name, tensor):
    """The value info of a graph input or output; an axis of unknown size (an image's height
    or width) is a named dynamic axis, as the batch is."""
    dims = ["batch"] + [f"{name}_axis{i}" if d is None else d for i, d in enumerate(tensor.shape[1:], start=1)]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(tensor.dtype), dims)


# ----- walking the model's graph -------------------------------------------------------------

def export_graph(builder, graph, inputs, training):
    """Write every node of ``graph`` (its inputs bound to ``inputs``); returns its output Values."""
    values = {id(t): v for t, v in zip(graph.inputs, inputs)}
    for node in graph.nodes:
        mode = training if node.training is None else bool(node.training)
        args = [values[id(t)] for t in node.inputs]
        outputs = export_layer(builder, node.layer, args if node.layer.takes_list else args[0], mode)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for tensor, value in zip(node.outputs, outputs):
            values[id(tensor)] = value
    return [values[id(t)] for t in graph.outputs]


def export_layer(builder, layer, x, training):
    """The Value(s) ``layer`` computes from ``x`` (a Value, or a list for a layer taking a list)."""
    if is_model(layer):
        return export_nested_model(builder, layer, x, training)
    export = EXPORTERS.get(type(layer))
    if export is None:
        known = ", ".join(sorted(cls.__name__ for cls in EXPORTERS))
        raise OnnxExportError(f"cannot export {layer.describe()} to ONNX: the exporter knows no layer of class "
                              f"{type(layer).__name__} (it knows {known}, and models inside models)")
    if layer.takes_list:
        x = [builder.cast(v, layer.dtype) for v in x]
    else:
        x = builder.cast(x, layer.dtype)
    return export(builder, layer, x, training)


def export_nested_model(builder, model, x, training):
    graph = graph_of(model)
    outer = builder.scope
    builder.scope = f"{outer}{model.name}/"
    try:
        outputs = export_graph(builder, graph, x if isinstance(x, list) else [x], training)
    finally:
        builder.scope = outer
    return outputs



__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "NO_FLOAT64_KERNEL", "EXPORTERS", "OnnxExportError", "export_model",
           "export_onnx", "import_onnx", "check_opset", "model_proto", "graph_of", "tensor_info", "export_graph",
           "export_layer", "export_nested_model"]
