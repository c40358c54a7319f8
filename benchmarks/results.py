"""Writes benchmark results into benchmarks/RESULTS.md, one section per script, sealed.

Each script owns a section between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``;
running it again replaces that section and leaves the others alone. The section ends
with the command that wrote it, the machine (CPU model, vector ISA, the BLAS kernel in
use and the OpenBLAS variables if set) and a SHA-256 of everything above that line, so
a section edited by hand no longer matches its seal (tests/test_results.py checks)."""
import hashlib
import os
import platform
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"   # ../shared/data beside the repo
HEADER = ("# Benchmark results\n\nEvery figure in the README comes from a section below. Each section is written "
          "by the script its Command line names, with the machine it ran on, and sealed with a SHA-256 of its "
          "text: an edit by hand breaks the seal (tests/test_results.py checks every one), and recomputing a "
          "seal on purpose would show in review.\n")
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
SECTION = re.compile(r"<!-- begin (?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- sha256 (?P<seal>[0-9a-f]{64}) -->\n"
                     r"<!-- end (?P=name) -->", re.S)


def cpu_model():
    """The CPU's name, with its family and model numbers (a virtual machine's name may be generic)."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown CPU"
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" [{fields.get('vendor_id', '?')} family {fields['cpu family']} model {fields['model']}]"
    return name


def vector_isa():
    """The widest x86 vector extension the CPU reports (AVX-512, AVX2, ...), from /proc/cpuinfo."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "ISA unknown"
    flags = set(flags.split(":", 1)[1].split())
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2")):
        if flag in flags:
            return name
    return "no AVX"


def blas_description():
    """Which BLAS library and kernel NumPy's matrix products run on, as threadpoolctl sees it."""
    try:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS unknown (threadpoolctl not installed)"
    libraries = [f"{i['internal_api']} {i.get('version') or ''} ({i.get('architecture') or 'kernel unknown'} "
                 f"kernel, {i['num_threads']} threads)".replace("  ", " ")
                 for i in threadpool_info() if i["user_api"] == "blas"]
    pinned = [f"{v}={os.environ[v]}" for v in OPENBLAS_VARIABLES if v in os.environ]
    return (", ".join(libraries) or "no BLAS found") + (f"; set: {' '.join(pinned)}" if pinned else "")


def machine_info():
    """One line about the machine and the library versions."""
    import numpy
    versions = [f"Python {platform.python_version()}", f"NumPy {numpy.__version__}"]
    try:
        import numba
        versions.append(f"Numba {numba.__version__}")
    except ImportError:
        pass
    return (f"{cpu_model()} ({vector_isa()}), {os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
            f"{blas_description()}; " + ", ".join(versions))


def command_line():
    """The command that is running, with the script's path relative to the repository."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), RESULTS.parents[1])
    return "python " + " ".join(shlex.quote(a) for a in [script] + sys.argv[1:])


def seal(body):
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def render_section(name, body, command, machine, stamp):
    text = (f"{body.rstrip()}\n\nCommand: `{command}`  \nMachine: {machine}  \nRun: {stamp}\n")
    return f"<!-- begin {name} -->\n{text}<!-- sha256 {seal(text)} -->\n<!-- end {name} -->"


def sections(text):
    """{name: (body, seal_ok)} for every sealed section of a RESULTS.md text."""
    return {m["name"]: (m["body"], seal(m["body"]) == m["seal"]) for m in SECTION.finditer(text)}


def write_section(name, body, results=RESULTS):
    """Replace (or append) section ``name`` of RESULTS.md, atomically."""
    results = Path(results)
    text = results.read_text() if results.exists() else HEADER
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = render_section(name, body, command_line(), machine_info(), stamp)
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    from scratchnet.saving import atomic_write
    atomic_write(results, lambda f: f.write(text.encode("utf-8")))
