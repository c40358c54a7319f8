"""MNIST handwritten digits: 60,000 training and 10,000 test images of 28x28 pixels."""
import os
from pathlib import Path

from .idx import read_idx

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def data_dir():
    """Where datasets are kept: $SCRATCHNET_DATA, else ~/.cache/scratchnet."""
    return Path(os.environ.get("SCRATCHNET_DATA") or Path.home() / ".cache" / "scratchnet")


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays, from the four IDX files
    (plain or .gz) in ``path`` or, by default, ``data_dir()/mnist``."""
    directory = Path(path) if path is not None else data_dir() / "mnist"
    found = {key: _find(directory, stem) for key, stem in FILES.items()}
    missing = [FILES[k] for k, v in found.items() if v is None]
    if missing:
        raise FileNotFoundError(f"MNIST files missing in {directory}: {missing} (each may be "
                                f"gzipped); put the four IDX files there or pass path=")
    arrays = {key: read_idx(file) for key, file in found.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"MNIST {split} files disagree: images {x.shape}, labels {y.shape}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
