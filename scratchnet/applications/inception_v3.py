"""InceptionV3 (Szegedy et al., 2015), as keras.applications.InceptionV3."""
from .. import layers
from . import imagenet_utils
from .common import check_arguments, finish, model_input, weight_file


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1)):
    """Convolution without bias, BatchNormalization without scale, ReLU (unnamed, as Keras's)."""
    x = layers.Conv2D(filters, (num_row, num_col), strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(scale=False)(x)
    return layers.Activation("relu")(x)


def _average_pool(x):
    return layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)


def InceptionV3(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="inception_v3"):
    """A stem and eleven inception modules (mixed0 to mixed10); the top is 'avg_pool' and
    'predictions'. 23,851,784 parameters, 21,802,784 without the top; inputs from 75x75."""
    check_arguments("InceptionV3", weights, include_top, classes, classifier_activation, pooling)
    weights = weight_file("InceptionV3", weights, f"inception_v3_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5")
    inputs, _ = model_input("InceptionV3", input_tensor, input_shape, 299, 75, include_top)
    x = conv2d_bn(inputs, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)

    for i, pool_filters in enumerate((32, 64, 64)):              # mixed0..2: 35 x 35
        branch1x1 = conv2d_bn(x, 64, 1, 1)
        branch5x5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5)
        branch3x3dbl = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        branch_pool = conv2d_bn(_average_pool(x), pool_filters, 1, 1)
        x = layers.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1, name=f"mixed{i}")

    branch3x3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")   # mixed3: 17 x 17
    branch3x3dbl = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, strides=(2, 2), padding="valid")
    branch_pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = layers.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=-1, name="mixed3")

    for i, width in enumerate((128, 160, 160, 192)):             # mixed4..7: 17 x 17
        branch1x1 = conv2d_bn(x, 192, 1, 1)
        branch7x7 = conv2d_bn(conv2d_bn(conv2d_bn(x, width, 1, 1), width, 1, 7), 192, 7, 1)
        branch7x7dbl = conv2d_bn(x, width, 1, 1)
        for rows, cols in ((7, 1), (1, 7), (7, 1)):
            branch7x7dbl = conv2d_bn(branch7x7dbl, width, rows, cols)
        branch7x7dbl = conv2d_bn(branch7x7dbl, 192, 1, 7)
        branch_pool = conv2d_bn(_average_pool(x), 192, 1, 1)
        x = layers.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1, name=f"mixed{4 + i}")

    branch3x3 = conv2d_bn(conv2d_bn(x, 192, 1, 1), 320, 3, 3, strides=(2, 2), padding="valid")   # mixed8: 8 x 8
    branch7x7x3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 3, 3, strides=(2, 2), padding="valid")
    branch_pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = layers.concatenate([branch3x3, branch7x7x3, branch_pool], axis=-1, name="mixed8")

    for i in range(2):                                            # mixed9, mixed10: 8 x 8
        branch1x1 = conv2d_bn(x, 320, 1, 1)
        branch3x3 = conv2d_bn(x, 384, 1, 1)
        branch3x3 = layers.concatenate([conv2d_bn(branch3x3, 384, 1, 3), conv2d_bn(branch3x3, 384, 3, 1)],
                                       axis=-1, name=f"mixed9_{i}")
        branch3x3dbl = conv2d_bn(conv2d_bn(x, 448, 1, 1), 384, 3, 3)
        branch3x3dbl = layers.concatenate([conv2d_bn(branch3x3dbl, 384, 1, 3), conv2d_bn(branch3x3dbl, 384, 3, 1)],
                                          axis=-1)
        branch_pool = conv2d_bn(_average_pool(x), 192, 1, 1)
        x = layers.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], axis=-1, name=f"mixed{9 + i}")

    return finish(name, inputs, x, include_top, pooling, classes, classifier_activation,
                  top=lambda x: layers.GlobalAveragePooling2D(name="avg_pool")(x), weights=weights)


def preprocess_input(x, data_format=None):
    """Images 0..255 as this application's ImageNet weights expect them ('tf' mode of
    imagenet_utils.preprocess_input)."""
    return imagenet_utils.preprocess_input(x, data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
