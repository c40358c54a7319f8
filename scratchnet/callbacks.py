"""Moved to scratchnet.training.callbacks; this name stays as the same module object, so old
imports (and patches made through them) keep working."""
import sys

from .training import callbacks

sys.modules[__name__] = callbacks
