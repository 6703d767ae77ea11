"""Hierarchical machines (docs/hierarchy.md): levels in profiles, two-level collectives, the
mapping of the grid onto nodes, and the flat identities."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.cli import cli, main
from costmodel.engine.collectives import algorithms
from costmodel.engine.cost import (
    TERMS,
    LayerArrays,
    evaluate,
    evaluate_totals,
    group_costs,
    level_group_costs,
)
from costmodel.engine.grids import factorizations
from costmodel.engine.hierarchy import PC_INSIDE, PR_INSIDE, level_rates, members
from costmodel.engine.plans import PLANS
from costmodel.errors import GridcostError, SpecError, UsageError
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.inputs.specs import Layer, Level, Machine, Network

# --------------------------------------------------------------------------- a small case
# word_bytes 4; node: α1 = 1 s, β1 = 4 B / 8 B/s = 0.5 s/word, 4 processes per node;
# network: α2 = 10 s, β2 = 4 B / 2 B/s = 2 s/word.
A1, B1, A2, B2 = 1.0, 0.5, 10.0, 2.0


def small_machine(ppn: int = 4, a1: float = A1, bw1: float = 8.0, a2: float = A2,
                  bw2: float = 2.0) -> Machine:
    return Machine("small", a2, bw2, word_bytes=4,
                   levels=(Level("node", ppn, a1, bw1), Level("network", None, a2, bw2)))


# one fc layer 8 → 8 units (72 parameters with bias), B = 8, one iteration per epoch
TINY = Network("tiny", (Layer("fc", "fc", (1, 1, 8), (1, 1, 8), weight_params=72),), (1, 1, 8),
               dataset_samples=8)


def small_table(mapping: str, machine: Machine | None = None) -> Any:
    return evaluate(TINY, machine or small_machine(), factorizations(8, 8), PLANS["model-batch"],
                    compute="none", mapping=mapping)


def row(table: Any, pr: int) -> int:
    return int(np.flatnonzero(table.grids.pr == pr)[0])


def test_hand_computed_two_level_costs_p8_ppn4() -> None:
    # grid 2×4: n_model = ⌈8/4⌉·8 = 16 words (all-gather Y + all-reduce ΔX over Pr = 2),
    # shard = ⌈8/2⌉/8·72 = 36 words (all-reduce ΔW over Pc = 4).
    pr_in = small_table(PR_INSIDE)
    g = row(pr_in, 2)
    # Pr inside: the Pr pair {r, r+1} is in one node: all-gather 1α1 + 8β1, all-reduce
    # 2α1 + 16β1 → 3 + 12 = 15 s.  The Pc group {c·2 + r} (stride 2) has 2 members per node
    # on 2 nodes: node reduce-scatter + all-gather of 36 words over 2 (2α1 + 36β1 = 20 s),
    # network all-reduce of 18 words over 2 (2α2 + 18β2 = 56 s).
    assert pr_in.comm_s("model")[g] == pytest.approx(3 * A1 + 24 * B1)
    assert pr_in.comm_s("batch")[g] == pytest.approx(2 * A1 + 36 * B1 + 2 * A2 + 18 * B2)
    levels = pr_in.level_seconds("batch")[:, g, 0]
    assert levels == pytest.approx([2 * A1 + 36 * B1, 2 * A2 + 18 * B2])
    assert pr_in.level_seconds("model")[:, g, 0] == pytest.approx([15.0, 0.0])
    # Pc inside: the Pc group of 4 fills a node: all-reduce 4α1 + 54β1 = 31 s; the Pr pair
    # {c, c+4} is on two nodes: 3α2 + 24β2 = 78 s, all on the network.
    pc_in = small_table(PC_INSIDE)
    assert pc_in.comm_s("model")[g] == pytest.approx(3 * A2 + 24 * B2)
    assert pc_in.comm_s("batch")[g] == pytest.approx(4 * A1 + 54 * B1)
    assert pc_in.level_seconds("model")[:, g, 0] == pytest.approx([0.0, 78.0])
    # best: Pr inside (91 s) beats Pc inside (109 s)
    best = small_table("best")
    assert best.mappings.used(g) == PR_INSIDE
    assert best.total_comm_s[g] == pytest.approx(91.0)
    assert best.mappings.total_s[PC_INSIDE][g] == pytest.approx(109.0)


def test_hand_computed_4x2_pc_inside_spans_nodes() -> None:
    # grid 4×2, Pc inside: Pc pairs {2r, 2r+1} inside a node; Pr group {c + 2r} (stride 2) has
    # 2 members per node on 2 nodes.  n_model = ⌈8/2⌉·8 = 32, shard = ⌈8/4⌉/8·72 = 18.
    t = small_table(PC_INSIDE)
    g = row(t, 4)
    # all-gather: network over 2 of 32/2 = 16 words (1α2 + 8β2), node over 2 of 32 (1α1 + 16β1)
    gather = A2 + 8 * B2 + A1 + 16 * B1
    # all-reduce: node RS + AG over 2 of 32 (2α1 + 32β1), network all-reduce over 2 of 16
    # (2α2 + 16β2)
    reduce = 2 * A1 + 32 * B1 + 2 * A2 + 16 * B2
    assert t.comm_s("model")[g] == pytest.approx(gather + reduce)
    assert t.comm_s("batch")[g] == pytest.approx(2 * A1 + 18 * B1)


def test_words_over_levels_add_up_to_the_flat_words() -> None:
    p = np.array([[8], [16], [64], [6]])
    algo = algorithms("paper")
    for stride in (1, 2, 4):
        rates = level_rates(p, np.full_like(p, stride), (4,), algo, p * stride)
        flat = algo.allreduce_rate(p)
        total = rates.allreduce[0].per_word * 1 + rates.allreduce[1].per_word
        # per word of n the words sent at all levels are the flat (p−1)/p·2 when every level
        # splits evenly (powers of two); latency ⌈lg q⌉ + ⌈lg m⌉ ≥ ⌈lg p⌉
        even = (p[:, 0] & (p[:, 0] - 1)) == 0
        assert total[even] == pytest.approx(flat.per_word[even])
        messages = rates.allreduce[0].messages + rates.allreduce[1].messages
        assert (messages >= flat.messages).all()


# --------------------------------------------------------------------------- identities


ONE_LEVEL = ("a100-ib", "cori-knl")


@pytest.mark.parametrize("name", ONE_LEVEL)
@pytest.mark.parametrize("plan", sorted(PLANS))
def test_one_level_profile_is_exactly_flat(name: str, plan: str) -> None:
    flat = load_machine(name)
    one = dataclasses.replace(flat, levels=(Level("network", None, flat.alpha_s,
                                                  flat.bandwidth_Bps),))
    net = load_network("alexnet")
    grids = factorizations(512, 2048)
    a = evaluate(net, flat, grids, PLANS[plan])
    b = evaluate(net, one, grids, PLANS[plan])
    for term in TERMS:
        assert np.array_equal(a.seconds(term), b.seconds(term))
        assert np.array_equal(a.comm_s(term), b.comm_s(term))
    assert np.array_equal(a.total_s, b.total_s)
    # and the level kernel itself, forced on one level, gives the flat arrays bit for bit
    layers = LayerArrays.of(net)
    algo = algorithms("paper")
    for inside in (True, False):
        leveled = level_group_costs(layers, grids, PLANS[plan], algo, one,
                                    np.full(len(grids), inside))
        for lv, fl in zip(leveled, group_costs(layers, grids, PLANS[plan], algo)):
            for term in TERMS:
                on = lv.seconds_on(term, one.links)
                assert np.array_equal(on, fl.seconds(term, flat.alpha_s, flat.beta_s_per_word))
                assert np.array_equal(lv.summed_seconds_on(term, one.links),
                                      fl.summed_seconds(term, flat.alpha_s,
                                                        flat.beta_s_per_word))


def test_one_level_profile_gives_the_flat_cli_output(tmp_path: Path) -> None:
    text = Path(__file__).resolve().parents[1].joinpath("machines", "a100-ib.yaml").read_text()
    path = tmp_path / "one-level.yaml"
    path.write_text(text + "levels: [{name: network, alpha: 5 us, bandwidth: 25 GB/s}]\n")
    args = ["optimize", "--net", "resnet50", "--P", "64", "--plan", "all", "--format", "json"]
    flat = json.loads(CliRunner().invoke(cli, [*args, "--machine", "a100-ib"]).stdout)
    one = json.loads(CliRunner().invoke(cli, [*args, "--machine", str(path)]).stdout)
    for record in (flat, one):
        record.pop("provenance", None)
    assert flat == one


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_everything_inside_one_node_uses_only_the_node_level(plan: str) -> None:
    # P = 8 on nodes of 16: every collective stays in the node, whatever the network costs
    node_only = Machine("node", 3e-6, 200e9, word_bytes=2)
    net = load_network("vgg16")
    grids = factorizations(8, 64)
    expected = evaluate(net, node_only, grids, PLANS[plan])
    for network_alpha, network_bw in ((5e-6, 25e9), (1.0, 1.0)):
        two = Machine("two", network_alpha, network_bw, word_bytes=2,
                      levels=(Level("node", 16, 3e-6, 200e9),
                              Level("network", None, network_alpha, network_bw)))
        table = evaluate(net, two, grids, PLANS[plan])
        for term in TERMS:
            assert np.array_equal(table.seconds(term), expected.seconds(term))
            assert not table.level_seconds(term)[1].any()


def test_equal_levels_on_powers_of_two_give_the_flat_cost() -> None:
    flat = load_machine("cori-knl")
    same = dataclasses.replace(flat, levels=(
        Level("node", 4, flat.alpha_s, flat.bandwidth_Bps),
        Level("network", None, flat.alpha_s, flat.bandwidth_Bps)))
    net = load_network("alexnet")
    grids = factorizations(256, 2048)
    for plan in PLANS.values():
        a, b = evaluate(net, flat, grids, plan), evaluate(net, same, grids, plan)
        assert b.total_s == pytest.approx(a.total_s, rel=1e-12)


# --------------------------------------------------------------------------- mapping


def test_mapping_choice_is_the_argmin_of_both() -> None:
    machine = load_machine("a100-ib-nodes")
    for net_name, plan in (("vgg16", "fc-model"), ("resnet50", "model-batch"),
                           ("alexnet", "domain-batch")):
        net = load_network(net_name)
        grids = factorizations(64, 512)
        both = {m: evaluate(net, machine, grids, PLANS[plan], mapping=m)
                for m in (PR_INSIDE, PC_INSIDE)}
        best = evaluate(net, machine, grids, PLANS[plan])
        lowest = np.minimum(both[PR_INSIDE].total_s, both[PC_INSIDE].total_s)
        assert np.allclose(best.total_s, lowest, rtol=1e-12)
        chosen = np.where(best.mappings.pr_inside, both[PR_INSIDE].total_s,
                          both[PC_INSIDE].total_s)
        assert np.array_equal(best.total_s, chosen)
        for m in (PR_INSIDE, PC_INSIDE):
            assert np.allclose(both[m].total_s, best.mappings.total_s[m], rtol=1e-12)
        totals = evaluate_totals(net, machine, grids, PLANS[plan])
        assert np.allclose(totals.total_s, best.total_s, rtol=1e-12)


def test_vgg16_fc_model_prefers_pc_inside_at_p64() -> None:
    table = evaluate(load_network("vgg16"), load_machine("a100-ib-nodes"),
                     factorizations(64, 2048), PLANS["fc-model"])
    g = row(table, 16)
    assert table.mappings.used(g) == PC_INSIDE
    assert table.mappings.why(g, 16, 4).startswith("Pc inside the node: the weight-gradient "
                                                   "all-reduces")


# --------------------------------------------------------------------------- properties


def brute_members(p: int, stride: int, domain: int, total: int) -> int:
    """Largest divisor q of p such that, in every group of this family, each block of q
    consecutive members lies in one domain (ranks // domain equal)."""
    starts = range(0, total, p) if stride == 1 else range(stride)
    for q in sorted((d for d in range(1, p + 1) if p % d == 0), reverse=True):
        if all(len({(s + stride * j) // domain for j in range(t, t + q)}) == 1
               for s in starts for t in range(0, p, q)):
            return q
    raise AssertionError


@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64), st.booleans())
@settings(max_examples=300, deadline=None)
def test_members_is_safe_and_exact_on_full_nodes(p: int, other: int, domain: int,
                                                 contiguous: bool) -> None:
    total = p * other
    stride = 1 if contiguous else other
    q = int(members(np.int64(p), np.int64(stride), domain, np.int64(total)))
    best = brute_members(p, stride, domain, total)
    assert p % q == 0 and q <= best  # every block it charges to a level fits there
    if total % domain == 0 or total <= domain:
        assert q == best


LEVEL_VALUES = st.tuples(st.floats(0, 1e-4), st.floats(1e9, 1e12), st.floats(0, 1e-4),
                         st.floats(1e8, 1e11))


@given(LEVEL_VALUES, st.integers(0, 3), st.sampled_from([2, 4, 8]),
       st.sampled_from(sorted(PLANS)))
@settings(max_examples=40, deadline=None)
def test_monotone_in_each_level_alpha_and_beta(values: tuple[float, float, float, float],
                                               which: int, ppn: int, plan: str) -> None:
    a1, bw1, a2, bw2 = values
    net = load_network("alexnet")
    grids = factorizations(64, 256)
    changed = list(values)
    changed[which] = changed[which] * 2 if which in (0, 2) else changed[which] / 2
    base = small_machine(ppn, a1, bw1, a2, bw2)
    worse = small_machine(ppn, changed[0], changed[1], changed[2], changed[3])
    for mapping in ("best", PR_INSIDE, PC_INSIDE):
        x = evaluate(net, base, grids, PLANS[plan], compute="none", mapping=mapping)
        y = evaluate(net, worse, grids, PLANS[plan], compute="none", mapping=mapping)
        assert (y.total_comm_s >= x.total_comm_s * (1 - 1e-12)).all()


def test_memory_does_not_depend_on_levels() -> None:
    net = load_network("vgg16")
    grids = factorizations(64, 512)
    flat, two = load_machine("a100-ib"), load_machine("a100-ib-nodes")
    a = evaluate(net, flat, grids, PLANS["fc-model"]).memory
    b = evaluate(net, two, grids, PLANS["fc-model"]).memory
    assert np.array_equal(a.total, b.total)


# --------------------------------------------------------------------------- refusals


def message(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err.strip()


def test_explain_writes_levels_out(capsys: pytest.CaptureFixture[str]) -> None:
    # explain no longer refuses a machine with levels (tests/test_explain.py checks its numbers)
    assert main(["explain", "--net", "alexnet", "--machine", "a100-ib-nodes", "--P", "64",
                 "--pr", "8", "--layer", "fc6", "--per", "iteration"]) == 0
    out = capsys.readouterr().out
    assert "  fc6 model, node level: forward all-gather + backward all-reduce over Pr\n" in out


def test_plan_all_includes_per_layer_on_levels() -> None:
    # docs/perlayer.md §7: the per-layer plan runs under one mapping for the whole run
    out = json.loads(CliRunner().invoke(cli, [
        "optimize", "--net", "alexnet", "--machine", "a100-ib-nodes", "--P", "64", "--plan",
        "all", "--format", "json"]).stdout)
    per_layer = out["per_layer"]
    assert per_layer is not None and per_layer["mapping"] == "best"
    assert per_layer["best"]["mapping"] in (PR_INSIDE, PC_INSIDE)
    assert set(per_layer["best"]["mapping_total_s"]) == {PR_INSIDE, PC_INSIDE}
    assert {p["mapping"] for p in out["plans"]} == {"best"}
    assert all(p["best"]["mapping"] in (PR_INSIDE, PC_INSIDE) for p in out["plans"])
    # never worse than the fixed plans as they are charged there, with redistribution
    assert per_layer["best"]["total_s"] <= per_layer["best_fixed_charged"]["total_s"]


def test_mapping_on_a_flat_machine_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert message(capsys, "optimize", "--net", "alexnet", "--P", "64", "--mapping",
                   "pr-inside") == (
        "gridcost: mapping 'pr-inside': machine 'cori-knl' has no levels (one α and β "
        "for every message), so the mapping changes nothing; add 'levels' to its profile "
        "(docs/hierarchy.md) or drop --mapping")


@pytest.mark.parametrize(("selection", "expected"), [
    ("binomial", "all-reduce 'binomial' has no reduce-scatter phase to run inside a node; on a "
                 "machine with levels use one of paper, ring, rabenseifner, flat-ring, auto"),
    ("recursive-doubling", "all-reduce 'recursive-doubling' has no reduce-scatter phase to run "
                           "inside a node; on a machine with levels use one of paper, ring, "
                           "rabenseifner, flat-ring, auto"),
])
def test_collectives_without_levels_support_are_refused(
        capsys: pytest.CaptureFixture[str], selection: str, expected: str) -> None:
    assert message(capsys, "optimize", "--net", "alexnet", "--machine", "a100-ib-nodes", "--P",
                   "64", "--collectives", selection) == f"gridcost: {expected}"


def test_ring_and_rabenseifner_run_across_levels() -> None:
    net, machine = load_network("alexnet"), load_machine("a100-ib-nodes")
    grids = factorizations(64, 512)
    for selection in ("ring", "rabenseifner"):
        table = evaluate(net, machine, grids, PLANS["fc-model"], collectives=selection)
        assert np.isfinite(table.total_s).all()


def test_layers_and_sweep_report_the_mapping() -> None:
    out = json.loads(CliRunner().invoke(cli, [
        "layers", "--net", "vgg16", "--machine", "a100-ib-nodes", "--P", "64", "--pr", "16",
        "--plan", "fc-model", "--format", "json"]).stdout)
    assert out["mapping"] == PC_INSIDE
    fc6 = next(r for r in out["layers"] if r["layer"] == "fc6")
    assert set(fc6["model_comm_s_by_level"]) == {"node", "network"}
    assert math.isclose(sum(fc6["model_comm_s_by_level"].values()), fc6["model_comm_s"],
                        rel_tol=1e-12)
    text = CliRunner().invoke(cli, ["layers", "--net", "vgg16", "--machine", "a100-ib-nodes",
                                    "--P", "64", "--pr", "16", "--plan", "fc-model"]).stdout
    assert "by level [s/epoch]" in text and "mapping: Pc inside the node" in text
    sweep = json.loads(CliRunner().invoke(cli, [
        "sweep", "--net", "vgg16", "--machine", "a100-ib-nodes", "--P", "16,64", "--plan",
        "fc-model", "--format", "json"]).stdout)
    assert [r["mapping"] for r in sweep["rows"]] == [PC_INSIDE, PC_INSIDE]


# --------------------------------------------------------------------------- bad profiles

HEAD = "version: 1\nname: m\nalpha: 5 us\nbandwidth: 25 GB/s\nflop_rate: 1 TFLOP/s\n"
BAD_LEVELS = [
    ("levels: []", "levels: expected a non-empty list of levels"),
    ("levels: {name: node}", "levels: expected a list, got 'dict'"),
    ("levels: [{name: node, processes: 8, alpha: 2 us, bandwidth: 300 GB/s}]",
     "levels[0].processes: expected no processes on the outermost level (it spans the whole "
     "machine), got 8"),
    ("levels: [{name: node, alpha: 2 us, bandwidth: 300 GB/s}, {name: network}]",
     "levels[0].processes: expected this field (it is missing)"),
    ("levels: [{name: node, processes: 0, alpha: 2 us, bandwidth: 300 GB/s}, {name: network}]",
     "levels[0].processes: expected an integer ≥ 1, got 0"),
    ("levels: [{name: node, processes: 2.5, alpha: 2 us, bandwidth: 300 GB/s}, {name: net}]",
     "levels[0].processes: expected an integer ≥ 1, got 2.5"),
    ("levels: [{name: s, processes: 4, alpha: 1 us, bandwidth: 1 TB/s}, {name: n, processes: 6, "
     "alpha: 2 us, bandwidth: 300 GB/s}, {name: network}]",
     "levels[1].processes: expected a multiple of 4 greater than 4 (processes per domain, "
     "counted cumulatively), got 6"),
    ("levels: [{name: node, processes: 8, alpha: 2 us, bandwidth: 300 GB/s}, {name: node}]",
     "levels[1].name: expected a level name not used before, got 'node'"),
    ("levels: [{name: node, processes: 8, alpha: 2 us, bandwidth: 300}, {name: network}]",
     "levels[0].bandwidth: expected '<number> <unit>' with unit B/s, GB/s, GiB/s, Gbit/s or "
     "Gbps…, e.g. '6 GiB/s', got 300"),
    ("levels: [{name: node, processes: 8, alpha: 2 us, bandwidth: 300 GB/s}, "
     "{name: network, alpha: 6 us}]",
     "levels[1].alpha: expected the top-level alpha '5 us' (the outermost level is what the "
     "flat model sees), got '6 us'"),
    ("levels: [{name: node, processes: 8, alpha: 2 us, bandwidth: 300 GB/s, latency: 1 us}, "
     "{name: network}]",
     "levels[0].latency: expected one of the keys alpha, bandwidth, name, processes (unknown "
     "key)"),
]


@pytest.mark.parametrize(("levels", "expected"), BAD_LEVELS)
def test_bad_levels_are_one_line_errors(tmp_path: Path, levels: str, expected: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + levels + "\n")
    with pytest.raises(SpecError) as info:
        load_machine(str(path))
    assert str(info.value) == f"{path}: {expected}"


def test_levels_load_into_si(tmp_path: Path) -> None:
    machine = load_machine("a100-ib-nodes")
    assert machine.levels == (Level("node", 8, 2e-6, 300e9), Level("network", None, 5e-6, 25e9))
    assert machine.hierarchical and machine.domain_sizes == (8,)
    assert machine.links[1] == (machine.alpha_s, machine.beta_s_per_word)


def test_machine_checks_levels_without_a_loader() -> None:
    with pytest.raises(GridcostError):
        Machine("m", 5e-6, 25e9, levels=(Level("node", 8, 2e-6, 300e9),
                                         Level("network", None, 6e-6, 25e9)))
    with pytest.raises(SpecError):
        Machine("m", 5e-6, 25e9, levels=(Level("node", None, 2e-6, 300e9),
                                         Level("network", None, 5e-6, 25e9)))


def test_usage_error_is_a_gridcost_error() -> None:
    assert issubclass(UsageError, GridcostError)
