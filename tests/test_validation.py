"""costmodel.measure.validation without torch: the analysis of a stored `validate --raw` measurement.

tests/data/validate_raw_small.json is a real measurement (gridcost validate --machine cori-knl
--P 2,4 --batch 4 --iterations 3 --warmup 1 --raw ...), so these tests read what the workers
really write.  Where a test needs known times it rewrites the stored call times with exact
α–β values and checks that the analysis gets them back.
"""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from golden import line_difference

from costmodel.cli import main
from costmodel.errors import SpecError, UsageError
from costmodel.inputs.loaders import load_machine
from costmodel.measure.calibration import (
    calibrate,
    parse_logs,
    rate_of,
    series_from_json,
    statistic,
)
from costmodel.measure.validation import (
    analyse,
    in_step_predictions,
    in_step_series,
    load_validation_network,
    measured_times,
    parse_validation_raw,
    step_calls,
)

RAW = Path(__file__).parent / "data" / "validate_raw_small.json"


@pytest.fixture(scope="module")
def raw_text() -> str:
    return RAW.read_text(encoding="utf-8")


@pytest.fixture()
def raw(raw_text: str) -> dict[str, Any]:
    return parse_validation_raw(raw_text, str(RAW))


def _run(raw: dict[str, Any], plan: str, pr: int, pc: int) -> dict[str, Any]:
    return next(r for r in raw["runs"] if (r["plan"], r["pr"], r["pc"]) == (plan, pr, pc))


ALPHA, BETA = 300e-6, 4e-9


def exact_times(raw: dict[str, Any], alpha: float = ALPHA, beta: float = BETA,
                noise: float = 0.0) -> dict[str, Any]:
    """``raw`` with every call's time replaced by α·m(p) + β·w(p)·n of the paper's formulas
    (a halo: α + β·n), times (1 + noise) on odd iterations; comm_s recomputed to match."""
    out = copy.deepcopy(raw)
    for run in out["runs"]:
        for rank in run["ranks"]:
            for k, iteration in enumerate(rank["iterations"]):
                comm: dict[str, float] = {}
                for i, entry in enumerate(rank["log"]):
                    kind = ("p2p" if entry["op"].startswith("halo") else
                            "allgather" if entry["op"] == "all-gather" else "allreduce")
                    rate = rate_of(kind, int(entry["p"]))
                    t = alpha * float(rate.messages) + beta * float(rate.per_word) * entry["words"]
                    t *= 1 + (noise if k % 2 else 0.0)
                    iteration["call_s"][i] = t
                    comm[entry["term"]] = comm.get(entry["term"], 0.0) + t
                iteration["comm_s"] = comm
    return out


# --------------------------------------------------------------------------- reading


def test_stored_measurement_parses_and_filters_plans(raw_text: str) -> None:
    everything = parse_validation_raw(raw_text, "v.json")
    assert len(everything["runs"]) == 15 and everything["batch"] == 4
    only = parse_validation_raw(raw_text, "v.json", ["fc-model"])
    assert {r["plan"] for r in only["runs"]} == {"fc-model"} and len(only["runs"]) == 5


@pytest.mark.parametrize("text, field", [
    ("not json", "runs"),
    ('{"runs": [{"plan": "fc-model"}], "batch": 4}', "runs"),
    ('{"runs": []}', "runs"),
    ('[1, 2]', "runs"),
])
def test_malformed_measurement_names_the_file(text: str, field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_validation_raw(text, "bad.json")
    assert "bad.json" in str(err.value) and field in str(err.value)
    assert "validate --raw" in str(err.value)


def test_no_run_of_the_plan_is_an_error(raw_text: str) -> None:
    text = json.dumps(dict(json.loads(raw_text),
                           runs=[r for r in json.loads(raw_text)["runs"]
                                 if r["plan"] == "fc-model"]))
    with pytest.raises(SpecError, match="runs of plan domain-batch"):
        parse_validation_raw(text, "v.json", ["domain-batch"])


# --------------------------------------------------------------------------- calls and times


def test_step_calls_take_the_slowest_rank_per_iteration(raw: dict[str, Any]) -> None:
    run = _run(raw, "fc-model", 2, 1)
    calls = step_calls(run["ranks"])
    assert len(calls) == len(run["ranks"][0]["log"])
    for i, call in enumerate(calls):
        expected = tuple(max(rank["iterations"][k]["call_s"][i] for rank in run["ranks"])
                         for k in range(len(run["ranks"][0]["iterations"])))
        assert call.seconds == expected
    kinds = {(c.op, c.kind) for c in calls}
    assert ("all-gather", "allgather") in kinds and ("all-reduce ΔX", "allreduce") in kinds


def test_halos_are_matched_by_call_not_by_position(raw: dict[str, Any]) -> None:
    # 4×1 domain strips: the interior ranks log two halos per layer, the edges one
    run = _run(raw, "domain-batch", 4, 1)
    lengths = {len(rank["log"]) for rank in run["ranks"]}
    assert len(lengths) > 1
    calls = step_calls(run["ranks"])
    halos = [c for c in calls if c.kind == "p2p"]
    assert halos and all(c.p == 2 for c in halos)
    assert len(calls) == len(run["ranks"][0]["log"])


def test_measured_times_mean_or_median(raw: dict[str, Any]) -> None:
    ranks = _run(raw, "model-batch", 1, 2)["ranks"]
    per_iteration = [max(sum(r["iterations"][k]["comm_s"].get(t, 0.0)
                             for t in ("model", "batch", "domain")) for r in ranks)
                     for k in range(len(ranks[0]["iterations"]))]
    assert measured_times(ranks, "mean")["charged"] == pytest.approx(
        statistics.fmean(per_iteration), rel=1e-12)
    assert measured_times(ranks, "median")["charged"] == pytest.approx(
        statistics.median(per_iteration), rel=1e-12)
    with pytest.raises(UsageError, match="statistic: expected one of mean, median"):
        measured_times(ranks, "mode")


def test_statistics() -> None:
    assert statistic("mean")([1.0, 2.0, 6.0]) == 3.0
    assert statistic("median")([1.0, 2.0, 6.0]) == 2.0


# --------------------------------------------------------------------------- in-step calibration


def test_in_step_series_group_calls_by_kind_and_group_size(raw: dict[str, Any]) -> None:
    series = in_step_series(raw["runs"])
    keys = {(s.collective, s.p) for s in series}
    assert ("allreduce", 2) in keys and ("allgather", 2) in keys and ("p2p", 2) in keys
    assert ("allreduce", 4) in keys
    for s in series:
        assert len(set(s.words)) >= 2 and np.all(np.diff(s.words) >= 0)
        assert np.all(s.seconds > 0)


def test_in_step_fit_recovers_exact_alpha_beta(raw: dict[str, Any]) -> None:
    exact = exact_times(raw, noise=0.5)
    for summary, factor in (("median", 1.0), ("mean", 1.0)):
        cal = calibrate(in_step_series(exact["runs"], summary=summary))
        # three iterations, the middle one 1.5× slower: median = the exact time, mean = 7/6 of it
        scale = factor if summary == "median" else 3.5 / 3
        assert cal.alpha_s == pytest.approx(ALPHA * scale, rel=1e-6)
        assert cal.beta_s_per_word == pytest.approx(BETA * scale, rel=1e-6)


def test_calibrate_import_reads_a_validate_measurement(raw_text: str) -> None:
    series = parse_logs(raw_text, "v.json")
    again = series_from_json(raw_text, "v.json")
    assert [(s.collective, s.p, list(s.words), list(s.seconds)) for s in series] == \
        [(s.collective, s.p, list(s.words), list(s.seconds)) for s in again]
    assert {s.collective for s in series} == {"allgather", "allreduce", "p2p"}


def test_leave_one_run_out_with_exact_times_predicts_the_model(raw: dict[str, Any]) -> None:
    """With every call exactly α–β, the in-step fit of the other runs finds α, β, so each
    run's in-step prediction is the engine's prediction with that α, β."""
    machine = load_machine("cori-knl")
    reference = load_machine("cori-knl")
    import dataclasses

    reference = dataclasses.replace(reference, alpha_s=ALPHA, bandwidth_Bps=4 / BETA)
    exact = exact_times(raw)
    network = load_validation_network()
    predicted = in_step_predictions(exact, network, machine)
    truth = analyse(exact, network, reference, in_step=False)
    for run, fitted in zip(truth["runs"], predicted):
        assert fitted is not None
        assert sum(fitted.values()) == pytest.approx(run["predicted_comm_s"], rel=1e-6)


def test_held_out_run_never_trains_its_own_prediction(raw: dict[str, Any]) -> None:
    network, machine = load_validation_network(), load_machine("cori-knl")
    base = exact_times(raw)
    before = in_step_predictions(base, network, machine)
    spoiled = copy.deepcopy(base)
    target = _run(spoiled, "fc-model", 2, 1)
    for rank in target["ranks"]:
        for iteration in rank["iterations"]:
            iteration["call_s"] = [t * 10 for t in iteration["call_s"]]
    after = in_step_predictions(spoiled, network, machine)
    j = spoiled["runs"].index(target)
    assert after[j] == before[j]                                   # its own calls: unused
    others = [i for i, r in enumerate(spoiled["runs"]) if r["pr"] * r["pc"] == 2 and i != j]
    assert any(after[i] != before[i] for i in others)              # but they train the others
    four = [i for i, r in enumerate(spoiled["runs"]) if r["pr"] * r["pc"] == 4]
    assert all(after[i] == before[i] for i in four)                # and only its own P


def test_analysis_reports_both_errors(raw: dict[str, Any]) -> None:
    analysis = analyse(raw, load_validation_network(), load_machine("cori-knl"))
    s = analysis["summary"]
    assert analysis["statistic"] == "mean"
    assert s["in_step_mape_pct"] is not None and set(s["in_step_mape_pct_by_P"]) == {2, 4}
    for run in analysis["runs"]:
        assert run["in_step_abs_pct_error"] == pytest.approx(
            abs(run["in_step_predicted_comm_s"] - run["measured_comm_s"])
            / run["measured_comm_s"] * 100)
    skipped = analyse(raw, load_validation_network(), load_machine("cori-knl"), in_step=False)
    assert skipped["summary"]["in_step_mape_pct"] is None


# --------------------------------------------------------------------------- CLI


def test_validate_from_raw_reanalyses_without_torch(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.json"
    assert main(["validate", "--machine", "cori-knl", "--from-raw", str(RAW), "--format",
                 "json", "-o", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["statistic"] == "mean" and record["summary"]["in_step_mape_pct"] is not None
    assert main(["validate", "--machine", "a100-ib", "--from-raw", str(RAW), "--plan",
                 "fc-model", "--statistic", "median"]) == 0
    text = capsys.readouterr().out
    assert "in-step calibration (leave-one-run-out)" in text and "measured: median" in text
    assert "model-batch" not in text.split("3. time")[1]


def test_validate_from_raw_errors_are_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    for path, message in [(str(bad), f"{bad}: runs: expected the JSON of 'gridcost validate "
                                     "--raw'"),
                          (str(tmp_path / "missing.json"), "missing.json")]:
        assert main(["validate", "--machine", "cori-knl", "--from-raw", path]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert main(["validate", "--machine", "cori-knl", "--from-raw", str(RAW),
                 "--statistic", "mode"]) == 2
    assert "--statistic" in capsys.readouterr().err


def test_calibrate_import_of_a_validate_measurement_writes_a_profile(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the few sizes of a small step's calls make an implausible fit: refused, or written with
    # warnings when asked for (docs/cli.md, calibrate)
    profile = tmp_path / "in-step.yaml"
    args = ["calibrate", "import", str(RAW), "--profile", str(profile), "--name", "in-step"]
    assert main(args) == 2
    assert "implausible fit, nothing written" in capsys.readouterr().err
    assert not profile.exists()
    # its point-to-point fit lies beyond any link and outside the loader's ranges
    # (docs/formats.md, "Limits and ranges"): not written even when asked for
    assert main([*args, "--accept-implausible"]) == 2
    err = capsys.readouterr().err
    assert "nothing written: the fitted profile would not load (per_collective.p2p.bandwidth: " \
           "expected a bandwidth from 1 kB/s to 1 PB/s" in err
    assert not profile.exists()


def test_validate_takes_a_profile_per_process_count(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.json"
    assert main(["validate", "--machine", "2=cori-knl", "--machine", "4=a100-ib", "--from-raw",
                 str(RAW), "--format", "json", "-o", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [(p["P"], p["machine"]) for p in record["profiles"]] == [(2, "cori-knl"),
                                                                    (4, "a100-ib")]
    alone = {m: json.loads((tmp_path / f"{m}.json").read_text() if main([
        "validate", "--machine", m, "--from-raw", str(RAW), "--format", "json", "-o",
        str(tmp_path / f"{m}.json")]) == 0 else "{}") for m in ("cori-knl", "a100-ib")}
    for run in record["runs"]:  # each P's runs are predicted with its own profile
        same = next(r for r in alone["cori-knl" if run["P"] == 2 else "a100-ib"]["runs"]
                    if (r["plan"], r["pr"], r["pc"]) == (run["plan"], run["pr"], run["pc"]))
        assert run["predicted_comm_s"] == same["predicted_comm_s"]
    errors = {**record["summary"]["mape_pct_by_P"]}
    assert record["summary"]["mape_pct"] == pytest.approx(
        np.mean([r["abs_pct_error"] for r in record["runs"]]))
    assert set(errors) == {"2", "4"}
    # a default for every P and an override for one
    assert main(["validate", "--machine", "cori-knl", "--machine", "4=a100-ib", "--from-raw",
                 str(RAW)]) == 0
    assert "P = 2: cori-knl" in capsys.readouterr().out


@pytest.mark.parametrize("machines, message", [
    (["2=cori-knl"], "--machine: no profile for P = 4 (give --machine 4=FILE, or one profile for "
                     "every P)"),
    (["2=cori-knl", "2=a100-ib"], "--machine: two profiles for P = 2"),
    (["cori-knl", "a100-ib"], "--machine: two profiles for every P"),
    (["0=cori-knl"], "--machine P: expected a positive integer"),
    (["4=nope"], "'nope' (known: a100-ib"),
])
def test_profile_per_process_count_errors(machines: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for m in machines for a in ("--machine", m)]
    assert main(["validate", *args, "--from-raw", str(RAW)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- docs/validation.md

DOCS = Path(__file__).parents[1] / "docs"


def _rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ") or
            line.startswith("- communication MAPE") or line.startswith("- in-step calibration")]


def test_validation_page_numbers_come_from_the_stored_measurement(
        tmp_path: Path) -> None:
    """Every row of the time, ranking and calibration tables of docs/validation.md, and its
    MAPE lines, is what gridcost computes from the measurements stored in docs/validation/."""
    page = (DOCS / "validation.md").read_text(encoding="utf-8")
    data = DOCS / "validation"
    out = tmp_path / "v.md"
    assert main(["validate", "--machine", f"2={data / 'host-P2.yaml'}", "--machine",
                 f"4={data / 'host-P4.yaml'}", "--from-raw", str(data / "val-raw.json"),
                 "--format", "markdown", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    wanted = _rows(text[text.index("### 3. time"):])
    assert len(wanted) > 20
    shown = _rows(page)
    for row in wanted:
        assert _on_page(row, shown), row
    for name in ("cal-P2.json", "cal-P4.json"):
        fits = tmp_path / f"{name}.md"
        assert main(["calibrate", "import", str(data / name), "--format", "markdown", "-o",
                     str(fits)]) == 0
        for row in _rows(fits.read_text(encoding="utf-8")):
            assert _on_page(row, shown), row


def _on_page(row: str, shown: list[str]) -> bool:
    """Whether the page shows ``row``: its text exactly, its numbers at the precision of
    tests/golden.py (a fit's last bits differ between machines and numpy versions)."""
    return row in shown or any(line_difference(row, line) is None for line in shown)


def test_an_in_step_fit_no_machine_can_hold_is_no_prediction(
        raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import costmodel.measure.calibration

    def impossible(*args: Any) -> Any:
        raise SpecError("in-step", "alpha", "a latency > 0 s when per_collective sets one", 0.0)

    monkeypatch.setattr(costmodel.measure.calibration, "calibrated_machine", impossible)
    analysis = analyse(raw, load_validation_network(), load_machine("cori-knl"))
    assert all(r["in_step_predicted_s"] is None for r in analysis["runs"])
    assert analysis["summary"]["in_step_mape_pct"] is None
    assert analysis["summary"]["mape_pct"] is not None   # the profile's prediction stands
