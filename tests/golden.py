"""Comparing output with a committed golden file or document at a stated precision.

Floating-point results move in their last bits between machines (SIMD code paths, BLAS builds
and numpy versions change the order of a sum), so no test compares a float to its last digit.
Committed machine-readable artefacts hold at most ``costmodel.output.reproduce.ARTEFACT_DIGITS`` (12)
significant digits.  A test parses the numbers out of the produced and the committed text and
compares the text between them exactly, and each pair of numbers

- to a relative ``RTOL`` = 1e-9 (absolute ``ATOL`` = 1e-12 near zero), or
- where a human table rounded them (a number with a decimal point or an exponent, or an integer
  of four or more digits), to one unit in the last digit shown: a value on a rounding boundary
  prints as 279.2 or 279.3 depending on its last bit;
- integers below 1000 (grid sides, process counts, layer counts) exactly.

1e-9 is far above the spread between machines (a few units in the 16th digit, summed over a few
hundred terms) and the 12-digit rounding (5e-13 relative), and far below any change of the model
worth noticing.  JSON is compared value by value: floats to RTOL, everything else exactly; CSV
cell by cell like the text.
"""

from __future__ import annotations

import csv
import io
import math
import re
from decimal import Decimal
from typing import Any

RTOL = 1e-9
"""Relative tolerance of every number compared with a golden file or a document."""
ATOL = 1e-12
"""Absolute tolerance, for numbers that are zero up to rounding (a difference of 1e-17)."""

NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?"
                    r"|[-+]?\.\d+(?:[eE][-+]?\d+)?")
"""A decimal number as tables and documents print it, thousands separators allowed."""


def numbers_close(produced: float, expected: float) -> bool:
    """Equal within RTOL (relative) or ATOL (absolute); infinities equal, NaN equals NaN."""
    if math.isnan(produced) or math.isnan(expected):
        return math.isnan(produced) and math.isnan(expected)
    return math.isclose(produced, expected, rel_tol=RTOL, abs_tol=ATOL)


def _unit(token: str) -> Decimal | None:
    """One unit in the last digit ``token`` shows, or None for an integer below 1000."""
    value = Decimal(token.replace(",", ""))
    if not any(c in token for c in ".eE") and abs(value) < 1000:
        return None
    return Decimal(1).scaleb(int(value.as_tuple().exponent))


def tokens_agree(produced: str, expected: str) -> bool:
    """Whether two printed numbers agree (see the module docstring)."""
    if produced == expected:
        return True
    p, e = float(produced.replace(",", "")), float(expected.replace(",", ""))
    if numbers_close(p, e):
        return True
    units = [u for u in (_unit(produced), _unit(expected)) if u is not None]
    if len(units) < 2 and not any(c in produced + expected for c in ".eE"):
        return False  # an integer below 1000 on either side: exactly
    slack = max(units) if units else Decimal(0)
    return abs(Decimal(produced.replace(",", "")) - Decimal(expected.replace(",", ""))) <= slack


def line_difference(produced: str, expected: str) -> str | None:
    """Why one line differs beyond the tolerance, or None when it matches."""
    text_p, numbers_p = NUMBER.split(produced), NUMBER.findall(produced)
    text_e, numbers_e = NUMBER.split(expected), NUMBER.findall(expected)
    if text_p != text_e or len(numbers_p) != len(numbers_e):
        return f"text differs:\n  produced: {produced}\n  expected: {expected}"
    for p, e in zip(numbers_p, numbers_e):
        if not tokens_agree(p, e):
            return f"{p} != {e}:\n  produced: {produced}\n  expected: {expected}"
    return None


def text_difference(produced: str, expected: str) -> str | None:
    """The first line where ``produced`` differs from ``expected`` beyond the tolerance, or
    None when they match."""
    lines_p, lines_e = produced.split("\n"), expected.split("\n")
    for number, (p, e) in enumerate(zip(lines_p, lines_e), start=1):
        if p != e and (why := line_difference(p, e)) is not None:
            return f"line {number}: {why}"
    if len(lines_p) != len(lines_e):
        return f"{len(lines_p)} lines produced, {len(lines_e)} expected"
    return None


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def csv_difference(produced: str, expected: str) -> str | None:
    """The first cell where two CSV texts differ: numbers to RTOL, other cells exactly."""
    rows_p = list(csv.reader(io.StringIO(produced)))
    rows_e = list(csv.reader(io.StringIO(expected)))
    if len(rows_p) != len(rows_e):
        return f"{len(rows_p)} rows produced, {len(rows_e)} expected"
    for number, (row_p, row_e) in enumerate(zip(rows_p, rows_e), start=1):
        if len(row_p) != len(row_e):
            return f"row {number}: {len(row_p)} cells produced, {len(row_e)} expected"
        for p, e in zip(row_p, row_e):
            x, y = _number(p), _number(e)
            same = p == e or (x is not None and y is not None and numbers_close(x, y))
            if not same:
                return f"row {number}: {p!r} != {e!r} (rtol {RTOL:g})"
    return None


def json_difference(produced: Any, expected: Any, where: str = "$") -> str | None:
    """The first place where two JSON values differ beyond the tolerance: floats to RTOL, other
    values (ints, strings, booleans, null, keys, lengths) exactly; None when they match."""
    if isinstance(expected, dict):
        if not isinstance(produced, dict) or produced.keys() != expected.keys():
            keys = sorted(produced) if isinstance(produced, dict) else produced
            return f"{where}: keys {keys!r} != {sorted(expected)!r}"
        for key in expected:
            if (why := json_difference(produced[key], expected[key], f"{where}.{key}")) is not None:
                return why
        return None
    if isinstance(expected, list):
        if not isinstance(produced, list) or len(produced) != len(expected):
            return f"{where}: {produced!r} != {expected!r}"
        for i, (p, e) in enumerate(zip(produced, expected)):
            if (why := json_difference(p, e, f"{where}[{i}]")) is not None:
                return why
        return None
    if isinstance(expected, float) and isinstance(produced, (int, float)) \
            and not isinstance(produced, bool):
        ok = numbers_close(float(produced), expected)
    else:
        ok = produced == expected and type(produced) is type(expected)
    return None if ok else f"{where}: {produced!r} != {expected!r} (rtol {RTOL:g})"


def file_difference(name: str, produced: str, expected: str) -> str | None:
    """Compare by the kind of file ``name`` is: .json by value, .csv by cell, else by line."""
    import json

    if name.endswith(".json"):
        return json_difference(json.loads(produced), json.loads(expected))
    if name.endswith(".csv"):
        return csv_difference(produced, expected)
    return text_difference(produced, expected)
