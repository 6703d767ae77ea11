"""Per-collective α, bandwidth in a machine profile (docs/formats.md ``per_collective``).

Hand-computed seconds on the toy machine of test_cost (α = 2 s, β = 0.5 s/word) with per-kind
fits α_ag = 3 s, β_ag = 1 s/word (4 B/s); α_ar = 1 s, β_ar = 0.25 s/word (16 B/s); α_p2p = 4 s,
β_p2p = 2 s/word (2 B/s): exact arithmetic.  Without the field every result is the flat one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_calibration import exact_series
from test_cli import fail
from test_cost import C1, F1, MACHINE, net, one

from costmodel.engine.cost import evaluate_totals
from costmodel.engine.grids import Grids
from costmodel.engine.plans import PLANS
from costmodel.errors import SpecError
from costmodel.inputs.loaders import _parse, load_machine, load_network, machine_from_document
from costmodel.inputs.specs import Machine
from costmodel.measure.calibration import calibrate, profile_yaml

FITTED = dataclasses.replace(MACHINE, per_collective=(("allgather", 3.0, 4.0),
                                                      ("allreduce", 1.0, 16.0),
                                                      ("p2p", 4.0, 2.0)))


def test_scales() -> None:
    assert FITTED.collective_scales() == {"allgather": (1.5, 2.0), "allreduce": (0.5, 0.5),
                                          "p2p": (2.0, 4.0)}
    assert MACHINE.collective_scales() == {}


def test_model_term_uses_each_collective_fit() -> None:
    # f1 on 4×1, B = 8, n = 8·10 = 80 words: all-gather lg 4·α_ag + 3/4·n·β_ag = 6 + 60 = 66;
    # paper all-reduce 2·(lg 4·α_ar + 3/4·n·β_ar) = 2·(2 + 15) = 34  → 100 s (flat: 102 s)
    t = one(net(F1), 4, 1, 8, machine=FITTED)
    assert t.seconds("model")[0, 0] == 66.0 + 34.0
    assert t.comm_s("model")[0] == 100.0


def test_batch_term_uses_the_allreduce_fit() -> None:
    # f1 on 1×2, B = 8: all-reduce of |W| = 3850 over Pc = 2: 2·(1·α_ar + 1/2·3850·β_ar)
    # = 2·(1 + 481.25) = 964.5 s
    t = one(net(F1), 1, 2, 8, machine=FITTED)
    assert t.seconds("batch")[0, 0] == 964.5
    assert t.comm_s("batch")[0] == 964.5


def test_halo_uses_the_p2p_fit() -> None:
    # c1 domain 2×1, B = 4: halos X: 4·8·2·1 = 64 words, ΔY: 4·8·4·1 = 128 words, each
    # α_p2p + β_p2p·words: (4 + 128) + (4 + 256) = 392 s; weights over P = 2:
    # 2·(α_ar + 1/2·76·β_ar) = 2·(1 + 9.5) = 21 s
    t = one(net(C1), 2, 1, 4, plan="domain-batch", machine=FITTED)
    assert t.seconds("domain")[0, 0] == 392.0
    assert t.seconds("batch")[0, 0] == 21.0


def test_some_kinds_only() -> None:
    # only the all-gather fitted: the all-reduce stays flat, 2·(2·2 + 3/4·80·0.5) = 68
    only = dataclasses.replace(MACHINE, per_collective=(("allgather", 3.0, 4.0),))
    t = one(net(F1), 4, 1, 8, machine=only)
    assert t.seconds("model")[0, 0] == 66.0 + 68.0


def test_flat_profile_is_unchanged_and_totals_agree() -> None:
    network = load_network("alexnet")
    machine = load_machine("cori-knl")
    same = dataclasses.replace(machine, per_collective=(
        ("allgather", machine.alpha_s, machine.bandwidth_Bps),
        ("allreduce", machine.alpha_s, machine.bandwidth_Bps),
        ("p2p", machine.alpha_s, machine.bandwidth_Bps)))
    g = Grids(np.array([1, 2, 4, 8, 16]), np.array([16, 8, 4, 2, 1]), np.full(5, 256))
    for plan in ("model-batch", "domain-batch"):
        flat = evaluate_totals(network, machine, g, PLANS[plan], compute="none")
        fitted = evaluate_totals(network, same, g, PLANS[plan], compute="none")
        np.testing.assert_allclose(fitted.total_s, flat.total_s, rtol=1e-12)
    # the sweep path (evaluate_totals) and the per-layer path agree with fits too
    for plan in ("model-batch", "domain-batch"):
        fast = evaluate_totals(net(C1, F1), FITTED, Grids(np.array([2]), np.array([2]),
                                                          np.array([8])), PLANS[plan],
                               compute="none")
        slow = one(net(C1, F1), 2, 2, 8, plan=plan, machine=FITTED)
        assert fast.total_s[0] == pytest.approx(float(slow.total_comm_s[0]), rel=1e-12)


def test_auto_chooses_with_the_kind_fit() -> None:
    # 'auto' picks the cheapest algorithm on each kind's own α, β: with a huge all-gather α the
    # one-round-fewer algorithm must win where flat α, β would pick by bandwidth
    base = dataclasses.replace(MACHINE, collectives="auto")
    fitted = dataclasses.replace(base, per_collective=(("allgather", 1e6, 8.0),))
    flat_t = one(net(F1), 4, 1, 8, machine=base)
    fit_t = one(net(F1), 4, 1, 8, machine=fitted)
    assert float(fit_t.seconds("model")[0, 0]) > float(flat_t.seconds("model")[0, 0])
    # every candidate all-gather on p = 4 has ≥ 2 latency terms: ≥ 2·1e6 s
    assert float(fit_t.seconds("model")[0, 0]) >= 2e6


MACHINE_YAML = """\
version: 1
name: m
alpha: 2 us
bandwidth: 1 GB/s
flop_rate: 1 TFLOP/s
"""


def _machine(extra: str) -> Machine:
    return machine_from_document(_parse(MACHINE_YAML + extra, "m.yaml"))


def test_loads_per_collective() -> None:
    m = _machine("per_collective:\n  allgather: {alpha: 300 us, bandwidth: 500 MB/s}\n"
                 "  p2p: {alpha: 0, bandwidth: 2 GB/s}\n")
    assert m.per_collective == (("allgather", pytest.approx(300e-6), 500e6), ("p2p", 0.0, 2e9))
    assert _machine("").per_collective == ()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("per_collective: 3\n", "per_collective: expected a mapping {allgather|allreduce|p2p: "
                                "{alpha: TIME, bandwidth: RATE}}, got 3"),
        ("per_collective: {broadcast: {alpha: 1 us, bandwidth: 1 GB/s}}\n",
         "per_collective.broadcast: expected one of the keys allgather, allreduce, p2p "
         "(unknown key)"),
        ("per_collective: {allgather: {alpha: 1 us}}\n",
         "per_collective.allgather.bandwidth: expected this field (it is missing)"),
        ("per_collective: {allgather: {alpha: 1 us, bandwidth: 1 GB/s, beta: 2}}\n",
         "per_collective.allgather.beta: expected one of the keys alpha, bandwidth, "
         "processes (unknown key)"),
        ("per_collective: {allreduce: 5}\n",
         "per_collective.allreduce: expected a mapping, got 'int'"),
    ],
    ids=["not-mapping", "unknown-kind", "missing-bandwidth", "unknown-key", "entry-not-mapping"],
)
def test_bad_per_collective(extra: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _machine(extra)
    assert "\n" not in str(info.value)
    assert str(info.value) == f"m.yaml: {message}"


def test_bad_per_collective_values() -> None:
    with pytest.raises(SpecError, match=r"per_collective\.allgather\.alpha"):
        _machine("per_collective: {allgather: {alpha: 1 parsec, bandwidth: 1 GB/s}}\n")
    with pytest.raises(SpecError, match=r"per_collective\.p2p\.bandwidth"):
        _machine("per_collective: {p2p: {alpha: 1 us, bandwidth: 0 GB/s}}\n")


def test_cli_bad_per_collective_is_one_line_exit_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MACHINE_YAML + "per_collective: {allgather: {alpha: 1 us}}\n",
                    encoding="utf-8")
    line = fail(capsys, "optimize", "--net", "alexnet", "--machine", str(path), "--P", "4")
    assert "per_collective.allgather.bandwidth: expected this field" in line


def test_calibration_writes_each_kind_fit(tmp_path: Path) -> None:
    series = [exact_series("allgather", 2, 300e-6, 8e-9), exact_series("allgather", 4, 300e-6,
                                                                      8e-9),
              exact_series("allreduce", 2, 100e-6, 2e-9), exact_series("allreduce", 4, 100e-6,
                                                                      2e-9),
              exact_series("p2p", 2, 50e-6, 1e-9)]
    cal = calibrate(series)
    kinds = {k: (a, b) for k, a, b in cal.per_collective}
    assert set(kinds) == {"allgather", "allreduce", "p2p"}
    for kind, (alpha, beta) in {"allgather": (300e-6, 8e-9), "allreduce": (100e-6, 2e-9),
                                "p2p": (50e-6, 1e-9)}.items():
        assert kinds[kind][0] == pytest.approx(alpha, rel=1e-5)
        assert kinds[kind][1] == pytest.approx(beta, rel=1e-5)
    path = tmp_path / "host.yaml"
    path.write_text(profile_yaml(cal, "host", 1e10, "test"), encoding="utf-8")
    machine = load_machine(str(path))
    loaded = {k: (a, bw) for k, a, bw in machine.per_collective}
    assert loaded["allgather"][0] == pytest.approx(300e-6, rel=1e-5)
    assert loaded["allgather"][1] == pytest.approx(4 / 8e-9, rel=1e-5)
    assert loaded["p2p"][1] == pytest.approx(4 / 1e-9, rel=1e-5)
    # the joint (flat) α, β are still written and are a compromise between the kinds
    assert 50e-6 < machine.alpha_s < 300e-6


def test_explain_writes_the_per_collective_pair(tmp_path: Path) -> None:
    # explain used to refuse per_collective; it now charges each kind its own α, β
    # (tests/test_explain.py checks it against the engine)
    from cli_helpers import run

    path = tmp_path / "m.yaml"
    path.write_text(MACHINE_YAML + "per_collective: {p2p: {alpha: 1 us, bandwidth: 1 GB/s}}\n",
                    encoding="utf-8")
    out = run("explain", "--net", "alexnet", "--machine", str(path), "--P", "4", "--pr", "2",
              "--plan", "domain-batch", "--layer", "conv2")
    assert "formula:     α_p2p + β_p2p·⌈B/Pc⌉·X_W·X_C·⌊k_h/2⌋" in out
    assert "α_p2p = 1×10⁻⁶ s (per_collective.p2p)" in out


def test_call_ratios_against_the_profile() -> None:
    from costmodel.measure.validation import call_ratios

    log = [{"layer": "c1", "term": "domain", "op": "halo X", "p": 2, "words": 4},
           {"layer": "x", "term": "redistribution", "op": "all-gather", "p": 2, "words": 8},
           {"layer": "f1", "term": "model", "op": "all-gather", "p": 2, "words": 8}]
    # slowest rank per iteration: halo 4, 8, 16 s; all-gather 8, 4, 12 s
    ranks = [{"log": log, "iterations": [{"call_s": c} for c in ([4, 1, 8], [8, 1, 2],
                                                                  [12, 1, 12])]},
             {"log": log, "iterations": [{"call_s": c} for c in ([2, 1, 1], [8, 1, 4],
                                                                  [16, 1, 3])]}]
    # flat (α = 2 s, β = 0.5 s/word): halo α + β·4 = 4 s; all-gather α·1 + β·(1/2)·8 = 4 s
    fastest, median = call_ratios(ranks, MACHINE)
    assert fastest == [1.0, 1.0] and median == [2.0, 2.0]
    # fitted: halo α_p2p + β_p2p·4 = 4 + 8 = 12 s; all-gather 3 + 1·4 = 7 s
    fastest, median = call_ratios(ranks, FITTED)
    assert fastest == [4 / 12, 4 / 7] and median == [8 / 12, 8 / 7]
    # records without per-call times (older runs): nothing to compare
    assert call_ratios([{"log": log, "iterations": [{}]}], MACHINE) == ([], [])


def test_per_collective_and_levels_do_not_combine() -> None:
    with pytest.raises(SpecError) as info:
        _machine("levels:\n  - {name: node, processes: 2, alpha: 1 us, bandwidth: 10 GB/s}\n"
                 "  - {name: network}\n"
                 "per_collective: {p2p: {alpha: 1 us, bandwidth: 1 GB/s}}\n")
    assert "per_collective: expected no per_collective together with levels" in str(info.value)
