"""Moved to ``scratchnet.saving.onnx_export`` (with ``onnx_builder`` and ``onnx_layers``); this
module keeps the old import path working."""
from .saving.onnx_builder import *      # noqa: F401,F403
from .saving.onnx_layers import *       # noqa: F401,F403
from .saving.onnx_export import *       # noqa: F401,F403
