"""The plots of a run live in ``scratchnet.cli.plots``; this module keeps the old import path."""
from .cli.plots import confusion_matrix, plot_confusion_matrix, plot_history, plot_misclassified

__all__ = ["confusion_matrix", "plot_confusion_matrix", "plot_history", "plot_misclassified"]
