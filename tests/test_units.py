"""Tests of costmodel.units: quantities with units parsed to SI, and SI formatted for people."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel.errors import SpecError
from costmodel.units import (
    BANDWIDTH_UNITS,
    BYTE_UNITS,
    FLOP_RATE_UNITS,
    KINDS,
    TIME_UNITS,
    format_bytes,
    format_rate,
    format_seconds,
    parse_quantity,
)

GIB = 2**30


# --------------------------------------------------------------------------- good quantities


@pytest.mark.parametrize(
    ("text", "kind", "si"),
    [
        # time
        ("2 us", "time", 2e-6),
        ("2 µs", "time", 2e-6),
        ("1.5 ms", "time", 1.5e-3),
        ("30 ns", "time", 30e-9),
        ("1776 s", "time", 1776.0),
        ("2 min", "time", 120.0),
        ("1 h", "time", 3600.0),
        ("1e3 us", "time", 1e-3),
        ("  7s  ", "time", 7.0),
        ("+4 s", "time", 4.0),
        (".5 s", "time", 0.5),
        # bytes
        ("16 GiB", "bytes", 16 * GIB),
        ("1 KiB", "bytes", 1024.0),
        ("1 kB", "bytes", 1000.0),
        ("1 KB", "bytes", 1000.0),
        ("3 MB", "bytes", 3e6),
        ("2 TiB", "bytes", 2.0 * 2**40),
        ("512 B", "bytes", 512.0),
        # bandwidth: bytes per second
        ("6 GiB/s", "bandwidth", 6 * GIB),
        ("6GiB/s", "bandwidth", 6 * GIB),
        ("25 GB/s", "bandwidth", 25e9),
        ("100 MB/s", "bandwidth", 1e8),
        ("1 B/s", "bandwidth", 1.0),
        # bandwidth: bits per second
        ("25 Gbit/s", "bandwidth", 3.125e9),
        ("25 Gbps", "bandwidth", 3.125e9),
        ("200 Gbit/s", "bandwidth", 25e9),
        ("8 bit/s", "bandwidth", 1.0),
        ("8 bps", "bandwidth", 1.0),
        ("8 Mbps", "bandwidth", 1e6),
        ("8 Gibit/s", "bandwidth", GIB),
        # flop rate
        ("12 TFLOP/s", "flop_rate", 1.2e13),
        ("12 TFLOPS", "flop_rate", 1.2e13),
        ("2.33 TFLOP/s", "flop_rate", 2.33e12),
        ("1 GFLOP/s", "flop_rate", 1e9),
        ("5 FLOP/s", "flop_rate", 5.0),
        ("1 PFLOP/s", "flop_rate", 1e15),
    ],
)
def test_parse_quantity_to_si(text: str, kind: str, si: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(si, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "kind", "si"),
    [("6 GiB/s", "bandwidth", 6 * 2**30), ("2 us", "time", 2e-6),
     ("25 Gbit/s", "bandwidth", 3.125e9), ("12 TFLOP/s", "flop_rate", 1.2e13),
     ("16 GiB", "bytes", 16 * 2**30)],
)
def test_parse_quantity_hand_checked_values_are_exact(text: str, kind: str, si: float) -> None:
    """The numbers the paper and the bundled profiles rely on come out bit-exact."""
    assert parse_quantity(text, kind) == si


def test_every_kind_has_a_unit_table() -> None:
    assert set(KINDS) == {"time", "bytes", "bandwidth", "flop_rate"}
    assert KINDS["time"][0] is TIME_UNITS
    assert KINDS["bytes"][0] is BYTE_UNITS
    assert KINDS["bandwidth"][0] is BANDWIDTH_UNITS
    assert KINDS["flop_rate"][0] is FLOP_RATE_UNITS


def test_bit_units_are_an_eighth_of_byte_units() -> None:
    for prefix in ("", "k", "M", "G", "T", "Ki", "Mi", "Gi"):
        assert BANDWIDTH_UNITS[f"{prefix}bit/s"] == BANDWIDTH_UNITS[f"{prefix}B/s"] / 8
        assert BANDWIDTH_UNITS[f"{prefix}bps"] == BANDWIDTH_UNITS[f"{prefix}B/s"] / 8


def test_units_are_case_sensitive() -> None:
    """'Mb/s' would be ambiguous (bits or bytes?), and 'mB' is a millibyte: neither is accepted."""
    for text in ("1 mB/s", "1 gb/s", "1 GIB/s"):
        with pytest.raises(SpecError):
            parse_quantity(text, "bandwidth")


_UNIT_CASES = [(kind, unit, factor)
               for kind, (table, _) in sorted(KINDS.items())
               for unit, factor in sorted(table.items())]


@given(
    case=st.sampled_from(_UNIT_CASES),
    value=st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
    space=st.sampled_from(["", " ", "  "]),
)
def test_parse_quantity_round_trip(case: tuple[str, str, float], value: float,
                                   space: str) -> None:
    """Any positive value written with any unit parses back to value × factor."""
    kind, unit, factor = case
    parsed = parse_quantity(f"{value!r}{space}{unit}", kind)
    assert parsed == pytest.approx(value * factor, rel=1e-12)


@given(case=st.sampled_from(_UNIT_CASES),
       value=st.floats(max_value=0.0, allow_nan=False, allow_infinity=False))
def test_parse_quantity_rejects_any_non_positive_value(case: tuple[str, str, float],
                                                       value: float) -> None:
    kind, unit, _ = case
    with pytest.raises(SpecError):
        parse_quantity(f"{value!r} {unit}", kind, "f.yaml", "x")


# --------------------------------------------------------------------------- bad quantities

_BW = "'<number> <unit>' with unit B/s, GB/s, GiB/s, Gbit/s or Gbps…, e.g. '6 GiB/s'"
_TIME = "'<number> <unit>' with unit h, min, s, ms, us or ns, e.g. '2 us'"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("25", f"machines/m.yaml: bandwidth: expected {_BW}, got '25'"),
        (25, f"machines/m.yaml: bandwidth: expected {_BW}, got 25"),
        ("6 parsecs", f"machines/m.yaml: bandwidth: expected {_BW}, got '6 parsecs'"),
        ("GiB/s", f"machines/m.yaml: bandwidth: expected {_BW}, got 'GiB/s'"),
        ("six GiB/s", f"machines/m.yaml: bandwidth: expected {_BW}, got 'six GiB/s'"),
        ("6 GiB", f"machines/m.yaml: bandwidth: expected {_BW}, got '6 GiB'"),
        ("-6 GiB/s", "machines/m.yaml: bandwidth: expected a positive bandwidth, got '-6 GiB/s'"),
        ("0 GiB/s", "machines/m.yaml: bandwidth: expected a positive bandwidth, got '0 GiB/s'"),
        (None, f"machines/m.yaml: bandwidth: expected {_BW}, got None"),
        (6.0, f"machines/m.yaml: bandwidth: expected {_BW}, got 6.0"),
        (True, f"machines/m.yaml: bandwidth: expected {_BW}, got True"),
        (["6 GiB/s"], f"machines/m.yaml: bandwidth: expected {_BW}, got ['6 GiB/s']"),
    ],
    ids=["number-string", "int", "unknown-unit", "no-number", "word-number", "wrong-kind",
         "negative", "zero", "none", "float", "bool", "list"],
)
def test_bad_bandwidth_message(value: object, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_quantity(value, "bandwidth", "machines/m.yaml", "bandwidth")
    assert str(info.value) == message
    assert info.value.source == "machines/m.yaml"
    assert info.value.field == "bandwidth"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2", f"m.yaml: alpha: expected {_TIME}, got '2'"),
        ("2 parsecs", f"m.yaml: alpha: expected {_TIME}, got '2 parsecs'"),
        ("-2 us", "m.yaml: alpha: expected a positive time, got '-2 us'"),
        ("0 s", "m.yaml: alpha: expected a positive time, got '0 s'"),
        ("inf s", f"m.yaml: alpha: expected {_TIME}, got 'inf s'"),
        ("nan s", f"m.yaml: alpha: expected {_TIME}, got 'nan s'"),
    ],
    ids=["no-unit", "unknown-unit", "negative", "zero", "inf", "nan"],
)
def test_bad_time_message(value: object, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_quantity(value, "time", "m.yaml", "alpha")
    assert str(info.value) == message


def test_overflow_to_infinity_is_rejected() -> None:
    with pytest.raises(SpecError) as info:
        parse_quantity("1e400 s", "time", "m.yaml", "alpha")
    assert str(info.value) == "m.yaml: alpha: expected a positive time, got '1e400 s'"


@pytest.mark.parametrize(("kind", "text"),
                         [("time", "16 GiB"), ("bytes", "2 us"), ("flop_rate", "6 GiB/s"),
                          ("bandwidth", "12 TFLOP/s")])
def test_unit_of_another_kind_is_rejected(kind: str, text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_quantity(text, kind, "f.yaml", "field")
    assert str(info.value) == f"f.yaml: field: expected {KINDS[kind][1]}, got {text!r}"


def test_message_without_source_or_field() -> None:
    with pytest.raises(SpecError) as info:
        parse_quantity("25", "flop_rate")
    assert str(info.value) == (
        "expected '<number> <unit>' with unit FLOP/s, GFLOP/s, TFLOP/s…, got '25'"
    )


def test_flop_rate_message_names_the_kind() -> None:
    with pytest.raises(SpecError) as info:
        parse_quantity("0 TFLOP/s", "flop_rate", "m.yaml", "flop_rate")
    assert str(info.value) == "m.yaml: flop_rate: expected a positive flop rate, got '0 TFLOP/s'"


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2e-6, "2 us"), (1776.0, "1776 s"), (1.0, "1 s"), (0.0125, "12.5 ms"), (3e-9, "3 ns"),
     (0.0, "0 ns"), (123456.0, "123456 s"), (1.23456e9, "1234560000 s")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(6 * 2**30, "B/s", "6.442 GB/s"), (1.2e13, "FLOP/s", "12 TFLOP/s"), (999.0, "B/s", "999 B/s"),
     (1e3, "B/s", "1 kB/s"), (2.5e15, "FLOP/s", "2.5 PFLOP/s")],
)
def test_format_rate(value: float, unit: str, text: str) -> None:
    assert format_rate(value, unit) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(16 * 2**30, "16 GiB"), (1024.0, "1 KiB"), (1000.0, "1000 B"), (1.5 * 2**40, "1.5 TiB"),
     (3 * 2**20, "3 MiB")],
)
def test_format_bytes(value: float, text: str) -> None:
    assert format_bytes(value) == text


@given(st.floats(min_value=1e-9, max_value=1e6, allow_nan=False))
def test_format_seconds_parses_back(seconds: float) -> None:
    """What gridcost prints as a time is itself a valid time quantity (to 4 digits)."""
    text = format_seconds(seconds)
    assert math.isclose(parse_quantity(text, "time"), seconds, rel_tol=1e-3)
