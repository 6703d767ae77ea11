"""Import a network from PyTorch or ONNX (docs/import.md): source → traced records → YAML → Network.

Three stages: :func:`trace_source` resolves a SOURCE — ``torchvision:NAME``, ``timm:NAME``,
``package.module:callable`` or a path to an ``.onnx`` file — and traces it without weights into
a :class:`~costmodel.inputs.importers.records.Trace`;
:func:`~costmodel.inputs.importers.records.network_yaml` writes it in gridcost's network format; the
loader (:func:`costmodel.inputs.loaders.network_from_text`) reads that text back like any network
file, so an imported network is checked exactly as a hand-written one.  torch, torchvision, timm and
onnx are imported only inside the tracing functions (the optional extra ``gridcost[import]``);
importing this package loads none of them.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costmodel.errors import GridcostError, UnknownName, UsageError
from costmodel.inputs.importers.records import Shape, Trace, UnsupportedError, network_yaml

if TYPE_CHECKING:
    from costmodel.inputs.specs import Network

__all__ = ["DEFAULT_INPUT", "UnsupportedError", "import_network", "import_yaml", "is_source",
           "parse_input", "parse_kwargs", "trace_source"]

DEFAULT_INPUT: Shape = (224, 224, 3)
"""(H, W, C) traced when no ``--input`` is given: ImageNet's 3×224×224."""

_CALLABLE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_PREFIXES = ("torchvision:", "timm:")
EXTRA_HINT = "install the import extra: pip install 'gridcost[import]' (docs/import.md)"


def is_source(text: str) -> bool:
    """True for an import SOURCE (``torchvision:NAME``, ``timm:NAME``, ``pkg.mod:callable``, a
    ``.onnx`` path); False for a network YAML path or a bundled name."""
    return (text.startswith(_PREFIXES) or text.lower().endswith(".onnx")
            or _CALLABLE.match(text) is not None)


def parse_input(text: str) -> Shape:
    """``CxHxW`` (e.g. ``3x224x224``, torch's order) → (H, W, C)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        numbers = [int(p, 10) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 3 or min(numbers) < 1:
        raise UsageError(f"--input: expected CxHxW with three positive integers "
                         f"(e.g. 3x224x224), got {text!r}")
    c, h, w = numbers
    return h, w, c


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs`` JSON object → keyword arguments of the model's constructor."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--kwargs: expected a JSON object, got {text!r} ({exc.msg})") from None
    if not isinstance(value, dict):
        raise UsageError(f"--kwargs: expected a JSON object, got {text!r}")
    return value


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"importing a network needs {module}: {EXTRA_HINT}") from None


def trace_source(source: str, input_shape: Shape = DEFAULT_INPUT,
                 kwargs: dict[str, Any] | None = None, skip_unsupported: bool = False) -> Trace:
    """Trace ``source`` without weights (docs/import.md §Sources)."""
    kwargs = dict(kwargs or {})
    if source.lower().endswith(".onnx"):
        if kwargs:
            raise UsageError("--kwargs: an ONNX file has no constructor arguments")
        _require("onnx")
        from costmodel.inputs.importers.onnx_trace import trace_onnx

        return trace_onnx(Path(source), skip_unsupported)
    if not is_source(source):
        raise UsageError(f"not an import source: {source!r} (expected torchvision:NAME, "
                         "timm:NAME, package.module:callable or a path to an .onnx file)")
    _require("torch")
    from costmodel.inputs.importers import torch_trace

    builder, _, packages = _builder(source)
    with warnings.catch_warnings():
        # constructors warn about weight initialization, meaningless on the meta device
        warnings.simplefilter("ignore")
        try:
            model = torch_trace.build_on_meta(builder, kwargs)
        except TypeError as exc:
            raise UsageError(f"{source}: the constructor rejected the arguments "
                             f"{json.dumps(kwargs)}: {exc}") from None
        versions = torch_trace.torch_versions(*packages)
        # named by the source, so no compute table measured for a bundled network of the same
        # short name (the grouped `alexnet`) applies to it by accident
        return torch_trace.trace_module(model, input_shape, source, source, versions,
                                        skip_unsupported)


def _builder(source: str) -> tuple[Any, str, tuple[str, ...]]:
    """(constructor, network name, packages whose versions go in the header) of a source."""
    if source.startswith("torchvision:"):
        name = source.split(":", 1)[1]
        models = _require("torchvision").models
        known = models.list_models(module=models)
        if name not in known:
            raise UnknownName("torchvision classification model", name, known)
        return functools.partial(models.get_model, name), name, ("torchvision",)
    if source.startswith("timm:"):
        name = source.split(":", 1)[1]
        timm = _require("timm")
        if not timm.is_model(name):
            raise UnknownName("timm model", name, timm.list_models()[:0] or [])
        return functools.partial(timm.create_model, name, pretrained=False), name, ("timm",)
    module_name, attr = source.split(":", 1)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{source}: cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"{source}: module {module_name!r} has no {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise UsageError(f"{source}: {attr!r} is not callable")
    return target, attr.rsplit(".", 1)[-1], ()


def import_yaml(source: str, input_shape: Shape = DEFAULT_INPUT,
                kwargs: dict[str, Any] | None = None,
                skip_unsupported: bool = False) -> tuple[str, Trace]:
    """The network file text of ``source`` and its trace."""
    trace = trace_source(source, input_shape, kwargs, skip_unsupported)
    return network_yaml(trace), trace


@functools.lru_cache(maxsize=8)
def _imported(source: str, input_shape: Shape, kwargs_json: str,
              skip_unsupported: bool) -> tuple[str, Trace, Network]:
    from costmodel.inputs.loaders import network_from_text

    text, trace = import_yaml(source, input_shape, json.loads(kwargs_json), skip_unsupported)
    return text, trace, network_from_text(text, f"<import {source}>")


def import_network(source: str, input_shape: Shape = DEFAULT_INPUT,
                   kwargs: dict[str, Any] | None = None,
                   skip_unsupported: bool = False) -> tuple[str, Trace, Network]:
    """(YAML text, trace, Network) of ``source``, read back through the loader; cached per process,
    so a command that loads its network twice traces it once."""
    try:
        return _imported(source, input_shape, json.dumps(kwargs or {}, sort_keys=True),
                         skip_unsupported)
    except GridcostError:
        raise
    except Exception as exc:  # a model's own failure while tracing: one line, no traceback
        raise UsageError(f"{source}: tracing failed: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]}") from None
