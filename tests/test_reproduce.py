"""The paper's evaluation reproduced (costmodel.output.reproduce, `gridcost reproduce`).

The reproduced numbers are pinned by tests/data/golden/reproduce_claims.json (rewrite with
`python tests/regen_golden.py`); docs/reproduction.md and the tables under docs/figures must
equal what the generator produces now, so neither can drift from the code.  Files hold numbers
to 12 significant digits (costmodel.output.reproduce.ARTEFACT_DIGITS) and are compared at the precision
stated in tests/golden.py: text exactly, numbers to a relative 1e-9 (one unit of the last digit
a human table shows), never to the last bit of a float.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from golden import RTOL, csv_difference, file_difference, json_difference, text_difference

from costmodel.cli import cli, main
from costmodel.output import plot
from costmodel.output.reproduce import (
    ARTEFACT_DIGITS,
    PAPER_BATCH,
    STUDY_MACHINES,
    STUDY_NETS,
    STUDY_PROCESSES,
    Claim,
    Reproduction,
    artefacts,
    claims_json,
    figure,
    relative_link,
    render_document,
    reproduce,
    significant,
)

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GOLDEN = TESTS / "data" / "golden" / "reproduce_claims.json"
DOCS = ROOT / "docs"
REGEN = ("regenerate with `gridcost reproduce --out docs/figures --doc docs/reproduction.md` "
         "and review the diff")


@pytest.fixture(scope="module")
def repro() -> Reproduction:
    return reproduce()


@pytest.fixture(scope="module")
def claims(repro: Reproduction) -> dict[str, Claim]:
    return {c.key: c for c in repro.claims}


# --------------------------------------------------------------------------- golden numbers


def test_claims_equal_the_golden_file(repro: Reproduction) -> None:
    """Every number of claims.json (values, differences, details) to rtol 1e-9, texts exactly."""
    hint = "if intended, run `python tests/regen_golden.py` and review the diff"
    produced = json.loads(claims_json(repro.claims))
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert [c["key"] for c in produced["claims"]] == [c["key"] for c in expected["claims"]], hint
    assert json_difference(produced, expected) is None, \
        f"{json_difference(produced, expected)}; {hint}"


def test_the_golden_file_holds_the_headline_numbers() -> None:
    """The golden file is not empty or degenerate: it holds the numbers docs/model.md quotes."""
    golden = {c["key"]: c for c in json.loads(GOLDEN.read_text(encoding="utf-8"))["claims"]}
    assert golden["fig7-total-speedup"]["gridcost"] == pytest.approx(2.4982181341466987,
                                                                      rel=RTOL)
    assert golden["fig7-comm-speedup"]["gridcost"] == pytest.approx(10.152757052134147,
                                                                     rel=RTOL)
    assert golden["fig6-best-grid"]["gridcost_text"] == "4×128"


# --------------------------------------------------------------------------- claims


def test_every_claim_cites_its_figure(repro: Reproduction) -> None:
    figures = set()
    for c in repro.claims:
        assert re.fullmatch(r"Fig\. (6|7|8|9|10)", c.figure), c.key
        assert f"({c.figure})" in c.statement or f"{c.figure}:" in c.statement, c.key
        assert c.key.startswith(f"fig{c.figure.split()[1]}-"), c.key
        assert c.explanation, c.key
        figures.add(c.figure)
    assert figures == {"Fig. 6", "Fig. 7", "Fig. 8", "Fig. 9", "Fig. 10"}


def test_the_document_cites_each_figure_with_a_section_and_an_image(
        repro: Reproduction) -> None:
    text = render_document(repro)
    for n in (6, 7, 8, 9, 10):
        assert f"## Fig. {n} —" in text
        assert f"](figures/fig{n}.png)" in text


def test_paper_values_are_the_ones_stated_in_model_md_section_9(
        claims: dict[str, Claim]) -> None:
    stated = {"fig6-best-grid": 16, "fig6-total-speedup": 2.1, "fig6-comm-speedup": 5.0,
              "fig6-P8": 1.0, "fig7-total-speedup": 2.5, "fig7-comm-speedup": 9.7,
              "fig8-total-speedup": 2.0, "fig10-domain-ways": 8, "fig10-reach": 4096}
    assert {k: c.paper for k, c in claims.items() if c.paper is not None} == stated
    assert all(c.paper is None for c in claims.values() if c.figure == "Fig. 9")


def test_which_claims_agree_within_rounding(claims: dict[str, Claim]) -> None:
    agree = {k for k, c in claims.items() if c.within_rounding}
    assert agree == {"fig6-P8", "fig7-total-speedup", "fig8-total-speedup",
                     "fig10-domain-ways", "fig10-reach"}
    assert claims["fig6-best-grid"].gridcost_text == "4×128"


def test_fig6_gap_details_add_up(claims: dict[str, Claim]) -> None:
    """The 16×32 breakdown: conv + fc model comm + batch comm = all comm; + compute = total."""
    d = claims["fig6-total-speedup"].details
    model = d["grid_16x32_model_comm_conv_s"] + d["grid_16x32_model_comm_fc_s"]
    assert model + d["grid_16x32_batch_comm_s"] == pytest.approx(d["grid_16x32_comm_s"])
    assert d["grid_16x32_comm_s"] + d["grid_16x32_compute_s"] == pytest.approx(
        d["grid_16x32_total_s"])
    assert d["implied_paper_16x32_comm_s"] == pytest.approx(d["pure_batch_comm_s"] / 5.0)
    assert d["grid_16x32_speedup"] < 1  # the paper's best grid is slower than 1×512 here


def test_fig7_fc_gap_is_gridcost_below_the_paper(claims: dict[str, Claim]) -> None:
    d = claims["fig7-comm-speedup"].details
    assert d["fc_model_comm_gap_relative_low"] <= d["fc_model_comm_gap_relative"] \
        <= d["fc_model_comm_gap_relative_high"] < 0
    assert d["implied_paper_comm_s"] == pytest.approx(d["pure_batch_comm_s"] / 9.7)


def test_fig10_splits_the_images_p_over_b_ways(repro: Reproduction) -> None:
    exp = next(e for e in repro.experiments if e.key == "fig10")
    assert [opt.P for opt in exp.optima] == [1024, 2048, 4096]
    assert all(opt.best is not None for opt in exp.optima)
    assert not any(bool(opt.pure_batch.feasible[0]) for opt in exp.optima)


@pytest.mark.parametrize(("paper", "gridcost", "decimals", "within", "difference", "relative"), [
    (2.5, 2.45, 1, True, -0.05, -0.02),
    (2.5, 2.5499, 1, True, 0.0499, 0.01996),
    (9.7, 10.15, 1, False, 0.45, 0.45 / 9.7),
    (16.0, 4.0, 0, False, -12.0, -0.75),
])
def test_claim_difference_and_rounding(paper: float, gridcost: float, decimals: int,
                                       within: bool, difference: float,
                                       relative: float) -> None:
    c = Claim("k", "Fig. 7", "s (Fig. 7)", "q", paper, "", gridcost, "", decimals, "why")
    assert c.within_rounding is within
    assert c.difference == pytest.approx(difference)
    assert c.relative == pytest.approx(relative)


def test_a_claim_without_a_paper_value_has_no_difference() -> None:
    c = Claim("k", "Fig. 9", "s (Fig. 9)", "q", None, "setting", 2.5, "", None, "why")
    assert (c.difference, c.relative, c.within_rounding) == (None, None, None)
    assert c.record()["difference"] is None


# --------------------------------------------------------------------------- beyond


def test_the_study_covers_both_networks_machines_and_every_p(repro: Reproduction) -> None:
    pairs = {(s.network, s.machine) for s in repro.studies}
    assert pairs == {(n, m) for n in STUDY_NETS for m in STUDY_MACHINES}
    for study in repro.studies:
        assert study.batch == PAPER_BATCH
        assert study.compute_model.startswith("flops")  # cori-knl's table is AlexNet's
        for opts in study.optima.values():
            assert [o.P for o in opts] == list(STUDY_PROCESSES)
        # fc-model keeps its convolutions pure batch: it cannot pass P = B
        assert study.limits["fc-model"].feasibility.processes == PAPER_BATCH


# --------------------------------------------------------------------------- committed files


def test_the_committed_document_is_current(repro: Reproduction) -> None:
    """docs/reproduction.md is the generator's page: its text exactly, its numbers at the
    precision of tests/golden.py (the last bits of a float differ between machines)."""
    committed = (DOCS / "reproduction.md").read_text(encoding="utf-8")
    why = text_difference(render_document(repro, figures="figures/"), committed)
    assert why is None, f"docs/reproduction.md {why}; {REGEN}"


def test_the_committed_tables_are_current(repro: Reproduction) -> None:
    """Every table and claims.json under docs/figures is what the generator writes now: CSV by
    cell, JSON by value, Markdown and LaTeX by line, numbers at the stated precision."""
    produced = artefacts(repro, figures=False)
    for name, content in produced.items():
        path = DOCS / "figures" / name
        assert path.is_file(), f"{path} is missing; {REGEN}"
        assert isinstance(content, str)
        why = file_difference(name, content, path.read_text(encoding="utf-8"))
        assert why is None, f"{name}: {why}; {REGEN}"
    committed_images = {p.stem for p in (DOCS / "figures").glob("*.png")}
    expected = {e.key for e in repro.experiments} | {s.key for s in repro.studies}
    assert committed_images == expected


def _numbers_in(name: str, text: str) -> list[str]:
    if name.endswith(".json"):
        found: list[str] = []

        def collect(value: object) -> None:
            if isinstance(value, float):
                found.append(repr(value))
            elif isinstance(value, dict):
                for v in value.values():
                    collect(v)
            elif isinstance(value, list):
                for v in value:
                    collect(v)

        collect(json.loads(text))
        return found
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row
            if re.fullmatch(r"-?\d+\.\d*(e[-+]\d+)?", cell)]


def _significant_digits(number: str) -> int:
    mantissa = number.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if mantissa else 0


def test_the_machine_readable_files_hold_at_most_12_significant_digits(
        repro: Reproduction) -> None:
    """CSV and claims.json carry ARTEFACT_DIGITS significant digits, not a float's last bits
    (22.363281249999993 is written 22.36328125 on every machine)."""
    assert ARTEFACT_DIGITS == 12
    files = artefacts(repro, figures=False)
    numbers = [(name, n) for name, text in files.items() if name.endswith((".csv", ".json"))
               for n in _numbers_in(name, str(text))]
    assert len(numbers) > 1000
    longest = max(numbers, key=lambda item: _significant_digits(item[1]))
    assert _significant_digits(longest[1]) <= ARTEFACT_DIGITS, longest
    assert significant(22.363281249999993) == significant(22.363281249999996) == 22.36328125
    assert significant({"a": [279.25000000000006, 1, None, "x"]}) == {"a": [279.25, 1, None, "x"]}


def test_a_last_bit_difference_still_matches_the_committed_tables() -> None:
    """What another machine computes — every float a few units off in its last bits — passes
    the comparison of the committed CSV; a difference in the 6th digit does not."""
    committed = (DOCS / "figures" / "fig6.csv").read_text(encoding="utf-8")

    def scaled(factor: float) -> str:
        rows = list(csv.reader(io.StringIO(committed)))
        for row in rows[1:]:
            row[:] = [repr(float(c) * factor) if re.fullmatch(r"-?\d+\.\d*", c) and float(c)
                      else c for c in row]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()

    nearby = scaled(1 + 3e-16)
    assert nearby != committed
    assert csv_difference(nearby, committed) is None
    assert csv_difference(scaled(1 + 1e-6), committed) is not None


def test_artefacts_are_deterministic(repro: Reproduction) -> None:
    again = reproduce(beyond=False)
    first = artefacts(repro, figures=False)
    second = artefacts(again, figures=False)
    paper_files = {k for k in second if not k.startswith("beyond_") and k != "README.md"}
    assert paper_files and all(first[k] == second[k] for k in paper_files)
    assert artefacts(repro, figures=False) == first


def test_one_figure_is_identical_in_svg_twice_and_a_valid_png(repro: Reproduction) -> None:
    fig9 = next(e for e in repro.experiments if e.key == "fig9")
    first = plot.figure_bytes(figure(fig9), "svg")
    assert first == plot.figure_bytes(figure(fig9), "svg")
    assert b"Fig. 9" in first and b"s/epoch" in first
    png = plot.figure_bytes(figure(fig9), "png", dpi=30)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(("document", "folder", "link"), [
    ("docs/reproduction.md", "docs/figures", "figures/"),
    ("docs/reproduction.md", "docs", ""),
    ("out/doc.md", "repro", "../repro/"),
])
def test_relative_link(document: str, folder: str, link: str) -> None:
    assert relative_link(document, folder) == link


# --------------------------------------------------------------------------- CLI


def test_cli_writes_every_file_once_and_identically_twice(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = CliRunner().invoke(cli, ["reproduce", "--out", str(out), "--no-figures",
                                          "--no-beyond", "--doc", str(tmp_path / f"{run}.md")],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        files = sorted(p.name for p in out.iterdir())
        assert lines == [str(out / name) for name in files] + [str(tmp_path / f"{run}.md")]
        assert {"claims.json", "claims.tex", "fig6.csv", "fig6.tex", "fig9_scaling.md"} <= set(files)
        outputs.append({name: (out / name).read_bytes() for name in files})
    assert outputs[0] == outputs[1]
    doc = (tmp_path / "a.md").read_text(encoding="utf-8")
    assert "](a/fig6.png)" in doc
    assert doc.replace("](a/", "](b/") == (tmp_path / "b.md").read_text(encoding="utf-8")


def test_cli_reports_an_unwritable_folder(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    code = main(["reproduce", "--out", str(blocker), "--no-figures", "--no-beyond"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == f"gridcost: --out: cannot write into {str(blocker)!r}: File exists\n"


def test_cli_rejects_an_unknown_figure_format(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reproduce", "--out", "x", "--format", "gif"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("gridcost: Invalid value for '--format': 'gif' is not one of")
