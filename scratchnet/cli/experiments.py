"""The experiments of ``python -m scratchnet.train``: their reference models (the seed
tutorials' networks, which tests and benchmarks import too), and how each one trains and
collects what the report shows. The segment experiment (a U-Net on digit scenes) lives in
segment.py and is registered here with the others."""
import math
from dataclasses import dataclass

import numpy as np

from .. import callbacks, layers, metrics, models
from .data import arrays_fingerprint, catsdogs_iterators, close_catsdogs, mnist_data, photos_fingerprint
from .segment import run_segment, segment_data, segment_model

MISCLASSIFIED_SHOWN = 25   # examples in misclassified.png
PROBE_SIZE = 256           # held-out samples --inspect measures on (the first ones)


# ----- the reference models ----------------------------------------------------------------------
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


# cats/dogs models: (builder, optimizer, default learning rate, cosine-decay the learning rate?)
CATSDOGS_MODELS = {
    "seed": (lambda size: catsdogs_model(size), "rmsprop", 1e-4, False),
    "resnet": (lambda size: resnet_model(size), "adam", 1e-3, True),
}


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


# ----- training, and what the report shows -------------------------------------------------------
class FreshEpochs(callbacks.Callback):
    """Starts every epoch at the beginning of that epoch's shuffled order (an epoch cut
    short by --limit would otherwise leave the next one to continue mid-order, which a
    resumed run could not reproduce)."""

    def __init__(self, iterator):
        self.iterator = iterator

    def on_epoch_begin(self, epoch, logs=None):
        self.iterator.set_epoch(epoch)


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


# ----- the experiments ---------------------------------------------------------------------------
def first_validation_batch(val):
    """The validation iterator's first batch, the iterator then back at its start."""
    try:
        return next(val)
    finally:
        val.reset()


@dataclass
class Experiment:
    """How the command line runs one reference experiment. The functions are looked up
    when called (the lambdas below), so a test can swap one (on this module)."""
    build: object            # settings -> uncompiled model
    load_data: object        # settings -> data (loaded before any model is built)
    fingerprint: object      # data -> str: what the run is trained on
    run: object              # (settings, model, data, initial_epoch, callbacks) -> results
    close: object            # data -> None
    optimizer: str
    loss: str
    held_out: str            # the split the reported accuracy is measured on
    metrics: object = lambda: ["accuracy"]    # () -> compile's metrics (fresh instances for each model)
    probe: object = lambda data: (data[2][:PROBE_SIZE], data[3][:PROBE_SIZE])   # data -> the inspector's (x, y)


EXPERIMENTS = {
    "mnist": Experiment(lambda s: mnist_model(), lambda s: mnist_data(s), lambda d: arrays_fingerprint(d),
                        lambda *a: run_mnist(*a), lambda d: None, "adam", "sparse_categorical_crossentropy",
                        "test"),
    "catsdogs": Experiment(lambda s: CATSDOGS_MODELS[s["model"]][0](s["image_size"]), lambda s: catsdogs_iterators(s),
                           lambda d: photos_fingerprint(d), lambda *a: run_catsdogs(*a),
                           lambda d: close_catsdogs(d), "rmsprop", "binary_crossentropy", "validation",
                           probe=lambda d: first_validation_batch(d[1])),
    "segment": Experiment(lambda s: segment_model(), lambda s: segment_data(s), lambda d: arrays_fingerprint(d),
                          lambda *a: run_segment(*a), lambda d: None, "adam", "sparse_categorical_crossentropy",
                          "test", lambda: ["accuracy", metrics.MeanIoU(num_classes=11, sparse_y_pred=False)]),
}


def optimizer_name(settings, experiment):
    """'adam' or 'rmsprop': the cats/dogs model's own, else the experiment's."""
    return CATSDOGS_MODELS[settings["model"]][1] if "model" in settings else experiment.optimizer
