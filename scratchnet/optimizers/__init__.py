"""Optimizers with Keras 3's update rules, defaults and options (learning-rate schedules,
clipnorm / global_clipnorm / clipvalue, weight_decay, loss_scale_factor); ``schedules`` holds
the learning-rate schedules, as keras.optimizers.schedules."""
from . import schedules
from .base import Optimizer
from .rules import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop

_CLASSES = {cls.__name__: cls for cls in (SGD, RMSprop, Adam, AdamW, Adamax, Nadam, Adagrad, Adadelta)}
_BY_NAME = {name.lower(): cls for name, cls in _CLASSES.items()}

__all__ = ["Optimizer", "schedules", "get", "get_class", *_CLASSES]


def get(identifier):
    """An Optimizer from a name ('sgd', 'rmsprop', 'adam', 'adamw', 'adamax', 'nadam',
    'adagrad', 'adadelta'; any case), a class, or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)}, an Optimizer "
                     f"class or an instance")


def get_class(class_name):
    """The optimizer class called ``class_name`` (used when loading model files)."""
    if class_name not in _CLASSES:
        raise ValueError(f"unknown optimizer class {class_name!r}; expected one of {sorted(_CLASSES)}")
    return _CLASSES[class_name]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from ..names import missing
    raise missing("optimizers", name, _CLASSES)
