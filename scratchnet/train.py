"""``python -m scratchnet.train``: the training command lives in ``scratchnet.cli`` (its steps
in ``scratchnet.cli.train``, the reference models in ``scratchnet.cli.experiments``); this
module keeps the old name and the names imported from it."""
import sys

from .cli.experiments import CATSDOGS_MODELS, catsdogs_model, mnist_model, resnet_model
from .cli.runs import Checkpoint
from .cli.train import main

__all__ = ["CATSDOGS_MODELS", "Checkpoint", "catsdogs_model", "main", "mnist_model", "resnet_model"]

if __name__ == "__main__":
    sys.exit(main())
