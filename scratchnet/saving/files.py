"""What every model file format shares: its error, and writing without losing the old file."""
import os
import tempfile
import threading
from pathlib import Path


class ModelFileError(ValueError):
    """The file is not a readable scratchnet model file; the message says why."""


def _new_file_mode(path):
    """The permissions ``path`` keeps (if it exists) or a new file gets under the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        with _umask_lock:
            umask = os.umask(0)
            os.umask(umask)
        return 0o666 & ~umask


_umask_lock = threading.Lock()


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``
    (which keeps its permissions; a new file gets the usual ones, not mkstemp's 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
