"""Every notebook runs top to bottom in a fresh kernel (outputs are not written back)."""
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SHARED = NOTEBOOKS.parents[1] / "shared" / "data"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_runs(path):
    for module in ("nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (it comes with the dev extra)")
    needs = nbformat.read(path, as_version=4).metadata.get("scratchnet", {}).get("needs_shared")
    if needs and not (SHARED / needs).exists():
        pytest.skip(f"{path.name} needs ../shared/data/{needs}, which is only on the project's machines")
    sys.path.insert(0, str(NOTEBOOKS))
    from run_all import execute
    book = execute(path, write=False)
    errors = [o for cell in book.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(o.get("output_type") == "display_data" for cell in book.cells for o in cell.get("outputs", [])), \
        "expected at least one figure"
