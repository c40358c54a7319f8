"""What a training run leaves at its end: the model (model.npz and model.keras),
history.json and the plots in its folder, and a few lines on stdout; or, when it is
interrupted, the weights of that moment and how to go on."""
import json
import shlex

import numpy as np

from ..saving import atomic_write, save_model
from . import plots
from .runs import CHECKPOINT, FINAL_MODEL, KERAS_MODEL, merge_history
from .settings import start_command


def write_run(out, settings, model, result, progress, epoch_seconds):
    """Write the final model, history.json and the PNG plots into ``out``; returns
    (the record in history.json, the plots' paths). ``epoch_seconds``: this process's epochs."""
    epoch_seconds = progress.epoch_seconds + epoch_seconds
    history = merge_history(progress.history, model.history.history if model.history else {})
    extra = {"experiment": settings["experiment"], "settings": settings, "class_names": result["class_names"],
             **result["preprocessing"]}
    save_model(model, out / FINAL_MODEL, extra=extra)
    save_model(model, out / KERAS_MODEL, extra=extra)
    record = {"settings": settings, "history": history, "epoch_seconds": epoch_seconds,
              "seconds": progress.seconds_untimed + sum(s for s in epoch_seconds if s is not None),
              "schedule": progress.schedule,
              "data_fingerprint": progress.data_fingerprint,
              "accuracy": float(np.mean(result["predicted"] == result["y"]))}
    if "mean_iou" in result:      # a segmentation run: accuracy is per pixel, and mean IoU over the classes
        record["mean_iou"] = result["mean_iou"]
    atomic_write(out / "history.json", lambda f: f.write(json.dumps(record, indent=1).encode()))
    names = result["class_names"]
    paths = [plots.plot_history(history, out / "history.png", title=settings["experiment"]),
             plots.plot_confusion_matrix(np.ravel(result["y"]), np.ravel(result["predicted"]), names,
                                         out / "confusion.png")]
    if "scenes" in result:
        scenes = result["scenes"]
        paths.append(plots.plot_masks(scenes["x"], scenes["y"], scenes["predicted"], names, out / "masks.png"))
    else:
        wrong = result["misclassified"]
        paths.append(plots.plot_misclassified(wrong["x"], wrong["y"], wrong["predicted"], names,
                                              out / "misclassified.png", probabilities=wrong["confidence"]))
    return record, paths


def print_summary(out, held_out, record, paths):
    """The run's last lines: its accuracy on the ``held_out`` split, and where its files are."""
    if "mean_iou" in record:
        print(f"{held_out} pixel accuracy: {record['accuracy']:.4f}, mean IoU: {record['mean_iou']:.4f} "
              f"({record['seconds']:.0f} s of training)")
    else:
        print(f"{held_out} accuracy: {record['accuracy']:.4f} ({record['seconds']:.0f} s of training)")
    print(f"saved the model to {out / FINAL_MODEL} (and for Keras to {out / KERAS_MODEL}), checkpoints to "
          f"{out / CHECKPOINT}")
    print("plots: " + ", ".join(str(p) for p in paths))


def interrupted(out, settings, model, done, created):
    """After Ctrl-C: keep the weights of this moment and say how to resume (``done``: the
    last complete epoch); before any checkpoint, keep nothing and say how to start again
    (removing ``out`` if this run ``created`` it and it is still empty). Returns 130."""
    checkpoint = out / CHECKPOINT
    if not checkpoint.exists():   # not one epoch done: nothing to resume, nothing kept
        if created and not any(out.iterdir()):
            out.rmdir()
        print(f"\nInterrupted before the first epoch ended; nothing was saved. Start again with: "
              f"{start_command(settings, out)}")
        return 130
    saved = out / "interrupted.npz"
    save_model(model, saved, extra={"experiment": settings["experiment"], "settings": settings})
    print(f"\nInterrupted. The weights at this moment are in {saved}; the last complete epoch "
          f"({done}) is in {checkpoint}.\nResume with: python -m scratchnet.train "
          f"{settings['experiment']} --out {shlex.quote(str(out))} --resume")
    return 130
