"""Writes benchmark results into benchmarks/RESULTS.md, one section per script.

Each script owns a section between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``;
running it again replaces that section and leaves the others alone."""
import os
import platform
import re
import shlex
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"   # ../shared/data beside the repo
HEADER = "# Benchmark results\n\nEvery figure in the README comes from a section below; each section names the command that produced it.\n"


def machine_info():
    """One line about the machine and the library versions."""
    import numpy
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = [f"Python {platform.python_version()}", f"NumPy {numpy.__version__}"]
    try:
        import numba
        versions.append(f"Numba {numba.__version__}")
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; " + ", ".join(versions)


def command_line():
    """The command that is running, with the script's path relative to the repository."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), RESULTS.parents[1])
    return "python " + " ".join(shlex.quote(a) for a in [script] + sys.argv[1:])


def write_section(name, body):
    """Replace (or append) section ``name`` of RESULTS.md, atomically."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- begin {name} -->\n{body.rstrip()}\n\n"
               f"Command: `{command_line()}`  \nMachine: {machine_info()}  \nRun: {stamp}\n"
               f"<!-- end {name} -->")
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    fd, tmp = tempfile.mkstemp(dir=RESULTS.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, RESULTS)
