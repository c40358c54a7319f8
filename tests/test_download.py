"""Verified, atomic fetching of data files, and preparing the cats/dogs layout."""
import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from scratchnet.datasets import catsdogs, mnist
from scratchnet.datasets.download import DownloadError, fetch_verified, url_source

GOOD = b"the real bytes"
FILES = {"data-file": hashlib.sha256(GOOD).hexdigest()}


def writer(payload, gz=True):
    def fetch(names, folder):
        for name in names:
            (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(payload) if gz else payload)
    return fetch


def broken(names, folder):
    (folder / "data-file.gz").write_bytes(b"half")
    raise OSError("connection reset")


def test_first_good_source_wins_and_the_cache_is_used_next_time(tmp_path):
    found = fetch_verified(FILES, tmp_path, [("broken", broken), ("good", writer(GOOD))], "hint")
    assert gzip.decompress(found["data-file"].read_bytes()) == GOOD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data-file.gz"]   # nothing half-written left
    assert fetch_verified(FILES, tmp_path, [], "hint") == found


def test_every_source_failing_gives_one_error_listing_each(tmp_path):
    with pytest.raises(DownloadError) as error:
        fetch_verified(FILES, tmp_path, [("mirror", broken), ("tampered", writer(b"evil", gz=False))],
                       "Put the files in FOLDER by hand.")
    text = str(error.value)
    assert "- mirror: connection reset" in text
    assert "- tampered: data-file has SHA-256" in text and FILES["data-file"] in text
    assert "by hand" in text
    assert list(tmp_path.iterdir()) == []


def jpeg_bytes():
    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_prepare_from_a_tar_in_the_train_validation_layout(tmp_path):
    archive = tmp_path / "photos.tar"
    with tarfile.open(archive, "w") as tar:
        for split in ("train", "validation"):
            for label in ("cats", "dogs"):
                for i in range(2):
                    data = jpeg_bytes()
                    info = tarfile.TarInfo(f"catsdogs/{split}/{label}/{label}.{i}.jpg")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo("../../escape.jpg")
        evil.size = 3
        tar.addfile(evil, io.BytesIO(b"bad"))
    root = catsdogs.prepare(archive, dest=tmp_path / "prepared", verbose=False)
    assert catsdogs.is_prepared(root)
    assert len(list((root / "validation" / "dogs").iterdir())) == 2
    assert not (tmp_path.parent / "escape.jpg").exists()
    assert catsdogs.prepare(root) == root


def test_prepare_from_kaggle_and_microsoft_zips(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for i in range(5):
            z.writestr(f"train/cat.{i}.jpg", jpeg_bytes())
            z.writestr(f"train/dog.{i}.jpg", jpeg_bytes())
        z.writestr("test1/1.jpg", jpeg_bytes())
    kaggle = tmp_path / "dogs-vs-cats.zip"
    with zipfile.ZipFile(kaggle, "w") as z:
        z.writestr("train.zip", inner.getvalue())
    root = catsdogs.prepare(kaggle, dest=tmp_path / "k", validation_per_class=2, verbose=False)
    assert len(list((root / "validation" / "cats").iterdir())) == 2
    assert len(list((root / "train" / "dogs").iterdir())) == 3
    microsoft = tmp_path / "petimages.zip"
    with zipfile.ZipFile(microsoft, "w") as z:
        for i in range(3):
            z.writestr(f"PetImages/Cat/{i}.jpg", jpeg_bytes())
            z.writestr(f"PetImages/Dog/{i}.jpg", jpeg_bytes())
    root = catsdogs.prepare(microsoft, dest=tmp_path / "m", validation_per_class=1, verbose=False)
    assert len(list((root / "train" / "cats").iterdir())) == 2


def test_prepare_rejects_what_it_cannot_use(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="neither a folder"):
        catsdogs.prepare(tmp_path / "notes.txt", dest=tmp_path / "x")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.md", "nothing")
    with pytest.raises(ValueError, match="no cats/dogs images"):
        catsdogs.prepare(empty, dest=tmp_path / "y")
    assert not (tmp_path / "y").exists() and not list(tmp_path.glob("y.partial-*"))


def test_the_first_fetch_says_what_and_where_with_a_progress_bar_then_the_cache_is_named(
        web_server, tmp_path, capsys):
    root, base = web_server
    (root / "data-file.gz").write_bytes(gzip.compress(GOOD))
    cache = tmp_path / "cache"
    fetch_verified(FILES, cache, [("the test server", url_source([base]))], "hint", what="the test data")
    captured = capsys.readouterr()
    assert captured.out == ""                                   # all of it on stderr
    err = captured.err
    assert f"Fetching the test data (data-file) from the test server into {cache}" in err
    assert f"Downloading data from {base}data-file.gz" in err
    assert "data-file.gz: 100%" in err                           # tqdm's bar, finished
    assert f"Saved the test data in {cache}" in err
    fetch_verified(FILES, cache, [("the test server", url_source([base]))], "hint", what="the test data")
    assert capsys.readouterr().err.strip() == f"Using the cached the test data in {cache} (checked by SHA-256)"
    fetch_verified(FILES, cache, [], "hint", verbose=False)
    assert capsys.readouterr().err == ""


def test_a_failing_source_is_reported_before_the_next_is_tried(web_server, tmp_path, capsys):
    root, base = web_server
    (root / "data-file.gz").write_bytes(gzip.compress(GOOD))
    fetch_verified(FILES, tmp_path / "cache", [("a dead mirror", url_source([base + "missing/"])),
                                               ("the test server", url_source([base]))], "hint")
    err = capsys.readouterr().err
    assert "from a dead mirror" in err and "failed (" in err and "trying the next source" in err
    assert err.index("a dead mirror") < err.index("from the test server")


def test_mnist_names_the_cache_it_uses(tmp_path, monkeypatch, capsys):
    from conftest import require_mnist
    source = require_mnist()
    cache = tmp_path / "data"
    (cache / "mnist").mkdir(parents=True)
    for path in source.glob("*.gz"):
        (cache / "mnist" / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("SCRATCHNET_DATA", str(cache))
    (x_train, _), _ = mnist.load_data()
    assert x_train.shape == (60000, 28, 28)
    assert f"Using the cached MNIST in {cache / 'mnist'}" in capsys.readouterr().err


def test_mnist_loads_the_files_it_verified_not_a_stale_plain_copy_beside_them(tmp_path, monkeypatch, capsys):
    # Wrong plain IDX files in the cache (say, another dataset's, with MNIST's names) fail
    # the check; the good .gz files are fetched beside them, and those are what loads.
    import shutil
    from conftest import require_mnist
    from test_datasets import write_mnist
    source = require_mnist()
    cache = tmp_path / "data"
    (cache / "mnist").mkdir(parents=True)
    write_mnist(cache / "mnist", n_train=7, n_test=3, gz=False)

    def copy_shared(names, folder):
        for name in names:
            shutil.copy(source / (name + ".gz"), folder)
    monkeypatch.setenv("SCRATCHNET_DATA", str(cache))
    monkeypatch.setattr(mnist, "sources", lambda: [("the shared copy", copy_shared)])
    (x_train, _), (x_test, _) = mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert "has SHA-256" not in capsys.readouterr().out


def test_archives_with_the_same_name_are_unpacked_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHNET_DATA", str(tmp_path / "cache"))
    roots = []
    for folder, count in (("a", 1), ("b", 2)):
        archive = tmp_path / folder / "photos.tar"
        archive.parent.mkdir()
        with tarfile.open(archive, "w") as tar:
            for split in ("train", "validation"):
                for label in ("cats", "dogs"):
                    for i in range(count):
                        data = jpeg_bytes()
                        info = tarfile.TarInfo(f"{split}/{label}/{i}.jpg")
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
        roots.append(catsdogs.prepare(archive, verbose=False))
    assert roots[0] != roots[1]
    assert [len(list((r / "train" / "cats").iterdir())) for r in roots] == [1, 2]


def test_a_corrupt_archive_is_a_clear_error(tmp_path):
    broken = tmp_path / "photos.zip"
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("train/cats/1.jpg", jpeg_bytes())
    data = bytearray(broken.read_bytes())
    data[40:60] = b"\0" * 20     # damage the member's bytes, keep the zip directory
    broken.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="could not be read as a tar or zip archive"):
        catsdogs.prepare(broken, dest=tmp_path / "x", verbose=False)


# ----- keras.utils.get_file ------------------------------------------------------------------------------

def zip_with(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["plain", "zip-named", "zip-unnamed", "tar-untar"])
def test_get_file_gives_kerass_paths_and_contents(web_server, tmp_path, kind):
    keras = pytest.importorskip("keras", reason="the Keras oracle (tensorflow-cpu, dev extra) is not installed")
    from scratchnet import utils
    root, base = web_server
    (root / "notes.txt").write_bytes(GOOD)
    (root / "photos.zip").write_bytes(zip_with({"photos/cats/a.txt": b"cat", "photos/dogs/b.txt": b"dog"}))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("data/x.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (root / "data.tar.gz").write_bytes(buffer.getvalue())
    arguments = {"plain": dict(fname="notes.txt", origin=base + "notes.txt",
                               file_hash=hashlib.sha256(GOOD).hexdigest()),
                 "zip-named": dict(fname="photos.zip", origin=base + "photos.zip", extract=True),
                 "zip-unnamed": dict(origin=base + "photos.zip", extract=True),
                 "tar-untar": dict(fname="data", origin=base + "data.tar.gz", untar=True,
                                   md5_hash=hashlib.md5(buffer.getvalue()).hexdigest())}[kind]
    for folder in ("keras", "ours"):
        (tmp_path / folder).mkdir()   # Keras uses /tmp/.keras instead of a cache_dir it cannot write to yet
    theirs = keras.utils.get_file(cache_dir=str(tmp_path / "keras"), **arguments)
    ours = utils.get_file(cache_dir=str(tmp_path / "ours"), **arguments)
    assert os.path.relpath(ours, tmp_path / "ours") == os.path.relpath(theirs, tmp_path / "keras")

    def tree(folder):
        folder = Path(folder)
        return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    if os.path.isdir(theirs):
        assert tree(ours) == tree(theirs)
    else:
        assert Path(ours).read_bytes() == Path(theirs).read_bytes() == GOOD
    assert not [p for p in (tmp_path / "ours").rglob(".download-*")]      # nothing half-written left


def test_get_file_uses_its_cache_checks_the_hash_and_fails_clearly_offline(web_server, tmp_path, capsys):
    from scratchnet import utils
    root, base = web_server
    (root / "notes.txt").write_bytes(GOOD)
    digest = hashlib.sha256(GOOD).hexdigest()
    path = utils.get_file("notes.txt", base + "notes.txt", file_hash=digest, cache_dir=str(tmp_path))
    assert Path(path) == tmp_path / "datasets" / "notes.txt"
    (root / "notes.txt").unlink()                                        # the server forgets it: the cache serves
    assert utils.get_file("notes.txt", base + "notes.txt", file_hash=digest, cache_dir=str(tmp_path)) == path
    Path(path).write_bytes(b"tampered")                                 # a bad cached copy is fetched again ...
    with pytest.raises(DownloadError, match=r"could not download .*notes.txt .* put the file at .*notes.txt "
                                            r"yourself"):
        utils.get_file("notes.txt", base + "notes.txt", file_hash=digest, cache_dir=str(tmp_path))
    assert "its sha256 hash does not match" in capsys.readouterr().err
    assert Path(path).read_bytes() == b"tampered"                       # ... and nothing is lost if that fails
    (root / "other.txt").write_bytes(b"not it")
    with pytest.raises(DownloadError, match=r"whose sha256 hash is .* not the expected .* nothing was kept"):
        utils.get_file("other.txt", base + "other.txt", file_hash=digest, cache_dir=str(tmp_path))
    assert not (tmp_path / "datasets" / "other.txt").exists()


def test_get_file_refuses_archives_that_escape_and_bad_names(web_server, tmp_path):
    from scratchnet import utils
    root, base = web_server
    (root / "evil.zip").write_bytes(zip_with({"../outside.txt": b"x"}))
    with pytest.raises(ValueError, match=r"holds '../outside.txt', which would land outside"):
        utils.get_file("evil.zip", base + "evil.zip", extract=True, cache_dir=str(tmp_path))
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "datasets" / "evil_extracted").exists()
    with pytest.raises(ValueError, match=r"fname must be a plain file name"):
        utils.get_file("sub/notes.txt", base + "notes.txt", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"get_file needs origin="):
        utils.get_file("notes.txt")


def test_an_archive_unpacked_once_is_not_unpacked_again_and_a_new_one_replaces_it(web_server, tmp_path):
    from scratchnet import utils
    root, base = web_server
    (root / "photos.zip").write_bytes(zip_with({"a.txt": b"first"}))
    folder = Path(utils.get_file("photos.zip", base + "photos.zip", extract=True, cache_dir=str(tmp_path)))
    (folder / "mine.txt").write_bytes(b"added by the user")
    assert Path(utils.get_file("photos.zip", base + "photos.zip", extract=True, cache_dir=str(tmp_path))) == folder
    assert (folder / "mine.txt").exists()                      # the same archive: left as it is
    (root / "photos.zip").write_bytes(zip_with({"a.txt": b"second"}))
    utils.get_file("photos.zip", base + "photos.zip", extract=True, cache_dir=str(tmp_path), force_download=True)
    assert (folder / "a.txt").read_bytes() == b"second" and not (folder / "mine.txt").exists()
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".photos")) == [
        ".photos_extracted.extracted-from"]
