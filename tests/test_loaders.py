"""Tests of costmodel.inputs.loaders: bundled networks and machines, and every kind of bad input.

Bad inputs live in tests/data/bad/ (shared with the CLI tests); each test asserts the exact
one-line message, which names the file, the field path and what was expected.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import pytest

from costmodel.errors import GridcostError, ShapeError, SpecError, UnknownName
from costmodel.inputs.loaders import (
    _parse,
    bundled_names,
    load_machine,
    load_network,
    machine_from_document,
    network_from_document,
    read_document,
)
from costmodel.inputs.specs import Network

DATA = Path(__file__).parent / "data"

NETWORKS = ["alexnet", "alexnet-single", "resnet101", "resnet152", "resnet18", "resnet34",
            "resnet50", "vgg16", "vgg19"]
MACHINES = ["a100-ib", "a100-ib-nodes", "cori-knl", "ethernet-25g"]

# Published parameter counts, biases and batch-norm parameters included: Caffe bvlc_alexnet
# (grouped) and torchvision (the rest).
PUBLISHED_PARAMS = {
    "alexnet": 60_965_224,
    "alexnet-single": 61_100_840,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.fixture
def in_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tests/data so that messages name the short path ``bad/<file>.yaml``."""
    monkeypatch.chdir(DATA)
    return DATA


def _message(exc_info: pytest.ExceptionInfo[GridcostError]) -> str:
    text = str(exc_info.value)
    assert "\n" not in text, "an error message is one line"
    return text


# --------------------------------------------------------------------------- bundled files


def test_bundled_names() -> None:
    assert bundled_names("networks") == NETWORKS
    assert bundled_names("machines") == MACHINES


@pytest.mark.parametrize(("name", "params"), sorted(PUBLISHED_PARAMS.items()))
def test_bundled_network_matches_published_parameter_count(name: str, params: int) -> None:
    net = load_network(name)
    assert net.name == name
    assert net.params == params
    assert net.input_shape[2] == 3
    assert net.dataset_samples == 1_200_000
    assert net.layers[-1].kind == "fc"
    assert net.layers[-1].split_size == 1000


@pytest.mark.parametrize("name", NETWORKS)
def test_bundled_network_resolves_with_and_without_suffix(name: str) -> None:
    assert load_network(f"{name}.yaml") == load_network(name)


@pytest.mark.parametrize("name", MACHINES)
def test_bundled_machine_resolves_with_and_without_suffix(name: str) -> None:
    assert load_machine(f"{name}.yaml") == load_machine(name)


def test_bundled_document_source_and_digest() -> None:
    doc = read_document("vgg16", "networks")
    assert doc.source == "networks/vgg16.yaml"
    assert doc.data["name"] == "vgg16"
    assert len(doc.sha256) == 64
    assert read_document("vgg16.yaml", "networks").sha256 == doc.sha256


def test_grouped_alexnet_shapes() -> None:
    """docs/model.md §9: conv outputs before pooling, and the fc inputs."""
    net = load_network("alexnet")
    assert [layer.name for layer in net.layers] == [
        "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    convs = net.layers[:5]
    assert [layer.activations for layer in convs] == [
        55 * 55 * 96, 27 * 27 * 256, 13 * 13 * 384, 13 * 13 * 384, 13 * 13 * 256]
    assert [layer.out_shape for layer in convs] == [
        (55, 55, 96), (27, 27, 256), (13, 13, 384), (13, 13, 384), (13, 13, 256)]
    assert [layer.groups for layer in convs] == [1, 2, 1, 2, 2]
    assert [layer.halo_rows for layer in convs] == [(5, 5), (2, 2), (1, 1), (1, 1), (1, 1)]
    fcs = net.layers[5:]
    assert [layer.in_shape[2] for layer in fcs] == [9216, 4096, 4096]
    assert [layer.split_size for layer in fcs] == [4096, 4096, 1000]
    assert net.layers[5].in_shape == (1, 1, 6 * 6 * 256)


def test_single_tower_alexnet_shapes() -> None:
    """torchvision's AlexNet (arXiv:1404.5997): 64-192-384-256-256 filters, no groups."""
    net = load_network("alexnet-single")
    convs, fcs = net.layers[:5], net.layers[5:]
    assert [layer.activations for layer in convs] == [
        55 * 55 * 64, 27 * 27 * 192, 13 * 13 * 384, 13 * 13 * 256, 13 * 13 * 256]
    assert all(layer.groups == 1 for layer in net.layers)
    assert [layer.in_shape[2] for layer in fcs] == [9216, 4096, 4096]


def test_resnet50_shapes() -> None:
    net = load_network("resnet50")
    assert len(net.layers) == 54  # 1 stem + 16 blocks × 3 + 4 projections + 1 fc
    assert net.layers[0].out_shape == (112, 112, 64)
    assert net.layers[0].norm_params == 2 * 64
    fc = net.layers[-1]
    assert fc.in_shape == (1, 1, 2048)
    assert fc.params == 2048 * 1000 + 1000
    assert sum(layer.kind == "conv" for layer in net.layers) == 53


def test_resnet_block_names() -> None:
    names = [layer.name for layer in load_network("resnet50").layers]
    assert names[:5] == ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.conv3",
                         "layer1.0.shortcut.conv1"]
    assert len(set(names)) == len(names)


def _vgg16_macs() -> int:
    """Forward multiply-adds of VGG-16 by hand: 3×3 convs (H·W·C_out·C_in·9), then the fcs."""
    convs = [  # (height = width, input channels, filters)
        (224, 3, 64), (224, 64, 64),
        (112, 64, 128), (112, 128, 128),
        (56, 128, 256), (56, 256, 256), (56, 256, 256),
        (28, 256, 512), (28, 512, 512), (28, 512, 512),
        (14, 512, 512), (14, 512, 512), (14, 512, 512),
    ]
    fcs = [(7 * 7 * 512, 4096), (4096, 4096), (4096, 1000)]
    return sum(h * h * c_out * c_in * 9 for h, c_in, c_out in convs) + sum(
        n_in * n_out for n_in, n_out in fcs)


def test_vgg16_macs() -> None:
    net = load_network("vgg16")
    assert _vgg16_macs() == 15_470_264_320
    assert net.macs == _vgg16_macs()
    assert net.layers[13].in_shape == (1, 1, 25_088)


def test_cori_knl() -> None:
    """docs/model.md §9: α = 2 µs, 6·2^30 B/s, 4-byte words and both compute tables."""
    knl = load_machine("cori-knl")
    assert knl.name == "cori-knl"
    assert knl.alpha_s == 2e-6
    assert knl.bandwidth_Bps == 6 * 2**30
    assert knl.word_bytes == 4
    assert knl.beta_s_per_word == 4 / (6 * 2**30)
    assert knl.memory_bytes == 96 * 2**30
    assert knl.default_table == "paper-figures"
    paper = knl.table()
    assert paper is not None
    assert paper.name == "paper-figures"
    assert paper.network == "alexnet"
    assert paper.local_batch == (1, 4, 16, 64, 256)
    assert paper.epoch_s == (34900.0, 11450.0, 4603.0, 2779.0, 2234.0)
    fig4 = knl.table("fig4")
    assert fig4 is not None
    assert fig4.network == "alexnet"
    assert fig4.local_batch == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
    assert fig4.epoch_s == (30740.0, 17290.0, 9608.0, 5924.0, 3924.0, 2843.0, 2322.0, 2032.0,
                            1776.0, 1826.0, 1921.0, 2434.0)


def test_other_bundled_machines() -> None:
    a100 = load_machine("a100-ib")
    assert a100.alpha_s == pytest.approx(5e-6, rel=1e-15)
    assert a100.bandwidth_Bps == 25e9
    assert a100.word_bytes == 2
    assert a100.flop_rate == 125e12
    assert a100.memory_bytes == 80 * 2**30
    assert a100.table() is None
    eth = load_machine("ethernet-25g")
    assert eth.bandwidth_Bps == 3.125e9
    assert eth.alpha_s == pytest.approx(30e-6, rel=1e-15)


# --------------------------------------------------------------------------- reading paths


def test_load_network_from_a_path(tmp_path: Path) -> None:
    text = (DATA / "bad" / "wrong_parameters.yaml").read_text().replace("5000", "5426")
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    net = load_network(str(path))
    assert net.params == 296 + 5130
    doc = read_document(str(path), "networks")
    assert doc.source == str(path)
    assert doc.sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_a_file_in_the_working_directory_wins_over_a_bundled_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DATA / "bad" / "wrong_parameters.yaml").read_text().replace("parameters: 5000\n", "")
    (tmp_path / "vgg16.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert load_network("vgg16.yaml").name == "tiny"
    assert load_network("vgg16").name == "vgg16"


def test_read_document_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("version: 1\nname: x\n"))
    doc = read_document("-", "machines")
    assert doc.source == "<stdin>"
    assert doc.data == {"version": 1, "name": "x"}


# --------------------------------------------------------------------------- bad input files


_TYPES = ("conv, fc, pool, global_pool, norm, activation, dropout, flatten, residual, concat, "
          "repeat, params, matmul, merge")
_BW = "'<number> <unit>' with unit B/s, GB/s, GiB/s, Gbit/s or Gbps…, e.g. '6 GiB/s'"

BAD_NETWORKS = [
    ("malformed.yaml", SpecError,
     "expected valid YAML (expected ',' or '}', but got '<stream end>' at line 8, column 1)"),
    ("not_a_mapping.yaml", SpecError, "expected a YAML mapping at the top level, got 'list'"),
    ("missing_version.yaml", SpecError, "version: expected this field (it is missing)"),
    ("wrong_version.yaml", SpecError, "version: expected 1, got 2"),
    ("unknown_top_key.yaml", SpecError,
     "paramaters: expected one of the keys dataset, description, input, layers, name, "
     "parameters, source, version (unknown key)"),
    ("unknown_layer_type.yaml", SpecError,
     f"layers[1].type: expected a layer type ({_TYPES}), got 'convolution'"),
    ("unknown_layer_key.yaml", SpecError,
     "layers[0].filter: expected one of the keys bias, dilation, filters, groups, input, kernel, "
     "name, padding, stride, type (unknown key)"),
    ("missing_filters.yaml", SpecError, "layers[0].filters: expected this field (it is missing)"),
    ("negative_filters.yaml", SpecError, "layers[0].filters: expected an integer ≥ 1, got -4"),
    ("zero_kernel.yaml", SpecError,
     "layers[0].kernel: expected an integer ≥ 1 or a list [h, w] of them, got 0"),
    ("string_filters.yaml", SpecError, "layers[0].filters: expected an integer ≥ 1, got '64'"),
    ("nested_bad_field.yaml", SpecError,
     "layers[1].body[1].filters: expected an integer ≥ 1, got 0"),
    ("residual_mismatch.yaml", ShapeError,
     "layers[1]: residual add 'block1' needs equal shapes, but the body gives 8×8×16 and the shortcut "
     "8×8×8"),
    ("concat_mismatch.yaml", ShapeError,
     "layers[0]: concat 'mixed' needs equal height and width, but branch 0 gives 8×8×4 and branch 1 "
     "6×6×4"),
    ("kernel_too_large.yaml", SpecError,
     "layers[0].kernel: expected a window that fits the 8×8 input (with padding [0, 0]), "
     "got [11, 11]"),
    ("bad_groups.yaml", SpecError,
     "layers[0].groups: expected a divisor of both input channels 4 and filters 8, got 3"),
    ("wrong_parameters.yaml", SpecError,
     "parameters: expected the inferred count 5,426, got 5000"),
    ("duplicate_layer_names.yaml", SpecError,
     "layers[1].name: expected a name not used by another weighted layer, got 'conv1'"),
    ("norm_before_weighted.yaml", SpecError,
     "layers[0].kind: expected a normalization after a weighted layer (its parameters count "
     "with the layer they follow), got 'batch'"),
    ("python_tag.yaml", SpecError,
     "expected valid YAML (could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.getcwd' at line 3, column 7)"),
]

BAD_MACHINES = [
    ("bad_unit_machine.yaml", SpecError, f"bandwidth: expected {_BW}, got 25"),
    ("unknown_unit_machine.yaml", SpecError, f"bandwidth: expected {_BW}, got '6 parsecs'"),
    ("negative_bandwidth_machine.yaml", SpecError,
     "bandwidth: expected a positive bandwidth, got '-6 GiB/s'"),
    ("zero_bandwidth_machine.yaml", SpecError,
     "bandwidth: expected a positive bandwidth, got '0 GiB/s'"),
    ("unknown_machine_key.yaml", SpecError,
     "latency: expected one of the keys alpha, bandwidth, collectives, compute, description, "
     "flop_rate, gamma, levels, memory, name, optimizer, per_collective, schedule, version, "
     "word_bytes (unknown key)"),
    ("unknown_default_table_machine.yaml", SpecError,
     "compute.default: expected one of fig4, got 'paper'"),
    ("bad_epoch_time_machine.yaml", SpecError,
     "compute.tables.fig4.epoch_time.4: expected '<number> <unit>' with unit h, min, s, ms, us or ns, "
     "e.g. '2 us', got 25"),
]


def test_every_bad_fixture_is_tested() -> None:
    tested = {name for name, _, _ in BAD_NETWORKS + BAD_MACHINES}
    assert tested == {p.name for p in (DATA / "bad").glob("*.yaml")}


@pytest.mark.parametrize(("name", "error", "message"), BAD_NETWORKS,
                         ids=[c[0].removesuffix(".yaml") for c in BAD_NETWORKS])
@pytest.mark.usefixtures("in_data")
def test_bad_network_file(name: str, error: type[SpecError], message: str) -> None:
    with pytest.raises(error) as info:
        load_network(f"bad/{name}")
    assert type(info.value) is error
    assert _message(info) == f"bad/{name}: {message}"
    assert info.value.source == f"bad/{name}"
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("name", "error", "message"), BAD_MACHINES,
                         ids=[c[0].removesuffix(".yaml") for c in BAD_MACHINES])
@pytest.mark.usefixtures("in_data")
def test_bad_machine_file(name: str, error: type[SpecError], message: str) -> None:
    with pytest.raises(error) as info:
        load_machine(f"bad/{name}")
    assert type(info.value) is error
    assert _message(info) == f"bad/{name}: {message}"


def test_malformed_yaml_message_has_line_and_column(in_data: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_network("bad/malformed.yaml")
    assert "line 8, column 1" in str(info.value)


def test_error_fields_are_structured(in_data: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_network("bad/nested_bad_field.yaml")
    assert (info.value.source, info.value.field) == ("bad/nested_bad_field.yaml",
                                                     "layers[1].body[1].filters")
    assert info.value.expected == "an integer ≥ 1"
    assert info.value.got == 0


def test_shape_error_is_a_spec_error(in_data: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_network("bad/residual_mismatch.yaml")
    assert isinstance(info.value, ShapeError)
    assert info.value.field == "layers[1]"


def test_safe_load_never_constructs_python_objects(tmp_path: Path) -> None:
    """A ``!!python`` tag is refused by yaml.safe_load: the call below must not run."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"version: 1\nname: !!python/object/apply:os.mkdir [{str(marker)!r}]\n")
    with pytest.raises(SpecError) as info:
        load_machine(str(path))
    assert not marker.exists()
    assert _message(info).startswith(f"{path}: expected valid YAML (could not determine a "
                                     "constructor for the tag 'tag:yaml.org,2002:python/object")


def test_unknown_bundled_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownName) as info:
        load_network("vgg61")
    assert _message(info) == (
        "unknown network (neither a file nor a bundled name) 'vgg61'; did you mean 'vgg16' or "
        "'vgg19'? (known: alexnet, alexnet-single, resnet101, resnet152, resnet18, resnet34, "
        "resnet50, vgg16, vgg19)")
    assert info.value.exit_code == 2


def test_unknown_machine_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownName) as info:
        load_machine("cori-kln.yaml")
    assert _message(info) == (
        "unknown machine (neither a file nor a bundled name) 'cori-kln'; did you mean "
        "'cori-knl'? (known: a100-ib, a100-ib-nodes, cori-knl, ethernet-25g)")


def test_unknown_name_without_a_close_match() -> None:
    with pytest.raises(UnknownName) as info:
        load_machine("zzz")
    assert _message(info) == (
        "unknown machine (neither a file nor a bundled name) 'zzz' "
        "(known: a100-ib, a100-ib-nodes, cori-knl, ethernet-25g)")


def test_a_network_name_is_not_a_machine() -> None:
    with pytest.raises(UnknownName):
        load_machine("alexnet")


def test_path_in_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "net.yaml"
    with pytest.raises(SpecError) as info:
        load_network(str(path))
    assert _message(info) == f"{path}: expected an existing network file, got 'no such file'"


def test_relative_path_in_a_missing_directory() -> None:
    with pytest.raises(SpecError) as info:
        load_machine("nowhere/cori-knl.yaml")
    assert _message(info) == (
        "nowhere/cori-knl.yaml: expected an existing machine file, got 'no such file'")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_network(str(path))
    assert _message(info) == f"{path}: expected UTF-8 text, got 'byte 0xe9 on line 2 (offset 20)'"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(SpecError) as info:
        load_network(str(path))
    assert _message(info) == f"{path}: expected a YAML mapping at the top level, got 'nothing'"


# --------------------------------------------------------------------------- documents in memory

NET = """\
version: 1
name: tiny
description: a tiny test network
source: test
input: {height: 8, width: 8, channels: 4}
layers:
"""
MACHINE = """\
version: 1
name: m
description: a test machine
alpha: 2 us
bandwidth: 6 GiB/s
flop_rate: 1 TFLOP/s
"""


def _net(layers: str, head: str = NET) -> object:
    return network_from_document(_parse(head + layers, "t.yaml"))


def _machine(extra: str, head: str = MACHINE) -> object:
    return machine_from_document(_parse(head + extra, "m.yaml"))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("  - {type: conv, filters: true, kernel: 3}\n",
         "layers[0].filters: expected an integer ≥ 1, got True"),
        ("  - {type: conv, filters: 8.0, kernel: 3}\n",
         "layers[0].filters: expected an integer ≥ 1, got 8.0"),
        ("  - {type: conv, filters: 8, kernel: [3, 3, 3]}\n",
         "layers[0].kernel: expected an integer ≥ 1 or a list [h, w] of them, got [3, 3, 3]"),
        ("  - {type: conv, filters: 8, kernel: 3, padding: -1}\n",
         "layers[0].padding: expected an integer ≥ 0 or a list [h, w] of them, got -1"),
        ("  - {type: conv, filters: 8, kernel: 3, bias: 1}\n",
         "layers[0].bias: expected true or false, got 1"),
        ("  - {type: pool, kernel: 2, mode: median}\n",
         "layers[0].mode: expected one of max, avg, got 'median'"),
        ("  - {type: dropout, rate: 1.5}\n",
         "layers[0].rate: expected a number in [0, 1), got 1.5"),
        ("  - {type: norm, kind: group}\n",
         "layers[0].kind: expected one of batch, lrn, layer, channel, got 'group'"),
        ("  - {filters: 8}\n",
         f"layers[0].type: expected a layer type ({_TYPES})"),
        ("  - conv\n", "layers[0]: expected a layer mapping with a 'type', got 'str'"),
        ("  - {type: activation, function: relu}\n",
         "layers: expected at least one conv or fc layer"),
        ("  - {type: concat, branches: []}\n",
         "layers[0].branches: expected a non-empty list of layer lists, got []"),
        ("  - {type: concat, branches: [{type: fc, units: 2}]}\n",
         "layers[0].branches[0]: expected a list of layers, got 'dict'"),
        ("  - {type: residual, body: {type: fc, units: 2}}\n",
         "layers[0].body: expected a list, got 'dict'"),
        ("  - {type: repeat, times: 0, layers: []}\n",
         "layers[0].times: expected an integer ≥ 1, got 0"),
        ("  - {type: repeat, times: 2, layers: [{type: fc, units: 2, name: head}]}\n",
         "layers[0].layers[0].name: expected a name not used by another weighted layer, "
         "got 'head'"),
        ("  - {type: conv, filters: 4, kernel: 1}\n  - {type: pool, kernel: 9}\n",
         "layers[1].kernel: expected a window that fits the 8×8 input (with padding [0, 0]), "
         "got [9, 9]"),
    ],
    ids=["bool-int", "float-int", "kernel-triple", "negative-padding", "int-bias", "pool-mode",
         "dropout-rate", "norm-kind", "missing-type", "layer-not-mapping", "no-weighted-layer",
         "empty-concat", "concat-branch-not-list", "residual-body-not-list", "repeat-zero",
         "repeat-explicit-name", "pool-too-large"],
)
def test_bad_network_document(layers: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _net(layers)
    assert _message(info) == f"t.yaml: {message}"


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (NET.replace("version: 1\n", "version: '1'\n"), "version: expected 1, got '1'"),
        (NET.replace("name: tiny\n", ""), "name: expected this field (it is missing)"),
        (NET.replace("name: tiny\n", "name: 7\n"), "name: expected a non-empty string, got 7"),
        (NET.replace("input: {height: 8, width: 8, channels: 4}\n", ""),
         "input: expected this field (it is missing)"),
        (NET.replace("channels: 4", "channels: 4, depth: 2"),
         "input.depth: expected one of the keys channels, height, width (unknown key)"),
        (NET.replace("height: 8", "height: 0"), "input.height: expected an integer ≥ 1, got 0"),
        (NET.replace("layers:\n", "dataset: {samples: 0}\nlayers:\n"),
         "dataset.samples: expected an integer ≥ 1, got 0"),
    ],
    ids=["string-version", "missing-name", "int-name", "missing-input", "unknown-input-key",
         "zero-height", "zero-samples"],
)
def test_bad_network_header(head: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _net("  - {type: fc, units: 2}\n", head)
    assert _message(info) == f"t.yaml: {message}"


def test_shapes_through_every_layer_type() -> None:
    net = _net(
        "  - {type: conv, name: c1, filters: 8, kernel: 3, padding: 1}\n"
        "  - {type: norm, kind: batch}\n"
        "  - {type: pool, kernel: 2}\n"                                          # 4×4×8
        "  - type: concat\n"
        "    name: mix\n"
        "    branches:\n"
        "      - [{type: conv, filters: 2, kernel: 1}]\n"
        "      - [{type: conv, filters: 4, kernel: [3, 1], padding: [1, 0]}]\n"
        "      - []\n"                                                             # 4×4×14
        "  - {type: repeat, times: 2, layers: [{type: conv, filters: 14, kernel: 1}]}\n"
        "  - {type: global_pool}\n"                                                # 1×1×14
        "  - {type: flatten}\n"
        "  - {type: dropout}\n"
        "  - {type: fc, units: 5, bias: false}\n"
        "  - {type: norm, kind: layer}\n")
    by_name = {layer.name: layer for layer in net.layers}
    assert list(by_name) == ["c1", "mix.b1.conv1", "mix.b2.conv1", "conv4", "conv5", "fc6"]
    assert by_name["c1"].params == 8 * 4 * 9 + 8 + 2 * 8
    assert by_name["mix.b2.conv1"].kernel == (3, 1)
    assert by_name["mix.b2.conv1"].out_shape == (4, 4, 4)
    assert by_name["conv4"].in_shape == (4, 4, 14)
    assert by_name["fc6"].in_shape == (1, 1, 14)
    assert by_name["fc6"].params == 14 * 5 + 2 * 5


def test_residual_with_projection_shortcut() -> None:
    net = _net(
        "  - type: residual\n"
        "    name: b\n"
        "    body: [{type: conv, filters: 8, kernel: 3, stride: 2, padding: 1, bias: false},\n"
        "           {type: norm, kind: batch}]\n"
        "    shortcut: [{type: conv, filters: 8, kernel: 1, stride: 2, bias: false},\n"
        "               {type: norm, kind: batch}]\n"
        "  - {type: fc, units: 2}\n")
    assert [(layer.name, layer.out_shape, layer.params) for layer in net.layers] == [
        ("b.conv1", (4, 4, 8), 8 * 4 * 9 + 16),
        ("b.shortcut.conv1", (4, 4, 8), 8 * 4 + 16),
        ("fc3", (1, 1, 2), 4 * 4 * 8 * 2 + 2),
    ]


def test_named_repeat_names_each_copy() -> None:
    net = _net("  - {type: repeat, name: r, times: 2, layers: [{type: conv, filters: 4, "
               "kernel: 1}]}\n")
    assert [layer.name for layer in net.layers] == ["r.1.conv1", "r.2.conv1"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("word_bytes: 0\n", "word_bytes: expected an integer ≥ 1, got 0"),
        ("memory: 96\n",
         "memory: expected '<number> <unit>' with unit B, kB, MB, GB, KiB, MiB, GiB…, "
         "e.g. '16 GiB', got 96"),
        ("compute: {tables: {t: {network: alexnet, source: s, epoch_time: {1: 5 s}}}}\n",
         "compute.tables.t.epoch_time: expected at least two local-batch entries"),
        ("compute: {tables: {t: {network: alexnet, source: s, "
         "epoch_time: {one: 5 s, 2: 3 s}}}}\n",
         "compute.tables.t.epoch_time.one: expected a local batch size (integer ≥ 1) as the key, "
         "got 'one'"),
        ("compute: {tables: {t: {source: s, epoch_time: {1: 5 s, 2: 3 s}}}}\n",
         "compute.tables.t.network: expected this field (it is missing)"),
        ("compute: {tables: {t: {network: alexnet, source: s, epoch_time: {1: 5 s, 2: 3 s}, "
         "batch: 2}}}\n",
         "compute.tables.t.batch: expected one of the keys epoch_time, fingerprint, network, "
         "samples, source (unknown key)"),
        ("compute: {default: t}\n", "compute.tables: expected this field (it is missing)"),
    ],
    ids=["zero-word", "memory-no-unit", "one-entry-table", "string-batch", "table-no-network",
         "table-unknown-key", "no-tables"],
)
def test_bad_machine_document(extra: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _machine(extra)
    assert _message(info) == f"m.yaml: {message}"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("alpha: 2 us\n", "", "alpha: expected this field (it is missing)"),
        ("alpha: 2 us\n", "alpha: -2 us\n", "alpha: expected a positive time, got '-2 us'"),
        ("alpha: 2 us\n", "alpha: 2\n",
         "alpha: expected '<number> <unit>' with unit h, min, s, ms, us or ns, e.g. '2 us', got 2"),
        ("bandwidth: 6 GiB/s\n", "", "bandwidth: expected this field (it is missing)"),
        ("flop_rate: 1 TFLOP/s\n", "flop_rate: 1 TB/s\n",
         "flop_rate: expected '<number> <unit>' with unit FLOP/s, GFLOP/s, TFLOP/s…, "
         "got '1 TB/s'"),
    ],
    ids=["missing-alpha", "negative-alpha", "alpha-no-unit", "missing-bandwidth",
         "flop-rate-unit"],
)
def test_bad_machine_header(old: str, new: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _machine("", MACHINE.replace(old, new))
    assert _message(info) == f"m.yaml: {message}"


def test_zero_latency_machine() -> None:
    machine = _machine("", MACHINE.replace("alpha: 2 us", "alpha: 0"))
    assert machine.alpha_s == 0.0  # type: ignore[attr-defined]


def test_compute_table_batches_are_sorted() -> None:
    machine = _machine("compute: {tables: {t: {network: alexnet, source: s, "
                       "epoch_time: {4: 25 s, 1: 100 s}}}}\n")
    table = machine.table()  # type: ignore[attr-defined]
    assert table.local_batch == (1, 4)
    assert table.epoch_s == (100.0, 25.0)


# --------------------------------------------------------------------------- regressions
# Each test below once failed: optional fields, non-mapping sections, booleans posing as numbers,
# YAML nulls in messages.


def test_description_and_source_are_optional() -> None:
    head = NET.replace("description: a tiny test network\n", "").replace("source: test\n", "")
    net = _net("  - {type: fc, units: 2}\n", head)
    assert net.description == "" and net.source == ""  # type: ignore[attr-defined]


def test_compute_table_source_is_optional() -> None:
    machine = _machine("compute: {tables: {t: {network: alexnet, epoch_time: {1: 2 s, 2: 1 s}}}}\n")
    assert machine.table().source == ""  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "compute",
    ["{tables: 5}", "{tables: [{t: 1}]}",
     "{tables: {t: {network: alexnet, epoch_time: 3}}}",
     "{tables: {t: {network: alexnet, epoch_time: [{1: 2 s}]}}}"],
    ids=["tables-int", "tables-list", "epoch-int", "epoch-list"])
def test_compute_section_of_the_wrong_type_is_a_spec_error(compute: str) -> None:
    with pytest.raises(SpecError):
        _machine(f"compute: {compute}\n")


def test_unhashable_layer_type_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as info:
        _net("  - {type: [conv], filters: 8, kernel: 3}\n")
    assert _message(info) == f"t.yaml: layers[0].type: expected a layer type ({_TYPES}), " \
                             "got ['conv']"


@pytest.mark.parametrize("version", ["true", "1.0"])
def test_version_must_be_the_integer_1(version: str) -> None:
    with pytest.raises(SpecError):
        _machine("", MACHINE.replace("version: 1", f"version: {version}"))


def test_boolean_alpha_is_rejected() -> None:
    with pytest.raises(SpecError):
        _machine("", MACHINE.replace("alpha: 2 us", "alpha: false"))


def test_null_value_is_shown_in_the_message() -> None:
    with pytest.raises(SpecError) as info:
        _net("  - {type: conv, filters: null, kernel: 3}\n")
    assert _message(info) == "t.yaml: layers[0].filters: expected an integer ≥ 1, got None"


# --------------------------------------------------------------------------- γ and collectives


@pytest.mark.parametrize(
    ("extra", "gamma", "collectives"),
    [
        ("", 0.0, "paper"),
        ("gamma: 0.1 ns/word\n", 1e-10, "paper"),
        ("gamma: 2 us/word\n", 2e-6, "paper"),
        ("gamma: 0\n", 0.0, "paper"),
        ("gamma: 0 ns/word\n", 0.0, "paper"),
        ("gamma: flop_rate\n", 1e-12, "paper"),
        ("collectives: auto\n", 0.0, "auto"),
        ("collectives: rabenseifner\n", 0.0, "rabenseifner"),
        ("collectives: {allgather: ring}\n", 0.0, "allgather=ring,allreduce=paper"),
        ("collectives: {allreduce: auto, allgather: bruck}\n", 0.0,
         "allgather=bruck,allreduce=auto"),
    ],
    ids=["defaults", "ns", "us", "zero", "zero-unit", "flop-rate", "auto", "name", "one-kind",
         "both-kinds"],
)
def test_machine_gamma_and_collectives(extra: str, gamma: float, collectives: str) -> None:
    machine = _machine(extra)
    assert machine.gamma_s_per_word == gamma  # type: ignore[attr-defined]
    assert machine.collectives == collectives  # type: ignore[attr-defined]


_GAMMA = "'<number> <time unit>/word' (e.g. '0.1 ns/word'), 0 or 'flop_rate'"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("gamma: 0.1 ns\n", f"gamma: expected {_GAMMA}, got '0.1 ns'"),
        ("gamma: 5\n", f"gamma: expected {_GAMMA}, got 5"),
        ("gamma: 1 parsec/word\n", f"gamma: expected {_GAMMA}, got '1 parsec/word'"),
        ("gamma: -1 ns/word\n", "gamma: expected a time per word ≥ 0, got '-1 ns/word'"),
        ("collectives: rign\n",
         "collectives: expected one of paper, ring, flat-ring, recursive-doubling, rabenseifner, "
         "binomial, bruck, auto or a mapping {allgather: NAME, allreduce: NAME}, got 'rign'"),
        ("collectives: [ring]\n",
         "collectives: expected an algorithm name or a mapping {allgather: NAME, allreduce: "
         "NAME}, got ['ring']"),
        ("collectives: {allreduce: bruck}\n",
         "collectives.allreduce: expected one of paper, rabenseifner, recursive-doubling, ring, "
         "flat-ring, binomial, auto, got 'bruck'"),
        ("collectives: {broadcast: binomial}\n",
         "collectives.broadcast: expected one of the keys allgather, allreduce (unknown key)"),
    ],
    ids=["gamma-no-word", "gamma-number", "gamma-unit", "gamma-negative", "collectives-name",
         "collectives-list", "collectives-kind-name", "collectives-kind"],
)
def test_bad_gamma_and_collectives(extra: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _machine(extra)
    assert _message(info) == f"m.yaml: {message}"


@pytest.mark.parametrize("kind", ["networks", "machines"])
def test_fast_safe_loader_reads_what_safe_load_reads(kind: str) -> None:
    """The CSafeLoader fast path gives exactly yaml.safe_load's data on every bundled file."""
    import yaml

    from costmodel.inputs.loaders import _safe_load, bundled_folder, bundled_names

    for name in bundled_names(kind):
        text = (bundled_folder(kind) / f"{name}.yaml").read_text("utf-8")
        assert _safe_load(text) == yaml.safe_load(text), name


# --------------------------------------------------------------------------- limits and ranges
# docs/formats.md, "Limits and ranges": every input is refused in one line, before any work that
# grows with it, when it breaks a limit.

def _bomb(levels: int) -> str:
    """A "billion laughs" as the network's description: 9**levels strings from a few hundred
    bytes, each level a list of nine aliases of the one before."""
    rows = ['  - &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"  - &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return NET.replace("description: a tiny test network", "description:\n" + "\n".join(rows))


def test_alias_bomb_is_refused_before_it_expands() -> None:
    """9^8 strings from 500 bytes in a valid field: refused by counting, nothing expanded."""
    with pytest.raises(SpecError) as info:
        network_from_document(_parse(_bomb(8) + "  - {type: fc, units: 2}\n", "t.yaml"))
    assert _message(info) == ("t.yaml: line 9: expected at most 200,000 YAML nodes, aliases "
                              "expanded (a limit of gridcost; this document has more)")


def test_alias_expansion_below_the_cap_is_echoed_short() -> None:
    """9^5 = 59,049 shared strings under the node cap: the message shows a few, not all."""
    with pytest.raises(SpecError) as info:
        network_from_document(_parse(_bomb(5) + "  - {type: fc, units: 2}\n", "t.yaml"))
    message = _message(info)
    assert message.startswith("t.yaml: description: expected a non-empty string, got [['lol'")
    assert len(message) < 200


@pytest.mark.parametrize("kind", ["yaml-flow", "yaml-block", "json"])
def test_deep_nesting_is_refused_without_recursion(kind: str) -> None:
    if kind == "yaml-flow":
        text = "a: " + "[" * 1200 + "]" * 1200 + "\n"
    elif kind == "yaml-block":
        text = "".join(f"{'  ' * i}k{i}:\n" for i in range(100)) + "  " * 100 + "v: 1\n"
    else:
        text = '{"a": ' + "[" * 1200 + "]" * 1200 + "}"
    with pytest.raises(SpecError) as info:
        _parse(text, "deep")
    line = 65 if kind == "yaml-block" else 1
    assert _message(info) == (f"deep: line {line}: expected lists and mappings nested at most "
                              "64 deep (a limit of gridcost)")


def test_nesting_through_an_alias_counts_expanded() -> None:
    nested = "[" * 40 + "1" + "]" * 40
    with pytest.raises(SpecError) as info:
        _parse(f"a: &a {nested}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]\n", "x")
    assert "nested at most 64 deep" in _message(info)


def test_duplicate_key_is_refused_naming_key_and_lines() -> None:
    with pytest.raises(SpecError) as info:
        _parse("name: dup\nversion: 1\nname: dup2\n", "dup.yaml")
    assert _message(info) == ("dup.yaml: line 3: name: expected each key once per mapping "
                              "(it is also on line 1)")
    with pytest.raises(SpecError) as info:
        _net("  - {type: fc, units: 2, units: 3}\n")
    assert _message(info) == ("t.yaml: line 7: units: expected each key once per mapping (it is "
                              "also on line 7)")


def test_merge_keys_may_still_be_overridden() -> None:
    doc = _parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "m")
    assert doc.data["other"] == {"x": 1, "y": 3}


def test_repeat_count_is_capped_before_expansion() -> None:
    with pytest.raises(SpecError) as info:
        _net("  - {type: repeat, times: 1000000000, layers: [{type: fc, units: 10}]}\n")
    assert _message(info) == ("t.yaml: layers[0].times: expected an integer from 1 to 100,000 "
                              "(a limit of gridcost), got 1000000000")
    with pytest.raises(SpecError) as info:  # 1 + 100,000 weighted layers: refused unexpanded
        _net("  - {type: fc, units: 10}\n"
             "  - {type: repeat, times: 100000, layers: [{type: fc, units: 10}]}\n")
    assert _message(info) == (
        "t.yaml: layers[1].times: expected a count that keeps the network within 100,000 "
        "weighted layers (here 1 per pass; a limit of gridcost), got 100000")
    with pytest.raises(SpecError) as info:  # nested repeats multiply
        _net("  - {type: repeat, times: 1000, layers: [{type: repeat, times: 1000, layers: "
             "[{type: activation, function: relu}]}]}\n")
    assert _message(info) == (
        "t.yaml: layers[0].times: expected a count that keeps the network within 300,000 "
        "layer records (here 1,001 per pass; a limit of gridcost), got 1000")


def test_the_largest_network_loads_with_unique_names() -> None:
    """100,000 weighted layers, the limit: names are found in a set (this took hours when each
    new name was checked against a list rebuilt from all the layers before it)."""
    net = _net("  - {type: repeat, times: 100000, layers: [{type: fc, units: 2}]}\n")
    assert isinstance(net, Network)
    assert len(net.layers) == 100_000
    assert net.layers[-1].name == "fc100000"
    assert len({layer.name for layer in net.layers}) == 100_000


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("  - {type: conv, filters: 16777217, kernel: 1}\n",
         "layers[0].filters: expected an integer from 1 to 16,777,216 (a limit of gridcost), "
         "got 16777217"),
        ("  - {type: fc, units: 100000000000000000000000000000000000000000}\n",
         "layers[0].units: expected an integer from 1 to 16,777,216 (a limit of gridcost), "
         "got <an integer of 137 bits>"),
        ("  - {type: conv, filters: 4, kernel: [1, 16777217]}\n",
         "layers[0].kernel: expected integers from 1 to 16,777,216 (a limit of gridcost), "
         "got [1, 16777217]"),
        ("  - {type: fc, units: 4}\n  - {type: params, count: 1099511627777}\n",
         "layers[1].count: expected an integer from 1 to 1,099,511,627,776 (a limit of "
         "gridcost), got 1099511627777"),
        ("  - {type: flatten}\n  - {type: fc, units: 16777216}\n"
         "  - {type: fc, units: 16777216}\n",
         "layers: expected layers of at most 1,099,511,627,776 parameters (a limit of "
         "gridcost), got 'fc2: 281,474,993,487,872'"),
    ],
    ids=["filters", "huge-units", "kernel", "params-count", "layer-params"],
)
def test_network_sizes_out_of_range(layers: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _net(layers)
    assert _message(info) == f"t.yaml: {message}"


def test_samples_and_input_out_of_range() -> None:
    with pytest.raises(SpecError) as info:
        _net("  - {type: fc, units: 2}\n",
             NET.replace("layers:", "dataset: {samples: 1000000000000000}\nlayers:"))
    assert _message(info) == ("t.yaml: dataset.samples: expected an integer from 1 to "
                              "100,000,000,000,000 (a limit of gridcost), got 1000000000000000")
    with pytest.raises(SpecError) as info:
        _net("  - {type: fc, units: 2}\n", NET.replace(
            "{height: 8, width: 8, channels: 4}", "{height: 16777216, width: 16777216, "
            "channels: 4}"))
    assert _message(info) == (
        "t.yaml: input.channels: expected an input of at most 1,099,511,627,776 values per "
        "sample, height × width × channels (a limit of gridcost), got '16777216×16777216×4'")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bandwidth: 1e-300 B/s",
         "bandwidth: expected a bandwidth from 1 kB/s to 1 PB/s (a limit of gridcost), "
         "got '1e-300 B/s'"),
        ("bandwidth: 4.77e+26 MB/s",
         "bandwidth: expected a bandwidth from 1 kB/s to 1 PB/s (a limit of gridcost), "
         "got '4.77e+26 MB/s'"),
        ("alpha: 1e308 us",
         "alpha: expected 0 or a latency from 1 ps to 10 s (a limit of gridcost), "
         "got '1e308 us'"),
        ("alpha: 1e-20 s",
         "alpha: expected 0 or a latency from 1 ps to 10 s (a limit of gridcost), "
         "got '1e-20 s'"),
        ("flop_rate: 1e30 FLOP/s",
         "flop_rate: expected a flop rate from 1 MFLOP/s to 1000 PFLOP/s (a limit of "
         "gridcost), got '1e30 FLOP/s'"),
        ("word_bytes: 1024",
         "word_bytes: expected an integer from 1 to 16 (a limit of gridcost), got 1024"),
        ("memory: 1 B",
         "memory: expected a bytes from 1 MiB to 1024 TiB (a limit of gridcost), got '1 B'"),
        ("optimizer: 1.0e+308",
         "optimizer: expected at most 1024 bytes per parameter (a limit of gridcost), "
         "got 1e+308"),
        ("gamma: 1 s/word",
         "gamma: expected a time per word up to 1 ms/word (a limit of gridcost), got '1 s/word'"),
        ("schedule: {backward_ratio: 1.0e+300}",
         "schedule.backward_ratio: expected a positive number (backward / forward compute) up "
         "to 100, got 1e+300"),
        ("compute: {tables: {t: {network: alexnet, epoch_time: {1: 1e20 s, 2: 3 s}}}}",
         "compute.tables.t.epoch_time.1: expected a time from 1 us to 10000000000 s (a limit "
         "of gridcost), got '1e20 s'"),
        ("per_collective: {p2p: {alpha: 1 us, bandwidth: 1e20 GB/s}}",
         "per_collective.p2p.bandwidth: expected a bandwidth from 1 kB/s to 1 PB/s (a limit "
         "of gridcost), got '1e20 GB/s'"),
        ("per_collective: {p2p: {alpha: 1 us, bandwidth: 1 GB/s, processes: "
         "{2147483648: {alpha: 1 us, bandwidth: 1 GB/s}}}}",
         "per_collective.p2p.processes.2147483648: expected a process count of at most "
         "1,073,741,824 (a limit of gridcost), got 2147483648"),
        ("compute: {tables: {t: {network: alexnet, epoch_time: {1: 1 s, 2147483648: 3 s}}}}",
         "compute.tables.t.epoch_time.2147483648: expected a local batch size of at most "
         "1,073,741,824 (a limit of gridcost), got 2147483648"),
        ("levels: [{name: a, processes: 2147483648, alpha: 1 us, bandwidth: 1 GB/s}, "
         "{name: b}]",
         "levels[0].processes: expected an integer from 1 to 1,073,741,824 (a limit of "
         "gridcost), got 2147483648"),
    ],
    ids=["tiny-bandwidth", "huge-bandwidth", "huge-alpha", "tiny-alpha", "flop-rate",
         "word-bytes", "memory", "optimizer", "gamma", "backward-ratio", "epoch-time",
         "per-collective", "group-size", "local-batch", "level-processes"],
)
def test_machine_values_out_of_range(line: str, message: str) -> None:
    key = line.split(":")[0]
    head = "\n".join(row for row in MACHINE.splitlines() if not row.startswith(f"{key}:"))
    with pytest.raises(SpecError) as info:
        _machine(line + "\n", head + "\n")
    assert _message(info) == f"m.yaml: {message}"


def test_bytes_that_are_not_utf8_on_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"name: \xff\xfe\n")))
    with pytest.raises(SpecError) as info:
        read_document("-", "networks")
    assert _message(info) == "<stdin>: expected UTF-8 text, got 'byte 0xff on line 1 (offset 6)'"


def test_stdin_is_read_once_for_load_and_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).parent.parent / "networks" / "alexnet.yaml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    assert load_network("-").name == "alexnet"
    assert read_document("-", "networks").sha256 == hashlib.sha256(text).hexdigest()


@pytest.mark.parametrize("name", ["x" * 300, "/tmp/" + "x" * 300, "/tmp/a\0b"])
def test_names_the_system_cannot_look_up(name: str) -> None:
    with pytest.raises(SpecError) as info:
        load_network(name)
    assert _message(info).endswith(": expected an existing network file, got 'no such file'")


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (2 * 2**20) + "\nversion: 1\n")
    with pytest.raises(SpecError) as info:
        load_network(str(path))
    assert _message(info) == (f"{path}: expected a file of at most 2 MiB (a limit of gridcost; "
                              "this one is larger)")


def test_messages_are_one_bounded_line() -> None:
    with pytest.raises(SpecError) as info:
        _net("  - {type: conv, filters: 8, kernel: 3, name: \"" + "n\\n" * 5000 + "\"}\n"
             "  - {type: conv, filters: 8, kernel: 3, name: \"" + "n\\n" * 5000 + "\"}\n")
    message = _message(info)
    assert len(message) <= 1000
    assert "n\\nn\\n" in message
    with pytest.raises(SpecError) as info:
        _net("  - {type: fc, units: " + "9" * 5000 + "}\n")
    assert _message(info).startswith("t.yaml: expected valid YAML values (Exceeds the limit "
                                     "(4300 digits) for integer string conversion")
