"""Training a model: what compile decides (``CompileState``), the steps and the entry
points a Model inherits (``Trainer``), the fit / evaluate / predict loops, the data they
take (``inputs``, ``data_adapter``), callbacks, and the seam through which data-parallel
training changes the loop (``strategy``). Nothing here imports ``scratchnet.distributed``."""
from .compile_state import CompileState
from .results import StepResult, TrainingDiverged
from .strategy import LocalStrategy, StepShare, strategy_of
from .trainer import Trainer

__all__ = ["Trainer", "CompileState", "StepResult", "TrainingDiverged", "LocalStrategy", "StepShare",
           "strategy_of"]
