"""The `gridcost` command line: exit codes, exact one-line errors, output formats, JSON contract.

Successful runs go through ``click.testing.CliRunner`` against ``costmodel.cli.cli``.  Errors are
mapped to one line on stderr and exit code 2 by ``costmodel.cli.main``, so error cases call
``main([...])`` and read stderr with ``capsys``.  Bad YAML inputs are written into ``tmp_path``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import fail, run, run_json
from golden import file_difference, text_difference

from costmodel.cli import cli, main

TESTS = Path(__file__).resolve().parent

DIVISORS_512 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
PLAN_NAMES = ["model-batch", "fc-model", "domain-batch", "beyond-batch"]
GRID_KEYS = {"pr", "pc", "feasible", "uneven", "compute_s", "model_comm_s", "batch_comm_s",
             "domain_comm_s", "comm_s", "total_s"}
FAST = ("--net", "alexnet", "--P", "64", "--plan", "fc-model")
"""A quick optimize run: fc-model's scaling sweep stops at P = B = 2048."""
TOP_KEYS = {"net", "machine", "P", "batch", "plan", "unit", "iterations_per_epoch", "grids",
            "best", "scaling_limit"}


# --------------------------------------------------------------------------- helpers








def write(tmp_path: Path, name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write ``text`` to ``tmp_path/name``, chdir there and return the relative name."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return name


TINY_NET = """\
version: 1
name: tiny
input: {height: 8, width: 8, channels: 3}
layers:
"""

TINY_MACHINE = """\
version: 1
name: tiny-machine
alpha: 2 us
flop_rate: 1 TFLOP/s
"""


# --------------------------------------------------------------------------- bad input files


def test_malformed_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    net = write(tmp_path, "malformed.yaml", TINY_NET + "  - {type: conv, filters: 4\n",
                monkeypatch)
    line = fail(capsys, "optimize", "--net", net, "--P", "4")
    assert line.startswith("gridcost: malformed.yaml: expected valid YAML (")
    assert "line 6" in line


def test_unknown_layer_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    net = write(tmp_path, "net.yaml", TINY_NET + "  - {type: conv, filters: 4, kernel: 3}\n"
                "  - {type: convolution, filters: 4, kernel: 3}\n", monkeypatch)
    line = fail(capsys, "optimize", "--net", net, "--P", "4")
    assert line.startswith("gridcost: net.yaml: layers[1].type: expected a layer type (conv, fc,")
    assert line.endswith(", got 'convolution'")


def test_missing_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    net = write(tmp_path, "net.yaml", TINY_NET + "  - {type: conv, kernel: 3}\n", monkeypatch)
    assert fail(capsys, "optimize", "--net", net, "--P", "4") == (
        "gridcost: net.yaml: layers[0].filters: expected this field (it is missing)")


def test_negative_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    net = write(tmp_path, "net.yaml", TINY_NET + "  - {type: conv, filters: -4, kernel: 3}\n",
                monkeypatch)
    assert fail(capsys, "optimize", "--net", net, "--P", "4") == (
        "gridcost: net.yaml: layers[0].filters: expected an integer ≥ 1, got -4")


def test_residual_shape_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    net = write(tmp_path, "net.yaml", TINY_NET + "  - type: residual\n    body:\n"
                "      - {type: conv, filters: 4, kernel: 3, padding: 1}\n", monkeypatch)
    assert fail(capsys, "optimize", "--net", net, "--P", "4") == (
        "gridcost: net.yaml: layers[0]: residual add needs equal shapes, but the body gives "
        "8×8×4 and the shortcut 8×8×3")


def test_bad_unit_in_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    machine = write(tmp_path, "m.yaml", TINY_MACHINE + "bandwidth: 6 GiB/sec\n", monkeypatch)
    line = fail(capsys, "optimize", "--net", "alexnet", "--machine", machine, "--P", "4")
    assert line.startswith("gridcost: m.yaml: bandwidth: expected '<number> <unit>' with unit ")
    assert line.endswith(", got '6 GiB/sec'")


def test_negative_bandwidth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    machine = write(tmp_path, "m.yaml", TINY_MACHINE + "bandwidth: -6 GiB/s\n", monkeypatch)
    assert fail(capsys, "optimize", "--net", "alexnet", "--machine", machine, "--P", "4") == (
        "gridcost: m.yaml: bandwidth: expected a positive bandwidth, got '-6 GiB/s'")


# --------------------------------------------------------------------------- bad options


@pytest.mark.parametrize("value", ["0", "-4", "abc", "2.5"], ids=["zero", "negative", "text",
                                                                   "fraction"])
def test_bad_process_count(capsys: pytest.CaptureFixture[str], value: str) -> None:
    assert fail(capsys, "optimize", "--net", "alexnet", "--P", value) == (
        f"gridcost: --P: expected a positive integer, got '{value}'")


def test_batch_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "--batch", "0") == (
        "gridcost: --batch: expected a positive integer, got '0'")


def test_unknown_plan_suggests_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "--plan", "fc-modle") == (
        "gridcost: unknown plan 'fc-modle'; did you mean 'fc-model'? "
        "(known: all, beyond-batch, domain-batch, fc-model, model-batch, per-layer)")


def test_unknown_bundled_net_suggests_closest(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", "vgg61", "--P", "8")
    assert line.startswith("gridcost: unknown network (neither a file nor a bundled name) 'vgg61'")
    assert "did you mean" in line
    assert "'vgg16'" in line


def test_unknown_machine(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--machine", "cori-kln", "--P", "8")
    assert line == ("gridcost: unknown machine (neither a file nor a bundled name) 'cori-kln'; "
                    "did you mean 'cori-knl'? (known: a100-ib, a100-ib-nodes, cori-knl, ethernet-25g)")


def test_pr_not_dividing_P(capsys: pytest.CaptureFixture[str]) -> None:
    assert fail(capsys, "layers", "--net", "alexnet", "--P", "512", "--pr", "7") == (
        "gridcost: --pr: expected a divisor of P=512, got 7")


def test_plan_without_feasible_grid(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "4096", "--batch", "512",
                "--plan", "fc-model")
    assert line.startswith("gridcost: plan fc-model: no feasible grid for P=4096, B=512 ")
    # why: the convolutions are pure batch, so P cannot exceed B
    assert "Pc=4096 > B=512" in line
    assert "conv1 is pure batch" in line
    # what works: the largest P of this plan, and the plans that do reach P=4096
    assert "this plan reaches at most P=512 at B=512" in line
    assert line.endswith("plans that reach P=4096: model-batch, domain-batch, beyond-batch")


def test_missing_required_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert fail(capsys, "optimize", "--P", "8") == "gridcost: Missing option '--net'."


def test_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "--format", "xml")
    assert line.startswith("gridcost: Invalid value for '--format': 'xml' is not one of ")


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no-such-dir" / "out.txt"
    assert fail(capsys, "optimize", *FAST, "-o", str(target)) == (
        f"gridcost: --output: cannot write '{target}': No such file or directory")
    assert not target.parent.exists()


def test_output_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", *FAST, "-o", str(tmp_path))
    assert line.startswith(f"gridcost: --output: cannot write '{tmp_path}': ")


# --------------------------------------------------------------------------- optimize


def test_optimize_vgg16_lists_every_factorization() -> None:
    out = run("optimize", "--net", "vgg16", "--P", "512")
    lines = out.splitlines()
    assert lines[0].startswith("vgg16 on cori-knl: P=512, B=2048, plan model-batch")
    rows = [line.split() for line in lines[3:3 + len(DIVISORS_512)]]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(d, 512 // d) for d in DIVISORS_512]
    assert out.count("◀ best") == 1
    assert "infeasible: Pr=512 > 64 filters of conv1_1" in out
    assert "best grid: " in out
    assert "scaling limit (B=2048): feasible up to P=" in out


def test_headers_carry_units() -> None:
    epoch = run("optimize", *FAST).splitlines()[1]
    for column in ("compute", "model comm", "batch comm", "domain comm", "total"):
        assert f"{column} [s/epoch]" in epoch
    iteration = run("optimize", *FAST, "--per", "iteration")
    header = iteration.splitlines()[1]
    assert "total [s/iteration]" in header
    assert "[s/epoch]" not in iteration


def _check_grid(grid: dict[str, Any]) -> None:
    assert set(grid) >= GRID_KEYS
    assert isinstance(grid["pr"], int) and isinstance(grid["pc"], int)
    assert isinstance(grid["feasible"], bool) and isinstance(grid["uneven"], bool)
    for key in GRID_KEYS - {"pr", "pc", "feasible", "uneven"}:
        assert grid[key] is None or isinstance(grid[key], float), (key, grid[key])
    if grid["feasible"]:
        terms = grid["model_comm_s"] + grid["batch_comm_s"] + grid["domain_comm_s"]
        assert math.isclose(grid["comm_s"], terms, rel_tol=1e-12)
        assert math.isclose(grid["total_s"], grid["compute_s"] + grid["comm_s"], rel_tol=1e-12)
    else:
        assert isinstance(grid["reason"], str) and grid["reason"]


def test_json_contract() -> None:
    record = run_json("optimize", "--net", "vgg16", "--P", "512")
    assert set(record) >= TOP_KEYS
    assert (record["net"], record["machine"], record["P"], record["batch"], record["plan"]) == (
        "vgg16", "cori-knl", 512, 2048, "model-batch")
    assert record["unit"] == "s/epoch"
    assert record["iterations_per_epoch"] == 1_200_000 / 2048
    grids = record["grids"]
    assert [(g["pr"], g["pc"]) for g in grids] == [(d, 512 // d) for d in DIVISORS_512]
    for grid in grids:
        _check_grid(grid)
    infeasible = [g for g in grids if not g["feasible"]]
    assert [(g["pr"], g["reason"]) for g in infeasible] == [
        (p, f"Pr={p} > 64 filters of conv1_1") for p in (128, 256, 512)]
    best = record["best"]
    _check_grid(best)
    assert best["feasible"]
    assert best["total_s"] == min(g["total_s"] for g in grids if g["feasible"])
    assert isinstance(record["scaling_limit"], dict)
    assert record["scaling_limit"]["feasibility_limit_P"] == 2048 * 64


def test_json_keys_sorted_everywhere() -> None:
    text = run("optimize", *FAST, "--format", "json")

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys)
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)


def test_json_per_iteration_scales_by_iterations_per_epoch() -> None:
    epoch = run_json("optimize", *FAST)
    iteration = run_json("optimize", *FAST, "--per", "iteration")
    assert iteration["unit"] == "s/iteration"
    n = epoch["iterations_per_epoch"]
    for e, i in zip(epoch["grids"], iteration["grids"]):
        assert math.isclose(e["total_s"], i["total_s"] * n, rel_tol=1e-12)


def test_csv_parses() -> None:
    text = run("optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model",
               "--format", "csv")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["Pr", "Pc"]
    assert "total [s/epoch]" in header
    assert [(int(r[0]), int(r[1])) for r in body] == [(d, 512 // d) for d in DIVISORS_512]
    total = header.index("total [s/epoch]")
    assert all(float(r[total]) > 0 for r in body if r[total])


def test_markdown_parses() -> None:
    text = run("optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model",
               "--format", "markdown")
    table = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    header, rule, body = cells[0], cells[1], cells[2:]
    assert "total [s/epoch]" in header
    assert all(set(c) <= set("-:") and c for c in rule)
    assert all(len(row) == len(header) for row in cells)
    assert [(int(r[0]), int(r[1])) for r in body] == [(d, 512 // d) for d in DIVISORS_512]


def test_markdown_has_no_empty_bullets() -> None:
    text = run("optimize", *FAST, "--format", "markdown")
    assert "- " not in text.splitlines()


def test_plan_all_compares_four_plans() -> None:
    out = run("optimize", "--net", "alexnet", "--P", "512", "--plan", "all")
    rows = out.splitlines()[3:8]
    assert [r.split()[0] for r in rows] == [*PLAN_NAMES, "per-layer"]
    assert "total [s/epoch]" in out.splitlines()[1]
    record = run_json("optimize", "--net", "alexnet", "--P", "512", "--plan", "all")
    assert list(record) == ["per_layer", "plans"]
    assert record["per_layer"]["plan"] == "per-layer"
    assert [r["plan"] for r in record["plans"]] == PLAN_NAMES
    for r in record["plans"]:
        assert set(r) >= TOP_KEYS
        _check_grid(r["best"])
    single = run_json("optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model")
    assert record["plans"][1]["best"] == single["best"]


def test_plan_all_reports_an_infeasible_plan_in_its_row() -> None:
    out = run("optimize", "--net", "alexnet", "--P", "4096", "--batch", "512", "--plan", "all")
    fc = next(r for r in out.splitlines() if r.startswith("fc-model"))
    assert "no feasible grid" in fc
    assert fc.split()[-1] == "512"  # its feasibility limit


def test_plan_all_infeasible_plan_keeps_the_json_contract() -> None:
    record = run_json("optimize", "--net", "alexnet", "--P", "4096", "--batch", "512",
                      "--plan", "all")
    keys = [set(r) - {"error", "reason"} for r in record["plans"]]
    assert all(k == keys[0] for k in keys)
    fc = record["plans"][1]
    assert fc["best"] is None
    assert len(fc["grids"]) == 13  # every factorization of 4096, each with feasible: false
    assert not any(g["feasible"] for g in fc["grids"])


# --------------------------------------------------------------------------- layers


def test_layers_sum_to_the_optimize_grid() -> None:
    args = ("--net", "alexnet", "--P", "512", "--plan", "fc-model")
    grid = next(g for g in run_json("optimize", *args)["grids"] if g["pr"] == 16)
    record = run_json("layers", *args, "--pr", "16")
    assert (record["pr"], record["pc"], record["feasible"], record["unit"]) == (
        16, 32, True, "s/epoch")
    layers = record["layers"]
    assert [r["layer"] for r in layers] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6",
                                            "fc7", "fc8"]
    assert [r["split"] for r in layers] == ["batch"] * 5 + ["model"] * 3
    for term in ("model", "batch", "domain"):
        assert math.isclose(sum(r[f"{term}_comm_s"] for r in layers), grid[f"{term}_comm_s"],
                            rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(sum(r["comm_s"] for r in layers), grid["comm_s"], rel_tol=1e-12)
    text = run("layers", *args, "--pr", "16")
    assert text.splitlines()[-1] == f"total communication: {grid['comm_s']:.4g} s/epoch"


def test_layers_word_columns_carry_their_unit() -> None:
    args = ("layers", "--net", "alexnet", "--P", "512", "--pr", "16")
    epoch = run_json(*args)["layers"][0]["batch_words"]
    iteration = run_json(*args, "--per", "iteration")["layers"][0]["batch_words"]
    header = run(*args).splitlines()[1]
    assert epoch == iteration or "[words/epoch]" in header


# --------------------------------------------------------------------------- output, listings


def test_output_file(tmp_path: Path) -> None:
    args = ("optimize", *FAST, "--format", "json")
    target = tmp_path / "out.json"
    assert run(*args, "-o", str(target)) == ""
    assert target.read_text(encoding="utf-8") == run(*args)
    assert run(*args, "-o", "-") == run(*args)


def test_nets_lists_nine_networks() -> None:
    records = run_json("nets")
    assert [r["name"] for r in records] == [
        "alexnet", "alexnet-single", "resnet101", "resnet152", "resnet18", "resnet34",
        "resnet50", "vgg16", "vgg19"]
    assert next(r for r in records if r["name"] == "alexnet")["params"] == 60_965_224
    assert len(run("nets").splitlines()) == 2 + 9


def test_machines_lists_the_bundled_machines() -> None:
    records = run_json("machines")
    assert [r["name"] for r in records] == ["a100-ib", "a100-ib-nodes", "cori-knl",
                                            "ethernet-25g"]
    knl = records[2]
    assert (knl["alpha_s"], knl["bandwidth_Bps"], knl["word_bytes"]) == (2e-6, 6 * 2**30, 4)
    assert len(run("machines").splitlines()) == 2 + 4


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_output_is_deterministic(fmt: str) -> None:
    args = ("optimize", "--net", "alexnet", "--P", "512", "--batch", "128", "--plan", "all",
            "--format", fmt)
    assert run(*args) == run(*args)


def _command_paths() -> list[str]:
    """Every command and subcommand, e.g. 'optimize', 'report grids'."""
    import click

    paths = []
    for name, command in sorted(cli.commands.items()):
        paths.append(name)
        if isinstance(command, click.Group):
            paths += [f"{name} {sub}" for sub in sorted(command.commands)]
    return paths


@pytest.mark.parametrize("command", [None, *_command_paths()])
def test_help_has_an_example(command: str | None) -> None:
    args = [*command.split(), "--help"] if command else ["--help"]
    out = run(*args)
    assert "Example" in out
    assert f"gridcost {command or 'optimize'} " in out or f"gridcost {command}\n" in out


def test_every_command_is_covered_by_the_help_test() -> None:
    assert {"optimize", "layers", "sweep", "nets", "machines"} <= set(cli.commands)


def test_main_returns_zero_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["machines", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert len(json.loads(out)) == 4


# --------------------------------------------------------------------------- golden files


def _golden_module() -> Any:
    spec = importlib.util.spec_from_file_location("regen_golden", TESTS / "regen_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN = _golden_module()


@pytest.mark.parametrize("name", sorted(GOLDEN.GOLDEN))
def test_golden(name: str) -> None:
    path = GOLDEN.GOLDEN_DIR / name
    argv = GOLDEN.GOLDEN[name]
    hint = (f"`gridcost {' '.join(argv)}` differs from {path.relative_to(TESTS.parent)}; if the "
            "change is intended, regenerate with `python tests/regen_golden.py` and review "
            "`git diff tests/data/golden/`")
    assert path.is_file(), hint
    produced, expected = GOLDEN.produce(argv), path.read_text(encoding="utf-8")
    # text exactly, numbers at the precision tests/golden.py states (JSON goldens hold 12
    # significant digits; the last bits of a float differ between machines)
    why = file_difference(name, produced, expected)
    assert why is None, f"{why}\n{hint}"


def test_golden_json_is_written_to_12_significant_digits() -> None:
    """regen_golden rounds a JSON golden's floats (22.363281249999996 → 22.36328125) and keeps
    its layout; text goldens are stored as printed."""
    output = '{\n  "n": 3,\n  "t": 22.363281249999996\n}\n'
    assert GOLDEN.golden_text("x.json", output) == '{\n  "n": 3,\n  "t": 22.36328125\n}\n'
    assert GOLDEN.golden_text("x.txt", "t = 22.363281249999996\n") == "t = 22.363281249999996\n"


# --------------------------------------------------------------------------- collectives


def test_layers_says_which_algorithm_each_collective_used() -> None:
    out = run("layers", "--net", "alexnet", "--P", "512", "--pr", "16", "--plan", "fc-model",
              "--collectives", "auto")
    assert out.splitlines()[0] == ("alexnet on cori-knl: 16×32 grid, B=2048, plan fc-model, "
                                   "collectives auto")
    fc6 = next(line for line in out.splitlines() if line.startswith("fc6"))
    assert ("all-gather Y [bruck] + all-reduce ΔX [rabenseifner] over Pr=16; "
            "all-reduce ΔW over Pc=32 [rabenseifner]") in fc6
    record = run_json("layers", "--net", "alexnet", "--P", "512", "--pr", "16", "--plan",
                      "fc-model", "--collectives", "auto")
    assert record["collectives"] == "auto"
    conv1, fc6_record = record["layers"][0], record["layers"][5]
    assert (conv1["model_allgather_algorithm"], conv1["model_allreduce_algorithm"],
            conv1["batch_allreduce_algorithm"]) == (None, None, "rabenseifner")
    assert fc6_record["model_allgather_algorithm"] == "bruck"


def test_layers_with_the_paper_default_is_unchanged() -> None:
    out = run("layers", "--net", "alexnet", "--P", "512", "--pr", "16", "--plan", "fc-model")
    assert out.splitlines()[0] == "alexnet on cori-knl: 16×32 grid, B=2048, plan fc-model"
    assert "all-gather Y + all-reduce ΔX over Pr=16 [paper]; all-reduce ΔW over Pc=32 [paper]" \
        in out


def test_optimize_names_the_algorithm_set() -> None:
    first = run("optimize", "--net", "alexnet", "--P", "384", "--collectives",
                "rabenseifner").splitlines()[0]
    assert "collectives rabenseifner (all-gather bruck, all-reduce rabenseifner)," in first
    record = run_json("optimize", "--net", "alexnet", "--P", "384", "--collectives",
                      "allgather=ring,allreduce=auto")
    assert record["collectives"] == "allgather=ring,allreduce=auto"
    assert record["collective_algorithms"] == {"allgather": "ring", "allreduce": "auto"}
    assert record["gamma_s_per_word"] == 0.0
    paper = run_json("optimize", "--net", "alexnet", "--P", "384")
    assert "collective_algorithms" not in paper and "gamma_s_per_word" not in paper


def test_profile_selects_collectives_and_the_option_overrides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write(tmp_path, "m.yaml", "version: 1\nname: m\nalpha: 2 us\nbandwidth: 6 GiB/s\n"
                 "flop_rate: 1 TFLOP/s\ngamma: 0.5 ns/word\ncollectives: ring\n", monkeypatch)
    by_profile = run_json("optimize", "--net", "alexnet", "--P", "64", "--machine", name)
    assert by_profile["collectives"] == "ring"
    assert by_profile["gamma_s_per_word"] == 5e-10
    title = run("optimize", "--net", "alexnet", "--P", "64", "--machine", name).splitlines()[0]
    assert title.endswith("collectives ring, γ 0.5 ns/word, compute flops (1 TFLOP/s)")
    overridden = run_json("optimize", "--net", "alexnet", "--P", "64", "--machine", name,
                          "--collectives", "binomial")
    assert overridden["collectives"] == "binomial"
    assert overridden["best"]["total_s"] > by_profile["best"]["total_s"]


@pytest.mark.parametrize(("value", "message"), [
    ("rign", "gridcost: unknown collective algorithm 'rign'; did you mean 'ring'? (known: auto, "
             "binomial, bruck, flat-ring, paper, rabenseifner, recursive-doubling, ring)"),
    ("allreduce=bruck", "gridcost: unknown all-reduce algorithm 'bruck' (known: auto, binomial, "
                        "flat-ring, paper, rabenseifner, recursive-doubling, ring)"),
])
def test_bad_collectives_option(value: str, message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "--collectives",
                value) == message


def test_collectives_help_lists_the_choices() -> None:
    text = " ".join(run("optimize", "--help").split())
    for name in ("paper", "ring", "recursive-doubling", "rabenseifner", "binomial", "bruck",
                 "auto", "allgather=NAME,allreduce=NAME"):
        assert name in text


def test_sweep_names_a_non_paper_selection() -> None:
    out = run("sweep", "--net", "alexnet", "--P", "8,384", "--plan", "fc-model",
              "--collectives", "ring")
    assert out.splitlines()[0] == "alexnet on cori-knl, B=2048, plan fc-model, overlap none, " \
                                  "collectives ring"
    assert run_json("sweep", "--net", "alexnet", "--P", "8,384", "--plan", "fc-model",
                    "--collectives", "auto")["collectives"] == "auto"
    assert "collectives" not in run_json("sweep", "--net", "alexnet", "--P", "8", "--plan",
                                         "fc-model")


def test_readme_example_is_current() -> None:
    """The example output in README.md is exactly what the command prints."""
    readme = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    command = "$ gridcost optimize --net alexnet --P 512 --plan fc-model\n"
    shown = readme.split(command, 1)[1].split("```", 1)[0]
    # text exactly, numbers at the precision tests/golden.py states
    why = text_difference(run("optimize", "--net", "alexnet", "--P", "512", "--plan",
                              "fc-model"), shown)
    assert why is None, f"README.md's example: {why}"
