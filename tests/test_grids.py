"""Tests of costmodel.engine.grids: divisors and every Pr×Pc factorization (docs/model.md §1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.grids import (
    Grids,
    check_processes,
    divisors,
    factorizations,
    sweep_factorizations,
)
from costmodel.errors import UsageError


def brute_divisors(P: int) -> list[int]:
    return [d for d in range(1, P + 1) if P % d == 0]


@pytest.mark.parametrize(
    ("P", "expected"),
    [
        (1, [1]),
        (13, [1, 13]),
        (512, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]),
        (360, [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 18, 20, 24, 30, 36, 40, 45, 60, 72, 90,
               120, 180, 360]),
    ],
)
def test_divisors(P: int, expected: list[int]) -> None:
    got = divisors(P)
    assert got.dtype == np.int64
    assert got.tolist() == expected


@pytest.mark.parametrize("P", [1, 13, 512, 360])
def test_factorizations_all_divisor_pairs(P: int) -> None:
    grids = factorizations(P, batch=64)
    pairs = list(zip(grids.pr.tolist(), grids.pc.tolist()))
    assert pairs == [(d, P // d) for d in brute_divisors(P)]
    assert pairs[0] == (1, P)  # pure batch first
    assert pairs[-1] == (P, 1)  # pure model last
    assert (grids.p == P).all()
    assert (grids.batch == 64).all()
    assert len(grids) == len(brute_divisors(P))
    assert grids.pr.dtype == grids.pc.dtype == grids.batch.dtype == np.int64


def test_factorizations_of_360_are_not_only_powers_of_two() -> None:
    grids = factorizations(360, batch=1)
    assert len(grids) == 24
    assert (3, 120) in set(zip(grids.pr.tolist(), grids.pc.tolist()))
    assert (45, 8) in set(zip(grids.pr.tolist(), grids.pc.tolist()))


@given(st.integers(1, 5000))
@settings(max_examples=100, deadline=None)
def test_divisors_match_brute_force(P: int) -> None:
    assert divisors(P).tolist() == brute_divisors(P)


def check_concatenated(processes: list[int], batch0: int) -> None:
    batches = [batch0 + i for i in range(len(processes))]
    grids, owner = sweep_factorizations(np.array(processes), np.array(batches))
    expected = [factorizations(P, B) for P, B in zip(processes, batches)]
    assert grids.pr.tolist() == [x for g in expected for x in g.pr.tolist()]
    assert grids.pc.tolist() == [x for g in expected for x in g.pc.tolist()]
    assert grids.batch.tolist() == [x for g in expected for x in g.batch.tolist()]
    assert owner.tolist() == [i for i, g in enumerate(expected) for _ in range(len(g))]


@given(st.sets(st.integers(1, 300), min_size=1, max_size=12).map(sorted).flatmap(st.permutations),
       st.integers(1, 1000))
@settings(max_examples=60, deadline=None)
def test_sweep_factorizations_is_concatenated_factorizations(processes: list[int],
                                                             batch0: int) -> None:
    check_concatenated(processes, batch0)


@given(st.sets(st.integers(1, 64), min_size=20, max_size=64).map(sorted)
       .flatmap(st.permutations), st.integers(1, 1000))
@settings(max_examples=40, deadline=None)
def test_sweep_factorizations_dense_sets(processes: list[int], batch0: int) -> None:
    # many P up to a small maximum: the divisor-sieve regime
    check_concatenated(processes, batch0)


@given(st.one_of(st.lists(st.integers(1, 64), min_size=1, max_size=10),
                 st.lists(st.integers(1, 64), min_size=40, max_size=80)),
       st.integers(1, 1000))
@settings(max_examples=60, deadline=None)
def test_sweep_factorizations_with_repeats(processes: list[int], batch0: int) -> None:
    # a P may be listed twice (weak scaling at two batches): it is there twice, few or many P
    check_concatenated(processes, batch0)


def test_sweep_factorizations_broadcasts_a_scalar_batch() -> None:
    grids, owner = sweep_factorizations(np.array([6, 1]), np.array(7))
    assert list(zip(grids.pr.tolist(), grids.pc.tolist())) == [(1, 6), (2, 3), (3, 2), (6, 1),
                                                                (1, 1)]
    assert grids.batch.tolist() == [7] * 5
    assert owner.tolist() == [0, 0, 0, 0, 1]


def test_sweep_factorizations_keeps_repeated_processes_among_many() -> None:
    processes = [*range(1, 41), 12, 12]
    grids, owner = sweep_factorizations(np.array(processes), np.arange(1, 43))
    assert np.bincount(owner).tolist() == [len(brute_divisors(P)) for P in processes]
    assert (grids.p == np.array(processes)[owner]).all()
    assert (grids.batch == np.arange(1, 43)[owner]).all()


def test_sweep_factorizations_keeps_repeated_processes() -> None:
    # "All factorizations of every P in processes, concatenated": a P listed twice is there twice.
    grids, owner = sweep_factorizations(np.array([4, 4, 3]), np.array([8, 16, 8]))
    assert list(zip(grids.pr.tolist(), grids.pc.tolist())) == [
        (1, 4), (2, 2), (4, 1), (1, 4), (2, 2), (4, 1), (1, 3), (3, 1)]
    assert grids.batch.tolist() == [8, 8, 8, 16, 16, 16, 8, 8]
    assert owner.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, False, "4", None])
def test_check_processes_rejects(bad: object) -> None:
    with pytest.raises(UsageError) as info:
        check_processes(bad)
    assert str(info.value) == f"P: expected a positive integer number of processes, got {bad!r}"


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_divisors_and_factorizations_reject_bad_processes(bad: object) -> None:
    with pytest.raises(UsageError):
        divisors(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        factorizations(bad, 8)  # type: ignore[arg-type]


def test_check_processes_accepts_numpy_integers() -> None:
    assert check_processes(np.int64(12)) == 12
    assert type(check_processes(np.int32(3))) is int


def test_grids_take_and_p() -> None:
    grids = Grids(np.array([1, 2, 4]), np.array([4, 2, 1]), np.array([8, 8, 8]))
    assert grids.p.tolist() == [4, 4, 4]
    sub = grids.take(np.array([2, 0]))
    assert sub.pr.tolist() == [4, 1]
    assert sub.pc.tolist() == [1, 4]
    assert len(sub) == 2
