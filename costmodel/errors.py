"""Exceptions of gridcost: one root, each class knows its exit code and its one-line message."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import SequenceMatcher, get_close_matches

NO_VALUE: object = object()
"""Marks a SpecError without an offending value (a missing field); None is a YAML null."""


class GridcostError(Exception):
    """Root of every error gridcost reports to a user; the CLI prints `str(err)` and exits 2."""

    exit_code = 2


class SpecError(GridcostError):
    """An input file or value broke the schema.

    Formats as ``<file>: <field path>: expected <expected>, got <value>``.
    """

    def __init__(self, source: str, field: str, expected: str, got: object = NO_VALUE) -> None:
        self.source = source
        self.field = field
        self.expected = expected
        self.got = got
        parts = [p for p in (source, field) if p]
        where = ": ".join(parts)
        msg = f"expected {expected}" if got is NO_VALUE else f"expected {expected}, got {got!r}"
        super().__init__(f"{where}: {msg}" if where else msg)


class ShapeError(SpecError):
    """Two shapes that must agree do not (a residual add, a concat)."""

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source, self.field, self.expected, self.got = source, field, message, NO_VALUE
        GridcostError.__init__(self, f"{source}: {field}: {message}")


class UnknownName(GridcostError):
    """A bundled network, machine, plan or layer name that does not exist; suggests the closest."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        self.kind, self.name, self.known = kind, name, known
        close = sorted(get_close_matches(name, known, n=3, cutoff=0.5),
                       key=lambda k: (-SequenceMatcher(None, name, k).ratio(), k))
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})")


class UsageError(GridcostError):
    """A setting that is well formed but unusable (P ≤ 0, batch ≤ 0, a grid that is not P)."""


class NoFeasibleGrid(GridcostError):
    """No Pr×Pc grid of P is feasible for the plan; the message says why and what would work."""


class MeasureError(GridcostError):
    """A measurement could not be made: a worker process failed, timed out or was interrupted."""
