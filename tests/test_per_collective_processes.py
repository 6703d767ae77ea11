"""α, bandwidth per collective kind **and group size p** (docs/formats.md
``per_collective.KIND.processes``).

Hand-computed seconds on the toy machine of test_cost (α = 2 s, bandwidth 8 B/s, 4-byte words:
β = 0.5 s/word) with the pooled fits of test_per_collective (all-gather α 3 s, β 1 s/word;
all-reduce α 1 s, β 0.25 s/word; p2p α 4 s, β 2 s/word) and, per group size:

    all-gather p = 2: α 5 s,   8 B/s → β 0.5 s/word      p = 4: α 1 s,   2 B/s → β 2 s/word
    all-reduce p = 2: α 2 s,   4 B/s → β 1 s/word        p = 4: α 0.5 s, 32 B/s → β 0.125 s/word
    p2p        p = 2: α 1 s,   8 B/s → β 0.5 s/word

Every factor is a power of two or an exact binary fraction, so the arithmetic is exact.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import reference
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli import fail
from test_cost import C1, F1, MACHINE, grid_sets, net, networks, one, plans
from test_per_collective import FITTED, MACHINE_YAML, _machine

from costmodel.engine.collectives import ALLGATHER, algorithms, scale_at
from costmodel.engine.cost import (
    TERMS,
    evaluate,
    evaluate_totals,
    layer_algorithms,
    machine_algorithms,
)
from costmodel.engine.grids import Grids
from costmodel.engine.plans import PLANS
from costmodel.errors import SpecError
from costmodel.inputs.loaders import load_machine
from costmodel.inputs.specs import Layer, Machine, Network
from costmodel.measure.calibration import (
    Calibration,
    SeriesFit,
    calibrate,
    per_process_fits,
    profile_yaml,
)

PER_P = dataclasses.replace(FITTED, per_collective_processes=(
    ("allgather", 2, 5.0, 8.0), ("allgather", 4, 1.0, 2.0),
    ("allreduce", 2, 2.0, 4.0), ("allreduce", 4, 0.5, 32.0),
    ("p2p", 2, 1.0, 8.0)))


def test_scales_per_process_count() -> None:
    assert PER_P.collective_process_scales() == {
        "allgather": ((2, 2.5, 1.0), (4, 0.5, 4.0)),
        "allreduce": ((2, 1.0, 2.0), (4, 0.25, 0.25)),
        "p2p": ((2, 0.5, 1.0),)}
    assert FITTED.collective_process_scales() == {}
    # the pooled scales are what they were
    assert PER_P.collective_scales() == FITTED.collective_scales()


# --------------------------------------------------------------------------- hand-computed


def test_each_group_size_picks_its_own_pair() -> None:
    # f1 (d = 10, |W| = 3850, 10 units), P = 4, B = 8, model-batch:
    # 1×4: no model term; weights all-reduce over Pc = 4 (p = 4 pair):
    #      2·(lg 4·α_ar4 + 3/4·3850·β_ar4) = 2·(2·0.5 + 2887.5·0.125) = 723.875 s
    # 2×2: model over Pr = 2, n = ⌈8/2⌉·10 = 40: all-gather lg 2·α_ag2 + 1/2·40·β_ag2
    #      = 5 + 10 = 15; all-reduce 2·(α_ar2 + 1/2·40·β_ar2) = 2·(2 + 20) = 44 → 59 s;
    #      weights over Pc = 2 of |W|/2 = 1925: 2·(α_ar2 + 1/2·1925·β_ar2) = 2·(2 + 962.5)
    #      = 1929 s
    # 4×1: model over Pr = 4, n = 80: all-gather 2·α_ag4 + 3/4·80·β_ag4 = 2 + 120 = 122;
    #      all-reduce 2·(2·α_ar4 + 60·β_ar4) = 2·(1 + 7.5) = 17 → 139 s; no weights term
    g = Grids(np.array([1, 2, 4]), np.array([4, 2, 1]), np.full(3, 8))
    t = evaluate(net(F1), PER_P, g, PLANS["model-batch"], compute="none")
    assert t.seconds("model")[:, 0].tolist() == [0.0, 59.0, 139.0]
    assert t.seconds("batch")[:, 0].tolist() == [723.875, 1929.0, 0.0]
    assert t.seconds("domain")[:, 0].tolist() == [0.0, 0.0, 0.0]
    totals = evaluate_totals(net(F1), PER_P, g, PLANS["model-batch"], compute="none")
    assert totals.total_s.tolist() == [723.875, 1988.0, 139.0]
    # the pooled pairs alone (test_per_collective's FITTED) give other numbers on every grid:
    # 2×2 model is α_ag + 20·β_ag + 2·(α_ar + 20·β_ar) = 3 + 20 + 2·(1 + 5) = 35 s
    pooled = evaluate(net(F1), FITTED, g, PLANS["model-batch"], compute="none")
    assert pooled.seconds("model")[1, 0] == 35.0
    assert (pooled.total_s != t.total_s).all()


def test_an_unlisted_group_size_takes_the_pooled_pair() -> None:
    # f1 on 3×1, B = 6, n = 60: p = 3 is not listed, so the pooled pairs:
    # all-gather ⌈lg 3⌉·α_ag + 2/3·60·β_ag = 6 + 40; all-reduce 2·(2·α_ar + 40·β_ar) = 24
    t = one(net(F1), 3, 1, 6, machine=PER_P)
    assert t.seconds("model")[0, 0] == pytest.approx(70.0, rel=1e-15)
    assert t.seconds("model")[0, 0] == one(net(F1), 3, 1, 6, machine=FITTED).seconds("model")[0, 0]


def test_a_kind_without_a_pooled_pair_falls_back_to_the_flat_one() -> None:
    # only all-gather p = 2 given (a Machine built in code; YAML always has the pooled pair):
    # f1 on 3×1, B = 6 is all flat: 3·(2·2 + 40·0.5) = 72 s
    only = dataclasses.replace(MACHINE, per_collective_processes=(("allgather", 2, 5.0, 8.0),))
    assert one(net(F1), 3, 1, 6, machine=only).seconds("model")[0, 0] == pytest.approx(72.0)
    # f1 on 2×1, B = 4, n = 40: all-gather with its p = 2 pair 5 + 20·0.5 = 15; the all-reduce
    # flat 2·(2 + 20·0.5) = 24
    assert one(net(F1), 2, 1, 4, machine=only).seconds("model")[0, 0] == 39.0


def test_one_process_is_free() -> None:
    t = evaluate(net(C1, F1), PER_P, Grids(np.array([1]), np.array([1]), np.array([8])),
                 PLANS["domain-batch"], compute="none")
    assert t.total_comm_s.tolist() == [0.0]
    assert one(net(F1), 1, 4, 8, machine=PER_P).seconds("model")[0, 0] == 0.0


def test_halos_use_the_p2p_pair_of_two_processes() -> None:
    # c1 domain, B = 4: halos X 4·8·2·1 = 64 words, ΔY 4·8·4·1 = 128 words, each one message
    # between two neighbours, α_p2p2 + β_p2p2·words: (1 + 32) + (1 + 64) = 98 s on any Pr.
    # Weights over all P: 2×1 (p = 2) 2·(α_ar2 + 1/2·76·β_ar2) = 2·(2 + 38) = 80 s;
    # 4×1 (p = 4) 2·(2·α_ar4 + 3/4·76·β_ar4) = 2·(1 + 7.125) = 16.25 s
    g = Grids(np.array([2, 4]), np.array([1, 1]), np.full(2, 4))
    t = evaluate(net(C1), PER_P, g, PLANS["domain-batch"], compute="none")
    assert t.seconds("domain")[:, 0].tolist() == [98.0, 98.0]
    assert t.seconds("batch")[:, 0].tolist() == [80.0, 16.25]
    # a p2p pair for another p is not used for halos: the pooled one (392 s, test_per_collective)
    other = dataclasses.replace(FITTED, per_collective_processes=(("p2p", 4, 1.0, 8.0),))
    assert one(net(C1), 4, 1, 4, plan="domain-batch", machine=other).seconds(
        "domain")[0, 0] == 392.0


def test_auto_chooses_on_the_pair_of_each_group_size() -> None:
    # an all-gather α of 1e6 s on p = 4 only: on 4×1 every candidate pays ≥ 2 latency terms of
    # it; on 2×2 the p = 2 pair applies and auto is unaffected
    base = dataclasses.replace(MACHINE, collectives="auto")
    fitted = dataclasses.replace(base, per_collective=(("allgather", 2.0, 8.0),),
                                 per_collective_processes=(("allgather", 4, 1e6, 8.0),))
    g = Grids(np.array([2, 4]), np.array([2, 1]), np.full(2, 8))
    flat = evaluate(net(F1), base, g, PLANS["model-batch"], compute="none")
    fit = evaluate(net(F1), fitted, g, PLANS["model-batch"], compute="none")
    assert fit.seconds("model")[0, 0] == flat.seconds("model")[0, 0]
    assert fit.seconds("model")[1, 0] >= 2e6
    # the choice follows the fitted α: with a huge α the fewest-rounds algorithm wins
    algo = machine_algorithms(fitted)
    chosen = algo.chosen(ALLGATHER, np.array([[4]]), np.array([[1e6]]))
    assert chosen[0, 0] in ("bruck", "recursive-doubling")
    assert [r["model_allgather"] for r in layer_algorithms(fit, 1)] == [chosen[0, 0]]


# --------------------------------------------------------------------------- the lookup


def test_scale_at_is_a_vectorized_lookup_with_fallback() -> None:
    listed = ((2, 2.5, 1.0), (4, 0.5, 4.0))
    p = np.array([[1], [2], [3], [4], [8]])
    alpha, beta = scale_at((1.5, 2.0), listed, p)  # type: ignore[misc]
    assert alpha.shape == beta.shape == (5, 1)
    assert alpha[:, 0].tolist() == [1.5, 2.5, 1.5, 0.5, 1.5]
    assert beta[:, 0].tolist() == [2.0, 1.0, 2.0, 4.0, 2.0]
    # no pooled pair: 1, 1 (the flat α, β) where p is not listed
    alpha, beta = scale_at(None, listed, p)  # type: ignore[misc]
    assert alpha[:, 0].tolist() == [1.0, 2.5, 1.0, 0.5, 1.0]
    # nothing listed: the pooled pair itself (or None), untouched
    assert scale_at((1.5, 2.0), (), p) == (1.5, 2.0)
    assert scale_at(None, (), p) is None


def test_without_anything_to_scale_the_algorithms_are_unchanged() -> None:
    algo = algorithms("paper")
    assert algo.with_scales({}, {}) is algo
    assert algo.with_scales({}) is algo
    assert machine_algorithms(MACHINE).allgather_rate is algo.allgather_rate


# --------------------------------------------------------------------------- properties


@st.composite
def fitted_machines(draw: st.DrawFn, collectives: str = "paper") -> Machine:
    alpha = draw(st.floats(1e-7, 1e-3))
    machine = Machine("rand", alpha_s=alpha, bandwidth_Bps=draw(st.floats(1e6, 1e11)),
                      word_bytes=draw(st.sampled_from([2, 4])), flop_rate=1e12,
                      collectives=collectives)
    pooled = tuple((kind, draw(st.floats(0, 1e-3)), draw(st.floats(1e6, 1e11)))
                   for kind in ("allgather", "allreduce", "p2p") if draw(st.booleans()))
    return dataclasses.replace(machine, per_collective=pooled)


@given(networks(), fitted_machines(), grid_sets(), plans,
       st.sampled_from(["paper", "ring", "rabenseifner", "auto"]))
@settings(max_examples=40, deadline=None)
def test_listing_the_pooled_pair_for_every_p_changes_nothing(
        network: Network, machine: Machine, g: Grids, plan: str, collectives: str) -> None:
    sizes = sorted({int(x) for x in np.concatenate([g.pr, g.pc, g.pr * g.pc]) if x >= 2} | {2})
    every = dataclasses.replace(machine, per_collective_processes=tuple(
        (kind, p, alpha, bandwidth) for kind, alpha, bandwidth in machine.per_collective
        for p in sizes))
    pooled = evaluate(network, machine, g, PLANS[plan], collectives=collectives, compute="none")
    listed = evaluate(network, every, g, PLANS[plan], collectives=collectives, compute="none")
    for term in TERMS:
        assert np.array_equal(listed.seconds(term), pooled.seconds(term))
        assert np.array_equal(np.broadcast_to(listed.term(term).messages, listed.shape),
                              np.broadcast_to(pooled.term(term).messages, pooled.shape))
        assert np.array_equal(listed.term(term).words, pooled.term(term).words)
    assert np.array_equal(listed.total_s, pooled.total_s)
    fast = evaluate_totals(network, every, g, PLANS[plan], collectives=collectives,
                           compute="none")
    assert np.array_equal(fast.total_s, evaluate_totals(
        network, machine, g, PLANS[plan], collectives=collectives, compute="none").total_s)


@given(networks(), fitted_machines(), grid_sets(), plans,
       st.sampled_from(["allgather", "allreduce", "p2p"]), st.integers(2, 8),
       st.floats(1.0, 1e3), st.sampled_from(["paper", "ring", "auto"]))
@settings(max_examples=40, deadline=None)
def test_monotone_in_each_listed_alpha(network: Network, machine: Machine, g: Grids,
                                       plan: str, kind: str, p: int, factor: float,
                                       collectives: str) -> None:
    base_alpha = machine.alpha_s * 0.5
    low = dataclasses.replace(machine, per_collective_processes=((kind, p, base_alpha, 1e8),))
    high = dataclasses.replace(low, per_collective_processes=(
        (kind, p, base_alpha * factor, 1e8),))
    a = evaluate(network, low, g, PLANS[plan], collectives=collectives, compute="none")
    b = evaluate(network, high, g, PLANS[plan], collectives=collectives, compute="none")
    for term in TERMS:
        assert (b.seconds(term) >= a.seconds(term)).all()
    assert (b.total_s >= a.total_s).all()


def test_monotone_and_only_where_that_group_size_runs() -> None:
    # raising α of the p = 2 all-gather raises 2×2 only (1×4 gathers nothing, 4×1 is p = 4)
    g = Grids(np.array([1, 2, 4]), np.array([4, 2, 1]), np.full(3, 8))
    slower = dataclasses.replace(PER_P, per_collective_processes=(
        ("allgather", 2, 6.0, 8.0), *PER_P.per_collective_processes[1:]))
    a = evaluate(net(F1), PER_P, g, PLANS["model-batch"], compute="none").total_s
    b = evaluate(net(F1), slower, g, PLANS["model-batch"], compute="none").total_s
    assert (b - a).tolist() == [0.0, 1.0, 0.0]


# a scalar twin: tests/reference.py's raw counts, each collective charged with its kind's
# α, β for its group size (the kind's pooled pair, else the flat one, where p is not listed)


def _pair(machine: Machine, kind: str, p: int) -> tuple[float, float]:
    pairs = {(k, q): (a, machine.word_bytes / bw)
             for k, q, a, bw in machine.per_collective_processes}
    pooled = {k: (a, machine.word_bytes / bw) for k, a, bw in machine.per_collective}
    return pairs.get((kind, p), pooled.get(kind, (machine.alpha_s, machine.beta_s_per_word)))


def _twin_layer_s(layer: Layer, mode: str, pr: int, pc: int, batch: int, machine: Machine,
                  collectives: str) -> dict[str, float]:
    chosen = reference.select(collectives)
    gamma = machine.gamma_s_per_word

    def charge(kind: str, p: int, n: float) -> float:
        if p == 1:
            return 0.0
        alpha, beta = _pair(machine, kind, p)
        (m, w, r), _ = reference.collective(kind, chosen[kind], p, n, alpha, beta, gamma)
        return alpha * m + beta * w + gamma * r

    b = math.ceil(batch / pc)
    params = layer.weight_params + layer.norm_params
    if mode == reference.MODEL:
        d = layer.out_shape[0] * layer.out_shape[1] * layer.out_shape[2]
        split = layer.out_shape[2]
        return {"model": charge("allgather", pr, b * d) + charge("allreduce", pr, b * d),
                "batch": charge("allreduce", pc, math.ceil(split / pr) / split * params),
                "domain": 0.0}
    alpha, beta = _pair(machine, "p2p", 2)
    halo = 0.0
    for rows, shape in ((layer.kernel[0] // 2, layer.in_shape),
                        (layer.kernel[1] // 2, layer.out_shape)):
        if pr > 1 and rows > 0:
            halo += alpha + beta * b * shape[1] * shape[2] * rows
    return {"model": 0.0, "batch": charge("allreduce", pr * pc, params), "domain": halo}


@st.composite
def per_p_machines(draw: st.DrawFn) -> Machine:
    machine = draw(fitted_machines())
    kinds = st.sampled_from(["allgather", "allreduce", "p2p"])
    rows = draw(st.lists(st.tuples(kinds, st.integers(2, 16), st.floats(0, 1e-3),
                                   st.floats(1e6, 1e11)), max_size=8,
                         unique_by=lambda r: (r[0], r[1])))
    return dataclasses.replace(machine, per_collective_processes=tuple(rows),
                               gamma_s_per_word=draw(st.sampled_from([0.0, 1e-10])))


@given(networks(), per_p_machines(), plans, st.sampled_from(["paper", "ring", "auto"]),
       st.lists(st.tuples(st.integers(1, 16), st.integers(1, 16)), min_size=1, max_size=6),
       st.integers(1, 64))
@settings(max_examples=50, deadline=None)
def test_engine_equals_the_scalar_twin(network: Network, machine: Machine, plan: str,
                                       collectives: str, pairs: list[tuple[int, int]],
                                       batch: int) -> None:
    g = Grids(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]),
              np.full(len(pairs), batch))
    t = evaluate(network, machine, g, PLANS[plan], collectives=collectives, compute="none")
    for k, (pr, pc) in enumerate(pairs):
        for i, layer in enumerate(network.layers):
            mode, lpr, lpc = reference.plan_split(plan, layer, pr, pc, batch)
            want = _twin_layer_s(layer, mode, lpr, lpc, batch, machine, collectives)
            for term in TERMS:
                got = float(t.seconds(term)[k, i])
                assert got == pytest.approx(want[term], rel=1e-12, abs=1e-300), (k, i, term)


def test_per_layer_plan_costs_fixed_plans_like_the_engine() -> None:
    # the per-layer plan (costmodel.planning.perlayer) builds its layer costs and redistributions with
    # the same scaled rate functions: its fixed-plan sequences equal the engine's tables
    from costmodel.planning.perlayer import fixed_plan_sequences, problem
    from costmodel.planning.search import Settings

    c2 = Layer("c2", "conv", (8, 8, 4), (8, 8, 4), kernel=(3, 3), padding=(1, 1),
               weight_params=148)
    f2 = Layer("f2", "fc", (1, 1, 256), (1, 1, 10), weight_params=2570)
    network = net(C1, c2, f2)
    prob = problem(network, PER_P, 4, 8, Settings(compute="none"))
    for name, chosen in PLANS.items():
        grids, seqs = fixed_plan_sequences(prob, name)
        table = evaluate(network, PER_P, grids, chosen, compute="none")
        terms = prob.sequence_terms(seqs)
        for term in TERMS:
            np.testing.assert_allclose(terms[term], table.comm_s(term), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- machine checks


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ((("broadcast", 2, 1.0, 1.0),), "toy: per_collective: expected one of ('allgather', "
                                        "'allreduce', 'p2p'), got 'broadcast'"),
        ((("allgather", 1, 1.0, 1.0),), "toy: per_collective.allgather.processes: expected a "
                                        "process count: an integer ≥ 2, got 1"),
        ((("allgather", True, 1.0, 1.0),), "toy: per_collective.allgather.processes: expected "
                                           "a process count: an integer ≥ 2, got True"),
        ((("allgather", 2, 1.0, 1.0), ("allgather", 2, 2.0, 1.0)),
         "toy: per_collective.allgather.processes.2: expected one entry per process count "
         "(this one is given twice)"),
        ((("p2p", 2, -1.0, 1.0),), "toy: per_collective.p2p.processes.2: expected a latency "
                                   "≥ 0 s and a positive bandwidth, got (-1.0, 1.0)"),
        ((("p2p", 2, 1.0, 0.0),), "toy: per_collective.p2p.processes.2: expected a latency "
                                  "≥ 0 s and a positive bandwidth, got (1.0, 0.0)"),
    ],
    ids=["kind", "p-one", "p-bool", "duplicate", "negative-alpha", "zero-bandwidth"],
)
def test_machine_rejects(rows: tuple[tuple[str, int, float, float], ...], message: str) -> None:
    with pytest.raises(SpecError) as info:
        dataclasses.replace(MACHINE, per_collective_processes=rows)
    assert str(info.value) == message


def test_machine_needs_alpha_for_a_latency_and_rejects_levels() -> None:
    zero = dataclasses.replace(MACHINE, alpha_s=0.0)
    assert dataclasses.replace(zero, per_collective_processes=(("allgather", 2, 0.0, 1.0),))
    with pytest.raises(SpecError, match="alpha: expected a latency > 0 s"):
        dataclasses.replace(zero, per_collective_processes=(("allgather", 2, 1.0, 1.0),))
    with pytest.raises(SpecError) as info:
        _machine("levels:\n  - {name: node, processes: 2, alpha: 1 us, bandwidth: 10 GB/s}\n"
                 "  - {name: network}\n"
                 "per_collective: {p2p: {alpha: 1 us, bandwidth: 1 GB/s, processes: "
                 "{2: {alpha: 1 us, bandwidth: 1 GB/s}}}}\n")
    assert "per_collective: expected no per_collective together with levels" in str(info.value)


# --------------------------------------------------------------------------- loading


EXAMPLE = ("per_collective:\n  allgather: {alpha: 437 us, bandwidth: 552 MB/s, processes: "
           "{4: {alpha: 1.22 ms, bandwidth: 514 MB/s}, 2: {alpha: 390 us, bandwidth: "
           "601 MB/s}}}\n  p2p: {alpha: 0, bandwidth: 2 GB/s, processes: {2: {alpha: 0, "
           "bandwidth: 3 GB/s}}}\n")


def test_loads_processes() -> None:
    m = _machine(EXAMPLE)
    assert m.per_collective == (("allgather", pytest.approx(437e-6), 552e6),
                                ("p2p", 0.0, 2e9))
    assert m.per_collective_processes == (("allgather", 2, pytest.approx(390e-6), 601e6),
                                          ("allgather", 4, pytest.approx(1.22e-3), 514e6),
                                          ("p2p", 2, 0.0, 3e9))
    assert _machine("per_collective: {p2p: {alpha: 1 us, bandwidth: 1 GB/s}}\n"
                    ).per_collective_processes == ()


_ENTRY = "per_collective: {allgather: {alpha: 1 us, bandwidth: 1 GB/s, processes: %s}}\n"
_AT = "m.yaml: per_collective.allgather.processes"
_NOT_A_TABLE = (f"{_AT}: expected a non-empty mapping {{p: {{alpha: TIME, bandwidth: RATE}}}} "
                "with p a process count (an integer ≥ 2), got ")


@pytest.mark.parametrize(
    ("processes", "message"),
    [
        ("{1: {alpha: 1 us, bandwidth: 1 GB/s}}",
         f"{_AT}.1: expected a process count (an integer ≥ 2) as the key, got 1"),
        ("{0: {alpha: 1 us, bandwidth: 1 GB/s}}",
         f"{_AT}.0: expected a process count (an integer ≥ 2) as the key, got 0"),
        ("{-4: {alpha: 1 us, bandwidth: 1 GB/s}}",
         f"{_AT}.-4: expected a process count (an integer ≥ 2) as the key, got -4"),
        ("{two: {alpha: 1 us, bandwidth: 1 GB/s}}",
         f"{_AT}.two: expected a process count (an integer ≥ 2) as the key, got 'two'"),
        ("{2.5: {alpha: 1 us, bandwidth: 1 GB/s}}",
         f"{_AT}.2.5: expected a process count (an integer ≥ 2) as the key, got 2.5"),
        ("{4: {alpha: 1 us, bandwidth: -1 GB/s}}",
         f"{_AT}.4.bandwidth: expected a positive bandwidth, got '-1 GB/s'"),
        ("{4: {alpha: 1 us, bandwidth: 0 GB/s}}",
         f"{_AT}.4.bandwidth: expected a positive bandwidth, got '0 GB/s'"),
        ("{4: {alpha: 1 us, bandwidth: 1 parsec}}",
         f"{_AT}.4.bandwidth: expected "),
        ("{4: {alpha: -3 us, bandwidth: 1 GB/s}}",
         f"{_AT}.4.alpha: expected a positive time, got '-3 us'"),
        ("{4: {bandwidth: 1 GB/s}}", f"{_AT}.4.alpha: expected this field (it is missing)"),
        ("{4: {alpha: 1 us}}", f"{_AT}.4.bandwidth: expected this field (it is missing)"),
        ("{4: {alpha: 1 us, bandwidth: 1 GB/s, beta: 2}}",
         f"{_AT}.4.beta: expected one of the keys alpha, bandwidth (unknown key)"),
        ("{4: 5}", f"{_AT}.4: expected a mapping, got 'int'"),
        ("5", _NOT_A_TABLE + "'int'"),
        ("[2, 4]", _NOT_A_TABLE + "'list'"),
        ("{}", _NOT_A_TABLE + "{}"),
    ],
    ids=["p-one", "p-zero", "p-negative", "p-text", "p-float", "negative-bandwidth",
         "zero-bandwidth", "bad-unit", "negative-alpha", "missing-alpha", "missing-bandwidth",
         "unknown-key", "entry-not-mapping", "not-mapping", "a-list", "empty"],
)
def test_bad_processes(processes: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _machine(_ENTRY % processes)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(message)
    if not message.endswith("expected "):
        assert str(info.value) == message


def test_the_kind_pair_stays_required() -> None:
    with pytest.raises(SpecError) as info:
        _machine("per_collective: {allgather: {processes: {2: {alpha: 1 us, bandwidth: "
                 "1 GB/s}}}}\n")
    assert str(info.value) == "m.yaml: per_collective.allgather.alpha: expected this field " \
                              "(it is missing)"


@pytest.mark.parametrize(
    ("processes", "expected"),
    [
        ("{1: {alpha: 1 us, bandwidth: 1 GB/s}}",
         "per_collective.allgather.processes.1: expected a process count (an integer ≥ 2) as "
         "the key, got 1"),
        ("{4: {alpha: 1 us, bandwidth: 0 GB/s}}",
         "per_collective.allgather.processes.4.bandwidth: expected a positive bandwidth"),
        ("{4: {alpha: 1 us, bandwidth: 1 GB/s, latency: 3 us}}",
         "per_collective.allgather.processes.4.latency: expected one of the keys alpha, "
         "bandwidth (unknown key)"),
    ],
    ids=["p-one", "zero-bandwidth", "unknown-key"],
)
def test_cli_bad_processes_is_one_line_exit_2(processes: str, expected: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MACHINE_YAML + _ENTRY % processes, encoding="utf-8")
    line = fail(capsys, "optimize", "--net", "alexnet", "--machine", str(path), "--P", "4")
    assert f"{path}: {expected}" in line


def test_cli_layers_with_processes(tmp_path: Path) -> None:
    from cli_helpers import run_json

    path = tmp_path / "m.yaml"
    path.write_text(MACHINE_YAML + EXAMPLE, encoding="utf-8")
    machine = load_machine(str(path))
    record = run_json("layers", "--net", "alexnet", "--machine", str(path), "--P", "4",
                      "--pr", "2", "--batch", "8", "--per", "iteration")
    table = evaluate(load_network_alexnet(), machine, Grids(np.array([2]), np.array([2]),
                                                            np.array([8])),
                     PLANS["model-batch"], compute="auto")
    assert record["per_collective"] == {
        "allgather": {"alpha_s": pytest.approx(437e-6), "bandwidth_Bps": 552e6,
                      "processes": {"2": {"alpha_s": pytest.approx(390e-6),
                                          "bandwidth_Bps": 601e6},
                                    "4": {"alpha_s": pytest.approx(1.22e-3),
                                          "bandwidth_Bps": 514e6}}},
        "p2p": {"alpha_s": 0.0, "bandwidth_Bps": 2e9,
                "processes": {"2": {"alpha_s": 0.0, "bandwidth_Bps": 3e9}}}}
    model = sum(layer["model_comm_s"] for layer in record["layers"])
    assert model == pytest.approx(float(table.comm_s("model")[0]), rel=1e-12)


def load_network_alexnet() -> Network:
    from costmodel.inputs.loaders import load_network

    return load_network("alexnet")


# --------------------------------------------------------------------------- calibration


def test_calibration_writes_a_pair_per_group_size(tmp_path: Path) -> None:
    from test_calibration import exact_series

    truth = {("allgather", 2): (300e-6, 8e-9), ("allgather", 3): (350e-6, 9e-9),
             ("allgather", 4): (1.2e-3, 10e-9), ("allreduce", 2): (100e-6, 2e-9),
             ("allreduce", 4): (150e-6, 4e-9), ("p2p", 2): (50e-6, 1e-9)}
    cal = calibrate([exact_series(kind, p, a, b) for (kind, p), (a, b) in truth.items()])
    path = tmp_path / "host.yaml"
    path.write_text(profile_yaml(cal, "host", 1e10, "test"), encoding="utf-8")
    machine = load_machine(str(path))
    got = {(k, p): (a, machine.word_bytes / bw) for k, p, a, bw in
           machine.per_collective_processes}
    assert set(got) == set(truth)
    for key, (alpha, beta) in truth.items():
        assert got[key][0] == pytest.approx(alpha, rel=1e-5), key
        assert got[key][1] == pytest.approx(beta, rel=1e-5), key
    # the pooled pairs are still there, and the profile costs each p with its own pair:
    # an all-gather of n words on 4 processes is 2·α_ag4 + 3/4·n·β_ag4
    assert {k for k, _, _ in machine.per_collective} == {"allgather", "allreduce", "p2p"}
    cost = machine_algorithms(machine).allgather(np.array([[4]]), np.array([[1e6]]))
    seconds = float(cost.seconds(machine.alpha_s, machine.beta_s_per_word)[0, 0])
    assert seconds == pytest.approx(2 * 1.2e-3 + 0.75 * 1e6 * 10e-9, rel=1e-5)


def _fit(kind: str, p: int, a: float, b: float) -> SeriesFit:
    from test_calibration import exact_series

    return SeriesFit(exact_series(kind, p, 1e-4, 1e-9), a, b, 1.0, 1.0, np.zeros(12))


def test_fits_without_a_latency_or_a_bandwidth_term_are_left_out(tmp_path: Path) -> None:
    cal = Calibration((_fit("allgather", 2, 3e-4, 8e-9), _fit("allgather", 4, 0.0, 8e-9),
                       _fit("allgather", 8, 3e-4, 0.0), _fit("allreduce", 2, 1e-4, 1e-9)),
                      2e-4, 4e-9, 4, "paper", np.zeros(48),
                      (("allgather", 3e-4, 8e-9),))
    assert per_process_fits(cal) == (("allgather", 2, 3e-4, 8e-9),)
    text = profile_yaml(cal, "host", 1e10, "test")
    assert ("# no processes entry (its fit has α = 0 or β = 0, or the kind has no fit of its "
            "own): allgather p=4, allgather p=8, allreduce p=2") in text
    path = tmp_path / "host.yaml"
    path.write_text(text, encoding="utf-8")
    machine = load_machine(str(path))
    assert machine.per_collective_processes == (("allgather", 2, pytest.approx(3e-4),
                                                 pytest.approx(5e8)),)


def test_several_series_of_one_group_size_are_fitted_together() -> None:
    from test_calibration import exact_series

    cal = calibrate([exact_series("allreduce", 4, 100e-6, 2e-9),
                     exact_series("allreduce", 4, 100e-6, 2e-9),
                     exact_series("allreduce", 2, 80e-6, 1e-9)])
    rows = {(k, p): (a, b) for k, p, a, b in per_process_fits(cal)}
    assert set(rows) == {("allreduce", 2), ("allreduce", 4)}
    assert rows["allreduce", 4][0] == pytest.approx(100e-6, rel=1e-5)
    assert rows["allreduce", 4][1] == pytest.approx(2e-9, rel=1e-5)


def test_call_ratios_use_the_pair_of_each_group_size() -> None:
    from costmodel.measure.validation import call_ratios

    log = [{"layer": "f1", "term": "model", "op": "all-gather", "p": 2, "words": 8},
           {"layer": "c1", "term": "domain", "op": "halo X", "p": 4, "words": 4}]
    ranks = [{"log": log, "iterations": [{"call_s": [9.0, 3.0]}]}]
    # all-gather p = 2: α_ag2 + 1/2·8·β_ag2 = 5 + 2 = 7 s; halo: α_p2p2 + 4·β_p2p2 = 3 s
    fastest, median = call_ratios(ranks, PER_P)
    assert fastest == [9 / 7, 1.0] and median == [9 / 7, 1.0]
