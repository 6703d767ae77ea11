"""Memory per process (costmodel/engine/memory.py, docs/memory.md): hand-computed bytes, monotonicity, a
scalar twin, the memory check in evaluate/optimize/sweep, and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import fail, run
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.cost import OUT_OF_MEMORY, evaluate, evaluate_totals
from costmodel.engine.grids import Grids, factorizations
from costmodel.engine.memory import (
    COMPONENTS,
    GIB,
    MemoryCheck,
    memory_reason,
    memory_table,
    optimizer_bytes,
)
from costmodel.engine.plans import PLANS, plan
from costmodel.errors import SpecError, UsageError
from costmodel.inputs.loaders import (
    load_machine,
    load_network,
    machine_from_document,
    read_document,
)
from costmodel.inputs.specs import Layer, Machine, Network
from costmodel.planning.search import (
    Settings,
    grid_code,
    optimize,
    reason,
    scaling_limits,
    smallest_fitting_processes,
    sweep,
)

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"

CONV = Layer("c1", "conv", (8, 8, 3), (8, 8, 4), kernel=(3, 3), padding=(1, 1),
             weight_params=3 * 4 * 9 + 4)
FC = Layer("f1", "fc", (1, 1, 256), (1, 1, 10), weight_params=256 * 10 + 10)
TINY = Network("tiny", (CONV, FC), (8, 8, 3), dataset_samples=1000)
MACHINE = Machine("m", alpha_s=1e-6, bandwidth_Bps=1e9, word_bytes=4, memory_bytes=GIB)


def one_grid(pr: int, pc: int, batch: int) -> Grids:
    return Grids(np.array([pr]), np.array([pc]), np.array([batch]))


def components(plan_name: str, pr: int, pc: int, batch: int,
               optimizer: float = 8.0) -> dict[str, list[float]]:
    table = memory_table(TINY, one_grid(pr, pc, batch), plan(plan_name), 4, optimizer)
    return {c: [float(v) for v in table.layer(c)[0]] for c in COMPONENTS}


# --------------------------------------------------------------------------- hand-computed bytes


def test_model_split_by_hand() -> None:
    """Pr=2, Pc=3, B=7: 3 local samples; each layer keeps half its filters/units."""
    got = components("model-batch", 2, 3, 7)
    # c1: 112 params, shard ⌈4/2⌉/4 = 1/2 → 56; f1: 2570 params, shard ⌈10/2⌉/10 → 1285
    assert got["weights"] == [56 * 4, 1285 * 4]
    assert got["gradients"] == [56 * 4, 1285 * 4]
    assert got["optimizer"] == [56 * 8, 1285 * 8]
    # c1: full input 8·8·3 = 192 + output shard 8·8·2 = 128; f1: 256 + 5; × 3 samples × 4 B
    assert got["activations"] == [(192 + 128) * 3 * 4, (256 + 5) * 3 * 4]
    # c1: all-gathered output 3·256 = 768 > shard all-reduce 56; f1: 1285 > 3·10
    assert got["buffer"] == [768 * 4, 1285 * 4]
    total = memory_table(TINY, one_grid(2, 3, 7), plan("model-batch"), 4, 8.0).total[0]
    assert total == (56 + 1285) * (4 + 4 + 8) + (320 + 261) * 12 + 1285 * 4


def test_batch_split_by_hand() -> None:
    """Pr=1, Pc=6, B=7: ⌈7/6⌉ = 2 samples, all parameters, the gradient all-reduce buffer."""
    got = components("model-batch", 1, 6, 7, optimizer=4.0)
    assert got["weights"] == [112 * 4, 2570 * 4]
    assert got["optimizer"] == [112 * 4, 2570 * 4]
    assert got["activations"] == [(192 + 256) * 2 * 4, (256 + 10) * 2 * 4]
    assert got["buffer"] == [112 * 4, 2570 * 4]
    single = components("model-batch", 1, 1, 7, optimizer=0.0)
    assert single["buffer"] == [0.0, 0.0]  # one process: no collective
    assert single["optimizer"] == [0.0, 0.0]


def test_domain_split_by_hand() -> None:
    """Pr=2, Pc=3, B=7, conv split by height: strip of 4 rows + 2 halo rows in, 4 rows out."""
    got = components("domain-batch", 2, 3, 7)
    assert got["weights"][0] == 112 * 4  # every process keeps all of W
    assert got["activations"][0] == (6 * 8 * 3 + 4 * 8 * 4) * 3 * 4
    # halos 3·8·3·1 = 72 (in) and 3·8·4·1 = 96 (out) < the weight all-reduce of 112 words
    assert got["buffer"][0] == 112 * 4
    thin = components("domain-batch", 8, 1, 100)
    # one row per strip + 2 halo rows; the halo (100·8·4 = 3200 words) beats |W| = 112
    assert thin["activations"][0] == (3 * 8 * 3 + 1 * 8 * 4) * 100 * 4
    assert thin["buffer"][0] == 3200 * 4
    whole = components("domain-batch", 1, 1, 1)
    assert whole["activations"][0] == (192 + 256) * 4  # Pr = 1: no halo rows


def test_total_takes_the_largest_buffer_not_the_sum() -> None:
    table = memory_table(TINY, one_grid(2, 3, 7), plan("model-batch"), 4, 0.0)
    assert table.component("buffer")[0] == table.layer("buffer")[0].max()
    assert table.component("activations")[0] == table.layer("activations")[0].sum()


def test_optimizer_names_and_numbers() -> None:
    assert optimizer_bytes("sgd") == 0 and optimizer_bytes("momentum") == 4
    assert optimizer_bytes("Adam") == 8 and optimizer_bytes("12") == 12
    for bad in ("lion", "-1", "nan", "inf", ""):
        with pytest.raises(UsageError, match="expected sgd, momentum, adam or a number"):
            optimizer_bytes(bad)


# --------------------------------------------------------------------------- monotonicity


def test_more_pr_means_fewer_weight_bytes_in_model_layers() -> None:
    network = load_network("alexnet")
    grids = factorizations(512, 2048)
    table = memory_table(network, grids, plan("model-batch"), 4, 8.0)
    for c in ("weights", "gradients", "optimizer"):
        per_layer = table.layer(c)
        assert (np.diff(per_layer, axis=0) <= 0).all()
        assert per_layer[-1].sum() < per_layer[0].sum()


def test_more_pc_means_fewer_activation_bytes() -> None:
    network = load_network("vgg16")
    for name in ("model-batch", "domain-batch"):
        for pr in (1, 2, 4):
            pcs = np.array([1, 2, 4, 8, 16, 64, 256])
            grids = Grids(np.full(pcs.shape, pr), pcs, np.full(pcs.shape, 512))
            act = memory_table(network, grids, plan(name), 4).layer("activations")
            assert (np.diff(act, axis=0) <= 0).all()
            assert act[-1].sum() < act[0].sum()


# --------------------------------------------------------------------------- scalar twin


def reference_bytes(network: Network, pr: int, pc: int, batch: int, plan_name: str,
                    word: int, opt: float) -> float:
    """Plain-Python total bytes per process of one grid (docs/memory.md), layer by layer."""
    p = pr * pc
    rule = PLANS[plan_name]
    total, buffer = 0.0, 0.0
    for layer in network.layers:
        kind = rule.conv if layer.kind == "conv" else rule.fc
        lpr, lpc, domain = pr, pc, False
        if kind == "pure-batch":
            lpr, lpc = 1, p
        elif kind == "grid-domain":
            domain = True
        elif kind == "beyond-batch":
            share = max(d for d in range(1, p + 1) if p % d == 0 and d <= batch)
            lpr, lpc, domain = p // share, share, True
        s = math.ceil(batch / lpc)
        xh, xw, xc = layer.in_shape
        yh, yw, yc = layer.out_shape
        if domain:
            held = layer.params
            halo = 2 * layer.halo_rows[0] if lpr > 1 else 0
            act = min(xh, math.ceil(xh / lpr) + halo) * xw * xc + math.ceil(yh / lpr) * yw * yc
            messages = [layer.params if p > 1 else 0]
            if lpr > 1:
                messages += [s * xw * xc * layer.halo_rows[0], s * yw * yc * layer.halo_rows[1]]
        else:
            share_f = math.ceil(layer.split_size / lpr) / layer.split_size
            held = share_f * layer.params
            act = xh * xw * xc + share_f * layer.activations
            messages = [held if lpc > 1 else 0, s * layer.activations if lpr > 1 else 0]
        total += held * (2 * word + opt) + s * act * word
        buffer = max(buffer, max(messages) * word)
    return total + buffer


@settings(max_examples=40, deadline=None)
@given(net=st.sampled_from(["alexnet", "vgg16", "resnet18"]),
       plan_name=st.sampled_from(sorted(PLANS)),
       log_p=st.integers(0, 11), batch=st.integers(1, 4096),
       opt=st.sampled_from([0.0, 4.0, 8.0, 12.0]), word=st.sampled_from([2, 4]))
def test_memory_matches_the_scalar_twin(net: str, plan_name: str, log_p: int, batch: int,
                                        opt: float, word: int) -> None:
    network = load_network(net)
    grids = factorizations(2**log_p, batch)
    table = memory_table(network, grids, plan(plan_name), word, opt)
    unique = memory_table(network, grids, plan(plan_name), word, opt, unique=True)
    for g in range(len(grids)):
        want = reference_bytes(network, int(grids.pr[g]), int(grids.pc[g]), batch, plan_name,
                               word, opt)
        assert math.isclose(table.total[g], want, rel_tol=1e-12)
        assert math.isclose(unique.total[g], want, rel_tol=1e-12)


# --------------------------------------------------------------------------- the check


def test_grids_that_do_not_fit_are_infeasible_with_the_reason() -> None:
    network = load_network("vgg16")
    machine = load_machine("ethernet-25g")
    check = MemoryCheck(machine.memory_bytes or 0.0, 8.0)
    table = evaluate(network, machine, factorizations(16, 2048), plan("model-batch"),
                     memory=check)
    total = table.memory.total
    assert (table.feasible == (total <= 16 * GIB)).all()
    assert table.feasible[0] and not table.feasible[1]
    assert grid_code(table, 1) == OUT_OF_MEMORY and grid_code(table, 0) == 0
    assert reason(table, 1) == memory_reason(float(total[1]), 16 * GIB)
    assert reason(table, 1) == f"needs {total[1] / GIB:.4g} GiB per process > memory 16 GiB"


def test_layer_reasons_come_before_memory() -> None:
    network = load_network("alexnet")
    table = evaluate(network, MACHINE, factorizations(512, 2048), plan("model-batch"),
                     memory=MemoryCheck(1.0))  # 1 byte: nothing fits
    assert not table.feasible.any()
    assert reason(table, len(table.grids) - 1) == "Pr=512 > 96 filters of conv1"
    assert reason(table, 0).startswith("needs ")


def test_without_a_check_nothing_changes() -> None:
    network = load_network("alexnet")
    machine = load_machine("cori-knl")
    grids = factorizations(512, 2048)
    for name in PLANS:
        plain = evaluate(network, machine, grids, plan(name))
        checked = evaluate(network, machine, grids, plan(name),
                           memory=MemoryCheck(machine.memory_bytes or 0.0, 8.0))
        assert (plain.feasible == checked.feasible).all()
        assert (plain.total_s == checked.total_s).all()
        assert plain.memory_check is None and plain.memory_fits.all()


def test_totals_path_agrees() -> None:
    network = load_network("resnet50")
    grids = factorizations(64, 256)
    for capacity, name in ((0.8, "model-batch"), (0.8, "domain-batch"), (0.695, "fc-model"),
                           (0.695, "beyond-batch")):
        check = MemoryCheck(capacity * GIB, 8.0)
        full = evaluate(network, MACHINE, grids, plan(name), compute="none", memory=check)
        totals = evaluate_totals(network, MACHINE, grids, plan(name), compute="none",
                                 memory=check)
        assert (full.feasible == totals.feasible).all()
        assert full.feasible.any() and not full.feasible.all()


# --------------------------------------------------------------------------- largest batch, P


@pytest.mark.parametrize("plan_name", ["model-batch", "fc-model", "domain-batch"])
@pytest.mark.parametrize("opt", [0.0, 8.0])
def test_largest_per_process_batch_matches_brute_force(plan_name: str, opt: float) -> None:
    network = load_network("alexnet")
    capacity = 0.75 * GIB
    P = 16
    grids = factorizations(P, 2048)
    table = memory_table(network, grids, plan(plan_name), 4, opt)
    largest = table.largest_local_batch(capacity)
    for g in range(len(grids)):
        pr, pc = int(grids.pr[g]), int(grids.pc[g])
        b = np.arange(1, 400)  # every candidate at once: grid pr×pc at B = b·P
        tried = Grids(np.full(b.shape, pr), np.full(b.shape, pc), b * P)
        totals = memory_table(network, tried, plan(plan_name), 4, opt).total
        fits = b[totals <= capacity]
        brute = int(fits.max()) if fits.size else 0
        assert brute < 399  # the search range was wide enough
        assert largest[g] == brute, (pr, pc)


def test_largest_batch_is_zero_when_the_weights_alone_do_not_fit() -> None:
    table = memory_table(load_network("vgg16"), factorizations(4, 64), plan("model-batch"), 4,
                         8.0)
    assert (table.largest_local_batch(0.5 * GIB) == 0).all()


@pytest.mark.parametrize("plan_name", sorted(PLANS))
def test_smallest_fitting_P_matches_brute_force(plan_name: str) -> None:
    batch = 8
    check = MemoryCheck(40_000.0, 4.0)
    found = smallest_fitting_processes(TINY, MACHINE, batch, plan(plan_name), check)
    brute = None
    for P in range(1, found.searched_up_to + 1):
        opt = optimize(TINY, MACHINE, P, batch, plan(plan_name), Settings(compute="none",
                       memory=check), with_limits=False, allow_infeasible=True)
        if opt.best is not None:
            first = int(np.flatnonzero(opt.table.feasible)[0])
            brute = (P, int(opt.table.grids.pr[first]), int(opt.table.grids.pc[first]))
            break
    assert brute is not None and brute[0] > 1  # the capacity binds
    assert (found.processes, found.pr, found.pc) == brute


def test_smallest_fitting_P_none_when_nothing_fits() -> None:
    found = smallest_fitting_processes(TINY, MACHINE, 8, plan("fc-model"), MemoryCheck(1.0))
    assert found.processes is None and found.searched_up_to == 8


def test_sweep_and_scaling_limits_respect_memory() -> None:
    network = load_network("vgg16")
    machine = load_machine("cori-knl")  # 96 GiB: VGG-16 at B=2048 needs 174 GiB on one process
    check = MemoryCheck(machine.memory_bytes or 0.0)
    result = sweep(network, machine, np.array([1, 2, 4]), np.full(3, 2048), plan("fc-model"),
                   Settings(memory=check))
    assert list(result.feasible) == [False, True, True]
    limits = scaling_limits(network, machine, 2048, plan("fc-model"), Settings(memory=check),
                            largest=64)
    assert math.isnan(limits.efficiency[0]) or not np.isfinite(limits.sweep.total_s[0])
    assert limits.efficiency[1] == 1.0  # relative to the first feasible P


# --------------------------------------------------------------------------- paper settings


def test_paper_settings_unchanged_under_the_check() -> None:
    """AlexNet, B=2048, P=512 on cori-knl (96 GiB), every plan: all grids that were feasible
    still are, with the same costs, best grid and scaling limits."""
    network, machine = load_network("alexnet"), load_machine("cori-knl")
    check = MemoryCheck(machine.memory_bytes or 0.0, 8.0)
    for name in PLANS:
        plain = optimize(network, machine, 512, 2048, plan(name), Settings(compute="table"),
                         allow_infeasible=True)
        checked = optimize(network, machine, 512, 2048, plan(name),
                           Settings(compute="table", memory=check), allow_infeasible=True)
        assert (plain.table.feasible == checked.table.feasible).all()
        assert plain.best == checked.best
        assert plain.limits is not None and checked.limits is not None
        assert (plain.limits.sweep.total_s == checked.limits.sweep.total_s).all()
        assert plain.limits.efficiency_processes == checked.limits.efficiency_processes
        assert checked.fitting is not None and checked.fitting.processes == 1




def test_cli_paper_json_is_the_golden_file_plus_memory_keys() -> None:
    args = ["optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model", "--format",
            "json"]
    golden = json.loads((GOLDEN / "optimize_alexnet_P512_fc-model.json").read_text("utf-8"))
    plain = json.loads(run(*args))
    assert plain.keys() == golden.keys()  # default: no check, no new keys
    assert [g.keys() for g in plain["grids"]] == [g.keys() for g in golden["grids"]]
    checked: dict[str, Any] = json.loads(run(*args, "--memory-check"))
    memory = checked.pop("memory")
    for grid in checked["grids"]:
        assert grid.pop("memory_bytes") > 0
    checked["best"].pop("memory_bytes")
    assert checked == plain
    assert memory["capacity_bytes"] == 96 * GIB and memory["optimizer_bytes_per_param"] == 0
    assert memory["best"]["fits"] and memory["smallest_fitting_P"] == 1
    assert memory["best"]["total_bytes"] == sum(memory["best"][f"{c}_bytes"]
                                                for c in COMPONENTS)


def test_cli_text_lines() -> None:
    out = run("optimize", "--net", "vgg16", "--machine", "ethernet-25g", "--P", "16",
              "--optimizer", "adam")
    assert "memory [GiB/process]" in out.splitlines()[1]
    assert "infeasible: needs 19.25 GiB per process > memory 16 GiB" in out
    assert ("memory per process (limit 16 GiB, optimizer adam (8 B/param), 4-byte words):"
            in out)
    assert "  smallest P that fits at B=2,048: P=13 (1×13; every P ≤ 131,072 searched)" in out
    assert "largest per-process batch that fits: 160 (B=2,560)" in out
    off = run("optimize", "--net", "vgg16", "--machine", "ethernet-25g", "--P", "16",
              "--optimizer", "adam", "--no-memory-check")
    assert "memory" not in off and "infeasible" not in off


def test_cli_layers_memory_columns() -> None:
    record = json.loads(run("layers", "--net", "alexnet", "--P", "512", "--pr", "16", "--plan",
                            "fc-model", "--optimizer", "adam", "--format", "json"))
    fc6 = record["layers"][5]
    assert fc6["weights_bytes"] == math.ceil(4096 / 16) / 4096 * 37752832 * 4
    assert fc6["optimizer_bytes"] == 2 * fc6["weights_bytes"]
    text = run("layers", "--net", "alexnet", "--P", "512", "--pr", "16", "--plan", "fc-model")
    header = text.splitlines()[1]
    assert all(f"{c} [MiB]" in header for c in COMPONENTS)
    assert text.splitlines()[-2].startswith("memory per process: ")




@pytest.mark.parametrize("value", ["lion", "-4", "nan"])
def test_cli_bad_optimizer(capsys: pytest.CaptureFixture[str], value: str) -> None:
    assert fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "--optimizer", value) == (
        "gridcost: --optimizer: expected sgd, momentum, adam or a number of bytes per "
        "parameter from 0 to 1024 (256 float32 words of state per parameter, beyond any "
        f"optimizer), got {value!r}")


def test_cli_check_needs_a_memory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "nomem.yaml"
    path.write_text("version: 1\nname: nomem\nalpha: 1 us\nbandwidth: 1 GB/s\n"
                    "flop_rate: 1 TFLOP/s\n", encoding="utf-8")
    assert fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "--machine", str(path),
                "--memory-check") == (
        "gridcost: --memory-check: machine 'nomem' has no 'memory' (bytes per process); add "
        "e.g. 'memory: 16 GiB' to its profile")
    run("optimize", "--net", "alexnet", "--P", "8", "--machine", str(path))  # off: fine


def machine_yaml(tmp_path: Path, optimizer: str) -> Machine:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\nname: m\nalpha: 1 us\nbandwidth: 1 GB/s\nflop_rate: 1 TFLOP/s\n"
                    f"memory: 1 GiB\noptimizer: {optimizer}\n", encoding="utf-8")
    return machine_from_document(read_document(str(path), "machines"))


def test_machine_optimizer_key(tmp_path: Path) -> None:
    assert machine_yaml(tmp_path, "adam").optimizer_bytes_per_param == 8
    assert machine_yaml(tmp_path, "12").optimizer_bytes_per_param == 12
    assert machine_yaml(tmp_path, "2.5").optimizer_bytes_per_param == 2.5
    for bad in ("lion", "-1", "true", "'8'"):
        with pytest.raises(SpecError) as info:
            machine_yaml(tmp_path, bad)
        assert str(info.value).startswith(
            f"{tmp_path / 'm.yaml'}: optimizer: expected one of sgd, momentum, adam or a number "
            "of bytes per parameter ≥ 0, got ")


def test_cli_bad_machine_optimizer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    machine_path = tmp_path / "m.yaml"
    machine_path.write_text("version: 1\nname: m\nalpha: 1 us\nbandwidth: 1 GB/s\n"
                            "flop_rate: 1 TFLOP/s\noptimizer: lion\n", encoding="utf-8")
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "--machine",
                str(machine_path))
    assert line.endswith("optimizer: expected one of sgd, momentum, adam or a number of bytes "
                         "per parameter ≥ 0, got 'lion'")


def test_profile_optimizer_is_the_default(tmp_path: Path) -> None:
    machine_path = tmp_path / "m.yaml"
    machine_path.write_text("version: 1\nname: m\nalpha: 1 us\nbandwidth: 1 GB/s\n"
                            "flop_rate: 1 TFLOP/s\nmemory: 64 GiB\noptimizer: momentum\n",
                            encoding="utf-8")
    record = json.loads(run("optimize", "--net", "alexnet", "--P", "8", "--machine",
                            str(machine_path), "--memory-check", "--format", "json"))
    assert record["memory"]["optimizer_bytes_per_param"] == 4
    assert "memory" not in json.loads(run("optimize", "--net", "alexnet", "--P", "8",
                                          "--machine", str(machine_path), "--format", "json"))
