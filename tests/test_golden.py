"""The comparison every golden and "the doc is current" test uses (tests/golden.py)."""

from __future__ import annotations

import pytest
from golden import (
    csv_difference,
    file_difference,
    json_difference,
    text_difference,
    tokens_agree,
)


@pytest.mark.parametrize(("produced", "expected", "agree"), [
    ("22.363281249999993", "22.363281249999996", True),   # the last bits of a float
    ("22.36328125", "22.3632812501", True),               # a 12-digit rounding flip
    ("279.2", "279.3", True),                             # a human table on a boundary
    ("1289", "1290", True),                               # four digits, no decimals
    ("38.99", "39", True),
    ("1.234e+04", "1.235e+04", True),
    ("17,234", "17,235", True),
    ("279.2", "279.4", False),                            # two units: a real change
    ("22.36", "22.38", False),
    ("128", "127", False),                                # grid sides and counts: exactly
    ("8", "9", False),
    ("0.0", "1e-17", True),
])
def test_tokens_agree(produced: str, expected: str, agree: bool) -> None:
    assert tokens_agree(produced, expected) is agree
    assert tokens_agree(expected, produced) is agree


def test_text_compares_words_exactly_and_numbers_at_the_tolerance() -> None:
    assert text_difference("best 4×128: 279.3 s/epoch\n", "best 4×128: 279.2 s/epoch\n") is None
    assert "text differs" in str(text_difference("best 4×128: 279.3 s\n", "best 4×128: 279.3 m\n"))
    assert "128 != 64" in str(text_difference("best 4×128\n", "best 4×64\n"))
    assert "line 2" in str(text_difference("a\nb\n", "a\n"))


def test_csv_compares_cells() -> None:
    assert csv_difference("P,t [s]\n8,279.25000000000006\n", "P,t [s]\n8,279.25\n") is None
    assert csv_difference("P,t [s]\n8,279.26\n", "P,t [s]\n8,279.25\n") is not None
    assert csv_difference("P,t [s]\n8,279.25\n", "P,t [s]\n16,279.25\n") is not None
    assert csv_difference("P,t [h]\n8,1\n", "P,t [s]\n8,1\n") is not None


def test_json_compares_floats_at_the_tolerance_and_the_rest_exactly() -> None:
    assert json_difference({"a": [1, 2.0000000000001]}, {"a": [1, 2.0]}) is None
    assert json_difference({"a": [1, 2.001]}, {"a": [1, 2.0]}) is not None
    assert json_difference({"a": 1}, {"a": True}) is not None
    assert json_difference({"a": 1}, {"b": 1}) is not None
    assert json_difference({"n": 3}, {"n": 4}) is not None
    assert file_difference("x.json", '{"t": 0.30000000000000004}', '{"t": 0.3}') is None
