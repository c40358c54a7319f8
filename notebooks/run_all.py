"""Re-execute every notebook in place, top to bottom in a fresh kernel, saving outputs
(and each notebook's first figure as notebooks/figures/NAME.png).

    python notebooks/run_all.py            # all of them
    python notebooks/run_all.py 02 04      # those whose names start with these
"""
import base64
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT_PER_CELL = 600


def execute(path, write=True):
    """Run the notebook at ``path`` in a fresh kernel (cwd: notebooks/); returns it."""
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=TIMEOUT_PER_CELL, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    if write:
        nbformat.write(book, path)
        save_first_figure(book, HERE / "figures" / (path.stem + ".png"))
    return book


def save_first_figure(book, target):
    """Write the notebook's first figure as a PNG (the README shows some of them)."""
    for cell in book.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                target.parent.mkdir(exist_ok=True)
                target.write_bytes(base64.b64decode(png))
                return target
    return None


def main(prefixes):
    for path in sorted(HERE.glob("*.ipynb")):
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        start = time.perf_counter()
        execute(path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
