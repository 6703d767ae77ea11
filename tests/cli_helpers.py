"""Helpers the CLI tests share: run a command that must succeed, or one that must fail cleanly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from costmodel.cli import cli, main


def run(*args: str) -> str:
    """stdout of a successful `gridcost <args>` (asserts exit code 0)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_json(*args: str) -> Any:
    """The JSON printed by `gridcost <args> --format json`."""
    return json.loads(run(*args, "--format", "json"))


def fail(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one stderr line of a failing `gridcost <args>` run through `main` (exit code 2)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert err.endswith("\n")
    assert lines[0].startswith("gridcost: "), lines[0]
    return lines[0]
