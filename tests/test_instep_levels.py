"""The in-step calibration on a machine with levels (costmodel.measure.levelfit): a joint fit of
α_l, β_l of every level to the calls of training steps, leave-one-run-out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.cost import evaluate, machine_algorithms
from costmodel.engine.grids import Grids
from costmodel.engine.plans import plan as plan_named
from costmodel.errors import SpecError
from costmodel.inputs.specs import Level, Machine
from costmodel.measure.levelfit import (
    CallGroup,
    RunCalls,
    call_groups,
    call_row,
    fit_levels,
    run_calls,
)
from costmodel.measure.series import step_calls
from costmodel.measure.validation import (
    analyse,
    load_validation_network,
    tables,
    volume_rows,
)

ROOT = Path(__file__).resolve().parent.parent
NETWORK = load_validation_network()
BATCH = 16
NODE_ALPHA, NODE_BW = 2e-5, 4e9
NET_ALPHA, NET_BW = 3e-4, 2.5e8
TRUE = Machine("two-level", NET_ALPHA, NET_BW, flop_rate=1e12,
               levels=(Level("node", 2, NODE_ALPHA, NODE_BW), Level("network", None, NET_ALPHA,
                                                                     NET_BW)))
TRUE_ALPHAS = (NODE_ALPHA, NET_ALPHA)
TRUE_BETAS = (4 / NODE_BW, 4 / NET_BW)


def _seconds(group: CallGroup | None, words: int, collectives: str) -> float:
    """The model's time of one call on TRUE: Σ_l m_l·α_l + w_l·β_l."""
    assert group is not None
    row, _ = call_row(group, words, TRUE, machine_algorithms(TRUE, collectives), TRUE.links)
    return float(row @ np.array([*TRUE_ALPHAS, *TRUE_BETAS]))


def synthetic_run(plan_name: str, pr: int, pc: int, mapping: str,
                  collectives: str = "paper") -> dict[str, Any]:
    """A measured run whose calls are the model's own (volume_rows' model calls and words), each
    timed exactly by TRUE; the per-term communication is their sum."""
    model = [v for v in volume_rows(NETWORK, TRUE, plan_name, pr, pc, BATCH, [], collectives)
             if v.model_calls]
    log = [{"layer": v.layer, "term": v.term, "op": v.op, "p": v.p, "words": v.model_words,
            "seconds": 0.0} for v in model]
    from costmodel.measure.series import StepCall, _kind

    calls = [StepCall(e["layer"], e["term"], e["op"], _kind(e["op"]), e["p"], e["words"], (1.0,))
             for e in log]
    groups = call_groups(NETWORK, plan_name, pr, pc, mapping, calls)
    call_s = [_seconds(g, int(e["words"]), collectives) for g, e in zip(groups, log)]
    comm = {t: sum(s for s, e in zip(call_s, log) if e["term"] == t)
            for t in ("model", "batch", "domain")}
    iteration = {"step_s": sum(call_s) + 0.01, "comm_s": {t: s for t, s in comm.items() if s},
                 "wait_s": 0.0, "call_s": call_s}
    rank = {"log": log, "iterations": [iteration, dict(iteration)],
            "numerics": {"loss": 1.0, "reference_loss": 1.0, "max_rel_grad_error": 0.0,
                         "allclose": True}}
    return {"plan": plan_name, "pr": pr, "pc": pc, "mapping": mapping, "ranks": [rank]}


GRIDS = {4: [(1, 4), (2, 2), (4, 1)], 8: [(1, 8), (2, 4), (4, 2), (8, 1)]}


def synthetic_raw(P: int, plans: tuple[str, ...] = ("fc-model", "model-batch", "domain-batch"),
                  collectives: str = "paper") -> dict[str, Any]:
    runs = [synthetic_run(plan_name, pr, pc, mapping, collectives) for plan_name in plans
            for pr, pc in GRIDS[P] for mapping in ("pr-inside", "pc-inside")]
    return {"runs": runs, "batch": BATCH, "backend": "synthetic"}


def test_one_all_reduce_across_two_levels_by_hand() -> None:
    """All-reduce of n words over p = 4 contiguous ranks, 2 per node, paper forms: the node
    reduce-scatters and all-gathers over 2 (2·lg 2 = 2 messages, 2·½·n = n words), the network
    all-reduces n/2 over 2 (2 messages, 2·½·n/2 = n/2 words)."""
    algo = machine_algorithms(TRUE, "paper")
    row, reduced = call_row(CallGroup("allreduce", 4, 1, 4), 1000, TRUE, algo, TRUE.links)
    assert row.tolist() == [2.0, 2.0, 1000.0, 500.0]
    assert reduced == 0.0


def test_a_halo_is_one_message_at_the_level_holding_the_pr_group() -> None:
    algo = machine_algorithms(TRUE, "paper")
    inside = call_row(CallGroup("p2p", 2, 1, 4), 300, TRUE, algo, TRUE.links)[0]
    across = call_row(CallGroup("p2p", 2, 2, 4), 300, TRUE, algo, TRUE.links)[0]
    assert inside.tolist() == [1.0, 0.0, 300.0, 0.0]
    assert across.tolist() == [0.0, 1.0, 0.0, 300.0]


def test_call_groups_follow_the_plan_and_the_mapping() -> None:
    """fc-model on 2×2: conv weights all-reduced over all 4 (stride 1), the fc layers' over Pc
    (stride Pr = 2 with Pr inside, 1 with Pc inside), the model calls over Pr."""
    run = synthetic_run("fc-model", 2, 2, "pr-inside")
    calls = step_calls(run["ranks"])
    by_name = {(c.layer, c.op): g for c, g in
               zip(calls, call_groups(NETWORK, "fc-model", 2, 2, "pr-inside", calls))}
    assert by_name[("conv1", "all-reduce")] == CallGroup("allreduce", 4, 1, 4)
    assert by_name[("fc1", "all-reduce")] == CallGroup("allreduce", 2, 2, 4)
    assert by_name[("fc1", "all-gather")] == CallGroup("allgather", 2, 1, 4)
    by_pc = {(c.layer, c.op): g for c, g in
             zip(calls, call_groups(NETWORK, "fc-model", 2, 2, "pc-inside", calls))}
    assert by_pc[("fc1", "all-reduce")] == CallGroup("allreduce", 2, 1, 4)
    assert by_pc[("fc1", "all-gather")] == CallGroup("allgather", 2, 2, 4)


def test_a_logged_group_size_the_plan_does_not_have_is_named() -> None:
    run = synthetic_run("fc-model", 2, 2, "pr-inside")
    run["ranks"][0]["log"][0]["p"] = 2  # conv1's weights go over all 4
    with pytest.raises(SpecError, match=r"conv1.*a group of 4 processes"):
        call_groups(NETWORK, "fc-model", 2, 2, "pr-inside", step_calls(run["ranks"]))


@pytest.mark.parametrize("collectives", ["paper", "ring", "flat-ring"])
def test_synthetic_steps_give_back_the_machine_and_its_predictions(collectives: str) -> None:
    """Calls timed exactly by a 2-level machine, several grids, both mappings, three plans: the
    joint fit recovers every α_l, β_l, and every in-step prediction is the model's."""
    raw = synthetic_raw(8, collectives=collectives)
    charged = [run_calls(NETWORK, r["plan"], r["pr"], r["pc"], r["mapping"],
                         step_calls(r["ranks"])) for r in raw["runs"]]
    fit = fit_levels(charged, TRUE, collectives)
    assert fit.why is None
    np.testing.assert_allclose(fit.alphas, TRUE_ALPHAS, rtol=1e-6)
    np.testing.assert_allclose(fit.betas, TRUE_BETAS, rtol=1e-6)
    analysis = analyse(raw, NETWORK, TRUE, collectives)  # type: ignore[arg-type]
    for run in analysis["runs"]:
        # the synthetic step is the engine's prediction: the calls sum to every term
        assert run["abs_pct_error"] < 1e-9
        in_step = run["in_step_predicted_s"]
        assert in_step is not None
        for term, seconds in run["predicted_s"].items():
            assert in_step[term] == pytest.approx(seconds, rel=1e-6, abs=1e-15)
        assert run["in_step_abs_pct_error"] < 1e-4
        levels = run["in_step_levels"]
        assert [name for name, _, _ in levels] == ["node", "network"]
        np.testing.assert_allclose([a for _, a, _ in levels], TRUE_ALPHAS, rtol=1e-6)
        np.testing.assert_allclose([b for _, _, b in levels], [NODE_BW, NET_BW], rtol=1e-6)
    assert analysis["summary"]["in_step_mape_pct_by_P"][8] < 1e-4


def test_a_level_no_training_call_reaches_gives_no_prediction_and_says_why() -> None:
    """Every call of P = 4 on 4 processes per node stays inside the node: the network level is
    not determined, so no run of P gets an in-step value, and the time table says why."""
    wide = dataclasses.replace(TRUE, levels=(dataclasses.replace(TRUE.levels[0], processes=4),
                                             TRUE.levels[1]))
    raw = synthetic_raw(4, plans=("fc-model",))
    analysis = analyse(raw, NETWORK, wide)  # type: ignore[arg-type]
    for run in analysis["runs"]:
        assert run["in_step_predicted_s"] is None
        assert "in_step_abs_pct_error" not in run
        assert run["in_step_note"] == "no call of the other runs reaches the network level"
    assert analysis["summary"]["in_step_mape_pct"] is None
    record = {**analysis, "profiles": []}
    notes = tables(record)[2].notes  # type: ignore[arg-type]
    assert "no in-step prediction for fc-model 2×2 pc-inside: no call of the other runs " \
           "reaches the network level" in notes


TRAINING = [run_calls(NETWORK, r["plan"], r["pr"], r["pc"], r["mapping"],
                      step_calls(r["ranks"])) for r in synthetic_raw(4)["runs"]]
CALLS = sum(len(run.seconds) for run in TRAINING)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(1e-5, 10.0), min_size=CALLS, max_size=CALLS),
       st.floats(1e-3, 1e3))
def test_fit_is_non_negative_and_scales_with_the_times(times: list[float], c: float) -> None:
    """Any call times: α_l, β_l ≥ 0 (NNLS); all times × c: every α_l, β_l × c (the relative
    residual is the same problem)."""
    def with_times(scale: float) -> list[RunCalls]:
        out, at = [], 0
        for run in TRAINING:
            n = len(run.seconds)
            out.append(dataclasses.replace(run, seconds=tuple(t * scale
                                                              for t in times[at:at + n])))
            at += n
        return out

    fit = fit_levels(with_times(1.0), TRUE)
    scaled = fit_levels(with_times(c), TRUE)
    assert fit.alphas and min(fit.alphas + fit.betas) >= 0.0
    assert scaled.why == fit.why
    np.testing.assert_allclose(scaled.alphas, np.array(fit.alphas) * c, rtol=1e-6,
                               atol=1e-12 * c * max(fit.alphas))
    np.testing.assert_allclose(scaled.betas, np.array(fit.betas) * c, rtol=1e-6,
                               atol=1e-12 * c * max(fit.betas))


def _stored(collectives: str) -> Any:
    from costmodel.api import validate

    suffix = "-ring" if collectives == "flat-ring" else ""
    machines = {P: str(ROOT / f"docs/validation/emu-P{P}{suffix}.yaml") for P in (4, 8, 16)}
    return validate(machines, ROOT / "docs/validation/emu-val-raw.json",  # type: ignore[arg-type]
                    plan="fc-model", collectives=collectives).record


@pytest.mark.parametrize("collectives", ["paper", "flat-ring"])
def test_the_emulated_cluster_gets_an_in_step_prediction_for_every_run(
        collectives: str) -> None:
    """Every stored run gets a finite in-step prediction, except — flat rings only — the three
    whose all-reduces inside a node are 64× any other run's of their P (pc-inside 2×2, 4×2,
    8×2): their node bandwidth would be extrapolated, and the note says so."""
    record = _stored(collectives)
    refused = []
    for run in record["runs"]:
        if run.get("in_step_predicted_comm_s") is None:
            assert "would be extrapolated more than 10×" in run["in_step_note"]
            refused.append((run["P"], run["pr"], run["mapping"]))
            continue
        assert np.isfinite(run["in_step_predicted_comm_s"]), run.get("in_step_note")
        assert np.isfinite(run["in_step_abs_pct_error"])
    assert refused == ([] if collectives == "paper" else
                       [(4, 2, "pc-inside"), (8, 4, "pc-inside"), (16, 8, "pc-inside")])
    by_P = record["summary"]["in_step_mape_pct_by_P"]
    assert sorted(by_P) == [4, 8, 16]
    print(f"in-step MAPE, {collectives}: " + ", ".join(f"P = {P}: {v:.1f} %"
                                                        for P, v in by_P.items()))


def test_a_fit_is_not_extrapolated_beyond_ten_times_its_largest_call() -> None:
    """_within_range: a held-out run moving up to 10× the training runs' largest words per
    call on a level keeps the fit; beyond that, no prediction, and the note gives both sizes."""
    from costmodel.engine.cost import machine_algorithms
    from costmodel.measure.levelfit import (
        CallGroup,
        LevelFit,
        RunCalls,
        _within_range,
        call_row,
        run_rows,
    )

    group = CallGroup("allreduce", 2, 1, 4)  # a pair inside one node of TRUE: node level only
    fit = LevelFit((1e-3, 2e-3), (1e-9, 1e-8))
    algo = machine_algorithms(TRUE, "paper")
    train = [run_rows(RunCalls((group,), (1000,), (0.01,)), TRUE, algo)]
    node_words = call_row(group, 1000, TRUE, algo, TRUE.links)[0][2]
    assert _within_range(fit, run_rows(RunCalls((group,), (10_000,), (0.1,)), TRUE, algo),
                         train, TRUE) is fit
    refused = _within_range(fit, run_rows(RunCalls((group,), (10_001,), (0.1,)), TRUE, algo),
                            train, TRUE)
    assert refused.why == (f"this run moves up to {node_words * 10.001:,.0f} words per call on "
                           f"the node level, the other runs at most {node_words:,.0f}: β_node "
                           "would be extrapolated more than 10×")


def test_engine_and_calls_agree_on_a_single_grid() -> None:
    """The synthetic step's term times are the engine's with TRUE (independent of the fit)."""
    run = synthetic_run("domain-batch", 4, 2, "pc-inside")
    table = evaluate(NETWORK, TRUE, Grids(np.array([4]), np.array([2]), np.array([BATCH])),
                     plan_named("domain-batch"), collectives="paper", compute="none",
                     mapping="pc-inside")
    comm = run["ranks"][0]["iterations"][0]["comm_s"]
    for term in ("batch", "domain"):
        assert comm[term] == pytest.approx(float(table.comm_s(term)[0]), rel=1e-12)


NAMES = ["node", "network"]


def test_fit_rows_solves_an_exact_system_by_hand() -> None:
    """Four calls, two levels: t = m·α + w·β exactly → the same α_l, β_l back."""
    from costmodel.measure.levelfit import fit_rows

    rows = np.array([[1.0, 0, 100, 0], [1, 0, 1000, 0], [0, 2, 0, 50], [0, 1, 0, 800]])
    alphas, betas = np.array([1e-5, 2e-4]), np.array([1e-9, 4e-8])
    seconds = rows @ np.concatenate([alphas, betas])
    fit = fit_rows(rows, seconds, np.zeros(4), 0.0, NAMES)
    assert fit.why is None
    np.testing.assert_allclose(fit.alphas, alphas, rtol=1e-9)
    np.testing.assert_allclose(fit.betas, betas, rtol=1e-9)


def test_fit_rows_names_what_it_cannot_determine() -> None:
    from costmodel.measure.levelfit import fit_rows

    one_size = np.array([[1.0, 0, 100, 0], [2, 0, 200, 0], [0, 1, 0, 50], [0, 1, 0, 80]])
    assert fit_rows(one_size, np.ones(4), np.zeros(4), 0.0, NAMES).why == (
        "the other runs' calls do not separate α and β of every level (singular fit)")
    # the network's time falls as its words grow: the best β ≥ 0 there is 0
    falling = np.array([[1.0, 0, 100, 0], [1, 0, 1000, 0], [0, 1, 0, 10], [0, 1, 0, 1000]])
    seconds = np.array([1e-5 + 1e-7, 1e-5 + 1e-6, 2e-3, 1e-3])
    assert fit_rows(falling, seconds, np.zeros(4), 0.0, NAMES).why == (
        "the fit gives the network level no bandwidth term (β = 0)")
    assert fit_rows(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.0, NAMES).why == (
        "no timed call to fit")


def test_a_log_its_plan_does_not_explain_trains_no_fit_and_says_why() -> None:
    """A 2×2 run whose conv1 weights were all-reduced over 2 (the plan: all 4): the other runs
    of its P get no in-step value and the note names the run and the call; the run itself is
    still predicted from the others."""
    raw = synthetic_raw(4, plans=("fc-model",))
    raw["runs"][2]["ranks"][0]["log"][0]["p"] = 2  # runs: 1×4 pr, 1×4 pc, 2×2 pr, …
    analysis = analyse(raw, NETWORK, TRUE)  # type: ignore[arg-type]
    runs = analysis["runs"]
    assert (runs[2]["P"], runs[2]["pr"], runs[2]["mapping"]) == (4, 2, "pr-inside")
    assert runs[2]["in_step_predicted_s"] is not None
    for j, run in enumerate(runs):
        if j != 2:
            assert run["in_step_predicted_s"] is None
            assert run["in_step_note"] == (
                "another run's calls do not fit its plan (fc-model 2×2 pr-inside: log (conv1, "
                "batch, all-reduce): expected a group of 4 processes on grid 2×2 of plan "
                "fc-model, got p = 2)")


@pytest.mark.parametrize(("collectives", "label", "profiles"), [
    ("paper", "paper (hierarchical)", "emu-P{4,8,16}.yaml"),
    ("flat-ring", "flat-ring", "emu-P{4,8,16}-ring.yaml")])
def test_the_in_step_table_of_docs_validation_md_is_computed(collectives: str, label: str,
                                                             profiles: str) -> None:
    """The row of docs/validation.md's in-step table is what validate computes from the stored
    emulated runs (the profile's MAPE per P included)."""
    record = _stored(collectives)
    runs = record["runs"]
    summary = record["summary"]
    predicted = sum(r.get("in_step_predicted_comm_s") is not None for r in runs)
    by_P, profile_by_P = summary["in_step_mape_pct_by_P"], summary["mape_pct_by_P"]
    row = (f"| {label} | {profiles} | {predicted} of {len(runs)} | "
           f"{summary['in_step_mape_pct']:.1f} % | "
           + " | ".join(f"{by_P[P]:.1f} %" for P in (4, 8, 16)) + " | "
           + ", ".join(f"{profile_by_P[P]:.1f} %" for P in (4, 8, 16)) + " |")
    page = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
    assert row in page, row
