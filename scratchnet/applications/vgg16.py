"""VGG16 (Simonyan and Zisserman, 2014), as keras.applications.VGG16."""
from .. import layers
from . import imagenet_utils
from .common import check_arguments, finish, model_input, weight_file


def VGG16(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16"):
    """13 ReLU 3x3 convolutions in 5 blocks, each ending with a 2x2 max-pooling; the top is
    Flatten, fc1 and fc2 (4096 each) and 'predictions'. 138,357,544 parameters at 224x224
    with the top, 14,714,688 without (any size)."""
    check_arguments("VGG16", weights, include_top, classes, classifier_activation, pooling)
    weights = weight_file("VGG16", weights, f"vgg16_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5")
    inputs, _ = model_input("VGG16", input_tensor, input_shape, 224, 32, include_top)
    x = inputs
    for block, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)

    def top(x):
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        return layers.Dense(4096, activation="relu", name="fc2")(x)
    return finish(name, inputs, x, include_top, pooling, classes, classifier_activation, top=top, weights=weights)


def preprocess_input(x, data_format=None):
    """Images 0..255 as this application's ImageNet weights expect them ('caffe' mode of
    imagenet_utils.preprocess_input)."""
    return imagenet_utils.preprocess_input(x, data_format, mode="caffe")


decode_predictions = imagenet_utils.decode_predictions
