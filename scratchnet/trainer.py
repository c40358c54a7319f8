"""Moved to scratchnet.training; the old names stay importable from here."""
from .training import StepResult, Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged", "StepResult"]
