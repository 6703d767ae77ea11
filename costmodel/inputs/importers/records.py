"""Traced layer records and their YAML text (the importer's middle stage; no torch here).

A tracer (torch or ONNX) turns a model into a :class:`Trace`: its records in execution
(topological) order.  :func:`network_yaml` writes them in gridcost's network format
(docs/formats.md, docs/import.md) — the loader then re-derives every shape, parameter count and
multiply-add from the file, so a record the format cannot express faithfully is refused here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from costmodel.errors import GridcostError

Shape = tuple[int, int, int]
"""(height, width, channels) of one sample's tensor; tokens × features is (1, tokens, features)."""


class UnsupportedError(GridcostError):
    """A module or operator the importer cannot express: its path and type, one line."""

    def __init__(self, where: str, what: str, why: str) -> None:
        self.where, self.what, self.why = where, what, why
        super().__init__(f"unsupported: {where or '<model>'} ({what}): {why}; "
                         "--skip-unsupported skips it and lists it in the output")


@dataclass(frozen=True)
class Record:
    """One traced operation that matters to the cost model.

    ``op``: 'conv' and 'fc' are weighted layers (``params`` = weights + bias); 'norm' a
    normalization with a scale and a shift per channel (``channels``, kind 'batch' or 'channel');
    'params' other parameters used without a weighted product (class token, position embedding,
    layer scale, relative-position bias, a normalization with only a scale), ``params`` of them;
    'matmul' a weight-free product of two activations, ``matmul`` = (batch, m, k, n) per sample
    (attention's Q·Kᵀ and A·V); 'merge' a residual addition, a concatenation or a gating product
    (``merge_op``), kept for the reader only.  Shapes are per sample, (H, W, C).
    """

    op: str
    name: str
    module_type: str
    in_shape: Shape = (1, 1, 1)
    out_shape: Shape = (1, 1, 1)
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = False
    params: int = 0
    norm_kind: str = ""
    channels: int = 0
    matmul: tuple[int, int, int, int] = (0, 0, 0, 0)
    merge_op: str = ""

    @property
    def weighted(self) -> bool:
        return self.op in ("conv", "fc")

    @property
    def tokens(self) -> int:
        """Positions an fc layer is applied to (1: a flattened input)."""
        return self.in_shape[0] * self.in_shape[1]

    @property
    def macs(self) -> int:
        """Forward multiply-adds per sample (conv: d·C/groups·k_h·k_w; fc: tokens·C·units;
        matmul: batch·m·k·n)."""
        h, w, c = self.out_shape
        if self.op == "conv":
            return h * w * c * (self.in_shape[2] // self.groups) * self.kernel[0] * self.kernel[1]
        if self.op == "fc":
            return self.tokens * self.in_shape[2] * c
        if self.op == "matmul":
            b, m, k, n = self.matmul
            return b * m * k * n
        return 0


@dataclass(frozen=True)
class Trace:
    """A traced model: its records, the input shape, where it came from and what was skipped."""

    name: str
    source: str
    versions: tuple[tuple[str, str], ...]
    input_shape: Shape
    records: tuple[Record, ...]
    skipped: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def params(self) -> int:
        """Every parameter: weighted layers, normalizations and the others."""
        return sum(r.params + (2 * r.channels if r.op == "norm" else 0) for r in self.records)

    @property
    def macs(self) -> int:
        """Forward multiply-adds per sample: weighted layers and weight-free products."""
        return sum(r.macs for r in self.records)

    @property
    def weighted(self) -> tuple[Record, ...]:
        return tuple(r for r in self.records if r.weighted)


def _pair(value: tuple[int, int]) -> int | list[int]:
    return value[0] if value[0] == value[1] else [value[0], value[1]]


def _flow(items: dict[str, object]) -> str:
    """A YAML flow mapping; strings as JSON strings (valid YAML), lists as flow sequences."""
    parts = []
    for key, value in items.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = value if key in ("type", "kind", "op") else json.dumps(value)
        else:
            text = str(value).replace(" ", "")
        parts.append(f"{key}: {text}")
    return "{" + ", ".join(parts) + "}"


def conv_window(n: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """⌊(n + 2p − d·(k−1) − 1)/s⌋ + 1: the loader's window formula (docs/formats.md)."""
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _layer_item(r: Record, running: Shape | None) -> tuple[dict[str, object], Shape]:
    """The YAML mapping of a weighted layer and the running shape after it."""
    item: dict[str, object] = {"type": r.op, "name": r.name}
    if r.in_shape != running:
        item["input"] = list(r.in_shape)
    if r.op == "conv":
        expected = tuple(conv_window(n, k, s, p, d) for n, k, s, p, d in zip(
            r.in_shape[:2], r.kernel, r.stride, r.padding, r.dilation))
        if expected != r.out_shape[:2]:
            raise UnsupportedError(r.name, r.module_type, f"output {r.out_shape[:2]} is not "
                                   f"the window formula's {expected} (asymmetric padding?)")
        item.update(filters=r.out_shape[2], kernel=_pair(r.kernel), stride=_pair(r.stride),
                    padding=_pair(r.padding))
        if r.dilation != (1, 1):
            item["dilation"] = _pair(r.dilation)
        if r.groups != 1:
            item["groups"] = r.groups
    else:
        item["units"] = r.out_shape[2]
        if r.tokens > 1:
            item["tokens"] = r.tokens
    item["bias"] = r.bias
    return item, r.out_shape


def _comment(text: str) -> str:
    return " ".join(text.split())


def network_yaml(trace: Trace, description: str = "") -> str:
    """The network file of ``trace`` (docs/formats.md): a header comment naming the source and
    the library versions, then one line per record.  Every weighted layer states its ``input``
    shape where it is not the previous weighted layer's output (graphs that are not a chain)."""
    if not trace.weighted:
        raise UnsupportedError(trace.source, "model", "no convolution or linear layer traced")
    versions = ", ".join(f"{k} {v}" for k, v in trace.versions)
    lines = [f"# Imported by gridcost from {trace.source} ({versions}).",
             "# Traced without weights (shapes only); layers in execution order "
             "(docs/import.md).",
             f"# {len(trace.weighted)} weighted layers, {trace.params:,} parameters, "
             f"{trace.macs:,} multiply-adds per sample.",
             "# Where a layer's input is not the previous weighted layer's output, it states "
             "its `input`."]
    for note in trace.notes:
        lines.append(f"# Note: {_comment(note)}")
    for skipped in trace.skipped:
        lines.append(f"# SKIPPED (not costed): {_comment(skipped)}")
    for unused in trace.unused:
        lines.append(f"# Not used by the traced forward pass (parameters counted, no compute): "
                     f"{_comment(unused)}")
    h, w, c = trace.input_shape
    lines += ["version: 1", f"name: {json.dumps(trace.name)}",
              f"description: {json.dumps(description or f'imported from {trace.source}')}",
              f"source: {json.dumps(f'{trace.source} ({versions})')}",
              f"parameters: {trace.params}",
              f"input: {{height: {h}, width: {w}, channels: {c}}}",
              "layers:"]
    running: Shape | None = trace.input_shape
    for r in trace.records:
        if r.weighted:
            item, running = _layer_item(r, running)
        elif r.op == "norm":
            item = {"type": "norm", "kind": r.norm_kind, "channels": r.channels, "name": r.name}
        elif r.op == "params":
            item = {"type": "params", "count": r.params, "name": f"{r.name} ({r.module_type})"}
        elif r.op == "matmul":
            b, m, k, n = r.matmul
            item = {"type": "matmul", "batch": b, "m": m, "k": k, "n": n, "name": r.name}
        else:
            item = {"type": "merge", "op": r.merge_op, "name": r.name}
        note = ""
        if r.weighted:
            note = (f"  # -> {'x'.join(map(str, r.out_shape))}, {r.params:,} parameters, "
                    f"{r.macs:,} MACs")
        elif r.op == "matmul":
            note = f"  # {r.macs:,} MACs, no parameters"
        lines.append(f"  - {_flow(item)}{note}")
    return "\n".join(lines) + "\n"
