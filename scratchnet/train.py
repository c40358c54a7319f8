"""Train the two reference models from the command line.

    python -m scratchnet.train mnist
    python -m scratchnet.train catsdogs --data ../shared/data/catsdogs-128.tar

Every run has a folder (``--out``, default runs/EXPERIMENT-TIMESTAMP) that receives a
checkpoint after each epoch, the final model, the history as JSON and PNG plots.
``--resume`` continues from the last checkpoint; Ctrl-C saves the weights and says how
to resume.
"""
import argparse
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from . import backend, callbacks, config, layers, models, optimizers, plots
from .saving import ModelFileError, atomic_write, load_model, save_model

CHECKPOINT = "checkpoint.npz"
MISCLASSIFIED_SHOWN = 25   # examples in misclassified.png
FINAL_MODEL = "model.npz"
CATSDOGS_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                             shear_range=0.2, zoom_range=0.2, horizontal_flip=True)


def mnist_model():
    """The seed tutorial's 3-conv MNIST classifier (93,322 parameters)."""
    return models.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def catsdogs_model(size=150):
    """The seed tutorial's 4-conv cats/dogs classifier (3,453,121 parameters at 150x150)."""
    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(size, size, 3)))
    model.add(layers.MaxPooling2D((2, 2)))
    for filters in (64, 128, 128):
        model.add(layers.Conv2D(filters, (3, 3), activation="relu"))
        model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    model.add(layers.Dense(512, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    return model


class Checkpoint(callbacks.Callback):
    """Saves model, optimizer, history and random state atomically after every epoch."""

    def __init__(self, run_dir, extra, previous_history, previous_seconds=0.0):
        self.path = Path(run_dir) / CHECKPOINT
        self.extra = extra
        self.previous = previous_history
        self.previous_seconds = previous_seconds   # training time before a resume
        self.start = time.perf_counter()
        self.last_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        history = merge_history(self.previous, self.model.history.history)
        seconds = self.previous_seconds + time.perf_counter() - self.start
        save_model(self.model, self.path, extra={**self.extra, "epoch": epoch + 1, "history": history,
                                                 "rng": config.rng().bit_generator.state, "seconds": seconds})
        self.last_epoch = epoch + 1


def merge_history(previous, current):
    merged = {k: list(v) for k, v in (previous or {}).items()}
    for key, values in current.items():
        merged.setdefault(key, []).extend(values)
    return merged


# ----- experiments -------------------------------------------------------------------------------
def mnist_data(args):
    from .datasets import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data(args.data)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_train = (x_train.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    return x_train, y_train, x_test, y_test


def run_mnist(args, model, initial_epoch, hooks):
    x_train, y_train, x_test, y_test = mnist_data(args)
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, initial_epoch=initial_epoch,
              validation_data=(x_test, y_test), callbacks=hooks)
    probabilities = model.predict(x_test, batch_size=500, verbose=0)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_test)[:MISCLASSIFIED_SHOWN]
    return {"y": y_test, "predicted": predicted, "class_names": [str(d) for d in range(10)],
            "misclassified": {"x": x_test[wrong], "y": y_test[wrong], "predicted": predicted[wrong],
                              "confidence": probabilities[wrong].max(axis=1)},
            "preprocessing": {"rescale": 1 / 255, "color_mode": "grayscale"}}


def catsdogs_iterators(args):
    from .datasets import catsdogs
    from .preprocessing.image import ImageDataGenerator
    if args.data is None:
        raise FileNotFoundError("catsdogs needs --data: a folder with train/ and validation/ class "
                                "folders, or a tar/zip of the photos")
    root = catsdogs.prepare(args.data)
    size = (args.image_size, args.image_size)
    train_gen = ImageDataGenerator(rescale=1 / 255, **(CATSDOGS_AUGMENTATION if args.augment else {}))
    val_gen = ImageDataGenerator(rescale=1 / 255)
    seed = args.seed if args.seed is not None else int(config.rng().integers(2**31))
    train = train_gen.flow_from_directory(root / "train", target_size=size, batch_size=args.batch_size,
                                          class_mode="binary", seed=seed, workers=args.workers)
    val = val_gen.flow_from_directory(root / "validation", target_size=size, batch_size=args.batch_size,
                                      class_mode="binary", shuffle=False, workers=args.workers)
    return train, val


def run_catsdogs(args, model, initial_epoch, hooks):
    train, val = catsdogs_iterators(args)
    train.set_epoch(initial_epoch)
    steps = len(train) if not args.limit else math.ceil(min(args.limit, train.samples) / args.batch_size)
    try:
        model.fit(train, steps_per_epoch=steps, epochs=args.epochs, initial_epoch=initial_epoch,
                  validation_data=val, validation_steps=len(val), callbacks=hooks)
        val.reset()
        probabilities, labels, examples = [], [], []
        for _ in range(len(val)):
            xb, yb = next(val)
            p = model.predict(xb, batch_size=len(xb), verbose=0)[:, 0]
            probabilities.append(p)
            labels.append(yb.astype(int))
            # keep images only where they are needed: the misclassified ones, for the plot
            examples += [(x, label, p_k) for x, label, p_k in zip(xb, yb.astype(int), p)
                         if (p_k > 0.5) != label][:MISCLASSIFIED_SHOWN - len(examples)]
    finally:
        skipped = train.skipped + val.skipped
        train.close()
        val.close()
    if skipped:
        print(f"skipped {len(skipped)} unreadable image(s) (named in the warnings above)")
    p = np.concatenate(probabilities)
    predicted = (p > 0.5).astype(int)
    names = sorted(train.class_indices, key=train.class_indices.get)
    wrong_y = np.array([e[1] for e in examples], int)
    wrong_p = np.array([e[2] for e in examples])
    return {"y": np.concatenate(labels), "predicted": predicted, "class_names": names,
            "misclassified": {"x": np.array([e[0] for e in examples]), "y": wrong_y, "predicted": 1 - wrong_y,
                              "confidence": np.maximum(wrong_p, 1 - wrong_p)},
            "preprocessing": {"rescale": 1 / 255, "color_mode": "rgb"}}


EXPERIMENTS = {
    "mnist": (lambda args: mnist_model(), run_mnist, "adam"),
    "catsdogs": (lambda args: catsdogs_model(args.image_size), run_catsdogs, "rmsprop"),
}
DEFAULTS = {"mnist": {"lr": 1e-3, "epochs": 5}, "catsdogs": {"lr": 1e-4, "epochs": 30}}


# ----- the command ---------------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scratchnet.train", description="Train one of the reference models, Keras style.",
        epilog="Each run's folder gets checkpoint.npz after every epoch, model.npz, history.json and "
               "PNG plots (learning curves, confusion matrix, misclassified examples).")
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS),
                        help="mnist: the 3-conv digit classifier; catsdogs: the 4-conv photo classifier")
    parser.add_argument("--data", default=None,
                        help="mnist: folder with the four IDX files (default: the cache, downloaded on "
                             "first use); catsdogs: folder with train/ and validation/, or a tar/zip")
    parser.add_argument("--epochs", type=int, default=None, help="epochs to train (mnist 5, catsdogs 30)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per step (default 32)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (mnist: Adam 1e-3; catsdogs: RMSprop 1e-4)")
    parser.add_argument("--image-size", type=int, default=150, help="catsdogs: images are resized to "
                        "SIZE x SIZE (default 150)")
    parser.add_argument("--augment", action="store_true", help="catsdogs: random rotations, shifts, "
                        "shear, zoom and flips of the training images (the seed's settings)")
    parser.add_argument("--backend", default="cpu", choices=backend.available(),
                        help="kernels: cpu (Numba, default) or numpy (the reference)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for kernels and BLAS (default: NUMBA_NUM_THREADS or all cores)")
    parser.add_argument("--workers", type=int, default=2, help="catsdogs: image-decoding threads (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for weights, shuffling and "
                        "augmentation: the same seed gives the same history")
    parser.add_argument("--limit", type=int, default=None, help="use only N training samples per epoch")
    parser.add_argument("--out", default=None, help="run folder (default runs/EXPERIMENT-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (or the newest runs/EXPERIMENT-*) from its last checkpoint")
    args = parser.parse_args(argv)
    for key, value in DEFAULTS[args.experiment].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for name in ("epochs", "batch_size", "image_size", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def run_folder(args):
    if args.out:
        return Path(args.out)
    if args.resume:
        runs = sorted(Path("runs").glob(f"{args.experiment}-*"))
        if not runs:
            raise FileNotFoundError(f"--resume: no runs/{args.experiment}-* folder to resume; pass --out")
        return runs[-1]
    return Path("runs") / f"{args.experiment}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _stop_like_ctrl_c(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_like_ctrl_c)   # `kill` saves a checkpoint too
    try:
        backend.set_backend(args.backend, threads=args.threads)
        return train(args)
    except (FileNotFoundError, ValueError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def train(args):
    build, run, optimizer_name = EXPERIMENTS[args.experiment]
    out = run_folder(args)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("resume", "out")}
    previous, initial_epoch = {}, 0
    if args.resume:
        checkpoint = out / CHECKPOINT
        if not checkpoint.exists():
            raise FileNotFoundError(f"--resume: {checkpoint} does not exist")
        model = load_model(checkpoint)
        extra = model.saved_extra
        initial_epoch, previous = int(extra["epoch"]), extra.get("history", {})
        config.rng().bit_generator.state = extra["rng"]
        print(f"Resuming {out} after epoch {initial_epoch} of {args.epochs}")
        if initial_epoch >= args.epochs:
            print("no epochs left to train: evaluating and writing the run's model and plots")
    else:
        if args.seed is not None:
            config.set_random_seed(args.seed)
        model = build(args)
        optimizer = optimizers.Adam(args.lr) if optimizer_name == "adam" else optimizers.RMSprop(args.lr)
        loss = "sparse_categorical_crossentropy" if args.experiment == "mnist" else "binary_crossentropy"
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        model.summary()
    checkpoint = Checkpoint(out, {"experiment": args.experiment, "settings": settings}, previous,
                            model.saved_extra.get("seconds", 0.0) if args.resume else 0.0)
    start = time.perf_counter()
    try:
        result = run(args, model, initial_epoch, [checkpoint])
    except KeyboardInterrupt:
        interrupted = out / "interrupted.npz"
        save_model(model, interrupted, extra={"experiment": args.experiment, "settings": settings})
        done = checkpoint.last_epoch or initial_epoch
        print(f"\nInterrupted. The weights at this moment are in {interrupted}; the last complete epoch "
              f"({done}) is in {out / CHECKPOINT}.\nResume with: python -m scratchnet.train "
              f"{args.experiment} --out {out} --resume" + (f" --data {args.data}" if args.data else ""))
        return 130
    seconds = time.perf_counter() - start + (model.saved_extra.get("seconds", 0) if args.resume else 0)
    history = merge_history(previous, model.history.history if model.history else {})
    final = out / FINAL_MODEL
    save_model(model, final, extra={"experiment": args.experiment, "settings": settings,
                                    "class_names": result["class_names"], **result["preprocessing"]})
    record = {"settings": settings, "history": history, "seconds": seconds,
              "accuracy": float(np.mean(result["predicted"] == result["y"]))}
    atomic_write(out / "history.json", lambda f: f.write(json.dumps(record, indent=1).encode()))
    names = result["class_names"]
    wrong = result["misclassified"]
    paths = [plots.plot_history(history, out / "history.png", title=f"{args.experiment}"),
             plots.plot_confusion_matrix(result["y"], result["predicted"], names, out / "confusion.png"),
             plots.plot_misclassified(wrong["x"], wrong["y"], wrong["predicted"], names, out / "misclassified.png",
                                      probabilities=wrong["confidence"])]
    split = "test" if args.experiment == "mnist" else "validation"
    print(f"{split} accuracy: {record['accuracy']:.4f} ({seconds:.0f} s of training)")
    print(f"saved the model to {final}, checkpoints to {out / CHECKPOINT}")
    print("plots: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
