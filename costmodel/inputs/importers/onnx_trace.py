"""Trace an ONNX file: the same layer records as the torch tracer, from the graph and ONNX shape
inference (docs/import.md).  Needs only the ``onnx`` package; imported only by the importer.

Nodes are read in the file's order, which ONNX requires to be topological.  Conv → conv layer;
Gemm, and MatMul with an initializer as its second input → fc layer (tokens from the leading
dimensions); MatMul of two activations → weight-free matmul; BatchNormalization and
LayerNormalization → norm; Add, Mul, Concat of activations → merge; an initializer used by any
other node → parameters, unless it is a weight of at least two dimensions of an operator the
format cannot express (ConvTranspose, Gather of an embedding, …): unsupported.  The batch is the
first dimension of every activation.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper, shape_inference

from costmodel.errors import SpecError
from costmodel.inputs.importers.records import Record, Shape, Trace, UnsupportedError

_PARAM_FREE = {"Add", "Mul", "Sub", "Div", "Concat", "Reshape", "Expand", "Gather", "Transpose",
               "Unsqueeze", "Squeeze", "Slice", "Tile", "Where", "PRelu", "Sigmoid", "Flatten",
               "Cast", "Shape", "ConstantOfShape", "Range", "Equal", "Pow", "Sqrt"}
"""Operators an initializer may pass through (class token, position embedding, scales, shapes)."""


def _attrs(node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def trace_onnx(path: Path, skip_unsupported: bool = False) -> Trace:
    """Records of the ONNX model at ``path`` (docs/import.md)."""
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise SpecError(str(path), "", "an existing .onnx file", "no such file") from None
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise SpecError(str(path), "", "a valid ONNX model", type(exc).__name__) from None
    model = shape_inference.infer_shapes(model, data_prop=True)
    graph = model.graph
    sizes = {init.name: tuple(int(d) for d in init.dims) for init in graph.initializer}
    constants = {init.name for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            constants.update(node.output)
    shapes: dict[str, tuple[int, ...]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = tuple(int(d.dim_value) for d in dims)
    inputs = [i for i in graph.input if i.name not in sizes]
    if len(inputs) != 1 or len(shapes.get(inputs[0].name, ())) != 4:
        raise SpecError(str(path), "graph.input", "one input of fixed shape N×C×H×W")
    n, c, h, w = shapes[inputs[0].name]
    tracer = _OnnxTracer(sizes, constants, shapes, skip_unsupported, n)
    for node in graph.node:
        tracer.node(node)
    leftover = sum(math.prod(sizes[n]) for n in sizes if n not in tracer.used
                   and n not in tracer.buffers)
    records = list(tracer.records)
    unused = [f"{n} {sizes[n]}" for n in sizes if n not in tracer.used and n not in tracer.buffers]
    if leftover:
        records.append(Record("params", "unused initializers", "initializer", params=leftover))
    versions = (("onnx", onnx.__version__), ("opset", str(model.opset_import[0].version)))
    return Trace(path.stem, str(path), versions, (h, w, c), tuple(records),
                 tuple(tracer.skipped), tuple(unused))


class _OnnxTracer:
    def __init__(self, sizes: dict[str, tuple[int, ...]], constants: set[str],
                 shapes: dict[str, tuple[int, ...]], skip: bool, batch: int) -> None:
        self.sizes, self.constants, self.shapes, self.skip = sizes, constants, shapes, skip
        self.batch = batch
        self.alias: dict[str, str] = {}
        """Outputs of Transpose, Reshape, Cast, Identity of a weight alone → that weight (a
        training-mode export transposes a linear layer's weight in the graph)."""
        self.records: list[Record] = []
        self.used: set[str] = set()
        self.buffers: set[str] = set()
        self.skipped: list[str] = []
        self.names: dict[str, int] = {}

    def take(self, *names: str) -> int:
        count = 0
        for name in names:
            if name in self.sizes and name not in self.used:
                self.used.add(name)
                count += math.prod(self.sizes[name])
        return count

    def shape(self, name: str, node: Any) -> tuple[int, ...]:
        if name not in self.shapes:
            raise UnsupportedError(node.name, node.op_type, f"no inferred shape for {name!r}")
        return self.shapes[name]

    def unique(self, name: str) -> str:
        self.names[name] = self.names.get(name, 0) + 1
        return name if self.names[name] == 1 else f"{name}_{self.names[name]}"

    def unsupported(self, node: Any, why: str, params: int = 0) -> None:
        """Fail naming the node and its operator — or, skipping, list it and keep its
        ``params``."""
        if not self.skip:
            raise UnsupportedError(node.name, node.op_type, why)
        self.skipped.append(f"{node.name} ({node.op_type}): {why}")
        if params:
            self.records.append(Record("params", node.name, node.op_type, params=params))

    def per_sample(self, shape: tuple[int, ...]) -> int:
        return math.prod(shape) // self.batch

    def node(self, node: Any) -> None:
        op, ins = node.op_type, list(node.input)
        if op in ("Transpose", "Reshape", "Cast", "Identity") and ins and ins[0] in self.sizes:
            self.alias[node.output[0]] = ins[0]
            self.constants.add(node.output[0])
            return
        ins = [self.alias.get(i, i) if j == 0 or op != "MatMul" else i
               for j, i in enumerate(ins)]
        handler = getattr(self, f"_{op.lower()}", None)
        if handler is not None:
            handler(node, ins)
            return
        weights = [n for n in ins if n in self.sizes and len(self.sizes[n]) >= 2]
        if weights and op not in _PARAM_FREE:
            self.unsupported(node, f"operator {op} with a weight",
                             params=self.take(*ins))
            return
        count = self.take(*ins)
        if count:
            self.records.append(Record("params", node.name, op, params=count))
        activations = [n for n in ins if n and n not in self.constants]
        if op in ("Add", "Mul", "Concat") and len(activations) >= 2:
            merge = {"Add": "add", "Mul": "multiply", "Concat": "concat"}[op]
            self.records.append(Record("merge", node.name, op, merge_op=merge))

    def _conv(self, node: Any, ins: list[str]) -> None:
        x, y = self.shape(ins[0], node), self.shape(node.output[0], node)
        weight = self.sizes.get(ins[1])
        if len(x) != 4 or weight is None:
            self.unsupported(node, "a convolution that is not 2-D with an initializer weight")
            return
        a = _attrs(node)
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:] or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            self.unsupported(node, f"asymmetric or automatic padding {pads}")
            return
        bias = len(ins) > 2 and bool(ins[2])
        self.records.append(Record(
            "conv", self.unique(node.name or ins[1]), "Conv", (x[2], x[3], x[1]),
            (y[2], y[3], y[1]), (weight[2], weight[3]), tuple(a.get("strides", [1, 1])),
            (pads[0], pads[1]), tuple(a.get("dilations", [1, 1])), int(a.get("group", 1)),
            bias, self.take(*ins[1:]),
        ))

    def _fc(self, node: Any, x: tuple[int, ...], fan_in: int, units: int, bias: bool,
            params: int) -> None:
        tokens = self.per_sample(x) // fan_in
        shape_in: Shape = (1, tokens, fan_in) if tokens > 1 else (1, 1, fan_in)
        shape_out: Shape = (1, tokens, units) if tokens > 1 else (1, 1, units)
        self.records.append(Record("fc", self.unique(node.name), node.op_type, shape_in,
                                   shape_out, bias=bias, params=params))

    def _gemm(self, node: Any, ins: list[str]) -> None:
        weight = self.sizes.get(ins[1])
        if weight is None or len(weight) != 2:
            self.unsupported(node, "a Gemm whose second input is not a weight")
            return
        units = weight[0] if _attrs(node).get("transB", 0) else weight[1]
        fan_in = weight[1] if _attrs(node).get("transB", 0) else weight[0]
        bias = len(ins) > 2 and bool(ins[2])
        self._fc(node, self.shape(ins[0], node), fan_in, units, bias, self.take(*ins[1:]))

    def _matmul(self, node: Any, ins: list[str]) -> None:
        a, b = ins[0], ins[1]
        weight = self.alias.get(b, b)
        if weight in self.sizes and len(self.sizes[weight]) == 2:
            fan_in, units = self.shapes.get(b, self.sizes[weight])
            self._fc(node, self.shape(a, node), fan_in, units, False, self.take(weight))
            return
        if a in self.sizes or b in self.sizes:
            self.unsupported(node, "a product with a weight that is not a linear layer",
                             params=self.take(a, b))
            return
        sa, sb, out = self.shape(a, node), self.shape(b, node), self.shape(node.output[0], node)
        if len(sa) < 2 or len(sb) < 2:
            self.unsupported(node, "a matrix-vector product")
            return
        m, k, n = sa[-2], sa[-1], sb[-1]
        batch = self.per_sample(out) // (m * n)
        self.records.append(Record("matmul", node.name, "MatMul", matmul=(batch, m, k, n)))

    def _batchnormalization(self, node: Any, ins: list[str]) -> None:
        self.buffers.update(ins[3:5])
        self._norm(node, "batch", ins[1:3])

    def _layernormalization(self, node: Any, ins: list[str]) -> None:
        self._norm(node, "channel", ins[1:3])

    def _norm(self, node: Any, kind: str, params: list[str]) -> None:
        known = [p for p in params if p in self.sizes]
        if len(known) == 2 and self.sizes[known[0]] == self.sizes[known[1]] \
                and len(self.sizes[known[0]]) == 1:
            if self.take(*known):
                self.records.append(Record("norm", node.name, node.op_type, norm_kind=kind,
                                           channels=self.sizes[known[0]][0]))
            return
        count = self.take(*known)
        if count:
            self.records.append(Record("params", node.name, node.op_type, params=count))


def initializer_count(path: Path) -> int:
    """Elements of every initializer of the ONNX file (weights and buffers), for tests."""
    model = onnx.load(str(path))
    return sum(int(numpy_helper.to_array(i).size) for i in model.graph.initializer)
