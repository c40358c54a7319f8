"""Data preprocessing with Keras's names: ``scratchnet.preprocessing.image``."""
from . import image

__all__ = ["image"]
