"""Tests of costmodel.output.explanation and `gridcost explain`.

The central test recomputes nothing by hand: it checks that every value explain derives (one
scalar at a time from the layer specs, the plan's layout, α, β and the algorithm's rate
functions) equals the engine's CostTable for every grid × layer × term, so the explanation
cannot drift from the engine.  The hand-checked tests use docs/model.md's worked fc6 example
and halo volumes computed from the layer shapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run
from golden import line_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.cli import main
from costmodel.engine.collectives import (
    ALGORITHMS,
    Algorithms,
    Rate,
    bruck_allgather_rate,
    ceil_log2,
    paper_allreduce_rate,
)
from costmodel.engine.cost import TERMS, evaluate
from costmodel.engine.grids import Grids, factorizations
from costmodel.engine.plans import PLANS, plan
from costmodel.errors import UnknownName, UsageError
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.inputs.specs import ComputeTable, Layer, Level, Machine, Network
from costmodel.output.explanation import (
    RATE_TEXTS,
    RateText,
    explain,
    explanation_record,
    render_markdown,
    render_text,
)

ALEXNET = load_network("alexnet")
CORI = load_machine("cori-knl")
BETA = 4 / (6 * 2**30)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def assert_matches_engine(network, machine, P: int, batch: int, plan_name: str, overlap: str,
                          collectives: str, compute: str, mapping: str = "best") -> int:
    """Every explained value equals the engine's for every grid of P; returns grids checked.

    With per-collective fits the engine's counts are flat-equivalent (scaled by α_kind/α,
    β_kind/β) while explain shows the raw ones: those are the engine's on the profile without
    the fits."""
    chosen = PLANS[plan_name]
    grids = factorizations(P, batch)
    table = evaluate(network, machine, grids, chosen, overlap, collectives, compute,  # type: ignore[arg-type]
                     mapping=mapping)
    raw = dataclasses.replace(machine, per_collective=(), per_collective_processes=())
    flat = table if raw == machine else evaluate(network, raw, grids, chosen, overlap,  # type: ignore[arg-type]
                                                 collectives, compute)  # type: ignore[arg-type]
    for g in range(len(grids)):
        e = explain(network, machine, P, int(grids.pr[g]), batch, chosen, overlap,  # type: ignore[arg-type]
                    collectives, compute, mapping=mapping)  # type: ignore[arg-type]
        assert_grid_agrees(e, network, table, flat, g, (plan_name, compute, collectives))
    return len(grids)


def assert_grid_agrees(e, network, table, flat, g: int, where: tuple[object, ...]) -> None:  # type: ignore[no-untyped-def]
    """Explanation ``e`` of grid ``g`` equals the engine's ``table`` at rtol 1e-12: every layer
    × term (seconds; messages and words against ``flat``), every sum, the compute and the
    total; on a machine with levels also every layer × term × level, the mapping and both
    mappings' totals."""
    seconds = {t: table.seconds(t) for t in TERMS}
    counts = {t: flat.term(t) for t in TERMS}
    levels = table.mappings is not None
    by_level = {t: table.level_seconds(t) for t in TERMS} if levels else {}
    names = [level.name for level in table.machine.levels]
    assert [layer.name for layer in e.layers] == [layer.name for layer in network.layers]
    for i, layer in enumerate(e.layers):
        assert (layer.pr, layer.pc) == (int(table.layout.pr[g, i]), int(table.layout.pc[g, i]))
        for t in TERMS:
            at = (*where, g, layer.name, t)
            assert close(layer.seconds(t), float(seconds[t][g, i])), at
            assert close(layer.count(t, "messages"),
                         float(np.broadcast_to(counts[t].messages, flat.shape)[g, i])), at
            assert close(layer.count(t, "words"), float(counts[t].words[g, i])), at
            if levels:
                for k, name in enumerate(names):
                    mine = math.fsum(line.seconds for line in layer.lines
                                     if line.term == t and line.level == name)
                    assert close(mine, float(by_level[t][k, g, i])), (*at, name)
                assert {line.level for line in layer.lines} <= {"", *names}
    for line, t in zip(e.sums, TERMS):
        assert close(line.seconds, float(table.comm_s(t)[g])), (*where, g, t)
    assert close(e.compute.seconds, float(table.compute_s[g]))
    assert close(e.total.seconds, float(table.total_s[g])), (*where, g)
    assert e.feasible == bool(table.feasible[g])
    assert e.uneven == bool(table.uneven[g])
    assert close(e.iterations_per_epoch, float(table.iterations_per_epoch[g]))
    if levels:
        assert e.mapping is not None and e.mapping.used == table.mappings.used(g)
        for name, total in e.mapping.total_s:
            assert close(total, float(table.mappings.total_s[name][g])), (*where, g, name)
    else:
        assert e.mapping is None and e.levels == ()


# --------------------------------------------------------------------------- explain == engine


@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("compute", ["table", "flops"])
@pytest.mark.parametrize("collectives,overlap", [("paper", "none"), ("ring", "batch")])
def test_explain_equals_engine_alexnet(plan_name: str, compute: str, collectives: str,
                                       overlap: str) -> None:
    # P = 512 at B = 2048: even and uneven grids, all four plans' splits (beyond-batch: P ≤ B)
    assert assert_matches_engine(ALEXNET, CORI, 512, 2048, plan_name, overlap, collectives,
                                 compute) == 10
    # P = 96, B = 1000: ⌈B/Pc⌉ uneven, b = 10.4 between table entries; P = 1024 > B = 512:
    # beyond-batch splits the images 2 ways
    assert_matches_engine(ALEXNET, CORI, 96, 1000, plan_name, overlap, collectives, compute)
    assert_matches_engine(ALEXNET, CORI, 1024, 512, plan_name, overlap, collectives, compute)


@pytest.mark.parametrize("plan_name", sorted(PLANS))
def test_explain_equals_engine_resnet_and_bf16(plan_name: str) -> None:
    # 1×1 and 7×7 convs, batch norm parameters, 2-byte words; no table for resnet: flops
    assert_matches_engine(load_network("resnet18"), load_machine("a100-ib"), 48, 256,
                          plan_name, "batch", "paper", "flops")


# non-square kernels (forward halo ⌊k_h/2⌋ ≠ backward ⌊k_w/2⌋), a 1×1 conv, odd shapes
TINY = Network("tiny", (
    Layer("c1", "conv", (9, 8, 2), (9, 8, 5), kernel=(3, 3), padding=(1, 1), weight_params=95),
    Layer("c2", "conv", (9, 6, 5), (9, 6, 3), kernel=(5, 3), padding=(2, 1), weight_params=228),
    Layer("c0", "conv", (9, 6, 3), (9, 6, 7), kernel=(1, 1), weight_params=28),
    Layer("f1", "fc", (1, 1, 378), (1, 1, 10), weight_params=3790),
), (9, 8, 2), dataset_samples=1600)
TOY = Machine("toy", alpha_s=3e-6, bandwidth_Bps=7e9, word_bytes=4, flop_rate=1e12,
              compute_tables=(ComputeTable("toy", "tiny", (1, 4, 16), (1600.0, 420.0, 99.0)),),
              default_table="toy")


@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("compute", ["table", "flops"])
@pytest.mark.parametrize("P,batch", [(36, 30), (36, 7), (12, 100)])
def test_explain_equals_engine_non_square_kernels(plan_name: str, compute: str, P: int,
                                                  batch: int) -> None:
    assert_matches_engine(TINY, TOY, P, batch, plan_name, "none", "paper", compute)


def test_explain_equals_engine_without_compute_and_outside_the_table() -> None:
    assert_matches_engine(ALEXNET, CORI, 12, 6000, "fc-model", "none", "paper", "none")
    # b = 6000/4 = 1500 > 256: the table's end segment is extended, and explain says so
    assert_matches_engine(ALEXNET, CORI, 4, 6000, "fc-model", "none", "paper", "table")
    e = explain(ALEXNET, CORI, 4, 2, 6000, plan("fc-model"))
    assert "outside the table (1…256)" in e.compute.note


# per-collective fits, pooled and per group size (docs/formats.md per_collective): every
# kind and p differs from the flat pair, some p are listed and others not
FITTED_CORI = dataclasses.replace(
    CORI, per_collective=(("allgather", 3e-6, 4e9), ("allreduce", 1.5e-6, 9e9),
                          ("p2p", 5e-6, 2e9)),
    per_collective_processes=(("allgather", 2, 2.5e-6, 5e9), ("allgather", 16, 9e-6, 3e9),
                              ("allreduce", 4, 1e-6, 11e9), ("allreduce", 32, 4e-6, 7e9),
                              ("p2p", 2, 4e-6, 3e9), ("p2p", 4, 1.0, 1.0)))
POOLED_TOY = dataclasses.replace(TOY, per_collective=(("allreduce", 5e-6, 5e9),))
PER_P_TOY = dataclasses.replace(TOY, per_collective_processes=(("allgather", 3, 1e-5, 2e9),
                                                               ("p2p", 2, 1e-6, 9e9)))


@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("collectives", ["paper", "ring", "rabenseifner"])
def test_explain_equals_engine_with_per_collective_fits(plan_name: str, collectives: str) -> None:
    assert_matches_engine(ALEXNET, FITTED_CORI, 512, 2048, plan_name, "none", collectives,
                          "table")
    assert_matches_engine(ALEXNET, FITTED_CORI, 96, 1000, plan_name, "batch", collectives,
                          "flops")
    for machine in (POOLED_TOY, PER_P_TOY):
        assert_matches_engine(TINY, machine, 36, 30, plan_name, "none", collectives, "flops")


def test_per_collective_fits_are_written_with_their_symbols() -> None:
    # fc6 on 2×256 under fc-model: all-gather over Pr = 2 has its p = 2 fit; the all-reduce
    # over Pr = 2 is not listed for p = 2 — its kind's own fit; weights over Pc = 256 likewise
    fc6 = explain(ALEXNET, FITTED_CORI, 512, 2, 2048, plan("fc-model"),
                  layers=["fc6"]).layer("fc6")
    model, batch = fc6.lines
    assert model.formula == ("(α_ag(Pr)·⌈log2 Pr⌉ + β_ag(Pr)·⌈B/Pc⌉·(Pr−1)/Pr·d_i) + "
                             "2·(α_ar(Pr)·⌈log2 Pr⌉ + β_ar(Pr)·⌈B/Pc⌉·(Pr−1)/Pr·d_i)")
    assert model.substituted == ("(2.5e-06·1 + 8e-10·8·1/2·4096) + "
                                 f"2·(1.5e-06·1 + {4 / 9e9!r}·8·1/2·4096)")
    assert dict(model.bindings)["α_ag(Pr)"] == "2.5e-06 s (per_collective.allgather.processes.2)"
    assert dict(model.bindings)["β_ag(Pr)"] == "4/5000000000 = 8e-10 s/word"
    assert dict(model.bindings)["α_ar(Pr)"] == "1.5e-06 s (per_collective.allreduce)"
    # raw counts: 1 + 2 latency terms, (1/2 + 1)·8·4096 words
    assert (model.messages, model.words) == (3.0, 49152.0)
    assert close(model.seconds, 2.5e-6 + 8e-10 * 16384 + 2 * (1.5e-6 + 4 / 9e9 * 16384))
    assert batch.formula == "2·(α_ar(Pc)·⌈log2 Pc⌉ + β_ar(Pc)·(Pc−1)/Pc·|W_i|/Pr)"
    # a domain split: halos are one message between two neighbours — the p2p fit for p = 2
    # (the absurd p = 4 entry is never used); the weights over P = 4 take the p = 4 fit
    conv3 = explain(ALEXNET, FITTED_CORI, 4, 4, 4, plan("domain-batch"),
                    layers=["conv3"]).layer("conv3")
    forward = conv3.lines[0]
    assert forward.formula == "α_p2p(2) + β_p2p(2)·⌈B/Pc⌉·X_W·X_C·⌊k_h/2⌋"
    assert dict(forward.bindings)["α_p2p(2)"] == "4e-06 s (per_collective.p2p.processes.2)"
    assert close(forward.seconds, 4e-6 + 4 / 3e9 * forward.words)
    weights = conv3.lines[2]
    assert dict(weights.bindings)["α_ar(P)"] == "1e-06 s (per_collective.allreduce.processes.4)"
    # a kind without a fit keeps the flat symbols
    plain = explain(TINY, POOLED_TOY, 4, 2, 8, plan("model-batch"), layers=["f1"]).layer("f1")
    assert plain.lines[0].formula == ("(α·⌈log2 Pr⌉ + β·⌈B/Pc⌉·(Pr−1)/Pr·d_i) + "
                                      "2·(α_ar·⌈log2 Pr⌉ + β_ar·⌈B/Pc⌉·(Pr−1)/Pr·d_i)")
    assert dict(plain.lines[0].bindings)["α"] == "3e-06 s"
    assert dict(plain.lines[0].bindings)["α_ar"] == "5e-06 s (per_collective.allreduce)"


def test_per_collective_generic_text_names_each_part(monkeypatch: pytest.MonkeyPatch) -> None:
    # an algorithm without formula text, and different pairs per part: α_k·m_k + β_k·w_k·n each
    monkeypatch.setitem(ALGORITHMS, "tree", Algorithms("tree", bruck_allgather_rate,
                                                       tree_allreduce_rate, "test only"))
    e = explain(ALEXNET, FITTED_CORI, 512, 32, 2048, plan("fc-model"), collectives="tree",
                layers=["fc6"])
    model = e.layer("fc6").lines[0]
    assert model.formula == ("α_ag(Pr)·m_gather(Pr) + β_ag(Pr)·⌈B/Pc⌉·w_gather(Pr)·d_i + "
                             "α_ar(Pr)·m_reduce(Pr) + β_ar(Pr)·⌈B/Pc⌉·w_reduce(Pr)·d_i")
    # fc6 on 32×16: Pr = 32 is listed for the all-reduce, not for the all-gather
    # (m, w: Bruck 5, 31/32; tree 10, 10)
    assert model.substituted == (f"3e-06·5 + {4 / 4e9!r}·128·0.96875·4096 + "
                                 f"4e-06·10 + {4 / 7e9!r}·128·10·4096")
    assert_matches_engine(ALEXNET, FITTED_CORI, 512, 2048, "fc-model", "none", "tree", "table")


# --------------------------------------------------------------------------- formula registry


@pytest.mark.parametrize("rate_of", list(RATE_TEXTS), ids=lambda f: f.__name__)
def test_every_registered_text_reproduces_its_rate(rate_of) -> None:  # type: ignore[no-untyped-def]
    text = RATE_TEXTS[rate_of]
    for p in range(1, 600):
        rate = rate_of(np.array([p]))
        assert text.matches(rate, p), (rate_of.__name__, p)


def test_a_wrong_text_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    right = RATE_TEXTS[paper_allreduce_rate]
    wrong = RateText(3, right.latency, right.latency_of, right.fraction, right.fraction_of)
    monkeypatch.setitem(RATE_TEXTS, paper_allreduce_rate, wrong)
    fc6 = explain(ALEXNET, CORI, 512, 32, 2048, plan("fc-model")).layer("fc6")
    batch = next(line for line in fc6.lines if line.term == "batch")
    assert batch.formula == "α·m(Pc) + β·w(Pc)·|W_i|/Pr"
    assert batch.substituted == "2e-06·8 + 6.20881716410319e-10·1.875·37752832/32"
    assert close(batch.seconds * 585.9375, 0.8141250159591437)


def tree_allreduce_rate(p: np.ndarray) -> Rate:
    """A stand-in for an algorithm without formula text: 2·lg p latency, 2·lg p words per word."""
    lg = ceil_log2(p)
    return Rate(2.0 * lg, 2.0 * lg)


def test_an_algorithm_without_text_falls_back_to_the_engines_numbers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ALGORITHMS, "tree", Algorithms("tree", bruck_allgather_rate,
                                                       tree_allreduce_rate, "test only"))
    e = explain(ALEXNET, CORI, 512, 32, 2048, plan("fc-model"), collectives="tree")
    fc6 = e.layer("fc6")
    model, batch = fc6.lines
    assert model.formula == "α·m(Pr) + β·⌈B/Pc⌉·w(Pr)·d_i"
    # m = 5 (Bruck) + 10 (tree), w = 31/32 + 10
    assert model.substituted == "2e-06·15 + 6.20881716410319e-10·128·10.96875·4096"
    assert batch.formula == "α·m(Pc) + β·w(Pc)·|W_i|/Pr"
    assert batch.substituted == "2e-06·8 + 6.20881716410319e-10·8·37752832/32"
    assert_matches_engine(ALEXNET, CORI, 512, 2048, "fc-model", "none", "tree", "table")
    assert_matches_engine(ALEXNET, CORI, 512, 2048, "domain-batch", "none", "tree", "table")


# --------------------------------------------------------------------------- hand-checked


FC6_TEXT = """\
fc6 (fc; model over Pr=32 × batch over Pc=16)
  fc6 model: forward all-gather + backward all-reduce over Pr
    formula:     3·(α·⌈log2 Pr⌉ + β·⌈B/Pc⌉·(Pr−1)/Pr·d_i)
    where:       α = 2×10⁻⁶ s, β = 6.209×10⁻¹⁰ s/word, Pr = 32, ⌈B/Pc⌉ = ⌈2048/16⌉ = 128, d_i = 4096 activations/sample
    substituted: 3·(2×10⁻⁶·5 + 6.209×10⁻¹⁰·128·31/32·4096)
    result:      0.000976 s/iteration × 585.9 iterations/epoch = 0.5719 s/epoch (8,789 messages, 892,800,000 words per epoch)
  fc6 batch: weight-gradient all-reduce over Pc
    formula:     2·(α·⌈log2 Pc⌉ + β·(Pc−1)/Pc·|W_i|/Pr)
    where:       α = 2×10⁻⁶ s, β = 6.209×10⁻¹⁰ s/word, Pc = 16, |W_i| = 37752832 parameters, u_i = 4096 units, Pr = 32, |W_i|/Pr = 37752832/32 = 1179776 words
    substituted: 2·(2×10⁻⁶·4 + 6.209×10⁻¹⁰·15/16·37752832/32)
    result:      0.001389 s/iteration × 585.9 iterations/epoch = 0.8141 s/epoch (4,688 messages, 1,296,140,625 words per epoch)
"""


def test_fc6_worked_example_of_model_md() -> None:
    """docs/model.md, "fc6 by hand": AlexNet, cori-knl, B = 2048, P = 512, fc-model, 32×16."""
    e = explain(ALEXNET, CORI, 512, 32, 2048, plan("fc-model"), layers=["fc6"])
    text = render_text(e, "epoch")
    assert FC6_TEXT in text
    # the numbers, independently: 15 messages and 3·(31/32)·128·4096 words per iteration
    model_s = 15 * 2e-6 + 3 * 31 / 32 * 128 * 4096 * BETA
    batch_s = 8 * 2e-6 + 2 * 15 / 16 * (9216 * 4096 + 4096) / 32 * BETA
    fc6 = e.layer("fc6")
    assert close(fc6.seconds("model") * 585.9375, model_s * 585.9375)
    assert close(fc6.seconds("batch") * 585.9375, batch_s * 585.9375)
    assert math.isclose(fc6.seconds("model") * 1_200_000 / 2048, 0.5719013214111328,
                        rel_tol=1e-15)
    assert math.isclose(fc6.seconds("batch") * 1_200_000 / 2048, 0.8141250159591437,
                        rel_tol=1e-15)
    # the whole grid is still summed: docs/model.md's 26.74043235821882 s/epoch
    assert "whole grid" in text
    assert math.isclose(e.total.seconds * 585.9375, 26.74043235821882, rel_tol=1e-12)
    assert [layer.name for layer in e.layers] == ["fc6"]
    assert "compute: measured table 'paper-figures' (alexnet)" in text
    assert "T(b) = T(4) = 11450 s" in text


def test_uneven_shard_of_fc8_is_written_out() -> None:
    fc8 = explain(ALEXNET, CORI, 512, 32, 2048, plan("fc-model"), layers=["fc8"]).layer("fc8")
    batch = fc8.lines[1]
    assert batch.formula == "2·(α·⌈log2 Pc⌉ + β·(Pc−1)/Pc·|W_i|·⌈u_i/Pr⌉/u_i)"
    assert batch.substituted == "2·(2e-06·4 + 6.20881716410319e-10·15/16·4097000·32/1000)"
    assert ("|W_i|·⌈u_i/Pr⌉/u_i", "4097000·⌈1000/32⌉/1000 = 131104 words") in batch.bindings
    assert batch.note.startswith("uneven: Pr = 32 does not divide u_i = 1000 units")
    assert close(batch.seconds, 8 * 2e-6 + 2 * 15 / 16 * 131104 * BETA)


def test_domain_layer_halo_terms() -> None:
    """conv2 of AlexNet split 8 ways by height, 64 ways by batch (domain-batch, P = 512):
    5×5 kernel on 27×27×96 → 27×27×256, 32 samples per process."""
    e = explain(ALEXNET, CORI, 512, 8, 2048, plan("domain-batch"), layers=["conv2"])
    conv2 = e.layer("conv2")
    assert (conv2.split, conv2.pr, conv2.pc) == ("domain", 8, 64)
    forward, backward, weights = conv2.lines
    assert forward.formula == "α + β·⌈B/Pc⌉·X_W·X_C·⌊k_h/2⌋"
    assert forward.substituted == "2e-06 + 6.20881716410319e-10·32·27·96·2"
    assert forward.words == 32 * 27 * 96 * 2 == 165888
    assert close(forward.seconds, 2e-6 + 165888 * BETA)
    assert backward.formula == "α + β·⌈B/Pc⌉·Y_W·Y_C·⌊k_w/2⌋"
    assert backward.substituted == "2e-06 + 6.20881716410319e-10·32·27·256·2"
    assert close(backward.seconds, 2e-6 + 32 * 27 * 256 * 2 * BETA)
    assert weights.formula == "2·(α·⌈log2 P⌉ + β·(P−1)/P·|W_i|)"
    assert weights.substituted == "2·(2e-06·9 + 6.20881716410319e-10·511/512·307456)"
    assert close(weights.seconds, 18 * 2e-6 + 2 * 511 / 512 * 307456 * BETA)
    assert close(conv2.seconds("domain"), forward.seconds + backward.seconds)
    assert conv2.seconds("model") == 0.0
    text = render_text(e, "iteration")
    assert "  conv2 domain: forward halo exchange over Pr\n" in text
    assert "⌈B/Pc⌉ = ⌈2048/64⌉ = 32, X_W = 27, X_C = 96, ⌊k_h/2⌋ = ⌊5/2⌋ = 2" in text


def test_halo_is_zero_without_split_or_for_one_by_one_kernels() -> None:
    resnet = load_network("resnet50")
    one_by_one = next(layer.name for layer in resnet.layers
                      if layer.kind == "conv" and layer.kernel == (1, 1))
    layer = explain(resnet, CORI, 64, 4, 256, plan("domain-batch"),
                    layers=[one_by_one]).layer(one_by_one)
    forward, backward, _ = layer.lines
    assert forward.seconds == backward.seconds == 0.0
    assert forward.substituted == "0"
    assert forward.note == "⌊k_h/2⌋ = 0: a kernel of 1 needs no halo"
    unsplit = explain(ALEXNET, CORI, 64, 1, 2048, plan("domain-batch"),
                      layers=["conv2"]).layer("conv2")
    assert unsplit.lines[0].note == "Pr = 1: the image is not split"
    assert unsplit.seconds("domain") == 0.0


def test_compute_interpolated_between_table_entries() -> None:
    # b = 1000/128 = 7.8125, between the entries 4 (11450 s) and 16 (4603 s)
    e = explain(ALEXNET, CORI, 128, 8, 1000, plan("fc-model"))
    b = 1000 / 128
    t = 11450 * (b / 4) ** (math.log(4603 / 11450) / math.log(16 / 4))
    assert math.isclose(e.compute.seconds, t / 128 * 1000 / 1_200_000, rel_tol=1e-12)
    assert "T(7.8125) = 11450·(7.8125/4)^(ln(4603/11450)/ln(16/4))" in e.compute.bindings[1][1]
    assert e.compute.note == ""


def test_compute_flop_model_and_overlap_batch() -> None:
    e = explain(ALEXNET, CORI, 512, 32, 2048, plan("fc-model"), overlap="batch",
                compute="flops")
    assert e.compute.formula == "B·3·2·MACs/(P·R)"
    assert e.compute.substituted == f"2048·3·2·{ALEXNET.macs}/(512·2330000000000)"
    assert close(e.compute.seconds, 2048 * 6 * ALEXNET.macs / (512 * 2.33e12))
    assert e.total.formula == "max(compute, batch) + model + domain"
    model, batch, domain = (s.seconds for s in e.sums)
    assert close(e.total.seconds, max(e.compute.seconds, batch) + model + domain)


def test_bad_arguments() -> None:
    with pytest.raises(UsageError, match=r"^--pr: expected a divisor of P=512, got 7$"):
        explain(ALEXNET, CORI, 512, 7, 2048, plan("fc-model"))
    with pytest.raises(UnknownName, match="did you mean 'fc6'"):
        explain(ALEXNET, CORI, 512, 8, 2048, plan("fc-model"), layers=["fc66"])


# --------------------------------------------------------------------------- CLI




FC6_ARGS = ("explain", "--net", "alexnet", "--P", "512", "--pr", "32", "--plan", "fc-model",
            "--layer", "fc6")


def test_cli_text_shows_the_worked_example() -> None:
    out = run(*FC6_ARGS)
    assert out.startswith("alexnet on cori-knl: 32×16 grid (P=512, B=2048), plan fc-model, "
                          "overlap none, collectives paper, compute table 'paper-figures' "
                          "(alexnet)\n")
    assert FC6_TEXT in out
    assert "= 26.74 s/epoch" in out


def test_cli_json_and_markdown() -> None:
    record = json.loads(run(*FC6_ARGS, "--format", "json"))
    (fc6,) = record["layers"]
    model, batch = fc6["terms"]
    assert model["seconds_per_epoch"] == 0.5719013214111328
    assert batch["seconds_per_epoch"] == 0.8141250159591437
    assert model["formula"] == "3·(α·⌈log2 Pr⌉ + β·⌈B/Pc⌉·(Pr−1)/Pr·d_i)"
    assert {"symbol": "⌈B/Pc⌉", "value": "⌈2048/16⌉ = 128"} in model["bindings"]
    assert record["pr"] == 32 and record["pc"] == 16 and record["feasible"] is True
    assert record == explanation_record(explain(ALEXNET, CORI, 512, 32, 2048,
                                                plan("fc-model"), layers=["fc6"]))
    md = run(*FC6_ARGS, "--format", "markdown")
    assert "#### fc6 (fc; model over Pr=32 × batch over Pc=16)" in md
    assert "| 0.000976 | 0.5719 |" in md
    assert "\\|W_i\\|/Pr" in md  # pipes inside cells are escaped
    assert md == render_markdown(explain(ALEXNET, CORI, 512, 32, 2048, plan("fc-model"),
                                         layers=["fc6"]), "epoch")


def test_cli_without_layer_explains_every_layer_and_per_iteration() -> None:
    out = run("explain", "--net", "alexnet", "--P", "512", "--pr", "16", "--per", "iteration")
    for layer in ALEXNET.layers:
        assert f"\n{layer.name} (" in out
    assert " s/epoch" not in out


def test_cli_infeasible_grid_is_still_explained() -> None:
    out = run("explain", "--net", "alexnet", "--P", "512", "--pr", "512")
    assert "— INFEASIBLE: Pr=512 > 96 filters of conv1" in out.splitlines()[0]


@pytest.mark.parametrize("args,message", [
    (("--pr", "7"), "gridcost: --pr: expected a divisor of P=512, got 7"),
    (("--pr", "8", "--layer", "fc66"),
     "gridcost: unknown layer 'fc66'; did you mean 'fc6' or 'fc7' or 'fc8'? (known: conv1, "
     "conv2, conv3, conv4, conv5, fc6, fc7, fc8)"),
    (("--pr", "0"), "gridcost: --pr: expected a positive integer, got '0'"),
    (("--pr", "8", "--plan", "fc-modle"),
     "gridcost: unknown plan 'fc-modle'; did you mean 'fc-model'? (known: beyond-batch, "
     "domain-batch, fc-model, model-batch)"),
])
def test_cli_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                        args: tuple[str, ...], message: str) -> None:
    code = main(["explain", "--net", "alexnet", "--P", "512", *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == message + "\n"


def test_the_examples_in_docs_explain_md_are_current() -> None:
    """Each ```text block of docs/explain.md is a `$ gridcost explain …` run, verbatim or with
    some lines elided (…); every shown line must be in today's output, in order."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "explain.md").read_text("utf-8")
    blocks = [b.split("```")[0] for b in doc.split("```text\n")[1:]]
    assert len(blocks) == 5
    for block in blocks:
        command, *shown = block.splitlines()
        assert command.startswith("$ gridcost explain ")
        out = run(*command.split()[2:]).splitlines()
        position = 0
        for line in shown:
            if line.strip() == "…":
                continue
            position = _shown_at(out, line, position) + 1


def test_the_explain_example_in_docs_hierarchy_md_is_current() -> None:
    """The ```text block of docs/hierarchy.md that runs `gridcost explain` on a machine with
    levels: every shown line is in today's output, in order."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "hierarchy.md").read_text("utf-8")
    blocks = [b.split("```")[0] for b in doc.split("```text\n")[1:]
              if b.startswith("$ gridcost explain ")]
    assert len(blocks) == 1
    command, *shown = blocks[0].splitlines()
    out = run(*command.split()[2:]).splitlines()
    position = 0
    for line in shown:
        if line.strip() != "…":
            position = _shown_at(out, line, position) + 1


def test_the_per_collective_example_in_docs_explain_md_is_current(tmp_path: Path) -> None:
    """The ```yaml profile and ```console run of docs/explain.md's per-collective section."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "explain.md").read_text("utf-8")
    section = doc.split("## Per-collective α and β")[1]
    profile = section.split("```yaml\n")[1].split("```")[0]
    command, *shown = section.split("```console\n")[1].split("```")[0].splitlines()
    path = tmp_path / "host.yaml"
    path.write_text(profile, encoding="utf-8")
    args = [str(path) if a == "host.yaml" else a for a in command.split()[2:]]
    out = run(*args).splitlines()
    position = 0
    for line in shown:
        if line.strip() != "…":
            position = _shown_at(out, line, position) + 1


def _shown_at(out: list[str], line: str, start: int) -> int:
    """Index of the first output line from ``start`` on that the doc's ``line`` shows: text
    exactly, numbers at the precision of tests/golden.py (a float's last bits differ between
    machines); raises ValueError naming the line when there is none."""
    for i in range(start, len(out)):
        if out[i] == line or line_difference(out[i], line) is None:
            return i
    raise ValueError(f"not in the output (from line {start + 1} on): {line}")


# --------------------------------------------------------------------------- named collectives


@pytest.mark.parametrize("collectives", ["recursive-doubling", "rabenseifner", "binomial",
                                         "allgather=ring,allreduce=binomial"])
def test_named_collectives_explained_like_the_engine(collectives: str) -> None:
    # γ = 0: generic α·m + β·w·n text, the same totals as the engine (docs/collectives.md)
    machine = load_machine("cori-knl")
    e = explain(ALEXNET, machine, 384, 32, 2048, plan("fc-model"), collectives=collectives,
                compute="none")
    table = evaluate(ALEXNET, machine, factorizations(384, 2048), plan("fc-model"),
                     collectives=collectives, compute="none")
    grid = int(np.flatnonzero(table.grids.pr == 32)[0])
    assert math.isclose(e.total.seconds, float(table.total_s[grid]), rel_tol=1e-12)


def test_explain_refuses_auto_and_gamma() -> None:
    machine = load_machine("cori-knl")
    with pytest.raises(UsageError) as info:
        explain(ALEXNET, machine, 8, 2, 2048, plan("fc-model"), collectives="auto")
    assert str(info.value) == ("explain: collectives 'auto' picks per message; `gridcost layers "
                               "--collectives auto` shows the winners — explain one of them")
    gamma = Machine("g", alpha_s=2e-6, bandwidth_Bps=6e9, gamma_s_per_word=1e-9)
    with pytest.raises(UsageError) as info:
        explain(ALEXNET, gamma, 8, 2, 2048, plan("fc-model"), collectives="ring",
                compute="none")
    assert str(info.value) == ("explain: machine 'g' charges γ (reduction arithmetic), which "
                               "explain does not show yet; use --collectives paper or a profile "
                               "without gamma")
    # the paper's forms carry no γ: explained as before
    e = explain(ALEXNET, gamma, 8, 2, 2048, plan("fc-model"), compute="none")
    assert e.collectives == "paper"


# --------------------------------------------------------------------------- readable numbers


@pytest.mark.parametrize(("value", "text"), [
    (2e-6, "2×10⁻⁶"), (6.20881716410319e-10, "6.209×10⁻¹⁰"), (9.99996e-5, "1×10⁻⁴"),
    (0.000976044921875, "0.000976"), (585.9375, "585.9"), (26.740432358218825, "26.74"),
    (4746224121.09375, "4746224121"), (11450.0, "11450"), (0.0, "0"), (-2.5e-7, "-2.5×10⁻⁷")])
def test_readable_numbers_by_hand(value: float, text: str) -> None:
    from costmodel.output.explanation import readable

    assert readable(value) == text


def test_readable_text_rounds_floats_and_leaves_names_and_integers() -> None:
    from costmodel.output.explanation import readable_text

    assert (readable_text("3·(2e-06·5 + 6.20881716410319e-10·128·31/32·4096)")
            == "3·(2×10⁻⁶·5 + 6.209×10⁻¹⁰·128·31/32·4096)")
    assert readable_text("layer1.0.conv1 = 0.1234567 s, conv1_1") == "layer1.0.conv1 = 0.1235 s, conv1_1"


@given(st.floats(min_value=1e-12, max_value=1e12))
def test_readable_keeps_four_significant_digits(value: float) -> None:
    from costmodel.output.explanation import readable

    text = readable(value)
    assert "e" not in text
    if "×10" in text:
        mantissa, exponent = text.split("×10")
        back = float(mantissa) * 10.0 ** int(exponent.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹",
                                                                              "-0123456789")))
    else:
        back = float(text)
    assert math.isclose(back, value, rel_tol=5e-4, abs_tol=0.5)


def test_text_and_markdown_are_rounded_and_json_is_in_full() -> None:
    e = explain(ALEXNET, CORI, 512, 32, 2048, plan("fc-model"), layers=["fc6"])
    for text in (render_text(e, "epoch"), render_markdown(e, "epoch")):
        assert "6.20881716410319" not in text and "e-0" not in text and "e-1" not in text
        assert "numbers rounded to 4 significant digits" in text
    record = explanation_record(e)
    assert record["layers"][0]["terms"][0]["substituted"] == (
        "3·(2e-06·5 + 6.20881716410319e-10·128·31/32·4096)")
    assert record["layers"][0]["terms"][0]["seconds_per_iteration"] == 0.000976044921875


# --------------------------------------------------------------------------- machines with levels


NODES = load_machine("a100-ib-nodes")
# three levels, a socket of 4 inside a node of 16, and cori-knl's network and compute table
SOCKETS = dataclasses.replace(CORI, levels=(Level("socket", 4, 4e-7, 60e9),
                                            Level("node", 16, 1.1e-6, 20e9),
                                            Level("network", None, CORI.alpha_s,
                                                  CORI.bandwidth_Bps)))
MAPPING_CHOICES = ["best", "pr-inside", "pc-inside"]


@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("collectives,overlap,mapping", [
    ("paper", "none", "best"), ("paper", "none", "pr-inside"), ("ring", "batch", "pc-inside"),
    ("rabenseifner", "none", "best"), ("flat-ring", "none", "best"),
    ("flat-ring", "batch", "pr-inside")])
def test_explain_equals_engine_on_two_levels(plan_name: str, mapping: str, collectives: str,
                                             overlap: str) -> None:
    # P = 64: 8 nodes of 8; P = 96: 12 nodes, Pr = 3, 6, 12 … straddle nodes; P = 4 < K: one
    # node holds every process
    assert assert_matches_engine(load_network("vgg16"), NODES, 64, 2048, plan_name, overlap,
                                 collectives, "flops", mapping) == 7
    assert_matches_engine(ALEXNET, NODES, 96, 1000, plan_name, overlap, collectives, "flops",
                          mapping)
    assert_matches_engine(TINY, NODES, 36, 30, plan_name, overlap, collectives, "none",
                          mapping)
    assert_matches_engine(TINY, NODES, 4, 7, plan_name, overlap, collectives, "flops", mapping)


@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("mapping", MAPPING_CHOICES)
def test_explain_equals_engine_on_three_levels(plan_name: str, mapping: str) -> None:
    assert_matches_engine(ALEXNET, SOCKETS, 128, 2048, plan_name, "none", "paper", "table",
                          mapping)
    assert_matches_engine(TINY, SOCKETS, 48, 30, plan_name, "batch", "ring", "flops", mapping)
    assert_matches_engine(TINY, SOCKETS, 48, 30, plan_name, "none", "flat-ring", "flops",
                          mapping)


@pytest.mark.parametrize("mapping", MAPPING_CHOICES)
def test_explain_equals_engine_on_levels_under_overlap_backward(mapping: str) -> None:
    # the schedule of every grid runs under the mapping explain shows
    assert_matches_engine(ALEXNET, NODES, 32, 512, "fc-model", "backward", "paper", "flops",
                          mapping)
    assert_matches_engine(TINY, SOCKETS, 48, 30, "domain-batch", "backward", "paper", "flops",
                          mapping)


@st.composite
def small_networks(draw: st.DrawFn) -> Network:
    """0–3 conv layers (kernels 1–5, odd or even, same height and width) then 1–2 fc layers."""
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    channels = draw(st.integers(1, 5))
    layers = []
    for index in range(draw(st.integers(0, 3))):
        kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        out = draw(st.integers(1, 9))
        layers.append(Layer(f"c{index}", "conv", (height, width, channels), (height, width, out),
                            kernel=(kh, kw), padding=(kh // 2, kw // 2),
                            weight_params=kh * kw * channels * out + out))
        channels = out
    inputs = height * width * channels
    for index in range(draw(st.integers(1, 2))):
        units = draw(st.integers(1, 40))
        layers.append(Layer(f"f{index}", "fc", (1, 1, inputs), (1, 1, units),
                            weight_params=inputs * units + units))
        inputs = units
    return Network("random", tuple(layers), layers[0].in_shape,
                   dataset_samples=draw(st.integers(1, 10**6)))


@st.composite
def level_machines(draw: st.DrawFn) -> Machine:
    """2 or 3 levels, domains of any size (powers of two or not), random α and bandwidths."""
    count = draw(st.integers(2, 3))
    sizes = [draw(st.integers(2, 8))]
    if count == 3:
        sizes.append(sizes[0] * draw(st.integers(2, 4)))
    alphas = [draw(st.floats(1e-7, 1e-4)) for _ in range(count)]
    bandwidths = [draw(st.floats(1e8, 1e12)) for _ in range(count)]
    levels = tuple(Level(f"l{k}", sizes[k] if k < count - 1 else None, alphas[k],
                         bandwidths[k]) for k in range(count))
    return Machine("m", alpha_s=alphas[-1], bandwidth_Bps=bandwidths[-1],
                   word_bytes=draw(st.sampled_from([2, 4])), flop_rate=1e12, levels=levels)


@settings(max_examples=120, deadline=None)
@given(small_networks(), level_machines(), st.integers(1, 48), st.integers(0, 47),
       st.integers(1, 64), st.sampled_from(sorted(PLANS)), st.sampled_from(MAPPING_CHOICES),
       st.sampled_from(["paper", "ring", "rabenseifner", "flat-ring"]),
       st.sampled_from(["none", "batch"]))
def test_explain_equals_engine_on_random_levels(network: Network, machine: Machine, P: int,
                                                pick: int, batch: int, plan_name: str,
                                                mapping: str, collectives: str,
                                                overlap: str) -> None:
    divisors = [d for d in range(1, P + 1) if P % d == 0]
    pr = divisors[pick % len(divisors)]
    grids = Grids(np.array([pr]), np.array([P // pr]), np.array([batch]))
    table = evaluate(network, machine, grids, PLANS[plan_name], overlap, collectives,  # type: ignore[arg-type]
                     "flops", mapping=mapping)
    e = explain(network, machine, P, pr, batch, PLANS[plan_name], overlap, collectives,  # type: ignore[arg-type]
                "flops", mapping=mapping)
    assert_grid_agrees(e, network, table, table, 0, (plan_name, mapping, collectives))
    # the per-level lines of a term add up to the flat words: (p−1)/p·n per phase under the
    # paper's forms, whatever the levels (docs/hierarchy.md)
    if collectives == "paper":
        flat = evaluate(network, dataclasses.replace(machine, levels=()), grids,
                        PLANS[plan_name], overlap, collectives, "flops")  # type: ignore[arg-type]
        for i, layer in enumerate(e.layers):
            for t in TERMS:
                assert math.isclose(layer.count(t, "words"), float(flat.term(t).words[0, i]),
                                    rel_tol=1e-12, abs_tol=1e-9)


# one fc layer, 64 inputs → 32 units: |W| = 64·32 + 32 = 2080; d = 32
ONE_FC = Network("one-fc", (Layer("fc", "fc", (1, 1, 64), (1, 1, 32), weight_params=2080),),
                 (1, 1, 64), dataset_samples=1600)
# nodes of 4: α 1 µs, 100 GB/s → β = 4e-11 s/word; network: α 10 µs, 10 GB/s → β = 4e-10
TWO_LEVELS = Machine("two", alpha_s=1e-5, bandwidth_Bps=10e9, word_bytes=4,
                     levels=(Level("node", 4, 1e-6, 100e9), Level("net", None, 1e-5, 10e9)))


def test_two_levels_by_hand() -> None:
    """P = 8 as 2×4, B = 16 (⌈B/Pc⌉ = 4), model-batch, the paper's forms, no compute.

    pr-inside: a Pr pair is ranks {r, r+1}, inside a node (q_node = 2 = Pr): the model term is
    3·(α_n·1 + β_n·4·1/2·32) on the node only.  A Pc group has stride 2: q_node = gcd(4, 4/2) = 2
    of its 4 members per node, so its all-reduce of |W|/Pr = 1040 words is a reduce-scatter +
    all-gather over 2 in the node, 2·(α_n·1 + β_n·1/2·1040), and an all-reduce of 1040/2 words
    over the 2 nodes, 2·(α_net·1 + β_net·1/2·520).
    pc-inside: a Pr pair has stride 4, one member per node (q_node = 1): 3·(α_net·1 +
    β_net·4·1/2·32) across nodes; a Pc group is one node: 2·(α_n·2 + β_n·3/4·1040)."""
    model_pr = 3 * (1e-6 + 4e-11 * 4 * 0.5 * 32)                    # 3.00768e-06
    batch_node_pr = 2 * (1e-6 + 4e-11 * 0.5 * 1040)                  # 2.0416e-06
    batch_net_pr = 2 * (1e-5 + 4e-10 * 0.5 * 520)                   # 2.0208e-05
    model_pc = 3 * (1e-5 + 4e-10 * 4 * 0.5 * 32)                    # 3.00768e-05
    batch_pc = 2 * (2e-6 + 4e-11 * 0.75 * 1040)                      # 4.0624e-06
    assert math.isclose(model_pr + batch_node_pr + batch_net_pr, 2.525728e-05, rel_tol=1e-12)
    assert math.isclose(model_pc + batch_pc, 3.41392e-05, rel_tol=1e-12)
    best = explain(ONE_FC, TWO_LEVELS, 8, 2, 16, plan("model-batch"), compute="none")
    assert best.mapping is not None and best.mapping.used == "pr-inside"  # the cheaper one
    assert close(best.total.seconds, 2.525728e-05)
    assert dict(best.mapping.total_s) == pytest.approx({"pr-inside": 2.525728e-05,
                                                        "pc-inside": 3.41392e-05}, rel=1e-12)
    fc = best.layer("fc")
    model_node, model_net, batch_node, batch_net = fc.lines
    assert (model_node.level, model_net.level, batch_node.level, batch_net.level) == (
        "node", "net", "node", "net")
    assert close(model_node.seconds, 3.00768e-06) and model_net.seconds == 0.0
    assert model_node.formula == "3·(α_node·⌈log2 f_node⌉ + β_node·⌈B/Pc⌉·(f_node−1)/f_node·d_i)"
    assert model_node.substituted == "3·(1e-06·1 + 4e-11·4·1/2·32)"
    assert model_net.note.startswith("the whole Pr group lies in one node block")
    assert close(batch_node.seconds, 2.0416e-06) and close(batch_net.seconds, 2.0208e-05)
    assert batch_node.label == ("fc batch, node level: weight-gradient all-reduce's "
                                "reduce-scatter and all-gather over Pc")
    assert ("q_node", "gcd(Pc, K_node/stride) = gcd(4, 4/2) = 2") in batch_node.bindings
    assert batch_net.formula == ("2·(α_net·⌈log2 f_net⌉ + β_net·(f_net−1)/f_net·|W_i|/Pr/"
                                 "q_node)")
    assert batch_net.substituted == "2·(1e-05·1 + 4e-10·1/2·2080/2/2)"
    assert ("f_net", "q_net/q_node = 4/2 = 2") in batch_net.bindings
    assert fc.routes[1] == ("Pc = 4, stride Pr = 2 (pr-inside): f_node = 2 × f_net = 2 — "
                            "all-reduce: reduce-scatter on node → all-reduce on net → "
                            "all-gather on node")
    forced = explain(ONE_FC, TWO_LEVELS, 8, 2, 16, plan("model-batch"), compute="none",
                     mapping="pc-inside")
    assert forced.mapping is not None and forced.mapping.used == "pc-inside"
    assert close(forced.total.seconds, 3.41392e-05)
    model_node, model_net, batch_node, batch_net = forced.layer("fc").lines
    assert close(model_net.seconds, 3.00768e-05) and model_node.seconds == 0.0
    assert close(batch_node.seconds, 4.0624e-06) and batch_net.seconds == 0.0
    assert model_node.note == "one member of the Pr group per node (q_node = 1): no phase runs on node"
    assert forced.mapping.why("iteration").startswith("forced Pc inside the node")
    text = render_text(forced, "iteration")
    assert "mapping: pc-inside (forced by --mapping pc-inside): rank = c + Pc·r" in text
    assert "  why: forced Pc inside the node: " in text


def test_domain_split_halos_on_levels() -> None:
    """TINY's c1 (3×3 kernel, 9×8×2 → 9×8×5, |W| = 95) on TWO_LEVELS (nodes of 4), Pr inside:
    Pr = 2 lies in one node, so its halos go over the node; Pr = 3 has q_node = gcd(3, 4) = 1,
    so its halos cross nodes.  The weights over all P = 12 (stride 1): 4 per node, 3 nodes."""
    machine = TWO_LEVELS
    inside = explain(TINY, machine, 8, 2, 8, plan("domain-batch"), compute="none",
                     mapping="pr-inside").layer("c1")
    forward = inside.lines[0]
    assert forward.level == "node" and forward.formula == ("α_node + β_node·⌈B/Pc⌉·X_W·X_C·"
                                                           "⌊k_h/2⌋")
    # ⌈8/4⌉ = 2 samples · 8 · 2 · 1 row = 32 words
    assert close(forward.seconds, 1e-6 + 4e-11 * 32)
    across = explain(TINY, machine, 12, 3, 8, plan("domain-batch"), compute="none",
                     mapping="pr-inside").layer("c1")
    forward = across.lines[0]
    # ⌈8/4⌉ = 2 samples · 8 · 2 · 1 row = 32 words, at the network's α, β
    assert forward.level == "net" and close(forward.seconds, 1e-5 + 4e-10 * 32)
    assert dict(forward.bindings)["level"].startswith("net: q_node = 1 < Pr = 3")
    weights = [line for line in across.lines if line.term == "batch"]
    assert [line.level for line in weights] == ["node", "net"]
    assert close(weights[0].seconds, 2 * (2e-6 + 4e-11 * 0.75 * 95))
    assert close(weights[1].seconds, 2 * (2e-5 + 4e-10 * 2 / 3 * 95 / 4))


def test_flat_ring_on_levels_by_hand() -> None:
    # TINY-like check on a100-ib-nodes: fc6 of alexnet at 8×8 pc-inside.  The Pc ring (stride
    # 1, the 8 of one node) stays in the node: 14 steps of α_node and 14/8·|W|/8 words at
    # β_node.  The Pr ring (stride 8: one member per node) crosses the network on every edge:
    # 21 steps of α_network and ⌈2048/8⌉·21/8·4096 words at β_network.
    e = explain(ALEXNET, NODES, 64, 8, 2048, plan("fc-model"), collectives="flat-ring",
                compute="flops", mapping="pc-inside")
    fc6 = e.layer("fc6")
    by_level = {(line.term, line.level): line.seconds for line in fc6.lines}
    a_node, b_node = 2e-6, 2 / 300e9
    a_net, b_net = 5e-6, 2 / 25e9
    params = 9216 * 4096 + 4096
    assert by_level[("batch", "node")] == pytest.approx(14 * a_node + 14 / 8 * params / 8 * b_node,
                                                        rel=1e-12)
    assert by_level[("batch", "network")] == 0.0
    assert by_level[("model", "network")] == pytest.approx(21 * a_net + 256 * 21 / 8 * 4096 * b_net,
                                                           rel=1e-12)
    assert by_level[("model", "node")] == 0.0


def test_levels_refusals_that_still_apply() -> None:
    with pytest.raises(UsageError, match=r"^explain: collectives 'auto' picks per message"):
        explain(ALEXNET, NODES, 64, 8, 2048, plan("fc-model"), collectives="auto")
    with pytest.raises(UsageError, match=r"^all-reduce 'binomial' has no reduce-scatter phase"):
        explain(ALEXNET, NODES, 64, 8, 2048, plan("fc-model"), collectives="binomial")
    with pytest.raises(UsageError, match=r"^explain: on a machine with levels it writes the "
                                         "flat ring for both collectives or for neither"):
        explain(ALEXNET, NODES, 64, 8, 2048, plan("fc-model"),
                collectives="allgather=flat-ring,allreduce=ring")
    gamma = dataclasses.replace(NODES, gamma_s_per_word=1e-10)
    with pytest.raises(UsageError, match=r"^explain: machine 'a100-ib-nodes' charges γ"):
        explain(ALEXNET, gamma, 64, 8, 2048, plan("fc-model"), collectives="ring",
                compute="flops")
    # the paper's forms reduce nothing on any level: explained, equal to the engine
    assert_matches_engine(ALEXNET, gamma, 64, 2048, "fc-model", "none", "paper", "flops")
    with pytest.raises(UsageError, match=r"^mapping 'pc-inside': machine 'cori-knl' has no "
                                         "levels"):
        explain(ALEXNET, CORI, 64, 8, 2048, plan("fc-model"), mapping="pc-inside")


LEVELS_ARGS = ("explain", "--net", "vgg16", "--machine", "a100-ib-nodes", "--P", "64", "--pr",
               "16", "--plan", "fc-model", "--layer", "fc6")


def test_cli_on_levels_text_json_and_markdown() -> None:
    out = run(*LEVELS_ARGS)
    assert out.splitlines()[0].endswith(", mapping pc-inside")
    assert "mapping: pc-inside (the cheaper of both): rank = c + Pc·r" in out
    # the engine's sentence, as `gridcost optimize` prints it under the best grid
    assert ("  why: Pc inside the node: the weight-gradient all-reduces (over Pc, or P for "
            "pure-batch and domain-split layers) take 0.6307 s/epoch (node 0.2513, network "
            "0.3794) against 1.15 s/epoch (node 0.192, network 0.9581) with Pr inside the "
            "node; total 14.96 vs 15.22 s/epoch") in out
    assert "  fc6 model, network level: forward all-gather + backward all-reduce over Pr\n" in out
    assert "= 14.96 s/epoch" in out
    record = json.loads(run(*LEVELS_ARGS, "--format", "json"))
    assert record["mapping"] == "pc-inside" and record["mapping_setting"] == "best"
    assert record["mapping_strides"] == {"pr": 4, "pc": 1}
    assert [level["name"] for level in record["levels"]] == ["node", "network"]
    (fc6,) = record["layers"]
    assert [term["level"] for term in fc6["terms"]] == ["node", "network", "node", "network"]
    assert len(fc6["routes"]) == 2
    assert record == explanation_record(explain(load_network("vgg16"), NODES, 64, 16, 2048,
                                                plan("fc-model"), compute="auto",
                                                layers=["fc6"]))
    forced = json.loads(run(*LEVELS_ARGS, "--mapping", "pr-inside", "--format", "json"))
    assert forced["mapping"] == "pr-inside" and forced["mapping_setting"] == "pr-inside"
    assert forced["total"]["seconds_per_iteration"] == record["mapping_total_s_per_iteration"][
        "pr-inside"]
    md = run(*LEVELS_ARGS, "--format", "markdown")
    assert "- placement: Pr = 16, stride Pc = 4 (pc-inside)" in md


def test_cli_mapping_on_a_flat_machine_is_one_line_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explain", "--net", "alexnet", "--P", "64", "--pr", "8", "--mapping",
                 "pr-inside"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("gridcost: mapping 'pr-inside': machine 'cori-knl' has no levels")
    assert err.count("\n") == 1
