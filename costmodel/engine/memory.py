"""Memory per process: weights, gradients, optimizer state, activations, buffers (docs/memory.md).

Beyond the paper (docs/model.md §10): for every grid × weighted layer, the bytes one process holds
during a training iteration, on the process that holds the most (⌈⌉ everywhere, as in §6):

- **weights** and **gradients**: ``word_bytes`` × the parameters the process holds — the shard
  ⌈split/Pr⌉/split·|W_i| of a model-split layer (the same shard the gradient all-reduce of Eq. 8
  moves), all of |W_i| for batch and domain splits;
- **optimizer** state: ``optimizer_bytes_per_param`` × the same parameters (SGD 0, momentum 4,
  Adam 8 bytes per parameter in fp32);
- **activations** kept for the backward pass: s = ⌈B/Pc⌉ local samples × ``word_bytes`` × (the
  layer's input + its output as held by the process).  Model split: the full input X_i (it is
  all-gathered before the layer) and the output shard ⌈split/Pr⌉/split·d_i.  Domain split: the
  input strip ⌈X_H/Pr⌉ rows plus ⌊k_h/2⌋ halo rows on each side (at most X_H rows) and the
  output strip ⌈Y_H/Pr⌉ rows.  Batch (Pr = 1): input and output in full.  Imported networks
  (docs/import.md) add the activations of the weight-free products after a layer (attention
  scores), divided by Pr like the layer's output;
- **buffer**: the largest single collective payload n of the layer (``word_bytes`` × n): the
  all-gathered output s·d_i of a model split (the ΔX all-reduce, charged with d_i by the paper,
  has the same size), the gradient all-reduce of the layer's shard (Pc > 1) or of |W_i| over all
  P (domain), and each halo s·X_W·X_C·⌊k_h/2⌋, s·Y_W·Y_C·⌊k_w/2⌋.

A grid's total is the sum over layers of weights, gradients, optimizer state and activations,
plus the *largest* buffer over the layers: collectives run one after another in the model, and
one receive buffer of the largest message is reused.  Everything is bytes (SI), arrays (G, L)
per layer or (G,) per grid.  Each component is ``fixed`` + ``per_sample`` × s: activations and
activation buffers grow with the local batch, parameters and weight buffers do not, which gives
:func:`largest_local_batch` in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from costmodel.engine.grids import Grids
from costmodel.engine.plans import DOMAIN, LayerGroup, Plan
from costmodel.errors import UsageError
from costmodel.inputs.specs import Layer, Network, distinct_layers
from costmodel.limits import MAX_OPTIMIZER_BYTES
from costmodel.units import format_number as _n

OPTIMIZERS: dict[str, float] = {"sgd": 0.0, "momentum": 4.0, "adam": 8.0}
"""Optimizer state in bytes per parameter (fp32): plain SGD none, momentum one buffer, Adam two
moments.  Mixed-precision master weights are not included: give a number instead (e.g. 12)."""

COMPONENTS = ("weights", "gradients", "optimizer", "activations", "buffer")
"""The memory components, in report order; ``buffer`` enters a total by its maximum over layers."""

GIB = float(2**30)


def optimizer_bytes(value: object, where: str = "--optimizer") -> float:
    """Bytes of optimizer state per parameter from a name (sgd, momentum, adam) or a number ≥ 0."""
    if isinstance(value, str) and value.strip().lower() in OPTIMIZERS:
        return OPTIMIZERS[value.strip().lower()]
    try:
        number = float(value) if not isinstance(value, bool) else math.nan  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and 0 <= number <= MAX_OPTIMIZER_BYTES.largest):
        raise UsageError(f"{where}: expected sgd, momentum, adam or a number of bytes per "
                         f"parameter from 0 to {MAX_OPTIMIZER_BYTES.largest} "
                         f"({MAX_OPTIMIZER_BYTES.why}), got {str(value)[:40]!r}")
    return number


def optimizer_label(bytes_per_param: float) -> str:
    """``'adam (8 B/param)'`` for a named optimizer's value, else ``'12 B/param'``."""
    names = [n for n, v in OPTIMIZERS.items() if v == bytes_per_param and n != "sgd"]
    if bytes_per_param == 0:
        names = ["sgd"]
    text = f"{bytes_per_param:g} B/param"
    return f"{names[0]} ({text})" if names else text


@dataclass(frozen=True)
class MemoryCheck:
    """What the memory check compares: per-process ``capacity_bytes`` (the machine's memory)
    against the bytes of a grid with ``optimizer_bytes_per_param`` of optimizer state (words
    are the machine's ``word_bytes``)."""

    capacity_bytes: float
    optimizer_bytes_per_param: float = 0.0

    def __post_init__(self) -> None:
        if not self.capacity_bytes > 0:
            raise UsageError(f"memory: expected a positive capacity, got {self.capacity_bytes!r}")
        if not self.optimizer_bytes_per_param >= 0:
            raise UsageError("optimizer: expected bytes per parameter ≥ 0, got "
                             f"{self.optimizer_bytes_per_param!r}")


@dataclass(frozen=True)
class MemoryLayers:
    """Per-layer sizes as float arrays of shape (1, L), in words per sample or parameters."""

    params: np.ndarray
    split_size: np.ndarray
    in_height: np.ndarray
    in_row: np.ndarray
    out_height: np.ndarray
    out_row: np.ndarray
    out_words: np.ndarray
    halo_h: np.ndarray
    halo_w: np.ndarray
    is_conv: np.ndarray
    count: np.ndarray
    free_words: np.ndarray
    """Activations per sample of the weight-free products after each layer (attention scores,
    docs/import.md); (1, L), zero for the bundled networks."""

    @classmethod
    def of(cls, layers: tuple[Layer, ...], count: np.ndarray | None = None) -> MemoryLayers:
        """Arrays of ``layers``, each occurring ``count`` (1, L) times (default once)."""
        def row(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=np.float64)[None, :]

        return cls(
            params=row([x.params for x in layers]),
            split_size=row([x.split_size for x in layers]),
            in_height=row([x.in_shape[0] for x in layers]),
            in_row=row([x.in_shape[1] * x.in_shape[2] for x in layers]),
            out_height=row([x.out_shape[0] for x in layers]),
            out_row=row([x.out_shape[1] * x.out_shape[2] for x in layers]),
            out_words=row([x.activations for x in layers]),
            halo_h=row([x.halo_rows[0] for x in layers]),
            halo_w=row([x.halo_rows[1] for x in layers]),
            is_conv=np.array([[x.kind == "conv" for x in layers]]),
            count=(np.ones((1, len(layers))) if count is None
                   else np.asarray(count, dtype=np.float64).reshape(1, -1)),
            free_words=row([x.free_activations for x in layers]),
        )

    def take(self, index: np.ndarray) -> MemoryLayers:
        """The layers at ``index`` (columns)."""
        return MemoryLayers(**{name: getattr(self, name)[:, index]
                               for name in self.__dataclass_fields__})


@dataclass(frozen=True)
class GroupMemory:
    """Bytes per process of one layer group (docs/memory.md), arrays (G, Lg).

    Words held per sample and per grid: ``act_per_sample`` (activations kept) and
    ``buffer_per_sample`` (largest activation payload); words independent of the batch:
    ``params_held`` (parameters) and ``buffer_fixed`` (gradient all-reduce payload).
    ``samples`` (G, 1) is the local batch ⌈B/Pc⌉ of the group.
    """

    group: LayerGroup
    layers: MemoryLayers
    samples: np.ndarray
    params_held: np.ndarray
    act_per_sample: np.ndarray
    buffer_fixed: np.ndarray
    buffer_per_sample: np.ndarray


def group_memory(group: LayerGroup, layers: MemoryLayers, batch: np.ndarray) -> GroupMemory:
    """Parameters, activations and buffer payloads (words) of one group; ``batch`` (G, 1)."""
    pr, pc = group.pr.astype(np.float64), group.pc.astype(np.float64)
    samples = np.ceil(batch / pc)
    split = pr > 1
    zeros = np.zeros(np.broadcast_shapes(pr.shape, layers.params.shape))
    if group.mode == DOMAIN:
        params = zeros + layers.params
        halo = np.where(split, 2.0 * layers.halo_h, 0.0)
        rows_in = np.minimum(layers.in_height, np.ceil(layers.in_height / pr) + halo)
        act = (rows_in * layers.in_row + np.ceil(layers.out_height / pr) * layers.out_row
               + layers.free_words / pr)
        halo_words = np.maximum(layers.in_row * layers.halo_h, layers.out_row * layers.halo_w)
        buffer_sample = np.where(split, halo_words, 0.0) + zeros
        buffer_fixed = np.where(pr * pc > 1, layers.params, 0.0) + zeros
    else:
        share = np.ceil(layers.split_size / pr) / layers.split_size
        params = share * layers.params
        # weight-free products (attention) split with the layer before them: heads over Pr
        act = layers.in_height * layers.in_row + share * (layers.out_words + layers.free_words)
        buffer_sample = np.where(split, layers.out_words, 0.0) + zeros
        buffer_fixed = np.where(pc > 1, params, 0.0)
    return GroupMemory(group, layers, samples, params, act, buffer_fixed, buffer_sample)


@dataclass(frozen=True)
class MemoryTable:
    """Bytes per process of a plan on a set of grids, per component (docs/memory.md).

    ``layer(c)`` gives (G, L) bytes of component c in layer order; ``component(c)`` (G,) the
    component's share of the total (the buffer: its maximum over layers); ``total`` (G,).
    """

    grids: Grids
    n_layers: int
    word_bytes: int
    optimizer_bytes_per_param: float
    groups: tuple[GroupMemory, ...]

    def _group_bytes(self, g: GroupMemory, name: str) -> np.ndarray:
        w = float(self.word_bytes)
        if name in ("weights", "gradients"):
            return w * g.params_held
        if name == "optimizer":
            return self.optimizer_bytes_per_param * g.params_held
        if name == "activations":
            return np.asarray(w * g.samples * g.act_per_sample)
        if name == "buffer":
            return np.asarray(w * np.maximum(g.buffer_fixed, g.samples * g.buffer_per_sample))
        raise ValueError(name)

    def layer(self, name: str) -> np.ndarray:
        """Bytes of component ``name`` per grid × layer, (G, L)."""
        out = np.zeros((len(self.grids), self.n_layers))
        for g in self.groups:
            out[:, g.group.index] = np.broadcast_to(self._group_bytes(g, name),
                                                    (len(self.grids), g.group.index.size))
        return out

    def component(self, name: str) -> np.ndarray:
        """Bytes of component ``name`` per grid, (G,): summed over layers (weighted by each
        layer's count), except ``buffer``, the largest over layers."""
        out = np.zeros(len(self.grids))
        for g in self.groups:
            part = np.broadcast_to(self._group_bytes(g, name),
                                   (len(self.grids), g.group.index.size))
            out = np.maximum(out, part.max(axis=1)) if name == "buffer" \
                else out + part @ g.layers.count[0]
        return out

    @property
    def total(self) -> np.ndarray:
        """Bytes per process of every grid, (G,)."""
        return sum((self.component(c) for c in COMPONENTS), np.zeros(len(self.grids)))

    def fits(self, capacity_bytes: float) -> np.ndarray:
        """(G,) True where the total fits in ``capacity_bytes``."""
        return np.asarray(self.total <= capacity_bytes)

    def largest_local_batch(self, capacity_bytes: float) -> np.ndarray:
        """Largest b ≥ 0 per grid such that the grid fits at global batch B = b·P, (G,) int.

        Each group of P = Pr_g·Pc_g processes holds ⌈bP/Pc_g⌉ = b·Pr_g samples, so the total is
        F + b·A + max(W, b·S) with F the parameter bytes, A the activation bytes per b, W the
        largest gradient-buffer bytes and S the largest activation-buffer bytes per b; it fits iff
        F + b·A + W ≤ capacity and F + b·(A + S) ≤ capacity.  The grid's layout (group sizes) is
        held fixed.
        """
        G, w = len(self.grids), float(self.word_bytes)
        fixed = np.zeros(G)
        slope = np.zeros(G)
        buffer_w = np.zeros(G)
        buffer_s = np.zeros(G)
        per_param = 2.0 * w + self.optimizer_bytes_per_param
        for g in self.groups:
            shape = (G, g.group.index.size)
            count = g.layers.count[0]
            per_b = g.group.pr[:, 0].astype(np.float64)  # samples per process per unit of b
            fixed += per_param * (np.broadcast_to(g.params_held, shape) @ count)
            slope += per_b * w * (np.broadcast_to(g.act_per_sample, shape) @ count)
            buffer_w = np.maximum(buffer_w, w * np.broadcast_to(g.buffer_fixed, shape).max(1))
            buffer_s = np.maximum(buffer_s, per_b * w
                                  * np.broadcast_to(g.buffer_per_sample, shape).max(1))
        room = capacity_bytes - fixed
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.minimum((room - buffer_w) / slope, room / (slope + buffer_s))
        b = np.where(slope > 0, b, np.where(room - buffer_w >= 0, np.inf, -1.0))
        return np.asarray(np.maximum(np.floor(np.minimum(b, 2.0**62)), 0).astype(np.int64))


def memory_table(network: Network, grids: Grids, plan: Plan, word_bytes: int,
                 optimizer_bytes_per_param: float = 0.0, unique: bool = False) -> MemoryTable:
    """Bytes per process of every grid × layer of ``network`` under ``plan`` (docs/memory.md).

    With ``unique``, identical layers are costed once and weighted by their count (for sweeps:
    the per-grid totals are the same; :meth:`MemoryTable.layer` then has one column per
    distinct layer).
    """
    layers, count = distinct_layers(network.layers) if unique else (network.layers, None)
    arrays = MemoryLayers.of(layers, count)
    batch = grids.batch[:, None].astype(np.float64)
    groups = tuple(group_memory(group, arrays.take(group.index), batch)
                   for group in plan.groups(grids, arrays.is_conv))
    return MemoryTable(grids, len(layers), word_bytes, optimizer_bytes_per_param, groups)


def format_gib(value: float) -> str:
    """Bytes as GiB with 4 significant digits: ``'3.25 GiB'``."""
    return f"{_n(value / GIB)} GiB"


def memory_reason(total_bytes: float, capacity_bytes: float) -> str:
    """The infeasibility reason of a grid that does not fit."""
    return (f"needs {format_gib(total_bytes)} per process > memory "
            f"{format_gib(capacity_bytes)}")
