"""gridcost run in place from a source checkout, without an install.

An installed wheel carries the bundled networks and machines as the packages
``costmodel.networks`` and ``costmodel.machines``; a checkout has them in the repository's
top-level networks/ and machines/ (costmodel.inputs.loaders.bundled_folder).  These tests run the
checkout's package in a subprocess with the repository root first on sys.path — as
``python -m costmodel.cli …`` and ``python -m pytest`` from the root do — so they exercise the
checkout path even where gridcost is also installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from costmodel.inputs import loaders

ROOT = Path(__file__).resolve().parents[1]


def _in_checkout(*args: str) -> subprocess.CompletedProcess[str]:
    """``python <args>`` with cwd = the repository root and that root on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_python_m_costmodel_cli_runs_from_the_repository_root() -> None:
    done = _in_checkout("-m", "costmodel.cli", "optimize", "--net", "alexnet", "--machine",
                        "cori-knl", "--P", "512", "--plan", "fc-model", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    record = json.loads(done.stdout)
    assert (record["best"]["pr"], record["best"]["pc"]) == (32, 16)


def test_the_checkout_finds_its_bundled_files_and_the_validation_network() -> None:
    script = (
        "import json, costmodel, costmodel.inputs.loaders as l, costmodel.measure.validation as v\n"
        "print(json.dumps({'package': costmodel.__file__,\n"
        "  'networks': str(l.bundled_folder('networks')),\n"
        "  'machines': str(l.bundled_folder('machines')),\n"
        "  'names': l.bundled_names('networks') + l.bundled_names('machines'),\n"
        "  'validation': v.network_path(), 'mini': v.load_validation_network().name}))\n")
    done = _in_checkout("-c", script)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["package"]).parent == ROOT / "costmodel"  # the checkout, not a wheel
    assert Path(found["networks"]) == ROOT / "networks"
    assert Path(found["machines"]) == ROOT / "machines"
    expected = sorted(p.stem for p in (ROOT / "networks").glob("*.yaml")) + \
        sorted(p.stem for p in (ROOT / "machines").glob("*.yaml"))
    assert found["names"] == expected and "alexnet" in expected and "cori-knl" in expected
    assert Path(found["validation"]) == ROOT / "costmodel" / "measure" / "mini-alexnet.yaml"
    assert found["mini"]


def test_bundled_folder_falls_back_to_the_repository_folders(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the packages costmodel.networks/machines (a checkout), the folders beside the
    package are used; with them (a wheel), importlib.resources is."""

    def no_package(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(loaders.resources, "files", no_package)
    package_parent = Path(loaders.__file__).resolve().parents[2]  # costmodel/inputs/loaders.py
    for kind in ("networks", "machines"):
        assert Path(str(loaders.bundled_folder(kind))) == package_parent / kind
