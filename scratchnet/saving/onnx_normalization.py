"""ONNX exporters of the per-sample normalisations (LayerNormalization, GroupNormalization,
UnitNormalization, Normalization), written with operators every opset from 13 has
(ReduceMean, ReduceSumSquare, Sub, Mul, Div, Sqrt, Max, Reshape) in the order scratchnet's
functions/layer_norm.py computes, so float32 and float64 both run in onnxruntime. They work in
the model's own (NHWC) layout, where the layers' axes mean what they say."""
import numpy as np

from ..arrays import to_host
from ..functions import layer_norm
from .onnx_builder import OnnxExportError, Value, replace


def _weight(builder, layer, key, shape):
    return builder.weight(layer, key, lambda: to_host(layer.params[key]).astype(layer.dtype).reshape(shape))


def _standardize(builder, layer, x, axes, broadcast, epsilon):
    """(x - mean) / sqrt(var + epsilon) over ``axes``, then gamma and beta reshaped to ``broadcast``."""
    base, dtype = layer.name, x.dtype
    mean = builder.reduce("ReduceMean", x, axes, True, f"{base}/mean")
    centred = builder.node("Sub", [x.name, mean], f"{base}/centred")
    squares = builder.node("Mul", [centred, centred], f"{base}/squares")
    var = builder.reduce("ReduceMean", replace(x, squares), axes, True, f"{base}/variance")
    std = builder.node("Sqrt", [builder.node("Add", [var, builder.scalar(f"{base}/epsilon", layer.epsilon, dtype)],
                                             f"{base}/shifted")], f"{base}/std")
    inv = builder.node("Div", [builder.scalar(f"{base}/one", 1, dtype), std], f"{base}/inv_std")
    y = builder.node("Mul", [centred, inv], f"{base}/normalized")
    if "gamma" in layer.params:
        y = builder.node("Mul", [y, _weight(builder, layer, "gamma", broadcast)], f"{base}/scaled")
    if "beta" in layer.params:
        y = builder.node("Add", [y, _weight(builder, layer, "beta", broadcast)], f"{base}/shifted_out")
    return y


def _axes(layer, rank):
    """The layer's normalised axes (sorted, of the whole NHWC shape)."""
    return layer.make_function_config(layer.input_shape)


def export_layer_normalization(builder, layer, x, training):
    x = builder.nhwc(x)
    axes = _axes(layer, x.rank)
    shape = (None,) + tuple(layer.input_shape)
    broadcast = [shape[a] if a in axes else 1 for a in range(x.rank)]
    return replace(x, _standardize(builder, layer, x, list(axes), broadcast, layer.epsilon))


def export_group_normalization(builder, layer, x, training):
    x = builder.nhwc(x)
    groups, axis = layer.make_function_config(layer.input_shape)
    shape = (None,) + tuple(layer.input_shape)
    c = shape[axis]
    after = [-1 if d is None else d for d in shape[axis + 1:]]
    if after.count(-1) > 1:
        raise OnnxExportError(f"cannot export {layer.describe()}: more than one axis after its channels has an "
                              f"unknown size (input shape {shape}), so its groups cannot be reshaped in ONNX")
    grouped = [0] * axis + [groups, c // groups] + after     # 0: the input's own size
    reshaped = builder.node("Reshape", [x.name, builder.axes(f"{layer.name}/grouped_shape", grouped)],
                            f"{layer.name}/grouped")
    xg = Value(reshaped, x.dtype, x.rank + 1)
    axes = [a for a in range(1, xg.rank) if a != axis]
    broadcast = [1] * xg.rank
    broadcast[axis], broadcast[axis + 1] = groups, c // groups
    y = _standardize(builder, layer, xg, axes, broadcast, layer.epsilon)
    shape_of_x = builder.node("Shape", [x.name], f"{layer.name}/shape")
    return replace(x, builder.node("Reshape", [y, shape_of_x], layer.name))


def export_unit_normalization(builder, layer, x, training):
    x = builder.nhwc(x)
    base, dtype = layer.name, x.dtype
    squares = builder.reduce("ReduceSumSquare", x, list(_axes(layer, x.rank)), True, f"{base}/sum_squares")
    norm = builder.node("Max", [builder.node("Sqrt", [squares], f"{base}/norm"),
                                builder.scalar(f"{base}/epsilon", layer_norm.UNIT_EPSILON, dtype)], f"{base}/clamped")
    inv = builder.node("Div", [builder.scalar(f"{base}/one", 1, dtype), norm], f"{base}/inv_norm")
    return replace(x, builder.node("Mul", [x.name, inv], base))


def export_normalization(builder, layer, x, training):
    """(x - mean) * (1 / std), or mean + x * std with invert, std = max(sqrt(variance), 1e-7),
    with the layer's statistics as constants of x's rank."""
    x = builder.nhwc(x)
    mean, variance = (np.asarray(to_host(a)).astype(layer.dtype) for a in layer.statistics())
    std = np.maximum(np.sqrt(variance), layer.dtype.type(layer_norm.NORMALIZATION_EPSILON)).astype(layer.dtype)
    mean_name = builder.constant(f"{layer.name}/mean", mean)
    if layer.invert:
        scaled = builder.node("Mul", [x.name, builder.constant(f"{layer.name}/std", std)], f"{layer.name}/scaled")
        return replace(x, builder.node("Add", [mean_name, scaled], layer.name))
    centred = builder.node("Sub", [x.name, mean_name], f"{layer.name}/centred")
    factor = builder.constant(f"{layer.name}/inv_std", (1 / std).astype(layer.dtype))
    return replace(x, builder.node("Mul", [centred, factor], layer.name))
