"""Which network a measured compute table applies to (docs/formats.md, "compute"): by the
fingerprint of the layers it was measured on, never by the network's name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import fail, run_json

from costmodel.engine.cost import compute_per_iteration_s
from costmodel.engine.grids import factorizations
from costmodel.errors import SpecError, UsageError
from costmodel.inputs.loaders import _parse, load_machine, load_network, machine_from_document
from costmodel.inputs.specs import ComputeTable

ROOT = Path(__file__).resolve().parent.parent
ALEXNET = (ROOT / "networks" / "alexnet.yaml").read_text(encoding="utf-8")

MACHINE = """\
version: 1
name: m
alpha: 2 us
bandwidth: 6 GiB/s
flop_rate: 1 TFLOP/s
"""


def _renamed(tmp_path: Path) -> Path:
    path = tmp_path / "my-alexnet.yaml"
    path.write_text(ALEXNET.replace("name: alexnet\n", "name: my-alexnet\n"), encoding="utf-8")
    return path


def _changed_same_name(tmp_path: Path) -> Path:
    # conv3 with 320 filters instead of 384; the published count no longer holds
    text = ALEXNET.replace("name: conv3, filters: 384", "name: conv3, filters: 320")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("parameters:"))
    assert "filters: 320" in text
    path = tmp_path / "alexnet.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _compute(net: str, P: int = 64) -> tuple[float, str]:
    record = run_json("optimize", "--net", net, "--P", str(P))
    return record["best"]["compute_s"], record["compute_model"]


# ----------------------------------------------------------------------- the fingerprint


def test_fingerprint_ignores_names_and_the_dataset(tmp_path: Path) -> None:
    alexnet = load_network("alexnet")
    copy = load_network(str(_renamed(tmp_path)))
    assert copy.name != alexnet.name and copy.fingerprint == alexnet.fingerprint
    renamed_layers = dataclasses.replace(
        alexnet, layers=tuple(dataclasses.replace(layer, name=f"x{i}")
                              for i, layer in enumerate(alexnet.layers)),
        dataset_samples=1000)
    assert renamed_layers.fingerprint == alexnet.fingerprint
    assert len(alexnet.fingerprint) == 16 and int(alexnet.fingerprint, 16) >= 0


@pytest.mark.parametrize("change", ["kernel", "stride", "padding", "groups", "weight_params",
                                    "order"])
def test_fingerprint_changes_with_any_layer_fact(change: str) -> None:
    alexnet = load_network("alexnet")
    layers = list(alexnet.layers)
    first = layers[0]
    if change == "order":
        layers[0], layers[1] = layers[1], layers[0]
    elif change == "weight_params":
        layers[0] = dataclasses.replace(first, weight_params=first.weight_params + 1)
    else:
        value = getattr(first, change)
        bumped = value + 1 if isinstance(value, int) else (value[0] + 1, value[1])
        layers[0] = dataclasses.replace(first, **{change: bumped})
    assert dataclasses.replace(alexnet, layers=tuple(layers)).fingerprint != alexnet.fingerprint


def test_bundled_tables_pin_the_bundled_alexnet() -> None:
    # if networks/alexnet.yaml changes, this fails: re-measure, or restate the fingerprint
    machine = load_machine("cori-knl")
    fingerprint = load_network("alexnet").fingerprint
    assert [t.fingerprint for t in machine.compute_tables] == [fingerprint, fingerprint]
    assert [t.samples for t in machine.compute_tables] == [1_200_000, 1_200_000]


# ----------------------------------------------------------------------- the CLI


def test_a_renamed_copy_keeps_the_measured_times(tmp_path: Path) -> None:
    seconds, model = _compute("alexnet")
    assert seconds == pytest.approx(55.88365294087015, rel=1e-9)
    assert model == "table 'paper-figures' (alexnet)"
    assert _compute(str(_renamed(tmp_path))) == (seconds, model)


def test_a_changed_network_with_the_same_name_does_not_use_the_table(tmp_path: Path) -> None:
    path = _changed_same_name(tmp_path)
    seconds, model = _compute(str(path))
    network = load_network(str(path))
    flops = 2048 * 6.0 * network.macs / (64 * 2.33e12) * 1_200_000 / 2048
    assert seconds == pytest.approx(flops, rel=1e-12)
    assert model == ("flops (2.33 TFLOP/s), as compute table 'paper-figures' of machine "
                     "'cori-knl' does not apply to network 'alexnet' (measured on alexnet, "
                     "different layers)")


def test_another_network_says_nothing_about_the_table() -> None:
    assert _compute("vgg16")[1] == "flops (2.33 TFLOP/s)"


def test_forcing_a_table_that_does_not_apply_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", str(_changed_same_name(tmp_path)), "--P", "64",
                "--compute", "table")
    assert line == ("gridcost: compute table 'paper-figures' of machine 'cori-knl' does not "
                    "apply to network 'alexnet' (measured on alexnet, different layers); use "
                    "--compute flops")


# ----------------------------------------------------------------------- machine files


def _table_machine(tmp_path: Path, entry: str) -> ComputeTable:
    path = tmp_path / "m.yaml"
    path.write_text(MACHINE + "compute: {tables: {t: {" + entry
                    + ", epoch_time: {1: 100 s, 4: 30 s}}}}\n", encoding="utf-8")
    table = load_machine(str(path)).table()
    assert table is not None
    return table


def test_a_table_names_a_network_file_beside_the_machine(tmp_path: Path) -> None:
    _renamed(tmp_path)
    table = _table_machine(tmp_path, "network: my-alexnet.yaml")
    assert table.network == "my-alexnet"
    assert table.fingerprint == load_network("alexnet").fingerprint
    assert table.samples == 1_200_000
    assert table.mismatch(load_network("alexnet")) is None
    assert table.mismatch(load_network("vgg16")) == "measured on my-alexnet, different layers"


def test_a_stated_fingerprint_and_samples(tmp_path: Path) -> None:
    table = _table_machine(tmp_path, "network: ours, fingerprint: 0123456789abcdef, "
                                     "samples: 5000")
    assert (table.network, table.fingerprint, table.samples) == (
        "ours", "0123456789abcdef", 5000)


@pytest.mark.parametrize(("entry", "message"), [
    ("network: tiny",
     "compute.tables.t.network: expected a bundled network (alexnet, alexnet-single, resnet101, "
     "resnet152, resnet18, resnet34, resnet50, vgg16, vgg19), a network file ending in .yaml, "
     "or a `fingerprint` beside it, got 'tiny'"),
    ("network: nowhere.yaml",
     "compute.tables.t.network: expected the network file the table was measured on (relative "
     "to the folder of m.yaml), or a `fingerprint`, got 'nowhere.yaml (no such file)'"),
    ("network: x, fingerprint: 12ab",
     "compute.tables.t.fingerprint: expected 16 lowercase hex digits, the network's "
     "`network_fingerprint` in `gridcost optimize --format json`, got '12ab'"),
    ("network: alexnet, samples: 0",
     "compute.tables.t.samples: expected an integer ≥ 1, got 0"),
], ids=["unknown-name", "missing-file", "short-fingerprint", "zero-samples"])
def test_bad_table_networks(entry: str, message: str) -> None:
    text = MACHINE + "compute: {tables: {t: {" + entry + ", epoch_time: {1: 100 s, 4: 30 s}}}}\n"
    with pytest.raises(SpecError) as info:
        machine_from_document(_parse(text, "m.yaml"))
    assert str(info.value) == f"m.yaml: {message}"


def test_per_sample_time_follows_the_measured_epochs() -> None:
    # the same layers with half the dataset: the same compute per iteration (T(b)/N_table per
    # sample), half the iterations per epoch
    alexnet = load_network("alexnet")
    half = dataclasses.replace(alexnet, dataset_samples=600_000)
    machine = load_machine("cori-knl")
    grids = factorizations(64, 2048)
    full_s, used, _ = compute_per_iteration_s(alexnet, machine, grids, "auto")
    half_s, used_half, _ = compute_per_iteration_s(half, machine, grids, "auto")
    assert used == used_half == "table 'paper-figures' (alexnet)"
    np.testing.assert_allclose(half_s, full_s, rtol=1e-15)


def test_code_built_tables_without_a_fingerprint_match_by_name() -> None:
    alexnet = load_network("alexnet")
    table = ComputeTable("t", "alexnet", (1, 4), (100.0, 30.0))
    assert table.mismatch(alexnet) is None
    assert table.mismatch(load_network("vgg16")) == "measured on alexnet, a network of another name"
    machine = dataclasses.replace(load_machine("cori-knl"), compute_tables=(table,),
                                  default_table="t")
    with pytest.raises(UsageError):
        compute_per_iteration_s(load_network("vgg16"), machine, factorizations(4, 8), "table")
