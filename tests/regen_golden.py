"""Rewrite the golden outputs of `gridcost` under tests/data/golden/.

Run from anywhere, after a deliberate change of the output:

    python tests/regen_golden.py

then review `git diff tests/data/golden/` and commit the new files with the change that caused
them.  tests/test_cli.py::test_golden compares the live output with these files exactly;
tests/test_reproduce.py compares the reproduced claims of the paper (reproduce_claims.json) to
rtol 1e-9.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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
    "optimize_alexnet_P4096_B512_per-layer.txt": [
        "optimize", "--net", "alexnet", "--P", "4096", "--batch", "512", "--plan", "per-layer",
    ],
}
"""Golden file name → the `gridcost` arguments that produce it (written to stdout)."""


def reproduce_claims() -> str:
    """claims.json of `gridcost reproduce`: the paper's headline claims and gridcost's numbers."""
    from costmodel.reproduce import claims_json, reproduce

    return claims_json(reproduce(beyond=False).claims)


LIBRARY_GOLDEN: dict[str, Callable[[], str]] = {"reproduce_claims.json": reproduce_claims}
"""Golden file name → the library function that produces its text."""


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
    for name, make in LIBRARY_GOLDEN.items():
        path = GOLDEN_DIR / name
        path.write_text(make(), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
