"""Train the reference models from the command line.

    python -m scratchnet.train mnist [--epochs 5] [--batch-size 32] [--lr 1e-3]
"""
import argparse
import sys
import time

import numpy as np

from . import config, layers, models, optimizers
from .datasets import mnist


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


def train_mnist(args):
    try:
        (x_train, y_train), (x_test, y_test) = mnist.load_data(args.data)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_train = (x_train.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    model = mnist_model()
    model.summary()
    model.compile(optimizer=optimizers.Adam(learning_rate=args.lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x_test, y_test))
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.4f} ({time.perf_counter() - start:.0f} s)")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m scratchnet.train",
                                     description="Train one of the reference models.")
    parser.add_argument("experiment", choices=["mnist"], help="which reference model to train")
    parser.add_argument("--data", default=None,
                        help="folder with the four MNIST IDX files (default: $SCRATCHNET_DATA/mnist "
                             "or ~/.cache/scratchnet/mnist)")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training set (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per step (default 32)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=None, help="seed for initial weights and shuffling")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N samples only")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.seed is not None:
        config.set_random_seed(args.seed)
    return train_mnist(args)


if __name__ == "__main__":
    sys.exit(main())
