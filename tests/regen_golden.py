"""Rewrite the golden outputs of `gridcost` under tests/data/golden/.

Run from anywhere, after a deliberate change of the output:

    python tests/regen_golden.py

then review `git diff tests/data/golden/` and commit the new files with the change that caused
them.  tests/test_cli.py::test_golden compares the live output with these files exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from costmodel.cli import cli

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "golden"

GOLDEN: dict[str, list[str]] = {
    "optimize_alexnet_P512_fc-model.json": [
        "optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model", "--format", "json",
    ],
    "optimize_vgg16_P512.txt": ["optimize", "--net", "vgg16", "--P", "512"],
    "optimize_alexnet_P512_all.md": [
        "optimize", "--net", "alexnet", "--P", "512", "--plan", "all", "--format", "markdown",
    ],
}
"""Golden file name → the `gridcost` arguments that produce it (written to stdout)."""


def produce(argv: list[str]) -> str:
    """The stdout of `gridcost <argv>`; raises if the command does not exit 0."""
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"gridcost {' '.join(argv)} exited {result.exit_code}: "
                           f"{result.stderr.strip()}")
    return result.stdout


def main() -> int:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, argv in GOLDEN.items():
        path = GOLDEN_DIR / name
        path.write_text(produce(argv), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
