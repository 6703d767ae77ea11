"""The example outputs quoted in the documentation, checked against what `gridcost` prints now.

An example is a fenced ```text block of a Markdown file in EXAMPLE_FILES whose lines starting
with ``$ gridcost `` are commands; the lines after a command, up to the next command or the end
of the block, are what it prints (stdout, then stderr).  An example may be abridged:

- a line that is only ``…`` stands for any number of output lines (zero or more);
- a line containing ``…`` elsewhere stands for one output line that contains the parts around
  the ``…`` in that order.

Lines are compared with runs of white space collapsed, and numbers with a relative tolerance
of NUMBER_RTOL, so that a column that grows by one character or a last digit that rounds the
other way on another machine does not fail the check; any other change does.  Commands run
in-process, in the folder tests/data/docs/ (which holds the broken input files the error
examples of docs/cli.md name).

After a deliberate change of the output, rewrite the examples with

    python tests/doc_examples.py --update

which replaces the output under every command by what it prints now — keeping an abridged
example abridged: the lines it shows are replaced by their current versions, the ``…`` stay —
and review `git diff`.  `python tests/doc_examples.py` (without --update) lists the stale ones.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tests/doc_examples.py` from a source checkout
    sys.path.insert(0, str(ROOT))

from costmodel.cli import main  # noqa: E402

EXAMPLE_FILES = ("README.md", "docs/cli.md", "docs/model.md", "docs/memory.md", "docs/collectives.md",
                 "docs/perlayer.md")
"""The Markdown files whose ```text examples are kept current."""
WORKDIR = ROOT / "tests" / "data" / "docs"
NUMBER_RTOL = 2e-3
"""Half a unit in the 4th significant digit of the human tables is at most 5e-4 relative to
the value; a rounding flip moves a printed 4-digit number by at most 1e-3 of itself."""
ELLIPSIS = "…"
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Example:
    """One command of a documentation file and the output shown under it."""

    file: str
    line: int
    """1-based line number of the ``$ gridcost`` line."""
    command: str
    shown: list[str]


def examples(path: Path) -> list[Example]:
    """Every ``$ gridcost`` command inside the ```text blocks of ``path``."""
    found: list[Example] = []
    inside = False
    current: Example | None = None
    name = path.relative_to(ROOT).as_posix()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```text" and not inside
            current = None
            continue
        if not inside:
            continue
        if line.startswith("$ gridcost"):
            current = Example(name, number, line[2:], [])
            found.append(current)
        elif line.startswith("$ "):
            current = None
        elif current is not None:
            current.shown.append(line)
    return found


@contextmanager
def _cwd(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def produce(command: str) -> list[str]:
    """The lines `command` prints now (stdout, then stderr), run in WORKDIR."""
    argv = shlex.split(command)
    assert argv[0] == "gridcost", command
    # stdout and stderr apart on every click version (CliRunner's streams differ before 8.2)
    out, err = io.StringIO(), io.StringIO()
    with _cwd(WORKDIR), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        main(argv[1:])
    return (out.getvalue() + err.getvalue()).splitlines()


def _normal(line: str) -> str:
    return " ".join(line.split())


def _number(token: str) -> float:
    return float(token.replace(",", ""))


def same_line(shown: str, produced: str) -> bool:
    """Equal up to white space, and numbers up to NUMBER_RTOL."""
    a, b = _normal(shown), _normal(produced)
    if a == b:
        return True
    if NUMBER.sub("#", a) != NUMBER.sub("#", b):
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
        if x == y:
            continue
        u, v = _number(x), _number(y)
        if abs(u - v) > NUMBER_RTOL * max(abs(u), abs(v)):
            return False
    return True


def _matches(shown: str, produced: str) -> bool:
    if ELLIPSIS in shown:
        line, start = _normal(produced), 0
        for part in (_normal(p) for p in shown.split(ELLIPSIS)):
            found = line.find(part, start)
            if found < 0:
                return False
            start = found + len(part)
        return True
    return same_line(shown, produced)


def align(shown: list[str], produced: list[str]) -> list[int | None] | None:
    """For each shown line, the index of the produced line it stands for (None for a bare
    ``…``); None when the example does not match the output."""
    index: list[int | None] = []
    at, skipping = 0, False
    for line in shown:
        if line.strip() == ELLIPSIS:
            index.append(None)
            skipping = True
            continue
        if skipping:
            while at < len(produced) and not _matches(line, produced[at]):
                at += 1
        if at >= len(produced) or not _matches(line, produced[at]):
            return None
        index.append(at)
        at += 1
        skipping = False
    if not skipping and at != len(produced):
        return None
    return index


def stale(example: Example) -> str | None:
    """None when the example matches what its command prints now, else a description."""
    produced = produce(example.command)
    if align(example.shown, produced) is not None:
        return None
    return (f"{example.file}:{example.line}: `{example.command}` prints\n"
            + "\n".join(produced) + "\n— the example shows\n" + "\n".join(example.shown))


def refreshed(example: Example) -> list[str]:
    """The example's lines rewritten to what its command prints now.

    An unabridged example is replaced whole.  An abridged one keeps its shape: its ``…`` lines
    (bare or inline) stay as written, and every other line is replaced by the first produced
    line, after the previous one kept, that starts with the same two words (a table row by its
    Pr and Pc, a layer row by its name, a summary line by its label).
    """
    produced = produce(example.command)
    if not any(ELLIPSIS in line for line in example.shown):
        return produced
    out: list[str] = []
    at, skipped = 0, False  # next produced line; whether a bare … was shown since the last kept
    for line in example.shown:
        if line.strip() == ELLIPSIS:
            skipped = True
        key = _normal(line).split(" ")[:2]
        found = None if ELLIPSIS in line else next(
            (j for j in range(at, len(produced)) if _normal(produced[j]).split(" ")[:2] == key),
            None)
        if found is None:
            out.append(line)
            continue
        if not skipped:  # no … in between: the lines the command added belong to the example
            out.extend(produced[at:found])
        out.append(produced[found])
        at, skipped = found + 1, False
    if not skipped:
        out.extend(produced[at:])
    return out


def update(path: Path) -> int:
    """Rewrite the stale examples of ``path``; returns how many were rewritten."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    changed = 0
    for example in reversed(examples(path)):
        if stale(example) is None:
            continue
        start = example.line  # index of the first shown line (0-based) = the command's 1-based
        end = start + len(example.shown)
        lines[start:end] = [f"{line}\n" for line in refreshed(example)]
        changed += 1
    if changed:
        path.write_text("".join(lines), encoding="utf-8")
    return changed


def main_(argv: list[str]) -> int:
    if argv == ["--update"]:
        for name in EXAMPLE_FILES:
            count = update(ROOT / name)
            print(f"{name}: {count} example(s) rewritten")
        return 0
    if argv:
        print(__doc__)
        return 2
    failures = [s for name in EXAMPLE_FILES for e in examples(ROOT / name)
                if (s := stale(e)) is not None]
    for failure in failures:
        print(failure, end="\n\n")
    print(f"{len(failures)} stale example(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main_(sys.argv[1:]))
