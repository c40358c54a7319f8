"""The seed tutorial's MNIST code, unchanged but for its imports, on the real MNIST files.

    python benchmarks/mnist_seed.py --epochs 2

Records test accuracy and seconds per epoch in benchmarks/RESULTS.md."""
import argparse
import time

import numpy as np

import scratchnet
from results import SHARED_DATA, write_section
from scratchnet import layers, models
from scratchnet.datasets import mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "mnist"), help="folder with the four MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--backend", default="numpy", choices=scratchnet.backend.available())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scratchnet.set_backend(args.backend)
    scratchnet.set_random_seed(args.seed)

    (x_train, y_train), (x_test, y_test) = mnist.load_data(args.data)
    x_train = (x_train.reshape(-1, 28, 28, 1) / 255.0).astype("float32")
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype("float32")

    model = models.Sequential([
        layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation='relu'),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation='relu'),
        layers.Flatten(),
        layers.Dense(64, activation='relu'),
        layers.Dense(10, activation='softmax'),
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])

    class EpochTimer(scratchnet.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            # this hook runs after the end-of-epoch validation, so the time includes it
            times.append(time.perf_counter() - self.start)

    times = []
    history = model.fit(x_train, y_train, epochs=args.epochs, validation_data=(x_test, y_test),
                        callbacks=[EpochTimer()], verbose=2)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
    rows = "\n".join(f"| {e + 1} | {history.history['loss'][e]:.4f} | {history.history['accuracy'][e]:.4f} | "
                     f"{history.history['val_accuracy'][e]:.4f} | {times[e]:.1f} |" for e in range(args.epochs))
    write_section(f"mnist-seed-{args.backend}", f"""## MNIST seed model, {args.epochs} epochs, backend `{args.backend}`

The seed tutorial's code (Adam, batch 32, sparse categorical cross-entropy), seed {args.seed}.
**Test accuracy after {args.epochs} epochs: {test_acc:.4f}** (test loss {test_loss:.4f}); median
epoch {float(np.median(times)):.1f} s (training plus the end-of-epoch evaluation on the 10,000 test images).

| epoch | loss | accuracy | val_accuracy | seconds |
|---|---|---|---|---|
{rows}
""")
    print(f"test accuracy {test_acc:.4f}; seconds per epoch {times}")


if __name__ == "__main__":
    main()
