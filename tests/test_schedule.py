"""Tests of costmodel.engine.schedule and costmodel.engine.buckets: overlap 'backward' (docs/schedule.md).

Hand-computed schedules on a 3-layer network (every start and end by hand), the steps of a
plan against the engine's terms, and the invariants as properties over random networks,
grids and machines.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cost import MACHINE, TINY, grid_sets, grids, machines, networks

from costmodel.engine.buckets import FIT_UNDER_CAP, MIB, PRESETS, Bucketing, bucketing, parse_size
from costmodel.engine.cost import evaluate, evaluate_totals, machine_algorithms
from costmodel.engine.plans import PLANS
from costmodel.engine.schedule import Steps, compute_split, plan_steps, run
from costmodel.errors import SpecError, UsageError
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.inputs.specs import Machine
from costmodel.planning.search import Settings, optimize

LAYER = PRESETS["layer"]


def steps3(**changes: list[float]) -> Steps:
    """3 layers, one grid: forward compute 1 each and an all-gather of 0.5 after layer 0;
    backward compute 2 each and a ΔX exchange of 1 after layer 1; gradients of 10, 20, 30
    words over one group of 4; a bucket of W words costs 1 + 0.1·W seconds."""
    base: dict[str, list[float]] = {
        "fwd_compute_s": [1, 1, 1], "bwd_compute_s": [2, 2, 2],
        "fwd_pre_s": [0, 0, 0], "fwd_post_s": [0.5, 0, 0],
        "bwd_pre_s": [0, 0, 0], "bwd_post_s": [0, 1, 0],
        "grad_words": [10, 20, 30], "grad_group": [4, 4, 4]}
    base.update(changes)
    arrays = {k: np.array(v, dtype=np.float64)[:, None] for k, v in base.items()}
    return Steps(**arrays, bucket_latency_s=np.ones((1, 3, 1)),
                 bucket_slope_s=np.full((1, 3, 1), 0.1))


def test_three_layers_one_allreduce_per_layer_by_hand() -> None:
    # forward: 1 + 0.5 + 1 + 1 = 3.5.  backward: layer 2 computes 3.5–5.5, its gradient
    # (30 words, 4 s) runs 5.5–9.5; layer 1 computes 5.5–7.5, its ΔX exchange waits for the
    # channel until 9.5 and runs 9.5–10.5, its gradient (3 s) 10.5–13.5; layer 0 computes
    # 10.5–12.5, its gradient (2 s) waits until 13.5 and ends at 15.5.
    totals, events = run(steps3(), LAYER, word_bytes=1, record=0,
                         layer_names=("l0", "l1", "l2"))
    assert totals.total_s[0] == pytest.approx(15.5)
    assert totals.compute_s[0] == pytest.approx(9.0)
    assert totals.blocking_s[0] == pytest.approx(1.5)
    assert totals.wait_s[0] == pytest.approx(2.0)
    assert totals.tail_s[0] == pytest.approx(3.0)
    assert totals.gradient_s[0] == pytest.approx(9.0)
    assert totals.buckets[0] == 3
    assert totals.serial_s[0] == pytest.approx(19.5)
    assert totals.bound_s[0] == pytest.approx(10.5)
    assert totals.hidden_s[0] == pytest.approx(4.0)
    grads = [(e.start_s, e.end_s, e.layers, e.words) for e in events if e.lane == "gradient"]
    assert grads == [(5.5, 9.5, ("l2",), 30.0), (10.5, 13.5, ("l1",), 20.0),
                     (13.5, 15.5, ("l0",), 10.0)]
    exchange = [e for e in events if e.what == "all-reduce ΔX"]
    assert [(e.start_s, e.end_s) for e in exchange] == [(9.5, 10.5)]
    waits = [(e.start_s, e.end_s) for e in events if e.lane == "wait"]
    assert waits == [(7.5, 9.5), (12.5, 15.5)]
    # the gradient all-reduce is exposed where the compute is idle: 2 s of the first bucket
    # (the ΔX wait), 1 s of the second and all of the third (the tail)
    assert [e.exposed_s for e in events if e.lane == "gradient"] == pytest.approx([2, 1, 2])


def test_three_layers_ddp_like_buckets_by_hand() -> None:
    # first cap 25 words, then 40 (word_bytes 1): layer 2 (30 ≥ 25) closes bucket 1 at 5.5
    # (4 s, to 9.5); layers 1 and 0 (30 words) close at the end, 12.5 → 16.5.
    bucket = Bucketing("t", cap_bytes=40, first_cap_bytes=25)
    totals, events = run(steps3(), bucket, word_bytes=1, record=0,
                         layer_names=("l0", "l1", "l2"))
    assert totals.total_s[0] == pytest.approx(16.5)
    assert totals.buckets[0] == 2
    assert totals.gradient_s[0] == pytest.approx(8.0)
    assert [(e.start_s, e.end_s, e.layers) for e in events if e.lane == "gradient"] == [
        (5.5, 9.5, ("l2",)), (12.5, 16.5, ("l1", "l0"))]
    # Horovod's rule (fit under 40): 30 + 20 > 40 closes after layer 2 too, 20 + 10 fits
    horovod = Bucketing("h", 40, 40, FIT_UNDER_CAP)
    assert run(steps3(), horovod, 1)[0].total_s[0] == pytest.approx(16.5)
    # a cap of 0 words per byte scale: word_bytes scales the cap (2 bytes per word → 20 words)
    assert run(steps3(), Bucketing("t", 40, 25), word_bytes=2)[0].buckets[0] == 3


def test_group_change_closes_a_bucket() -> None:
    s = steps3(grad_group=[2, 4, 4])
    big = Bucketing("big", 1e9, 1e9)
    totals = run(s, big, 1)[0]
    assert totals.buckets[0] == 2  # (l2, l1) over 4, then l0 over 2
    assert totals.gradient_s[0] == pytest.approx((1 + 5.0) + (1 + 1.0))


def test_zero_duration_collectives_never_wait() -> None:
    # no ΔX exchange: layer 1's compute does not wait for the busy channel
    totals = run(steps3(bwd_post_s=[0, 0, 0]), LAYER, 1)[0]
    assert totals.wait_s[0] == 0.0
    # compute ends at 3.5 + 6 = 9.5; buckets 5.5–9.5, 9.5–12.5, 12.5–14.5
    assert totals.total_s[0] == pytest.approx(14.5)


def test_compute_split_is_macs_share_one_to_two() -> None:
    fwd, bwd = compute_split(TINY, np.array([12768.0]), 2.0)
    macs = np.array([layer.macs for layer in TINY.layers], dtype=float)
    assert macs.tolist() == [4608, 4320, 3840]
    assert fwd[:, 0] == pytest.approx(macs / 3)
    assert bwd[:, 0] == pytest.approx(2 * macs / 3)


# ----------------------------------------------------------------------- buckets


def test_presets_are_the_documented_defaults() -> None:
    assert PRESETS["ddp"].cap_bytes == 25 * MIB and PRESETS["ddp"].first_cap_bytes == MIB
    assert PRESETS["horovod"].cap_bytes == 64 * MIB
    assert PRESETS["horovod"].rule == FIT_UNDER_CAP
    assert PRESETS["layer"].per_layer


def test_ddp_preset_matches_installed_torch() -> None:
    torch_dist = pytest.importorskip("torch.distributed")
    from torch.nn.parallel import distributed as ddp

    assert PRESETS["ddp"].first_cap_bytes == torch_dist._DEFAULT_FIRST_BUCKET_BYTES
    assert PRESETS["ddp"].cap_bytes == ddp._DEFAULT_BUCKET_CAP_MB * ddp._MB_TO_BYTES


def test_bucketing_choice_and_sizes() -> None:
    assert parse_size("25MiB") == 25 * MIB and parse_size("64 MB") == 64e6
    assert parse_size("0") == 0.0
    assert bucketing() is PRESETS["ddp"]
    assert bucketing("horovod") is PRESETS["horovod"]
    assert bucketing(None, None, "layer") is PRESETS["layer"]
    assert bucketing(None, None, "1048576.0").cap_bytes == MIB
    assert bucketing("horovod", "0").per_layer  # an explicit size wins
    with pytest.raises(UsageError, match="--bucket-size"):
        parse_size("25 parsecs")
    with pytest.raises(UsageError, match="--bucket"):
        bucketing("fast")


def test_machine_profile_sets_schedule_defaults(tmp_path: Path) -> None:
    text = ("version: 1\nname: m\nalpha: 1 us\nbandwidth: 1 GB/s\nflop_rate: 1 TFLOP/s\n"
            "schedule:\n  bucket: {b}\n  backward_ratio: {r}\n")

    def load(b: str, r: object) -> Machine:
        path = tmp_path / "m.yaml"
        path.write_text(text.format(b=b, r=r), encoding="utf-8")
        return load_machine(str(path))

    m = load("horovod", 1.5)
    assert m.bucket == "horovod" and m.backward_ratio == 1.5
    assert bucketing(None, None, load("'32 MiB'", 2).bucket).cap_bytes == 32 * MIB
    assert bucketing(None, None, load("0", 2).bucket).per_layer
    with pytest.raises(SpecError, match=r"schedule\.bucket"):
        load("huge", 2)
    with pytest.raises(SpecError, match=r"schedule\.backward_ratio"):
        load("ddp", 0)


# ----------------------------------------------------------------------- steps vs engine


def _steps_terms(table: object, steps: Steps) -> dict[str, np.ndarray]:
    per_layer = np.stack([steps.allreduce_s(steps.grad_words[i], i)
                          for i in range(steps.shape[0])])
    return {"model": (steps.fwd_post_s + steps.bwd_post_s).sum(axis=0),
            "domain": (steps.fwd_pre_s + steps.bwd_pre_s).sum(axis=0),
            "batch": per_layer.sum(axis=0)}


@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize("machine_name,collectives", [("cori-knl", None), ("cori-knl", "ring"),
                                                      ("a100-ib", "auto"),
                                                      ("a100-ib-nodes", None)])
def test_steps_add_up_to_the_engine_terms(plan: str, machine_name: str,
                                          collectives: str | None) -> None:
    network = load_network("alexnet")
    machine = load_machine(machine_name)
    g = grids([(1, 64), (2, 32), (4, 16), (8, 8), (16, 4)], 256)
    table = evaluate(network, machine, g, PLANS[plan], collectives=collectives,
                     mapping="pr-inside" if machine.hierarchical else "best")
    algo = machine_algorithms(machine, collectives)
    steps = plan_steps(network, machine, g, PLANS[plan], algo, table.compute_s,
                       np.ones(len(g), dtype=bool) if machine.hierarchical else None)
    for term, value in _steps_terms(table, steps).items():
        assert value == pytest.approx(table.comm_s(term), rel=1e-12, abs=1e-15), term


# ----------------------------------------------------------------------- invariants


def _tables(network: object, machine: Machine, g: object, plan: str,
            bucket: Bucketing, compute: str = "flops") -> dict[str, object]:
    return {ov: evaluate(network, machine, g, PLANS[plan], ov, compute=compute,  # type: ignore
                         bucket=bucket) for ov in ("none", "batch", "backward")}


buckets = st.sampled_from([PRESETS["layer"], PRESETS["ddp"], PRESETS["horovod"],
                           Bucketing("small", 4096, 1024), Bucketing("fit", 4096, 4096,
                                                                    FIT_UNDER_CAP)])
plans = st.sampled_from(sorted(PLANS))


@given(networks(), machines(), grid_sets(), plans)
@settings(max_examples=60, deadline=None)
def test_per_layer_buckets_lie_between_batch_and_none(network: object, machine: Machine,
                                                      g: object, plan: str) -> None:
    t = _tables(network, machine, g, plan, LAYER)
    none, batch, back = (t[k].total_s for k in ("none", "batch", "backward"))  # type: ignore
    assert np.all(batch <= back * (1 + 1e-12) + 1e-300)
    assert np.all(back <= none * (1 + 1e-12) + 1e-300)


@given(networks(), machines(), grid_sets(), plans, buckets)
@settings(max_examples=60, deadline=None)
def test_bucketed_schedule_lies_between_its_bounds(network: object, machine: Machine,
                                                   g: object, plan: str,
                                                   bucket: Bucketing) -> None:
    t = _tables(network, machine, g, plan, bucket)
    s = t["backward"].schedule  # type: ignore[attr-defined]
    tol = 1 + 1e-12
    assert np.all(s.bound_s <= s.total_s * tol)
    assert np.all(s.total_s <= s.serial_s * tol)
    # fusing never costs more than one all-reduce per layer: serial ≤ the paper's 'none'
    assert np.all(s.serial_s <= t["none"].total_s * tol)  # type: ignore[attr-defined]
    assert np.allclose(s.compute_s + s.exposed_s, s.total_s, rtol=1e-12)


@given(networks(), machines(), grid_sets(), plans, buckets)
@settings(max_examples=40, deadline=None)
def test_zero_compute_is_none_with_the_same_buckets(network: object, machine: Machine,
                                                    g: object, plan: str,
                                                    bucket: Bucketing) -> None:
    t = _tables(network, machine, g, plan, bucket, compute="none")
    s = t["backward"].schedule  # type: ignore[attr-defined]
    assert np.allclose(s.total_s, s.serial_s, rtol=1e-12, atol=0)
    if bucket.per_layer:
        assert np.allclose(s.total_s, t["none"].total_s, rtol=1e-12)  # type: ignore


@given(networks(), machines(), st.integers(1, 64), plans, buckets)
@settings(max_examples=40, deadline=None)
def test_one_process_is_pure_compute(network: object, machine: Machine, B: int, plan: str,
                                     bucket: Bucketing) -> None:
    t = evaluate(network, machine, grids([(1, 1)], B), PLANS[plan], "backward",  # type: ignore
                 compute="flops", bucket=bucket)
    assert t.total_s[0] == pytest.approx(t.compute_s[0], rel=1e-12)
    assert t.schedule.exposed_s[0] == pytest.approx(0.0, abs=1e-12 * t.compute_s[0])


@given(networks(), machines(), grid_sets(), plans, buckets, st.floats(1.0, 100.0))
@settings(max_examples=60, deadline=None)
def test_more_bandwidth_is_never_slower(network: object, machine: Machine, g: object,
                                        plan: str, bucket: Bucketing, factor: float) -> None:
    faster = dataclasses.replace(machine, bandwidth_Bps=machine.bandwidth_Bps * factor)
    slow = evaluate(network, machine, g, PLANS[plan], "backward", bucket=bucket)  # type: ignore
    fast = evaluate(network, faster, g, PLANS[plan], "backward", bucket=bucket)  # type: ignore
    assert np.all(fast.total_s <= slow.total_s * (1 + 1e-12))


def test_sweep_totals_equal_the_table() -> None:
    network, machine = load_network("resnet50"), load_machine("a100-ib")
    g = grids([(1, 256), (2, 128), (4, 64)], 1024)
    table = evaluate(network, machine, g, PLANS["model-batch"], "backward")
    totals = evaluate_totals(network, machine, g, PLANS["model-batch"], "backward")
    assert np.array_equal(totals.total_s, table.total_s)


def test_hierarchical_best_mapping_is_the_shorter_schedule() -> None:
    network, machine = load_network("vgg16"), load_machine("a100-ib-nodes")
    g = grids([(2, 128), (8, 32)], 1024)
    runs = {m: evaluate(network, machine, g, PLANS["model-batch"], "backward", mapping=m)
            for m in ("best", "pr-inside", "pc-inside")}
    assert np.allclose(runs["best"].total_s, np.minimum(runs["pr-inside"].total_s,
                                                        runs["pc-inside"].total_s))


def test_optimize_with_backward_and_the_paper_unchanged() -> None:
    network, machine = load_network("alexnet"), load_machine("cori-knl")
    paper = optimize(network, machine, 512, 2048, PLANS["fc-model"])
    assert paper.table.total_s[paper.best] * paper.table.iterations_per_epoch[0] == \
        pytest.approx(26.74043235821882, rel=1e-12)
    back = optimize(network, machine, 512, 2048, PLANS["fc-model"],
                    Settings(overlap="backward", bucket="ddp"))
    assert back.table.bucket is PRESETS["ddp"]
    assert back.table.schedule is not None
    layer = optimize(network, machine, 512, 2048, PLANS["fc-model"],
                     Settings(overlap="backward", bucket=LAYER), with_limits=False)
    none = optimize(network, machine, 512, 2048, PLANS["fc-model"], with_limits=False)
    assert np.all(layer.table.total_s <= none.table.total_s * (1 + 1e-12))


def test_unknown_overlap_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'backward'"):
        evaluate(TINY, MACHINE, grids([(1, 2)], 4), PLANS["model-batch"], "sideways")  # type: ignore


# ----------------------------------------------------------------------- per-layer plan


@pytest.mark.parametrize("bucket", ["layer", "ddp"])
def test_per_layer_plan_under_backward(bucket: str) -> None:
    from costmodel.planning.perlayer import optimize_per_layer

    network, machine = load_network("alexnet"), load_machine("cori-knl")
    settings = Settings(overlap="backward", bucket=bucket)
    r = optimize_per_layer(network, machine, 64, 2048, settings)
    assert r.choice is not None
    assert r.lower_bound_s <= r.total_s * (1 + 1e-12)
    # the fixed plans' sequences (redistribution charged) are candidates
    assert r.total_s <= min(f.charged_total_s for f in r.fixed) * (1 + 1e-12)
    assert r.problem.totals(r.choice[None])[0] == pytest.approx(r.total_s, rel=1e-12)
    # every layer in layout 0 (pure batch, no redistribution) is the engine's 1×P schedule
    pure = r.problem.totals(np.zeros((1, len(network.layers)), dtype=np.int64))[0]
    table = evaluate(network, machine, grids([(1, 64)], 2048), PLANS["model-batch"],
                     "backward", bucket=PRESETS[bucket])
    assert pure == pytest.approx(float(table.total_s[0]), rel=1e-12)


def test_per_layer_bound_never_exceeds_a_schedule() -> None:
    # the bound must lie below the schedule of every sequence, not only of the candidates
    from costmodel.planning.perlayer import optimize_per_layer

    network, machine = load_network("alexnet"), load_machine("a100-ib")
    r = optimize_per_layer(network, machine, 16, 256, Settings(overlap="backward"))
    rng = np.random.default_rng(0)
    K, L = len(r.problem.layouts), len(network.layers)
    sequences = rng.integers(0, K, size=(200, L))
    totals = r.problem.totals(sequences)
    assert np.all(r.lower_bound_s <= totals[np.isfinite(totals)] * (1 + 1e-12))


def test_grid_bars_under_backward_stack_to_the_schedule() -> None:
    from costmodel.output.plot import _bar_segments

    opt = optimize(load_network("alexnet"), load_machine("cori-knl"), 64, 2048,
                   PLANS["fc-model"], Settings(overlap="backward"), with_limits=False)
    heights = _bar_segments(opt.table, "iteration")
    stacked = sum(heights.values())
    assert np.allclose(stacked, opt.table.total_s, rtol=1e-12)


def test_timeline_figure_marks_exposed_communication() -> None:
    from matplotlib.patches import Rectangle

    from costmodel.output.plot import TIMELINE_COLOURS, timeline
    from costmodel.planning.iteration import iteration_schedule

    tl = iteration_schedule(load_network("alexnet"), load_machine("cori-knl"), 64, 1, 2048,
                            "model-batch", Settings(overlap="backward"))
    fig = timeline(tl)
    ax = fig.axes[0]
    hatched = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert hatched  # the tail after the last compute
    assert ax.get_xlabel() == "time within one iteration [ms]"
    assert TIMELINE_COLOURS["exposed"]
