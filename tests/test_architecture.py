"""The package's shape (ARCHITECTURE.md): every import of scratchnet, those inside functions
included, points down; no import circle; no engine module over 600 lines (kernels aside)."""
import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "scratchnet"
MAX_LINES = 600


def module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(path): path for path in ROOT.rglob("*.py")}


def imports_of(name, path, known):
    """The scratchnet modules that ``name`` imports, wherever in the file the import stands:
    ``from pkg import x`` counts as importing pkg.x where that is a module, else pkg; a
    module of a subpackage also runs that subpackage's __init__ (the root package's
    aside: it is where everything starts)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if not target.startswith("scratchnet"):
                continue
            found.add(target)
            parent = target.rpartition(".")[0]
            while parent not in ("", "scratchnet") and not name.startswith(parent + ".") and name != parent:
                found.add(parent)
                parent = parent.rpartition(".")[0]
    found.discard(name)
    return found


@functools.lru_cache(maxsize=1)
def import_graph():
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph):
    """One import circle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_circle_finder_finds_a_circle_hidden_inside_a_function(tmp_path):
    graph = {"scratchnet.a": {"scratchnet.b"}, "scratchnet.b": {"scratchnet.c"}, "scratchnet.c": {"scratchnet.a"}}
    assert find_cycle(graph) == ["scratchnet.a", "scratchnet.b", "scratchnet.c", "scratchnet.a"]
    package = tmp_path / "scratchnet"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def late():\n    from .high import thing\n")
    (package / "high.py").write_text("from . import low\nthing = 1\n")
    known = {"scratchnet": package / "__init__.py", "scratchnet.low": package / "low.py",
             "scratchnet.high": package / "high.py"}
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert graph["scratchnet.low"] == {"scratchnet.high"} and graph["scratchnet.high"] == {"scratchnet.low"}
    assert find_cycle(graph) is not None


@pytest.mark.parametrize("floor, above", [
    ("scratchnet.kernels", "scratchnet."),          # kernels know only arrays
    ("scratchnet.training", "scratchnet.distributed"),
    ("scratchnet.training", "scratchnet.models"),
    ("scratchnet.layers", "scratchnet.models"),
    ("scratchnet.layers", "scratchnet.training"),
    ("scratchnet.functions", "scratchnet.layers"),
    ("scratchnet.saving", "scratchnet.models"),
    ("scratchnet.saving", "scratchnet.training"),
    ("scratchnet.saving", "scratchnet.distributed"),
    ("scratchnet.graph", "scratchnet.layers"),
    ("scratchnet.execute", "scratchnet.layers"),
    ("scratchnet.fusion", "scratchnet.layers"),
    ("scratchnet.regularizers", "scratchnet.functions"),     # foundations: below the functions
    ("scratchnet.constraints", "scratchnet.functions"),
])
def test_a_floor_imports_nothing_above_it(floor, above):
    graph = import_graph()
    wrong = sorted(f"{name} imports {target}" for name, targets in graph.items()
                   if name == floor or name.startswith(floor + ".")
                   for target in targets
                   if target.startswith(above) and not (target == floor or target.startswith(floor + ".")))
    assert not wrong, "; ".join(wrong)


def test_the_engine_loop_imports_nothing_of_the_command_line():
    graph = import_graph()
    wrong = sorted(f"{name} imports {target}" for name, targets in graph.items() if not name.startswith(
        ("scratchnet.cli", "scratchnet.train", "scratchnet.predict", "scratchnet.plots"))
        for target in targets if target.startswith("scratchnet.cli"))
    assert not wrong, "; ".join(wrong)


def test_no_engine_module_is_over_600_lines():
    long = sorted(f"{name} ({len(path.read_text().splitlines())} lines)" for name, path in modules().items()
                  if not name.startswith("scratchnet.kernels") and len(path.read_text().splitlines()) > MAX_LINES)
    assert not long, "split these: " + ", ".join(long)
