"""Import discipline (STYLE.md): which module may import yaml, click, matplotlib, scipy.

Static checks parse the source with ``ast`` (imports inside functions count too) of every module
of costmodel, every subpackage included (costmodel/**/*.py); the start-up checks import
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


def _module_name(path: Path) -> str:
    """``engine.cost`` for costmodel/engine/cost.py, ``cli`` for costmodel/cli/__init__.py."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if _module_name(p)}
"""Every module of costmodel by its name below the package (``inputs.loaders``, ``cli``,
``cli.common``, ``measure.worker``): the rules below apply to the command line's modules as
to the library's."""
MODULES = sorted(SOURCES)
CLI_MODULES = {m for m in MODULES if m == "cli" or m.startswith("cli.")}
NUMERIC = sorted({"inputs.specs", "units"}
                 | {m for m in MODULES if m.startswith(("engine.", "planning."))})
"""The specs and the numeric stages of the pipeline (costmodel's docstring): no YAML, no
click, no plots, no printing or files."""


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
            "cli.measurement", "inputs.loaders", "engine.cost", "engine.collectives",
            "planning.search", "planning.perlayer", "output.report", "output.plot",
            "measure.calibration", "measure.worker", *NUMERIC} <= set(MODULES)


def test_only_loaders_imports_yaml() -> None:
    assert importers("yaml") == {"inputs.loaders"}


def test_only_cli_imports_click() -> None:
    """Every module of the cli package may import click (__main__ needs not); no other."""
    assert importers("click") == CLI_MODULES - {"cli.__main__"}


def test_only_plot_imports_matplotlib() -> None:
    assert importers("matplotlib") <= {"output.plot"}


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


def test_only_the_runners_and_the_torch_tracer_import_torch() -> None:
    """torch: the processes of measure/ (worker, bench, training, ddp) and the PyTorch tracer
    of inputs/importers; nothing of the pipeline, nor the measurement analysis."""
    assert importers("torch") == {"measure.worker", "measure.bench", "measure.training",
                                  "measure.ddp", "inputs.importers.torch_trace"}


def test_measure_init_and_launcher_import_no_torch() -> None:
    for name in ("__init__", "launch"):
        tree = ast.parse((MEASURE / f"{name}.py").read_text(encoding="utf-8"))
        roots = {alias.name.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.Import) for alias in node.names}
        roots |= {node.module.split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
        assert "torch" not in roots, name


def test_calibration_and_validation_load_no_torch() -> None:
    loaded = _loaded_after("import costmodel.measure.calibration, costmodel.measure.validation, "
                           "costmodel.measure, costmodel.measure.launch", {"torch", "matplotlib"})
    assert loaded == []


def test_package_import_loads_neither_click_nor_yaml() -> None:
    assert _loaded_after("import costmodel", {"click", "yaml", "matplotlib", "scipy"}) == []


IMPORTERS = PACKAGE / "inputs" / "importers"


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
    loaded = _loaded_after("import costmodel.inputs.importers, costmodel.inputs.importers.records, "
                           "costmodel.inputs.importers.coverage, costmodel.cli",
                           {"torch", "torchvision", "onnx", "timm", "matplotlib"})
    assert loaded == []
