"""Tests of costmodel.planning.perlayer: layouts, redistribution by hand (docs/perlayer.md §2), the DP
against brute force, the fixed plans as sequences, and the claim "never worse than the best fixed
plan" (docs/perlayer.md §4).

Hand-computed cases use α = 2 s, β = 0.5 s/word (as tests/test_cost.py), so every value is exact.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.cost import evaluate
from costmodel.engine.grids import factorizations
from costmodel.engine.hierarchy import MAPPINGS, PC_INSIDE, PR_INSIDE
from costmodel.engine.plans import DOMAIN, MODEL, PLANS
from costmodel.errors import NoFeasibleGrid, UsageError
from costmodel.inputs.specs import Layer, Level, Machine, Network
from costmodel.planning.perlayer import (
    NOT_CONV,
    Placement,
    alltoall_rate,
    fixed_plan_sequences,
    layouts,
    level_alltoall_rates,
    optimize_per_layer,
    problem,
    solve_chain,
)
from costmodel.planning.search import Settings

ALPHA, BETA = 2.0, 0.5
MACHINE = Machine("toy", alpha_s=ALPHA, bandwidth_Bps=8.0, word_bytes=4, flop_rate=1000.0)
NONE = Settings(compute="none")

# c2's input is 8×8×4 = 256 words per sample: what moves between c1 and c2
C1 = Layer("c1", "conv", (8, 8, 2), (8, 8, 4), kernel=(3, 3), padding=(1, 1), weight_params=76)
C2 = Layer("c2", "conv", (8, 8, 4), (8, 8, 4), kernel=(3, 3), padding=(1, 1), weight_params=148)
F1 = Layer("f1", "fc", (1, 1, 256), (1, 1, 10), weight_params=2570)
PAIR = Network("pair", (C1, C2), (8, 8, 2), dataset_samples=1600)


def net(*layers: Layer) -> Network:
    return Network("tiny", tuple(layers), layers[0].in_shape, dataset_samples=1600)


def index(P: int, split: str, pr: int) -> int:
    lay = layouts(P)
    mode = DOMAIN if split == "domain" else MODEL
    return int(lay.index(np.array(mode), np.array(pr)))


# --------------------------------------------------------------------------- layouts


def test_layouts_of_4096() -> None:
    lay = layouts(4096)
    assert len(lay) == 2 * 13 - 1 == 25
    assert (lay.pr[0], lay.pc[0], lay.split(0)) == (1, 4096, "batch")
    assert (lay.pr * lay.pc == 4096).all()
    assert [lay.split(k) for k in range(25)] == ["batch"] + ["model"] * 12 + ["domain"] * 12


def test_layout_index_round_trip_and_pr_one_is_batch() -> None:
    lay = layouts(12)
    k = np.arange(len(lay))
    assert (lay.index(lay.mode, lay.pr) == k).all()
    assert lay.index(np.array(DOMAIN), np.array(1)) == 0


def test_domain_on_fc_is_infeasible() -> None:
    prob = problem(net(C1, F1), MACHINE, 4, 8, NONE)
    lay = prob.layouts
    domain = lay.mode == DOMAIN
    assert (prob.costs.code[domain, 1] == NOT_CONV).all()
    assert prob.costs.feasible[domain, 0].all()


# --------------------------------------------------------------------------- redistribution


def redist(P: int, B: int, a: tuple[str, int], b: tuple[str, int],
           network: Network = PAIR) -> tuple[float, float, float]:
    prob = problem(network, MACHINE, P, B, NONE)
    r = prob.redistribution
    i, j = index(P, *a), index(P, *b)
    return float(r.seconds[0, i, j]), float(r.messages[0, i, j]), float(r.words[0, i, j])


# P = 4, B = 8, n = 256 words per sample; every value: forward + backward (docs/perlayer.md §2)
HAND = [
    # batch → model 2×2: fwd all-gather over 2 of ⌈8/2⌉·256 = 1024 words: 2 + 0.5·512 = 258;
    # bwd the gradients are already replicated over the pair: keep one's own samples, free
    (("batch", 1), ("model", 2), 258.0, 1.0, 512.0),
    # Eq. 6: batch → model 4×1: all-gather over all 4 of 8·256 = 2048: 2·2 + 0.5·1536 = 772
    (("batch", 1), ("model", 4), 772.0, 2.0, 1536.0),
    # model → batch: fwd free (discard), bwd all-gather: the same 258
    (("model", 2), ("batch", 1), 258.0, 1.0, 512.0),
    # model 2×2 → model 4×1: fwd all-gather over 4/gcd(2,4) = 2 of 8·256: 2 + 0.5·1024 = 514;
    # bwd model 4 → model 2: 2 divides 4, free
    (("model", 2), ("model", 4), 514.0, 1.0, 1024.0),
    # batch → domain 2×2: fwd all-to-all over 2, m = 4·256/2 = 512 held: α + β·512/2 = 130;
    # bwd domain 2 → batch: route B (all-to-all, 130) beats route A (all-gather strips, 258)
    (("batch", 1), ("domain", 2), 260.0, 2.0, 512.0),
    # domain 2×2 → model 2×2: fwd route A all-gather strips over 2 (1024 words) = 258, then free;
    # route B would be 130 + 258.  bwd model 2 → domain 2: 2/gcd = 1, free
    (("domain", 2), ("model", 2), 258.0, 1.0, 512.0),
    # domain 2×2 → domain 4×1: fwd route B = all-to-all over 2 (130) + batch → domain 4
    # (all-to-all over 4, m = 8·256/4 = 512: 3·2 + 0.5·384 = 198) = 328 < route A 258 + 130;
    # bwd domain 4 → domain 2: route B = 198 + 130 = 328 < route A 772 + 0
    (("domain", 2), ("domain", 4), 656.0, 2 * (1 + 3), 2 * (256 + 384)),
    # model 4×1 → domain 2×2: fwd 2 divides 4: each keeps its strip, free; bwd domain 2 → model 4:
    # route A all-gather strips (258) + model 2 → model 4 (514) = 772 < route B 130 + 772
    (("model", 4), ("domain", 2), 772.0, 2.0, 1536.0),
]


@pytest.mark.parametrize(("a", "b", "seconds", "messages", "words"), HAND)
def test_redistribution_by_hand(a: tuple[str, int], b: tuple[str, int], seconds: float,
                                messages: float, words: float) -> None:
    assert redist(4, 8, a, b) == (seconds, messages, words)


def test_redistribution_moves_the_next_layers_input() -> None:
    # pooling between c1 and c2: c1 outputs 8×8×4, c2 reads 4×4×4 = 64 words per sample
    pooled = Layer("c2", "conv", (4, 4, 4), (4, 4, 4), kernel=(3, 3), weight_params=148)
    seconds, messages, words = redist(4, 8, ("batch", 1), ("model", 4), net(C1, pooled))
    assert (messages, words) == (2.0, 0.75 * 8 * 64)
    assert seconds == ALPHA * 2 + BETA * words


def test_redistribution_uses_the_slowest_process() -> None:
    # B = 7 on Pc = 2: ⌈7/2⌉ = 4 samples, as for B = 8
    assert redist(4, 7, ("batch", 1), ("model", 2)) == redist(4, 8, ("batch", 1), ("model", 2))


@given(st.sampled_from([1, 2, 4, 6, 8, 12, 16]), st.integers(1, 40),
       st.sampled_from(["paper", "ring"]))
@settings(max_examples=30, deadline=None)
def test_redistribution_zero_on_the_diagonal_symmetric_and_non_negative(
        P: int, B: int, collectives: str) -> None:
    prob = problem(net(C1, C2, F1), MACHINE, P, B, Settings(compute="none",
                                                            collectives=collectives))
    s = prob.redistribution.seconds
    K = len(prob.layouts)
    assert (s[:, np.arange(K), np.arange(K)] == 0).all()
    assert (prob.redistribution.words[:, np.arange(K), np.arange(K)] == 0).all()
    # forward k → l plus backward l → k is the same move as l → k plus k → l
    assert np.allclose(s, s.transpose(0, 2, 1), rtol=1e-12, atol=0)
    assert (s >= 0).all()
    # and it is zero off the diagonal only when Pr' | Pr both ways, i.e. never
    off = ~np.eye(K, dtype=bool)
    assert (s[:, off] > 0).all()


# --------------------------------------------------------------------------- layer costs


@st.composite
def tiny_networks(draw: st.DrawFn, min_layers: int = 3, max_layers: int = 4) -> Network:
    n = draw(st.integers(min_layers, max_layers))
    n_fc = draw(st.integers(0, n - 1))
    layers = []
    for i in range(n - n_fc):
        k = draw(st.integers(1, 5))
        h = draw(st.integers(max(1, k // 2), 12))
        layers.append(Layer(f"c{i}", "conv", (h, draw(st.integers(1, 8)), draw(st.integers(1, 8))),
                            (draw(st.integers(1, 12)), draw(st.integers(1, 8)),
                             draw(st.integers(1, 24))),
                            kernel=(k, draw(st.integers(1, 5))),
                            weight_params=draw(st.integers(1, 10**5))))
    for i in range(n_fc):
        layers.append(Layer(f"f{i}", "fc", (1, 1, draw(st.integers(1, 2000))),
                            (1, 1, draw(st.integers(1, 64))),
                            weight_params=draw(st.integers(1, 10**6))))
    return Network("rand", tuple(layers), layers[0].in_shape,
                   dataset_samples=draw(st.integers(1, 10**6)))


@st.composite
def machines(draw: st.DrawFn) -> Machine:
    return Machine("rand", alpha_s=draw(st.floats(0, 1e-3)),
                   bandwidth_Bps=draw(st.floats(1e6, 1e11)),
                   word_bytes=draw(st.sampled_from([2, 4])),
                   flop_rate=draw(st.floats(1e9, 1e13)))


small_P = st.sampled_from([1, 2, 3, 4, 6, 8, 12])
overlaps = st.sampled_from(["none", "batch"])


@given(tiny_networks(1, 5), machines(), small_P, st.integers(1, 16), overlaps,
       st.sampled_from(["paper", "ring"]))
@settings(max_examples=40, deadline=None)
def test_fixed_plans_without_redistribution_are_the_engine(
        network: Network, machine: Machine, P: int, B: int, overlap: str,
        collectives: str) -> None:
    s = Settings(overlap=overlap, collectives=collectives, compute="flops")  # type: ignore[arg-type]
    prob = problem(network, machine, P, B, s)
    for name, plan in PLANS.items():
        grids, seqs = fixed_plan_sequences(prob, name)
        table = evaluate(network, machine, grids, plan, s.overlap, s.collectives, s.compute)
        terms = prob.sequence_terms(seqs)
        assert (terms["feasible"] == table.feasible).all()
        for term in ("model", "batch", "domain"):
            assert np.allclose(terms[term], table.comm_s(term), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- the DP


def brute_force(prob: object) -> tuple[float, np.ndarray]:
    """Every layout sequence, costed by Problem.totals: (least total, all totals)."""
    K, L = len(prob.layouts), len(prob.network.layers)  # type: ignore[attr-defined]
    every = np.array(list(itertools.product(range(K), repeat=L)), dtype=np.int64)
    totals = prob.totals(every)  # type: ignore[attr-defined]
    return float(totals.min()), totals


@given(tiny_networks(), machines(), small_P, st.integers(1, 16), overlaps)
@settings(max_examples=60, deadline=None)
def test_dp_equals_brute_force(network: Network, machine: Machine, P: int, B: int,
                               overlap: str) -> None:
    s = Settings(overlap=overlap, compute="flops")  # type: ignore[arg-type]
    result = optimize_per_layer(network, machine, P, B, s, allow_infeasible=True)
    best, _ = brute_force(result.problem)
    if not np.isfinite(best):
        assert result.choice is None and result.reason
        with pytest.raises(NoFeasibleGrid):
            optimize_per_layer(network, machine, P, B, s)
        return
    assert result.choice is not None
    assert float(result.problem.totals(result.choice)[0]) == result.total_s
    if overlap == "none":
        assert result.exact
        assert result.total_s == pytest.approx(best, rel=1e-12, abs=0)
    else:  # a feasible sequence, and a certified bound below the true optimum
        assert result.lower_bound_s <= best * (1 + 1e-12)
        assert best <= result.total_s * (1 + 1e-12)
        if result.exact:
            assert result.total_s == pytest.approx(best, rel=1e-12, abs=0)


def test_solve_chain_small_by_hand() -> None:
    # two layouts, three layers: staying in 0 costs 1+1+1 = 3; switching to 1 at layer 2
    # costs 1 + 1 + 0 + a redistribution of 0.5 = 2.5
    layer_s = np.array([[1.0, 1.0, 1.0], [5.0, 5.0, 0.0]])
    redist_s = np.array([[[0.0, 0.5], [0.5, 0.0]]] * 2)
    assert solve_chain(layer_s, redist_s) == (2.5, pytest.approx(np.array([0, 0, 1])))
    expensive = np.array([[[0.0, 1.5], [1.5, 0.0]]] * 2)
    value, choice = solve_chain(layer_s, expensive)
    assert value == 3.0 and choice.tolist() == [0, 0, 0]


# --------------------------------------------------------------------------- the claim


@given(tiny_networks(1, 6), machines(), st.sampled_from([1, 2, 4, 8, 16, 32, 64, 48, 96]),
       st.integers(1, 64), overlaps)
@settings(max_examples=60, deadline=None)
def test_never_worse_than_the_best_fixed_plan_charged(network: Network, machine: Machine,
                                                       P: int, B: int, overlap: str) -> None:
    s = Settings(overlap=overlap, compute="flops")  # type: ignore[arg-type]
    result = optimize_per_layer(network, machine, P, B, s, allow_infeasible=True)
    prob = result.problem
    charged = min(float(prob.totals(fixed_plan_sequences(prob, name)[1]).min())
                  for name in PLANS)
    assert charged == min(f.charged_total_s for f in result.fixed)
    assert result.total_s <= charged * (1 + 1e-12) or not np.isfinite(charged)
    assert result.total_s <= result.pure_batch_total_s * (1 + 1e-12) or not np.isfinite(
        result.pure_batch_total_s)
    # charging redistribution never makes a fixed plan cheaper
    for f in result.fixed:
        assert f.total_s <= f.charged_total_s * (1 + 1e-12) or not np.isfinite(f.total_s)


def test_fixed_plan_can_look_cheaper_when_redistribution_is_not_charged() -> None:
    # AlexNet, P = 512, B = 2048 (Fig. 7): fc-model 32×16 is 26.74 s/epoch as the paper charges
    # it; its conv5 → fc6 move costs an all-gather over 32 of ⌈2048/16⌉·9216 words
    from costmodel.inputs.loaders import load_machine, load_network

    network, machine = load_network("alexnet"), load_machine("cori-knl")
    result = optimize_per_layer(network, machine, 512, 2048)
    fc = next(f for f in result.fixed if f.plan == "fc-model")
    words = 31 / 32 * 128 * 9216
    move = 5 * machine.alpha_s + words * machine.beta_s_per_word
    assert fc.charged_redistribution_s == pytest.approx(move, rel=1e-12)
    assert fc.charged_total_s == pytest.approx(fc.total_s + move, rel=1e-12)
    assert fc.total_s < result.total_s <= fc.charged_total_s
    lay = result.problem.layouts
    assert [lay.split(int(k)) for k in result.choice] == ["batch"] * 5 + ["model"] * 3  # type: ignore[union-attr]


def test_no_feasible_layout_message() -> None:
    from costmodel.inputs.loaders import load_machine, load_network

    with pytest.raises(NoFeasibleGrid) as err:
        optimize_per_layer(load_network("alexnet"), load_machine("cori-knl"), 65536, 8)
    assert str(err.value) == (
        "plan per-layer: no feasible layout for conv1 at P=65536, B=8: Pc = P/Pr ≤ B=8 needs "
        "Pr ≥ 8192; a model split allows Pr ≤ 96 filters; a domain split Pr ≤ 45 (227 rows in "
        "strips of ≥ 5)")
    assert factorizations(65536, 8).pr.size == 17


# --------------------------------------------------------------------------- named collectives


@given(tiny_networks(1, 5), machines(), small_P, st.integers(1, 16),
       st.sampled_from(["rabenseifner", "binomial", "recursive-doubling"]),
       st.sampled_from([0.0, 1e-10, 1e-8]))
@settings(max_examples=30, deadline=None)
def test_fixed_plans_are_the_engine_with_named_collectives_and_gamma(
        network: Network, machine: Machine, P: int, B: int, collectives: str,
        gamma: float) -> None:
    # docs/collectives.md: the per-layer costs follow the selection and charge γ like the engine
    machine = Machine(machine.name, alpha_s=machine.alpha_s, bandwidth_Bps=machine.bandwidth_Bps,
                      word_bytes=machine.word_bytes, flop_rate=machine.flop_rate,
                      gamma_s_per_word=gamma)
    s = Settings(collectives=collectives, compute="flops")
    prob = problem(network, machine, P, B, s)
    for name, plan in PLANS.items():
        grids, seqs = fixed_plan_sequences(prob, name)
        table = evaluate(network, machine, grids, plan, s.overlap, s.collectives, s.compute)
        terms = prob.sequence_terms(seqs)
        for term in ("model", "batch", "domain"):
            assert np.allclose(terms[term], table.comm_s(term), rtol=1e-12, atol=0)


def test_per_layer_refuses_auto() -> None:
    machine = Machine("m", alpha_s=1e-6, bandwidth_Bps=1e9)
    network = Network("n", (Layer("f", "fc", (1, 1, 8), (1, 1, 8), weight_params=72),),
                      (1, 1, 8))
    with pytest.raises(UsageError) as info:
        problem(network, machine, 4, 8, Settings(collectives="auto"))
    assert str(info.value) == ("plan per-layer: collectives 'auto' is not supported yet (its "
                               "redistribution is costed with one all-gather rate); pick an "
                               "algorithm")


# --------------------------------------------------------------------------- machines with levels
# docs/perlayer.md §7.  Two levels, word_bytes 4: node of 2 processes, α1 = 1 s,
# β1 = 4 B / 16 B/s = 0.25 s/word; network α2 = 2 s, β2 = 0.5 s/word (the flat MACHINE's).
LEVELS = Machine("two", alpha_s=ALPHA, bandwidth_Bps=8.0, word_bytes=4, flop_rate=1000.0,
                 levels=(Level("node", 2, 1.0, 16.0), Level("network", None, ALPHA, 8.0)))


def level_redist(mapping: str, a: tuple[str, int], b: tuple[str, int]) -> tuple[float, ...]:
    prob = problem(PAIR, LEVELS, 4, 8, NONE, mapping=mapping)
    r = prob.redistribution
    i, j = index(4, *a), index(4, *b)
    return float(r.seconds[0, i, j]), float(r.messages[0, i, j]), float(r.words[0, i, j])


# P = 4 on two nodes of 2, B = 8, n = 256 words per sample; (seconds, messages, words) under
# Pr inside and under Pc inside, forward + backward
LEVEL_HAND = [
    # batch → model 4×1 (Eq. 6): all-gather over all 4 (stride 1 under both mappings) of 2048
    # words: network first, 1024 words over 2 nodes: 2 + 0.5·512 = 258, then 2048 over the
    # node pair: 1 + 0.25·1024 = 257; backward free.  Words 512 + 1024 = the flat 1536.
    (("batch", 1), ("model", 4), (515.0, 2.0, 1536.0), (515.0, 2.0, 1536.0)),
    # batch → model 2×2, all-gather over the Pr pair of 4·256 = 1024 words: Pr inside the pair
    # {0, 1} shares a node: 1 + 0.25·512 = 129; Pc inside it is {c, c+2}, one per node:
    # 2 + 0.5·512 = 258
    (("batch", 1), ("model", 2), (129.0, 1.0, 512.0), (258.0, 1.0, 512.0)),
    # model 2×2 → model 4×1: all-gather over 4/gcd(2, 4) = 2 of 2048 words between the ranks
    # holding the other sample half: with Pr inside ranks 0, 1 hold the first half, so the
    # partner is 2 apart, across nodes: 2 + 0.5·1024 = 514; with Pc inside rank x holds the
    # samples ≡ x (mod 2), the partner is the neighbour in the node: 1 + 0.25·1024 = 257;
    # backward (4 → 2) free
    (("model", 2), ("model", 4), (514.0, 1.0, 1024.0), (257.0, 1.0, 1024.0)),
    # batch → domain 4×1: all-to-all over 4, m = 8·256/4 = 512 held: one partner in the node,
    # 1 + 0.25·512/4 = 33, two across, 2·2 + 0.5·2·512/4 = 132: 165 (flat: 3·2 + 0.5·384 =
    # 198); backward route B, the same all-to-all back (165) < route A's gather (515)
    (("batch", 1), ("domain", 4), (330.0, 6.0, 768.0), (330.0, 6.0, 768.0)),
    # batch → domain 2×2: all-to-all over the Pr pair, m = 4·256/2 = 512: in the node
    # (Pr inside) 1 + 0.25·256 = 65, across (Pc inside) 2 + 0.5·256 = 130; backward the same
    (("batch", 1), ("domain", 2), (130.0, 2.0, 512.0), (260.0, 2.0, 512.0)),
]


@pytest.mark.parametrize(("a", "b", "pr_inside", "pc_inside"), LEVEL_HAND)
def test_redistribution_on_levels_by_hand(a: tuple[str, int], b: tuple[str, int],
                                          pr_inside: tuple[float, ...],
                                          pc_inside: tuple[float, ...]) -> None:
    assert level_redist(PR_INSIDE, a, b) == pr_inside
    assert level_redist(PC_INSIDE, a, b) == pc_inside


def test_alltoall_on_levels_adds_up_to_the_flat_one() -> None:
    # 12 consecutive ranks of P = 24 on nodes of 4 inside pods of 8: aligned blocks of
    # q = gcd(12, 4) = 4 members per node and gcd(12, 8) = 4 per pod (a pod never holds a
    # second block of the same group), so 3 partners in the node, none more in the pod and 8
    # across the network (charged there, as docs/hierarchy.md charges uneven groups)
    machine = Machine("three", alpha_s=1.0, bandwidth_Bps=1.0, word_bytes=4,
                      levels=(Level("node", 4, 1.0, 1.0), Level("pod", 8, 1.0, 1.0),
                              Level("network", None, 1.0, 1.0)))
    rates = level_alltoall_rates(np.array([12]), np.array([1]), Placement.of(machine, PR_INSIDE),
                                 24)
    assert [float(r.messages[0]) for r in rates] == [3.0, 0.0, 8.0]
    assert [float(r.per_word[0]) for r in rates] == [3 / 12, 0.0, 8 / 12]
    flat = alltoall_rate(np.array([12]))
    assert sum(float(r.messages[0]) for r in rates) == float(flat.messages[0])


def two_level(draw: st.DrawFn, flat: Machine) -> Machine:
    """``flat`` with a node level of 1–8 processes in front (its network level is ``flat``)."""
    node = Level("node", draw(st.sampled_from([1, 2, 3, 4, 8])), draw(st.floats(0, 1e-3)),
                 draw(st.floats(1e6, 1e12)))
    return Machine("two", alpha_s=flat.alpha_s, bandwidth_Bps=flat.bandwidth_Bps,
                   word_bytes=flat.word_bytes, flop_rate=flat.flop_rate,
                   levels=(node, Level("network", None, flat.alpha_s, flat.bandwidth_Bps)))


@st.composite
def level_machines(draw: st.DrawFn) -> Machine:
    return two_level(draw, draw(machines()))


mappings = st.sampled_from([PR_INSIDE, PC_INSIDE])


@given(tiny_networks(1, 5), level_machines(), small_P, st.integers(1, 16), overlaps, mappings,
       st.sampled_from(["paper", "ring", "rabenseifner"]))
@settings(max_examples=40, deadline=None)
def test_fixed_plans_on_levels_are_the_engine_under_that_mapping(
        network: Network, machine: Machine, P: int, B: int, overlap: str, mapping: str,
        collectives: str) -> None:
    s = Settings(overlap=overlap, collectives=collectives, compute="flops")  # type: ignore[arg-type]
    prob = problem(network, machine, P, B, s, mapping=mapping)
    assert prob.mapping == mapping
    for name, plan in PLANS.items():
        grids, seqs = fixed_plan_sequences(prob, name)
        table = evaluate(network, machine, grids, plan, s.overlap, s.collectives, s.compute,
                         mapping=mapping)
        terms = prob.sequence_terms(seqs)
        assert (terms["feasible"] == table.feasible).all()
        for term in ("model", "batch", "domain"):
            assert np.allclose(terms[term], table.comm_s(term), rtol=1e-12, atol=0)
        if name == "model-batch":  # one layout for every layer: no redistribution at all,
            ok = table.feasible  # so the per-layer total is the engine's total
            assert (terms["redistribution"] == 0).all()
            assert np.allclose(prob.totals(seqs)[ok], table.total_s[ok], rtol=1e-12, atol=0)


@given(tiny_networks(), level_machines(), small_P, st.integers(1, 16), overlaps)
@settings(max_examples=40, deadline=None)
def test_dp_equals_brute_force_on_levels_under_both_mappings(
        network: Network, machine: Machine, P: int, B: int, overlap: str) -> None:
    s = Settings(overlap=overlap, compute="flops")  # type: ignore[arg-type]
    result = optimize_per_layer(network, machine, P, B, s, allow_infeasible=True)
    optima = {m: brute_force(problem(network, machine, P, B, s, mapping=m))[0]
              for m in MAPPINGS}
    best = min(optima.values())
    if not np.isfinite(best):
        assert result.choice is None and result.reason
        return
    assert result.choice is not None and result.mapping in MAPPINGS
    assert result.mapping_total_s is not None
    assert float(result.problem.totals(result.choice)[0]) == result.total_s
    assert result.total_s == result.mapping_total_s[result.mapping] == min(
        result.mapping_total_s.values())
    if overlap == "none":
        assert result.exact
        for m in MAPPINGS:
            assert result.mapping_total_s[m] == pytest.approx(optima[m], rel=1e-12, abs=0)
    else:
        assert result.lower_bound_s <= best * (1 + 1e-12)
        assert best <= result.total_s * (1 + 1e-12)
        if result.exact:
            assert result.total_s == pytest.approx(best, rel=1e-12, abs=0)
    for m in MAPPINGS:  # a forced mapping solves that mapping's problem
        forced = optimize_per_layer(network, machine, P, B, replace(s, mapping=m))
        assert forced.mapping == m and forced.total_s == result.mapping_total_s[m]


@given(tiny_networks(1, 6), level_machines(), st.sampled_from([1, 2, 4, 8, 16, 48]),
       st.integers(1, 64), overlaps, st.sampled_from(["best", PR_INSIDE, PC_INSIDE]))
@settings(max_examples=40, deadline=None)
def test_never_worse_than_the_best_fixed_plan_charged_on_levels(
        network: Network, machine: Machine, P: int, B: int, overlap: str, mapping: str) -> None:
    s = Settings(overlap=overlap, compute="flops", mapping=mapping)  # type: ignore[arg-type]
    result = optimize_per_layer(network, machine, P, B, s, allow_infeasible=True)
    solved = MAPPINGS if mapping == "best" else (mapping,)
    charged = min(float(problem(network, machine, P, B, s, mapping=m).totals(
        fixed_plan_sequences(result.problem, name)[1]).min()) for name in PLANS for m in solved)
    assert charged == min(f.charged_total_s for f in result.fixed)
    assert result.total_s <= charged * (1 + 1e-12) or not np.isfinite(charged)
    for f in result.fixed:
        assert f.total_s <= f.charged_total_s * (1 + 1e-12) or not np.isfinite(f.total_s)
        assert f.charged_mapping in solved or not np.isfinite(f.charged_total_s)
    if mapping != "best":
        assert result.mapping == mapping


@given(tiny_networks(2, 4), machines(), st.sampled_from([1, 2, 4, 8, 16]),
       st.integers(1, 32), st.sampled_from([1, 2, 4, 8]), mappings)
@settings(max_examples=30, deadline=None)
def test_equal_levels_give_the_flat_redistribution(network: Network, flat: Machine, P: int,
                                                   B: int, node: int, mapping: str) -> None:
    # the paper's all-gather and the all-to-all on powers of two: with the same α, β on both
    # levels, where the words go does not change what they cost
    same = Machine("same", alpha_s=flat.alpha_s, bandwidth_Bps=flat.bandwidth_Bps,
                   word_bytes=flat.word_bytes, flop_rate=flat.flop_rate,
                   levels=(Level("node", node, flat.alpha_s, flat.bandwidth_Bps),
                           Level("network", None, flat.alpha_s, flat.bandwidth_Bps)))
    ours = problem(network, same, P, B, NONE, mapping=mapping).redistribution
    theirs = problem(network, flat, P, B, NONE).redistribution
    assert np.allclose(ours.seconds, theirs.seconds, rtol=1e-9, atol=0)
    assert np.allclose(ours.words, theirs.words, rtol=1e-12, atol=0)
    assert np.allclose(ours.messages, theirs.messages, rtol=1e-12, atol=0)


def test_mapping_on_a_flat_machine_is_refused() -> None:
    with pytest.raises(UsageError) as info:
        problem(PAIR, MACHINE, 4, 8, Settings(compute="none", mapping=PC_INSIDE))
    assert str(info.value).startswith("mapping 'pc-inside': machine 'toy' has no levels")


def test_levels_refuse_collectives_without_a_reduce_scatter() -> None:
    with pytest.raises(UsageError) as info:
        problem(PAIR, LEVELS, 4, 8, Settings(compute="none", collectives="binomial"))
    assert str(info.value).startswith("all-reduce 'binomial' has no reduce-scatter phase")


def test_too_many_layouts_is_checked_before_any_work_on_levels() -> None:
    from costmodel.errors import TooLarge
    from costmodel.inputs.loaders import load_network

    resnet = load_network("resnet152")  # 155 boundaries; P = 720720 has 240 divisors
    with pytest.raises(TooLarge, match="redistribution costs, at most 4,194,304"):
        problem(resnet, LEVELS, 720720, 2**20, NONE, mapping=PC_INSIDE)


@pytest.mark.parametrize("overlap", ["none", "batch", "backward"])
def test_every_overlap_runs_on_levels(overlap: str) -> None:
    from costmodel.inputs.loaders import load_machine, load_network

    network, machine = load_network("alexnet"), load_machine("a100-ib-nodes")
    s = Settings(overlap=overlap)  # type: ignore[arg-type]
    result = optimize_per_layer(network, machine, 64, 2048, s)
    assert result.mapping_total_s is not None
    assert result.total_s == min(result.mapping_total_s.values())
    assert result.lower_bound_s <= result.total_s
    assert result.problem.placement is not None and result.mapping in MAPPINGS
    charged = min(f.charged_total_s for f in result.fixed)
    assert result.total_s <= charged * (1 + 1e-12)
