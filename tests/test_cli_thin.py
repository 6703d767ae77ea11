"""The command line stays thin: each command parses its options, calls the library, renders.

gridcost's product is the library (costmodel.api, costmodel.measure.live): whatever a command decides
must be a typed call a Python user can make too.  These checks read costmodel/cli/*.py with
``ast`` and fail when a command grows library logic back.  For every command callback (a
function under ``@<group>.command(...)``; the group callbacks only carry help text):

1. **It calls the library.**  Its body calls a function of an entry module (ENTRY_MODULES:
   costmodel.api, costmodel.measure.live, costmodel.output.reproduce, costmodel.inputs.loaders), imported in the body
   or at the top of the module, by name (``optimize(...)``) or through the module
   (``api.optimize(...)``).  A command that calls none computes its result itself.
2. **It does not iterate.**  No ``for``/``while`` and no comprehension: walking layers, grids,
   process counts or bundled files is the library's work, and a command's output arrives as a
   result object.  (Rendering helpers of the package may iterate over their output: writing
   each file of ``reproduce``, echoing each skipped module of ``import``.)
3. **It is short.**  At most STATEMENT_BUDGET statements, nested ones counted, imports and the
   docstring aside.  Parse → call → render (with --raw, --plot, --profile side outputs and an
   exit code) fits; orchestration does not: the old `calibrate run` body had some 40.

And for the whole package: 4. **it reaches the engine only through the API**: its modules import
only the costmodel modules of ALLOWED_IMPORTS (the entry modules, rendering and drawing, errors,
progress), never the search, the cost model, the plans, the grids or costmodel.measure.

Each rule is also run on a command written the old way (:data:`FAT_COMMAND`), which it must
reject: a checker that finds nothing would otherwise pass silently.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import costmodel

CLI = Path(costmodel.__file__).resolve().parent / "cli"
ENTRY_MODULES = {"costmodel.api", "costmodel.measure.live", "costmodel.output.reproduce", "costmodel.inputs.loaders"}
ALLOWED_IMPORTS = ENTRY_MODULES | {
    "costmodel",  # __version__ for --version
    "costmodel.errors", "costmodel.progress",  # exit codes; the terminal's progress line
    "costmodel.output.report",  # render, render_json, render_report: text of a result's tables
    "costmodel.output.plot",  # drawing a result's optima, saving a figure
}
STATEMENT_BUDGET = 12
"""The longest command today is `validate` (12: measure; rank 0 only; --raw; analyse; show;
--plot; exit 1 on a failed check)."""


@dataclass(frozen=True)
class Command:
    module: str
    name: str
    node: ast.FunctionDef


def commands(tree: ast.Module, module: str) -> list[Command]:
    """The command callbacks of ``tree``: functions decorated ``@<something>.command(...)``."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                and d.func.attr == "command" for d in node.decorator_list):
            found.append(Command(module, node.name, node))
    return found


def _body(node: ast.FunctionDef) -> list[ast.stmt]:
    """The statements of ``node`` but its docstring."""
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return body


def _imported(nodes: list[ast.stmt]) -> dict[str, str]:
    """{local name: costmodel module it comes from} of the imports among ``nodes`` (walked)."""
    names: dict[str, str] = {}
    for stmt in nodes:
        for node in ast.walk(stmt):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    # `from costmodel import api` names a module; `from costmodel.api import x` a
                    # function of one
                    names[alias.asname or alias.name] = full if full in ENTRY_MODULES \
                        else node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    names[alias.asname or alias.name.split(".")[0]] = alias.name
    return names


def calls_the_library(command: Command, module_tree: ast.Module) -> bool:
    """Rule 1: a call of a function of an entry module, by name or through the module."""
    imported = {**_imported(module_tree.body), **_imported(_body(command.node))}
    for node in ast.walk(command.node):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and imported.get(func.id) in ENTRY_MODULES:
            return True
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and imported.get(func.value.id) in ENTRY_MODULES):
            return True
    return False


LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp,
         ast.GeneratorExp)


def loops(command: Command) -> list[str]:
    """Rule 2: the loops and comprehensions of the command's body, as 'Kind at line N'."""
    return [f"{type(n).__name__} at line {n.lineno}" for n in ast.walk(command.node)
            if isinstance(n, LOOPS)]


def statements(command: Command) -> int:
    """Rule 3: the statements of the body, nested ones counted, imports and docstring aside."""
    return sum(1 for stmt in _body(command.node) for n in ast.walk(stmt)
               if isinstance(n, ast.stmt) and not isinstance(n, (ast.Import, ast.ImportFrom)))


def engine_imports(tree: ast.Module) -> set[str]:
    """Rule 4: the costmodel modules ``tree`` imports (anywhere) outside ALLOWED_IMPORTS and
    the cli package."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from costmodel import api` imports the module costmodel.api
            modules = {node.module} if node.module != "costmodel" else {
                "costmodel" if a.name == "__version__" else f"costmodel.{a.name}"
                for a in node.names}
        elif isinstance(node, ast.Import):
            modules = {a.name for a in node.names}
        else:
            continue
        found |= {m for m in modules if m.split(".")[0] == "costmodel"
                  and not m.startswith("costmodel.cli") and m not in ALLOWED_IMPORTS}
    return found


SOURCES = {p.stem: p for p in sorted(CLI.glob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in SOURCES.items()}
COMMANDS = [c for name, tree in TREES.items() for c in commands(tree, name)]


def test_every_command_of_gridcost_is_checked() -> None:
    """The checker sees the commands: each leaf command of the CLI is one callback here."""
    from costmodel.cli import cli

    def leaves(group: object) -> set[str]:
        out: set[str] = set()
        for command in getattr(group, "commands", {}).values():
            out |= leaves(command) if hasattr(command, "commands") else {
                command.callback.__name__}
        return out

    assert leaves(cli) == {c.name for c in COMMANDS}
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.module}.{c.name}")
def test_a_command_calls_the_library(command: Command) -> None:
    assert calls_the_library(command, TREES[command.module])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.module}.{c.name}")
def test_a_command_does_not_iterate(command: Command) -> None:
    assert loops(command) == []


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.module}.{c.name}")
def test_a_command_is_short(command: Command) -> None:
    assert statements(command) <= STATEMENT_BUDGET


@pytest.mark.parametrize("module", sorted(TREES))
def test_the_cli_reaches_the_engine_only_through_the_api(module: str) -> None:
    assert engine_imports(TREES[module]) == set()


FAT_COMMAND = '''
import click

@plot.command("scaling")
def plot_scaling(net, machine, processes, batch, plan_name, efficiency, per, output):
    import numpy as np

    from costmodel.engine.grids import parse_processes
    from costmodel.engine.plans import choose_plans
    from costmodel.output.plot import scaling
    from costmodel.planning.search import scaling_limits, sweep

    plans = choose_plans(plan_name, "plot scaling", all_allowed=True)
    ps = parse_processes(processes)
    B = int(batch)
    batches = np.full(ps.shape, B)
    sweeps = {p.name: sweep(net, machine, ps, batches, p) for p in plans}
    limits = {p.name: scaling_limits(net, machine, B, p, efficiency) for p in plans}
    title = f"{net} on {machine}, B={B}: best time against P"
    ax = scaling(sweeps, per, limits, title=title)
    for line in ax.lines:
        line.set_linewidth(1)
    if output.endswith(".png"):
        ax.figure.savefig(output, dpi=150)
    else:
        ax.figure.savefig(output)
    click.echo(f"wrote {output}")
'''
"""`plot scaling` as the CLI had it, deciding the plans, the batches, the limits and the title
(a loop added): every rule must reject it."""


def test_the_rules_reject_a_command_with_library_logic() -> None:
    tree = ast.parse(FAT_COMMAND)
    [fat] = commands(tree, "fat")
    assert not calls_the_library(fat, tree)
    assert sorted(found.split()[0] for found in loops(fat)) == ["DictComp", "DictComp", "For"]
    assert statements(fat) > STATEMENT_BUDGET
    assert engine_imports(tree) == {"costmodel.engine.grids", "costmodel.engine.plans", "costmodel.planning.search"}


def test_the_cli_defaults_are_the_apis() -> None:
    from costmodel import api
    from costmodel.cli import common

    assert (common.DEFAULT_MACHINE, common.DEFAULT_BATCH) == (api.DEFAULT_MACHINE,
                                                              api.DEFAULT_BATCH)
