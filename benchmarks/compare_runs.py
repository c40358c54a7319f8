"""Two training runs side by side, at equal training time, from their history.json files.

    python benchmarks/compare_runs.py ../runs/catsdogs-128 ../runs/catsdogs-resnet --section catsdogs-resnet-vs-seed

The rule does not look at the accuracies: each run is reported by the held-out accuracy
after its last epoch (as record_run.py does), and "at equal time" means the shorter run's
total training time T: each run is then reported by the accuracy after the last epoch it
had finished within T."""
import argparse
import json
from itertools import accumulate
from pathlib import Path

from record_run import train_command
from results import write_section


def load(folder):
    record = json.loads((Path(folder) / "history.json").read_text())
    history = record["history"]
    key = "val_accuracy" if "val_accuracy" in history else "val_acc"
    minutes = [s / 60 for s in accumulate(record["epoch_seconds"])]
    return {"name": Path(folder).name, "command": train_command(record["settings"]),
            "accuracy": history[key], "minutes": minutes}


def at_time(run, limit):
    """(epoch, accuracy) of the last epoch finished within ``limit`` minutes, or (0, None)."""
    done = [e for e, m in enumerate(run["minutes"]) if m <= limit + 1e-9]
    return (done[-1] + 1, run["accuracy"][done[-1]]) if done else (0, None)


def body(runs, note=""):
    limit = min(run["minutes"][-1] for run in runs)
    lines = ["## Training runs compared at equal time", "",
             "Each run reports the validation accuracy after its last epoch (its schedule was fixed before it "
             f"started); at equal time T (the shorter run's total training time, here {limit:.1f} minutes), the "
             "accuracy after the last epoch it had finished by T. Times are the sums of the epochs' wall times, "
             "each including its end-of-epoch evaluation.", ""]
    for run in runs:
        epoch, acc = at_time(run, limit)
        lines.append(f"- `{run['name']}`: `{run['command']}`: **{run['accuracy'][-1]:.4f}** after "
                     f"{len(run['accuracy'])} epochs in {run['minutes'][-1]:.1f} minutes; at T: "
                     + (f"**{acc:.4f}** (epoch {epoch})." if acc is not None else "no epoch finished."))
    if note:
        lines += ["", note]
    lines += ["", "| epoch | " + " | ".join(f"{r['name']} minutes | {r['name']} val_accuracy" for r in runs) + " |",
              "|---|" + "---|---|" * len(runs)]
    for e in range(max(len(r["accuracy"]) for r in runs)):
        cells = [(f"{r['minutes'][e]:.1f}", f"{r['accuracy'][e]:.4f}") if e < len(r["accuracy"]) else ("-", "-")
                 for r in runs]
        lines.append(f"| {e + 1} | " + " | ".join(f"{m} | {a}" for m, a in cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs=2, help="two run folders (each with history.json)")
    parser.add_argument("--section", required=True, help="RESULTS.md section to write")
    parser.add_argument("--note", default="", help="a sentence to add (e.g. what else ran meanwhile)")
    args = parser.parse_args()
    text = body([load(folder) for folder in args.runs], args.note)
    write_section(args.section, text)
    print(text)


if __name__ == "__main__":
    main()
