"""The command line: the top floor of scratchnet. It uses the engine; nothing in the engine
imports it. ``python -m scratchnet.train`` and ``python -m scratchnet.predict`` start here.

    train.py            main(): the steps of a training run, in order
    parser.py           the flags of python -m scratchnet.train (argparse)
    settings.py         a run's settings: which there are, their defaults, checking them
    experiments.py      the reference models (mnist_model, ...) and the experiments
    segment.py          the segment experiment: a U-Net on digit scenes (segment_model, run_segment)
    data.py             loading each experiment's data, and its fingerprint
    transfer.py         --from: a saved model's base with a fresh head, --freeze-base
    runs.py             the run folder: new or resumed, the per-epoch checkpoint
    distributed_run.py  --distributed: what the ranks of an MPI job agree on
    report.py           what a run writes and prints at its end (or when interrupted)
    plots.py            the PNG plots of a run
    predict.py          python -m scratchnet.predict: classify image files (or label their pixels)
    errors.py           every error on one line, without a traceback
"""
from .errors import OneLineParser, UsageError, one_line

__all__ = ["OneLineParser", "UsageError", "one_line"]
