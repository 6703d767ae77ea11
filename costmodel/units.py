"""Quantities with units: parse ``"6 GiB/s"``, ``"2 us"``, ``"12 TFLOP/s"`` to SI; format SI.

SI inside gridcost means seconds, bytes, bytes/s, FLOP/s.  Parsing happens once, at load time.
"""

from __future__ import annotations

import math
import re

from costmodel.errors import SpecError

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}


def _scaled(base: str, bits: bool = False) -> dict[str, float]:
    """All prefixed spellings of a base unit (``B`` → ``kB``, ``KiB``…) with their factor."""
    table = {f"{p}{base}": f for p, f in _DECIMAL.items()}
    table.update({f"{p}{base}": f for p, f in _BINARY.items()})
    if bits:
        table = {k: v / 8.0 for k, v in table.items()}
    return table


BYTE_UNITS = _scaled("B")
BANDWIDTH_UNITS = {f"{k}/s": v for k, v in _scaled("B").items()}
BANDWIDTH_UNITS.update({f"{k}/s": v for k, v in _scaled("bit", bits=True).items()})
BANDWIDTH_UNITS.update({f"{k[:-3]}bps": v for k, v in _scaled("bit", bits=True).items()})
FLOP_RATE_UNITS = {f"{k}/s": v for k, v in _scaled("FLOP").items()}
FLOP_RATE_UNITS.update({f"{k[:-4]}FLOPS": v for k, v in _scaled("FLOP").items()})

KINDS: dict[str, tuple[dict[str, float], str]] = {
    "time": (TIME_UNITS, "'<number> <unit>' with unit h, min, s, ms, us or ns, e.g. '2 us'"),
    "bytes": (BYTE_UNITS,
              "'<number> <unit>' with unit B, kB, MB, GB, KiB, MiB, GiB…, e.g. '16 GiB'"),
    "bandwidth": (
        BANDWIDTH_UNITS,
        "'<number> <unit>' with unit B/s, GB/s, GiB/s, Gbit/s or Gbps…, e.g. '6 GiB/s'",
    ),
    "flop_rate": (FLOP_RATE_UNITS, "'<number> <unit>' with unit FLOP/s, GFLOP/s, TFLOP/s…"),
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ/]+)\s*$")


def parse_quantity(text: object, kind: str, source: str = "", field: str = "") -> float:
    """Parse ``text`` (e.g. ``"6 GiB/s"``) as a quantity of ``kind`` and return it in SI units.

    Raises SpecError naming ``source`` and ``field`` when the text has no number, no unit, an
    unknown unit, or a value that is not finite and positive.
    """
    units, expected = KINDS[kind]
    if isinstance(text, bool) or not isinstance(text, str):
        raise SpecError(source, field, expected, text)
    match = _QUANTITY.match(text)
    if match is None or match.group(2) not in units:
        raise SpecError(source, field, expected, text)
    factor = units[match.group(2)]
    # dividing by an exact power of ten keeps "5 us" == 5e-6 exactly
    value = float(match.group(1)) * factor if factor >= 1 else float(match.group(1)) / round(
        1 / factor)
    if not math.isfinite(value) or value <= 0:
        raise SpecError(source, field, f"a positive {kind.replace('_', ' ')}", text)
    return value


SIGNIFICANT_DIGITS = 4
"""Significant digits of every number in a human table (text, Markdown, LaTeX)."""

SMALLEST_SHOWN = 1e-6
"""Nonzero magnitudes below this read ``<0.000001`` in human tables: a microsecond, the finest
time the model resolves (α is microseconds); below it a figure carries no information."""


def format_number(value: float | int, digits: int = SIGNIFICANT_DIGITS,
                  separators: bool = True) -> str:
    """A number for people, the one rule of every human table (CSV and JSON keep full precision).

    Never scientific notation.  Integers in full with thousands separators (``131,072``).  A
    float keeps ``digits`` significant digits in fixed point, trailing zeros dropped
    (``0.1235``, ``12.35``); from 1,000 up it is rounded to a whole number with thousands
    separators (``17,035``), so no integer digit is lost; a nonzero magnitude below
    SMALLEST_SHOWN reads ``<0.000001`` (``>-0.000001`` when negative); 0 is ``0``; infinities and
    NaN read ``inf``, ``-inf``, ``nan``.  ``separators=False`` leaves out the thousands
    separators (for a quantity that must parse back, :func:`format_seconds`).
    """
    comma = "," if separators else ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:{comma}}"
    x = float(value)
    if not math.isfinite(x):
        return str(x)
    if x == 0.0:
        return "0"
    magnitude = abs(x)
    if magnitude < SMALLEST_SHOWN:
        return f"<{SMALLEST_SHOWN:.6f}" if x > 0 else f">-{SMALLEST_SHOWN:.6f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{x:{comma}.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0") else text


def format_seconds(seconds: float) -> str:
    """Format a duration for people: ``2e-06`` → ``'2 us'``, ``1776`` → ``'1776 s'``.

    No thousands separators and no exponent: a quantity gridcost prints parses back with
    :func:`parse_quantity`."""
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= factor or unit == "ns":
            return f"{format_number(seconds / factor, separators=False)} {unit}"
    raise AssertionError("unreachable")


def format_rate(value: float, unit: str) -> str:
    """Format a rate with a decimal prefix: ``6.44e9, 'B/s'`` → ``'6.44 GB/s'``."""
    for prefix, factor in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= factor:
            return f"{format_number(value / factor, separators=False)} {prefix}{unit}"
    return f"{format_number(value, separators=False)} {unit}"


def format_bytes(value: float) -> str:
    """Format a byte count with a binary prefix: ``16 * 2**30`` → ``'16 GiB'``."""
    for prefix, factor in (("Ti", 2.0**40), ("Gi", 2.0**30), ("Mi", 2.0**20), ("Ki", 2.0**10)):
        if abs(value) >= factor:
            return f"{format_number(value / factor, separators=False)} {prefix}B"
    return f"{format_number(value, separators=False)} B"
