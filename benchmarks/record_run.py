"""Copy a training run's outcome (from its history.json) into benchmarks/RESULTS.md.

    python -m scratchnet.train mnist --seed 0 --out runs/mnist
    python benchmarks/record_run.py runs/mnist

The section names the training command (rebuilt from the run's settings), the schedule
and the rule that picks the reported figure, which is always the same: the accuracy on
the held-out split of the model after the run's last epoch, measured by the training
command itself. No epoch is picked by looking at that split. If the number of epochs
was changed while the run went on (``--resume --epochs``), the section says so. The
per-epoch history and seconds follow. Everything here comes from history.json; nothing
is typed in, except a ``--note`` (which the section's Command line then shows)."""
import argparse
import json
import os
from pathlib import Path

from results import write_section

ROOT = Path(__file__).resolve().parents[1]

DEFAULTS = {"model": "seed", "batch_size": 32, "lr": None, "image_size": 150, "augment": False, "backend": "cpu",
            "threads": None, "workers": 2, "seed": None, "limit": None, "data": None, "from": None,
            "freeze_base": None, "scenes": 5000}
CATSDOGS_ONLY = ("model", "image_size", "augment", "workers")


def train_command(settings):
    parts = ["python -m scratchnet.train", settings["experiment"], f"--epochs {settings['epochs']}"]
    for key, default in DEFAULTS.items():
        value = settings.get(key)
        if key in ("data", "from") and value is not None:   # as seen from the repository, not this machine's root
            value = os.path.relpath(value, ROOT)
        if settings["experiment"] != "catsdogs" and key in CATSDOGS_ONLY or \
                settings["experiment"] != "segment" and key == "scenes":
            continue
        if key == "lr" or (value is not None and value != default):
            flag = "--" + key.replace("_", "-")
            parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def body(record, note=""):
    settings, history = record["settings"], record["history"]
    experiment = settings["experiment"]
    split = "test" if experiment in ("mnist", "segment") else "validation"
    acc_key = "accuracy" if "accuracy" in history else "acc"
    if experiment == "segment":
        return segment_body(record, note, split)
    epochs = len(history["loss"])
    seconds = record.get("epoch_seconds") or [None] * epochs
    schedule = record.get("schedule") or [settings["epochs"]]
    rows = "\n".join(f"| {e + 1} | {history['loss'][e]:.4f} | {history[acc_key][e]:.4f} | "
                     f"{history['val_loss'][e]:.4f} | {history['val_' + acc_key][e]:.4f} | "
                     f"{'-' if seconds[e] is None else f'{seconds[e]:.0f}'} |" for e in range(epochs))
    size = "" if experiment == "mnist" else f", images {settings['image_size']}x{settings['image_size']}"
    if len(set(schedule)) == 1:
        plan = f"Schedule: {schedule[0]} epochs, fixed when the run started."
    else:
        plan = ("**The schedule changed while the run went on**: epochs " + " -> ".join(map(str, schedule))
                + " (set again with --resume --epochs).")
    return f"""## Training run: {experiment}

Training command, with every setting the run recorded (so it repeats the run): `{train_command(settings)}`{size}.
{plan} Reported: the {split} accuracy of the model after the last epoch ({epochs}), measured by the
training command on all {split} images; no epoch was chosen by looking at it.
**{split.capitalize()} accuracy after {epochs} epochs: {record['accuracy']:.4f}**;
{record['seconds'] / 60:.1f} minutes of training (the sum of the epochs' wall times below, each
including its end-of-epoch evaluation).
{note}

| epoch | loss | accuracy | val_loss | val_accuracy | seconds |
|---|---|---|---|---|---|
{rows}
"""


def segment_body(record, note, split):
    """The segment run: the reported figure is the test scenes' mean IoU after the last epoch
    (pixel accuracy beside it), both measured by the training command on every test scene."""
    settings, history = record["settings"], record["history"]
    epochs = len(history["loss"])
    seconds = record.get("epoch_seconds") or [None] * epochs
    rows = "\n".join(f"| {e + 1} | {history['loss'][e]:.4f} | {history['accuracy'][e]:.4f} | "
                     f"{history['mean_io_u'][e]:.4f} | {history['val_loss'][e]:.4f} | "
                     f"{history['val_accuracy'][e]:.4f} | {history['val_mean_io_u'][e]:.4f} | "
                     f"{'-' if seconds[e] is None else f'{seconds[e]:.0f}'} |" for e in range(epochs))
    schedule = record.get("schedule") or [settings["epochs"]]
    plan = (f"Schedule: {schedule[0]} epochs, fixed when the run started." if len(set(schedule)) == 1 else
            "**The schedule changed while the run went on**: epochs " + " -> ".join(map(str, schedule)) + ".")
    return f"""## Training run: segment

Training command, with every setting the run recorded (so it repeats the run): `{train_command(settings)}`.
{plan} Reported: the mean IoU over the 11 classes (Keras's MeanIoU) of the test scenes, made from MNIST's test
digits only, by the model after the last epoch ({epochs}), measured by the training command on all test scenes;
no epoch was chosen by looking at it.
**Test mean IoU after {epochs} epochs: {record['mean_iou']:.4f}** (pixel accuracy {record['accuracy']:.4f});
{record['seconds'] / 60:.1f} minutes of training (the sum of the epochs' wall times below, each including its
end-of-epoch evaluation).
{note}

| epoch | loss | accuracy | mean_io_u | val_loss | val_accuracy | val_mean_io_u | seconds |
|---|---|---|---|---|---|---|---|
{rows}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the run folder (with history.json)")
    parser.add_argument("--note", default="", help="a sentence to add (e.g. what else ran meanwhile)")
    parser.add_argument("--section", default=None, help="RESULTS.md section (default run-EXPERIMENT)")
    args = parser.parse_args()
    record = json.loads((Path(args.run) / "history.json").read_text())
    text = body(record, args.note)
    write_section(args.section or f"run-{record['settings']['experiment']}", text)
    print(text)


if __name__ == "__main__":
    main()
