"""Each layer as an ONNX subgraph, as it computes at inference (``EXPORTERS``: layer class ->
exporter), and the activations; a layer's weights become initializers in ONNX's layouts."""
import numpy as np

from .. import activations, layers
from ..arrays import to_host
from ..layers.preprocessing import aspect_window
from .onnx_activations import export_more
from .onnx_builder import OnnxExportError, Value, check_float64_kernel, replace
from . import onnx_normalization

# ----- activations -------------------------------------------------------------------------------

def export_activation(builder, activation, x, layer):
    """``activation`` (one of scratchnet.activations, or a ReLU layer's own) applied to ``x``."""
    name = "linear" if activation is None else activation.name
    if name == "linear":
        return x
    relu_args = relu_arguments(activation, layer)
    if relu_args is not None:
        return export_relu(builder, x, layer, *relu_args)
    more = export_more(builder, activation, x, f"{layer.name}/{name}")
    if more is not None:
        return more
    if not is_registered(activation):
        raise OnnxExportError(f"cannot export the activation {name!r} of {layer.describe()} to ONNX: expected one "
                              f"of the activations scratchnet.activations names, got {activation!r}")
    base = f"{layer.name}/{name}"
    if name == "softmax":
        return replace(x, builder.node("Softmax", [x.name], base, axis=x.axis(-1)))
    if name in ("sigmoid", "tanh"):
        return replace(x, builder.node(name.capitalize(), [x.name], base))
    if name == "elu":
        return export_elu(builder, x, base)
    if name == "softplus":
        return export_softplus(builder, x, base)
    raise OnnxExportError(f"cannot export the activation {name!r} of {layer.describe()} to ONNX")


def is_registered(activation):
    try:
        return activations.get(activation.name) is activation
    except ValueError:
        return False


def relu_arguments(activation, layer):
    """(max_value, negative_slope, threshold) when ``activation`` is a rectifier: 'relu',
    'relu6', 'leaky_relu', or the one a ReLU / LeakyReLU layer was made with; else None."""
    named = {"relu": (None, 0.0, 0.0), "relu6": (6.0, 0.0, 0.0), "leaky_relu": (None, 0.2, 0.0)}
    if activation.name in named and is_registered(activation):
        return named[activation.name]
    own = (getattr(layer, "max_value", None), getattr(layer, "negative_slope", 0.0), getattr(layer, "threshold", 0.0))
    if hasattr(layer, "negative_slope") and activation.name == activations.relu_with(*own).name:
        return own
    return None



def export_relu(builder, x, layer, max_value, negative_slope, threshold):
    """x where x > threshold (clipped at max_value), else negative_slope * (x - threshold)."""
    base, dtype = f"{layer.name}/relu", x.dtype
    if not threshold and not negative_slope:
        if max_value is None:
            return replace(x, builder.node("Relu", [x.name], base))
        low, high = builder.scalar(f"{base}/min", 0, dtype), builder.scalar(f"{base}/max", max_value, dtype)
        return replace(x, builder.node("Clip", [x.name, low, high], base))
    if not threshold and dtype == np.float32:     # onnxruntime has LeakyRelu in float32 only
        y = builder.node("LeakyRelu", [x.name], base, alpha=float(negative_slope))
        if max_value is not None:
            y = builder.node("Min", [y, builder.scalar(f"{base}/max", max_value, dtype)], base)
        return replace(x, y)
    t = builder.scalar(f"{base}/threshold", threshold, dtype)
    above = builder.node("Greater", [x.name, t], f"{base}/above")
    top = x.name if max_value is None else builder.node("Min", [x.name, builder.scalar(f"{base}/max", max_value,
                                                                                       dtype)], f"{base}/top")
    shifted = builder.node("Sub", [x.name, t], f"{base}/shifted")
    below = builder.node("Mul", [builder.scalar(f"{base}/slope", negative_slope, dtype), shifted], f"{base}/below")
    return replace(x, builder.node("Where", [above, top, below], base))


def export_elu(builder, x, base):
    """x where x > 0, else exp(x) - 1 (Elu; written out in float64, which onnxruntime's Elu lacks)."""
    if x.dtype == np.float32:
        return replace(x, builder.node("Elu", [x.name], base, alpha=1.0))
    zero, one = builder.scalar(f"{base}/zero", 0, x.dtype), builder.scalar(f"{base}/one", 1, x.dtype)
    above = builder.node("Greater", [x.name, zero], f"{base}/above")
    negative = builder.node("Min", [x.name, zero], f"{base}/negative")
    below = builder.node("Sub", [builder.node("Exp", [negative], f"{base}/exp"), one], f"{base}/below")
    return replace(x, builder.node("Where", [above, x.name, below], base))


def export_softplus(builder, x, base):
    """log(1 + exp(x)) (Softplus; in float64 as max(x, 0) + log(1 + exp(-|x|)), which never overflows)."""
    if x.dtype == np.float32:
        return replace(x, builder.node("Softplus", [x.name], base))
    zero, one = builder.scalar(f"{base}/zero", 0, x.dtype), builder.scalar(f"{base}/one", 1, x.dtype)
    negative_abs = builder.node("Neg", [builder.node("Abs", [x.name], f"{base}/abs")], f"{base}/neg_abs")
    tail = builder.node("Log", [builder.node("Add", [builder.node("Exp", [negative_abs], f"{base}/exp"), one],
                                             f"{base}/one_plus")], f"{base}/log")
    return replace(x, builder.node("Add", [builder.node("Max", [x.name, zero], f"{base}/positive"), tail], base))


# ----- layers ----------------------------------------------------------------------------------------

END = np.iinfo(np.int64).max     # a Slice end past any axis


def host(layer, key):
    return to_host(layer.params[key]).astype(layer.dtype, copy=False)


def onnx_pads(pads):
    """scratchnet's (top, bottom, left, right) as ONNX's [top, left, bottom, right]."""
    top, bottom, left, right = pads
    return [int(top), int(left), int(bottom), int(right)]


def window_pads(layer):
    """ONNX's padding of a sliding-window layer on its input, as attributes: its ``pads``, or,
    for an image of unknown size, ``auto_pad`` (SAME_UPPER puts an odd padding after, as
    Keras's 'same' does; 'valid' pads nothing)."""
    pads = layer.placement(layer.input_shape).pads
    if None not in pads:
        return {"pads": onnx_pads(pads)}
    return {"auto_pad": "SAME_UPPER" if layer.padding == "same" else "VALID"}


def export_conv(builder, layer, x, kernel, bias, kernel_size, strides, pads, group=1, dilations=(1, 1),
                base=None):
    """One ONNX Conv over NCHW ``x`` with OIHW ``kernel`` and ``bias`` (initializer names);
    ``pads``: the padding attributes (``window_pads``)."""
    check_float64_kernel("Conv", layer, x.dtype)
    x = builder.nchw(x)
    inputs = [x.name, kernel] + ([bias] if bias is not None else [])
    y = builder.node("Conv", inputs, base or f"{layer.name}/conv", kernel_shape=list(kernel_size),
                     strides=list(strides), **pads, group=int(group), dilations=list(dilations))
    return Value(y, x.dtype, 4, True)


def bias_of(builder, layer):
    return builder.weight(layer, "bias", lambda: host(layer, "bias")) if layer.use_bias else None


def export_conv2d(builder, layer, x, training):
    kernel = builder.weight(layer, "kernel", lambda: host(layer, "kernel").transpose(3, 2, 0, 1))  # -> OIHW
    y = export_conv(builder, layer, x, kernel, bias_of(builder, layer), layer.kernel_size, layer.strides,
                    window_pads(layer), layer.groups, layer.dilation_rate)
    return export_activation(builder, layer.activation, y, layer)


def export_conv2d_transpose(builder, layer, x, training):
    """ONNX's ConvTranspose; a negative bottom/right padding of the convolution it transposes
    (rows no window reaches) is ONNX's output_padding."""
    check_float64_kernel("ConvTranspose", layer, x.dtype)
    pads = layer.placement(layer.input_shape)[0]
    kernel = builder.weight(layer, "kernel", lambda: host(layer, "kernel").transpose(3, 2, 0, 1))  # -> (C, F, kh, kw)
    x = builder.nchw(x)
    inputs = [x.name, kernel] + ([bias_of(builder, layer)] if layer.use_bias else [])
    y = builder.node("ConvTranspose", inputs, f"{layer.name}/conv_transpose", kernel_shape=list(layer.kernel_size),
                     strides=list(layer.strides), dilations=list(layer.dilation_rate),
                     pads=onnx_pads(tuple(max(p, 0) for p in pads)),
                     output_padding=[max(-pads[1], 0), max(-pads[3], 0)])
    return export_activation(builder, layer.activation, Value(y, x.dtype, 4, True), layer)


def depthwise_kernel(layer, key):
    """(kh, kw, C, M) as OIHW for group=C: output channel c*M + m is input channel c's m-th kernel."""
    k = host(layer, key)
    kh, kw, c, m = k.shape
    return k.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]


def export_depthwise_conv2d(builder, layer, x, training):
    kernel = builder.weight(layer, "kernel", lambda: depthwise_kernel(layer, "kernel"))
    y = export_conv(builder, layer, x, kernel, bias_of(builder, layer), layer.kernel_size, layer.strides,
                    window_pads(layer), group=layer.input_shape[-1])
    return export_activation(builder, layer.activation, y, layer)


def export_separable_conv2d(builder, layer, x, training):
    depthwise = builder.weight(layer, "depthwise_kernel", lambda: depthwise_kernel(layer, "depthwise_kernel"))
    pointwise = builder.weight(layer, "pointwise_kernel",
                               lambda: host(layer, "pointwise_kernel").transpose(3, 2, 0, 1))
    z = export_conv(builder, layer, x, depthwise, None, layer.kernel_size, layer.strides,
                    window_pads(layer), group=layer.input_shape[-1], base=f"{layer.name}/depthwise")
    y = export_conv(builder, layer, z, pointwise, bias_of(builder, layer), (1, 1), (1, 1), {"pads": [0, 0, 0, 0]},
                    base=f"{layer.name}/pointwise")
    return export_activation(builder, layer.activation, y, layer)


def export_max_pooling(builder, layer, x, training):
    x = builder.nchw(x)
    y = builder.node("MaxPool", [x.name], layer.name, kernel_shape=list(layer.pool_size),
                     strides=list(layer.strides), **window_pads(layer))
    return replace(x, y)


def export_average_pooling(builder, layer, x, training):
    """Padding is not counted in a window's mean (as scratchnet's kernels and Keras)."""
    check_float64_kernel("AveragePool", layer, x.dtype)
    x = builder.nchw(x)
    y = builder.node("AveragePool", [x.name], layer.name, kernel_shape=list(layer.pool_size),
                     strides=list(layer.strides), **window_pads(layer), count_include_pad=0)
    return replace(x, y)


def export_global_pooling(op_type):
    def export(builder, layer, x, training):
        axes = [x.axis(1), x.axis(2)]
        y = builder.reduce(op_type, x, axes, layer.keepdims, layer.name)
        return Value(y, x.dtype, 4, x.nchw) if layer.keepdims else Value(y, x.dtype, 2)
    return export


def export_flatten(builder, layer, x, training):
    x = builder.nhwc(x)
    return Value(builder.node("Flatten", [x.name], layer.name, axis=1), x.dtype, 2)


def require_known_size(layer, what):
    """OnnxExportError unless ``layer``'s input size is known (it needs it to ``what``)."""
    if None in layer.input_shape:
        raise OnnxExportError(f"cannot export {layer.describe()} for inputs of unknown size "
                              f"{(None,) + tuple(layer.input_shape)}: it needs the size to {what}; export a model "
                              f"built for one size (Input(shape=(height, width, channels)))")


def export_reshape(builder, layer, x, training):
    require_known_size(layer, "give the ONNX Reshape its shape")
    x = builder.nhwc(x)
    shape = builder.axes(f"{layer.name}/shape", [-1] + list(layer.output_shape))
    return Value(builder.node("Reshape", [x.name, shape], layer.name), x.dtype, 1 + len(layer.output_shape))


def export_zero_padding(builder, layer, x, training):
    x = builder.nchw(x)
    (top, bottom), (left, right) = layer.padding
    pads = builder.axes(f"{layer.name}/pads", [0, 0, top, left, 0, 0, bottom, right])
    return replace(x, builder.node("Pad", [x.name, pads], layer.name))


def export_dense(builder, layer, x, training):
    """x @ kernel + bias along the last axis (Gemm for 2-D inputs, MatMul and Add otherwise)."""
    x = builder.nhwc(x)
    kernel = builder.weight(layer, "kernel", lambda: host(layer, "kernel"))
    bias = bias_of(builder, layer)
    if x.rank == 2 and bias is not None:
        y = builder.node("Gemm", [x.name, kernel, bias], f"{layer.name}/dense")
    else:
        y = builder.node("MatMul", [x.name, kernel], f"{layer.name}/matmul")
        if bias is not None:
            y = builder.node("Add", [y, bias], f"{layer.name}/bias")
    return export_activation(builder, layer.activation, replace(x, y), layer)


def export_dropout(builder, layer, x, training):
    if training and layer.rate:
        raise OnnxExportError(f"cannot export {layer.describe()}: it is called with training=True in the graph, "
                              f"so at inference it still drops values at random")
    return x


def _identity_at_inference(does):
    """The exporter of a layer that is the identity at inference and ``does`` something at
    random in training (refused where the graph calls it with training=True)."""
    def export(builder, layer, x, training):
        if training:
            raise OnnxExportError(f"cannot export {layer.describe()}: it is called with training=True in the graph, "
                                  f"so at inference it still {does} at random")
        return x
    return export


export_noise = _identity_at_inference("adds noise")                   # GaussianNoise, GaussianDropout
export_augmentation = _identity_at_inference("transforms images")     # the random augmentation layers


def export_identity(builder, layer, x, training):
    """ActivityRegularization: the identity (its penalty is for training only)."""
    return x


def export_resizing(builder, layer, x, training):
    require_known_size(layer, "place its window")
    size = (layer.height, layer.width)
    window = aspect_window(layer.input_shape[:2], size, layer.crop_to_aspect_ratio, layer.pad_to_aspect_ratio)
    return export_resize(builder, layer, x, size, window, layer.interpolation, layer.fill_value)


def export_random_crop(builder, layer, x, training):
    """RandomCrop at inference: the largest centred window of the target aspect ratio, resized."""
    if training:
        export_augmentation(builder, layer, x, training)
    require_known_size(layer, "place its centred window")
    size = (layer.height, layer.width)
    return export_resize(builder, layer, x, size, aspect_window(layer.input_shape[:2], size, crop=True))


def export_resize(builder, layer, x, size, window, interpolation="bilinear", fill_value=0.0):
    """Crop (Slice) or pad (Pad) NCHW images to ``window``, then Resize to ``size`` as TensorFlow
    resizes (half-pixel centres; nearest rounds down from them)."""
    x = builder.nchw(x)
    y = x.name
    height, width = layer.input_shape[:2]
    if (window.top, window.left, window.height, window.width) != (0, 0, height, width):
        y = builder.node("Slice", [y, builder.axes(f"{layer.name}/starts", [window.top, window.left]),
                                   builder.axes(f"{layer.name}/ends", [window.top + window.height,
                                                                       window.left + window.width]),
                                   builder.axes(f"{layer.name}/axes", [2, 3])], f"{layer.name}/crop")
    rows, cols = window.pad_rows, window.pad_cols
    if rows or cols:
        y = builder.node("Pad", [y, builder.axes(f"{layer.name}/pads", [0, 0, rows, cols, 0, 0, rows, cols]),
                                 builder.scalar(f"{layer.name}/fill", fill_value, x.dtype)], f"{layer.name}/pad")
    if (window.height + 2 * rows, window.width + 2 * cols) != tuple(size):
        check_float64_kernel("Resize", layer, x.dtype)
        batch_channels = builder.node("Slice", [builder.node("Shape", [y], f"{layer.name}/shape"),
                                                builder.axes(f"{layer.name}/zero", [0]),
                                                builder.axes(f"{layer.name}/two", [2])], f"{layer.name}/nc")
        sizes = builder.node("Concat", [batch_channels, builder.axes(f"{layer.name}/size", list(size))],
                             f"{layer.name}/sizes", axis=0)
        y = builder.node("Resize", [y, "", "", sizes], layer.name, **resize_modes(interpolation))
    return replace(x, y)


def resize_modes(interpolation):
    """ONNX Resize's attributes for TensorFlow's resize with half-pixel centres."""
    if interpolation == "nearest":
        return dict(mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn", nearest_mode="floor")
    return dict(mode="linear", coordinate_transformation_mode="half_pixel")


def export_upsampling(builder, layer, x, training):
    """UpSampling2D: Resize to (H*sh, W*sw) (nearest: floor of the half-pixel centres, i.e. repeat);
    by its scales where the image's size is unknown."""
    height, width = layer.input_shape[:2]
    if height is None or width is None:
        check_float64_kernel("Resize", layer, x.dtype)
        x = builder.nchw(x)
        scales = builder.constant(f"{layer.name}/scales", np.array([1, 1, *layer.size], np.float32))
        return replace(x, builder.node("Resize", [x.name, "", scales], layer.name, **resize_modes(layer.interpolation)))
    size = (height * layer.size[0], width * layer.size[1])
    return export_resize(builder, layer, x, size, aspect_window((height, width), size), layer.interpolation)


def export_cropping(builder, layer, x, training):
    x = builder.nchw(x)
    (top, bottom), (left, right) = layer.cropping
    ends = [-bottom if bottom else END, -right if right else END]     # from the end: any image size
    return replace(x, builder.node("Slice", [x.name, builder.axes(f"{layer.name}/starts", [top, left]),
                                             builder.axes(f"{layer.name}/ends", ends),
                                             builder.axes(f"{layer.name}/axes", [2, 3])], layer.name))


def export_activation_layer(builder, layer, x, training):
    return export_activation(builder, layer.activation, x, layer)


def export_batch_normalization(builder, layer, x, training):
    """Inference with the moving statistics: ONNX BatchNormalization for float32 NCHW images
    and 2-D inputs, else (x - mean) * scale + shift over the channels, as scratchnet's
    kernels compute it (ONNX's epsilon is a float32 attribute: not enough for float64)."""
    if training and layer.trainable:
        raise OnnxExportError(f"cannot export {layer.describe()}: it is called with training=True in the graph, "
                              f"so it normalizes with each batch's statistics, not its moving ones")
    c, dtype = layer.input_shape[-1], layer.dtype
    gamma = host(layer, "gamma") if layer.scale else np.ones(c, dtype)
    beta = host(layer, "beta") if layer.center else np.zeros(c, dtype)
    mean, var = host(layer, "moving_mean"), host(layer, "moving_variance")
    if x.rank in (2, 4) and dtype == np.float32:
        x = builder.nchw(x) if x.rank == 4 else x
        names = [builder.weight(layer, key, lambda v=v: v) for key, v in
                 (("gamma", gamma), ("beta", beta), ("moving_mean", mean), ("moving_variance", var))]
        return replace(x, builder.node("BatchNormalization", [x.name] + names, layer.name,
                                       epsilon=float(layer.epsilon)))
    scale = gamma * (1 / np.sqrt(var + dtype.type(layer.epsilon)))
    shape = (c,) + (1,) * (x.rank - 1 - x.axis(-1))     # over the channels, wherever they are
    suffix = "_nchw" if len(shape) > 1 else ""

    def constant(key, value):
        return builder.weight(layer, key + suffix, lambda: value.reshape(shape))
    centred = builder.node("Sub", [x.name, constant("moving_mean", mean)], f"{layer.name}/centred")
    scaled = builder.node("Mul", [centred, constant("scale", scale)], f"{layer.name}/scaled")
    return replace(x, builder.node("Add", [scaled, constant("shift", beta)], layer.name))


def export_rescaling(builder, layer, x, training):
    if isinstance(layer.scale, list) or isinstance(layer.offset, list):
        x = builder.nhwc(x)             # per-channel values broadcast along the model's last axis
    y = x.name
    if layer.scale != 1:
        y = builder.node("Mul", [y, builder.constant(f"{layer.name}/scale", np.asarray(layer.scale, x.dtype))],
                         f"{layer.name}/scale")
    if layer.offset != 0:
        y = builder.node("Add", [y, builder.constant(f"{layer.name}/offset", np.asarray(layer.offset, x.dtype))],
                         f"{layer.name}/offset")
    return x if y == x.name else replace(x, y)


def aligned(builder, layer, xs):
    """``xs`` with the same rank (size-1 axes inserted after the batch, as scratchnet's Add and
    Multiply) and one layout: NCHW where they are 4-D and one of them already is."""
    rank = max(x.rank for x in xs)
    out = []
    for i, x in enumerate(xs):
        if x.rank < rank:
            x = builder.nhwc(x)
            axes = builder.axes(f"{layer.name}/axes_{i}", list(range(1, 1 + rank - x.rank)))
            x = Value(builder.node("Unsqueeze", [x.name, axes], f"{layer.name}/aligned_{i}"), x.dtype, rank)
        out.append(x)
    if rank == 4 and any(x.nchw for x in out):
        return [builder.nchw(x) for x in out]
    return [builder.nhwc(x) for x in out]


def export_elementwise(op_type):
    """Add or Multiply: its inputs combined left to right, as scratchnet sums them."""
    def export(builder, layer, xs, training):
        xs = aligned(builder, layer, xs)
        y = xs[0].name
        for x in xs[1:]:
            y = builder.node(op_type, [y, x.name], layer.name)
        return replace(xs[0], y)
    return export


def export_concatenate(builder, layer, xs, training):
    xs = aligned(builder, layer, xs)     # the layer's axis counts the batch axis, as Keras's
    return replace(xs[0], builder.node("Concat", [x.name for x in xs], layer.name, axis=xs[0].axis(layer.axis)))


def _exporters():
    return {
        layers.Conv2D: export_conv2d,
        layers.DepthwiseConv2D: export_depthwise_conv2d,
        layers.SeparableConv2D: export_separable_conv2d,
        layers.Conv2DTranspose: export_conv2d_transpose,
        layers.MaxPooling2D: export_max_pooling,
        layers.AveragePooling2D: export_average_pooling,
        layers.GlobalAveragePooling2D: export_global_pooling("ReduceMean"),
        layers.GlobalMaxPooling2D: export_global_pooling("ReduceMax"),
        layers.Flatten: export_flatten,
        layers.Reshape: export_reshape,
        layers.ZeroPadding2D: export_zero_padding,
        layers.Dense: export_dense,
        layers.Dropout: export_dropout,
        layers.SpatialDropout2D: export_dropout,
        layers.GaussianDropout: export_noise,
        layers.GaussianNoise: export_noise,
        layers.ActivityRegularization: export_identity,
        layers.Activation: export_activation_layer,
        layers.ReLU: export_activation_layer,
        layers.LeakyReLU: export_activation_layer,
        layers.Sigmoid: export_activation_layer,
        layers.Softmax: export_activation_layer,
        layers.BatchNormalization: export_batch_normalization,
        layers.LayerNormalization: onnx_normalization.export_layer_normalization,
        layers.GroupNormalization: onnx_normalization.export_group_normalization,
        layers.UnitNormalization: onnx_normalization.export_unit_normalization,
        layers.Normalization: onnx_normalization.export_normalization,
        layers.Add: export_elementwise("Add"),
        layers.Multiply: export_elementwise("Mul"),
        layers.Concatenate: export_concatenate,
        layers.Rescaling: export_rescaling,
        layers.Resizing: export_resizing,
        layers.RandomCrop: export_random_crop,
        layers.UpSampling2D: export_upsampling,
        layers.Cropping2D: export_cropping,
        **{cls: export_augmentation for cls in (layers.RandomFlip, layers.RandomRotation, layers.RandomZoom,
                                                 layers.RandomTranslation, layers.RandomContrast)},
    }   # InputLayer: a graph's inputs, bound to the ONNX graph's inputs (or a model's) before the walk




EXPORTERS = _exporters()

__all__ = ["EXPORTERS", "export_activation", "is_registered", "relu_arguments", "export_relu", "export_elu",
           "export_softplus", "host", "onnx_pads", "window_pads", "export_conv", "bias_of", "export_conv2d",
           "depthwise_kernel", "export_depthwise_conv2d", "export_separable_conv2d", "export_max_pooling",
           "export_average_pooling", "export_global_pooling", "export_flatten", "export_reshape", "export_zero_padding",
           "export_dense", "export_dropout", "export_augmentation", "export_resizing", "export_random_crop",
           "export_resize", "export_activation_layer", "export_batch_normalization", "export_rescaling", "aligned",
           "export_elementwise", "export_concatenate"]
__all__ += ["export_upsampling", "export_cropping"]
