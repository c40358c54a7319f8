"""Keras's applications, built from scratchnet's layers with Keras's layer names, arguments
and parameter counts: VGG16, ResNet50, InceptionV3, MobileNetV2, Xception.

    base = applications.VGG16(include_top=False, input_shape=(150, 150, 3), weights=None)
    base.trainable = False

``weights=None`` gives random initial weights; ``weights=PATH`` loads a Keras weight file
the user has (the ``.h5`` files keras.applications downloads, with or without the top, or
any ``.weights.h5``). scratchnet downloads nothing: ``weights='imagenet'`` says so.
"""
from . import imagenet_utils, inception_v3, mobilenet_v2, resnet50, vgg16, xception
from .inception_v3 import InceptionV3
from .mobilenet_v2 import MobileNetV2
from .resnet import ResNet50
from .vgg16 import VGG16
from .xception import Xception

__all__ = ["VGG16", "ResNet50", "InceptionV3", "MobileNetV2", "Xception"]
