"""Regenerate the coverage table of docs/import.md: every torchvision classification model imported
without weights, its parameters and multiply-adds beside torchvision's published numbers.

    python benchmarks/import_coverage.py            # print the table
    python benchmarks/import_coverage.py --write    # replace it in docs/import.md

tests/test_import_coverage.py checks that docs/import.md holds exactly this table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from costmodel.inputs.importers.coverage import coverage_markdown, coverage_rows

DOC = Path(__file__).resolve().parent.parent / "docs" / "import.md"
BEGIN, END = "<!-- coverage table: begin -->", "<!-- coverage table: end -->"


def replace_table(doc: str, table: str) -> str:
    """``doc`` with the text between the coverage markers replaced by ``table``."""
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def main() -> None:
    start = time.perf_counter()
    rows = coverage_rows()
    table = coverage_markdown(rows)
    if "--write" in sys.argv:
        DOC.write_text(replace_table(DOC.read_text(encoding="utf-8"), table), encoding="utf-8")
    else:
        print(table, end="")
    print(f"{len(rows)} models in {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
