"""Re-execute every notebook in place, top to bottom in a fresh kernel, saving outputs
(and each notebook's first figure as notebooks/figures/NAME.png). The exercise cells run
with the reference answers of notebooks/solutions/NAME.py filled in; the notebook is saved
with its stubs again, beside the outputs the answers gave.

    python notebooks/run_all.py            # all of them
    python notebooks/run_all.py 02 04      # those whose names start with these
"""
import ast
import base64
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
TIMEOUT_PER_CELL = 600


def execute(path, write=True, solved=True):
    """Run the notebook at ``path`` in a fresh kernel (cwd: notebooks/), its exercises
    answered from solutions/ unless ``solved`` is False; returns it (as it ran)."""
    book = nbformat.read(path, as_version=4)
    stubs = {}
    if solved:
        answers = solutions(path)
        for index, cell in enumerate(exercise_cells(book)):
            stubs[index] = cell.source
            cell.source = "\n\n\n".join(answers[name] for name in defined_functions(cell.source))
    from nbclient import NotebookClient
    NotebookClient(book, timeout=TIMEOUT_PER_CELL, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    if write:
        saved = nbformat.from_dict(book)
        for index, cell in enumerate(exercise_cells(saved)):
            cell.source = stubs.get(index, cell.source)
        nbformat.write(saved, path)
        save_first_figure(book, HERE / "figures" / (path.stem + ".png"))
    return book


def exercise_cells(book):
    """The code cells tagged 'exercise', in order."""
    return [cell for cell in book.cells if cell.cell_type == "code" and "exercise" in cell.metadata.get("tags", [])]


def defined_functions(source):
    """The names of the functions a cell defines at its top level."""
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]


def solutions(path):
    """{function name: its source} of the notebook's reference answers (none: {})."""
    answers = HERE / "solutions" / (path.stem + ".py")
    if not answers.exists():
        return {}
    lines = answers.read_text().splitlines()
    return {node.name: "\n".join(lines[min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1:
                                        node.end_lineno])      # with its decorators (@njit)
            for node in ast.parse("\n".join(lines)).body if isinstance(node, ast.FunctionDef)}


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
