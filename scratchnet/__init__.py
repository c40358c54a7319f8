"""scratchnet: a convolutional-network engine written from scratch, with Keras's API.

    from scratchnet import layers, models, optimizers
"""
from . import activations, backend, callbacks, constraints, gradcheck, initializers, layers, losses, metrics, \
    models, optimizers, regularizers, utils
from .backend import set_backend
from .config import floatx, set_floatx, set_random_seed
from .layers import Activation, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from .models import Model, Sequential, TrainingDiverged
from .saving import ModelFileError, load_model
from .threads import get_num_threads, set_num_threads

from .version import __version__

# Modules Keras code reaches as attributes (keras.datasets.mnist, keras.applications.VGG16,
# keras.preprocessing.image): imported on first use, so ``import scratchnet`` stays quick.
_LAZY_MODULES = ("applications", "datasets", "preprocessing", "saving", "onnx_export", "ops", "distributed",
                 "gradients", "visualize")


def __getattr__(name):
    if name in _LAZY_MODULES:
        import importlib
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"scratchnet has no {name!r} (Keras's keras.{name}); it has "
                         f"{', '.join(sorted(set(__all__) | set(_LAZY_MODULES)))}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES))

__all__ = ["activations", "backend", "callbacks", "constraints", "gradcheck", "initializers", "layers", "losses",
           "metrics", "models", "optimizers", "regularizers", "utils", "set_backend", "floatx", "set_floatx",
           "set_random_seed", "Model", "Sequential", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout",
           "Activation", "Input", "TrainingDiverged", "set_num_threads", "get_num_threads",
           "load_model", "ModelFileError",
           "__version__"]
