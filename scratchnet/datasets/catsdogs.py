"""Dogs vs. cats photos, laid out for flow_from_directory:

    DIR/train/cats/*.jpg   DIR/train/dogs/*.jpg
    DIR/validation/cats/   DIR/validation/dogs/

``prepare(source)`` makes that layout from any of:
- a folder that already has it (returned as it is);
- a tar or zip holding ``.../train/{cats,dogs}/`` and ``.../validation/{cats,dogs}/``
  (such as catsdogs-128.tar);
- the Kaggle competition archive (``train/cat.123.jpg``, ``train/dog.45.jpg``, possibly
  inside an outer zip) or Microsoft's ``PetImages/{Cat,Dog}/123.jpg`` zip, split here into
  train and validation.
Extraction goes to a temporary folder renamed into place at the end, so an interrupted
run never leaves a half-prepared data set behind. Member paths are never trusted: every
file is written under a name built here.
"""
import hashlib
import io
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .download import say
from .mnist import data_dir

CLASSES = ("cats", "dogs")
_IMAGE = re.compile(r"\.(jpe?g|png|bmp|gif)$", re.I)


def is_prepared(path):
    path = Path(path)
    return all((path / split / name).is_dir() for split in ("train", "validation") for name in CLASSES)


def _class_of(name):
    """('train'|'validation'|None, 'cats'|'dogs') for an archive member name, or None."""
    parts = PurePosixPath(name).parts
    if not parts or not _IMAGE.search(parts[-1]):
        return None
    lowered = [p.lower() for p in parts]
    for i, part in enumerate(lowered[:-1]):
        if part in ("train", "validation") and i + 1 < len(lowered) - 1 and lowered[i + 1] in CLASSES:
            return part, lowered[i + 1]
    if "petimages" in lowered and lowered[-2] in ("cat", "dog"):
        return None, lowered[-2] + "s"
    match = re.match(r"(cat|dog)\.\d+\.", lowered[-1])
    if match and "test" not in lowered[:-1] and "test1" not in lowered[:-1]:
        return None, match.group(1) + "s"
    return None


def _members(archive_path):
    """Yield (name, read()) for every file in a tar or zip, one nested zip level included."""
    archive_path = Path(archive_path)
    if zipfile.is_zipfile(archive_path):
        with zipfile.ZipFile(archive_path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if info.filename.lower().endswith(".zip"):
                    with zipfile.ZipFile(io.BytesIO(archive.read(info))) as inner:
                        for inner_info in inner.infolist():
                            if not inner_info.is_dir():
                                yield inner_info.filename, (lambda i=inner_info, z=inner: z.read(i))
                    continue
                yield info.filename, (lambda i=info: archive.read(i))
    elif tarfile.is_tarfile(archive_path):
        with tarfile.open(archive_path) as archive:
            for member in archive:
                if member.isfile():
                    yield member.name, (lambda m=member: archive.extractfile(m).read())
    else:
        raise ValueError(f"{archive_path} is neither a folder with train/ and validation/, nor a tar "
                         f"or zip archive")


def archive_digest(path):
    """SHA-256 of a file's bytes (what names an archive's unpacked copy)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(source, dest=None, validation_per_class=500, train_per_class=None, verbose=True):
    """Path of a folder with train/ and validation/ class folders made from ``source``.
    An archive is unpacked once, into a cache folder named by its SHA-256 (so two archives
    with the same name never share one)."""
    source = Path(source)
    if source.is_dir():
        if is_prepared(source):
            return source
        raise ValueError(f"{source} has no train/{{cats,dogs}} and validation/{{cats,dogs}} folders")
    if not source.exists():
        raise FileNotFoundError(f"cats/dogs data not found at {source}")
    if dest is None:
        dest = data_dir() / f"catsdogs-{source.stem}-{archive_digest(source)[:16]}"
    dest = Path(dest)
    if is_prepared(dest):
        if verbose:
            say(f"Using the photos unpacked earlier from {source} in {dest}")
        return dest
    if verbose:
        say(f"Unpacking {source} into {dest} (once; later runs reuse it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=dest.name + ".partial-", dir=dest.parent))
    try:
        counts, unsplit = {}, {name: [] for name in CLASSES}
        try:
            for name, read in _members(source):
                found = _class_of(name)
                if found is None:
                    continue
                split, label = found
                if split is None:     # Kaggle / Microsoft layouts: split below
                    unsplit[label].append((PurePosixPath(name).name, read()))
                    continue
                _write(work / split / label, PurePosixPath(name).name, read(), counts)
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as error:
            raise ValueError(f"{source} could not be read as a tar or zip archive "
                             f"({type(error).__name__}: {error})") from error
        for label, files in unsplit.items():
            files.sort(key=lambda item: _natural_key(item[0]))
            for i, (filename, data) in enumerate(files):
                if i < validation_per_class:
                    split = "validation"
                elif train_per_class is None or i < validation_per_class + train_per_class:
                    split = "train"
                else:
                    break
                _write(work / split / label, filename, data, counts)
        if not is_prepared(work):
            raise ValueError(f"{source} holds no cats/dogs images in a layout this helper knows "
                             f"(train/cats, PetImages/Cat or Kaggle's cat.N.jpg); found {counts or 'none'}")
        if dest.exists():
            shutil.rmtree(dest)
        work.rename(dest)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    if verbose:
        say(f"Prepared {dest}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return dest


def _natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _write(folder, filename, data, counts):
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:100] or "image"
    target = folder / safe
    n = 1
    while target.exists():
        target = folder / f"{n}_{safe}"
        n += 1
    target.write_bytes(data)
    key = f"{folder.parent.name}/{folder.name}"
    counts[key] = counts.get(key, 0) + 1
