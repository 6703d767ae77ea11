"""gridcost import (docs/import.md): the format's new layer fields, the YAML writer, sources, the
torch and ONNX tracers, the CLI, and the bundled networks imported from torchvision."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest
from cli_helpers import fail, run, run_json
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.errors import SpecError, UsageError
from costmodel.inputs.importers import import_network, is_source, parse_input, parse_kwargs
from costmodel.inputs.importers.records import Record, Trace, conv_window, network_yaml
from costmodel.inputs.loaders import load_network, network_from_text

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
HAS_ONNX = importlib.util.find_spec("onnx") is not None
needs_torchvision = pytest.mark.skipif(not HAS_TORCHVISION, reason="needs torch and torchvision "
                                       "(pip install '.[import]')")
needs_onnx = pytest.mark.skipif(not (HAS_TORCHVISION and HAS_ONNX), reason="needs torch, "
                                "torchvision and onnx (pip install '.[import]')")


def net(layers: str, input_: str = "{height: 8, width: 8, channels: 3}") -> object:
    return network_from_text(f"version: 1\nname: t\ninput: {input_}\nlayers:\n{layers}", "t.yaml")


# ------------------------------------------------------------------ format extensions (no torch)


def test_fc_with_tokens_keeps_positions_and_counts_tokens_times_units() -> None:
    n = net("  - {type: fc, units: 6, tokens: 4, input: [1, 4, 5]}\n"
            "  - {type: fc, units: 2, tokens: 4}\n", "{height: 2, width: 2, channels: 5}")
    first, second = n.layers  # type: ignore[attr-defined]
    assert first.in_shape == (1, 4, 5) and first.out_shape == (1, 4, 6)
    assert first.activations == 4 * 6          # tokens × units
    assert first.params == 5 * 6 + 6           # weights + bias, independent of the tokens
    assert first.macs == 4 * 5 * 6             # tokens · C · units
    assert second.in_shape == (1, 4, 6) and second.macs == 4 * 6 * 2


def test_fc_tokens_must_match_the_input_positions() -> None:
    with pytest.raises(SpecError, match=r"layers\[0\].tokens: expected the input's height × "
                                        r"width 2×2 = 4"):
        net("  - {type: fc, units: 6, tokens: 5}\n", "{height: 2, width: 2, channels: 5}")


def test_dilated_conv_window_and_halo() -> None:
    n = net("  - {type: conv, filters: 4, kernel: 3, dilation: 2, padding: 2}\n")
    layer = n.layers[0]  # type: ignore[attr-defined]
    assert layer.out_shape == (8, 8, 4)        # (8 + 4 − 2·2 − 1)/1 + 1 = 8
    assert layer.halo_rows == (2, 2)           # a dilated 3×3 spans 5 rows: 2 each side
    assert layer.params == 4 * 3 * 9 + 4


def test_input_override_norm_channels_params_matmul_and_merge() -> None:
    n = net("  - {type: params, count: 7, name: leading}\n"
            "  - {type: conv, name: a, filters: 4, kernel: 1}\n"
            "  - {type: norm, kind: channel, channels: 3}\n"
            "  - {type: matmul, batch: 2, m: 3, k: 4, n: 5}\n"
            "  - {type: merge, op: add}\n"
            "  - {type: conv, name: b, filters: 2, kernel: 1, input: [8, 8, 3]}\n")
    a, b = n.layers  # type: ignore[attr-defined]
    assert a.params == 3 * 4 + 4 + 7 + 2 * 3   # weights, bias, leading params, norm over 3 channels
    assert a.free_macs == 2 * 3 * 4 * 5 and a.free_activations == 2 * 3 * 5
    assert a.macs == 64 * 4 * 3 + 120
    assert b.in_shape == (8, 8, 3)
    assert n.macs == a.macs + b.macs  # type: ignore[attr-defined]


@pytest.mark.parametrize(("layers", "message"), [
    ("  - {type: conv, filters: 2, kernel: 1, input: [8, 8]}\n",
     "layers[0].input: expected a list [height, width, channels] of integers ≥ 1, got [8, 8]"),
    ("  - {type: matmul, batch: 1, m: 1, k: 1, n: 1}\n",
     "layers[0].batch: expected a matmul after a weighted layer"),
    ("  - {type: conv, filters: 2, kernel: 1}\n  - {type: merge, op: sum}\n",
     "layers[1].op: expected one of add, concat, multiply, got 'sum'"),
    ("  - {type: conv, filters: 2, kernel: 1}\n  - {type: params, count: 0}\n",
     "layers[1].count: expected an integer ≥ 1, got 0"),
])
def test_new_fields_are_strict(layers: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        net(layers)
    assert message in str(info.value)


# ------------------------------------------------------------------ writer and sources


def test_writer_round_trips_through_the_loader() -> None:
    records = (Record("conv", "c", "Conv2d", (8, 8, 3), (4, 4, 6), (3, 3), (2, 2), (1, 1),
                      params=6 * 3 * 9),
               Record("norm", "bn", "BatchNorm2d", norm_kind="batch", channels=6),
               Record("fc", "proj", "Linear", (1, 16, 6), (1, 16, 12), bias=True,
                      params=6 * 12 + 12),
               Record("matmul", "attn", "Attention", matmul=(2, 16, 3, 16)),
               Record("merge", "blk", "Block", merge_op="add"),
               Record("fc", "head", "Linear", (1, 1, 12), (1, 1, 10), bias=True,
                      params=130))
    trace = Trace("toy", "toy:build", (("torch", "x"),), (8, 8, 3), records,
                  skipped=("m.up (ConvTranspose2d): operator conv_transpose2d",))
    text = network_yaml(trace)
    assert text.startswith("# Imported by gridcost from toy:build (torch x).")
    assert "# SKIPPED (not costed): m.up (ConvTranspose2d)" in text
    network = network_from_text(text, "toy.yaml")
    assert network.params == trace.params == 162 + 12 + 84 + 130
    assert network.macs == trace.macs == 16 * 6 * 27 + 16 * 6 * 12 + 2 * 16 * 3 * 16 + 120
    assert [layer.name for layer in network.layers] == ["c", "proj", "head"]


def test_source_syntax() -> None:
    assert is_source("torchvision:resnet50") and is_source("timm:vit_small_patch16_224")
    assert is_source("my_pkg.models:build") and is_source("model.ONNX")
    assert not is_source("resnet50") and not is_source("nets/my.yaml")
    assert parse_input("3x299x299") == (299, 299, 3)
    assert parse_kwargs('{"width": 4}') == {"width": 4}
    with pytest.raises(UsageError, match="--input: expected CxHxW"):
        parse_input("224x224")
    with pytest.raises(UsageError, match="--kwargs: expected a JSON object"):
        parse_kwargs("[1]")


# ------------------------------------------------------------------ torch


@needs_torchvision
def test_own_module_with_kwargs_traces_every_fact() -> None:
    _, trace, network = import_network("import_models:Tiny", (16, 16, 3), {"width": 4})
    conv, body, fc = network.layers
    assert (conv.name, conv.in_shape, conv.out_shape, conv.params) == (
        "conv", (16, 16, 3), (16, 16, 4), 4 * 3 * 9 + 2 * 4)   # bias-free + batch norm
    assert body.dilation == (2, 2) and body.padding == (2, 2) and body.params == 4 * 4 * 9 + 4
    assert body.in_shape == (16, 16, 4) and body.macs == 16 * 16 * 4 * 4 * 9
    assert fc.in_shape == (1, 1, 4) and fc.params == 4 * 10 + 10
    assert [r.merge_op for r in trace.records if r.op == "merge"] == ["add"]
    from import_models import Tiny

    assert network.params == sum(p.numel() for p in Tiny(width=4).parameters())


@needs_torchvision
def test_unsupported_module_is_one_line_naming_path_and_type(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = fail(capsys, "import", "import_models:WithTransposed")
    assert line.startswith("gridcost: unsupported: up (ConvTranspose2d): operator "
                           "conv_transpose2d")
    out = tmp_path / "t.yaml"
    run("import", "import_models:WithTransposed", "--skip-unsupported", "-o", str(out))
    text = out.read_text()
    assert "# SKIPPED (not costed): up (ConvTranspose2d): operator conv_transpose2d" in text
    assert "parameters: 190" in text  # the skipped layer's 68 parameters still counted
    assert load_network(str(out)).params == 190


@needs_torchvision
@pytest.mark.parametrize(("args", "message"), [
    (("import", "torchvision:resnet5"), "gridcost: unknown torchvision classification model "
                                        "'resnet5'"),
    (("import", "import_models:not_a_module"), "the callable did not return a torch.nn.Module"),
    (("import", "import_models:Tiny", "--kwargs", '{"depth": 3}'),
     "the constructor rejected the arguments"),
    (("import", "no_such_pkg.mod:f"), "cannot import module 'no_such_pkg.mod'"),
    (("import", "import_models:Tied"), "gridcost: unsupported: fc (Linear): a linear layer "
                                       "reusing an earlier layer's weights (tied weights)"),
    (("import", "import_models:Tiny", "--input", "3x8"), "--input: expected CxHxW"),
])
def test_bad_sources_fail_in_one_line(capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                      message: str) -> None:
    assert message in fail(capsys, *args)


@needs_torchvision
def test_vit_tokens_attention_and_parameters() -> None:
    _, _, network = import_network("torchvision:vit_b_16")
    qkv = network.layers[network.layer_index("encoder.layers.encoder_layer_0.self_attention."
                                             "in_proj")]
    assert qkv.in_shape == (1, 197, 768) and qkv.out_shape == (1, 197, 2304)
    assert qkv.activations == 197 * 2304
    # Q·Kᵀ and A·V of 12 heads over 197 tokens: 2·197²·768 weight-free multiply-adds
    assert qkv.free_macs == 2 * 197 * 197 * 768
    assert qkv.free_activations == 12 * 197 * 197 + 12 * 197 * 64
    assert network.params == 86_567_656
    assert network.layers[0].kind == "conv" and network.layers[0].kernel == (16, 16)


@needs_torchvision
def test_cli_import_and_net_source(tmp_path: Path) -> None:
    out = tmp_path / "r18.yaml"
    run("import", "torchvision:resnet18", "-o", str(out))
    text = out.read_text()
    assert text.startswith("# Imported by gridcost from torchvision:resnet18 (torch ")
    assert "torchvision 0." in text.splitlines()[0]
    from_file = run_json("optimize", "--net", str(out), "--P", "64")
    from_source = run_json("optimize", "--net", "torchvision:resnet18", "--P", "64")
    assert from_source["best"] == from_file["best"]
    report = run("report", "grids", "--net", "torchvision:resnet18", "--P", "16", "--format",
                 "markdown")
    assert "torchvision:resnet18 (sha256 " in report


BUNDLED = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg16", "vgg19",
           "alexnet-single"]


def _facts(layer: object) -> tuple[object, ...]:
    return tuple(getattr(layer, k) for k in ("kind", "in_shape", "out_shape", "kernel", "stride",
                                             "padding", "groups", "params", "macs"))


@needs_torchvision
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_networks_equal_their_torchvision_import(name: str) -> None:
    bundled = load_network(name)
    source = "torchvision:" + ("alexnet" if name == "alexnet-single" else name)
    _, _, imported = import_network(source)
    assert [_facts(x) for x in imported.layers] == [_facts(x) for x in bundled.layers]
    assert imported.params == bundled.params and imported.macs == bundled.macs


@needs_torchvision
@pytest.mark.parametrize("name", ["resnet50", "vgg16", "alexnet-single"])
@pytest.mark.parametrize("P", ["8", "64", "512"])
def test_bundled_and_imported_cost_the_same_on_every_plan(name: str, P: str) -> None:
    source = "torchvision:" + ("alexnet" if name == "alexnet-single" else name)
    for plan in ("model-batch", "fc-model", "domain-batch", "beyond-batch", "per-layer"):
        a = run_json("optimize", "--net", name, "--P", P, "--plan", plan)
        b = run_json("optimize", "--net", source, "--P", P, "--plan", plan)
        assert json.dumps(a["best"], sort_keys=True) == json.dumps(b["best"], sort_keys=True)


def test_the_grouped_alexnet_is_not_torchvision_alexnet() -> None:
    """The paper's AlexNet (two towers, groups=2, 227×227) is not in torchvision: its import is
    alexnet-single, which differs in filters and parameters (docs/import.md)."""
    grouped, single = load_network("alexnet"), load_network("alexnet-single")
    assert grouped.params == 60_965_224 and single.params == 61_100_840
    assert [x.groups for x in grouped.layers[:5]] == [1, 2, 1, 2, 2]


# ------------------------------------------------------------------ ONNX


def _export(model: object, shape: tuple[int, ...], path: Path) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train()  # type: ignore[attr-defined]
        torch.onnx.export(model, torch.zeros(*shape), str(path), dynamo=False,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)


@needs_onnx
@pytest.mark.parametrize("which", ["resnet18", "tiny_vit"])
def test_onnx_gives_the_same_layer_facts_as_torch(which: str, tmp_path: Path) -> None:
    import torch
    import torchvision
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    if which == "resnet18":
        model, hw = torchvision.models.resnet18(), 64
    else:
        model, hw = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                      hidden_dim=32, mlp_dim=64, num_classes=10), 32
    path = tmp_path / f"{which}.onnx"
    _export(model, (1, 3, hw, hw), path)
    _, trace, from_onnx = import_network(str(path))
    from costmodel.inputs.importers.records import network_yaml as write
    from costmodel.inputs.importers.torch_trace import trace_module

    from_torch = network_from_text(write(trace_module(model.to("meta"), (hw, hw, 3), which,
                                                      which, ())), "t")
    facts = ("kind", "in_shape", "out_shape", "kernel", "stride", "padding", "groups", "params",
             "macs")
    assert [[getattr(x, k) for k in facts] for x in from_onnx.layers] == \
           [[getattr(x, k) for k in facts] for x in from_torch.layers]
    assert from_onnx.params == sum(p.numel() for p in model.parameters())
    assert trace.versions[0][0] == "onnx"


def test_missing_onnx_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    if not HAS_ONNX:
        assert "needs onnx" in fail(capsys, "import", "nope.onnx")
    else:
        assert fail(capsys, "import", "nope.onnx") == (
            "gridcost: nope.onnx: expected an existing .onnx file, got 'no such file'")


@needs_torchvision
def test_vit_block_words_against_megatron() -> None:
    """The worked example of docs/import.md: ViT-B/16, one encoder block, Pr = 4."""
    _, _, network = import_network("torchvision:vit_b_16")
    block = [x for x in network.layers if x.name.startswith("encoder.layers.encoder_layer_0.")]
    assert [x.activations for x in block] == [453_888, 151_296, 605_184, 151_296]
    pr = 4
    gridcost_words = 3 * (pr - 1) / pr * sum(x.activations for x in block)
    megatron_words = 4 * 2 * (pr - 1) / pr * 197 * 768
    assert (gridcost_words, megatron_words) == (3_063_744, 907_776)
    assert round(gridcost_words / megatron_words, 1) == 3.4


# ------------------------------------------------------------------ properties (no torch)

@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), groups=st.sampled_from([1, 2, 4]),
       cin=st.integers(1, 4), cout=st.integers(1, 4), k=st.integers(1, 5), s=st.integers(1, 3),
       p=st.integers(0, 3), d=st.integers(1, 3), tokens=st.integers(1, 50),
       units=st.integers(1, 9), mm=st.tuples(*[st.integers(1, 6)] * 4))
def test_written_records_load_back_with_the_same_counts(
        h: int, w: int, groups: int, cin: int, cout: int, k: int, s: int, p: int, d: int,
        tokens: int, units: int, mm: tuple[int, int, int, int]) -> None:
    """Any conv the window formula accepts, a token fc and a matmul: the loader re-derives the
    writer's parameters and multiply-adds exactly."""
    out_h, out_w = (conv_window(n, k, s, p, d) for n in (h, w))
    if min(out_h, out_w) < 1:
        return
    c_in, c_out = cin * groups, cout * groups
    records = (
        Record("conv", "c", "Conv2d", (h, w, c_in), (out_h, out_w, c_out), (k, k), (s, s),
               (p, p), (d, d), groups, True, c_out * cin * k * k + c_out),
        Record("fc", "f", "Linear", (1, tokens, 3), (1, tokens, units), bias=False,
               params=3 * units),
        Record("matmul", "m", "Attention", matmul=mm),
    )
    trace = Trace("p", "p:p", (), (h, w, c_in), records)
    network = network_from_text(network_yaml(trace), "p.yaml")
    assert network.params == trace.params
    assert network.macs == trace.macs
    conv, fc = network.layers
    assert conv.out_shape == (out_h, out_w, c_out) and conv.dilation == (d, d)
    assert fc.activations == tokens * units and fc.tokens == tokens


@needs_onnx
def test_onnx_unsupported_operator_names_the_node(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    from import_models import WithTransposed

    path = tmp_path / "up.onnx"
    _export(WithTransposed(), (1, 3, 8, 8), path)
    line = fail(capsys, "import", str(path))
    assert line.startswith("gridcost: unsupported: /up/ConvTranspose (ConvTranspose): operator "
                           "ConvTranspose with a weight")
    _, trace, network = import_network(str(path), skip_unsupported=True)
    assert network.params == 190 and len(trace.skipped) == 1
