"""The number rule of human tables (costmodel.units.format_number, report._cell) and renderers."""

from __future__ import annotations

import math
import re

import pytest
from cli_helpers import run
from hypothesis import given
from hypothesis import strategies as st

from costmodel.output.report import Table, render_csv, render_latex, render_markdown, render_text
from costmodel.units import SIGNIFICANT_DIGITS, SMALLEST_SHOWN, format_number


@pytest.mark.parametrize(
    ("value", "text"),
    [(17034.6, "17,035"), (12030.0, "12,030"), (47805.3, "47,805"), (1234567.0, "1,234,567"),
     (999.96, "1,000"), (123.456, "123.5"), (1.5, "1.5"), (0.123456, "0.1235"),
     (0.000123456, "0.0001235"), (2.263e-5, "0.00002263"), (1e-6, "0.000001"),
     (4e-7, "<0.000001"), (-4e-7, ">-0.000001"), (0.0, "0"), (-0.0, "0"), (-2.5, "-2.5"),
     (9.99996, "10"), (131072, "131,072"), (7, "7"), (math.inf, "inf"), (math.nan, "nan")],
)
def test_format_number_by_hand(value: float, text: str) -> None:
    assert format_number(value) == text


def test_format_number_without_separators() -> None:
    assert format_number(1234567.0, separators=False) == "1234567"
    assert format_number(131072, separators=False) == "131072"


SUPPORTED = st.floats(min_value=-1e18, max_value=1e18, allow_nan=False, allow_infinity=False)


@given(SUPPORTED)
def test_never_scientific_notation(value: float) -> None:
    text = format_number(value)
    assert "e" not in text.lower()
    assert "E" not in text


@given(SUPPORTED.filter(lambda v: abs(v) >= SMALLEST_SHOWN))
def test_round_trips_within_the_stated_precision(value: float) -> None:
    """The printed number is the value to SIGNIFICANT_DIGITS significant digits (whole numbers
    from 1,000 up: to the unit)."""
    back = float(format_number(value).replace(",", ""))
    magnitude = abs(value)
    if magnitude >= 1000:
        assert abs(back - value) <= 0.5 + 1e-9 * magnitude
    else:
        last_digit = 10.0 ** (math.floor(math.log10(magnitude)) - SIGNIFICANT_DIGITS + 1)
        assert abs(back - value) <= 0.5 * last_digit * (1 + 1e-9) + 1e-15


@given(st.floats(min_value=0, max_value=SMALLEST_SHOWN, exclude_min=True, exclude_max=True))
def test_tiny_values_say_so(value: float) -> None:
    assert format_number(value) == "<0.000001"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integers_are_exact_with_separators(value: int) -> None:
    text = format_number(value)
    assert int(text.replace(",", "")) == value
    digits = text.lstrip("-").split(",")
    assert all(len(group) == 3 for group in digits[1:]) and 1 <= len(digits[0]) <= 3


TABLE = Table(["P", "total [s/epoch]", "tiny [s]", "note"],
              [[4096, 17034.6, 2.263e-5, "best"], [2, 1.2031e4, 3e-9, None]], "title", ["n"])


def test_text_markdown_and_latex_follow_the_rule_and_csv_keeps_full_precision() -> None:
    for render in (render_text, render_markdown, render_latex):
        text = render(TABLE)
        assert "17,035" in text and "12,031" in text and "4,096" in text
        assert "0.00002263" in text and "e+" not in text and "e-0" not in text
    assert "<0.000001" in render_text(TABLE)
    assert "$<$0.000001" in render_latex(TABLE)
    csv = render_csv(TABLE)
    assert "17034.6" in csv and "2.263e-05" in csv and "3e-09" in csv and "4096" in csv


@pytest.mark.parametrize("args", [
    ("layers", "--net", "vgg16", "--P", "2", "--pr", "1", "--overlap", "backward"),
    ("optimize", "--net", "vgg16", "--P", "2", "--plan", "per-layer"),
    ("optimize", "--net", "vgg16", "--P", "2", "--plan", "all", "--overlap", "backward"),
    ("timeline", "--net", "vgg16", "--P", "2", "--pr", "1", "--overlap", "backward"),
])
def test_notes_of_human_tables_never_use_scientific_notation(args: tuple[str, ...]) -> None:
    """The summary lines under a table (iteration, per-layer total, best grid) followed a .4g
    format: 23,903 s/epoch read "2.39e+04"."""
    text = run(*args)
    assert not re.search(r"\d(\.\d+)?e[+-]\d", text), text
    assert re.search(r"\d{2},\d{3}", text), text  # the large figures are there, with separators
