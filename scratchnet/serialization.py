"""Moved to ``scratchnet.saving.architecture``; this module keeps the old import path working."""
from .saving.architecture import (ArchitectureError, build_from_config, layer_to_spec, model_from_spec,
                                  model_to_spec, unknown_layer_types, weight_names)

__all__ = ["ArchitectureError", "model_to_spec", "model_from_spec", "weight_names"]
