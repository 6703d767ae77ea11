"""`optimize`'s baselines (docs/cli.md, "Baselines"): the summary's "vs pure batch" and "vs pure
model" lines, the JSON `pure_batch`/`pure_model` records and the table's 1×P and P×1 rows are one
and the same grid, costed once, for every plan — feasible or not."""

from __future__ import annotations

from typing import Any

import pytest
from cli_helpers import run, run_json

from costmodel.engine.plans import PLANS
from costmodel.inputs.loaders import load_network
from costmodel.planning.search import feasibility_limit

CASES = [(2, 2048), (8, 2048), (64, 2048), (512, 2048), (4096, 512), (2048, 64)]


def _summary_line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"  vs {label} "))


def _ratio_text(value: float) -> str:
    return f"{value:.2f}×"


def _check_baseline(record: dict[str, Any], key: str, row: dict[str, Any], line: str) -> None:
    baseline = record[key]
    assert (baseline["pr"], baseline["pc"]) == (row["pr"], row["pc"])
    assert baseline["feasible"] == row["feasible"]
    # an infeasible grid's costs are given for information; its baseline has none
    assert baseline["total_s"] == (row["total_s"] if row["feasible"] else None)
    assert baseline["reason"] == row.get("reason")
    assert f"{row['pr']}×{row['pc']}" in line
    if row["feasible"]:
        assert _ratio_text(row["total_s"] / record["best"]["total_s"]) in line
    else:
        assert line.endswith(f"infeasible ({row['reason']})")


@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize(("P", "B"), CASES)
def test_summary_json_and_rows_agree(plan: str, P: int, B: int) -> None:
    args = ("optimize", "--net", "alexnet", "--P", str(P), "--batch", str(B), "--plan", plan)
    record = run_json(*args) if _feasible(plan, P, B) else None
    if record is None:
        return
    text = run(*args)
    first, last = record["grids"][0], record["grids"][-1]
    assert (first["pr"], last["pc"]) == (1, 1)
    _check_baseline(record, "pure_batch", first, _summary_line(text, "pure batch"))
    _check_baseline(record, "pure_model", last, _summary_line(text, "pure model"))
    best = record["best"]
    if last["feasible"]:
        assert best["speedup_vs_pure_model"] == last["total_s"] / best["total_s"]
    if first["feasible"]:
        assert best["speedup_vs_pure_batch"] == first["total_s"] / best["total_s"]


def _feasible(plan: str, P: int, B: int) -> bool:
    return feasibility_limit(load_network("alexnet"), PLANS[plan], B).processes >= P


def test_the_issue_cases() -> None:
    # domain-batch P = 8: the 8×1 row is 355 s/epoch, so the summary's ratio is 355/313.4
    text = run("optimize", "--net", "alexnet", "--P", "8", "--plan", "domain-batch")
    assert ("  vs pure model 8×1 (conv layers domain-split over 8, fc layers model-split over "
            "8): 1.13× total") in text.splitlines()
    # P = 2: the best grid is 1×2, the pure model row 2×1
    text = run("optimize", "--net", "alexnet", "--P", "2", "--plan", "domain-batch")
    assert "  vs pure model 2×1 (conv layers domain-split over 2, fc layers model-split over " \
           "2): 1.05× total" in text.splitlines()
    # P = 512: the row and the summary give the same reason
    text = run("optimize", "--net", "alexnet", "--P", "512", "--plan", "domain-batch")
    reason = "conv1: 227/512 = 0.443 rows per strip, thinner than its halo of 5"
    assert f"infeasible: {reason}" in text
    assert _summary_line(text, "pure model").endswith(f"infeasible ({reason})")


def test_model_batch_baselines_need_no_layout_note() -> None:
    text = run("optimize", "--net", "alexnet", "--P", "8", "--plan", "model-batch")
    assert _summary_line(text, "pure batch").startswith("  vs pure batch 1×8: ")
    assert _summary_line(text, "pure model").startswith("  vs pure model 8×1: ")
    record = run_json("optimize", "--net", "alexnet", "--P", "8", "--plan", "model-batch")
    assert record["pure_batch"]["layout"] == "every layer batch-split over 8"
    assert record["pure_model"]["layout"] == "every layer model-split over 8"
