"""The only reader of files: YAML network and machine descriptions → validated specs.

Files are read with ``yaml.safe_load`` (libyaml's CSafeLoader where available); every mapping is
checked for unknown and missing keys;
errors name the file, the field path (``layers[4].body[1].filters``) and what was expected.
Bundled files are found by name through ``importlib.resources``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from costmodel.engine import collectives as coll
from costmodel.engine.memory import OPTIMIZERS
from costmodel.errors import (
    NO_VALUE,
    GridcostError,
    ShapeError,
    SpecError,
    UnknownName,
    one_line,
)
from costmodel.inputs.specs import (
    ALPHA_RANGE,
    BANDWIDTH_RANGE,
    EPOCH_TIME_RANGE,
    FLOP_RATE_RANGE,
    MAX_BACKWARD_RATIO,
    MAX_GAMMA,
    MAX_LAYER_VALUES,
    MAX_LAYERS,
    MAX_LOCAL_BATCH,
    MAX_MACS,
    MAX_OPTIMIZER_BYTES,
    MAX_PARAMS,
    MAX_PROCESSES,
    MAX_RECORDS,
    MAX_SAMPLES,
    MAX_SIZE,
    MAX_TABLE_ROWS,
    MEMORY_RANGE,
    PER_COLLECTIVE_KINDS,
    WORD_BYTES_RANGE,
    ComputeTable,
    Layer,
    Level,
    Machine,
    Network,
    Shape,
)
from costmodel.records import InputRecord
from costmodel.units import format_bytes, format_rate, format_seconds, parse_quantity

if TYPE_CHECKING:
    import sys

    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- reading files


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: its mapping, the name used in messages, and its SHA-256."""

    data: dict[str, Any]
    source: str
    sha256: str


_BUNDLED_IN_CHECKOUT = {"networks": "networks", "machines": "machines",
                        "published_runs": "docs/published"}
"""Where each bundled folder lies in a source checkout (pyproject.toml maps the same folders
onto the packages ``costmodel.<kind>`` of a wheel)."""


def bundled_folder(kind: str) -> Traversable:
    """The folder of the bundled ``kind`` files ('networks', 'machines' or 'published_runs').

    An installed wheel carries them as the packages ``costmodel.networks``,
    ``costmodel.machines`` and ``costmodel.published_runs``; a source checkout run in place
    (``python -m costmodel.cli`` or ``python -m pytest`` from the repository root) has them
    beside the package, in the repository's ``networks/``, ``machines/`` and ``docs/published/``.
    """
    try:
        return resources.files(f"costmodel.{kind}")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / _BUNDLED_IN_CHECKOUT[kind]


def bundled_names(kind: str) -> list[str]:
    """Names (file stems) of the bundled ``kind`` files, kind being 'networks' or 'machines'."""
    folder = bundled_folder(kind)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def bundled_text(kind: str, name: str) -> str:
    """The text of the bundled ``kind`` file ``name`` ('networks' or 'machines'), verbatim with
    its comments — a starting point for a file of one's own; UnknownName with a "did you mean"
    when there is none (``name`` may end in ``.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    known = bundled_names(kind)
    if stem not in known:
        raise UnknownName(f"bundled {kind[:-1]}", stem, known)
    return (bundled_folder(kind) / f"{stem}.yaml").read_text(encoding="utf-8")


MAX_SPEC_BYTES = 2 * 2**20
"""Largest network, machine or runs file (2 MiB): 30× the largest network `gridcost import`
writes for a torchvision classifier (EfficientNet-B7, 65 kB); read no further than that."""

MAX_LOG_BYTES = 32 * 2**20
"""Largest benchmark log or gridcost JSON (`calibrate import`, `validate --from-raw`), 32 MiB:
50× the largest committed one (docs/validation/val-raw.json, 0.6 MB)."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists in a YAML or JSON input (aliases counted expanded);
the bundled networks nest 8 deep (a block in a repeat in a residual)."""

MAX_NODES = 200_000
"""Most YAML nodes (scalars, lists, mappings) of a document with every alias expanded: 28×
the 7,000 of EfficientNet-B7 imported; an alias bomb ("billion laughs") of a few hundred
bytes would otherwise expand to billions."""


def _too_big(source: str, limit: int) -> SpecError:
    return SpecError(source, "", f"a file of at most {limit // 2**20} MiB (a limit of "
                     "gridcost; this one is larger)")


def is_file(path: Path) -> bool:
    """``path.is_file()``, False for a name the system cannot even look up (too long,
    a NUL byte) instead of an OSError."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_bytes(path: str, limit: int, expected: str = "a readable file") -> bytes:
    """The bytes of the file ``path`` (``-``: standard input, read once and kept for a second
    reader), at most ``limit`` of them; a SpecError naming the file otherwise."""
    if path == "-":
        return _stdin_bytes(limit)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError(path, "", expected, reason) from None
    if len(data) > limit:
        raise _too_big(path, limit)
    return data


_stdin_cache: list[tuple[object, bytes]] = []


def _stdin_bytes(limit: int) -> bytes:
    """Standard input's bytes, read once per stream: ``--net -`` is read again for the
    provenance digest of a report."""
    import sys

    stream = sys.stdin
    cached = [data for seen, data in _stdin_cache if seen is stream]
    if cached:
        data = cached[0]
    else:
        binary = getattr(stream, "buffer", None)
        most = max(limit, MAX_LOG_BYTES) + 1  # kept for every reader, whatever its limit
        raw = binary.read(most) if binary is not None else stream.read(most)
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        _stdin_cache[:] = [(stream, data)]
    if len(data) > limit:
        raise _too_big("<stdin>", limit)
    return data


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text; a one-line SpecError naming the first bad byte otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(source, "", "UTF-8 text", f"byte 0x{data[exc.start]:02x} on line "
                        f"{line} (offset {exc.start})") from None


def read_text(path: str, limit: int = MAX_LOG_BYTES, expected: str = "a readable file") -> str:
    """The UTF-8 text of ``path`` (``-``: standard input), at most ``limit`` bytes — the one way
    gridcost reads a text input (logs, JSON); every failure a one-line SpecError (``expected``
    says what the file should have been when it cannot be read)."""
    return decode_utf8(read_bytes(path, limit, expected), "<stdin>" if path == "-" else path)


def load_json(text: str, source: str) -> Any:
    """``json.loads`` of a gridcost JSON input: a ValueError when it is not JSON, a one-line
    SpecError naming ``source`` when it is nested deeper than the parser's recursion limit
    (about 1,000; a RecursionError otherwise)."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise SpecError(source, "", "JSON nested less deep (no gridcost JSON nests more than "
                        "a few levels)") from None


def read_document(name_or_path: str, kind: str) -> Document:
    """Read a YAML document given a path or a bundled name (with or without ``.yaml``).

    A string that names an existing file is a path; otherwise it is looked up among the bundled
    ``kind`` files ('networks' or 'machines'), with a "did you mean" on failure.
    """
    if name_or_path == "-":
        return _parse(read_text("-", MAX_SPEC_BYTES), "<stdin>")
    path = Path(name_or_path)
    if is_file(path):
        return _parse(read_text(name_or_path, MAX_SPEC_BYTES), name_or_path)
    singular = kind[:-1]
    if path.parent != Path(".") or len(name_or_path) > 255:
        raise SpecError(name_or_path, "", f"an existing {singular} file", "no such file")
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if stem not in bundled_names(kind):
        raise UnknownName(f"{singular} (neither a file nor a bundled name)", stem,
                          bundled_names(kind))
    resource = bundled_folder(kind) / f"{stem}.yaml"
    return _parse(resource.read_text(encoding="utf-8"), f"{kind}/{stem}.yaml")


def input_digest(name_or_path: str, kind: str) -> InputRecord:
    """Where an input came from and the SHA-256 of its text, for provenance blocks."""
    doc = read_document(name_or_path, kind)
    return {"file": doc.source, "sha256": doc.sha256}


class _DuplicateKey(Exception):
    """A mapping gives a key twice (raised while constructing; _parse makes it a SpecError)."""

    def __init__(self, key: object, line: int, first: int) -> None:
        super().__init__(key, line, first)
        self.key, self.line, self.first = key, line, first


class _UniqueKeys:
    """Constructor mix-in: a mapping that gives a key twice is an error, not "the last wins"
    (merge keys ``<<`` may still be overridden, as YAML says)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKey(key, line, seen[key])
                    seen[key] = line
                except TypeError:  # unhashable: the base class says so
                    continue
        result: dict[Any, Any] = super().construct_mapping(node, deep)  # type: ignore[misc]
        return result


class _StrictLoader(_UniqueKeys, yaml.SafeLoader):
    """yaml.SafeLoader, duplicate keys refused."""


_FAST_BASE: Any = getattr(yaml, "CSafeLoader", None)
_StrictFastLoader: Any = None
if _FAST_BASE is not None:
    class _StrictFastLoader(_UniqueKeys, _FAST_BASE):  # type: ignore[misc,no-redef]
        """libyaml's CSafeLoader, duplicate keys refused."""


def _check_structure(text: str, source: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH or holding more than MAX_NODES nodes, aliases
    counted expanded, from its parser events — before anything is composed or constructed, so
    neither recursion nor memory depends on the input beyond its size.  libyaml stops at its own
    depth limit (1,000) with an error: then the pure-Python parser (iterative) checks again."""
    for loader in (_StrictFastLoader, _StrictLoader):
        if loader is not None:
            try:
                _check_events(yaml.parse(text, Loader=loader), source)
                return
            except yaml.YAMLError:
                continue  # malformed: the loader reports where


def _check_events(events: Iterator[yaml.Event], source: str) -> None:
    """_check_structure over one parser's events."""
    nodes = 0
    anchored: dict[str, tuple[int, int]] = {}  # anchor → (nodes, height) of its node
    stack: list[list[Any]] = []  # open collections: [anchor, nodes before it, highest child]

    def close(size: int, height: int, anchor: str | None, line: int) -> None:
        if anchor is not None:
            anchored[anchor] = (size, height)
        if stack:
            stack[-1][2] = max(stack[-1][2], height)
        if len(stack) + height > MAX_DEPTH:
            raise SpecError(source, f"line {line}", f"lists and mappings nested at most "
                            f"{MAX_DEPTH} deep (a limit of gridcost)")

    for event in events:
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            nodes += 1
            stack.append([event.anchor, nodes, 0])
            if len(stack) > MAX_DEPTH:
                raise SpecError(source, f"line {line}", "lists and mappings nested at "
                                f"most {MAX_DEPTH} deep (a limit of gridcost)")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, before, highest = stack.pop()
            close(nodes - before + 1, highest + 1, anchor, line)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            close(1, 0, event.anchor, line)
        elif isinstance(event, yaml.AliasEvent):
            size, height = anchored.get(event.anchor or "", (1, 0))
            nodes += size
            close(size, height, None, line)
        else:
            continue
        if nodes > MAX_NODES:
            raise SpecError(source, f"line {line}", f"at most {MAX_NODES:,} YAML nodes, "
                            "aliases expanded (a limit of gridcost; this document has more)")


def _safe_load(text: str) -> Any:
    """``yaml.safe_load`` with duplicate keys refused, through libyaml's CSafeLoader where it is
    available (several times faster, the same restrictions); a document it rejects is parsed
    again by the pure-Python safe loader, so error messages are the same on every
    installation."""
    if _StrictFastLoader is not None:
        try:
            return yaml.load(text, Loader=_StrictFastLoader)
        except yaml.YAMLError:
            pass
    return yaml.load(text, Loader=_StrictLoader)


def _parse(text: str, source: str) -> Document:
    if len(text) > MAX_SPEC_BYTES:
        raise _too_big(source, MAX_SPEC_BYTES)
    _check_structure(text, source)
    try:
        data = _safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SpecError(source, "", f"valid YAML ({problem} at {where})") from None
    except _DuplicateKey as exc:
        raise SpecError(source, f"line {exc.line}: {one_line(str(exc.key), 80)}",
                        f"each key once per mapping (it is also on line {exc.first})") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
        raise SpecError(source, "", f"valid YAML values ({one_line(str(exc), 120)})") from None
    if not isinstance(data, dict):
        raise SpecError(source, "", "a YAML mapping at the top level", _kind_of(data))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(data, source, digest)


def _keys(value: object) -> set[str]:
    """The keys of a mapping (all allowed), or none for a non-mapping (Fields then says so)."""
    return set(value) if isinstance(value, dict) else set()


def _kind_of(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


# --------------------------------------------------------------------------- field access


class Fields:
    """A YAML mapping with its file and field path, for checked access to its keys."""

    def __init__(self, data: object, source: str, path: str, allowed: set[str]) -> None:
        if not isinstance(data, dict):
            raise SpecError(source, path or "<top>", "a mapping", _kind_of(data))
        self.data: dict[str, Any] = data
        self.source = source
        self.path = path
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise SpecError(source, self.at(unknown[0]),
                            f"one of the keys {', '.join(sorted(allowed))} (unknown key)")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, expected: str, got: object = NO_VALUE) -> SpecError:
        return SpecError(self.source, self.at(key), expected, got)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: object = ..., required: bool = False) -> Any:
        if key not in self.data:
            if required or default is ...:
                raise SpecError(self.source, self.at(key), "this field (it is missing)")
            return default
        return self.data[key]

    def integer(self, key: str, default: int | None = None, minimum: int = 1,
                maximum: int = MAX_SIZE) -> int:
        """An integer from ``minimum`` to ``maximum`` (MAX_SIZE: a layer's dimensions)."""
        value = self.raw(key, default=default, required=default is None)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"an integer ≥ {minimum}", value)
        if value > maximum:
            raise self.error(key, f"an integer from {minimum} to {maximum:,} (a limit of "
                             "gridcost)", value)
        return value

    def pair(self, key: str, default: int | None = None, minimum: int = 1) -> tuple[int, int]:
        value = self.raw(key, default=default, required=default is None)
        items = value if isinstance(value, list) else [value, value]
        if len(items) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in items
        ):
            raise self.error(key, f"an integer ≥ {minimum} or a list [h, w] of them", value)
        if max(items) > MAX_SIZE:
            raise self.error(key, f"integers from {minimum} to {MAX_SIZE:,} (a limit of "
                             "gridcost)", value)
        return int(items[0]), int(items[1])

    def text(self, key: str, default: str | None = None) -> str:
        if key not in self.data and default is not None:
            return default
        value = self.raw(key, default=default, required=default is None)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "a non-empty string", value)
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(key, default=default, required=default is None)
        if value not in options:
            raise self.error(key, f"one of {', '.join(options)}", value)
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default=default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false", value)
        return value

    def quantity(self, key: str, kind: str, default: object = ...,
                 bounds: tuple[float, float] | None = None) -> float:
        """A quantity of ``kind`` in SI units, within ``bounds`` (docs/formats.md, "Limits and
        ranges") when given."""
        value = self.raw(key, default=default)
        si = parse_quantity(value, kind, self.source, self.at(key))
        if bounds is not None:
            _check_range(self, key, si, kind, bounds, value)
        return si

    def items(self, key: str, default: object = ...) -> list[Any]:
        value = self.raw(key, default=default)
        if not isinstance(value, list):
            raise self.error(key, "a list", _kind_of(value))
        return value


_FORMATS: dict[str, Callable[[float], str]] = {
    "time": format_seconds,
    "bandwidth": lambda v: format_rate(v, "B/s"),
    "flop_rate": lambda v: format_rate(v, "FLOP/s"),
    "bytes": format_bytes,
}


def _check_range(f: Fields, key: str, si: float, kind: str, bounds: tuple[float, float],
                 raw: object) -> None:
    """A quantity outside its physically sensible range is refused, naming the range."""
    low, high = bounds
    if not low <= si <= high:
        show = _FORMATS[kind]
        raise f.error(key, f"a {kind.replace('_', ' ')} from {show(low)} to {show(high)} "
                      "(a limit of gridcost)", raw)


def _check_version(top: Fields) -> None:
    version = top.raw("version", required=True)
    if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
        raise top.error("version", f"{SCHEMA_VERSION}", version)


# --------------------------------------------------------------------------- networks


_LAYER_KEYS: dict[str, set[str]] = {
    "conv": {"filters", "kernel", "stride", "padding", "groups", "bias", "name", "dilation"},
    "fc": {"units", "bias", "name", "tokens"},
    "pool": {"kernel", "stride", "padding", "mode", "name"},
    "global_pool": {"mode", "name"},
    "norm": {"kind", "name", "channels"},
    "activation": {"function", "name"},
    "dropout": {"rate", "name"},
    "flatten": {"name"},
    "residual": {"body", "shortcut", "name"},
    "concat": {"branches", "name"},
    "repeat": {"times", "layers", "name", "start"},
    # written by `gridcost import` (docs/import.md), usable by hand too
    "params": {"count", "name"},
    "matmul": {"batch", "m", "k", "n", "name"},
    "merge": {"op", "name"},
}
_MERGE_OPS = ("add", "concat", "multiply")
_NETWORK_KEYS = {"version", "name", "description", "source", "parameters", "dataset", "input",
                 "layers"}


class _NetworkBuilder:
    """Walks a network's layer list, inferring shapes and collecting the weighted layers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.layers: list[Layer] = []
        self.names: set[str] = set()
        self.pending_params = 0
        self.records = 0

    def walk(self, items: list[Any], shape: Shape, path: str, prefix: str,
             counters: dict[str, int] | None = None) -> Shape:
        """Infer shapes through ``items``; return the output shape (auto names use ``prefix``)."""
        counters = {} if counters is None else counters
        for i, item in enumerate(items):
            shape = self.layer(item, shape, f"{path}[{i}]", prefix, counters)
        return shape

    def layer(self, item: object, shape: Shape, path: str, prefix: str,
              counters: dict[str, int]) -> Shape:
        if not isinstance(item, dict):
            raise SpecError(self.source, path, "a layer mapping with a 'type'", _kind_of(item))
        self.records += 1
        if self.records > MAX_RECORDS:
            raise SpecError(self.source, path, f"at most {MAX_RECORDS:,} layer records, repeats "
                            "expanded (a limit of gridcost)")
        kind = item.get("type", NO_VALUE)
        if not isinstance(kind, str) or kind not in _LAYER_KEYS:
            raise SpecError(self.source, f"{path}.type",
                            f"a layer type ({', '.join(_LAYER_KEYS)})", kind)
        f = Fields(item, self.source, path, _LAYER_KEYS[kind] | {"type", "input"})
        if f.has("input"):
            shape = _input_shape(f)
        handler: Callable[[Fields, Shape, str, dict[str, int]], Shape] = getattr(self, f"_{kind}")
        return handler(f, shape, prefix, counters)

    def _name(self, f: Fields, kind: str, prefix: str, counters: dict[str, int]) -> str:
        counters[kind] = counters.get(kind, 0) + 1
        taken = self.names
        if f.has("name"):
            name = f.text("name")
            if name in taken:
                raise f.error("name", "a name not used by another weighted layer", name)
            return name
        name = f"{prefix}{kind}{counters[kind]}" if prefix else f"{kind}{len(self.layers) + 1}"
        suffix = 1
        while name in taken:
            suffix += 1
            name = f"{prefix}{kind}{counters[kind]}_{suffix}"
        return name

    def _conv(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        filters = f.integer("filters")
        kernel = f.pair("kernel")
        stride = f.pair("stride", default=1)
        padding = f.pair("padding", default=0, minimum=0)
        groups = f.integer("groups", default=1)
        bias = f.boolean("bias", default=True)
        dilation = f.pair("dilation", default=1)
        h, w, c = shape
        if c % groups or filters % groups:
            raise f.error("groups", f"a divisor of both input channels {c} and filters {filters}",
                          groups)
        reach = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
        out = self._window(f, (h, w), reach, stride, padding)
        out_shape = (out[0], out[1], filters)
        params = filters * (c // groups) * kernel[0] * kernel[1] + (filters if bias else 0)
        self._add(Layer(self._name(f, "conv", prefix, counters), "conv", shape, out_shape,
                        kernel, stride, padding, groups, params, dilation=dilation))
        return out_shape

    def _add(self, layer: Layer) -> None:
        """Append a weighted layer; parameters listed before the first one count with it."""
        if len(self.layers) >= MAX_LAYERS:
            raise SpecError(self.source, "layers", f"at most {MAX_LAYERS:,} weighted layers "
                            "(conv and fc), repeats expanded (a limit of gridcost)")
        self.names.add(layer.name)
        if self.pending_params:
            layer = replace(layer, norm_params=layer.norm_params + self.pending_params)
            self.pending_params = 0
        self.layers.append(layer)

    def _window(self, f: Fields, hw: tuple[int, int], kernel: tuple[int, int],
                stride: tuple[int, int], padding: tuple[int, int]) -> tuple[int, int]:
        out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(hw, kernel, stride, padding))
        if min(out) < 1:
            raise f.error("kernel", f"a window that fits the {hw[0]}×{hw[1]} input "
                          f"(with padding {list(padding)})", list(kernel))
        return out[0], out[1]

    def _fc(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        units = f.integer("units")
        bias = f.boolean("bias", default=True)
        if f.has("tokens"):
            return self._token_fc(f, shape, units, bias, prefix, counters)
        flat = (1, 1, shape[0] * shape[1] * shape[2])
        params = flat[2] * units + (units if bias else 0)
        self._add(Layer(self._name(f, "fc", prefix, counters), "fc", flat, (1, 1, units),
                        weight_params=params))
        return 1, 1, units

    def _token_fc(self, f: Fields, shape: Shape, units: int, bias: bool, prefix: str,
                  counters: dict[str, int]) -> Shape:
        """An fc applied to each of the input's H·W tokens (no flattening): output (H, W,
        units), activations tokens × units, multiply-adds tokens · C · units (docs/formats.md)."""
        tokens = f.integer("tokens")
        h, w, c = shape
        if h * w != tokens:
            raise f.error("tokens", f"the input's height × width {h}×{w} = {h * w} (an fc with "
                          f"tokens applies to each position of a {_fmt(shape)} input)", tokens)
        out_shape = (h, w, units)
        self._add(Layer(self._name(f, "fc", prefix, counters), "fc", shape, out_shape,
                        weight_params=c * units + (units if bias else 0)))
        return out_shape

    def _params(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        """Parameters without a weighted product of their own (class token, position embedding,
        layer scale): counted with the preceding weighted layer (the first, before any)."""
        self._attach(f.integer("count", maximum=MAX_LAYER_VALUES))
        return shape

    def _attach(self, count: int) -> None:
        if self.layers:
            last = self.layers[-1]
            self.layers[-1] = replace(last, norm_params=last.norm_params + count)
        else:
            self.pending_params += count

    def _matmul(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        """A weight-free product of two activations per sample, ``batch`` products of an m×k and
        a k×n matrix (attention's Q·Kᵀ, A·V): batch·m·k·n multiply-adds and batch·m·n
        activations, counted with the preceding weighted layer (docs/import.md)."""
        b, m, k, n = (f.integer(key) for key in ("batch", "m", "k", "n"))
        if not self.layers:
            raise f.error("batch", "a matmul after a weighted layer (its compute counts with "
                          "the layer it follows)", b)
        last = self.layers[-1]
        self.layers[-1] = replace(last, free_macs=last.free_macs + b * m * k * n,
                                  free_activations=last.free_activations + b * m * n)
        return shape

    def _merge(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        """A residual addition, concatenation or gating product of a traced graph, for the
        reader: no parameters, no compute, the shape unchanged (docs/import.md)."""
        f.choice("op", _MERGE_OPS)
        return shape

    def _pool(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        kernel = f.pair("kernel")
        stride = f.pair("stride", default=kernel[0]) if f.has("stride") else kernel
        padding = f.pair("padding", default=0, minimum=0)
        f.choice("mode", ("max", "avg"), default="max")
        out = self._window(f, shape[:2], kernel, stride, padding)
        return out[0], out[1], shape[2]

    def _global_pool(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        f.choice("mode", ("avg", "max"), default="avg")
        return 1, 1, shape[2]

    def _norm(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        kind = f.choice("kind", ("batch", "lrn", "layer", "channel"))
        channels = f.integer("channels") if f.has("channels") else shape[2]
        if kind != "lrn":
            if not self.layers:
                raise f.error("kind", "a normalization after a weighted layer (its parameters "
                              "count with the layer they follow)", kind)
            last = self.layers[-1]
            extra = 2 * shape[0] * shape[1] * shape[2] if kind == "layer" else 2 * channels
            self.layers[-1] = replace(last, norm_params=last.norm_params + extra)
        return shape

    def _activation(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        f.text("function")
        return shape

    def _dropout(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        rate = f.raw("rate", default=0.5)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise f.error("rate", "a number in [0, 1)", rate)
        return shape

    def _flatten(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        return 1, 1, shape[0] * shape[1] * shape[2]

    def _block_prefix(self, f: Fields, prefix: str) -> str:
        """Names of auto-named layers inside a named block start with the block's name."""
        return f"{f.text('name')}." if f.has("name") else prefix

    def _residual(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        block = self._block_prefix(f, prefix)
        body = self.walk(f.items("body"), shape, f.at("body"), block)
        shortcut = self.walk(f.items("shortcut", default=[]), shape, f.at("shortcut"),
                             f"{block}shortcut." if block else "")
        if body != shortcut:
            raise ShapeError(self.source, f.path, f"residual add{_named(f)} needs equal shapes, "
                             f"but the body gives {_fmt(body)} and the shortcut {_fmt(shortcut)}")
        return body

    def _concat(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        block = self._block_prefix(f, prefix)
        branches = f.items("branches")
        if not branches:
            raise f.error("branches", "a non-empty list of layer lists", branches)
        outs = []
        for j, branch in enumerate(branches):
            if not isinstance(branch, list):
                raise SpecError(self.source, f"{f.at('branches')}[{j}]", "a list of layers",
                                _kind_of(branch))
            inner = f"{block}b{j + 1}." if block else ""
            outs.append(self.walk(branch, shape, f"{f.at('branches')}[{j}]", inner))
        first = outs[0]
        for j, out in enumerate(outs[1:], start=1):
            if out[:2] != first[:2]:
                raise ShapeError(self.source, f.path,
                                 f"concat{_named(f)} needs equal height and width, but branch 0 "
                                 f"gives {_fmt(first)} and branch {j} {_fmt(out)}")
        return first[0], first[1], sum(o[2] for o in outs)

    def _repeat(self, f: Fields, shape: Shape, prefix: str, counters: dict[str, int]) -> Shape:
        times = f.integer("times", maximum=MAX_LAYERS)
        items = f.items("layers")
        start = f.integer("start", default=1, minimum=0, maximum=MAX_SIZE)
        per_pass, weighted = _expanded(items)
        if self.records + times * per_pass > MAX_RECORDS:
            raise f.error("times", f"a count that keeps the network within {MAX_RECORDS:,} "
                          f"layer records (here {per_pass:,} per pass; a limit of gridcost)",
                          times)
        if len(self.layers) + times * weighted > MAX_LAYERS:
            raise f.error("times", f"a count that keeps the network within {MAX_LAYERS:,} "
                          f"weighted layers (here {weighted:,} per pass; a limit of gridcost)",
                          times)
        for t in range(times):
            if f.has("name"):
                shape = self.walk(items, shape, f.at("layers"), f"{f.text('name')}.{start + t}.")
            else:
                shape = self.walk(items, shape, f.at("layers"), prefix, counters)
        return shape


def _expanded(items: object) -> tuple[int, int]:
    """(layer records, weighted layers) that ``items`` expands to, nested repeats multiplied
    out, each capped just above its limit: a repeat is refused on these counts before it
    expands anything (MAX_RECORDS, MAX_LAYERS)."""
    if not isinstance(items, list):
        return 0, 0
    records = weighted = 0
    for item in items:
        records += 1
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        weighted += kind in ("conv", "fc")
        times = item.get("times", 1) if kind == "repeat" else 1
        times = times if type(times) is int and 0 < times <= MAX_LAYERS else 1
        branches = item.get("branches")
        for inner in [item.get(key) for key in ("body", "shortcut", "layers")] + (
                branches if isinstance(branches, list) else []):
            r, w = _expanded(inner)
            records, weighted = records + times * r, weighted + times * w
        if records > MAX_RECORDS or weighted > MAX_LAYERS:
            break
    return min(records, MAX_RECORDS + 1), min(weighted, MAX_LAYERS + 1)


def _input_shape(f: Fields) -> Shape:
    """A layer's ``input: [height, width, channels]`` (a graph that is not a chain)."""
    value = f.raw("input")
    if (not isinstance(value, list) or len(value) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise f.error("input", "a list [height, width, channels] of integers ≥ 1", value)
    return int(value[0]), int(value[1]), int(value[2])


def _named(f: Fields) -> str:
    return f" {f.data['name']!r}" if isinstance(f.data.get("name"), str) else ""


def _fmt(shape: Shape) -> str:
    return "×".join(str(s) for s in shape)


def _check_sizes(layers: list[Layer], top: Fields) -> None:
    """Each layer's parameters and activations per sample within MAX_LAYER_VALUES, the network's
    parameters within MAX_PARAMS and its multiply-adds per sample within MAX_MACS."""
    for layer in layers:
        for what, value in (("parameters", layer.params),
                            ("activations per sample", layer.activations),
                            ("weight-free activations per sample", layer.free_activations)):
            if value > MAX_LAYER_VALUES:
                raise top.error("layers", f"layers of at most {MAX_LAYER_VALUES:,} {what} (a "
                                "limit of gridcost)", f"{layer.name}: {value:,}")
    params, macs = sum(x.params for x in layers), sum(x.macs for x in layers)
    if params > MAX_PARAMS:
        raise top.error("layers", f"at most {MAX_PARAMS:,} parameters in all (a limit of "
                        "gridcost)", f"{params:,}")
    if macs > MAX_MACS:
        raise top.error("layers", f"at most {MAX_MACS:,} multiply-adds per sample in all (a "
                        "limit of gridcost)", f"{macs:,}")


def network_from_document(doc: Document) -> Network:
    """Build a Network from a parsed network document, checking its published parameter count."""
    top = Fields(doc.data, doc.source, "", _NETWORK_KEYS)
    _check_version(top)
    name = top.text("name")
    inp = Fields(top.raw("input", required=True), doc.source, "input",
                 {"height", "width", "channels"})
    shape = (inp.integer("height"), inp.integer("width"), inp.integer("channels"))
    if shape[0] * shape[1] * shape[2] > MAX_LAYER_VALUES:
        raise inp.error("channels", f"an input of at most {MAX_LAYER_VALUES:,} values per "
                        "sample, height × width × channels (a limit of gridcost)", _fmt(shape))
    samples, dataset_name = 1_200_000, "ImageNet-1k"
    if top.has("dataset"):
        ds = Fields(top.raw("dataset"), doc.source, "dataset", {"name", "samples"})
        samples = ds.integer("samples", maximum=MAX_SAMPLES)
        dataset_name = ds.text("name", default=dataset_name)
    builder = _NetworkBuilder(doc.source)
    builder.walk(top.items("layers"), shape, "layers", "")
    if not builder.layers:
        raise top.error("layers", "at least one conv or fc layer")
    _check_sizes(builder.layers, top)
    network = Network(name, tuple(builder.layers), shape, samples, dataset_name,
                      top.text("description", default=""), top.text("source", default=""))
    if top.has("parameters"):
        published = top.integer("parameters", maximum=MAX_PARAMS)
        if published != network.params:
            raise top.error("parameters", f"the inferred count {network.params:,}", published)
    return network


def network_from_text(text: str, source: str) -> Network:
    """Build a Network from the YAML text of a network file (``gridcost import`` output)."""
    return network_from_document(_parse(text, source))


def load_network(name_or_path: str) -> Network:
    """Load a network by path or bundled name (``vgg16``, ``vgg16.yaml``)."""
    return network_from_document(read_document(name_or_path, "networks"))


# --------------------------------------------------------------------------- machines


_ZERO_TIME = re.compile(r"^\s*0+(\.0*)?\s*(s|ms|us|µs|ns)?\s*$")
_MACHINE_KEYS = {"version", "name", "description", "alpha", "bandwidth", "word_bytes",
                 "flop_rate", "memory", "optimizer", "compute", "gamma", "collectives", "levels",
                 "per_collective", "schedule"}
_ZERO_PER_WORD = re.compile(r"^\s*0+(\.0*)?\s*((s|ms|us|µs|ns)/word)?\s*$")


def machine_from_document(doc: Document) -> Machine:
    """Build a Machine from a parsed machine document (all quantities converted to SI)."""
    top = Fields(doc.data, doc.source, "", _MACHINE_KEYS)
    _check_version(top)
    alpha_s = _latency(top)
    bandwidth = top.quantity("bandwidth", "bandwidth", bounds=BANDWIDTH_RANGE)
    tables: tuple[ComputeTable, ...] = ()
    default_table = None
    if top.has("compute"):
        tables, default_table = _compute_tables(top.raw("compute"), doc.source)
    memory = top.quantity("memory", "bytes", bounds=MEMORY_RANGE) if top.has("memory") else None
    optimizer = _optimizer(top) if top.has("optimizer") else 0.0
    flop_rate = top.quantity("flop_rate", "flop_rate", bounds=FLOP_RATE_RANGE)
    per_collective, per_collective_processes = _per_collective(top)
    return Machine(
        name=top.text("name"),
        alpha_s=alpha_s,
        bandwidth_Bps=bandwidth,
        word_bytes=top.integer("word_bytes", default=4, minimum=WORD_BYTES_RANGE[0],
                               maximum=WORD_BYTES_RANGE[1]),
        flop_rate=flop_rate,
        memory_bytes=memory,
        optimizer_bytes_per_param=optimizer,
        compute_tables=tables,
        default_table=default_table,
        description=top.text("description", default=""),
        gamma_s_per_word=_gamma(top, flop_rate),
        collectives=_collectives(top),
        levels=_levels(top, alpha_s, bandwidth) if top.has("levels") else (),
        per_collective=per_collective,
        per_collective_processes=per_collective_processes,
        **(_schedule(top) if top.has("schedule") else {}),
    )


def _latency(f: Fields) -> float:
    """``alpha`` of a mapping in seconds; a bare 0 (or '0 s') is allowed, else ALPHA_RANGE."""
    alpha = f.raw("alpha", required=True)
    zero = isinstance(alpha, str) and _ZERO_TIME.match(alpha) is not None
    if zero or (type(alpha) is int and alpha == 0):
        return 0.0
    seconds = f.quantity("alpha", "time")
    if not ALPHA_RANGE[0] <= seconds <= ALPHA_RANGE[1]:
        raise f.error("alpha", "0 or a latency from 1 ps to 10 s (a limit of gridcost)", alpha)
    return seconds


def _levels(top: Fields, alpha_s: float, bandwidth: float) -> tuple[Level, ...]:
    """The ``levels`` list (docs/hierarchy.md): innermost first, each {name, processes, alpha,
    bandwidth}; the outermost has no processes and takes the flat alpha and bandwidth (which
    it may repeat, but not change)."""
    items = top.items("levels")
    if not items:
        raise top.error("levels", "a non-empty list of levels")
    levels: list[Level] = []
    previous = 1
    for i, item in enumerate(items):
        f = Fields(item, top.source, f"levels[{i}]", {"name", "processes", "alpha", "bandwidth"})
        name = f.text("name")
        if name in {lv.name for lv in levels}:
            raise f.error("name", "a level name not used before", name)
        last = i == len(items) - 1
        if last:
            if f.has("processes"):
                raise f.error("processes", "no processes on the outermost level (it spans the "
                              "whole machine)", f.raw("processes"))
            level = Level(name, None, _latency(f) if f.has("alpha") else alpha_s,
                          f.quantity("bandwidth", "bandwidth", bounds=BANDWIDTH_RANGE)
                          if f.has("bandwidth") else bandwidth)
            for key, value, flat in (("alpha", level.alpha_s, alpha_s),
                                     ("bandwidth", level.bandwidth_Bps, bandwidth)):
                if value != flat:
                    raise f.error(key, f"the top-level {key} {top.raw(key)!r} (the outermost "
                                  "level is what the flat model sees)", f.raw(key))
        else:
            processes = f.integer("processes", minimum=1, maximum=MAX_PROCESSES)
            if i and (processes % previous or processes == previous):
                raise f.error("processes", f"a multiple of {previous} greater than {previous} "
                              "(processes per domain, counted cumulatively)", processes)
            previous = processes
            level = Level(name, processes, _latency(f),
                          f.quantity("bandwidth", "bandwidth", bounds=BANDWIDTH_RANGE))
        levels.append(level)
    return tuple(levels)


def _per_collective(top: Fields) -> tuple[tuple[tuple[str, float, float], ...],
                                          tuple[tuple[str, int, float, float], ...]]:
    """``per_collective: {allgather|allreduce|p2p: {alpha: TIME, bandwidth: RATE,
    processes: {p: {alpha: TIME, bandwidth: RATE}}}}`` → ((kind, α s, bandwidth B/s), …) in
    PER_COLLECTIVE_KINDS order and ((kind, p, α s, bandwidth B/s), …), p ascending per kind;
    absent → ((), ())."""
    if not top.has("per_collective"):
        return (), ()
    raw = top.raw("per_collective")
    if not isinstance(raw, dict) or not raw:
        raise top.error("per_collective", "a mapping {allgather|allreduce|p2p: "
                                          "{alpha: TIME, bandwidth: RATE}}", raw)
    f = Fields(raw, top.source, "per_collective", set(PER_COLLECTIVE_KINDS))
    out, by_p = [], []
    for kind in PER_COLLECTIVE_KINDS:
        if not f.has(kind):
            continue
        entry = Fields(f.raw(kind), top.source, f.at(kind), {"alpha", "bandwidth", "processes"})
        out.append((kind, *_alpha_bandwidth(entry)))
        if entry.has("processes"):
            by_p += [(kind, *row) for row in _processes(entry)]
    return tuple(out), tuple(by_p)


def _alpha_bandwidth(entry: Fields) -> tuple[float, float]:
    """(α s, bandwidth B/s) of a mapping with both keys; α may be a bare 0."""
    return _latency(entry), entry.quantity("bandwidth", "bandwidth", bounds=BANDWIDTH_RANGE)


def _processes(entry: Fields) -> list[tuple[int, float, float]]:
    """A kind's ``processes: {p: {alpha: TIME, bandwidth: RATE}}`` → [(p, α s, B/s), …],
    p ascending; p an integer ≥ 2 (a group size)."""
    raw = entry.raw("processes")
    expected = ("a non-empty mapping {p: {alpha: TIME, bandwidth: RATE}} with p a process "
                "count (an integer ≥ 2)")
    if not isinstance(raw, dict) or not raw:
        raise entry.error("processes", expected, raw if isinstance(raw, dict) else _kind_of(raw))
    table = Fields(raw, entry.source, entry.at("processes"), _keys(raw))
    rows = []
    for p in raw:
        if isinstance(p, bool) or not isinstance(p, int) or p < 2:
            raise table.error(str(p), "a process count (an integer ≥ 2) as the key", p)
        if p > MAX_PROCESSES:
            raise table.error(str(p), f"a process count of at most {MAX_PROCESSES:,} (a limit "
                              "of gridcost)", p)
        pair = Fields(raw[p], entry.source, table.at(str(p)), {"alpha", "bandwidth"})
        rows.append((p, *_alpha_bandwidth(pair)))
    return sorted(rows)


def _schedule(top: Fields) -> dict[str, Any]:
    """``schedule``: the defaults of overlap 'backward' (docs/schedule.md): ``bucket`` (a
    preset — ddp, horovod, layer — or a size such as '25 MiB' or 0) and ``backward_ratio``
    (backward / forward compute, a positive number)."""
    from costmodel.engine.buckets import PRESETS, parse_size

    f = Fields(top.raw("schedule"), top.source, "schedule", {"bucket", "backward_ratio"})
    out: dict[str, Any] = {}
    if f.has("bucket"):
        value = f.raw("bucket")
        expected = f"one of {', '.join(PRESETS)} or a size in bytes (e.g. '25 MiB', 0)"
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise f.error("bucket", expected, value)
        text = str(value).replace(" ", "")
        if text not in PRESETS:
            try:
                size = parse_size(text)
            except GridcostError:
                raise f.error("bucket", expected, value) from None
            if size > MEMORY_RANGE[1]:
                raise f.error("bucket", f"a size up to {format_bytes(MEMORY_RANGE[1])} (a "
                              "limit of gridcost)", value)
            text = repr(size)
        out["bucket"] = text
    if f.has("backward_ratio"):
        ratio = f.raw("backward_ratio")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) \
                or not 0 < ratio <= MAX_BACKWARD_RATIO:
            raise f.error("backward_ratio", "a positive number (backward / forward compute) "
                          f"up to {MAX_BACKWARD_RATIO:g}", ratio)
        out["backward_ratio"] = float(ratio)
    return out


def _optimizer(top: Fields) -> float:
    """Optimizer state in bytes per parameter: a name (sgd, momentum, adam) or a number ≥ 0."""
    value = top.raw("optimizer")
    if isinstance(value, str) and value in OPTIMIZERS:
        return OPTIMIZERS[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise top.error("optimizer", f"one of {', '.join(OPTIMIZERS)} or a number of bytes per "
                                     "parameter ≥ 0", value)
    if value > MAX_OPTIMIZER_BYTES:
        raise top.error("optimizer", f"at most {MAX_OPTIMIZER_BYTES:g} bytes per parameter (a "
                        "limit of gridcost)", value)
    return float(value)


def _gamma(top: Fields, flop_rate: float) -> float:
    """γ in s/word: '<number> <time>/word', 0, or 'flop_rate' (one FLOP per word: 1/flop_rate)."""
    if not top.has("gamma"):
        return 0.0
    gamma = top.raw("gamma")
    if gamma == "flop_rate":
        return 1.0 / flop_rate
    if (type(gamma) is int and gamma == 0) or (isinstance(gamma, str)
                                               and _ZERO_PER_WORD.match(gamma)):
        return 0.0
    expected = "'<number> <time unit>/word' (e.g. '0.1 ns/word'), 0 or 'flop_rate'"
    if not isinstance(gamma, str) or not gamma.rstrip().endswith("/word"):
        raise top.error("gamma", expected, gamma)
    if gamma.strip().startswith("-"):
        raise top.error("gamma", "a time per word ≥ 0", gamma)
    try:
        seconds = parse_quantity(gamma.rstrip()[:-len("/word")], "time")
    except SpecError:
        raise top.error("gamma", expected, gamma) from None
    if seconds > MAX_GAMMA:
        raise top.error("gamma", f"a time per word up to {format_seconds(MAX_GAMMA)}/word "
                        "(a limit of gridcost)", gamma)
    return seconds


def _collectives(top: Fields) -> str:
    """The profile's collective selection as a string: a name or 'allgather=A,allreduce=B'."""
    if not top.has("collectives"):
        return "paper"
    value = top.raw("collectives")
    if isinstance(value, str):
        if value not in coll.SET_NAMES:
            raise top.error("collectives", f"one of {', '.join(coll.SET_NAMES)} or a mapping "
                            f"{{{', '.join(f'{k}: NAME' for k in coll.SELECTABLE)}}}", value)
        return value
    if not isinstance(value, dict):
        raise top.error("collectives", "an algorithm name or a mapping "
                        f"{{{', '.join(f'{k}: NAME' for k in coll.SELECTABLE)}}}", value)
    f = Fields(value, top.source, "collectives", set(coll.SELECTABLE))
    chosen = []
    for kind in coll.SELECTABLE:
        name = f.raw(kind, default="paper")
        if name not in coll.names_of(kind):
            raise f.error(kind, f"one of {', '.join(coll.names_of(kind))}", name)
        chosen.append(f"{kind}={name}")
    return ",".join(chosen)


def _compute_tables(data: object, source: str) -> tuple[tuple[ComputeTable, ...], str | None]:
    comp = Fields(data, source, "compute", {"default", "tables"})
    raw_tables = comp.raw("tables", required=True)
    tables_f = Fields(raw_tables, source, "compute.tables", _keys(raw_tables))
    tables = []
    measured_on: dict[str, Network] = {}
    if len(tables_f.data) > MAX_TABLE_ROWS:
        raise comp.error("tables", f"at most {MAX_TABLE_ROWS:,} tables (a limit of gridcost)")
    for name in tables_f.data:
        entry = Fields(tables_f.data[name], source, f"compute.tables.{name}",
                       {"network", "source", "epoch_time", "fingerprint", "samples"})
        times = entry.raw("epoch_time", required=True)
        times_f = Fields(times, source, entry.at("epoch_time"), _keys(times))
        batches: list[int] = []
        if len(times_f.data) > MAX_TABLE_ROWS:
            raise entry.error("epoch_time", f"at most {MAX_TABLE_ROWS:,} entries (a limit of "
                              "gridcost)")
        for b in times_f.data:
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise times_f.error(str(b), "a local batch size (integer ≥ 1) as the key", b)
            if b > MAX_LOCAL_BATCH:
                raise times_f.error(str(b), f"a local batch size of at most "
                                    f"{MAX_LOCAL_BATCH:,} (a limit of gridcost)", b)
            batches.append(b)
        batches.sort()
        seconds = []
        for batch in batches:
            value = parse_quantity(times[batch], "time", source, times_f.at(str(batch)))
            _check_range(times_f, str(batch), value, "time", EPOCH_TIME_RANGE, times[batch])
            seconds.append(value)
        if len(batches) < 2:
            raise entry.error("epoch_time", "at least two local-batch entries")
        label, fingerprint, samples = _measured_network(entry, source, measured_on)
        tables.append(ComputeTable(str(name), label, tuple(batches), tuple(seconds),
                                   entry.text("source", default=""), fingerprint, samples))
    default = comp.text("default") if comp.has("default") else (tables[0].name if tables else None)
    if default is not None and default not in {t.name for t in tables}:
        raise comp.error("default", f"one of {', '.join(t.name for t in tables)}", default)
    return tuple(tables), default


_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def _measured_network(entry: Fields, source: str,
                      seen: dict[str, Network]) -> tuple[str, str, int | None]:
    """The network a compute table was measured on: (its name, its fingerprint, N of its
    epochs; docs/formats.md, "compute").

    ``network`` is a bundled network's name, or a network file (a value ending in .yaml/.yml or
    holding a '/'; relative to the machine file's folder) whose fingerprint is derived here; or
    the table states ``fingerprint`` itself (then ``network`` is only a label).  ``samples``
    overrides N; without it N is the measured network's (None with a stated fingerprint: the
    costed network's own).
    """
    samples = entry.integer("samples", maximum=MAX_SAMPLES) if entry.has("samples") else None
    if entry.has("fingerprint"):
        fingerprint = entry.raw("fingerprint")
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            raise entry.error("fingerprint", "16 lowercase hex digits, the network's "
                              "`network_fingerprint` in `gridcost optimize --format json`",
                              fingerprint)
        return entry.text("network"), fingerprint, samples
    value = entry.text("network")
    if value not in seen:
        if value.endswith((".yaml", ".yml")) or "/" in value:
            path = Path(value)
            if not path.is_absolute() and source != "<stdin>":
                path = Path(source).parent / path
            if not is_file(path):
                raise entry.error("network", "the network file the table was measured on "
                                  f"(relative to the folder of {source}), or a `fingerprint`",
                                  f"{value} (no such file)")
            seen[value] = network_from_document(read_document(str(path), "networks"))
        elif value in bundled_names("networks"):
            seen[value] = load_network(value)
        else:
            raise entry.error("network", "a bundled network (" + ", ".join(
                bundled_names("networks")) + "), a network file ending in .yaml, or a "
                "`fingerprint` beside it", value)
    network = seen[value]
    return network.name, network.fingerprint, samples or network.dataset_samples


def load_machine(name_or_path: str) -> Machine:
    """Load a machine profile by path or bundled name (``cori-knl``)."""
    return machine_from_document(read_document(name_or_path, "machines"))


def machine_from_text(text: str, source: str) -> Machine:
    """A machine profile from its YAML text (what ``calibrate`` is about to write), checked
    exactly as :func:`load_machine` checks a file."""
    return machine_from_document(_parse(text, source))
