"""Datasets with Keras's ``load_data()``: ``scratchnet.datasets.mnist``, ``fashion_mnist`` and
``cifar10``, as ``keras.datasets``; each downloaded once (with pooch), checked and cached."""
from . import cifar10, fashion_mnist, mnist

__all__ = ["mnist", "fashion_mnist", "cifar10"]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from ..names import missing
    raise missing("datasets", name, __all__)
