"""The command line: the top floor of scratchnet. It uses the engine; nothing in the engine
imports it. ``python -m scratchnet.train`` and ``python -m scratchnet.predict`` start here.

    plots.py            the PNG plots of a run
    predict.py          python -m scratchnet.predict: classify image files
    errors.py           every error on one line, without a traceback
"""
from .errors import OneLineParser, UsageError, one_line

__all__ = ["OneLineParser", "UsageError", "one_line"]
