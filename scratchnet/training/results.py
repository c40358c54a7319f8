"""What a step gives its loop, and the error a loss that stops being finite raises."""
from typing import NamedTuple


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the step that produced it was not applied."""


class StepResult(NamedTuple):
    """What a train_step / test_step gives the loop: the step's loss (train_step: the mean
    over its samples, a float; test_step: their sum, a 0-d array on the device), the model's
    outputs (None where this process had no samples), and how many samples the loss is over
    (the global batch's, in data-parallel training)."""
    loss: object
    outputs: object
    samples: int
