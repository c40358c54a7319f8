"""Every notebook runs top to bottom in a fresh kernel (outputs are not written back), and
checks its claims: a notebook without an assert statement fails here before it runs."""
import ast
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SHARED = NOTEBOOKS.parents[1] / "shared" / "data"


def assertions(book):
    """The number of assert statements in the notebook's code cells (magics left out) that
    test something: ``assert True`` or ``assert 1`` does not count."""
    count = 0
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        count += sum(isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant)
                     for node in ast.walk(ast.parse(code)))
    return count


def test_a_notebook_without_an_assertion_is_caught():
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\nprint('assert')  # a word, not a check\n"
                                                                      "assert True")])
    assert assertions(book) == 0
    book.cells.append(nbformat.v4.new_code_cell("assert x == 1"))
    assert assertions(book) == 1


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_runs_and_checks_its_claims(path):
    book = nbformat.read(path, as_version=4)
    assert assertions(book) > 0, f"{path.name} asserts nothing: a notebook must check what it claims"
    for module in ("nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (it comes with the dev extra)")
    needs = book.metadata.get("scratchnet", {}).get("needs_shared")
    if needs and not (SHARED / needs).exists():
        pytest.skip(f"{path.name} needs ../shared/data/{needs}, which is only on the project's machines")
    sys.path.insert(0, str(NOTEBOOKS))
    from run_all import execute
    book = execute(path, write=False)
    errors = [o for cell in book.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, "\n".join(f"{e['ename']}: {e['evalue']}" for e in errors)
    assert any(o.get("output_type") == "display_data" for cell in book.cells for o in cell.get("outputs", [])), \
        "expected at least one figure"
