"""Trace a torch ``nn.Module`` on the meta device: shapes only, no weights, no memory.

The model is built under ``torch.device("meta")`` (parameters have shapes but no storage) and run
once in training mode on a meta batch of two samples, under a ``TorchFunctionMode`` that sees every
torch function call: convolutions and linear layers become weighted-layer records, normalizations
and other parameter uses parameter records, products of two activations weight-free matmul
records, additions and concatenations of activations merge records (docs/import.md).  Module hooks
keep the module path of every call for names and messages.  Imported only by the ``import``
command and ``--net SOURCE``: ``import costmodel`` and the CLI start-up never load torch.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from costmodel.inputs.importers.records import Record, Shape, Trace, UnsupportedError

BATCH = 2
"""Samples in the traced meta batch: two, so training-mode batch norm on a 1×1 map is defined."""

_TAG = "_gridcost_activation"

_CONV = {torch.conv2d}
_LINEAR = {F.linear}
_NORMS = {F.batch_norm: "batch", F.layer_norm: "channel", F.group_norm: "channel",
          F.instance_norm: "channel"}
_MATMUL = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm,
           torch.Tensor.bmm}
_ADD = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__,
        torch.Tensor.__iadd__, torch.Tensor.add_}
_MUL = {torch.mul, torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__,
        torch.Tensor.__imul__, torch.Tensor.mul_}
_CAT = {torch.cat, torch.concat, torch.stack}
_PARAM_OPS = {"add", "__add__", "__radd__", "__iadd__", "add_", "mul", "__mul__", "__rmul__",
              "__imul__", "mul_", "__getitem__", "expand", "expand_as", "cat", "concat", "view",
              "reshape", "permute", "flatten", "unsqueeze", "squeeze", "transpose", "contiguous",
              "clone", "to", "type_as", "prelu", "sigmoid", "softmax", "__get__", "size", "dim",
              "numel", "repeat", "tile", "index_select", "gather", "sub", "__sub__", "__rsub__",
              "div", "__truediv__", "exp", "clamp", "stack", "flip", "abs", "neg", "__neg__",
              "layer_scale", "broadcast_to", "__len__", "detach"}
"""Functions a parameter may pass through without a weighted product of its own (class token,
position embedding, layer scale, relative-position bias tables): counted as parameters."""
_UNSUPPORTED_WEIGHTED = {"conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                         "conv_transpose3d", "embedding", "embedding_bag", "bilinear", "addmm",
                         "mm", "einsum", "lstm", "gru", "rnn_tanh", "rnn_relu", "baddbmm"}


def _per_sample(t: torch.Tensor) -> int:
    return int(t.numel()) // BATCH


def _hwc(t: torch.Tensor) -> Shape:
    """(H, W, C) of an N×C×H×W activation."""
    _, c, h, w = t.shape
    return int(h), int(w), int(c)


def _is_act(value: object) -> bool:
    return isinstance(value, torch.Tensor) and bool(getattr(value, _TAG, False))


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return int(value), int(value)


class _Recorder(TorchFunctionMode):
    """Records the calls that matter; everything else runs unchanged on meta tensors."""

    def __init__(self, names: dict[int, str], stack: list[tuple[str, str]],
                 skip_unsupported: bool) -> None:
        super().__init__()
        self.param_names = names
        self.stack = stack
        self.skip = skip_unsupported
        self.records: list[Record] = []
        self.used: set[str] = set()
        self.skipped: list[str] = []
        self.layer_names: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers

    def where(self) -> tuple[str, str]:
        return self.stack[-1] if self.stack else ("", "model")

    def unique(self, name: str) -> str:
        count = self.layer_names.get(name, 0) + 1
        self.layer_names[name] = count
        return name if count == 1 else f"{name}_{count}"

    def param(self, value: object) -> str | None:
        if isinstance(value, torch.nn.Parameter):
            return self.param_names.get(id(value), f"<parameter {tuple(value.shape)}>")
        return None

    def take(self, *values: object) -> int:
        """Mark parameters used; the count of those not used before."""
        count = 0
        for value in values:
            name = self.param(value)
            if name is not None and name not in self.used and isinstance(value, torch.Tensor):
                self.used.add(name)
                count += int(value.numel())
        return count

    def unsupported(self, why: str, what: str = "", params: int = 0) -> None:
        """Fail with one line naming the module path and type — or, skipping, list it and keep
        its ``params`` (they exist, and the gradient all-reduce moves them)."""
        path, kind = self.where()
        kind = kind if path else what or kind  # the module's own type, the operator at top level
        if not self.skip:
            raise UnsupportedError(path, kind, why)
        self.skipped.append(f"{path or '<model>'} ({kind}): {why}")
        if params:
            self.records.append(Record("params", path or "<model>", kind, params=params))

    # ------------------------------------------------------------------ dispatch

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        flat, _ = tree_flatten((args, kwargs))
        name = getattr(func, "__name__", "")
        if name in ("__get__", "__set__", "size", "dim", "numel", "__len__"):
            return func(*args, **kwargs)
        activation = any(_is_act(v) for v in flat)
        if func is F.multi_head_attention_forward:
            out = func(*args, **kwargs)
            self.attention(args, kwargs)
        elif func in _NORMS and activation:
            # a normalization keeps its input's shape; skipping it spares the slow meta
            # decomposition of training-mode batch norm
            out = torch.empty_like(args[0])
            self.norm(_NORMS[func], func, args, kwargs)
        else:
            out = func(*args, **kwargs)
            if activation:
                self.record(func, name, args, kwargs, flat, out)
            elif any(isinstance(v, torch.nn.Parameter) for v in flat):
                self.batch_independent(func, name, flat)
        if activation:
            for value in tree_flatten(out)[0]:
                if isinstance(value, torch.Tensor):
                    setattr(value, _TAG, True)
        return out

    def record(self, func: Any, name: str, args: Any, kwargs: Any, flat: list[Any],
               out: Any) -> None:
        if func in _CONV:
            self.conv(*args, **kwargs, out=out)
        elif func in _LINEAR:
            self.linear(*args, **kwargs, out=out)
        elif func in _MATMUL:
            self.matmul(args[0], args[1], out)
        elif func is torch.einsum:
            self.einsum(args[0], [v for v in flat if isinstance(v, torch.Tensor)], out)
        elif name in _UNSUPPORTED_WEIGHTED:
            self.unsupported(f"operator {name}", params=self.take(*flat))
        elif func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            heads = _per_sample(q) // (q.shape[-2] * q.shape[-1])
            self.product(heads, int(q.shape[-2]), int(q.shape[-1]), int(k.shape[-2]))
            self.product(heads, int(q.shape[-2]), int(k.shape[-2]), int(v.shape[-1]))
        elif func in _ADD | _MUL | _CAT:
            tensors = [v for v in flat if _is_act(v)]
            params = self.take(*flat)
            if params:
                self.params(params, flat)
            elif len(tensors) >= 2 and isinstance(out, torch.Tensor):
                op = "add" if func in _ADD else "multiply" if func in _MUL else "concat"
                path, kind = self.where()
                self.records.append(Record("merge", path or "<model>", kind, merge_op=op))
        elif any(isinstance(v, torch.nn.Parameter) for v in flat):
            self.parameter_use(name, flat)

    def parameter_use(self, name: str, flat: list[Any]) -> None:
        big = [v for v in flat if isinstance(v, torch.nn.Parameter) and v.dim() >= 2]
        if name in _UNSUPPORTED_WEIGHTED or (big and name not in _PARAM_OPS):
            self.unsupported(f"operator {name} with a weight", params=self.take(*flat))
            return
        count = self.take(*flat)
        if count:
            self.params(count, flat)

    def batch_independent(self, func: Any, name: str, flat: list[Any]) -> None:
        """A parameter used on no activation (Swin V2's position-bias MLP on a fixed table):
        its parameters count, its compute (once per step, not per sample) does not."""
        count = self.take(*flat)
        if count:
            self.params(count, flat)

    def params(self, count: int, flat: list[Any]) -> None:
        names = [self.param_names.get(id(v), "?") for v in flat
                 if isinstance(v, torch.nn.Parameter)]
        label = names[0] if len(names) == 1 else self.where()[0] or "<model>"
        self.records.append(Record("params", label, "Parameter" if len(names) == 1
                                   else self.where()[1], params=count))

    # ------------------------------------------------------------------ weighted layers

    def layer_name(self, weight: object) -> str:
        pname = self.param(weight)
        if pname is not None:
            return self.unique(pname.rsplit(".", 1)[0] if "." in pname else pname)
        return self.unique(self.where()[0] or "layer")

    def conv(self, x: torch.Tensor, weight: torch.Tensor, bias: Any = None, stride: Any = 1,
             padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
             out: torch.Tensor) -> None:
        if x.dim() != 4 or not isinstance(weight, torch.nn.Parameter):
            self.unsupported("a convolution on an unbatched input or a computed weight",
                             "conv2d", params=self.take(weight, bias))
            return
        if self.param(weight) in self.used:
            self.unsupported("a convolution reusing an earlier layer's weights (tied weights)",
                             "conv2d")
            return
        kernel = (int(weight.shape[2]), int(weight.shape[3]))
        stride_hw, dilation_hw = _pair(stride), _pair(dilation)
        if isinstance(padding, str):
            pad: tuple[int, int] = (0, 0) if padding == "valid" else tuple(  # type: ignore[assignment]
                d * (k - 1) // 2 for d, k in zip(dilation_hw, kernel))
        else:
            pad = _pair(padding)
        params = self.take(weight, bias)
        kind = self.where()[1]
        self.records.append(Record(
            "conv", self.layer_name(weight), kind, _hwc(x), _hwc(out), kernel, stride_hw, pad,
            dilation_hw, int(groups), self.param(bias) is not None, params))

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: Any = None, *,
               out: torch.Tensor) -> None:
        if not isinstance(weight, torch.nn.Parameter):
            self.unsupported("a linear layer with a computed weight", "linear",
                             params=self.take(weight, bias))
            return
        if self.param(weight) in self.used:
            self.unsupported("a linear layer reusing an earlier layer's weights (tied weights)",
                             "linear")
            return
        units, fan_in = int(weight.shape[0]), int(weight.shape[1])
        tokens = _per_sample(x) // fan_in
        if tokens < 1:
            self.unsupported("a linear layer on fewer than one token per sample", "linear")
            return
        params = self.take(weight, bias)
        kind = self.where()[1]
        self.records.append(Record("fc", self.layer_name(weight), kind, (1, tokens, fan_in)
                                   if tokens > 1 else (1, 1, fan_in),
                                   (1, tokens, units) if tokens > 1 else (1, 1, units),
                                   bias=self.param(bias) is not None, params=params))

    def norm(self, kind: str, func: Any, args: Any, kwargs: Any) -> None:
        bound = inspect.signature(func).bind(*args, **kwargs)
        weight = bound.arguments.get("weight")
        bias = bound.arguments.get("bias")
        path, module = self.where()
        both = self.param(weight) is not None and self.param(bias) is not None
        if both and weight.shape == bias.shape and weight.dim() == 1:  # type: ignore[union-attr]
            if self.take(weight, bias):
                self.records.append(Record("norm", path or "<model>", module, norm_kind=kind,
                                           channels=int(weight.numel())))  # type: ignore[union-attr]
            return
        count = self.take(weight, bias)
        if count:
            self.records.append(Record("params", path or "<model>", module, params=count))

    # ------------------------------------------------------------------ weight-free products

    def product(self, batch: int, m: int, k: int, n: int) -> None:
        path, kind = self.where()
        self.records.append(Record("matmul", path or "<model>", kind, matmul=(batch, m, k, n)))

    def matmul(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
        if self.param(a) is not None or self.param(b) is not None:
            self.unsupported("a matrix product with a weight outside a linear layer", "matmul",
                             params=self.take(a, b))
            return
        if a.dim() < 2 or b.dim() < 2:
            self.unsupported("a matrix-vector product", "matmul")
            return
        m, k, n = int(a.shape[-2]), int(a.shape[-1]), int(b.shape[-1])
        self.product(_per_sample(out) // (m * n), m, k, n)

    def einsum(self, equation: object, operands: list[torch.Tensor], out: torch.Tensor) -> None:
        """A two-operand einsum as a batched product: letters in both inputs and the output are
        the batch, contracted letters k, the others m (first operand) and n (second)."""
        if not isinstance(equation, str) or "->" not in equation or len(operands) != 2:
            self.unsupported("an einsum other than 'a,b->c' of two tensors", "einsum")
            return
        if any(self.param(t) is not None for t in operands):
            self.unsupported("an einsum with a weight", "einsum", params=self.take(*operands))
            return
        inputs, output = equation.replace(" ", "").split("->")
        left, right = inputs.split(",")
        sizes: dict[str, int] = {}
        for letters, tensor in ((left, operands[0]), (right, operands[1])):
            if "." in letters or len(letters) != tensor.dim():
                self.unsupported(f"einsum {equation!r} with an ellipsis or a mismatch", "einsum")
                return
            sizes.update(zip(letters, (int(n) for n in tensor.shape)))

        def size(letters: set[str]) -> int:
            return math.prod(sizes[c] for c in letters)

        a, b, c = set(left), set(right), set(output)
        batch = size(a & b & c) * math.prod(sizes[x] for x in c - a - b)
        self.product(max(1, batch // BATCH), size((a - b) & c), size((a & b) - c),
                     size((b - a) & c))

    def attention(self, args: Any, kwargs: Any) -> None:
        """nn.MultiheadAttention: packed input projection, Q·Kᵀ and A·V per head, output
        projection (self-attention, query = key = value)."""
        bound = inspect.signature(F.multi_head_attention_forward).bind(*args, **kwargs)
        a = bound.arguments
        query, key = a["query"], a["key"]
        if a.get("use_separate_proj_weight") or query is not key or query.dim() != 3:
            self.unsupported("attention other than batched self-attention", "MultiheadAttention",
                             params=self.take(*tree_flatten((args, kwargs))[0]))
            return
        tokens, embed, heads = int(query.shape[0]), int(query.shape[2]), int(a["num_heads"])
        path, kind = self.where()
        w_in, b_in = a["in_proj_weight"], a["in_proj_bias"]
        w_out, b_out = a["out_proj_weight"], a["out_proj_bias"]
        self.records.append(Record("fc", self.unique(f"{path}.in_proj"), kind,
                                   (1, tokens, embed), (1, tokens, int(w_in.shape[0])),
                                   bias=self.param(b_in) is not None, params=self.take(w_in, b_in)))
        self.product(heads, tokens, embed // heads, tokens)
        self.product(heads, tokens, tokens, embed // heads)
        self.records.append(Record("fc", self.unique(f"{path}.out_proj"), kind,
                                   (1, tokens, embed), (1, tokens, int(w_out.shape[0])),
                                   bias=self.param(b_out) is not None,
                                   params=self.take(w_out, b_out)))


@contextmanager
def _module_stack(model: torch.nn.Module, stack: list[tuple[str, str]]) -> Iterator[None]:
    """Keep ``stack`` at the (path, type) of the modules being run, innermost last."""
    paths = {id(m): name for name, m in model.named_modules()}

    def enter(module: torch.nn.Module, inputs: Any) -> None:
        stack.append((paths.get(id(module), ""), type(module).__name__))

    def leave(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if stack:
            stack.pop()

    handles = [torch.nn.modules.module.register_module_forward_pre_hook(enter),
               torch.nn.modules.module.register_module_forward_hook(leave, always_call=True)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def trace_module(model: torch.nn.Module, input_shape: Shape, name: str, source: str,
                 versions: tuple[tuple[str, str], ...],
                 skip_unsupported: bool = False) -> Trace:
    """Records of one training-mode forward pass of ``model`` (built on the meta device) on a
    meta batch of :data:`BATCH` samples of ``input_shape`` (H, W, C)."""
    names = {id(p): n for n, p in model.named_parameters()}
    stack: list[tuple[str, str]] = []
    recorder = _Recorder(names, stack, skip_unsupported)
    h, w, c = input_shape
    x = torch.empty(BATCH, c, h, w, device="meta")
    setattr(x, _TAG, True)
    model.train()
    with _module_stack(model, stack), recorder, torch.no_grad():
        model(x)
    unused = [f"{n} {tuple(p.shape)}" for n, p in model.named_parameters()
              if n not in recorder.used]
    records = list(recorder.records)
    leftover = sum(int(p.numel()) for n, p in model.named_parameters() if n not in recorder.used)
    if leftover:
        records.append(Record("params", "unused parameters", "Parameter", params=leftover))
    if not any(r.weighted for r in records):
        raise UnsupportedError(source, type(model).__name__, "no convolution or linear layer "
                               "was traced")
    return Trace(name, source, versions, input_shape, tuple(records),
                 tuple(recorder.skipped), tuple(unused))


def torch_versions(*packages: str) -> tuple[tuple[str, str], ...]:
    """(package, version) of torch and the given packages, for the YAML header."""
    import importlib

    out = [("torch", str(torch.__version__))]
    for package in packages:
        module = importlib.import_module(package)
        out.append((package, str(getattr(module, "__version__", "?"))))
    return tuple(out)


def build_on_meta(builder: Callable[..., Any], kwargs: dict[str, Any]) -> torch.nn.Module:
    """``builder(**kwargs)`` with every parameter and buffer on the meta device (no memory, no
    weights).  Built under ``torch.device("meta")``; a builder that computes with real tensors
    (RegNet derives its widths with torch) is built again with each parameter and buffer moved
    to the meta device as it is registered, so none is ever initialized."""
    try:
        with torch.device("meta"):
            model = builder(**kwargs)
    except NotImplementedError:
        with _register_on_meta():
            model = builder(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise UnsupportedError("", type(model).__name__, "the callable did not return a "
                               "torch.nn.Module")
    return model


@contextmanager
def _register_on_meta() -> Iterator[None]:
    module = torch.nn.Module
    register_parameter, register_buffer = module.register_parameter, module.register_buffer

    def parameter(self: torch.nn.Module, name: str, param: Any) -> None:
        if param is not None and param.device.type != "meta":
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer(self: torch.nn.Module, name: str, tensor: Any, persistent: bool = True) -> None:
        if tensor is not None:
            tensor = tensor.to("meta")
        register_buffer(self, name, tensor, persistent)

    module.register_parameter = parameter  # type: ignore[method-assign]
    module.register_buffer = buffer  # type: ignore[method-assign]
    try:
        yield
    finally:
        module.register_parameter = register_parameter  # type: ignore[method-assign]
        module.register_buffer = register_buffer  # type: ignore[method-assign]


def total_parameters(model: torch.nn.Module) -> int:
    """sum(p.numel()) over the model's parameters."""
    return int(sum(math.prod(p.shape) for p in model.parameters()))
