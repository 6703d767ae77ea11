"""The command line under --overlap backward and `gridcost timeline` (docs/schedule.md, docs/cli.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from cli_helpers import fail, run, run_json

from costmodel.inputs.loaders import load_machine, load_network
from costmodel.planning.iteration import iteration_schedule
from costmodel.planning.search import Settings


def test_optimize_backward_reports_buckets_and_exposed_communication() -> None:
    out = run("optimize", "--net", "alexnet", "--P", "64", "--plan", "fc-model",
              "--overlap", "backward")
    assert "overlap backward (buckets ddp)" in out
    assert "exposed comm [s/epoch]" in out
    assert "schedule (buckets ddp): exposed communication" in out
    record = run_json("optimize", "--net", "alexnet", "--P", "64", "--plan", "fc-model",
                      "--overlap", "backward", "--bucket", "horovod", "--per", "iteration")
    assert record["overlap"] == "backward"
    assert record["bucket"]["name"] == "horovod"
    assert record["bucket"]["cap_bytes"] == 64 * 2**20
    best = record["best"]
    sched = best["schedule"]
    assert best["total_s"] == pytest.approx(best["compute_s"] + sched["exposed_comm_s"])
    assert sched["exposed_comm_s"] == pytest.approx(sched["blocking_comm_s"] + sched["wait_s"]
                                                    + sched["tail_s"])


def test_paper_output_is_unchanged_without_backward() -> None:
    record = run_json("optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model")
    assert "bucket" not in record and "schedule" not in record["best"]
    assert record["best"]["total_s"] == pytest.approx(26.74043235821882, rel=1e-12)


def test_bucket_size_zero_is_one_allreduce_per_layer() -> None:
    record = run_json("optimize", "--net", "alexnet", "--P", "64", "--overlap", "backward",
                      "--bucket-size", "0", "--per", "iteration")
    assert record["bucket"]["name"] == "layer"
    assert record["best"]["schedule"]["buckets"] == 8


def test_layers_sweep_explain_report_and_plots_accept_backward(tmp_path: Path) -> None:
    out = run("layers", "--net", "vgg16", "--P", "64", "--pr", "2", "--overlap", "backward")
    assert "overlap backward (buckets ddp" in out
    record = run_json("layers", "--net", "vgg16", "--P", "64", "--pr", "2", "--overlap",
                      "backward")
    assert record["schedule"]["buckets"] >= 1
    sweep = run_json("sweep", "--net", "alexnet", "--P", "8,64", "--overlap", "backward",
                     "--bucket", "layer")
    assert sweep["bucket"]["name"] == "layer"
    out = run("explain", "--net", "alexnet", "--P", "64", "--pr", "4", "--plan", "fc-model",
              "--overlap", "backward", "--per", "iteration")
    assert "total (overlap backward" in out and "all-reduce bucket 1" in out
    assert "schedule of the backward pass" in out
    explained = run_json("explain", "--net", "alexnet", "--P", "64", "--pr", "4", "--overlap",
                         "backward")
    assert explained["schedule"]
    assert "exposed comm" in run("report", "grids", "--net", "alexnet", "--P", "64",
                                 "--overlap", "backward")
    for kind in ("grid", "curve", "layers"):
        target = tmp_path / f"{kind}.png"
        run("plot", kind, "--net", "alexnet", "--P", "64", "--overlap", "backward", "-o",
            str(target))
        assert target.stat().st_size > 0


def test_per_layer_under_backward_says_how_it_was_solved() -> None:
    out = run("optimize", "--net", "alexnet", "--P", "64", "--plan", "per-layer", "--overlap",
              "backward", "--per", "iteration")
    assert "overlap backward" in out
    record = run_json("optimize", "--net", "alexnet", "--P", "64", "--plan", "per-layer",
                      "--overlap", "backward", "--per", "iteration")
    assert record["lower_bound_s"] <= record["best"]["total_s"] * (1 + 1e-12)
    assert "schedule" in record["method"]


def test_timeline_table_json_and_figure(tmp_path: Path) -> None:
    target = tmp_path / "iteration.png"
    out = run("timeline", "--net", "alexnet", "--P", "64", "--pr", "4", "--plan", "fc-model",
              "--overlap", "backward", "-o", str(target))
    assert target.stat().st_size > 0
    assert "start [ms]" in out and "all-reduce bucket 1" in out
    record = run_json("timeline", "--net", "alexnet", "--P", "64", "--pr", "4", "--plan",
                      "fc-model", "--overlap", "backward")
    events = record["events"]
    assert {e["lane"] for e in events} >= {"compute", "pr", "gradient"}
    channel = sorted((e["start_s"], e["end_s"]) for e in events
                     if e["lane"] in ("pr", "gradient"))
    for (_, end), (start, _) in itertools.pairwise(channel):
        assert start >= end - 1e-15  # one channel: never two collectives at once
    assert record["total_s"] == pytest.approx(max(e["end_s"] for e in events))
    csv = run("timeline", "--net", "alexnet", "--P", "64", "--format", "csv")
    assert csv.splitlines()[0].startswith("start [ms]")


@pytest.mark.parametrize("overlap", ["none", "batch", "backward"])
def test_timeline_total_is_the_engine_total(overlap: str) -> None:
    from costmodel.engine.plans import PLANS
    from costmodel.planning.search import optimize

    network, machine = load_network("vgg16"), load_machine("a100-ib")
    tl = iteration_schedule(network, machine, 64, 4, 1024, "fc-model",
                            Settings(overlap=overlap))  # type: ignore[arg-type]
    opt = optimize(network, machine, 64, 1024, PLANS["fc-model"],
                   Settings(overlap=overlap), with_limits=False)  # type: ignore[arg-type]
    row = list(opt.table.grids.pr).index(4)
    assert tl.total_s == pytest.approx(float(opt.table.total_s[row]), rel=1e-12)


def test_timeline_per_layer_plan() -> None:
    record = run_json("timeline", "--net", "alexnet", "--P", "64", "--plan", "per-layer",
                      "--overlap", "backward")
    assert record["plan"] == "per-layer"
    assert record["events"]


def test_bad_bucket_options_fail_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--overlap backward" in fail(capsys, "optimize", "--net", "alexnet", "--P", "8",
                                        "--bucket", "ddp")
    assert "--bucket-size" in fail(capsys, "optimize", "--net", "alexnet", "--P", "8",
                                   "--overlap", "backward", "--bucket-size", "lots")
    assert "--pr" in fail(capsys, "timeline", "--net", "alexnet", "--P", "8", "--pr", "3")
    assert ".png" in fail(capsys, "timeline", "--net", "alexnet", "--P", "8", "-o", "x.txt")


def test_explain_buckets_add_up_by_hand() -> None:
    record = run_json("explain", "--net", "alexnet", "--P", "64", "--pr", "4", "--plan",
                      "fc-model", "--overlap", "backward")
    buckets = [line for line in record["schedule"] if line["term"] == "batch"]
    assert buckets
    for line in buckets:
        values = {b["symbol"]: float(b["value"].split()[0]) for b in line["bindings"]}
        expected = values["α·L(p)"] + values["β·F(p)"] * values["n"]
        assert line["seconds_per_iteration"] == pytest.approx(expected, rel=1e-9)
    # fc8 alone over Pc = 16 on cori-knl: α·2·⌈log2 16⌉ = 16 µs, β·2·15/16 per word
    first = buckets[0]
    assert first["label"].startswith("all-reduce bucket 1: fc8 over Pc=16")
    beta = 4 / (6 * 2**30)
    assert first["seconds_per_iteration"] == pytest.approx(16e-6 + beta * 2 * 15 / 16
                                                           * 1_024_250, rel=1e-12)
    total = record["total"]
    assert total["formula"] == "compute + blocking + waits + tail"
