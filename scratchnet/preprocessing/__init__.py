"""Data preprocessing with Keras's names: ``scratchnet.preprocessing.image``."""
from . import image
from .image_dataset import image_dataset_from_directory

__all__ = ["image", "image_dataset_from_directory"]
