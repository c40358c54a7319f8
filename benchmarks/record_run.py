"""Copy a training run's outcome (from its history.json) into benchmarks/RESULTS.md.

    python -m scratchnet.train mnist --seed 0 --out runs/mnist
    python benchmarks/record_run.py runs/mnist

The section names the training command (rebuilt from the run's settings), the
accuracy on the held-out split, the seconds of training and the per-epoch history."""
import argparse
import json
from pathlib import Path

from results import write_section


def train_command(settings):
    parts = ["python -m scratchnet.train", settings["experiment"]]
    defaults = {"epochs": None, "batch_size": 32, "lr": None, "image_size": 150, "augment": False,
                "backend": "cpu", "threads": None, "workers": 2, "seed": None, "limit": None, "data": None}
    for key, default in defaults.items():
        value = settings.get(key)
        if key in ("epochs", "lr") or (value is not None and value != default):
            flag = "--" + key.replace("_", "-")
            parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the run folder (with history.json)")
    parser.add_argument("--note", default="", help="a sentence to add (e.g. what else ran meanwhile)")
    parser.add_argument("--section", default=None, help="RESULTS.md section (default run-EXPERIMENT)")
    args = parser.parse_args()
    record = json.loads((Path(args.run) / "history.json").read_text())
    settings, history = record["settings"], record["history"]
    experiment = settings["experiment"]
    split = "test" if experiment == "mnist" else "validation"
    acc_key = "accuracy" if "accuracy" in history else "acc"
    rows = "\n".join(f"| {e + 1} | {history['loss'][e]:.4f} | {history[acc_key][e]:.4f} | "
                     f"{history['val_loss'][e]:.4f} | {history['val_' + acc_key][e]:.4f} |"
                     for e in range(len(history["loss"])))
    size = "" if experiment == "mnist" else f", images {settings['image_size']}x{settings['image_size']}"
    body = f"""## Training run: {experiment}

Training command: `{train_command(settings)}`{size}.
**{split.capitalize()} accuracy after {len(history['loss'])} epochs: {record['accuracy']:.4f}**;
{record['seconds'] / 60:.1f} minutes of training (wall time, including the end-of-epoch evaluations).
{args.note}

| epoch | loss | accuracy | val_loss | val_accuracy |
|---|---|---|---|---|
{rows}
"""
    write_section(args.section or f"run-{experiment}", body)
    print(body)


if __name__ == "__main__":
    main()
