"""Every torchvision classification model imports, and its parameters and multiply-adds agree with
torchvision's own numbers (docs/import.md §Coverage); a sample of timm models likewise.

torchvision publishes, in each model's DEFAULT weights metadata, ``num_params`` and ``_ops``: the
forward multiply-adds of one sample in G (torchvision's "GFLOPS" column counts one multiply-add as
one operation) at the weights' input size, rounded to 0.001.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import pytest

from costmodel.inputs.importers.coverage import (
    OPS_EXPLAINED,
    OPS_TOLERANCE,
    CoverageRow,
    coverage_markdown,
    coverage_rows,
)

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
HAS_TIMM = importlib.util.find_spec("timm") is not None
DOC = Path(__file__).resolve().parent.parent / "docs" / "import.md"
BEGIN, END = "<!-- coverage table: begin -->", "<!-- coverage table: end -->"

pytestmark = pytest.mark.skipif(not HAS_TORCHVISION, reason="needs torch and torchvision "
                                "(pip install '.[import]')")


@pytest.fixture(scope="module")
def rows() -> list[CoverageRow]:
    return coverage_rows()


def test_every_torchvision_classification_model_imports(rows: list[CoverageRow]) -> None:
    import torchvision

    assert [r.name for r in rows] == sorted(torchvision.models.list_models(
        module=torchvision.models))
    assert len(rows) >= 80


def test_parameters_equal_numel_and_the_published_count(rows: list[CoverageRow]) -> None:
    wrong = [(r.name, r.params, r.numel, r.published_params) for r in rows
             if not r.params == r.numel == r.published_params]
    assert wrong == []


def test_multiply_adds_agree_with_the_published_operations(rows: list[CoverageRow]) -> None:
    assert OPS_TOLERANCE == 0.005
    wrong = [(r.name, r.macs, r.published_gmacs) for r in rows
             if not r.ops_agree and r.name not in OPS_EXPLAINED]
    assert wrong == []
    # the explained ones are off by what the explanation says, no more
    for r in rows:
        if r.name in OPS_EXPLAINED:
            assert abs(r.ops_error) < 0.005, r.name


def test_the_docs_coverage_table_is_current(rows: list[CoverageRow]) -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert table.strip() == coverage_markdown(rows).strip(), (
        "docs/import.md is stale: run python benchmarks/import_coverage.py --write")


TIMM_SAMPLE = ["resnet50", "vit_small_patch16_224", "deit_tiny_patch16_224", "convnext_tiny",
               "efficientnet_b0", "swin_tiny_patch4_window7_224", "mobilenetv3_large_100",
               "regnety_016", "mixer_b16_224", "levit_128", "coatnet_0_rw_224"]


def _flop_counter_macs(model: Any, shape: tuple[int, ...]) -> float:
    """torch's own FlopCounterMode on the meta device: FLOPs / 2 of conv, mm, bmm, attention."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(torch.empty(*shape, device="meta"))
    return counter.get_total_flops() / 2


@pytest.mark.skipif(not HAS_TIMM, reason="needs timm (pip install '.[import]')")
@pytest.mark.parametrize("name", TIMM_SAMPLE)
def test_timm_sample(name: str) -> None:
    """timm publishes no counts in the package: parameters against sum(p.numel()), multiply-adds
    against torch's FlopCounterMode (exact for these models; ±0.5 % allowed)."""
    import timm

    from costmodel.inputs.importers import import_network
    from costmodel.inputs.importers.torch_trace import build_on_meta, total_parameters

    _, trace, network = import_network(f"timm:{name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_on_meta(lambda **k: timm.create_model(name, pretrained=False, **k), {})
    assert trace.skipped == ()
    assert network.params == total_parameters(model)
    assert network.macs == pytest.approx(_flop_counter_macs(model, (2, 3, 224, 224)) / 2,
                                         rel=0.005)
