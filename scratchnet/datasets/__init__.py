"""Datasets with Keras's ``load_data()``: ``scratchnet.datasets.mnist``, ``fashion_mnist`` and
``cifar10``, as ``keras.datasets``; each downloaded once (with pooch), checked and cached."""
from . import cifar10, fashion_mnist, mnist

__all__ = ["mnist", "fashion_mnist", "cifar10"]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"scratchnet has no datasets.{name}; its datasets are {', '.join(__all__)}")
