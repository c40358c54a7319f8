"""What the applications share: their arguments, input and top, as keras.applications."""
import os
from pathlib import Path

from .. import layers
from ..models import Model


def check_arguments(name, weights, include_top, classes, classifier_activation, pooling):
    if weights == "imagenet":
        raise ValueError(f"{name}(weights='imagenet'): scratchnet does not download weights. Pass the path of the "
                         f"Keras weight file you have instead, e.g. weights='~/.keras/models/"
                         f"{name.lower()}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5' "
                         f"(any .h5 or .weights.h5 file Keras reads), or weights=None for random weights")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{name}: weights must be None, 'imagenet' or the path of a weight file, got {weights!r}")
    if weights is not None and not Path(weights).expanduser().is_file():
        raise FileNotFoundError(f"{name}: the weight file {str(weights)!r} does not exist")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"{name}: pooling must be None, 'avg' or 'max', got {pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"{name}: classes must be a positive int, got {classes!r}")
    if classifier_activation is not None and not isinstance(classifier_activation, str):
        raise ValueError(f"{name}: classifier_activation must be a name such as 'softmax' or None")


def model_input(name, input_tensor, input_shape, default_size, min_size):
    """The input tensor: ``input_tensor``, or an Input of ``input_shape`` (default
    default_size x default_size x 3), checked against the smallest size the network fits."""
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
        tensor = input_tensor
    else:
        shape = tuple(input_shape) if input_shape is not None else (default_size, default_size, 3)
        tensor = None
    if len(shape) != 3 or any(d is None for d in shape):
        raise ValueError(f"{name}: input_shape must be (height, width, channels) with every size given, got {shape}")
    if shape[0] < min_size or shape[1] < min_size:
        raise ValueError(f"{name}: input size must be at least {min_size}x{min_size}, got {shape[0]}x{shape[1]}")
    return (tensor if tensor is not None else layers.Input(shape=shape)), shape


def finish(name, inputs, x, include_top, pooling, classes, classifier_activation, avg_name=None, max_name=None,
           top=None, weights=None):
    """The top (``top(x)`` then the 'predictions' Dense) or, without it, the optional pooling;
    then the weights of the file ``weights``, if given, loaded by topology as Keras does."""
    if include_top:
        if top is not None:
            x = top(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name=avg_name)(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name=max_name)(x)
    model = Model(inputs, x, name=name)
    if weights is not None:
        model.load_weights(Path(weights).expanduser())
    return model
