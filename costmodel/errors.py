"""Exceptions of gridcost: one root, each class knows its exit code and its one-line message."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable
from difflib import SequenceMatcher, get_close_matches
from itertools import islice

NO_VALUE: object = object()
"""Marks a SpecError without an offending value (a missing field); None is a YAML null."""


MAX_MESSAGE = 1000
"""Characters of an error message at most (docs/formats.md, "Limits and ranges"): a message
echoes values from the input, and an input may be huge; the rest is cut to ``…``."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one line of at most ``limit`` characters: control characters (newlines,
    tabs, escapes) written as ``\\n``, ``\\x1b``…, the end cut to ``…``."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _ShortRepr(reprlib.Repr):
    """reprlib with small limits: a few items of a few levels, long strings cut in the middle;
    its work is bounded whatever the value (a YAML alias bomb is a small graph with a huge
    expansion: a plain repr would walk all of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxset = self.maxfrozenset = 6
        self.maxdeque = self.maxdict = 6
        self.maxstring = 80
        self.maxlong = 40
        self.maxother = 80


_SHORT = _ShortRepr()


SHORT_REPR = 120
"""Characters of a value echoed in a message, at most."""


def short_repr(value: object) -> str:
    """A bounded ``repr`` of a value taken from an input file, for messages: at most
    SHORT_REPR characters, computed in bounded time."""
    text = _bounded_repr(value)
    return text if len(text) <= SHORT_REPR else text[:SHORT_REPR - 1] + "…"


def _bounded_repr(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 128:
        return f"<an integer of {value.bit_length():,} bits>"
    if isinstance(value, dict):  # in the file's order, as repr would (reprlib sorts keys)
        items = list(islice(value.items(), 7))
        shown = ", ".join(f"{_SHORT.repr(k)}: {_SHORT.repr(v)}" for k, v in items[:6])
        return "{" + shown + (", ...}" if len(items) > 6 else "}")
    try:
        return _SHORT.repr(value)
    except ValueError:  # an integer beyond sys.get_int_max_str_digits() inside a list
        return f"<a {type(value).__name__}>"


class GridcostError(Exception):
    """Root of every error gridcost reports to a user; the CLI prints `str(err)` and exits 2.

    The message is made one line of at most MAX_MESSAGE characters, whatever it echoes."""

    exit_code = 2

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(one_line(str(message)), *args)


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
        msg = (f"expected {expected}" if got is NO_VALUE
               else f"expected {expected}, got {short_repr(got)}")
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


class TooLarge(UsageError):
    """A request beyond one of gridcost's limits (costmodel.limits); the message names it."""


class MeasureError(GridcostError):
    """A measurement could not be made: a worker process failed, timed out or was interrupted."""
