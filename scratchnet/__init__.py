"""scratchnet: a convolutional-network engine written from scratch, with Keras's API.

    from scratchnet import layers, models, optimizers
"""
from . import activations, backend, callbacks, gradcheck, initializers, layers, losses, metrics, \
    models, optimizers, utils
from .backend import set_backend
from .config import floatx, set_floatx, set_random_seed
from .layers import Activation, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from .models import Model, Sequential, TrainingDiverged
from .saving import ModelFileError, load_model
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = ["activations", "backend", "callbacks", "gradcheck", "initializers", "layers", "losses",
           "metrics", "models", "optimizers", "utils", "set_backend", "floatx", "set_floatx",
           "set_random_seed", "Model", "Sequential", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout",
           "Activation", "Input", "TrainingDiverged", "set_num_threads", "get_num_threads",
           "load_model", "ModelFileError",
           "__version__"]
