"""The data of each experiment: MNIST arrays or the cats/dogs photo iterators, and a
fingerprint of what a run trains on (checked again on --resume)."""
import hashlib

import numpy as np

from .errors import UsageError

CATSDOGS_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                             shear_range=0.2, zoom_range=0.2, horizontal_flip=True)


def mnist_data(settings):
    """(x_train, y_train, x_test, y_test), scaled to [0, 1] as the seed tutorial does."""
    from ..datasets import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data(settings["data"])
    if settings["limit"]:
        x_train, y_train = x_train[:settings["limit"]], y_train[:settings["limit"]]
    x_train = (x_train.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    return x_train, y_train, x_test, y_test


def catsdogs_iterators(settings):
    """(train, validation) DirectoryIterators over the prepared photos."""
    from ..datasets import catsdogs
    from ..preprocessing.image import ImageDataGenerator
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
