"""Import discipline (STYLE.md): which module may import yaml, click, matplotlib, scipy.

Static checks parse the source with ``ast`` (imports inside functions count too) of every module
of costmodel and of its cli package (costmodel/cli/*.py); the start-up checks import
``costmodel.cli`` in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import costmodel

PACKAGE = Path(costmodel.__file__).resolve().parent
CLI = PACKAGE / "cli"


def _cli_module(path: Path) -> str:
    return "cli" if path.stem == "__init__" else f"cli.{path.stem}"


SOURCES = {**{p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"},
           **{_cli_module(p): p for p in CLI.glob("*.py")}}
"""Every module of costmodel (``loaders``) and of the cli package (``cli``, ``cli.common``) by
name: the rules below apply to the command line's modules as to the library's."""
MODULES = sorted(SOURCES)
CLI_MODULES = {m for m in MODULES if m == "cli" or m.startswith("cli.")}
NUMERIC = ["grids", "collectives", "plans", "cost", "search", "specs", "units", "memory",
           "perlayer"]


def imported_roots(module: str) -> set[str]:
    """Top-level names of every package the source of ``module`` (SOURCES) imports, anywhere in
    the file but under ``if TYPE_CHECKING:``."""
    tree = ast.parse(SOURCES[module].read_text(encoding="utf-8"))
    for block in [n for n in ast.walk(tree) if isinstance(n, ast.If)
                  and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"]:
        block.body = []  # type-only imports never run (costmodel.api names matplotlib's Figure)
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def importers(package: str) -> set[str]:
    return {m for m in MODULES if package in imported_roots(m)}


def test_the_modules_are_found() -> None:
    assert {"cli", "cli.common", "cli.planning", "cli.sweeps", "cli.catalogue",
            "cli.measurement", "loaders", *NUMERIC} <= set(MODULES)


def test_only_loaders_imports_yaml() -> None:
    assert importers("yaml") == {"loaders"}


def test_only_cli_imports_click() -> None:
    """Every module of the cli package may import click (__main__ needs not); no other."""
    assert importers("click") == CLI_MODULES - {"cli.__main__"}


def test_only_plot_imports_matplotlib() -> None:
    assert importers("matplotlib") <= {"plot"}


@pytest.mark.parametrize("module", NUMERIC)
def test_numeric_modules_import_neither_yaml_nor_click(module: str) -> None:
    assert imported_roots(module).isdisjoint({"yaml", "click", "matplotlib"})


@pytest.mark.parametrize("module", NUMERIC)
def test_numeric_modules_neither_print_nor_open_files(module: str) -> None:
    tree = ast.parse(SOURCES[module].read_text(encoding="utf-8"))
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert calls.isdisjoint({"print", "open", "input"})


def _loaded_after(statement: str, roots: set[str]) -> list[str]:
    code = (f"{statement}; import sys; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(roots)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    return list(ast.literal_eval(done.stdout.strip()))


def test_cli_import_loads_neither_matplotlib_nor_scipy() -> None:
    assert _loaded_after("import costmodel.cli", {"matplotlib", "scipy", "torch"}) == []


CLI_STARTUP = {"costmodel", "costmodel.errors", "costmodel.limits", "costmodel.progress",
               "costmodel.units"}
"""At most these library modules load before a command runs (what the single-module cli loaded
before it became a package): no numpy, no engine, no loader; each command imports what it uses
when it runs, so `gridcost optimize` starts light."""


def test_cli_import_loads_only_the_cli_and_a_few_light_modules() -> None:
    loaded = _loaded_after("import costmodel.cli", {"costmodel", "numpy", "yaml"})
    assert {m for m in loaded if not m.startswith("costmodel.cli")} <= CLI_STARTUP
    assert {f"costmodel.{m}" for m in CLI_MODULES - {"cli.__main__"}} <= set(loaded)


@pytest.mark.parametrize("module", sorted(CLI_MODULES))
def test_cli_modules_import_heavy_packages_only_inside_commands(module: str) -> None:
    """matplotlib, scipy, numpy, yaml and torch are imported only inside the commands (and
    helpers) that use them, never at a cli module's top level."""
    tree = ast.parse(SOURCES[module].read_text(encoding="utf-8"))
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import)
           for alias in node.names}
    top |= {node.module.split(".")[0] for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
    assert top.isdisjoint({"matplotlib", "scipy", "numpy", "yaml", "torch"}), module


MEASURE = PACKAGE / "measure"


def test_only_the_measure_subpackage_imports_torch() -> None:
    assert importers("torch") == set()
    assert {"calibration", "validation"} <= set(MODULES)


def test_measure_init_and_launcher_import_no_torch() -> None:
    for name in ("__init__", "launch"):
        tree = ast.parse((MEASURE / f"{name}.py").read_text(encoding="utf-8"))
        roots = {alias.name.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.Import) for alias in node.names}
        roots |= {node.module.split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
        assert "torch" not in roots, name


def test_calibration_and_validation_load_no_torch() -> None:
    loaded = _loaded_after("import costmodel.calibration, costmodel.validation, "
                           "costmodel.measure, costmodel.measure.launch", {"torch", "matplotlib"})
    assert loaded == []


def test_package_import_loads_neither_click_nor_yaml() -> None:
    assert _loaded_after("import costmodel", {"click", "yaml", "matplotlib", "scipy"}) == []


IMPORTERS = PACKAGE / "importers"


def test_importers_import_torch_and_onnx_only_in_their_tracers() -> None:
    """torch at module level only in importers/torch_trace.py, onnx only in onnx_trace.py; no
    importer reads YAML (the loader does)."""
    for path in sorted(IMPORTERS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import)
               for alias in node.names}
        top |= {node.module.split(".")[0] for node in tree.body
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
        assert "yaml" not in top, path.name
        assert ("torch" in top) == (path.stem == "torch_trace"), path.name
        assert ("onnx" in top) == (path.stem == "onnx_trace"), path.name


def test_importing_the_importers_loads_no_torch() -> None:
    loaded = _loaded_after("import costmodel.importers, costmodel.importers.records, "
                           "costmodel.importers.coverage, costmodel.cli",
                           {"torch", "torchvision", "onnx", "timm", "matplotlib"})
    assert loaded == []
