"""Layers with hand-written forward and backward passes, named as in ``keras.layers``."""
from .base import Layer, clear_session
from .conv import Conv2D, DepthwiseConv2D, SeparableConv2D
from .conv_transpose import Conv2DTranspose
from .core import (Activation, Dense, Dropout, Flatten, Input, InputLayer, LeakyReLU, ReLU, Sigmoid,
                   Softmax)
from .merging import Add, Concatenate, Multiply, add, concatenate, multiply
from .normalization import (BatchNormalization, GroupNormalization, LayerNormalization, Normalization,
                            UnitNormalization)
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .augmentation import RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom
from .preprocessing import Rescaling, Resizing
from .reshaping import Reshape, ZeroPadding2D
from .reshaping import Cropping2D, UpSampling2D
from .noise import GaussianDropout, GaussianNoise, SpatialDropout2D
from .regularization import ActivityRegularization
from . import fused  # noqa: F401  (puts the fused steps' rules in scratchnet.fusion.RULES)

Convolution2D = Conv2D
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D

_CLASSES = (Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
            GlobalMaxPooling2D, Flatten, Reshape, ZeroPadding2D, Dense, Dropout, Activation, ReLU, LeakyReLU,
            Sigmoid, Softmax, BatchNormalization, Add, Multiply, Concatenate, Rescaling, Resizing, RandomFlip,
            RandomRotation, RandomZoom, RandomTranslation, RandomContrast, RandomCrop, InputLayer)
_CLASSES += (Conv2DTranspose,)

_CLASSES += (UpSampling2D, Cropping2D)
_CLASSES += (LayerNormalization, GroupNormalization, UnitNormalization, Normalization)

_CLASSES += (SpatialDropout2D, GaussianNoise, GaussianDropout, ActivityRegularization)

__all__ = [cls.__name__ for cls in _CLASSES] + [
    "Layer", "Input", "Convolution2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D",
    "add", "concatenate", "multiply", "clear_session"]

_BY_NAME = {cls.__name__: cls for cls in _CLASSES}


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from ..names import missing
    raise missing("layers", name, _BY_NAME)


def get(class_name):
    """The layer class called ``class_name`` (used when loading saved models)."""
    if class_name not in _BY_NAME:
        raise ValueError(f"unknown layer type {class_name!r}; expected one of {sorted(_BY_NAME)}")
    return _BY_NAME[class_name]
