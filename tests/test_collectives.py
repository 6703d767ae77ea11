"""Tests of costmodel.engine.collectives: α–β cost of each collective (docs/model.md §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.collectives import (
    ALGORITHMS,
    ALLGATHER,
    ALLREDUCE,
    BROADCAST,
    REDUCE_SCATTER,
    REGISTRY,
    SELECTABLE,
    CollectiveCost,
    algorithms,
    allgather_bruck,
    allgather_ring,
    allreduce_paper,
    allreduce_ring,
    ceil_log2,
    halo_exchange,
    parse_selection,
)
from costmodel.errors import UnknownName, UsageError

ALL = [allgather_bruck, allreduce_paper, allgather_ring, allreduce_ring]


def test_allgather_bruck_hand_computed() -> None:
    # p = 8, n = 800: lg 8 = 3 messages, (8−1)/8·800 = 700 words
    cost = allgather_bruck(np.int64(8), np.float64(800))
    assert float(cost.messages) == 3.0
    assert float(cost.words) == 7 / 8 * 800 == 700.0
    # α = 2 s, β = 0.5 s/word: 2·3 + 0.5·700 = 356 s
    assert float(cost.seconds(2.0, 0.5)) == 2 * 3 + 0.5 * 700


def test_allreduce_paper_is_twice_the_allgather() -> None:
    # 2·(α·lg 8 + β·7/8·800) = 6 messages, 1400 words
    cost = allreduce_paper(np.int64(8), np.float64(800))
    assert float(cost.messages) == 2 * 3
    assert float(cost.words) == 2 * 700


def test_allreduce_ring_hand_computed() -> None:
    # p = 4, n = 100: 2(p−1) = 6 latency terms, 2·(3/4)·100 = 150 words
    cost = allreduce_ring(np.int64(4), np.float64(100))
    assert float(cost.messages) == 2 * (4 - 1) == 6
    assert float(cost.words) == 2 * 3 / 4 * 100 == 150


def test_allgather_ring_hand_computed() -> None:
    # p = 4, n = 100: p−1 = 3 latency terms, 3/4·100 = 75 words
    cost = allgather_ring(np.int64(4), np.float64(100))
    assert float(cost.messages) == 3
    assert float(cost.words) == 75


def test_halo_exchange() -> None:
    # one message of the halo words where active (Eq. 7), nothing elsewhere
    cost = halo_exchange(np.array([True, False, True]), np.array([10.0, 20.0, 0.0]))
    assert cost.messages.tolist() == [1.0, 0.0, 1.0]
    assert cost.words.tolist() == [10.0, 0.0, 0.0]
    assert cost.seconds(2.0, 0.5).tolist() == [2 + 0.5 * 10, 0.0, 2.0]


@pytest.mark.parametrize(("p", "lg"), [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (7, 3), (8, 3),
                                       (9, 4), (360, 9), (512, 9), (513, 10), (4096, 12)])
def test_ceil_log2(p: int, lg: int) -> None:
    assert float(ceil_log2(np.int64(p))) == lg


def test_lg_on_a_non_power_of_two() -> None:
    # p = 5 → ⌈log2 5⌉ = 3 messages, 4/5·10 = 8 words
    cost = allgather_bruck(np.int64(5), np.float64(10))
    assert float(cost.messages) == 3
    assert float(cost.words) == pytest.approx(8.0, rel=1e-15)


@given(st.integers(1, 1 << 31))
@settings(max_examples=200, deadline=None)
def test_ceil_log2_matches_integer_arithmetic(p: int) -> None:
    assert float(ceil_log2(np.int64(p))) == (p - 1).bit_length()


@given(st.lists(st.integers(1, 1 << 20), min_size=1, max_size=300))
@settings(max_examples=60, deadline=None)
def test_ceil_log2_on_integer_arrays(ps: list[int]) -> None:
    # small and large arrays, integer and float dtypes, must all agree with integer arithmetic
    expected = [(p - 1).bit_length() for p in ps]
    assert ceil_log2(np.array(ps, dtype=np.int64)).tolist() == expected
    assert ceil_log2(np.array(ps, dtype=np.float64)).tolist() == expected
    assert ceil_log2(np.array(ps, dtype=np.int64).reshape(-1, 1)).ravel().tolist() == expected


def test_ceil_log2_exhaustive_range() -> None:
    p = np.arange(1, 1 << 16, dtype=np.int64)
    expected = [(int(x) - 1).bit_length() for x in p]
    assert ceil_log2(p).tolist() == expected


@given(st.sampled_from(ALL), st.floats(0, 1e12, allow_nan=False))
@settings(max_examples=60, deadline=None)
def test_one_process_is_free(collective, n: float) -> None:  # type: ignore[no-untyped-def]
    cost = collective(np.int64(1), np.float64(n))
    assert float(cost.messages) == 0.0
    assert float(cost.words) == 0.0
    assert float(cost.seconds(1.0, 1.0)) == 0.0


@given(st.sampled_from(ALL), st.integers(2, 4096), st.floats(0, 1e9, allow_nan=False))
@settings(max_examples=60, deadline=None)
def test_scalar_formulas(collective, p: int, n: float) -> None:  # type: ignore[no-untyped-def]
    lg = math.ceil(math.log2(p))
    expected = {
        allgather_bruck: (lg, (p - 1) / p * n),
        allreduce_paper: (2 * lg, 2 * (p - 1) / p * n),
        allgather_ring: (p - 1, (p - 1) / p * n),
        allreduce_ring: (2 * (p - 1), 2 * (p - 1) / p * n),
    }[collective]
    cost = collective(np.int64(p), np.float64(n))
    assert float(cost.messages) == expected[0]
    assert float(cost.words) == pytest.approx(expected[1], rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("collective", ALL)
def test_broadcasting_shapes(collective) -> None:  # type: ignore[no-untyped-def]
    p = np.array([[1], [2], [8]])  # (3, 1)
    n = np.array([[0.0, 8.0, 80.0, 800.0]])  # (1, 4)
    cost = collective(p, n)
    # words take the full broadcast shape; the latency count depends on p only and keeps
    # p's shape, broadcasting against the words
    assert cost.words.shape == (3, 4)
    assert np.broadcast_shapes(cost.messages.shape, cost.words.shape) == (3, 4)
    messages = np.broadcast_to(cost.messages, (3, 4))
    for i in range(3):
        for j in range(4):
            one = collective(p[i, 0], n[0, j])
            assert messages[i, j] == float(one.messages)
            assert cost.words[i, j] == float(one.words)
    assert (messages[0] == 0).all()


def test_halo_broadcasting_shape() -> None:
    cost = halo_exchange(np.array([[True], [False]]), np.array([[1.0, 2.0, 3.0]]))
    assert cost.messages.shape == cost.words.shape == (2, 3)


def test_collective_cost_arithmetic() -> None:
    a = CollectiveCost(np.array([1.0, 2.0]), np.array([10.0, 20.0]))
    b = CollectiveCost(np.array([3.0, 0.0]), np.array([1.0, 1.0]))
    s = a + b
    assert s.messages.tolist() == [4.0, 2.0]
    assert s.words.tolist() == [11.0, 21.0]
    assert s.seconds(2.0, 0.5).tolist() == [2.0 * 4 + 0.5 * 11, 2.0 * 2 + 0.5 * 21]


def test_rates_are_linear_in_n() -> None:
    p = np.array([[1], [3], [16]])
    for name in ALGORITHMS:
        algo = algorithms(name)
        for rate_of in (algo.allgather_rate, algo.allreduce_rate):
            rate = rate_of(p)
            one, two = rate.of(np.array([[100.0]])), rate.of(np.array([[200.0]]))
            assert (two.words == 2 * one.words).all()
            assert (one.messages == two.messages).all()
            assert (rate + rate).per_word.tolist() == (2 * rate.per_word).tolist()


def test_algorithm_registry() -> None:
    assert set(ALGORITHMS) == {"paper", "ring", "flat-ring", "recursive-doubling", "rabenseifner",
                               "binomial", "bruck"}
    p, n = np.array([1, 2, 5, 64]), np.array([10.0, 0.0, 7.0, 1e6])
    paper = algorithms("paper")
    assert _same(paper.allgather(p, n), allgather_bruck(p, n))
    assert _same(paper.allreduce(p, n), allreduce_paper(p, n))
    ring = algorithms("ring")
    assert _same(ring.allgather(p, n), allgather_ring(p, n))
    assert _same(ring.allreduce(p, n), allreduce_ring(p, n))


def _same(a: CollectiveCost, b: CollectiveCost) -> bool:
    return bool((a.messages == b.messages).all() and (a.words == b.words).all())


def test_unknown_algorithm() -> None:
    with pytest.raises(UnknownName) as info:
        algorithms("rign")
    assert str(info.value) == ("unknown collective algorithm 'rign'; did you mean 'ring'? "
                               "(known: auto, binomial, bruck, flat-ring, paper, rabenseifner, "
                               "recursive-doubling, ring)")
    assert info.value.exit_code == 2


# --------------------------------------------------------------------------- named algorithms
# Hand-computed (messages, words, reduced) for n = 1200 words; docs/collectives.md has the
# formulas.  p = 8 is a power of two; p = 6 folds to p' = 4 with two extra processes.

N = 1200.0
HAND = {
    # p = 8: lg p = 3, (p−1)/p·n = 1050
    (8, ALLGATHER, "paper"): (3, 1050, 0),
    (8, ALLGATHER, "bruck"): (3, 1050, 0),
    (8, ALLGATHER, "recursive-doubling"): (3, 1050, 0),
    (8, ALLGATHER, "ring"): (7, 1050, 0),
    (8, ALLGATHER, "flat-ring"): (7, 1050, 0),
    (8, ALLGATHER, "binomial"): (6, 1050 + 3 * 1200, 0),
    (8, ALLREDUCE, "paper"): (6, 2100, 0),
    (8, ALLREDUCE, "rabenseifner"): (6, 2100, 1050),
    (8, ALLREDUCE, "recursive-doubling"): (3, 3 * 1200, 3 * 1200),
    (8, ALLREDUCE, "ring"): (14, 2100, 1050),
    (8, ALLREDUCE, "flat-ring"): (14, 2100, 1050),
    (8, ALLREDUCE, "binomial"): (6, 6 * 1200, 3 * 1200),
    (8, REDUCE_SCATTER, "paper"): (3, 1050, 0),
    (8, REDUCE_SCATTER, "ring"): (7, 1050, 1050),
    (8, REDUCE_SCATTER, "recursive-halving"): (3, 1050, 1050),
    (8, BROADCAST, "binomial"): (3, 3 * 1200, 0),
    (8, BROADCAST, "scatter-allgather"): (3 + 7, 2100, 0),
    # p = 6: ⌈lg p⌉ = 3, ⌊lg p⌋ = 2, p' = 4, (p−1)/p·n = 1000, (p'−1)/p'·n = 900, n/p = 200
    (6, ALLGATHER, "paper"): (3, 1000, 0),
    (6, ALLGATHER, "bruck"): (3, 1000, 0),
    (6, ALLGATHER, "recursive-doubling"): (2 + 2, 200 + 900 + 1000, 0),
    (6, ALLGATHER, "ring"): (5, 1000, 0),
    (6, ALLGATHER, "flat-ring"): (5, 1000, 0),
    (6, ALLGATHER, "binomial"): (6, 1000 + 3 * 1200, 0),
    (6, ALLREDUCE, "paper"): (6, 2000, 0),
    (6, ALLREDUCE, "rabenseifner"): (2 * 2 + 2, 2 * 900 + 2 * 1200, 900 + 1200),
    (6, ALLREDUCE, "recursive-doubling"): (2 + 2, 4 * 1200, 3 * 1200),
    (6, ALLREDUCE, "ring"): (10, 2000, 1000),
    (6, ALLREDUCE, "flat-ring"): (10, 2000, 1000),
    (6, ALLREDUCE, "binomial"): (6, 6 * 1200, 3 * 1200),
    (6, REDUCE_SCATTER, "paper"): (3, 1000, 0),
    (6, REDUCE_SCATTER, "ring"): (5, 1000, 1000),
    (6, REDUCE_SCATTER, "recursive-halving"): (2 + 2, 1200 + 900 + 200, 1200 + 900),
    (6, BROADCAST, "binomial"): (3, 3 * 1200, 0),
    (6, BROADCAST, "scatter-allgather"): (3 + 5, 2000, 0),
}


def test_hand_table_covers_the_registry() -> None:
    assert {(k, n) for (_, k, n) in HAND} == {(k, n) for k in REGISTRY for n in REGISTRY[k]}


@pytest.mark.parametrize(("p", "kind", "name"), sorted(HAND))
def test_hand_computed_costs(p: int, kind: str, name: str) -> None:
    cost = REGISTRY[kind][name].rate(np.int64(p)).of(np.float64(N))
    messages, words, reduced = HAND[(p, kind, name)]
    assert float(cost.messages) == messages
    assert float(cost.words) == pytest.approx(words, rel=1e-14)
    assert float(np.broadcast_to(cost.reduced, cost.words.shape)) == pytest.approx(reduced,
                                                                                   rel=1e-14)
    # α = 2 s, β = 0.5 s/word, γ = 0.25 s/word
    assert float(cost.seconds(2.0, 0.5, 0.25)) == pytest.approx(
        2 * messages + 0.5 * words + 0.25 * reduced, rel=1e-14)


EVERY = [(kind, name) for kind in REGISTRY for name in REGISTRY[kind]]


@given(st.sampled_from(EVERY), st.floats(0, 1e12, allow_nan=False))
@settings(max_examples=80, deadline=None)
def test_every_algorithm_is_free_on_one_process(algo: tuple[str, str], n: float) -> None:
    cost = REGISTRY[algo[0]][algo[1]].rate(np.int64(1)).of(np.float64(n))
    assert float(cost.messages) == 0.0
    assert float(cost.words) == 0.0
    assert float(np.sum(cost.reduced)) == 0.0
    assert float(cost.seconds(1.0, 1.0, 1.0)) == 0.0


REFERENCE = {(ALLGATHER, name): fn for name, fn in reference.ALLGATHER.items()}
REFERENCE.update({(ALLREDUCE, name): fn for name, fn in reference.ALLREDUCE.items()})


@given(st.sampled_from(sorted(REFERENCE)), st.integers(1, 5000),
       st.floats(0, 1e9, allow_nan=False))
@settings(max_examples=300, deadline=None)
def test_algorithms_match_the_step_by_step_reference(algo: tuple[str, str], p: int,
                                                     n: float) -> None:
    cost = REGISTRY[algo[0]][algo[1]].rate(np.int64(p)).of(np.float64(n))
    messages, words, reduced = REFERENCE[algo](p, n)
    assert float(cost.messages) == messages
    assert float(cost.words) == pytest.approx(words, rel=1e-12, abs=1e-300)
    assert float(np.sum(cost.reduced)) == pytest.approx(reduced, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("k", range(0, 13))
def test_powers_of_two_need_no_fold(k: int) -> None:
    # p = 2^k: recursive doubling gathers like Bruck; with γ = 0 Rabenseifner costs what the
    # paper charges; recursive doubling all-reduce is lg p·(α + nβ + nγ)
    p, n = np.int64(2 ** k), np.float64(1000.0)
    assert _same(REGISTRY[ALLGATHER]["recursive-doubling"].rate(p).of(n),
                 allgather_bruck(p, n))
    raben = REGISTRY[ALLREDUCE]["rabenseifner"].rate(p).of(n)
    assert _same(raben, allreduce_paper(p, n))
    rd = REGISTRY[ALLREDUCE]["recursive-doubling"].rate(p).of(n)
    assert float(rd.messages) == k and float(rd.words) == k * 1000.0 == float(rd.reduced)


@pytest.mark.parametrize("p", [3, 5, 6, 7, 9, 12, 100, 1000, 4097])
def test_non_powers_of_two_pay_the_fold(p: int) -> None:
    # two extra messages over the p' = 2^⌊lg p⌋ algorithm, n words before and after
    n = 1000.0
    p2 = 2 ** (p.bit_length() - 1)
    lg2 = p2.bit_length() - 1
    rd = REGISTRY[ALLREDUCE]["recursive-doubling"].rate(np.int64(p)).of(np.float64(n))
    assert (float(rd.messages), float(rd.words), float(rd.reduced)) == (
        lg2 + 2, (lg2 + 2) * n, (lg2 + 1) * n)
    raben = REGISTRY[ALLREDUCE]["rabenseifner"].rate(np.int64(p)).of(np.float64(n))
    assert float(raben.messages) == 2 * lg2 + 2
    assert float(raben.words) == pytest.approx(2 * (p2 - 1) / p2 * n + 2 * n, rel=1e-14)
    assert float(raben.reduced) == pytest.approx((p2 - 1) / p2 * n + n, rel=1e-14)


costs3 = st.tuples(st.floats(0, 1e-3), st.floats(0, 1e-6), st.floats(0, 1e-8))


@given(st.lists(st.integers(1, 3000), min_size=1, max_size=6),
       st.lists(st.floats(0, 1e10, allow_nan=False), min_size=1, max_size=6), costs3,
       st.sampled_from(SELECTABLE))
@settings(max_examples=150, deadline=None)
def test_auto_is_the_elementwise_minimum(ps: list[int], ns: list[float],
                                         costs: tuple[float, float, float], kind: str) -> None:
    p, n = np.array(ps)[:, None], np.array(ns)[None, :]
    auto = algorithms("auto", costs)
    chosen = auto.cost(kind, p, n).seconds(*costs)
    fixed = [a.rate(p).of(n).seconds(*costs) for a in REGISTRY[kind].values()]
    candidates = [a.rate(p).of(n).seconds(*costs) for a in REGISTRY[kind].values()
                  if a.candidate]
    assert chosen.shape == (len(ps), len(ns))
    assert (chosen == np.min(np.broadcast_arrays(*candidates), axis=0)).all()
    for a, other in zip(REGISTRY[kind].values(), fixed):
        if a.candidate:
            assert (chosen <= other).all()
    names = auto.chosen(kind, p, n)
    for i in range(len(ps)):
        for j in range(len(ns)):
            winner = REGISTRY[kind][names[i, j]]
            assert winner.rate(p[i, 0]).of(n[0, j]).seconds(*costs) == chosen[i, j]


@given(st.sampled_from(EVERY + [(k, "auto") for k in SELECTABLE]), st.integers(1, 3000),
       st.floats(0, 1e9, allow_nan=False), costs3, costs3)
@settings(max_examples=150, deadline=None)
def test_costs_are_monotone_in_alpha_beta_gamma(algo: tuple[str, str], p: int, n: float,
                                                a: tuple[float, float, float],
                                                b: tuple[float, float, float]) -> None:
    low = tuple(min(x, y) for x, y in zip(a, b))
    high = tuple(max(x, y) for x, y in zip(a, b))
    kind, name = algo

    def seconds(costs: tuple[float, ...]) -> float:
        c = (costs[0], costs[1], costs[2])
        if name == "auto":
            return float(algorithms("auto", c).cost(kind, np.int64(p), np.float64(n))
                         .seconds(*c))
        return float(REGISTRY[kind][name].rate(np.int64(p)).of(np.float64(n)).seconds(*c))

    assert seconds(low) <= seconds(high)


def test_selection_by_name() -> None:
    assert parse_selection("ring") == {ALLGATHER: "ring", ALLREDUCE: "ring"}
    # a name one kind lacks falls back to Bruck (all-gather) or the paper's (all-reduce)
    assert parse_selection("rabenseifner") == {ALLGATHER: "bruck", ALLREDUCE: "rabenseifner"}
    assert parse_selection("bruck") == {ALLGATHER: "bruck", ALLREDUCE: "paper"}
    assert parse_selection("allreduce=ring") == {ALLGATHER: "paper", ALLREDUCE: "ring"}
    assert parse_selection("allgather=auto, allreduce=binomial") == {ALLGATHER: "auto",
                                                                     ALLREDUCE: "binomial"}
    assert algorithms("rabenseifner").label == ("rabenseifner (all-gather bruck, all-reduce "
                                                "rabenseifner)")
    assert algorithms("paper").label == "paper"
    assert algorithms("auto").label == "auto"
    assert algorithms("allgather=ring,allreduce=auto").label == "all-gather ring, all-reduce auto"
    assert not algorithms("auto").linear and algorithms("binomial").linear


@pytest.mark.parametrize(("text", "message"), [
    ("allgather=rign", "unknown all-gather algorithm 'rign'; did you mean 'ring'? (known: auto, "
                       "binomial, bruck, flat-ring, paper, recursive-doubling, ring)"),
    ("allreduce=bruck", "unknown all-reduce algorithm 'bruck' (known: auto, binomial, flat-ring, paper, "
                        "rabenseifner, recursive-doubling, ring)"),
    ("broadcast=binomial", "unknown collective kind 'broadcast' (known: allgather, allreduce)"),
])
def test_bad_selections(text: str, message: str) -> None:
    with pytest.raises(UnknownName) as info:
        algorithms(text)
    assert str(info.value) == message


def test_auto_needs_the_machine() -> None:
    with pytest.raises(UsageError) as info:
        algorithms("auto").allreduce(np.int64(4), np.float64(10.0))
    assert str(info.value) == "collectives 'auto' needs the machine's α, β and γ"
    with pytest.raises(UsageError):
        algorithms("auto").allreduce_rate(np.int64(4))


def test_auto_winners_by_regime() -> None:
    # latency-bound (tiny n): recursive doubling's lg p messages win the all-reduce;
    # bandwidth-bound (huge n): Rabenseifner's 2(p−1)/p·n words with 2 lg p messages
    p = np.int64(64)
    costs = (1e-6, 1e-9, 0.0)
    auto = algorithms("auto", costs)
    assert auto.chosen(ALLREDUCE, p, np.float64(1.0))[()] == "recursive-doubling"
    assert auto.chosen(ALLREDUCE, p, np.float64(1e8))[()] == "rabenseifner"
    assert auto.chosen(ALLGATHER, p, np.float64(1e8))[()] == "bruck"
    # a non-power of two: the fold makes Rabenseifner pay 2n extra words; ring wins big messages
    assert auto.chosen(ALLREDUCE, np.int64(96), np.float64(1e8))[()] == "ring"
