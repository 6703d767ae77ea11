"""Per grid × layer communication (cost-model.md §4), feasibility (§6) and compute (§7).

:func:`evaluate` turns a network, a machine, a set of grids and a plan into a
:class:`CostTable` of arrays of shape (G, L): for each term — model, batch (weight-gradient
all-reduce) and domain (halo) — its latency count, its words and its seconds.  Everything is per
training iteration; multiply by ``iterations_per_epoch`` for epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from costmodel.collectives import Algorithms, CollectiveCost, algorithms, halo_exchange
from costmodel.errors import UsageError
from costmodel.grids import Grids
from costmodel.plans import DOMAIN, MODEL, Layout, Plan
from costmodel.specs import Layer, Machine, Network

Overlap = Literal["none", "batch"]
ComputeModel = Literal["auto", "table", "flops", "none"]
TERMS = ("model", "batch", "domain")

# Feasibility codes per grid × layer, in the order a reason is reported (cost-model.md §6).
OK, NO_SAMPLES, MODEL_TOO_WIDE, STRIP_TOO_THIN = 0, 1, 2, 3


@dataclass(frozen=True)
class LayerArrays:
    """The network's per-layer numbers as float arrays of shape (1, L), ready to broadcast."""

    params: np.ndarray
    activations: np.ndarray
    split_size: np.ndarray
    in_height: np.ndarray
    in_row_words: np.ndarray
    out_row_words: np.ndarray
    halo_h: np.ndarray
    halo_w: np.ndarray
    is_conv: np.ndarray

    @classmethod
    def of(cls, network: Network) -> LayerArrays:
        """Arrays of every weighted layer of ``network``, in order."""
        return cls._of(network.layers)

    @classmethod
    def unique_of(cls, network: Network) -> tuple[LayerArrays, np.ndarray]:
        """Arrays of the distinct layers of ``network`` and how often each occurs, (1, U).

        Identical layers (same kind, shapes, kernel, stride and parameters: the repeated blocks
        of a ResNet) cost the same on every grid, so totals need each only once, weighted.
        """
        firsts: dict[tuple[object, ...], int] = {}
        counts: list[int] = []
        kept: list[Layer] = []
        for layer in network.layers:
            key = (layer.kind, layer.in_shape, layer.out_shape, layer.kernel, layer.stride,
                   layer.params)
            if key in firsts:
                counts[firsts[key]] += 1
            else:
                firsts[key] = len(kept)
                kept.append(layer)
                counts.append(1)
        return cls._of(tuple(kept)), np.asarray(counts, dtype=np.float64)[None, :]

    @classmethod
    def _of(cls, layers: tuple[Layer, ...]) -> LayerArrays:
        def row(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=np.float64)[None, :]

        return cls(
            params=row([layer.params for layer in layers]),
            activations=row([layer.activations for layer in layers]),
            split_size=row([layer.split_size for layer in layers]),
            in_height=row([layer.in_shape[0] for layer in layers]),
            in_row_words=row([layer.in_shape[1] * layer.in_shape[2] for layer in layers]),
            out_row_words=row([layer.out_shape[1] * layer.out_shape[2] for layer in layers]),
            halo_h=row([layer.halo_rows[0] for layer in layers]),
            halo_w=row([layer.halo_rows[1] for layer in layers]),
            is_conv=np.array([[layer.kind == "conv" for layer in layers]]),
        )


@dataclass(frozen=True)
class Volumes:
    """Latency counts and words of each term, arrays of shape (G, L)."""

    model: CollectiveCost
    batch: CollectiveCost
    domain: CollectiveCost


def local_batch(batch: np.ndarray, pc: np.ndarray) -> np.ndarray:
    """⌈B/Pc⌉: samples on the slowest process of a Pc group (cost-model.md §6)."""
    return -(-batch // pc)


def model_batch_volumes(layout: Layout, layers: LayerArrays, batch: np.ndarray,
                        algo: Algorithms) -> tuple[CollectiveCost, CollectiveCost]:
    """Model and batch terms of the integrated model × batch split (Eq. 8; Eqs. 3, 4 at edges).

    model: 3·(α·lg Pr + β·⌈B/Pc⌉·(Pr−1)/Pr·d_i) — forward all-gather plus the backward ΔX
    all-reduce, which the paper charges with d_i.  batch: 2·(α·lg Pc + β·(Pc−1)/Pc·|W_i|/Pr),
    with |W_i|/Pr the largest shard ⌈split/Pr⌉/split·|W_i| when Pr does not divide the split.
    Shapes (G, L); ``batch`` has shape (G, 1).
    """
    pr, pc = layout.pr, layout.pc
    gathered = local_batch(batch, pc) * layers.activations
    model = algo.allgather(pr, gathered) + algo.allreduce(pr, gathered)
    shard = layers.params * np.ceil(layers.split_size / pr) / layers.split_size
    return model, algo.allreduce(pc, shard)


def domain_volumes(layout: Layout, layers: LayerArrays, batch: np.ndarray,
                   algo: Algorithms) -> tuple[CollectiveCost, CollectiveCost]:
    """Halo and weight terms of the domain × batch split of conv layers (Eqs. 7, 9).

    halo: forward α + β·⌈B/Pc⌉·X_W·X_C·⌊k_h/2⌋, backward α + β·⌈B/Pc⌉·Y_W·Y_C·⌊k_w/2⌋, each only
    when Pr > 1 and its ⌊k/2⌋ > 0.  weights: 2·(α·lg P + β·(P−1)/P·|W_i|) over all P processes.
    Shapes (G, L).
    """
    pr, pc = layout.pr, layout.pc
    samples = local_batch(batch, pc)
    split = pr > 1
    forward = halo_exchange(split & (layers.halo_h > 0),
                            samples * layers.in_row_words * layers.halo_h)
    backward = halo_exchange(split & (layers.halo_w > 0),
                             samples * layers.out_row_words * layers.halo_w)
    weights = algo.allreduce(pr * pc, np.broadcast_to(layers.params, pr.shape))
    return forward + backward, weights


def volumes(layout: Layout, layers: LayerArrays, batch: np.ndarray, algo: Algorithms) -> Volumes:
    """All three terms for every grid × layer, each layer costed by its own mode."""
    is_domain = layout.mode == DOMAIN
    zero = CollectiveCost(np.zeros(layout.pr.shape), np.zeros(layout.pr.shape))
    if not is_domain.any():
        model, weights = model_batch_volumes(layout, layers, batch, algo)
        return Volumes(model=model, batch=weights, domain=zero)
    halo_d, batch_d = domain_volumes(layout, layers, batch, algo)
    if is_domain.all():
        return Volumes(model=zero, batch=batch_d, domain=halo_d)
    model_m, batch_m = model_batch_volumes(layout, layers, batch, algo)

    def pick(domain: CollectiveCost, model: CollectiveCost) -> CollectiveCost:
        return CollectiveCost(np.where(is_domain, domain.messages, model.messages),
                              np.where(is_domain, domain.words, model.words))

    return Volumes(model=pick(zero, model_m), batch=pick(batch_d, batch_m),
                   domain=pick(halo_d, zero))


def feasibility(layout: Layout, layers: LayerArrays, batch: np.ndarray) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """Per grid × layer feasibility code (OK, NO_SAMPLES, …) and uneven flag (§6), (G, L) each."""
    pr, pc = layout.pr, layout.pc
    is_model = layout.mode == MODEL
    # an image that is not split (Pr = 1) is never too thin: it exchanges no halo (§4)
    thin = (pr > 1) & ((layers.in_height / pr) < np.maximum(1.0, layers.halo_h))
    code = np.where(pc > batch, NO_SAMPLES,
                    np.where(is_model & (pr > layers.split_size), MODEL_TOO_WIDE,
                             np.where(~is_model & thin, STRIP_TOO_THIN, OK)))
    divided = np.where(is_model, layers.split_size, layers.in_height)
    uneven = (batch % pc != 0) | (divided % pr != 0)
    return code.astype(np.int8), uneven


def compute_per_iteration_s(network: Network, machine: Machine, grids: Grids,
                            model: ComputeModel = "auto") -> tuple[np.ndarray, str, np.ndarray]:
    """Compute seconds per iteration on each grid (cost-model.md §7), shape (G,).

    table: T(b)/P · B/N with b = max(1, B/P) and T interpolated in the machine's measured table;
    flops: B · 3·2·MACs / (P · flop rate); none: 0.  ``auto`` takes the table when it was
    measured for this network, the flop rate otherwise.  Returns (seconds, the model used,
    mask of grids whose b lies outside the table).
    """
    p = grids.p.astype(np.float64)
    batch = grids.batch.astype(np.float64)
    outside = np.zeros(p.shape, dtype=bool)
    table = machine.table()
    if model == "auto":
        model = "table" if table is not None and table.network == network.name else "flops"
    if model == "none":
        return np.zeros(p.shape), "none", outside
    if model == "table":
        if table is None:
            raise UsageError(f"machine {machine.name!r} has no measured compute table; "
                             "use --compute flops")
        if table.network != network.name:
            raise UsageError(f"compute table {table.name!r} of machine {machine.name!r} was "
                             f"measured for {table.network!r}, not {network.name!r}; "
                             "use --compute flops")
        epoch_s, outside = table.epoch_time_s(np.maximum(1.0, batch / p))
        used = f"table '{table.name}' ({table.network})"
        return epoch_s / p * batch / network.dataset_samples, used, outside
    flops_per_sample = 3.0 * 2.0 * network.macs
    seconds = batch * flops_per_sample / (p * machine.flop_rate)
    return seconds, f"flops ({machine.flop_rate:.4g} FLOP/s)", outside


def combine(compute_s: np.ndarray, model_s: np.ndarray, batch_s: np.ndarray,
            domain_s: np.ndarray, overlap: Overlap) -> np.ndarray:
    """Total time (cost-model.md §7): overlap ``none`` adds everything; ``batch`` hides the
    gradient all-reduce under the computation, max(compute, batch) + model + domain."""
    if overlap == "batch":
        return np.maximum(compute_s, batch_s) + model_s + domain_s
    return compute_s + model_s + batch_s + domain_s


@dataclass(frozen=True)
class CostTable:
    """The cost of one plan on a set of grids: everything per training iteration, in seconds.

    Arrays of shape (G, L): ``<term>_messages``, ``<term>_words``, ``<term>_s`` for term in
    model, batch, domain, plus the layout and the feasibility code.  Shape (G,): ``compute_s``,
    ``feasible``, ``uneven``.
    """

    network: Network
    machine: Machine
    grids: Grids
    plan: Plan
    overlap: Overlap
    algorithms: Algorithms
    layout: Layout
    volumes: Volumes
    code: np.ndarray
    uneven_layer: np.ndarray
    compute_s: np.ndarray
    compute_model: str
    compute_outside_table: np.ndarray
    _seconds: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def term(self, name: str) -> CollectiveCost:
        """The CollectiveCost of ``name`` in model, batch, domain."""
        return getattr(self.volumes, name)

    def seconds(self, name: str) -> np.ndarray:
        """Seconds of a term per grid × layer, (G, L)."""
        if name not in self._seconds:
            self._seconds[name] = self.term(name).seconds(self.machine.alpha_s,
                                                          self.machine.beta_s_per_word)
        return self._seconds[name]

    @property
    def feasible(self) -> np.ndarray:
        """(G,) True where every layer of the grid is feasible."""
        return np.asarray((self.code == OK).all(axis=1))

    @property
    def uneven(self) -> np.ndarray:
        """(G,) True where some split does not divide evenly (⌈⌉ used, §6)."""
        return np.asarray(self.uneven_layer.any(axis=1))

    def comm_s(self, name: str) -> np.ndarray:
        """Seconds of a term summed over layers, (G,)."""
        return np.asarray(self.seconds(name).sum(axis=1))

    @property
    def total_comm_s(self) -> np.ndarray:
        """All communication per grid, (G,)."""
        return sum((self.comm_s(t) for t in TERMS), np.zeros(len(self.grids)))

    @property
    def total_s(self) -> np.ndarray:
        """Time per iteration per grid (§7), see :func:`combine`."""
        model, batch, domain = (self.comm_s(t) for t in TERMS)
        return combine(self.compute_s, model, batch, domain, self.overlap)

    @property
    def iterations_per_epoch(self) -> np.ndarray:
        """N/B for each grid, (G,)."""
        return self.network.dataset_samples / self.grids.batch.astype(np.float64)


def _check(grids: Grids, overlap: str) -> None:
    if overlap not in ("none", "batch"):
        raise UsageError(f"overlap: expected 'none' or 'batch', got {overlap!r}")
    if (grids.batch < 1).any():
        raise UsageError(f"batch: expected a positive integer, got {int(grids.batch.min())}")


def evaluate(network: Network, machine: Machine, grids: Grids, plan: Plan,
             overlap: Overlap = "none", collectives: str = "paper",
             compute: ComputeModel = "auto") -> CostTable:
    """Cost every grid × layer of ``network`` under ``plan`` (cost-model.md §4–§7)."""
    _check(grids, overlap)
    algo = algorithms(collectives)
    layers = LayerArrays.of(network)
    layout = plan.layout_for(grids, layers.is_conv)
    batch = grids.batch[:, None]
    code, uneven = feasibility(layout, layers, batch)
    compute_s, compute_model, outside = compute_per_iteration_s(network, machine, grids, compute)
    return CostTable(network, machine, grids, plan, overlap, algo, layout,
                     volumes(layout, layers, batch, algo), code, uneven, compute_s, compute_model,
                     outside)


@dataclass(frozen=True)
class GridTotals:
    """Per-grid sums over layers, shape (G,) each, seconds per iteration."""

    compute_s: np.ndarray
    model_s: np.ndarray
    batch_s: np.ndarray
    domain_s: np.ndarray
    total_s: np.ndarray
    feasible: np.ndarray


def evaluate_totals(network: Network, machine: Machine, grids: Grids, plan: Plan,
                    overlap: Overlap = "none", collectives: str = "paper",
                    compute: ComputeModel = "auto") -> GridTotals:
    """The per-grid totals of :func:`evaluate` without the per-layer arrays.

    Costs each distinct layer once and weights it by its multiplicity: the same sums, several
    times faster on networks of repeated blocks.  Used by sweeps.
    """
    _check(grids, overlap)
    algo = algorithms(collectives)
    layers, counts = LayerArrays.unique_of(network)
    layout = plan.layout_for(grids, layers.is_conv)
    batch = grids.batch[:, None]
    code, _ = feasibility(layout, layers, batch)
    vol = volumes(layout, layers, batch, algo)
    alpha, beta = machine.alpha_s, machine.beta_s_per_word
    model_s, batch_s, domain_s = (
        cost.seconds(alpha, beta) @ counts[0] for cost in (vol.model, vol.batch, vol.domain))
    compute_s, _, _ = compute_per_iteration_s(network, machine, grids, compute)
    total = combine(compute_s, model_s, batch_s, domain_s, overlap)
    return GridTotals(compute_s, model_s, batch_s, domain_s, total, (code == OK).all(axis=1))
