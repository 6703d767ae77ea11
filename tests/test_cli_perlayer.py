"""`gridcost optimize --plan per-layer` and the per-layer row of `--plan all` (docs/perlayer.md,
docs/json.md "per-layer")."""

from __future__ import annotations

import pytest
from cli_helpers import run, run_json

from costmodel.cli import main

ARGS = ("optimize", "--net", "alexnet", "--P", "512", "--plan", "per-layer")
LAYER_KEYS = {"layer", "kind", "split", "pr", "pc", "uneven", "model_comm_s", "batch_comm_s",
              "domain_comm_s", "comm_s", "redistribution_in_s", "redistribution_in_words",
              "redistribution_in_messages", "redistribution_in"}
TOP_KEYS = {"gridcost_version", "net", "machine", "P", "batch", "plan", "overlap", "collectives",
            "compute_model", "compute_outside_table", "redistribution_charged", "unit",
            "iterations_per_epoch", "layouts", "method", "exact", "lower_bound_s", "layers",
            "best", "pure_batch", "fixed_plans", "best_fixed_uncharged", "best_fixed_charged"}
BEST_KEYS = {"compute_s", "model_comm_s", "batch_comm_s", "domain_comm_s", "redistribution_s",
             "comm_s", "total_s", "layout_changes", "speedup_vs_pure_batch",
             "speedup_vs_best_fixed_charged", "speedup_vs_best_fixed_uncharged"}






def test_text_shows_each_layer_and_where_redistribution_happens() -> None:
    lines = run(*ARGS).splitlines()
    assert lines[0].startswith("alexnet on cori-knl: P=512, B=2048, plan per-layer "
                               "(19 layouts per layer), overlap none")
    assert lines[1].split("  ")[0:3] == ["layer", "split", "Pr×Pc"]
    assert "redistribution in [s/epoch]" in lines[1] and "layer comm [s/epoch]" in lines[1]
    rows = {line.split()[0]: line for line in lines[3:11]}
    assert list(rows) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert rows["conv5"].split()[1:3] == ["batch", "1×512"]
    assert rows["fc6"].split()[1:3] == ["model", "32×16"]
    assert rows["fc6"].endswith("fwd all-gather over 32; bwd none (local)")
    assert "per-layer total: 27.16 s/epoch" in "\n".join(lines)
    assert any(line.startswith("  vs best fixed plan with redistribution charged, fc-model 32×16")
               for line in lines)


def test_json_structure_and_sums() -> None:
    record = run_json(*ARGS)
    assert set(record) == TOP_KEYS
    assert record["redistribution_charged"] is True and record["exact"] is True
    assert set(record["best"]) == BEST_KEYS
    layers = record["layers"]
    assert len(layers) == 8 and all(set(r) == LAYER_KEYS for r in layers)
    best = record["best"]
    assert best["redistribution_s"] == pytest.approx(sum(r["redistribution_in_s"]
                                                         for r in layers), rel=1e-12)
    assert best["comm_s"] == pytest.approx(sum(r["comm_s"] + r["redistribution_in_s"]
                                               for r in layers), rel=1e-12)
    assert best["total_s"] == pytest.approx(best["compute_s"] + best["comm_s"], rel=1e-12)
    assert record["lower_bound_s"] == best["total_s"]
    assert best["layout_changes"] == sum(r["redistribution_in"] is not None for r in layers) == 1
    assert [f["plan"] for f in record["fixed_plans"]] == ["model-batch", "fc-model",
                                                        "domain-batch", "beyond-batch"]
    assert best["total_s"] <= record["best_fixed_charged"]["total_s"]
    assert layers[0]["redistribution_in_s"] == 0 and layers[0]["redistribution_in"] is None


def test_overlap_batch_reports_a_bound() -> None:
    record = run_json(*ARGS, "--overlap", "batch")
    best = record["best"]
    assert record["lower_bound_s"] <= best["total_s"]
    assert best["total_s"] <= record["best_fixed_charged"]["total_s"]
    assert best["total_s"] == pytest.approx(
        max(best["compute_s"], best["batch_comm_s"]) + best["model_comm_s"]
        + best["domain_comm_s"] + best["redistribution_s"], rel=1e-12)


def test_plan_all_has_a_per_layer_row_and_record() -> None:
    out = run("optimize", "--net", "alexnet", "--P", "512", "--plan", "all")
    row = next(line for line in out.splitlines() if line.startswith("per-layer"))
    assert "per layer (1 layout change)" in row
    record = run_json("optimize", "--net", "alexnet", "--P", "512", "--plan", "all")
    assert record["per_layer"] == run_json(*ARGS)


def test_plan_all_with_an_infeasible_per_layer_plan() -> None:
    record = run_json("optimize", "--net", "alexnet", "--P", "65536", "--batch", "8",
                      "--plan", "all")
    per_layer = record["per_layer"]
    assert per_layer["best"] is None and per_layer["layers"] == []
    assert per_layer["error"] == "no feasible layout"
    assert per_layer["reason"].startswith("plan per-layer: no feasible layout for conv1")


def test_infeasible_per_layer_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["optimize", "--net", "alexnet", "--P", "65536", "--batch", "8",
                 "--plan", "per-layer"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == ("gridcost: plan per-layer: no feasible layout for conv1 at P=65536, B=8: "
                   "Pc = P/Pr ≤ B=8 needs Pr ≥ 8192; a model split allows Pr ≤ 96 filters; a "
                   "domain split Pr ≤ 45 (227 rows in strips of ≥ 5)\n")


def test_sweep_does_not_offer_per_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", "--net", "alexnet", "--P", "8,16", "--plan", "per-layer"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("gridcost: --plan per-layer is not available for "
                                        "`sweep`")


def test_report_grids_per_layer_latex() -> None:
    text = run("report", "grids", *ARGS[1:], "--format", "latex")
    assert r"\begin{tabular}" in text and "fc6 & model" in text
    body = text[text.index(r"\begin{tabular}"):text.index(r"\end{tabular}")]
    assert body.isascii()


def test_per_layer_with_a_memory_check_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*ARGS, "--memory-check"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == ("gridcost: --plan per-layer: the per-layer plan does not model memory; drop "
                   "--memory-check and --optimizer\n")


def test_plan_all_with_a_memory_check_leaves_per_layer_out() -> None:
    args = ("optimize", "--net", "alexnet", "--P", "512", "--plan", "all", "--memory-check")
    assert run_json(*args)["per_layer"] is None
    assert not any(line.startswith("per-layer") for line in run(*args).splitlines())


# --------------------------------------------------------------------------- machines with levels

LEVELS = ("optimize", "--net", "alexnet", "--machine", "a100-ib-nodes", "--P", "64",
          "--plan", "per-layer")


def test_levels_text_shows_each_layers_split_and_the_mapping() -> None:
    lines = run(*LEVELS).splitlines()
    # AlexNet at P = 64 on 8-GPU nodes: conv batch, fc model 4×16 with the Pc groups of 16 in
    # the nodes — pc-inside — for every layer, against pr-inside's own optimum
    assert lines[0].endswith(", mapping pc-inside")
    rows = {line.split()[0]: line.split() for line in lines[3:11]}
    assert [rows[name][1:3] for name in ("conv5", "fc6")] == [["batch", "1×64"],
                                                              ["model", "4×16"]]
    mapping = next(line for line in lines if line.startswith("  mapping "))
    assert mapping.startswith("  mapping pc-inside for every layer (the cheaper): ")
    assert "; with pr-inside: " in mapping
    record = run_json(*LEVELS)
    best = record["best"]
    assert record["mapping"] == "best" and best["mapping"] == "pc-inside"
    totals = best["mapping_total_s"]
    assert totals["pc-inside"] == best["total_s"] < totals["pr-inside"]
    assert f"{totals['pr-inside']:.4g}" in mapping
    assert [lv["name"] for lv in record["levels"]] == ["node", "network"]
    assert best["total_s"] <= record["best_fixed_charged"]["total_s"]
    assert record["best_fixed_charged"]["mapping"] in ("pr-inside", "pc-inside")
    assert all({"mapping", "charged_mapping"} <= set(f) for f in record["fixed_plans"])


def test_levels_forced_mapping() -> None:
    record = run_json(*LEVELS, "--mapping", "pr-inside")
    best = record["best"]
    assert record["mapping"] == "pr-inside" and best["mapping"] == "pr-inside"
    assert best["total_s"] == best["mapping_total_s"]["pr-inside"]
    free = run_json(*LEVELS)["best"]["mapping_total_s"]
    assert best["mapping_total_s"] == free  # both mappings are solved either way
    assert all(f["charged_mapping"] == "pr-inside" for f in record["fixed_plans"])
    assert "(forced by --mapping)" in run(*LEVELS, "--mapping", "pr-inside")


def test_levels_plan_all_row_names_the_mapping() -> None:
    out = run("optimize", "--net", "alexnet", "--machine", "a100-ib-nodes", "--P", "64",
              "--plan", "all")
    row = next(line for line in out.splitlines() if line.startswith("per-layer"))
    assert "per layer (1 layout change, pc-inside)" in row


def test_levels_overlap_batch_keeps_its_bound() -> None:
    record = run_json(*LEVELS, "--overlap", "batch")
    best = record["best"]
    assert record["lower_bound_s"] <= best["total_s"] <= record["best_fixed_charged"]["total_s"]
    assert best["total_s"] == pytest.approx(
        max(best["compute_s"], best["batch_comm_s"]) + best["model_comm_s"]
        + best["domain_comm_s"] + best["redistribution_s"], rel=1e-12)
