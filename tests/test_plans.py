"""Tests of costmodel.engine.plans: which split and grid each layer uses (docs/model.md §5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import largest_divisor_at_most as brute_largest_divisor
from reference import plan_split

from costmodel.engine.grids import Grids, factorizations
from costmodel.engine.plans import DOMAIN, MODEL, PLANS, largest_divisor_at_most, plan
from costmodel.errors import UnknownName
from costmodel.inputs.specs import Layer, Network

CONV_A = Layer("ca", "conv", (16, 16, 3), (16, 16, 8), kernel=(3, 3), weight_params=224)
CONV_B = Layer("cb", "conv", (16, 16, 8), (16, 16, 8), kernel=(1, 1), weight_params=72)
FC = Layer("fc", "fc", (1, 1, 2048), (1, 1, 10), weight_params=20490)
NET = Network("n", (CONV_A, CONV_B, FC), (16, 16, 3))


def layout_rows(name: str, P: int, batch: int) -> list[list[tuple[int, int, int]]]:
    grids = factorizations(P, batch)
    out = PLANS[name].layout(grids, NET)
    assert out.mode.shape == out.pr.shape == out.pc.shape == (len(grids), 3)
    assert out.mode.dtype == np.int8
    assert out.pr.dtype == out.pc.dtype == np.int64
    assert (out.pr * out.pc == P).all()
    return [list(zip(m, r, c)) for m, r, c in zip(out.mode.tolist(), out.pr.tolist(),
                                                   out.pc.tolist())]


def test_plan_registry() -> None:
    assert sorted(PLANS) == ["beyond-batch", "domain-batch", "fc-model", "model-batch"]
    assert plan("fc-model") is PLANS["fc-model"]
    with pytest.raises(UnknownName) as info:
        plan("fc_model")
    assert str(info.value) == ("unknown plan 'fc_model'; did you mean 'fc-model' or 'model-batch'? "
                               "(known: "
                               "beyond-batch, domain-batch, fc-model, model-batch)")


def test_model_batch_layout() -> None:
    # every layer: model split on Pr, batch on Pc
    for row, (pr, pc) in zip(layout_rows("model-batch", 6, 64), [(1, 6), (2, 3), (3, 2), (6, 1)]):
        assert row == [(MODEL, pr, pc)] * 3


def test_fc_model_layout() -> None:
    # convs pure batch 1×P; the fc layer on the grid
    for row, (pr, pc) in zip(layout_rows("fc-model", 6, 64), [(1, 6), (2, 3), (3, 2), (6, 1)]):
        assert row == [(MODEL, 1, 6), (MODEL, 1, 6), (MODEL, pr, pc)]


def test_domain_batch_layout() -> None:
    for row, (pr, pc) in zip(layout_rows("domain-batch", 6, 64), [(1, 6), (2, 3), (3, 2), (6, 1)]):
        assert row == [(DOMAIN, pr, pc), (DOMAIN, pr, pc), (MODEL, pr, pc)]


def test_beyond_batch_layout_within_the_batch() -> None:
    # P = 8 ≤ B = 64: convs are pure batch (domain split 1) whatever the grid
    for row, (pr, pc) in zip(layout_rows("beyond-batch", 8, 64),
                             [(1, 8), (2, 4), (4, 2), (8, 1)]):
        assert row == [(DOMAIN, 1, 8), (DOMAIN, 1, 8), (MODEL, pr, pc)]


def test_beyond_batch_layout_past_the_batch() -> None:
    # P = 32, B = 8: batch on 8 processes, images split 32/8 = 4 ways
    for row in layout_rows("beyond-batch", 32, 8):
        assert row[:2] == [(DOMAIN, 4, 8), (DOMAIN, 4, 8)]
    # P = 12, B = 8: largest divisor of 12 not above 8 is 6; domain 12/6 = 2
    for row in layout_rows("beyond-batch", 12, 8):
        assert row[:2] == [(DOMAIN, 2, 6), (DOMAIN, 2, 6)]
    # P = 7 (prime), B = 4: only 1 divides 7 below 4 → batch 1, domain 7
    for row in layout_rows("beyond-batch", 7, 4):
        assert row[:2] == [(DOMAIN, 7, 1), (DOMAIN, 7, 1)]


@given(st.integers(1, 300), st.integers(1, 300))
@settings(max_examples=200, deadline=None)
def test_largest_divisor_at_most_matches_brute_force(p: int, limit: int) -> None:
    got = largest_divisor_at_most(np.array([p]), np.array([limit]))
    assert got.tolist() == [brute_largest_divisor(p, limit)]


def test_largest_divisor_at_most_vectorized() -> None:
    p = np.arange(1, 101)
    for limit in (1, 2, 7, 16, 100):
        got = largest_divisor_at_most(p, np.int64(limit))
        assert got.shape == p.shape
        assert got.tolist() == [brute_largest_divisor(int(x), limit) for x in p]


@given(st.lists(st.tuples(st.integers(1, 48), st.integers(1, 48), st.integers(1, 64)),
                min_size=1, max_size=10),
       st.sampled_from(sorted(PLANS)))
@settings(max_examples=100, deadline=None)
def test_layout_matches_reference(rows: list[tuple[int, int, int]], name: str) -> None:
    grids = Grids(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                  np.array([r[2] for r in rows]))
    out = PLANS[name].layout(grids, NET)
    modes = {MODEL: "model", DOMAIN: "domain"}
    for g, (pr, pc, batch) in enumerate(rows):
        for i, layer in enumerate(NET.layers):
            expected = plan_split(name, layer, pr, pc, batch)
            assert (modes[int(out.mode[g, i])], int(out.pr[g, i]), int(out.pc[g, i])) == expected
