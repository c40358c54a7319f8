"""A few training steps, run under mpiexec by tests/test_distributed.py (or alone, as the
single process to compare with). Writes the weights and history of rank 0 to OUT.npz.

    python fit_job.py OUT MODEL BATCH SAMPLES [--distributed] [--fault KIND] [--optimizer sgd] [--float64]
"""
import argparse
import json
import os
import signal
import time

import numpy as np

import scratchnet
from scratchnet import callbacks, constraints, distributed, layers, models, optimizers, regularizers
from scratchnet.train import mnist_model


def model_named(name, seeded=False):
    if name == "mnist":
        return mnist_model()
    if name == "dropout":        # per-sample random draws: dropout and augmentation (with generators of their own),
        return models.Sequential([  # and penalties on weights (once per step) and activities (per sample), a constraint
            layers.Input((28, 28, 1)), layers.RandomTranslation(0.1, 0.1, seed=4 if seeded else None),
            layers.Conv2D(8, 3, activation="relu", kernel_regularizer=regularizers.L2(1e-3),
                          activity_regularizer=regularizers.L1(1e-4),
                          kernel_constraint=constraints.MaxNorm(0.5, axis=[0, 1, 2])),
            layers.MaxPooling2D(2), layers.Dropout(0.4, seed=3 if seeded else None), layers.Flatten(),
            layers.Dense(10, activation="softmax", bias_regularizer="l1")])
    if name == "segment":        # per-pixel labels and a metric whose state is a confusion matrix
        inputs = layers.Input((None, None, 1))
        x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        up = layers.Conv2DTranspose(4, 3, strides=2, padding="same")(layers.MaxPooling2D(2)(x))
        return models.Model(inputs, layers.Conv2D(4, 1, activation="softmax")(layers.Concatenate()([up, x])))
    if name == "wider":          # another architecture: a mismatched job
        model = mnist_model()
        return models.Sequential(model.layers[:-2] + [layers.Dense(65, activation="relu"),
                                                      layers.Dense(10, activation="softmax")])
    raise ValueError(name)


class EvaluateEachEpoch(callbacks.Callback):
    """model.evaluate from a callback in the middle of fit, as Keras code does."""

    def __init__(self, x, y):
        self.x, self.y, self.results = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        self.results.append(self.model.evaluate(self.x, self.y, batch_size=16, verbose=0))


class Fault(callbacks.Callback):
    """Rank 1 fails at its third step: killed, raising, or hanging (--fault fewer: it has
    fewer samples than rank 0 instead)."""

    def __init__(self, kind):
        self.kind = kind

    def on_train_batch_begin(self, batch, logs=None):
        if batch != 2 or distributed.rank() != 1:
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "raise":
            raise RuntimeError("rank 1 broke on purpose")
        if self.kind == "hang":
            time.sleep(3600)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("model")
    parser.add_argument("batch", type=int)
    parser.add_argument("samples", type=int)
    parser.add_argument("--distributed", action="store_true")
    parser.add_argument("--fault", default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--seeded", action="store_true", help="the dropout model's random layers get seeds")
    parser.add_argument("--evaluate-in-callback", action="store_true")
    args = parser.parse_args()
    if args.float64:
        scratchnet.set_floatx("float64")
    data = np.random.default_rng(0)
    x = data.random((args.samples + 50, 28, 28, 1)).astype(scratchnet.floatx())
    y = data.integers(0, 10, args.samples + 50)
    x[np.arange(len(y)), y, y, 0] += 3.0          # a learnable signal
    scratchnet.set_random_seed(7)
    model = model_named(args.model, args.seeded)
    optimizer = optimizers.Adam(1e-3) if args.optimizer == "adam" else optimizers.SGD(0.05, momentum=0.9)
    if args.distributed:
        optimizer = distributed.DistributedOptimizer(optimizer)
        if args.model == "wider" and distributed.rank() == 0:
            model = model_named("mnist")
    metrics = ["accuracy"]
    if args.model == "segment":
        y = np.minimum((x[..., 0] * 4).astype(int), 3)       # each pixel's class from its value
        metrics.append(scratchnet.metrics.MeanIoU(num_classes=4, sparse_y_pred=False))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=metrics)
    hooks = [Fault(args.fault)] if args.fault in ("kill", "raise", "hang") else []
    if args.evaluate_in_callback:
        hooks.append(EvaluateEachEpoch(x[args.samples:], y[args.samples:]))
    n = args.samples - (64 if args.fault == "fewer" and distributed.rank() == 1 else 0)   # another data set
    history = model.fit(x[:n], y[:n], batch_size=args.batch, epochs=args.epochs,
                        validation_data=(x[args.samples:], y[args.samples:]), verbose=0, callbacks=hooks)
    evaluated = model.evaluate(x[args.samples:], y[args.samples:], batch_size=8, verbose=0)
    if not args.distributed or distributed.rank() == 0:
        evaluations = {"in_callback": hooks[-1].results} if args.evaluate_in_callback else {}
        np.savez(args.out, *model.get_weights(),
                 history=json.dumps(dict(history.history, evaluated=evaluated, **evaluations)))


if __name__ == "__main__":
    main()
