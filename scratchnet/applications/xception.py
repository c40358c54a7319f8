"""Xception (Chollet, 2017), as keras.applications.Xception: depthwise separable
convolutions with residual connections, in an entry flow, a middle flow and an exit flow."""
from .. import layers
from . import imagenet_utils
from .common import check_arguments, finish, model_input, weight_file


def separable_bn(x, filters, name, relu_before=True):
    """[ReLU '<name>_act'] -> SeparableConv2D 3x3 'same' without bias '<name>' -> BatchNormalization '<name>_bn'."""
    if relu_before:
        x = layers.Activation("relu", name=name + "_act")(x)
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=name + "_bn")(x)


def strided_shortcut(x, filters):
    """The residual branch of a downsampling block: a strided 1x1 convolution without bias and
    BatchNormalization (both unnamed, as Keras's)."""
    x = layers.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    return layers.BatchNormalization()(x)


def downsampling_block(x, block, first_filters, second_filters, first_relu=True):
    """Two separable convolutions and a 3x3 stride-2 max-pooling, added to the strided shortcut."""
    residual = strided_shortcut(x, second_filters)
    x = separable_bn(x, first_filters, f"block{block}_sepconv1", relu_before=first_relu)
    x = separable_bn(x, second_filters, f"block{block}_sepconv2")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
    return layers.add([x, residual])


def check_pretrained(weights, include_top, input_shape, classifier_activation):
    """What Keras also refuses with pretrained weights: with the top and 'imagenet', an input
    other than 299x299x3; with 'imagenet', other than 3 channels; with the top and any weights,
    a classifier activation other than 'softmax' or None."""
    shape = tuple(input_shape) if input_shape is not None else None
    if weights == "imagenet" and include_top and shape is not None and shape != (299, 299, 3):
        raise ValueError(f"Xception: with weights='imagenet' and include_top=True, input_shape must be (299, 299, 3) "
                         f"(as in Keras), got {shape}")
    if weights == "imagenet" and shape is not None and (len(shape) != 3 or shape[-1] != 3):
        raise ValueError(f"Xception: with weights='imagenet' the input must have 3 channels, got input_shape={shape}")
    if include_top and weights is not None and classifier_activation not in (None, "softmax"):
        raise ValueError(f"Xception: with pretrained weights and include_top=True, classifier_activation must be "
                         f"'softmax' or None (as in Keras), got {classifier_activation!r}")


def Xception(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="xception"):
    """Entry flow (two plain convolutions, three downsampling blocks to 728 channels), middle
    flow (eight residual blocks of three separable convolutions, blocks 5 to 12), exit flow
    (block 13 to 1024 channels, then separable convolutions to 1536 and 2048); the top is
    'avg_pool' and 'predictions'. 22,910,480 parameters, 20,861,480 without the top; inputs
    from 71x71 (default 299x299)."""
    check_arguments("Xception", weights, include_top, classes, classifier_activation, pooling)
    check_pretrained(weights, include_top, input_shape, classifier_activation)
    weights = weight_file("Xception", weights, f"xception_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5")
    inputs, _ = model_input("Xception", input_tensor, input_shape, 299, 71, include_top)

    x = inputs                                                     # entry flow
    for i, (filters, strides) in enumerate(((32, (2, 2)), (64, (1, 1))), start=1):
        x = layers.Conv2D(filters, (3, 3), strides=strides, use_bias=False, name=f"block1_conv{i}")(x)
        x = layers.BatchNormalization(name=f"block1_conv{i}_bn")(x)
        x = layers.Activation("relu", name=f"block1_conv{i}_act")(x)
    x = downsampling_block(x, 2, 128, 128, first_relu=False)      # block 1 already ends with a ReLU
    x = downsampling_block(x, 3, 256, 256)
    x = downsampling_block(x, 4, 728, 728)

    for block in range(5, 13):                                    # middle flow
        residual = x
        for i in range(1, 4):
            x = separable_bn(x, 728, f"block{block}_sepconv{i}")
        x = layers.add([x, residual])

    x = downsampling_block(x, 13, 728, 1024)                      # exit flow
    for i, filters in enumerate((1536, 2048), start=1):
        x = separable_bn(x, filters, f"block14_sepconv{i}", relu_before=False)
        x = layers.Activation("relu", name=f"block14_sepconv{i}_act")(x)

    return finish(name, inputs, x, include_top, pooling, classes, classifier_activation,
                  top=lambda x: layers.GlobalAveragePooling2D(name="avg_pool")(x), weights=weights)


def preprocess_input(x, data_format=None):
    """Images 0..255 as this application's ImageNet weights expect them ('tf' mode of
    imagenet_utils.preprocess_input: scaled to -1..1)."""
    return imagenet_utils.preprocess_input(x, data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
