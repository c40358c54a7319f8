"""Train the two reference models from the command line.

    python -m scratchnet.train mnist
    python -m scratchnet.train catsdogs --data ../shared/data/catsdogs-128.tar
    python -m scratchnet.train mnist --from runs/m1/model.npz --freeze-base   # transfer learning

Every run has a folder (``--out``, default runs/EXPERIMENT-TIMESTAMP) that receives a
checkpoint after each epoch, the final model, the history as JSON and PNG plots. The
checkpoint records every setting of the run; ``--resume`` restores them all and
continues from the last complete epoch (``--epochs`` may extend the run; any other
setting given again must equal the recorded one). Ctrl-C saves the weights and says how
to resume. Every error is one line on stderr and a non-zero exit.

``--from`` starts from a saved model instead of fresh weights, the way the Keras
transfer-learning tutorial does it: the whole model goes on training when its output fits
the experiment, else its convolutional base (the layers up to and including the last
Flatten or global pooling layer) gets a fresh head like the experiment's own;
``--freeze-base`` freezes that base (``trainable = False``) before compile.

``--distributed`` makes the process one rank of a data-parallel job started by mpiexec:

    mpiexec -n 2 python -m scratchnet.train mnist --distributed --batch-size 32

Each rank trains on its share of every global batch of K x --batch-size samples (the same
run as one process at that batch size and the same --lr); rank 0 alone writes the run
folder, and --resume needs the same number of ranks.
"""
import argparse
import contextlib
import hashlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from . import activations, backend, callbacks, config, distributed, layers, models, optimizers
from .cli import plots
from .cli.errors import OneLineParser, UsageError, one_line
from .datasets.download import DownloadError
from .distributed import DistributedError
from .models import TrainingDiverged
from .saving import ModelFileError, atomic_write, load_model, read_model_file, save_model

CHECKPOINT = "checkpoint.npz"
MISCLASSIFIED_SHOWN = 25   # examples in misclassified.png
FINAL_MODEL = "model.npz"
KERAS_MODEL = "model.keras"      # the same model, for Keras (keras.models.load_model reads it)
CATSDOGS_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                             shear_range=0.2, zoom_range=0.2, horizontal_flip=True)

# Settings that decide what a run computes: restored by --resume, and an error if given
# again with another value. --epochs may be raised on resume to extend the run. The data
# itself is part of the run too: its fingerprint is recorded and must match on resume.
RUN_SETTINGS = ("model", "batch_size", "lr", "image_size", "augment", "seed", "limit", "from", "freeze_base")
# Settings of the process that runs it (same results whatever they are, up to the last
# bits on another backend; the data's location, which may move): restored by --resume
# unless given again.
PROCESS_SETTINGS = ("data", "backend", "threads", "workers")
CATSDOGS_ONLY = ("model", "image_size", "augment", "workers")
DEFAULTS = {
    "mnist": {"lr": 1e-3, "epochs": 5},
    "catsdogs": {"model": "seed", "epochs": 30, "image_size": 150, "augment": False, "workers": 2},
    "all": {"batch_size": 32, "backend": "cpu"},
}
# cats/dogs models: (builder, optimizer, default learning rate, cosine-decay the learning rate?)
CATSDOGS_MODELS = {
    "seed": (lambda size: catsdogs_model(size), "rmsprop", 1e-4, False),
    "resnet": (lambda size: resnet_model(size), "adam", 1e-3, True),
}
# Where a model's convolutional base ends, as in the Keras tutorials: it includes the last of these.
BASE_ENDS = (layers.Flatten, layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)


class QuietExit(Exception):
    """A rank other than 0 ends with rank 0's exit code; rank 0 has said why."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


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


def resnet_model(size=150):
    """A small residual network for the cats/dogs photos, built with the functional API: a
    stride-2 stem and a max-pooling, then three stages of one residual block each (64, 128,
    256 filters; the last two halve the resolution), global average pooling and dropout
    before the sigmoid. Every convolution is followed by BatchNormalization."""
    def conv_bn(x, filters, kernel, strides=1, relu=True):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if relu else x

    def residual_block(x, filters, strides):
        shortcut = x
        if strides != 1 or x.shape[-1] != filters:
            shortcut = conv_bn(x, filters, 1, strides, relu=False)
        y = conv_bn(x, filters, 3, strides)
        y = conv_bn(y, filters, 3, relu=False)
        return layers.ReLU()(layers.Add()([shortcut, y]))

    inputs = layers.Input(shape=(size, size, 3))
    x = conv_bn(inputs, 32, 3, strides=2)
    x = layers.MaxPooling2D(2)(x)
    for filters, strides in ((64, 1), (128, 2), (256, 2)):
        x = residual_block(x, filters, strides)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return models.Model(inputs, outputs, name="resnet")


def cosine_schedule(base_lr, epochs, floor=0.01):
    """Cosine decay from base_lr to floor * base_lr over ``epochs`` epochs (per epoch)."""
    def schedule(epoch, lr):
        progress = min(epoch, max(epochs - 1, 1)) / max(epochs - 1, 1)
        return base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
    return schedule


def catsdogs_min_size():
    """The smallest --image-size the cats/dogs model fits: four 3x3 convs, each pooled by 2."""
    size = 1
    while True:
        s = size
        for _ in range(4):
            s = (s - 2) // 2
        if s >= 1:
            return size
        size += 1


class Checkpoint(callbacks.Callback):
    """Saves model, optimizer, history, timings and random state atomically after every epoch."""

    writes_files = True     # in a job of several ranks, on rank 0 only

    def __init__(self, run_dir, settings, previous):
        self.path = Path(run_dir) / CHECKPOINT
        self.settings = settings
        self.previous = previous      # Progress.as_extra(): what the run did before this process
        self.epoch_seconds = []
        self.last_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self.started)
        # History runs after every other callback (as in Keras): this epoch is in ``logs``, not yet in it
        history = merge_history(merge_history(self.previous["history"], self.model.history.history),
                                {k: [v] for k, v in (logs or {}).items()})
        save_model(self.model, self.path, extra={
            "experiment": self.settings["experiment"], "settings": self.settings, "epoch": epoch + 1,
            "history": history,
            "epoch_seconds": self.previous["epoch_seconds"] + self.epoch_seconds,
            "schedule": self.previous["schedule"], "data_fingerprint": self.previous["data_fingerprint"],
            "seconds_untimed": self.previous["seconds_untimed"], "rng": config.rng().bit_generator.state})
        self.last_epoch = epoch + 1


class FreshEpochs(callbacks.Callback):
    """Starts every epoch at the beginning of that epoch's shuffled order (an epoch cut
    short by --limit would otherwise leave the next one to continue mid-order, which a
    resumed run could not reproduce)."""

    def __init__(self, iterator):
        self.iterator = iterator

    def on_epoch_begin(self, epoch, logs=None):
        self.iterator.set_epoch(epoch)


def merge_history(previous, current):
    merged = {k: list(v) for k, v in (previous or {}).items()}
    for key, values in current.items():
        merged.setdefault(key, []).extend(values)
    return merged


# ----- experiments -------------------------------------------------------------------------------
def mnist_data(settings):
    """(x_train, y_train, x_test, y_test), scaled to [0, 1] as the seed tutorial does."""
    from .datasets import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data(settings["data"])
    if settings["limit"]:
        x_train, y_train = x_train[:settings["limit"]], y_train[:settings["limit"]]
    x_train = (x_train.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    return x_train, y_train, x_test, y_test


def run_mnist(settings, model, data, initial_epoch, hooks, report=True):
    x_train, y_train, x_test, y_test = data
    model.fit(x_train, y_train, batch_size=settings["batch_size"], epochs=settings["epochs"],
              initial_epoch=initial_epoch, validation_data=(x_test, y_test), callbacks=hooks)
    if not report:
        return None
    probabilities = model.predict(x_test, batch_size=500, verbose=0)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_test)[:MISCLASSIFIED_SHOWN]
    return {"y": y_test, "predicted": predicted, "class_names": [str(d) for d in range(10)],
            "misclassified": {"x": x_test[wrong], "y": y_test[wrong], "predicted": predicted[wrong],
                              "confidence": probabilities[wrong].max(axis=1)},
            "preprocessing": {"rescale": 1 / 255, "color_mode": "grayscale"}}


def catsdogs_iterators(settings):
    """(train, validation) DirectoryIterators over the prepared photos."""
    from .datasets import catsdogs
    from .preprocessing.image import ImageDataGenerator
    if settings["data"] is None:
        raise UsageError("catsdogs needs --data: a folder with train/ and validation/ class "
                         "folders, or a tar/zip of the photos")
    root = catsdogs.prepare(settings["data"])
    size = (settings["image_size"], settings["image_size"])
    train_gen = ImageDataGenerator(rescale=1 / 255, **(CATSDOGS_AUGMENTATION if settings["augment"] else {}))
    val_gen = ImageDataGenerator(rescale=1 / 255)
    train = train_gen.flow_from_directory(root / "train", target_size=size, batch_size=settings["batch_size"],
                                          class_mode="binary", seed=settings["seed"],
                                          workers=settings["workers"])
    try:
        val = val_gen.flow_from_directory(root / "validation", target_size=size,
                                          batch_size=settings["batch_size"], class_mode="binary",
                                          shuffle=False, workers=settings["workers"])
    except BaseException:
        train.close()
        raise
    return train, val


def run_catsdogs(settings, model, data, initial_epoch, hooks, report=True):
    train, val = data
    limit = settings["limit"]
    global_batch = settings["batch_size"] * settings.get("ranks", 1)
    steps = len(train) if not limit else math.ceil(min(limit, train.samples) / global_batch)
    model.fit(train, steps_per_epoch=steps, epochs=settings["epochs"], initial_epoch=initial_epoch,
              validation_data=val, validation_steps=len(val), callbacks=[FreshEpochs(train)] + hooks)
    if not report:
        return None
    val.shard(0, 1)          # the report covers every validation photo (also resets it)
    probabilities, labels, examples = [], [], []
    for _ in range(len(val)):
        xb, yb = next(val)
        p = model.predict(xb, batch_size=len(xb), verbose=0)[:, 0]
        probabilities.append(p)
        labels.append(yb.astype(int))
        # keep images only where they are needed: the misclassified ones, for the plot
        examples += [(x, label, p_k) for x, label, p_k in zip(xb, yb.astype(int), p)
                     if (p_k > 0.5) != label][:MISCLASSIFIED_SHOWN - len(examples)]
    skipped = train.skipped + val.skipped
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


def close_catsdogs(data):
    for iterator in data:
        iterator.close()


def arrays_fingerprint(data):
    """What MNIST data a run trains and tests on: a digest of its arrays."""
    digest = hashlib.sha256()
    for array in data:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def photos_fingerprint(data):
    """What photos a run trains and validates on: a digest of their names and sizes."""
    digest = hashlib.sha256()
    for iterator in data:
        for name in iterator.filenames:
            digest.update(f"{name}\0{(iterator.directory / name).stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class Experiment:
    """How the command line runs one reference experiment. The functions are looked up
    when called (the lambdas below), so a test can swap one."""
    build: object            # settings -> uncompiled model
    load_data: object        # settings -> data (loaded before any model is built)
    fingerprint: object      # data -> str: what the run is trained on
    run: object              # (settings, model, data, initial_epoch, callbacks) -> results
    close: object            # data -> None
    optimizer: str
    loss: str
    held_out: str            # the split the reported accuracy is measured on


EXPERIMENTS = {
    "mnist": Experiment(lambda s: mnist_model(), lambda s: mnist_data(s), lambda d: arrays_fingerprint(d),
                        lambda *a: run_mnist(*a), lambda d: None, "adam", "sparse_categorical_crossentropy",
                        "test"),
    "catsdogs": Experiment(lambda s: CATSDOGS_MODELS[s["model"]][0](s["image_size"]), lambda s: catsdogs_iterators(s),
                           lambda d: photos_fingerprint(d), lambda *a: run_catsdogs(*a),
                           lambda d: close_catsdogs(d), "rmsprop", "binary_crossentropy", "validation"),
}


# ----- starting from a saved model (--from) -------------------------------------------------------
def input_shape_for(settings):
    """The shape of one input image of the experiment."""
    if settings["experiment"] == "mnist":
        return (28, 28, 1)
    return (settings["image_size"], settings["image_size"], 3)


def load_source(settings, given):
    """The model --from names, read with load_model (so any file it reads), its input shape
    checked against the experiment's; catsdogs takes --image-size from it when not given."""
    path = settings["from"]
    try:
        model = load_model(path)
    except Exception as error:   # missing, foreign or broken: whichever reader load_model chose says why
        raise UsageError(f"--from: {one_line(error)}") from None
    if isinstance(model.input_shape, list):
        raise UsageError(f"--from {path} takes {len(model.input_shape)} inputs; {settings['experiment']} models "
                         f"take one image")
    shape = tuple(model.input_shape[1:])
    if settings["experiment"] == "catsdogs" and "image_size" not in given and len(shape) == 3 and \
            isinstance(shape[0], int):
        settings["image_size"] = shape[0]
    expected = input_shape_for(settings)
    if shape != expected:
        what = ("mnist's digits have shape (28, 28, 1)" if settings["experiment"] == "mnist" else
                f"catsdogs' photos at --image-size {settings['image_size']} have shape {expected}"
                if "image_size" in given else "catsdogs trains on square RGB photos, shape (SIZE, SIZE, 3)")
        raise UsageError(f"--from {path} takes inputs of shape {shape}, but {what}")
    return model


def output_layer(model):
    """The layer that makes a single-output model's output (inside a model used as a layer, too)."""
    layer = model.output.node.layer
    while isinstance(layer, models.Model) and not isinstance(layer.output, list):
        layer = layer.output.node.layer
    return layer


def output_text(model):
    """What a model outputs, as the experiment's loss sees it: '10 units, softmax'."""
    if isinstance(model.output, list):
        return f"{len(model.output)} outputs"
    shape = tuple(model.output_shape[1:])
    size = (f"{shape[0]} unit{'s' if shape[0] != 1 else ''}" if len(shape) == 1 else f"shape {shape}")
    activation = getattr(output_layer(model), "activation", None)
    return f"{size}, {activations.serialize(activation) if activation is not None else 'linear'}"


def ends_base(layer):
    """Whether the convolutional base ends with ``layer``: a Flatten or global pooling layer,
    or a model used as a layer whose output is one (an application with pooling='avg')."""
    if isinstance(layer, models.Model):
        return not isinstance(layer.output, list) and ends_base(layer.output.node.layer)
    return isinstance(layer, BASE_ENDS)


def base_end(model, path):
    """The last layer of the base of ``model`` (read from ``path``), or a UsageError."""
    ends = [layer for layer in model.layers if ends_base(layer)]
    if not ends:
        raise UsageError(f"--from {path} has no Flatten or global pooling layer, so its convolutional base cannot "
                         f"be told from its head")
    return ends[-1]


def head_of(model):
    """The layers after the base of one of the experiment's own models."""
    end = [layer for layer in model.layers if ends_base(layer)][-1]
    return model.layers[model.layers.index(end) + 1:]


def base_layers(model, end):
    """The layers of ``model`` that ``end``'s output depends on (``end`` included; the input
    layers left out), in the model's order."""
    found, seen, pending = set(), set(), [end.output]
    while pending:
        node = pending.pop().node
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if not node.layer.is_input:
            found.add(id(node.layer))
        pending.extend(node.inputs)
    return [layer for layer in model.layers if id(layer) in found]


def head_template(settings, experiment):
    """The experiment's own model, which a saved model's output must match and whose head a
    base gets (built at the smallest size that fits: the head does not depend on it)."""
    if settings["experiment"] == "catsdogs":
        settings = {**settings, "image_size": catsdogs_min_size()}
    return experiment.build(settings)


def clone_layer(layer, taken):
    """A fresh layer with ``layer``'s configuration and a new name not in ``taken``."""
    configuration = {k: v for k, v in layer.get_config().items() if k != "name"}
    clone = type(layer)(**configuration)
    while clone.name in taken:   # each construction draws the next automatic name
        clone = type(layer)(**configuration)
    return clone


def transfer_model(source, settings, experiment):
    """The model a --from run trains: ``source`` itself when its output fits the experiment,
    else its base with a fresh head like the experiment's own. What trains is --freeze-base's
    alone (not what the file says): the base frozen (trainable = False, before the compile
    that follows), or every layer trainable."""
    path, name = settings["from"], settings["experiment"]
    template = head_template(settings, experiment)
    wanted, has = output_text(template), output_text(source)
    end = None
    if has == wanted:
        model = source
        print(f"Starting from {path}: its output ({has}) fits {name}, so the whole model goes on training")
    else:
        end = base_end(source, path)
        taken = {layer.name for layer in source.layers}
        head = [clone_layer(layer, taken) for layer in head_of(template)]
        x = end.output
        for layer in head:
            x = layer(x)
        model = models.Model(source.input, x)
        print(f"Starting from {path}: its output ({has}) does not fit {name} ({wanted}), so its base (the layers "
              f"up to and including {end.name!r}) gets a fresh head like {name}'s own: "
              + ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in head))
    kept_frozen = [layer.name for layer in model.layers if not layer.trainable]
    if kept_frozen:
        print(f"The file marks {len(kept_frozen)} layers as frozen ({', '.join(kept_frozen[:3])}"
              f"{', ...' if len(kept_frozen) > 3 else ''}); here --freeze-base alone decides what trains")
    model.trainable = True
    if settings["freeze_base"]:
        frozen = base_layers(model, end or base_end(model, path))
        for layer in frozen:
            layer.trainable = False
        norms = sum(isinstance(layer, layers.BatchNormalization) for layer in frozen)
        note = {0: "", 1: "; its BatchNormalization layer runs in inference mode"}.get(
            norms, f"; its {norms} BatchNormalization layers run in inference mode")
        print(f"--freeze-base: the base's {len(frozen)} layers, up to and including {frozen[-1].name!r}, do not "
              f"train ({sum(layer.count_params() for layer in frozen):,} weights{note})")
    return model.to(settings["backend"])


# ----- the command line --------------------------------------------------------------------------
def make_parser():
    parser = OneLineParser(
        prog="python -m scratchnet.train", description="Train one of the reference models, Keras style.",
        epilog="Each run's folder gets checkpoint.npz after every epoch (with every setting of the run), "
               "model.npz (and the same model as model.keras, which Keras reads), history.json and PNG plots "
               "(learning curves, confusion matrix, misclassified "
               "examples). --resume restores the run's settings; give --epochs to extend it. "
               "Transfer learning, as in the Keras tutorial: --from runs/base/model.npz --freeze-base trains a "
               "head (the saved one, or a fresh one) on the saved model's frozen base; a second run --from that "
               "run's model.npz with a low --lr (e.g. 1e-5) and no --freeze-base fine-tunes every layer.")
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS),
                        help="mnist: the 3-conv digit classifier; catsdogs: the 4-conv photo classifier")
    parser.add_argument("--data", default=None,
                        help="mnist: folder with the four IDX files (default: the cache, downloaded on "
                             "first use); catsdogs: folder with train/ and validation/, or a tar/zip")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs to train in all (mnist 5, catsdogs 30); with --resume, a larger "
                             "number extends the run")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per step (default 32)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (mnist: Adam 1e-3; catsdogs: RMSprop 1e-4, or for --model resnet "
                             "Adam 1e-3 with cosine decay to 1%% of it over the epochs)")
    parser.add_argument("--model", default=None, choices=sorted(CATSDOGS_MODELS),
                        help="catsdogs: 'seed' (the tutorial's 4-conv network, default) or 'resnet' (a small "
                             "residual network with batch normalization, built with the functional API)")
    parser.add_argument("--image-size", type=int, default=None, help="catsdogs: images are resized to "
                        "SIZE x SIZE (default 150)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="catsdogs: random rotations, shifts, shear, zoom and flips of the training "
                             "images (the seed's settings); off by default")
    parser.add_argument("--from", metavar="PATH", default=None,
                        help="start from the model saved at PATH (a run's model.npz or checkpoint.npz, a Keras "
                             ".keras or .h5 file: any file scratchnet.load_model reads) instead of fresh "
                             "weights. Its input shape must be the experiment's (catsdogs: --image-size defaults "
                             "to the model's). If its output fits the experiment (mnist: 10 units, softmax; "
                             "catsdogs: 1 unit, sigmoid), the whole model goes on training; otherwise its base, "
                             "the layers up to and including its last Flatten or global pooling layer, gets a "
                             "fresh head like the experiment's own (the output says which; catsdogs: --model "
                             "chooses that head and the optimizer). The optimizer starts afresh: the "
                             "experiment's, at --lr (give a low one to fine-tune). Recorded in the run, so "
                             "--resume needs no --from")
    parser.add_argument("--freeze-base", action=argparse.BooleanOptionalAction, default=None,
                        help="with --from: set trainable = False on the base before compile, so only the head "
                             "trains (as in Keras, the base's weights stay as saved and its BatchNormalization "
                             "layers run in inference mode); off by default: every layer trains, whatever the "
                             "file marks as frozen")
    parser.add_argument("--backend", default=None, choices=backend.available(),
                        help="kernels: cpu (Numba, default), numpy (the reference) or gpu (CuPy)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for kernels and BLAS (default: NUMBA_NUM_THREADS or all cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="catsdogs: image-decoding threads (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for weights, shuffling and "
                        "augmentation (default: drawn, and printed): the same seed gives the same run")
    parser.add_argument("--limit", type=int, default=None, help="use only N training samples per epoch")
    parser.add_argument("--out", default=None, help="run folder (default runs/EXPERIMENT-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (or the newest runs/EXPERIMENT-*) from its last "
                             "checkpoint, with the settings it recorded")
    parser.add_argument("--distributed", action="store_true",
                        help="be one rank of a data-parallel job: mpiexec -n K python -m scratchnet.train ... "
                             "--distributed (needs pip install 'scratchnet[distributed]'). --batch-size is per "
                             "rank: each step trains on K x --batch-size samples, the same run as one process at "
                             "that batch size and the same --lr (to keep the per-sample step of a smaller batch, "
                             "scale --lr by K yourself). Rank 0 writes the run folder; --data, --from and --out "
                             "must name the same files on every rank; --resume needs the same K")
    return parser


def flag(name):
    return "--" + name.replace("_", "-")


def show(name, value):
    """A setting as it is written on the command line."""
    if value is True:
        return flag(name)
    if value is False:
        return "--no-" + name.replace("_", "-")
    return f"{flag(name)} {value}"


def given_settings(args):
    """The settings written on this command line (not their defaults)."""
    names = ("epochs",) + RUN_SETTINGS + PROCESS_SETTINGS
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    for name in CATSDOGS_ONLY:
        if name in given and args.experiment != "catsdogs":
            raise UsageError(f"{flag(name)} applies to catsdogs only, not to {args.experiment}")
    for name in ("data", "from"):
        if given.get(name) is not None:
            given[name] = str(Path(given[name]).expanduser().resolve())
    if args.resume and "from" in given:
        raise UsageError("--from starts a new run from a saved model and --resume continues a run (whose checkpoint "
                         "already holds its model): give one of them")
    if "freeze_base" in given and "from" not in given and not args.resume:
        raise UsageError(f"{show('freeze_base', given['freeze_base'])} applies only with --from (the saved model "
                         f"whose base to freeze)")
    return given


def check_settings(settings):
    """Ranges, and that the settings fit together; raises UsageError naming the flag."""
    for name in ("epochs", "batch_size", "threads", "workers", "limit"):
        value = settings.get(name)
        if value is not None and value < 1:
            raise UsageError(f"{flag(name)} must be at least 1, got {value}")
    if not (math.isfinite(settings["lr"]) and settings["lr"] > 0):
        raise UsageError(f"--lr must be a positive number, got {settings['lr']}")
    if not 0 <= settings["seed"] < 2**63:
        raise UsageError(f"--seed must be a whole number from 0 to 2**63 - 1, got {settings['seed']}")
    if settings["experiment"] == "catsdogs" and settings.get("model", "seed") == "seed" and \
            not settings.get("from") and settings["image_size"] < catsdogs_min_size():
        raise UsageError(f"--image-size must be at least {catsdogs_min_size()} for the cats/dogs model "
                         f"(four 3x3 convolutions, each pooled by 2), got {settings['image_size']}")
    if settings.get("threads") is not None:
        import numba
        if settings["threads"] > numba.config.NUMBA_NUM_THREADS:
            raise UsageError(f"--threads must be at most {numba.config.NUMBA_NUM_THREADS} "
                             f"(NUMBA_NUM_THREADS), got {settings['threads']}")


@dataclass
class Progress:
    """What a run has done before this process: empty for a new run, else from its checkpoint."""
    initial_epoch: int = 0
    history: dict = field(default_factory=dict)
    epoch_seconds: list = field(default_factory=list)   # None for epochs an older scratchnet did not time
    schedule: list = field(default_factory=list)        # --epochs at the start, and after each change
    data_fingerprint: str = None
    seconds_untimed: float = 0.0   # the total an older scratchnet kept instead of epoch_seconds

    def as_extra(self):
        return {"history": self.history, "epoch_seconds": self.epoch_seconds, "schedule": self.schedule,
                "data_fingerprint": self.data_fingerprint, "seconds_untimed": self.seconds_untimed}


def start_run(args, given, out, ranks=1):
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if (out / CHECKPOINT).exists():
        raise UsageError(f"{out} already holds a run ({CHECKPOINT}); pass --resume to continue it, or choose "
                         f"another --out")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} is not empty; choose a new or empty folder (nothing in it was changed)")
    settings = {"experiment": args.experiment, "data": None, "threads": None, "limit": None, "seed": None,
                "from": None, "freeze_base": None}
    settings.update(DEFAULTS["all"])
    settings.update(DEFAULTS[args.experiment])
    settings.update(given)
    settings["ranks"] = ranks
    if settings["from"] is not None and settings["freeze_base"] is None:
        settings["freeze_base"] = False
    if settings.get("lr") is None:
        settings["lr"] = CATSDOGS_MODELS[settings["model"]][2]
    if settings["seed"] is None:
        settings["seed"] = int(np.random.SeedSequence().entropy % 2**31)
        print(f"Seed {settings['seed']} (drawn; --seed {settings['seed']} repeats this run)")
    return settings, Progress(schedule=[settings["epochs"]])


def resume_run(args, given, out, ranks=1):
    """The recorded settings, with --epochs and the process settings from this command line;
    any other setting given with a different value is an error naming both, as is another
    number of ranks."""
    checkpoint = out / CHECKPOINT
    if not checkpoint.exists():
        raise FileNotFoundError(f"--resume: {checkpoint} does not exist")
    extra = read_model_file(checkpoint)[0].get("extra") or {}
    recorded = extra.get("settings")
    if not isinstance(recorded, dict) or "epoch" not in extra:
        raise ModelFileError(f"{checkpoint} is a model file, not a training checkpoint (no settings)")
    if recorded.get("experiment") != args.experiment:
        raise UsageError(f"{checkpoint} is a {recorded.get('experiment')} run, not {args.experiment}")
    if "freeze_base" in given and not recorded.get("from"):
        raise UsageError(f"{show('freeze_base', given['freeze_base'])} applies only to runs started with --from, "
                         f"and {checkpoint} was not")
    done = int(extra["epoch"])
    recorded_ranks = int(recorded.get("ranks") or 1)
    if recorded_ranks != ranks:
        how = f"mpiexec -n {recorded_ranks} python -m scratchnet.train {args.experiment} --distributed --resume" \
            if recorded_ranks > 1 else f"python -m scratchnet.train {args.experiment} --resume, without mpiexec"
        raise UsageError(f"this run trained on {recorded_ranks} rank(s) (global batch {recorded_ranks} x "
                         f"{recorded.get('batch_size')}), and this job has {ranks}; resume it with: {how}")
    settings = {k: v for k, v in recorded.items() if not (args.experiment == "mnist" and k in CATSDOGS_ONLY)}
    for name, value in given.items():
        before = recorded.get(name)
        if name == "epochs" and value < done:
            raise UsageError(f"--epochs {value} is fewer than the {done} epochs this run has done")
        if name == "epochs" or value == before:
            settings[name] = value
        elif name in PROCESS_SETTINGS:
            print(f"Using {show(name, value)} (the run used {show(name, before)})")
            settings[name] = value
        else:
            raise UsageError(f"{show(name, value)} differs from this run's {show(name, before)} (recorded in "
                             f"{checkpoint}); leave it out to resume with the run's settings, or start a new "
                             f"run with another --out")
    if settings.get("data") and "data" not in given and not Path(settings["data"]).exists():
        raise UsageError(f"this run's data, {settings['data']}, is no longer there; give --data with its new place")
    seconds, untimed = extra.get("epoch_seconds"), float(extra.get("seconds_untimed") or 0.0)
    if seconds is None:   # written by an older scratchnet, which kept only a total
        seconds, untimed = [None] * done, float(extra.get("seconds") or 0.0)
    schedule = extra.get("schedule") or [recorded.get("epochs")]
    if schedule[-1] != settings["epochs"]:
        schedule = schedule + [settings["epochs"]]
    progress = Progress(done, extra.get("history") or {}, list(seconds), schedule, extra.get("data_fingerprint"),
                        untimed)
    return settings, progress


def use_backend(settings, given):
    """Set the backend and threads; a recorded (not given) one this machine cannot use is
    replaced (threads) or named with the flag that overrides it (backend)."""
    threads = settings.get("threads")
    if threads is not None and "threads" not in given:
        import numba
        if threads > numba.config.NUMBA_NUM_THREADS:
            print(f"Using --threads {numba.config.NUMBA_NUM_THREADS}: the run used {threads}, and "
                  f"NUMBA_NUM_THREADS allows {numba.config.NUMBA_NUM_THREADS} here")
            settings["threads"] = numba.config.NUMBA_NUM_THREADS
    check_settings(settings)
    try:
        backend.set_backend(settings["backend"], threads=settings["threads"])
    except backend.GPUUnavailable as error:
        if "backend" in given:
            raise
        raise UsageError(f"this run used --backend {settings['backend']}, which cannot run here ({one_line(error)}); "
                         f"give --backend cpu to continue it on the CPU") from error


def run_folder(args):
    if args.out:
        return Path(args.out)
    if args.resume:
        runs = sorted(Path("runs").glob(f"{args.experiment}-*"))
        if not runs:
            raise UsageError(f"--resume: no runs/{args.experiment}-* folder to resume; pass --out")
        return runs[-1]
    return Path("runs") / f"{args.experiment}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def start_command(settings, out):
    """The command that starts this run again from scratch, every setting spelt out."""
    words = ["python -m scratchnet.train", settings["experiment"], "--out", shlex.quote(str(out)),
             "--epochs", str(settings["epochs"])]
    for name in RUN_SETTINGS + PROCESS_SETTINGS:
        if settings.get(name) is not None and not (settings["experiment"] == "mnist" and name in CATSDOGS_ONLY):
            words.append(show(name, shlex.quote(str(settings[name])) if name in ("data", "from") else settings[name]))
    return " ".join(words)


def _stop_like_ctrl_c(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = make_parser().parse_args(argv)
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_like_ctrl_c)   # `kill` saves a checkpoint too
    try:
        ranks = job_ranks(args)
    except ImportError as error:
        print(f"error: --distributed: {one_line(error)}", file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(open(os.devnull, "w")) if ranks and not ranks.is_root \
                else contextlib.nullcontext():
            return train(args, ranks)
    except QuietExit as exit_:
        return exit_.code
    except KeyboardInterrupt:
        print("error: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    except (TrainingDiverged, MemoryError, DistributedError) as error:
        return failed(error, 1, ranks, said_alike=not isinstance(error, MemoryError))
    except (UsageError, OSError, ValueError, ModelFileError, DownloadError, backend.GPUUnavailable) as error:
        return failed(error, 2, ranks)


def failed(error, code, ranks, said_alike=False):
    """Say what went wrong on one line; in a job of several ranks, an error every rank meets
    alike (``said_alike``) is said by rank 0 alone, and any other one ends every rank."""
    if ranks is None:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return code
    if said_alike:
        if ranks.is_root:
            print(f"error: {one_line(error)}", file=sys.stderr)
        return code
    ranks.abort(one_line(error), code)
    return code


def job_ranks(args):
    """The job's Communicator for --distributed (None without it, or with one rank alone)."""
    if not args.distributed:
        return None
    ranks = distributed.init()
    if ranks.size == 1:
        print("--distributed: this job has one rank (start it with mpiexec -n K to train on K)")
        return None
    return ranks


def agreed_start(args, given, ranks):
    """(run folder, settings, progress), decided by rank 0 (the folder's timestamp, a drawn
    seed, the checkpoint it reads) and sent to every rank. An error there is said by rank 0,
    and the other ranks end quietly with its exit code."""
    payload = {}
    if ranks.is_root:
        try:
            out = run_folder(args)
            settings, progress = resume_run(args, given, out, ranks.size) if args.resume else \
                start_run(args, given, out, ranks.size)
            payload = {"out": str(out), "settings": settings, "progress": asdict(progress)}
        except (UsageError, OSError, ValueError, ModelFileError) as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            ranks.broadcast_json({"error": 2}, what="the start of the run")
            raise QuietExit(2) from error
        except BaseException:
            ranks.broadcast_json({"error": 1}, what="the start of the run")
            raise
    payload = ranks.broadcast_json(payload, what="the start of the run")
    if "error" in payload:
        raise QuietExit(payload["error"])
    return Path(payload["out"]), payload["settings"], Progress(**payload["progress"])


def train(args, ranks=None):
    given = given_settings(args)
    if ranks is None:
        out = run_folder(args)
        settings, progress = resume_run(args, given, out) if args.resume else start_run(args, given, out)
    else:
        out, settings, progress = agreed_start(args, given, ranks)
        if settings.get("threads") is None:        # the machine's cores shared by its ranks
            local, on_machine = distributed.local_rank_and_size(ranks)
            import numba
            settings["threads"] = max(1, min((os.cpu_count() or 1) // on_machine, numba.config.NUMBA_NUM_THREADS))
            print(f"--distributed: {ranks.size} ranks, {on_machine} on this machine with {settings['threads']} "
                  f"thread(s) each (--threads sets it)")
    source = load_source(settings, given) if settings.get("from") and not args.resume else None
    use_backend(settings, given)
    if ranks is not None and settings["backend"] == "gpu":
        from .distributed.nccl import select_gpu
        select_gpu(ranks)                          # one GPU per rank on each machine
    experiment = EXPERIMENTS[settings["experiment"]]
    data = experiment.load_data(settings)          # data problems surface before any model is built
    if ranks is not None and settings["experiment"] == "catsdogs":
        for iterator in data:                      # each rank decodes only its share of each batch
            iterator.shard(ranks.rank, ranks.size)
    try:
        fingerprint = experiment.fingerprint(data)
        if progress.data_fingerprint not in (None, fingerprint):
            raise UsageError(f"the data at {settings['data'] or 'the MNIST cache'} is not the data this run was "
                             f"trained on (fingerprint {fingerprint}, recorded {progress.data_fingerprint}); "
                             f"give --data with the run's data")
        progress.data_fingerprint = fingerprint
        model = resumed_model(out, progress, settings) if args.resume else new_model(settings, experiment, source)
        if ranks is not None:
            distributed.DistributedOptimizer(model.optimizer, ranks)
        return train_and_report(settings, experiment, model, data, progress, out, ranks)
    finally:
        experiment.close(data)


def optimizer_name(settings, experiment):
    return CATSDOGS_MODELS[settings["model"]][1] if "model" in settings else experiment.optimizer


def new_model(settings, experiment, source=None):
    """The run's model, compiled: built fresh, or from ``source`` (the model --from loaded)."""
    config.set_random_seed(settings["seed"])
    model = experiment.build(settings) if source is None else transfer_model(source, settings, experiment)
    optimizer = (optimizers.Adam(settings["lr"]) if optimizer_name(settings, experiment) == "adam"
                 else optimizers.RMSprop(settings["lr"]))
    model.compile(optimizer=optimizer, loss=experiment.loss, metrics=["accuracy"])
    model.summary()
    return model


def resumed_model(out, progress, settings):
    model = load_model(out / CHECKPOINT)
    config.rng().bit_generator.state = model.saved_extra["rng"]
    shown = [show(k, settings[k]) for k in RUN_SETTINGS if settings.get(k) is not None]
    print(f"Resuming {out} after epoch {progress.initial_epoch} of {settings['epochs']} with its settings: "
          + " ".join(shown))
    if progress.initial_epoch >= settings["epochs"]:
        print("no epochs left to train: evaluating and writing the run's model and plots")
    return model


def train_and_report(settings, experiment, model, data, progress, out, ranks=None):
    """Train (checkpointing each epoch), then write the model, history.json and the plots.
    Ctrl-C saves what there is and says how to go on. In a job of several ranks, the others
    train and leave the writing to rank 0."""
    root = ranks is None or ranks.is_root
    checkpoint = out / CHECKPOINT
    created = not out.exists()
    if root:
        out.mkdir(parents=True, exist_ok=True)
    hook = Checkpoint(out, settings, progress.as_extra())
    hooks = [hook]
    if "model" in settings and CATSDOGS_MODELS[settings["model"]][3]:
        hooks.insert(0, callbacks.LearningRateScheduler(cosine_schedule(settings["lr"], settings["epochs"])))
    try:
        result = experiment.run(settings, model, data, progress.initial_epoch, hooks, root)
        if not root:
            return 0
        epoch_seconds = progress.epoch_seconds + hook.epoch_seconds
        history = merge_history(progress.history, model.history.history if model.history else {})
        final = out / FINAL_MODEL
        extra = {"experiment": settings["experiment"], "settings": settings, "class_names": result["class_names"],
                 **result["preprocessing"]}
        save_model(model, final, extra=extra)
        save_model(model, out / KERAS_MODEL, extra=extra)
        record = {"settings": settings, "history": history, "epoch_seconds": epoch_seconds,
                  "seconds": progress.seconds_untimed + sum(s for s in epoch_seconds if s is not None),
                  "schedule": progress.schedule,
                  "data_fingerprint": progress.data_fingerprint,
                  "accuracy": float(np.mean(result["predicted"] == result["y"]))}
        atomic_write(out / "history.json", lambda f: f.write(json.dumps(record, indent=1).encode()))
        names, wrong = result["class_names"], result["misclassified"]
        paths = [plots.plot_history(history, out / "history.png", title=settings["experiment"]),
                 plots.plot_confusion_matrix(result["y"], result["predicted"], names, out / "confusion.png"),
                 plots.plot_misclassified(wrong["x"], wrong["y"], wrong["predicted"], names,
                                          out / "misclassified.png", probabilities=wrong["confidence"])]
    except KeyboardInterrupt:
        if not root:
            return 130
        if not checkpoint.exists():   # not one epoch done: nothing to resume, nothing kept
            if created and not any(out.iterdir()):
                out.rmdir()
            print(f"\nInterrupted before the first epoch ended; nothing was saved. Start again with: "
                  f"{start_command(settings, out)}")
            return 130
        interrupted = out / "interrupted.npz"
        save_model(model, interrupted, extra={"experiment": settings["experiment"], "settings": settings})
        done = hook.last_epoch or progress.initial_epoch
        print(f"\nInterrupted. The weights at this moment are in {interrupted}; the last complete epoch "
              f"({done}) is in {checkpoint}.\nResume with: python -m scratchnet.train "
              f"{settings['experiment']} --out {shlex.quote(str(out))} --resume")
        return 130
    print(f"{experiment.held_out} accuracy: {record['accuracy']:.4f} ({record['seconds']:.0f} s of training)")
    print(f"saved the model to {final} (and for Keras to {out / KERAS_MODEL}), checkpoints to {checkpoint}")
    print("plots: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
