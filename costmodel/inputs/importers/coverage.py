"""Every torchvision classification model imported and checked against torchvision's own numbers.

:func:`coverage_rows` traces each model of ``torchvision.models.list_models(module=
torchvision.models)`` as its DEFAULT weights were published (the weights' input crop, and the
constructor arguments those weights imply, :data:`PUBLISHED_KWARGS`) and returns its imported
parameters and multiply-adds beside ``sum(p.numel())`` and the weights' ``num_params`` and
``_ops``.  :func:`coverage_markdown` renders the table of docs/import.md; the tests check both
the numbers and that the docs are current.  Needs torch and torchvision.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

PUBLISHED_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False},
    "vit_h_14": {"image_size": 518},
}
"""Constructor arguments of the published weights where they differ from the builder's defaults:
torchvision's GoogLeNet weights drop the auxiliary classifiers (the builder keeps them without
weights), and ViT-H/14's weights are for 518×518 inputs."""

OPS_TOLERANCE = 0.005
"""Relative tolerance of imported multiply-adds against torchvision's ``_ops`` (besides its
rounding to 0.001 G); the exceptions are :data:`OPS_EXPLAINED`."""

OPS_EXPLAINED: dict[str, str] = {
    "inception_v3": "traced in training mode, the auxiliary classifier runs (+6 M MACs); "
                    "torchvision counts inference",
    "swin_v2_t": "the continuous position-bias MLP runs once per step on a fixed table, not per "
                 "sample: its parameters are counted, its compute is not",
    "swin_v2_s": "as swin_v2_t",
    "swin_v2_b": "as swin_v2_t",
}


@dataclass(frozen=True)
class CoverageRow:
    """One torchvision model: its published setting and the imported and published counts."""

    name: str
    input_size: int
    kwargs: dict[str, Any]
    params: int
    numel: int
    published_params: int
    macs: int
    published_gmacs: float
    weighted_layers: int

    @property
    def ops_error(self) -> float:
        """Imported / published multiply-adds − 1."""
        return self.macs / 1e9 / self.published_gmacs - 1.0

    @property
    def ops_agree(self) -> bool:
        """Within :data:`OPS_TOLERANCE`, or within the published rounding (0.0005 G)."""
        return (abs(self.ops_error) <= OPS_TOLERANCE
                or abs(self.macs / 1e9 - self.published_gmacs) <= 0.0005)


def published_setting(name: str) -> tuple[int, dict[str, Any]]:
    """(input size, constructor kwargs) of a torchvision model's DEFAULT weights."""
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    crop = getattr(weights.transforms(), "crop_size", [224])
    return int(crop[0]), dict(PUBLISHED_KWARGS.get(name, {}))


def coverage_row(name: str) -> CoverageRow:
    """Import ``torchvision:NAME`` as its weights were published and compare."""
    import torchvision

    from costmodel.inputs.importers.records import network_yaml
    from costmodel.inputs.importers.torch_trace import (
        build_on_meta,
        torch_versions,
        total_parameters,
        trace_module,
    )
    from costmodel.inputs.loaders import network_from_text

    size, kwargs = published_setting(name)
    source = f"torchvision:{name}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # initialization warnings, meaningless on meta tensors
        model = build_on_meta(lambda **k: torchvision.models.get_model(name, **k), kwargs)
        trace = trace_module(model, (size, size, 3), source, source,
                             torch_versions("torchvision"))
    numel = total_parameters(model)
    network = network_from_text(network_yaml(trace), source)
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    return CoverageRow(name, size, kwargs, network.params, numel,
                       int(meta["num_params"]), network.macs, float(meta["_ops"]),
                       len(network.layers))


def coverage_rows() -> list[CoverageRow]:
    """:func:`coverage_row` of every torchvision classification model, by name."""
    import torchvision

    return [coverage_row(name)
            for name in sorted(torchvision.models.list_models(module=torchvision.models))]


def coverage_markdown(rows: list[CoverageRow]) -> str:
    """The coverage table of docs/import.md."""
    lines = ["| model | input | weighted layers | parameters (imported = numel = published) | "
             "GMAC/sample imported | torchvision `_ops` | difference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        same = "✓" if r.params == r.numel == r.published_params else "✗"
        args = ", ".join(f"{k}={v}" for k, v in r.kwargs.items())
        note = f" ({args})" if args else ""
        lines.append(f"| {r.name}{note} | {r.input_size} | {r.weighted_layers} | "
                     f"{r.params:,} {same} | {r.macs / 1e9:.4f} | {r.published_gmacs:.3f} | "
                     f"{100 * r.ops_error:+.2f} %{' †' if r.name in OPS_EXPLAINED else ''} |")
    return "\n".join(lines) + "\n"
