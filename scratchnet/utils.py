"""Small helpers with Keras's names."""
from .config import set_random_seed
from .layers.base import clear_session

__all__ = ["set_random_seed", "clear_session"]
