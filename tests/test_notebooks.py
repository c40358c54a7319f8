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


# ----- the exercises ----------------------------------------------------------------------------
def notebook_tools():
    """run_all (how notebooks run, with their answers) and exercises (the checkers)."""
    if str(NOTEBOOKS) not in sys.path:
        sys.path.insert(0, str(NOTEBOOKS))
    import exercises
    import run_all
    return run_all, exercises


def exercise_stubs():
    """(notebook, function name, the stub's source) of every exercise cell."""
    run_all, _ = notebook_tools()
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in run_all.exercise_cells(nbformat.read(path, as_version=4)):
            found += [(path, name, cell.source) for name in run_all.defined_functions(cell.source)]
    return found


def test_every_exercise_has_a_checker_an_answer_and_a_check_cell():
    run_all, exercises = notebook_tools()
    stubs = exercise_stubs()
    assert {name for _, name, _ in stubs} == set(exercises.CHECKS)
    assert {path for path, _, _ in stubs} == set(NOTEBOOKS.glob("*.ipynb")), "every notebook asks for something"
    for path, name, _ in stubs:
        assert name in run_all.solutions(path), f"{name} has no answer in solutions/{path.stem}.py"
        book = nbformat.read(path, as_version=4)
        assert any(cell.source.strip() == f"check({name})" for cell in book.cells), f"{path.name}: check({name})"


def names_cells_use():
    """What an exercise's cell (stub or answer) takes from the notebook's first cell."""
    import numba
    import numpy
    return {"np": numpy, "njit": numba.njit}


def answer(path, name):
    run_all, _ = notebook_tools()
    space = names_cells_use()
    exec(run_all.solutions(path)[name], space)
    return space[name]


@pytest.mark.parametrize("path, name, stub_source",
                         [pytest.param(*found, id=found[1]) for found in exercise_stubs()])
def test_the_checker_passes_the_answer_and_refuses_the_stub_and_wrong_answers(path, name, stub_source):
    import numpy as np
    _, exercises = notebook_tools()
    stub = names_cells_use()
    exec(stub_source, stub)
    with pytest.raises(NotImplementedError):
        exercises.check(stub[name])
    right, results = answer(path, name), []

    def recorded(*args, **kwargs):
        results.append(right(*args, **kwargs))
        return results[-1]
    recorded.__name__ = name
    exercises.check(recorded)
    count = len(results[-1]) if isinstance(results[-1], tuple) else 1
    for k in range(count):             # each returned value in turn, 1% off
        with pytest.raises(AssertionError):
            exercises.check(off_by_one_percent(right, name, k))


def off_by_one_percent(right, name, k):
    """``right`` with its k-th returned value (or its only one) multiplied by 1.01."""
    def wrong(*args, **kwargs):
        result = right(*args, **kwargs)
        if not isinstance(result, tuple):
            return result * 1.01
        return tuple(value * 1.01 if i == k else value for i, value in enumerate(result))
    wrong.__name__ = name
    return wrong


def test_a_notebook_without_its_answers_stops_at_its_first_exercise():
    run_all, _ = notebook_tools()
    from nbclient.exceptions import CellExecutionError
    with pytest.raises(CellExecutionError, match="write softmax_cross_entropy, then run the next cell"):
        run_all.execute(NOTEBOOKS / "01_dense_and_softmax.ipynb", write=False, solved=False)
