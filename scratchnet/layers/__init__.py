"""Layers with hand-written forward and backward passes, named as in ``keras.layers``."""
from .base import Layer, clear_session
from .conv import Conv2D
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, ReLU, Sigmoid, Softmax
from .pooling import MaxPooling2D

Convolution2D = Conv2D
MaxPool2D = MaxPooling2D

__all__ = ["Layer", "Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D", "Flatten", "Dense",
           "Dropout", "Activation", "ReLU", "Sigmoid", "Softmax", "Input", "InputLayer",
           "clear_session"]

_BY_NAME = {cls.__name__: cls for cls in (Conv2D, MaxPooling2D, Flatten, Dense, Dropout, Activation,
                                          ReLU, Sigmoid, Softmax)}


def get(class_name):
    """The layer class called ``class_name`` (used when loading saved models)."""
    if class_name not in _BY_NAME:
        raise ValueError(f"unknown layer type {class_name!r}; expected one of {sorted(_BY_NAME)}")
    return _BY_NAME[class_name]
