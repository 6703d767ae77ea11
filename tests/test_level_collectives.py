"""Collectives across levels beyond the hierarchical forms (docs/hierarchy.md): the flat ring,
which runs over the ranks in order as gloo's and NCCL's rings do, and 'auto', which picks the
cheapest per message among the forms that can run across levels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.collectives import ALLGATHER, ALLREDUCE, algorithms
from costmodel.engine.cost import evaluate, layer_algorithms
from costmodel.engine.grids import factorizations
from costmodel.engine.hierarchy import (
    LEVEL_CANDIDATES,
    PC_INSIDE,
    PR_INSIDE,
    fixed_selection,
    level_costs,
    level_rates,
)
from costmodel.engine.plans import PLANS
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.inputs.specs import Layer, Level, Machine, Network

# word_bytes 4; node: α1 = 1 s, β1 = 4 B / 8 B/s = 0.5 s/word, 4 processes per node;
# network: α2 = 10 s, β2 = 4 B / 1 B/s = 4 s/word.
A1, B1, A2, B2 = 1.0, 0.5, 10.0, 4.0
MACHINE = Machine("small", A2, 1.0, word_bytes=4,
                  levels=(Level("node", 4, A1, 8.0), Level("network", None, A2, 1.0)))
# one fc layer 8 → 8 units (72 parameters with bias), B = 8
TINY = Network("tiny", (Layer("fc", "fc", (1, 1, 8), (1, 1, 8), weight_params=72),), (1, 1, 8),
               dataset_samples=8)


def table(collectives: str, mapping: str, machine: Machine = MACHINE) -> object:
    return evaluate(TINY, machine, factorizations(8, 8), PLANS["model-batch"], compute="none",
                    mapping=mapping, collectives=collectives)


def grid_row(t: object, pr: int) -> int:
    return int(np.flatnonzero(t.grids.pr == pr)[0])  # type: ignore[attr-defined]


def test_flat_ring_hand_computed_pure_batch_over_two_nodes() -> None:
    # 1×8: one all-reduce of the 72 weight words over all 8 ranks (4 per node, 2 nodes).  The
    # ring has 2·7 = 14 steps of 72/8 = 9 words.  Edges inside a node (β1 = 0.5 s/word) and
    # one edge leaving each node, which only 1 of its 4 processes uses: β2/4 = 1 s/word.
    # Each step waits for the slowest: α2 and 1 s/word → 14·10 + 14·9·1 = 266 s, all on the
    # network level.
    t = table("flat-ring", PR_INSIDE)
    g = grid_row(t, 1)
    assert t.comm_s("batch")[g] == pytest.approx(14 * A2 + 14 * 9 * B2 / 4)  # type: ignore[attr-defined]
    assert t.level_seconds("batch")[:, g, 0] == pytest.approx([0.0, 266.0])  # type: ignore[attr-defined]
    # the hierarchical ring: ring reduce-scatter + all-gather of 72 words over the 4 in a node
    # (2·3 steps of 18 words: 6α1 + 108β1 = 60 s) and a ring all-reduce of 18 words over the
    # 2 nodes (2 steps of 9 words: 2α2 + 18β2 = 92 s) → 152 s
    hierarchical = table("ring", PR_INSIDE)
    assert hierarchical.comm_s("batch")[g] == pytest.approx(6 * A1 + 108 * B1 + 2 * A2 + 18 * B2)  # type: ignore[attr-defined]


def test_flat_ring_hand_computed_strided_group() -> None:
    # 2×4, Pr inside: the Pc group (stride 2) has 2 members per node on 2 nodes; the shard is
    # ⌈8/2⌉/8·72 = 36 words.  2·3 = 6 steps of 9 words; the edge out of a node is used by 2 of
    # its 4 processes: β2/2 = 2 s/word → 6·10 + 6·9·2 = 168 s.  The Pr pair sits in one node:
    # the ring there (all-gather 1α1 + 8β1, all-reduce 2α1 + 16β1 of 16 words) = 15 s.
    t = table("flat-ring", PR_INSIDE)
    g = grid_row(t, 2)
    assert t.comm_s("batch")[g] == pytest.approx(6 * A2 + 6 * 9 * B2 / 2)  # type: ignore[attr-defined]
    assert t.comm_s("model")[g] == pytest.approx(3 * A1 + 24 * B1)  # type: ignore[attr-defined]


def test_flat_ring_inside_one_node_is_the_ring() -> None:
    # P = 4 fits one node: no edge leaves it, so flat and hierarchical rings agree everywhere
    flat = evaluate(TINY, MACHINE, factorizations(4, 8), PLANS["model-batch"], compute="none",
                    collectives="flat-ring")
    ring = evaluate(TINY, MACHINE, factorizations(4, 8), PLANS["model-batch"], compute="none",
                    collectives="ring")
    assert flat.total_s == pytest.approx(ring.total_s, rel=1e-12)


def test_flat_ring_on_a_flat_machine_is_the_ring() -> None:
    net, machine = load_network("alexnet"), load_machine("cori-knl")
    grids = factorizations(64, 512)
    flat = evaluate(net, machine, grids, PLANS["fc-model"], collectives="flat-ring")
    ring = evaluate(net, machine, grids, PLANS["fc-model"], collectives="ring")
    assert flat.total_s == pytest.approx(ring.total_s, rel=1e-12)


LEVELS = st.tuples(st.floats(1e-6, 1e-2), st.floats(1e-11, 1e-8),
                   st.floats(1e-6, 1e-2), st.floats(1e-11, 1e-8))


def two_level(a1: float, b1: float, a2: float, b2: float, ppn: int) -> Machine:
    return Machine("m", a2, 4 / b2, word_bytes=4,
                   levels=(Level("node", ppn, a1, 4 / b1), Level("network", None, a2, 4 / b2)))


@given(LEVELS, st.sampled_from([1, 2, 4, 8, 16, 32]), st.sampled_from([1, 2, 4, 8]),
       st.sampled_from([2, 4, 8]))
@settings(max_examples=150, deadline=None)
def test_flat_ring_is_one_slowest_edge_per_step(values: tuple[float, float, float, float],
                                                p: int, stride: int, ppn: int) -> None:
    """Equal levels: a flat ring costs the one-level ring on the slowest per-process rate.
    In general it is never below a ring on the fastest link, never above 2(p−1) steps of the
    slowest α and the slowest β."""
    a1, b1, a2, b2 = values
    m = two_level(a1, b1, a2, b2, ppn)
    links = m.links
    pa, sa = np.array([[p]]), np.array([[stride]])
    total = np.array([[p * stride]])
    n = np.array([[1e6]])
    rates = level_rates(pa, sa, m.domain_sizes, algorithms("flat-ring"), total, links)
    seconds = sum(r.of(n).seconds(a, b) for r, (a, b) in zip(rates.allreduce, links))
    steps = 2 * (p - 1)
    lower = steps * (min(a1, a2) + n / p * min(b1, b2 / ppn))
    upper = steps * (max(a1, a2) + n / p * max(b1, b2))
    assert lower[0, 0] * (1 - 1e-12) <= seconds[0, 0] <= upper[0, 0] * (1 + 1e-12)
    same = two_level(a1, b1, a1, b1, ppn)
    rates = level_rates(pa, sa, same.domain_sizes, algorithms("flat-ring"), total, same.links)
    flat = sum(r.of(n).seconds(a, b) for r, (a, b) in zip(rates.allreduce, same.links))
    if p * stride <= ppn or stride >= ppn or p == 1:
        # no edge shares a link with fewer senders than the per-process rate assumes
        assert flat[0, 0] == pytest.approx(steps * (a1 + n[0, 0] / p * b1), rel=1e-12)


@given(LEVELS, st.sampled_from([2, 4, 8, 16]), st.sampled_from([1, 2, 4]),
       st.sampled_from([2, 4]), st.floats(1.0, 1e8))
@settings(max_examples=150, deadline=None)
def test_auto_across_levels_is_the_cheapest_candidate(values: tuple[float, float, float, float],
                                                      p: int, stride: int, ppn: int,
                                                      words: float) -> None:
    a1, b1, a2, b2 = values
    m = two_level(a1, b1, a2, b2, ppn)
    pa, sa, n = np.array([[p]]), np.array([[stride]]), np.array([[words]])
    total = np.array([[p * stride]])
    for kind, field in ((ALLGATHER, "allgather"), (ALLREDUCE, "allreduce")):
        auto = level_costs(kind, pa, sa, n, m.domain_sizes, algorithms("auto"), m.links, 0.0,
                           total)
        chosen = sum(c.seconds(a, b) for c, (a, b) in zip(auto, m.links))
        each = [sum(r.of(n).seconds(a, b) for r, (a, b) in zip(
            getattr(level_rates(pa, sa, m.domain_sizes, fixed_selection(kind, name), total,
                                m.links), field), m.links))
            for name in LEVEL_CANDIDATES[kind]]
        assert chosen[0, 0] == pytest.approx(min(float(x[0, 0]) for x in each), rel=1e-12)


def test_auto_runs_on_levels_and_is_never_worse_than_a_fixed_selection() -> None:
    net, machine = load_network("resnet50"), load_machine("a100-ib-nodes")
    grids = factorizations(64, 512)
    auto = evaluate(net, machine, grids, PLANS["model-batch"], collectives="auto")
    for fixed in ("ring", "rabenseifner", "flat-ring"):
        for mapping in (PR_INSIDE, PC_INSIDE):
            other = evaluate(net, machine, grids, PLANS["model-batch"], collectives=fixed,
                             mapping=mapping)
            assert np.all(auto.total_s <= other.total_s * (1 + 1e-12))


def test_auto_on_levels_reports_its_choices_per_layer() -> None:
    net, machine = load_network("alexnet"), load_machine("a100-ib-nodes")
    t = evaluate(net, machine, factorizations(64, 512), PLANS["fc-model"], collectives="auto")
    g = grid_row(t, 8)
    choices = layer_algorithms(t, g)
    used = {c for row in choices for c in row.values() if c is not None}
    assert used <= set(LEVEL_CANDIDATES[ALLGATHER]) | set(LEVEL_CANDIDATES[ALLREDUCE])
    assert choices[-1]["model_allgather"] is not None
