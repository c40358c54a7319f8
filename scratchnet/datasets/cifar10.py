"""CIFAR-10: 50,000 training and 10,000 test colour photos of 32x32 in ten classes, as
``keras.datasets.cifar10``. Labels: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog,
6 frog, 7 horse, 8 ship, 9 truck.

The archive is the one Keras downloads (the Python version from the dataset's authors),
checked by the SHA-256 Keras pins. Its batches are pickles: they are read by an unpickler
that builds nothing but dicts, lists, bytes and NumPy arrays, so a file that asks for anything
else is refused rather than run."""
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from .download import fetch_verified, url_source
from .mnist import data_dir

ARCHIVE = "cifar-10-python.tar.gz"
CHECKSUMS = {ARCHIVE: "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"}
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def sources():
    """Where CIFAR-10 is fetched from when the cache lacks it."""
    return [("the dataset's page (" + ", ".join(MIRRORS) + ")", url_source(MIRRORS, suffix=""))]


def load_data(path=None, verbose=True):
    """((x_train, y_train), (x_test, y_test)) as Keras gives them: uint8 images (N, 32, 32, 3)
    and uint8 labels (N, 1). From ``path`` (the archive, or the folder it unpacks to), or
    from the cache ``data_dir()/cifar10``, filled on first use and checked by SHA-256."""
    if path is None:
        directory = data_dir() / "cifar10"
        hint = f"To install CIFAR-10 by hand, put {ARCHIVE} into {directory}, or pass load_data(path=...)."
        path = fetch_verified(CHECKSUMS, directory, sources(), hint, what="CIFAR-10", verbose=verbose)[ARCHIVE]
    batches = _read_batches(Path(path))
    train = [batches[name] for name in TRAIN_BATCHES]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    x_test, y_test = batches["test_batch"]
    return (x_train, y_train), (x_test, y_test)


def _read_batches(path):
    names = TRAIN_BATCHES + ("test_batch",)
    if path.is_dir():
        folder = path / FOLDER if (path / FOLDER).is_dir() else path
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"CIFAR-10 batches missing in {folder}: {missing}")
        return {name: _batch((folder / name).read_bytes(), name) for name in names}
    with tarfile.open(path, "r:*") as archive:
        members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
        missing = [name for name in names if name not in members]
        if missing:
            raise ValueError(f"{path} is not the CIFAR-10 archive: it lacks {missing}")
        return {name: _batch(archive.extractfile(members[name]).read(), name) for name in names}


def _batch(raw, name):
    """(images (N, 32, 32, 3) uint8, labels (N, 1) uint8) of one pickled batch."""
    try:
        content = _DataOnly(io.BytesIO(raw), encoding="bytes").load()
        data, labels = np.asarray(content[b"data"], dtype=np.uint8), np.asarray(content[b"labels"], np.uint8)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as error:
        raise ValueError(f"CIFAR-10 batch {name} is not what the dataset holds: {error}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"CIFAR-10 batch {name}: images {data.shape} and labels {labels.shape} do not fit")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels.reshape(-1, 1)


class _DataOnly(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and Python's plain containers, and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}   # encode: bytes, as protocol 2 writes them

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to build {module}.{name}: a data file holds only arrays")
        if module == "_codecs":
            import codecs
            return codecs.encode
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:        # NumPy 1
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)
