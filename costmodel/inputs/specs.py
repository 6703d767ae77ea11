"""Validated, immutable specifications: a network's weighted layers and a machine profile.

Everything is in SI units (seconds, bytes, bytes/s, FLOP/s) or plain counts (parameters,
activations, multiply-adds).  No I/O here: `costmodel.inputs.loaders` builds these from YAML.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from costmodel.errors import SpecError

LayerKind = Literal["conv", "fc"]
Shape = tuple[int, int, int]
"""(height, width, channels) of one sample's activations."""


# --------------------------------------------------------------------------- limits and ranges
# Every number a network or machine file may give, and the sizes it implies, lies in a stated
# range: wide enough for any real network or machine, narrow enough that no later product
# overflows or loses meaning.  costmodel.inputs.loaders checks them; docs/formats.md ("Limits and
# ranges") lists them with their reasons.

MAX_SIZE = 2**24
"""Largest dimension of a layer or an input (height, width, channels, filters, units, tokens,
kernel, stride, padding, dilation, groups, matmul sizes): 16,777,216, 64× the largest
vocabulary of a language model's output layer."""

MAX_LAYERS = 100_000
"""Most weighted layers (conv, fc) of a network, repeats expanded: 640× ResNet-152's 156."""

MAX_RECORDS = 300_000
"""Most layer records a network expands to (every type, repeats multiplied out): three for
each weighted layer allowed."""

MAX_LAYER_VALUES = 2**40
"""Most parameters of one layer, and most activations per sample of one layer (or of the
input): about 1.1 × 10¹², beyond any single layer ever trained."""

MAX_PARAMS = 2**44
"""Most parameters of a network: about 1.8 × 10¹³, ten times the largest models reported."""

MAX_MACS = 2**53
"""Most multiply-adds per sample of a network: about 9 × 10¹⁵, where float64 stops counting
exactly."""

MAX_SAMPLES = 10**14
"""Largest N, samples per epoch (``dataset.samples``, a compute table's ``samples``)."""

ALPHA_RANGE = (1e-12, 10.0)
"""Latency α in s: 0 exactly, or from 1 ps (below any link) to 10 s (beyond any network)."""

BANDWIDTH_RANGE = (1e3, 1e15)
"""Bandwidth in B/s: from 1 kB/s to 1 PB/s (500× an NVLink 5 link's 1.8 TB/s)."""

WORD_BYTES_RANGE = (1, 16)
"""Bytes per word: 1 (FP8) to 16 (FP128)."""

FLOP_RATE_RANGE = (1e6, 1e18)
"""FLOP/s of one process: 1 MFLOP/s to 1 EFLOP/s (100× the fastest accelerator)."""

MEMORY_RANGE = (2.0**20, 2.0**50)
"""Memory of one process in bytes: 1 MiB to 1 PiB."""

MAX_OPTIMIZER_BYTES = 1024.0
"""Optimizer state in bytes per parameter, at most (Adam in FP32 keeps 12)."""

MAX_GAMMA = 1e-3
"""γ in s/word at most (1 ms per word of reduction arithmetic; real values are ~10⁻¹⁰)."""

MAX_BACKWARD_RATIO = 100.0
"""Backward over forward compute, at most (2 for a conv or fc layer)."""

EPOCH_TIME_RANGE = (1e-6, 1e10)
"""A compute table's epoch time in s: 1 µs to 10¹⁰ s (317 years)."""

MAX_LOCAL_BATCH = 2**30
"""Largest local batch a compute table may give a time for."""

MAX_PROCESSES = 2**30
"""Largest process count in a machine file (a level's processes, a per-collective group)."""

MAX_TABLE_ROWS = 10_000
"""Most entries of one compute table, and most compute tables of a machine."""


@dataclass(frozen=True)
class Layer:
    """One weighted layer (conv or fully connected) with its inferred shapes.

    ``params`` is |W_i| of docs/model.md §2: weights, bias and the parameters of a
    normalization layer that follows it.  ``activations`` is d_i, the output activations per
    sample before any pooling.  ``split_size`` is the dimension a model split divides (filters of
    a conv, output units of an fc).
    """

    name: str
    kind: LayerKind
    in_shape: Shape
    out_shape: Shape
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    weight_params: int = 0
    norm_params: int = 0
    dilation: tuple[int, int] = (1, 1)
    free_macs: int = 0
    """Weight-free multiply-adds per sample that follow this layer (attention's Q·Kᵀ and A·V,
    docs/import.md): compute without parameters, counted in :attr:`macs`."""
    free_activations: int = 0
    """Activations per sample those weight-free products produce (attention scores), kept for
    the backward pass like the layer's own (docs/memory.md)."""

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "fc"):
            raise SpecError("", f"layer {self.name}", "kind 'conv' or 'fc'", self.kind)
        for name, shape in (("in_shape", self.in_shape), ("out_shape", self.out_shape)):
            if len(shape) != 3 or min(shape) < 1:
                raise SpecError("", f"layer {self.name}.{name}", "three positive sizes", shape)
        if self.weight_params < 1 or self.norm_params < 0:
            raise SpecError("", f"layer {self.name}", "a positive parameter count")
        if min(self.dilation) < 1 or self.free_macs < 0 or self.free_activations < 0:
            raise SpecError("", f"layer {self.name}", "a dilation ≥ 1 and weight-free counts ≥ 0")

    @property
    def params(self) -> int:
        """|W_i|: weights + bias + the following normalization layer's parameters."""
        return self.weight_params + self.norm_params

    @property
    def activations(self) -> int:
        """d_i: output activations per sample (Y_H·Y_W·Y_C), before pooling."""
        h, w, c = self.out_shape
        return h * w * c

    @property
    def split_size(self) -> int:
        """Size of the dimension a model split divides: filters (conv) or units (fc)."""
        return self.out_shape[2]

    @property
    def tokens(self) -> int:
        """Positions an fc layer is applied to: 1 for a flattened input, H·W of its input for an
        fc with a token count (docs/formats.md); a conv's output positions."""
        return self.out_shape[0] * self.out_shape[1]

    @property
    def macs(self) -> int:
        """Forward multiply-adds per sample: the layer's own (conv d_i·C/groups·k_h·k_w, fc
        tokens·C·units) plus the weight-free products that follow it (:attr:`free_macs`)."""
        if self.kind == "fc":
            own = self.in_shape[0] * self.in_shape[1] * self.in_shape[2] * self.out_shape[2]
        else:
            kh, kw = self.kernel
            own = self.activations * (self.in_shape[2] // self.groups) * kh * kw
        return own + self.free_macs

    @property
    def halo_rows(self) -> tuple[int, int]:
        """(⌊k_h/2⌋, ⌊k_w/2⌋): rows of halo a domain split along the height needs (Eq. 7); a
        kernel dilated by d spans d·(k−1)+1 rows, so ⌊(d·(k−1)+1)/2⌋ (⌊k/2⌋ when d = 1)."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return (dh * (kh - 1) + 1) // 2, (dw * (kw - 1) + 1) // 2


@dataclass(frozen=True)
class Network:
    """A network as gridcost sees it: its weighted layers in execution order."""

    name: str
    layers: tuple[Layer, ...]
    input_shape: Shape
    dataset_samples: int = 1_200_000
    dataset_name: str = "ImageNet-1k"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not self.layers:
            raise SpecError(self.name, "layers", "at least one conv or fc layer")
        seen: set[str] = set()
        for layer in self.layers:
            if layer.name in seen:
                raise SpecError(self.name, "layers", "unique weighted-layer names", layer.name)
            seen.add(layer.name)
        if self.dataset_samples < 1:
            raise SpecError(self.name, "dataset.samples", "a positive integer",
                            self.dataset_samples)

    @property
    def params(self) -> int:
        """Total parameters, biases and normalization parameters included."""
        return sum(layer.params for layer in self.layers)

    @property
    def fingerprint(self) -> str:
        """16 hex digits of the SHA-256 of the facts that set the compute time: the input shape
        and, per weighted layer in order, kind, input and output shapes, kernel, stride, padding,
        groups and parameter counts.  Names and the dataset are not part of it, so a renamed
        copy of a network keeps its fingerprint and any change of a layer changes it."""
        canonical = [list(self.input_shape)] + [
            [layer.kind, list(layer.in_shape), list(layer.out_shape), list(layer.kernel),
             list(layer.stride), list(layer.padding), layer.groups, layer.weight_params,
             layer.norm_params]
            for layer in self.layers]
        text = json.dumps(canonical, separators=(",", ":"))
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]

    @property
    def macs(self) -> int:
        """Forward multiply-adds per sample over all weighted layers."""
        return sum(layer.macs for layer in self.layers)

    def layer_index(self, name: str) -> int:
        """Position of the weighted layer called ``name``."""
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        from costmodel.errors import UnknownName

        raise UnknownName("layer", name, [layer.name for layer in self.layers])


@dataclass(frozen=True)
class ComputeTable:
    """Measured epoch time on one process as a function of the local batch (docs/model.md §7).

    ``local_batch`` and ``epoch_s`` are increasing-batch arrays of equal length; ``network`` names
    the network the table was measured on, ``fingerprint`` is that network's
    :attr:`Network.fingerprint` — the table applies to a network with the same fingerprint,
    whatever its name (docs/formats.md, "compute").  ``samples`` is N of the measured epochs
    (None: the costed network's own N).  A table built in code without a fingerprint applies by
    name only; the loader always gives one.
    """

    name: str
    network: str
    local_batch: tuple[int, ...]
    epoch_s: tuple[float, ...]
    source: str = ""
    fingerprint: str | None = None
    samples: int | None = None

    def mismatch(self, network: Network) -> str | None:
        """Why this table does not apply to ``network`` ('measured on alexnet, different
        layers'), or None when it does."""
        if self.fingerprint is None:
            if self.network == network.name:
                return None
            return f"measured on {self.network}, a network of another name"
        if self.fingerprint == network.fingerprint:
            return None
        return f"measured on {self.network}, different layers"

    def __post_init__(self) -> None:
        if len(self.local_batch) != len(self.epoch_s) or len(self.local_batch) < 2:
            raise SpecError(self.name, "epoch_time", "at least two (local batch, time) entries")
        if list(self.local_batch) != sorted(set(self.local_batch)):
            raise SpecError(self.name, "epoch_time", "increasing local batch sizes")

    def epoch_time_s(self, local_batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """T(b) interpolated linearly in log b – log T; returns (seconds, outside-range mask).

        Outside the table the end segment's log-log slope is extended and the mask says so.
        """
        b = np.asarray(local_batch, dtype=float)
        log_b = np.log(np.asarray(self.local_batch, dtype=float))
        log_t = np.log(np.asarray(self.epoch_s, dtype=float))
        x = np.log(b)
        inside = np.interp(x, log_b, log_t)
        low_slope = (log_t[1] - log_t[0]) / (log_b[1] - log_b[0])
        high_slope = (log_t[-1] - log_t[-2]) / (log_b[-1] - log_b[-2])
        below = x < log_b[0]
        above = x > log_b[-1]
        value = np.where(below, log_t[0] + low_slope * (x - log_b[0]), inside)
        value = np.where(above, log_t[-1] + high_slope * (x - log_b[-1]), value)
        return np.exp(value), below | above


PER_COLLECTIVE_KINDS = ("allgather", "allreduce", "p2p")
"""The collective kinds a machine profile may fit apart (``per_collective``)."""


@dataclass(frozen=True)
class Level:
    """One level of a hierarchical machine (docs/hierarchy.md), innermost first.

    ``processes`` is how many processes one domain of this level holds (a node: processes per
    node), cumulative and a multiple of the previous level's; None for the outermost level (the
    network, unbounded).  ``alpha_s`` and ``bandwidth_Bps`` are the latency and the per-process
    bandwidth of a message between two processes whose innermost common domain is this level.
    """

    name: str
    processes: int | None
    alpha_s: float
    bandwidth_Bps: float


@dataclass(frozen=True)
class Machine:
    """A machine profile: one α and β for every message (the paper's flat model).

    ``gamma_s_per_word`` is γ, seconds per word of reduction arithmetic (0: free, the paper's
    assumption); ``collectives`` the collective-algorithm selection (docs/collectives.md).
    """

    name: str
    alpha_s: float
    bandwidth_Bps: float
    word_bytes: int = 4
    flop_rate: float = 1e12
    memory_bytes: float | None = None
    optimizer_bytes_per_param: float = 0.0
    compute_tables: tuple[ComputeTable, ...] = field(default=())
    default_table: str | None = None
    description: str = ""
    gamma_s_per_word: float = 0.0
    collectives: str = "paper"
    levels: tuple[Level, ...] = field(default=())
    """Hierarchical machines (docs/hierarchy.md): the levels, innermost first; the outermost
    has the flat ``alpha_s`` and ``bandwidth_Bps``.  Empty or one level: the flat model."""
    per_collective: tuple[tuple[str, float, float], ...] = ()
    """Optional fitted (kind, α s, bandwidth B/s) per collective kind — 'allgather',
    'allreduce', 'p2p' (halo messages) — used for that kind instead of the flat α, β
    (docs/formats.md); () is the paper's flat model."""
    per_collective_processes: tuple[tuple[str, int, float, float], ...] = ()
    """Optional fitted (kind, p, α s, bandwidth B/s) for groups of exactly p processes
    (``per_collective.KIND.processes``, docs/formats.md), used for that kind on groups of p
    instead of the kind's pooled pair — or, for a kind without one, the flat α, β.  Halos
    (kind 'p2p') are messages between two neighbours: only a p2p entry for p = 2 is used."""
    bucket: str | None = None
    """Default gradient bucketing of overlap 'backward' (``schedule.bucket``, docs/schedule.md):
    a preset name (ddp, horovod, layer) or a size in bytes as text; None: ddp."""
    backward_ratio: float = 2.0
    """Backward compute / forward compute of a layer (``schedule.backward_ratio``, docs/
    schedule.md §2): 2 — ΔX and ΔW, each as many multiply-adds as the forward."""

    def __post_init__(self) -> None:
        if not self.alpha_s >= 0:
            raise SpecError(self.name, "alpha", "a latency ≥ 0 s", self.alpha_s)
        if not self.bandwidth_Bps > 0:
            raise SpecError(self.name, "bandwidth", "a positive bandwidth", self.bandwidth_Bps)
        if self.word_bytes < 1:
            raise SpecError(self.name, "word_bytes", "a positive integer", self.word_bytes)
        if not (0.0 <= self.gamma_s_per_word < float("inf")):
            raise SpecError(self.name, "gamma", "a time per word ≥ 0", self.gamma_s_per_word)
        if not self.flop_rate > 0:
            raise SpecError(self.name, "flop_rate", "a positive FLOP/s", self.flop_rate)
        if not self.optimizer_bytes_per_param >= 0:
            raise SpecError(self.name, "optimizer", "bytes per parameter ≥ 0",
                            self.optimizer_bytes_per_param)
        for kind, alpha_k, bandwidth_k in self.per_collective:
            if kind not in PER_COLLECTIVE_KINDS:
                raise SpecError(self.name, "per_collective", f"one of {PER_COLLECTIVE_KINDS}",
                                kind)
            if not alpha_k >= 0 or not bandwidth_k > 0:
                raise SpecError(self.name, f"per_collective.{kind}",
                                "a latency ≥ 0 s and a positive bandwidth", (alpha_k, bandwidth_k))
            if alpha_k > 0 and self.alpha_s == 0:
                raise SpecError(self.name, "alpha", "a latency > 0 s when per_collective sets one",
                                self.alpha_s)
        if not 0 < self.backward_ratio < math.inf:
            raise SpecError(self.name, "schedule.backward_ratio", "a positive number",
                            self.backward_ratio)
        self._check_processes()
        if (self.per_collective or self.per_collective_processes) and len(self.levels) > 1:
            raise SpecError(self.name, "per_collective", "no per_collective together with "
                            "levels (per-level and per-collective fits do not combine yet)")
        self._check_levels()
        names = [t.name for t in self.compute_tables]
        if self.default_table is not None and self.default_table not in names:
            raise SpecError(self.name, "compute.default", f"one of {names}", self.default_table)

    def _check_processes(self) -> None:
        seen: set[tuple[str, int]] = set()
        for kind, p, alpha_k, bandwidth_k in self.per_collective_processes:
            if kind not in PER_COLLECTIVE_KINDS:
                raise SpecError(self.name, "per_collective", f"one of {PER_COLLECTIVE_KINDS}",
                                kind)
            at = f"per_collective.{kind}.processes"
            if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 2:
                raise SpecError(self.name, at, "a process count: an integer ≥ 2", p)
            if (kind, int(p)) in seen:
                raise SpecError(self.name, f"{at}.{p}", "one entry per process count "
                                "(this one is given twice)")
            seen.add((kind, int(p)))
            if not (0 <= alpha_k < math.inf and 0 < bandwidth_k < math.inf):
                raise SpecError(self.name, f"{at}.{p}", "a latency ≥ 0 s and a positive "
                                "bandwidth", (alpha_k, bandwidth_k))
            if alpha_k > 0 and self.alpha_s == 0:
                raise SpecError(self.name, "alpha", "a latency > 0 s when per_collective sets "
                                "one", self.alpha_s)

    def _check_levels(self) -> None:
        previous = 1
        for i, level in enumerate(self.levels):
            at = f"levels[{i}]"
            last = i == len(self.levels) - 1
            if last and level.processes is not None:
                raise SpecError(self.name, f"{at}.processes", "no processes on the outermost "
                                "level (it spans the whole machine)", level.processes)
            if not last and (level.processes is None or level.processes < 1 or (i and (
                    level.processes % previous or level.processes == previous))):
                raise SpecError(self.name, f"{at}.processes", f"a multiple of {previous} "
                                f"greater than {previous} (processes per {level.name}, "
                                "cumulative)" if i else "an integer ≥ 1", level.processes)
            if not level.alpha_s >= 0:
                raise SpecError(self.name, f"{at}.alpha", "a latency ≥ 0 s", level.alpha_s)
            if not level.bandwidth_Bps > 0:
                raise SpecError(self.name, f"{at}.bandwidth", "a positive bandwidth",
                                level.bandwidth_Bps)
            previous = level.processes or previous
        if self.levels and (self.levels[-1].alpha_s, self.levels[-1].bandwidth_Bps) != (
                self.alpha_s, self.bandwidth_Bps):
            raise SpecError(self.name, f"levels[{len(self.levels) - 1}]", "the flat alpha and "
                            "bandwidth on the outermost level")

    @property
    def beta_s_per_word(self) -> float:
        """β: seconds per word, word_bytes / bandwidth (docs/model.md §2)."""
        return self.word_bytes / self.bandwidth_Bps

    @property
    def hierarchical(self) -> bool:
        """True with two levels or more; one level (or none) is the flat model."""
        return len(self.levels) > 1

    @property
    def links(self) -> tuple[tuple[float, float], ...]:
        """(α s, β s/word) of each level, innermost first; the flat (α, β) without levels."""
        if not self.levels:
            return ((self.alpha_s, self.beta_s_per_word),)
        return tuple((lv.alpha_s, self.word_bytes / lv.bandwidth_Bps) for lv in self.levels)

    @property
    def domain_sizes(self) -> tuple[int, ...]:
        """Processes per domain of each level but the outermost (cumulative), innermost first."""
        return tuple(int(lv.processes) for lv in self.levels[:-1] if lv.processes is not None)
    def collective_scales(self) -> dict[str, tuple[float, float]]:
        """{kind: (α_kind/α, β_kind/β)} of the per-collective fits ({} without them).

        The engine multiplies a kind's latency count by the first and its words by the second,
        so α·count + β·words becomes α_kind·count + β_kind·words for that collective.
        """
        beta = self.beta_s_per_word
        return {kind: (alpha_k / self.alpha_s if self.alpha_s > 0 else 1.0,
                       self.word_bytes / bandwidth_k / beta)
                for kind, alpha_k, bandwidth_k in self.per_collective}

    def collective_process_scales(self) -> dict[str, tuple[tuple[int, float, float], ...]]:
        """{kind: ((p, α_kind,p/α, β_kind,p/β), …)} of the fits per group size, p ascending
        ({} without them); see :meth:`collective_scales` and Algorithms.with_scales."""
        beta = self.beta_s_per_word
        out: dict[str, list[tuple[int, float, float]]] = {}
        for kind, p, alpha_k, bandwidth_k in self.per_collective_processes:
            out.setdefault(kind, []).append(
                (int(p), alpha_k / self.alpha_s if self.alpha_s > 0 else 1.0,
                 self.word_bytes / bandwidth_k / beta))
        return {kind: tuple(sorted(rows)) for kind, rows in out.items()}

    def table(self, name: str | None = None) -> ComputeTable | None:
        """The compute table called ``name`` (default: the profile's default), or None."""
        wanted = name or self.default_table
        if wanted is None:
            return None
        for table in self.compute_tables:
            if table.name == wanted:
                return table
        from costmodel.errors import UnknownName

        raise UnknownName("compute table", wanted, [t.name for t in self.compute_tables])


def distinct_layers(layers: tuple[Layer, ...]) -> tuple[tuple[Layer, ...], np.ndarray]:
    """The distinct layers (same kind, shapes, kernel, stride and parameters) in first-seen order,
    and how often each occurs, shape (U,).  Identical layers — the repeated blocks of a ResNet —
    cost the same on every grid, so per-grid totals need each only once, weighted."""
    firsts: dict[tuple[object, ...], int] = {}
    kept: list[Layer] = []
    counts: list[int] = []
    for layer in layers:
        key = (layer.kind, layer.in_shape, layer.out_shape, layer.kernel, layer.stride,
               layer.params, layer.dilation, layer.free_activations)
        if key in firsts:
            counts[firsts[key]] += 1
        else:
            firsts[key] = len(kept)
            kept.append(layer)
            counts.append(1)
    return tuple(kept), np.asarray(counts, dtype=np.float64)
