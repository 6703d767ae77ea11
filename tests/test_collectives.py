"""Tests of costmodel.collectives: α–β cost of each collective (cost-model.md §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.collectives import (
    ALGORITHMS,
    CollectiveCost,
    algorithms,
    allgather_bruck,
    allgather_ring,
    allreduce_paper,
    allreduce_ring,
    ceil_log2,
    halo_exchange,
)
from costmodel.errors import UnknownName

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
    assert set(ALGORITHMS) == {"paper", "ring", "recursive-doubling", "rabenseifner", "binomial",
                               "bruck"}
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
                               "(known: auto, binomial, bruck, paper, rabenseifner, "
                               "recursive-doubling, ring)")
    assert info.value.exit_code == 2
