"""MobileNetV2 (Sandler et al., 2018), as keras.applications.MobileNetV2."""
import warnings

from .. import layers
from . import imagenet_utils
from .common import check_arguments, finish, model_input, weight_file

BN = dict(epsilon=1e-3, momentum=0.999)


def make_divisible(v, divisor=8, min_value=None):
    """The multiple of ``divisor`` nearest v, never below 90% of v (Keras's _make_divisible)."""
    new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def correct_pad(size, kernel_size=3):
    """The padding before a stride-2 'valid' depthwise convolution, as Keras's correct_pad."""
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)   # Keras's choice for any size
    correct = (kernel_size // 2, kernel_size // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def inverted_residual_block(inputs, expansion, stride, alpha, filters, block_id):
    """Expand (1x1, except block 0), depthwise 3x3 (stride), project (1x1, linear); added to
    the input when the shape stays."""
    in_channels = inputs.shape[-1]
    pointwise_filters = make_divisible(int(filters * alpha), 8)
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    x = inputs
    if block_id:
        x = layers.Conv2D(expansion * in_channels, 1, padding="same", use_bias=False, name=prefix + "expand")(x)
        x = layers.BatchNormalization(name=prefix + "expand_BN", **BN)(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    if stride == 2:
        x = layers.ZeroPadding2D(padding=correct_pad(x.shape[1:3], 3), name=prefix + "pad")(x)
    x = layers.DepthwiseConv2D(3, strides=stride, use_bias=False, padding="same" if stride == 1 else "valid",
                               name=prefix + "depthwise")(x)
    x = layers.BatchNormalization(name=prefix + "depthwise_BN", **BN)(x)
    x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
    x = layers.Conv2D(pointwise_filters, 1, padding="same", use_bias=False, name=prefix + "project")(x)
    x = layers.BatchNormalization(name=prefix + "project_BN", **BN)(x)
    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=prefix + "add")([inputs, x])
    return x


BLOCKS = [  # (filters, stride, expansion) of blocks 0..16
    (16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6), (64, 1, 6),
    (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6)]


def imagenet_file(weights, alpha, shape, include_top):
    """The name Keras gives the ImageNet weight file for this alpha and input size: sizes other
    than 96, 128, 160, 192 and 224 (or a non-square input) take the 224 file, as in Keras."""
    if weights != "imagenet":
        return None
    if alpha not in (0.35, 0.50, 0.75, 1.0, 1.3, 1.4):
        raise ValueError(f"MobileNetV2: with weights='imagenet', alpha must be 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4 (the "
                         f"ones Keras has weights for), got {alpha!r}")
    rows = shape[0]
    if shape[0] != shape[1] or rows not in (96, 128, 160, 192, 224):
        warnings.warn(f"MobileNetV2: the input is {shape[0]}x{shape[1]}: the ImageNet weights for 224x224 are loaded, "
                      f"as Keras does", stacklevel=3)
        rows = 224
    return (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}"
            f"{'' if include_top else '_no_top'}.h5")


def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights=None, input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", name=None):
    """A stem, 17 inverted residual blocks and a 1x1 convolution to 1280 channels; the top is
    global average pooling and 'predictions'. 3,538,984 parameters at alpha 1, 2,257,984
    without the top."""
    check_arguments("MobileNetV2", weights, include_top, classes, classifier_activation, pooling)
    if not alpha > 0:
        raise ValueError(f"MobileNetV2: alpha must be positive, got {alpha!r}")
    inputs, shape = model_input("MobileNetV2", input_tensor, input_shape, 224, 32, include_top)
    weights = weight_file("MobileNetV2", weights, imagenet_file(weights, alpha, shape, include_top))
    x = layers.Conv2D(make_divisible(32 * alpha, 8), 3, strides=(2, 2), padding="same", use_bias=False,
                      name="Conv1")(inputs)
    x = layers.BatchNormalization(name="bn_Conv1", **BN)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id, (filters, stride, expansion) in enumerate(BLOCKS):
        x = inverted_residual_block(x, expansion, stride, alpha, filters, block_id)
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(name="Conv_1_bn", **BN)(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    name = name or f"mobilenetv2_{alpha:0.2f}_{shape[0]}"
    return finish(name, inputs, x, include_top, pooling, classes, classifier_activation,
                  top=lambda x: layers.GlobalAveragePooling2D()(x), weights=weights)


def preprocess_input(x, data_format=None):
    """Images 0..255 as this application's ImageNet weights expect them ('tf' mode of
    imagenet_utils.preprocess_input)."""
    return imagenet_utils.preprocess_input(x, data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
