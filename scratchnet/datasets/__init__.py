"""Datasets: ``scratchnet.datasets.mnist.load_data()``, as ``keras.datasets.mnist``."""
from . import mnist

__all__ = ["mnist"]
