"""No import cycles among the modules of costmodel (issue 14).

The graph is read with ``ast`` from every ``costmodel/**/*.py``: an edge A → B for each
``import costmodel.B`` / ``from costmodel.B import ...`` / ``from costmodel import B`` (relative
imports resolved).  Two graphs are checked:

- module-level imports (what runs when A is imported): must be acyclic;
- every import, function-local (lazy) ones counted as edges too: must be acyclic as well, with
  no exception — a function-level import may delay loading a module (start-up time), never hide
  a cycle.  (The cost table, the schedule and the search once needed three such imports; the
  shared layer arrays moved below both, costmodel.engine.layerarrays, and the choice of a timeline's
  grid above both, costmodel.planning.iteration.)

Imports under ``if TYPE_CHECKING:`` are skipped: they never run.  An import of one of the
module's own parent packages (``from costmodel import __version__``) is no edge: Python has run
the parent's ``__init__`` before the module anyway.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import costmodel

PACKAGE = Path(costmodel.__file__).resolve().parent
ROOT = PACKAGE.parent

def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str) -> str | None:
    """The costmodel module ``name`` refers to (a module, or the package of an attribute)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, importer: str) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = importer if MODULES[importer].name == "__init__.py" else \
                importer.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                 for alias in node.names]
    found = {_resolve(n) for n in names if n.split(".")[0] == "costmodel"}
    # a module's parent packages are imported before it: an edge to one closes no new cycle
    return {t for t in found if t is not None and t != importer
            and not importer.startswith(f"{t}.")}


def edges(module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, function-local imports) of ``module``."""
    return edges_of(MODULES[module].read_text(encoding="utf-8"), module)


def edges_of(source: str, module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, function-local imports) of ``source``, the text of ``module``."""
    tree = ast.parse(source)
    top: set[str] = set()
    lazy: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            (lazy if in_function else top).update(_targets(node, module))
            return
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                  ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return top, lazy - top


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


@functools.cache
def _graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    top, every = {}, {}
    for module in MODULES:
        level, lazy = edges(module)
        top[module] = level
        every[module] = level | lazy
    return top, every


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    """Whether ``goal`` is reachable from ``start`` along the edges of ``graph``."""
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def cycle_closing_lazy_imports() -> list[tuple[str, str]]:
    """Every function-level import A → B (B not imported by A at module level) through which
    B leads back to A: the lazy imports that exist only to dodge a cycle."""
    _, every = _graphs()
    return sorted((module, target) for module in MODULES
                  for target in edges(module)[1] if reaches(every, target, module))


def test_the_graph_sees_the_package() -> None:
    top, _ = _graphs()
    assert {"costmodel.cli", "costmodel.api", "costmodel.measure.calibration", "costmodel.measure.validation",
            "costmodel.measure.series", "costmodel.inputs.importers"} <= set(top)
    assert "costmodel.measure.series" in top["costmodel.measure.calibration"]


def test_no_cycle_among_module_level_imports() -> None:
    top, _ = _graphs()
    assert find_cycle(top) is None


def test_no_cycle_even_through_function_local_imports() -> None:
    _, every = _graphs()
    assert find_cycle(every) is None


def test_no_function_level_import_closes_a_cycle() -> None:
    """Counted one by one: a lazy import that closes a cycle is named in the failure."""
    assert cycle_closing_lazy_imports() == []


def test_the_graph_counts_function_level_imports() -> None:
    # perlayer loads the schedule inside functions only; the edge is still in the graph
    top, every = _graphs()
    assert "costmodel.engine.schedule" in edges("costmodel.planning.perlayer")[1]
    assert "costmodel.engine.schedule" not in top["costmodel.planning.perlayer"]
    assert "costmodel.engine.schedule" in every["costmodel.planning.perlayer"]
    # the layer arrays sit below both the cost table and the schedule, imported at the top
    assert "costmodel.engine.layerarrays" in top["costmodel.engine.schedule"]
    assert "costmodel.engine.schedule" in top["costmodel.engine.cost"]


def test_a_function_level_import_that_closes_a_cycle_is_found() -> None:
    a_top, a_lazy = edges_of("import numpy\n\ndef f():\n"
                             "    from costmodel.engine.cost import evaluate\n",
                             "costmodel.engine.schedule")
    assert (a_top, a_lazy) == (set(), {"costmodel.engine.cost"})
    b_top, b_lazy = edges_of("if TYPE_CHECKING:\n    import costmodel.planning.search\n"
                             "from costmodel.engine import schedule\n", "costmodel.engine.cost")
    assert (b_top, b_lazy) == ({"costmodel.engine.schedule"}, set())
    graph = {"costmodel.engine.schedule": a_top | a_lazy, "costmodel.engine.cost": b_top | b_lazy}
    assert find_cycle(graph) == ["costmodel.engine.cost", "costmodel.engine.schedule",
                                 "costmodel.engine.cost"]
    assert reaches(graph, "costmodel.engine.cost", "costmodel.engine.schedule")


def test_no_module_shadows_an_api_function() -> None:
    # costmodel.timeline etc. are loaded on first use (costmodel.__getattr__): a submodule of
    # the same name would replace the function by the module once imported
    submodules = {name.split(".")[1] for name in MODULES if name.count(".") >= 1}
    assert not submodules & set(costmodel.__all__)


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
