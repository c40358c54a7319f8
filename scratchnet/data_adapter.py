"""Moved to scratchnet.training.data_adapter; this name stays as the same module object, so old
imports (and patches made through them) keep working."""
import sys

from .training import data_adapter

sys.modules[__name__] = data_adapter
