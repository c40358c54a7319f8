"""What the applications share: their arguments, input and top, as keras.applications."""
import os
from pathlib import Path

from .. import layers
from ..models import Model


def check_arguments(name, weights, include_top, classes, classifier_activation, pooling):
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{name}: weights must be None, 'imagenet' or the path of a weight file, got {weights!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"{name}: with weights='imagenet' and include_top=True, classes must be 1000 (as in Keras), "
                         f"got {classes!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"{name}: pooling must be None, 'avg' or 'max', got {pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"{name}: classes must be a positive int, got {classes!r}")
    if classifier_activation is not None and not isinstance(classifier_activation, str):
        raise ValueError(f"{name}: classifier_activation must be a name such as 'softmax' or None")


def keras_cache_file(file_name):
    """Where Keras keeps a downloaded weight file: $KERAS_HOME/models/ or ~/.keras/models/."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / file_name


def weight_file(name, weights, imagenet_file):
    """The weight file to load (None for random weights). weights='imagenet' is the file
    Keras downloaded into its cache (``imagenet_file``), if it is there: scratchnet
    downloads nothing."""
    if weights is None:
        return None
    if weights == "imagenet":
        path = keras_cache_file(imagenet_file)
        if not path.is_file():
            raise FileNotFoundError(
                f"{name}(weights='imagenet') reads the ImageNet weights Keras keeps in {path}, which is not there; "
                f"scratchnet downloads nothing. Copy that file there (keras.applications.{name} downloads it on a "
                f"machine with internet), pass weights=PATH to a Keras weight file, or weights=None")
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{name}: the weight file {str(weights)!r} does not exist")
    return path


def model_input(name, input_tensor, input_shape, default_size, min_size, include_top=True):
    """The input tensor: ``input_tensor``, or an Input of ``input_shape``; without it, as in
    Keras, default_size x default_size x 3 with the top and (None, None, 3), images of any
    size, without. Checked against the smallest size the network fits."""
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
        tensor = input_tensor
    else:
        shape = tuple(input_shape) if input_shape is not None else \
            (default_size, default_size, 3) if include_top else (None, None, 3)
        tensor = None
    if len(shape) != 3 or shape[2] is None:
        raise ValueError(f"{name}: input_shape must be (height, width, channels) with the channels given, got {shape}")
    if any(d is not None and d < min_size for d in shape[:2]):
        raise ValueError(f"{name}: input size must be at least {min_size}x{min_size}, got {shape[0]}x{shape[1]}")
    return (tensor if tensor is not None else layers.Input(shape=shape)), shape


def finish(name, inputs, x, include_top, pooling, classes, classifier_activation, avg_name=None, max_name=None,
           top=None, weights=None):
    """The top (``top(x)`` then the 'predictions' Dense) or, without it, the optional pooling;
    then the weights of the file ``weights`` (see ``weight_file``), loaded by topology as Keras does."""
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
        model.load_weights(weights)
    return model
