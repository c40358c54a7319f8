"""ResNet50 (He et al., 2015), version 1 (the stride on the first 1x1 convolution of a
block), as keras.applications.ResNet50."""
from .. import layers
from . import imagenet_utils
from .common import check_arguments, finish, model_input, weight_file

BN_EPSILON = 1.001e-5


def residual_block(x, filters, kernel_size=3, stride=1, conv_shortcut=True, name=None):
    """1x1 (stride) -> 3x3 -> 1x1 (4 x filters), added to the shortcut (a strided 1x1
    convolution, or the input itself), then ReLU."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=name + "_0_conv")(x)
        shortcut = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=name + "_1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "_1_bn")(x)
    x = layers.Activation("relu", name=name + "_1_relu")(x)
    x = layers.Conv2D(filters, kernel_size, padding="same", name=name + "_2_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "_2_bn")(x)
    x = layers.Activation("relu", name=name + "_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=name + "_3_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "_3_bn")(x)
    x = layers.Add(name=name + "_add")([shortcut, x])
    return layers.Activation("relu", name=name + "_out")(x)


def residual_stack(x, filters, blocks, stride1=2, name=None):
    x = residual_block(x, filters, stride=stride1, name=name + "_block1")
    for i in range(2, blocks + 1):
        x = residual_block(x, filters, conv_shortcut=False, name=name + f"_block{i}")
    return x


def ResNet50(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet50"):
    """A 7x7 stem and four stacks of 3, 4, 6 and 3 bottleneck blocks (64 to 512 filters);
    the top is 'avg_pool' and 'predictions'. 25,636,712 parameters, 23,587,712 without the top."""
    check_arguments("ResNet50", weights, include_top, classes, classifier_activation, pooling)
    weights = weight_file("ResNet50", weights, f"resnet50_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5")
    inputs, _ = model_input("ResNet50", input_tensor, input_shape, 224, 32, include_top)
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=True, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = residual_stack(x, 64, 3, stride1=1, name="conv2")
    x = residual_stack(x, 128, 4, name="conv3")
    x = residual_stack(x, 256, 6, name="conv4")
    x = residual_stack(x, 512, 3, name="conv5")
    return finish(name, inputs, x, include_top, pooling, classes, classifier_activation, avg_name="avg_pool",
                  max_name="max_pool", top=lambda x: layers.GlobalAveragePooling2D(name="avg_pool")(x),
                  weights=weights)


def preprocess_input(x, data_format=None):
    """Images 0..255 as this application's ImageNet weights expect them ('caffe' mode of
    imagenet_utils.preprocess_input)."""
    return imagenet_utils.preprocess_input(x, data_format, mode="caffe")


decode_predictions = imagenet_utils.decode_predictions
