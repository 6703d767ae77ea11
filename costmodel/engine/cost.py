"""Per grid × layer communication (docs/model.md §4), feasibility (§6) and compute (§7).

:func:`evaluate` turns a network, a machine, a set of grids and a plan into a
:class:`CostTable` of arrays of shape (G, L): for each term — model, batch (weight-gradient
all-reduce) and domain (halo) — its latency count, its words and its seconds.  Everything is per
training iteration; multiply by ``iterations_per_epoch`` for epochs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from costmodel.engine.buckets import Bucketing, bucketing
from costmodel.engine.collectives import (
    ALLGATHER,
    ALLREDUCE,
    Algorithms,
    CollectiveCost,
    algorithms,
    halo_exchange,
)
from costmodel.engine.grids import Grids
from costmodel.engine.hierarchy import (
    BEST,
    MAPPINGS,
    PR_INSIDE,
    MappingComparison,
    check_algorithms,
    check_mapping,
    halo_level,
    level_chosen,
    level_costs,
    level_rates,
    strides,
)
from costmodel.engine.layerarrays import LayerArrays as LayerArrays
from costmodel.engine.layerarrays import local_batch as local_batch
from costmodel.engine.memory import MemoryCheck, MemoryTable, memory_table
from costmodel.engine.plans import DOMAIN, MODEL, LayerGroup, Layout, Plan
from costmodel.engine.schedule import ScheduleTotals, schedule_totals
from costmodel.errors import UsageError
from costmodel.inputs.specs import Machine, Network
from costmodel.units import format_rate

Overlap = Literal["none", "batch", "backward"]
OVERLAPS = ("none", "batch", "backward")
ComputeModel = Literal["auto", "table", "flops", "none"]
TERMS = ("model", "batch", "domain")

# Feasibility codes per grid × layer, in the order a reason is reported (docs/model.md §6).
OK, NO_SAMPLES, MODEL_TOO_WIDE, STRIP_TOO_THIN = 0, 1, 2, 3
# Per grid (not per layer), only under a memory check (docs/memory.md): the grid's bytes per
# process exceed the machine's memory.  Reported after every per-layer code.
OUT_OF_MEMORY = 4


@dataclass(frozen=True)
class Volumes:
    """Latency counts and words of each term, arrays of shape (G, L)."""

    model: CollectiveCost
    batch: CollectiveCost
    domain: CollectiveCost


def model_batch_volumes(pr: np.ndarray, pc: np.ndarray, layers: LayerArrays,
                        batch: np.ndarray, algo: Algorithms) -> tuple[CollectiveCost,
                                                                      CollectiveCost]:
    """Model and batch terms of the integrated model × batch split (Eq. 8; Eqs. 3, 4 at edges).

    model: 3·(α·lg Pr + β·⌈B/Pc⌉·(Pr−1)/Pr·d_i) — forward all-gather plus the backward ΔX
    all-reduce, which the paper charges with d_i.  batch: 2·(α·lg Pc + β·(Pc−1)/Pc·|W_i|/Pr),
    with |W_i|/Pr the largest shard ⌈split/Pr⌉/split·|W_i| when Pr does not divide the split.
    ``pr``, ``pc``, ``batch`` have shape (G, 1), the layers (1, L); results (G, L).
    """
    if algo.linear:
        # every term is (per-grid factor, shape (G, 1)) × (per-layer size, shape (1, L))
        model_rate = algo.allgather_rate(pr) + algo.allreduce_rate(pr)
        model = model_rate.of_product(local_batch(batch, pc), layers.activations)
    else:
        # 'auto': the cheapest algorithm depends on the size, so each collective is chosen
        # per grid × layer (docs/collectives.md)
        words = local_batch(batch, pc) * layers.activations
        model = algo.allgather(pr, words) + algo.allreduce(pr, words)
    return model, algo.allreduce(pc, shard_words(pr, layers))


def shard_words(pr: np.ndarray, layers: LayerArrays) -> np.ndarray:
    """|W_i|/Pr on the slowest process: ⌈split/Pr⌉/split·|W_i| (§6), (G, L)."""
    return np.asarray(np.ceil(layers.split_size / pr) * (layers.params / layers.split_size))


def domain_volumes(pr: np.ndarray, pc: np.ndarray, layers: LayerArrays, batch: np.ndarray,
                   algo: Algorithms) -> tuple[CollectiveCost, CollectiveCost]:
    """Halo and weight terms of the domain × batch split of conv layers (Eqs. 7, 9).

    halo: forward α + β·⌈B/Pc⌉·X_W·X_C·⌊k_h/2⌋, backward α + β·⌈B/Pc⌉·Y_W·Y_C·⌊k_w/2⌋, each only
    when Pr > 1 and its ⌊k/2⌋ > 0.  weights: 2·(α·lg P + β·(P−1)/P·|W_i|) over all P processes.
    ``pr``, ``pc``, ``batch`` have shape (G, 1), the layers (1, L); results (G, L).
    """
    samples = local_batch(batch, pc)
    split = pr > 1
    forward = halo_exchange(split & (layers.halo_h > 0),
                            samples * layers.in_row_words * layers.halo_h)
    backward = halo_exchange(split & (layers.halo_w > 0),
                             samples * layers.out_row_words * layers.halo_w)
    weights = algo.allreduce(pr * pc, np.broadcast_to(layers.params, forward.words.shape))
    return algo.p2p(forward + backward), weights


def group_volumes(group: LayerGroup, layers: LayerArrays, batch: np.ndarray,
                  algo: Algorithms) -> Volumes:
    """The three terms of one layer group (one split on every grid), arrays (G, Lg)."""
    if group.mode == DOMAIN:
        halo, weights = domain_volumes(group.pr, group.pc, layers, batch, algo)
        return Volumes(model=_zero(halo.words.shape), batch=weights, domain=halo)
    model, weights = model_batch_volumes(group.pr, group.pc, layers, batch, algo)
    return Volumes(model=model, batch=weights, domain=_zero(model.words.shape))


def _zero(shape: tuple[int, ...]) -> CollectiveCost:
    zero = np.broadcast_to(np.float64(0.0), shape)
    return CollectiveCost(zero, zero)


def level_volumes(group: LayerGroup, layers: LayerArrays, batch: np.ndarray, algo: Algorithms,
                  machine: Machine, pr_inside: np.ndarray) -> tuple[Volumes, ...]:
    """The three terms of one layer group at each level of a hierarchical machine, innermost
    first (docs/hierarchy.md): the same collectives as :func:`group_volumes`, each split over
    the levels by :func:`costmodel.engine.hierarchy.level_rates` (or, for 'auto', the cheapest of
    :data:`costmodel.engine.hierarchy.LEVEL_CANDIDATES` per message); halos go on the innermost
    level that holds the whole Pr group.  ``pr_inside`` (G, 1) bool: the mapping of each grid.
    """
    domains, links = machine.domain_sizes, machine.links
    pr, pc = group.pr, group.pc
    stride_r, stride_c = strides(pr, pc, pr_inside)
    total = pr * pc

    def collective(kind: str, p: np.ndarray, stride: np.ndarray,
                   n: np.ndarray) -> tuple[CollectiveCost, ...]:
        return level_costs(kind, p, stride, n, domains, algo, links,
                           machine.gamma_s_per_word, total)

    out = []
    if group.mode == DOMAIN:
        samples = local_batch(batch, pc)
        split = pr > 1
        at = halo_level(pr, stride_r, domains, total)
        shape = np.broadcast_shapes(np.shape(samples), np.shape(layers.in_row_words), np.shape(pr))
        weights = collective(ALLREDUCE, total, np.ones_like(stride_r),
                             np.broadcast_to(layers.params, shape))
        for level, weight_cost in enumerate(weights):
            here = split & (at == level)
            forward = halo_exchange(here & (layers.halo_h > 0),
                                    samples * layers.in_row_words * layers.halo_h)
            backward = halo_exchange(here & (layers.halo_w > 0),
                                     samples * layers.out_row_words * layers.halo_w)
            halo = forward + backward
            out.append(Volumes(model=_zero(halo.words.shape), batch=weight_cost, domain=halo))
        return tuple(out)
    shards = shard_words(pr, layers)
    if algo.linear:
        rows = level_rates(pr, stride_r, domains, algo, total, links)
        cols = level_rates(pc, stride_c, domains, algo, total, links)
        for gather, reduce, over_pc in zip(rows.allgather, rows.allreduce, cols.allreduce):
            model = (gather + reduce).of_product(local_batch(batch, pc), layers.activations)
            out.append(Volumes(model=model, batch=over_pc.of(shards),
                               domain=_zero(model.words.shape)))
        return tuple(out)
    words = local_batch(batch, pc) * layers.activations
    gathers = collective(ALLGATHER, pr, stride_r, words)
    reduces = collective(ALLREDUCE, pr, stride_r, words)
    weights = collective(ALLREDUCE, pc, stride_c, shards)
    for gather_cost, reduce_cost, weight_cost in zip(gathers, reduces, weights):
        out.append(Volumes(model=gather_cost + reduce_cost, batch=weight_cost,
                           domain=_zero(np.shape(words))))
    return tuple(out)


def group_feasibility(group: LayerGroup, layers: LayerArrays,
                      batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feasibility code (OK, NO_SAMPLES, …) and uneven flag of one layer group (§6), (G, Lg)."""
    pr, pc = group.pr, group.pc
    no_samples = pc > batch
    if group.mode == MODEL:
        too_split = pr > layers.split_size
        divided = layers.split_size
    else:
        # an image that is not split (Pr = 1) is never too thin: it exchanges no halo (§4)
        too_split = (pr > 1) & ((layers.in_height / pr) < np.maximum(1.0, layers.halo_h))
        divided = layers.in_height
    failing = STRIP_TOO_THIN if group.mode == DOMAIN else MODEL_TOO_WIDE
    code = np.where(no_samples, np.int8(NO_SAMPLES), too_split.astype(np.int8) * np.int8(failing))
    uneven = (batch % pc != 0) | (divided % pr != 0)
    return code, uneven


def group_feasible(group: LayerGroup, layers: LayerArrays, batch: np.ndarray) -> np.ndarray:
    """(G,) every layer of ``group`` feasible (§6), tested against the narrowest layer; ``batch``
    has shape (G, 1)."""
    pr, pc = group.pr[:, 0], group.pc[:, 0]
    if group.mode == MODEL:
        widest = pr <= layers.split_size.min()
    else:
        strip = np.maximum(1.0, layers.halo_h)
        widest = (pr == 1) | (pr <= np.floor(layers.in_height / strip).min())
    return np.asarray((pc <= batch[:, 0]) & widest)


def structurally_feasible(network: Network, grids: Grids, plan: Plan) -> np.ndarray:
    """(G,) the feasibility of §6 alone (no costs, no memory): Pc ≤ B and every split fits."""
    layers = LayerArrays.of(network)
    ok = np.ones(len(grids), dtype=bool)
    for group in plan.groups(grids, layers.is_conv):
        ok &= group_feasible(group, layers.take(group.index), grids.batch[:, None])
    return ok


def compute_per_iteration_s(network: Network, machine: Machine, grids: Grids,
                            model: ComputeModel = "auto") -> tuple[np.ndarray, str, np.ndarray]:
    """Compute seconds per iteration on each grid (docs/model.md §7), shape (G,).

    table: T(b)/P · B/N with b = max(1, B/P), T interpolated in the machine's measured table and
    N the samples of the measured epochs; flops: B · 3·2·MACs / (P · flop rate); none: 0.
    ``auto`` takes the table when it applies to this network (the same layers by fingerprint,
    docs/formats.md "compute"), the flop rate otherwise, and the model used then says why the
    table did not apply.  Returns (seconds, the model used, mask of grids whose b lies outside
    the table).
    """
    p = grids.p.astype(np.float64)
    batch = grids.batch.astype(np.float64)
    outside = np.zeros(p.shape, dtype=bool)
    table = machine.table()
    mismatch = table.mismatch(network) if table is not None else None
    not_applying = ""
    if table is not None and mismatch is not None:
        not_applying = (f"compute table '{table.name}' of machine '{machine.name}' does not "
                        f"apply to network '{network.name}' ({mismatch})")
    if model == "auto":
        model = "table" if table is not None and mismatch is None else "flops"
    if model == "none":
        return np.zeros(p.shape), "none", outside
    if model == "table":
        if table is None:
            raise UsageError(f"machine {machine.name!r} has no measured compute table; "
                             "use --compute flops")
        if mismatch is not None:
            raise UsageError(f"{not_applying}; use --compute flops")
        epoch_s, outside = table.epoch_time_s(np.maximum(1.0, batch / p))
        used = f"table '{table.name}' ({table.network})"
        samples = table.samples or network.dataset_samples
        return epoch_s / p * batch / samples, used, outside
    flops_per_sample = 3.0 * 2.0 * network.macs
    seconds = batch * flops_per_sample / (p * machine.flop_rate)
    # say so when the table carries this network's name: a changed copy of the measured network
    why = f", as {not_applying}" if not_applying and table and table.network == network.name \
        else ""
    return seconds, f"flops ({format_rate(machine.flop_rate, 'FLOP/s')}){why}", outside


def combine(compute_s: np.ndarray, model_s: np.ndarray, batch_s: np.ndarray,
            domain_s: np.ndarray, overlap: Overlap) -> np.ndarray:
    """Total time (docs/model.md §7): overlap ``none`` adds everything; ``batch`` hides the
    gradient all-reduce under the computation, max(compute, batch) + model + domain.  Overlap
    ``backward`` is a schedule over the layers, not a function of these sums
    (costmodel.engine.schedule); here it raises."""
    if overlap == "backward":
        raise UsageError("overlap 'backward' is a schedule over the layers: use "
                         "cost.evaluate (costmodel.engine.schedule), not the per-grid sums")
    if overlap == "batch":
        return np.asarray(np.maximum(compute_s, batch_s) + model_s + domain_s)
    return np.asarray(compute_s + model_s + batch_s + domain_s)


@dataclass(frozen=True)
class GroupCost:
    """The costs of one layer group: its split (``group``), its layers (1, Lg), the batch (G, 1)
    and its Volumes (arrays broadcastable to (G, Lg); latency counts stay (G, 1)).

    ``feasible`` (G,) is computed per grid from the tightest layer; the per-layer ``code`` and
    ``uneven`` arrays (G, Lg) only when a report asks for them.
    """

    group: LayerGroup
    layers: LayerArrays
    batch: np.ndarray
    volumes: Volumes
    level_volumes: tuple[Volumes, ...] = ()
    """On a hierarchical machine, the Volumes at each level (innermost first); ``volumes`` then
    holds their sums (messages and words over all levels)."""

    @property
    def index(self) -> np.ndarray:
        return self.group.index

    @property
    def shape(self) -> tuple[int, int]:
        return self.group.pr.shape[0], int(self.group.index.size)

    @property
    def feasible(self) -> np.ndarray:
        """(G,) every layer of the group feasible (§6): the same test as :attr:`code`, against
        the narrowest layer — Pr ≤ min split, or Pr·max(1, ⌊k_h/2⌋) ≤ X_H for every layer."""
        return group_feasible(self.group, self.layers, self.batch)

    @functools.cached_property
    def _code_and_uneven(self) -> tuple[np.ndarray, np.ndarray]:
        return group_feasibility(self.group, self.layers, self.batch)

    @property
    def code(self) -> np.ndarray:
        """Feasibility code per grid × layer of the group, (G, Lg)."""
        return self._code_and_uneven[0]

    @property
    def uneven(self) -> np.ndarray:
        """Uneven flag per grid × layer of the group, (G, Lg)."""
        return self._code_and_uneven[1]

    def seconds(self, term: str, alpha_s: float, beta_s_per_word: float,
                gamma_s_per_word: float = 0.0) -> np.ndarray:
        """Seconds of ``term`` per grid × layer of the group, (G, Lg)."""
        cost: CollectiveCost = getattr(self.volumes, term)
        return np.broadcast_to(cost.seconds(alpha_s, beta_s_per_word, gamma_s_per_word),
                               self.shape)

    def summed_seconds(self, term: str, alpha_s: float, beta_s_per_word: float,
                       weight: np.ndarray | None = None,
                       gamma_s_per_word: float = 0.0) -> np.ndarray:
        """Seconds of ``term`` summed over the group's layers (weighted), (G,).

        α·Σ messages + β·Σ words (+ γ·Σ reduced when γ ≠ 0): sums first, so a per-grid latency
        count costs no (G, Lg) work.
        """
        return _summed(getattr(self.volumes, term), self.shape, alpha_s, beta_s_per_word,
                       weight, gamma_s_per_word)

    def level_seconds(self, term: str, links: tuple[tuple[float, float], ...],
                      gamma_s_per_word: float = 0.0) -> list[np.ndarray]:
        """Seconds of ``term`` at each level, (G, Lg) each; ``links`` the (α, β) per level.
        A flat group has one level: its own volumes at links[0]."""
        if not self.level_volumes:
            return [self.seconds(term, *links[0], gamma_s_per_word)]
        return [np.broadcast_to(getattr(v, term).seconds(a, b, gamma_s_per_word), self.shape)
                for v, (a, b) in zip(self.level_volumes, links)]

    def seconds_on(self, term: str, links: tuple[tuple[float, float], ...],
                   gamma_s_per_word: float = 0.0) -> np.ndarray:
        """Seconds of ``term`` over all levels, (G, Lg); exactly :meth:`seconds` when flat."""
        parts = self.level_seconds(term, links, gamma_s_per_word)
        return functools.reduce(np.add, parts[1:], parts[0])

    def level_summed_seconds(self, term: str, links: tuple[tuple[float, float], ...],
                             weight: np.ndarray | None = None,
                             gamma_s_per_word: float = 0.0) -> list[np.ndarray]:
        """Seconds of ``term`` summed over the group's layers at each level, (G,) each."""
        if not self.level_volumes:
            return [self.summed_seconds(term, *links[0], weight, gamma_s_per_word)]
        return [_summed(getattr(v, term), self.shape, a, b, weight, gamma_s_per_word)
                for v, (a, b) in zip(self.level_volumes, links)]

    def summed_seconds_on(self, term: str, links: tuple[tuple[float, float], ...],
                          weight: np.ndarray | None = None,
                          gamma_s_per_word: float = 0.0) -> np.ndarray:
        """Seconds of ``term`` summed over layers and levels, (G,); :meth:`summed_seconds`
        when flat."""
        parts = self.level_summed_seconds(term, links, weight, gamma_s_per_word)
        return functools.reduce(np.add, parts[1:], parts[0])


def _summed(cost: CollectiveCost, shape: tuple[int, int], alpha_s: float,
            beta_s_per_word: float, weight: np.ndarray | None,
            gamma_s_per_word: float) -> np.ndarray:
    """α·Σ messages + β·Σ words (+ γ·Σ reduced) over the layers (weighted), (G,)."""
    w = np.ones(shape[1]) if weight is None else weight
    if cost.messages.shape[-1:] == (1,):
        messages = cost.messages[..., 0] * w.sum()
    else:
        messages = np.broadcast_to(cost.messages, shape) @ w
    words = np.broadcast_to(cost.words, shape) @ w
    total = alpha_s * np.broadcast_to(messages, shape[:1]) + beta_s_per_word * words
    if gamma_s_per_word:
        total = total + gamma_s_per_word * (np.broadcast_to(cost.reduced, shape) @ w)
    return np.asarray(total)


def group_costs(layers: LayerArrays, grids: Grids, plan: Plan,
                algo: Algorithms) -> list[GroupCost]:
    """Volumes and feasibility of each layer group of ``plan`` on ``grids``.

    Each group (conv layers, fc layers) shares one split, so its group sizes have shape (G, 1):
    logarithms and fractions are taken per grid, and only word counts are (G, Lg).
    """
    batch = grids.batch[:, None]
    costs = []
    for group in plan.groups(grids, layers.is_conv):
        sub = layers.take(group.index)
        costs.append(GroupCost(group, sub, batch, group_volumes(group, sub, batch, algo)))
    return costs


def level_group_costs(layers: LayerArrays, grids: Grids, plan: Plan, algo: Algorithms,
                      machine: Machine, pr_inside: np.ndarray) -> list[GroupCost]:
    """:func:`group_costs` on a hierarchical machine: each group's Volumes per level, with the
    grid mapped as ``pr_inside`` (G,) says (docs/hierarchy.md)."""
    batch = grids.batch[:, None]
    inside = np.asarray(pr_inside, dtype=bool).reshape(-1, 1)
    costs = []
    for group in plan.groups(grids, layers.is_conv):
        sub = layers.take(group.index)
        levels = level_volumes(group, sub, batch, algo, machine, inside)
        total = Volumes(*(functools.reduce(lambda a, b: a + b,
                                           [getattr(v, t) for v in levels]) for t in TERMS))
        costs.append(GroupCost(group, sub, batch, total, levels))
    return costs


def compare_mappings(layers: LayerArrays, grids: Grids, plan: Plan, algo: Algorithms,
                     machine: Machine, compute_s: np.ndarray, overlap: Overlap,
                     mapping: str = "best",
                     weight: np.ndarray | None = None) -> tuple[MappingComparison, list[GroupCost]]:
    """Cost both mappings of every grid on a hierarchical machine and pick one per grid: the
    cheaper total (ties keep Pr inside), or ``mapping`` when it is not 'best'.  Returns the
    comparison and the group costs of the last mapping costed (reused when it is the one
    picked for every grid).  ``weight`` (1, L): multiplicity of each layer (unique layers)."""
    check_algorithms(algo)
    links, gamma = machine.links, machine.gamma_s_per_word
    seconds: dict[str, dict[str, np.ndarray]] = {}
    total: dict[str, np.ndarray] = {}
    groups: list[GroupCost] = []
    for name in MAPPINGS:
        groups = level_group_costs(layers, grids, plan, algo, machine,
                                   np.full(len(grids), name == PR_INSIDE))
        per_level = {}
        for term in TERMS:
            parts = [np.stack(g.level_summed_seconds(
                term, links, None if weight is None else weight[0, g.index], gamma), axis=1)
                for g in groups]
            per_level[term] = functools.reduce(np.add, parts[1:], parts[0])
        seconds[name] = per_level
        model, batch, domain = (per_level[t].sum(axis=1) for t in TERMS)
        # overlap 'backward': the caller replaces these totals by the schedule's
        total[name] = combine(compute_s, model, batch, domain,
                              "none" if overlap == "backward" else overlap)
    if mapping == BEST:
        pr_inside = ~(total[MAPPINGS[1]] < total[MAPPINGS[0]])
    else:
        pr_inside = np.full(len(grids), mapping == PR_INSIDE)
    comparison = MappingComparison(tuple(lv.name for lv in machine.levels), seconds, total,
                                   pr_inside, None if mapping == BEST else mapping)
    return comparison, groups


def _flat_mapping(machine: Machine, mapping: str) -> None:
    if check_mapping(mapping) != BEST:
        raise UsageError(f"mapping {mapping!r}: machine {machine.name!r} has no levels (one "
                         "α and β for every message), so the mapping changes nothing; add "
                         "'levels' to its profile (docs/hierarchy.md) or drop --mapping")


@dataclass(frozen=True)
class CostTable:
    """The cost of one plan on a set of grids: everything per training iteration, in seconds.

    Held per layer group; (G, L) arrays in layer order are assembled on request: ``term(t)``
    (latency counts and words), ``seconds(t)`` for t in model, batch, domain, ``code`` and
    ``uneven_layer``.  Shape (G,): ``compute_s``, ``comm_s(t)``, ``total_s``, ``feasible``,
    ``uneven``.
    """

    network: Network
    machine: Machine
    grids: Grids
    plan: Plan
    overlap: Overlap
    algorithms: Algorithms
    groups: tuple[GroupCost, ...]
    compute_s: np.ndarray
    compute_model: str
    compute_outside_table: np.ndarray
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    memory_check: MemoryCheck | None = None
    mappings: MappingComparison | None = None
    """On a hierarchical machine: both mappings of every grid and the one used (docs/
    hierarchy.md); None on a flat machine."""
    schedule: ScheduleTotals | None = None
    """Overlap 'backward': the iteration schedule of every grid; None for 'none' and
    'batch'."""
    bucket: Bucketing | None = None
    """Overlap 'backward': the gradient bucketing used."""

    @property
    def links(self) -> tuple[tuple[float, float], ...]:
        """(α s, β s/word) per level: the machine's levels, or its flat α, β."""
        if self.mappings is None:
            return ((self.machine.alpha_s, self.machine.beta_s_per_word),)
        return self.machine.links

    def level_seconds(self, name: str) -> np.ndarray:
        """Seconds of a term per level × grid × layer, (n_levels, G, L) (n_levels = 1 flat)."""
        gamma = self.machine.gamma_s_per_word
        per_group = [g.level_seconds(name, self.links, gamma) for g in self.groups]
        return np.stack([self._assemble(f"{name}_s_level{i}", [p[i] for p in per_group],
                                        np.float64) for i in range(len(self.links))])

    @property
    def shape(self) -> tuple[int, int]:
        """(G, L): grids × weighted layers."""
        return len(self.grids), len(self.network.layers)

    def _assemble(self, key: str, parts: list[np.ndarray], dtype: type) -> np.ndarray:
        if key not in self._cache:
            out: np.ndarray = np.empty(self.shape, dtype=dtype)
            for group, part in zip(self.groups, parts):
                out[:, group.index] = part
            self._cache[key] = out
        return np.asarray(self._cache[key])

    def term(self, name: str) -> CollectiveCost:
        """Latency counts and words of term ``name`` (model, batch, domain), (G, L) each."""
        costs = [getattr(g.volumes, name) for g in self.groups]
        return CollectiveCost(self._assemble(f"{name}_messages", [c.messages for c in costs],
                                             np.float64),
                              self._assemble(f"{name}_words", [c.words for c in costs],
                                             np.float64),
                              self._assemble(f"{name}_reduced", [c.reduced for c in costs],
                                             np.float64))

    def seconds(self, name: str) -> np.ndarray:
        """Seconds of a term per grid × layer, (G, L)."""
        gamma = self.machine.gamma_s_per_word
        return self._assemble(f"{name}_s", [g.seconds_on(name, self.links, gamma)
                                            for g in self.groups], np.float64)

    @property
    def code(self) -> np.ndarray:
        """Feasibility code per grid × layer (OK, NO_SAMPLES, …), (G, L)."""
        return self._assemble("code", [g.code for g in self.groups], np.int8)

    @property
    def uneven_layer(self) -> np.ndarray:
        """Uneven flag per grid × layer, (G, L)."""
        return self._assemble("uneven", [g.uneven for g in self.groups], bool)

    @property
    def layout(self) -> Layout:
        """Mode, Pr and Pc of every grid × layer, (G, L) each."""
        return self.plan.layout(self.grids, self.network)

    @property
    def feasible(self) -> np.ndarray:
        """(G,) True where every layer of the grid is feasible (and, under a memory check, the
        grid fits in the machine's memory)."""
        ok = np.ones(len(self.grids), dtype=bool)
        for group in self.groups:
            ok &= group.feasible
        if self.memory_check is not None:
            ok &= self.memory_fits
        return ok

    @property
    def memory(self) -> MemoryTable:
        """Bytes per process of every grid × layer (docs/memory.md), with the check's optimizer
        state (none without a check)."""
        if "memory" not in self._cache:
            check = self.memory_check
            self._cache["memory"] = memory_table(
                self.network, self.grids, self.plan, self.machine.word_bytes,
                check.optimizer_bytes_per_param if check is not None else 0.0)
        table: MemoryTable = self._cache["memory"]
        return table

    @property
    def memory_fits(self) -> np.ndarray:
        """(G,) True where the grid fits in the checked memory (always, without a check)."""
        if self.memory_check is None:
            return np.ones(len(self.grids), dtype=bool)
        return self.memory.fits(self.memory_check.capacity_bytes)

    @property
    def uneven(self) -> np.ndarray:
        """(G,) True where some split does not divide evenly (⌈⌉ used, §6)."""
        flag = np.zeros(len(self.grids), dtype=bool)
        for group in self.groups:
            flag |= group.uneven.any(axis=1)
        return flag

    def comm_s(self, name: str) -> np.ndarray:
        """Seconds of a term summed over layers, (G,)."""
        key = f"{name}_sum"
        if key not in self._cache:
            gamma = self.machine.gamma_s_per_word
            self._cache[key] = sum((g.summed_seconds_on(name, self.links, None, gamma)
                                    for g in self.groups), np.zeros(len(self.grids)))
        return np.asarray(self._cache[key])

    @property
    def total_comm_s(self) -> np.ndarray:
        """All communication per grid, (G,)."""
        return sum((self.comm_s(t) for t in TERMS), np.zeros(len(self.grids)))

    @property
    def total_s(self) -> np.ndarray:
        """Time per iteration per grid (§7), see :func:`combine`; under overlap 'backward' the
        schedule's (docs/schedule.md)."""
        if self.schedule is not None:
            total: np.ndarray = self.schedule.total_s
            return total
        model, batch, domain = (self.comm_s(t) for t in TERMS)
        return combine(self.compute_s, model, batch, domain, self.overlap)

    @property
    def iterations_per_epoch(self) -> np.ndarray:
        """N/B for each grid, (G,)."""
        return self.network.dataset_samples / self.grids.batch.astype(np.float64)


def _check(grids: Grids, overlap: str) -> None:
    if overlap not in OVERLAPS:
        raise UsageError(f"overlap: expected 'none', 'batch' or 'backward', got {overlap!r}")
    if (grids.batch < 1).any():
        raise UsageError(f"batch: expected a positive integer, got {int(grids.batch.min())}")


def machine_algorithms(machine: Machine, collectives: str | None = None) -> Algorithms:
    """The collective algorithms selected by ``collectives`` (None: the machine profile's
    ``collectives``, 'paper' unless it says otherwise), with the machine's α, β, γ for 'auto'
    and its per-collective fits, if any — per kind and per group size — as scales
    (Algorithms.with_scales)."""
    algo = algorithms(collectives or machine.collectives,
                      (machine.alpha_s, machine.beta_s_per_word, machine.gamma_s_per_word))
    return algo.with_scales(machine.collective_scales(), machine.collective_process_scales())


def evaluate(network: Network, machine: Machine, grids: Grids, plan: Plan,
             overlap: Overlap = "none", collectives: str | None = None,
             compute: ComputeModel = "auto", memory: MemoryCheck | None = None,
             mapping: str = "best", bucket: Bucketing | str | None = None) -> CostTable:
    """Cost every grid × layer of ``network`` under ``plan`` (docs/model.md §4–§7); with
    ``memory``, grids that do not fit are infeasible (OUT_OF_MEMORY, docs/memory.md).

    Overlap 'backward' runs the iteration schedule of docs/schedule.md on every grid with the
    gradient ``bucket``ing (a costmodel.engine.buckets.Bucketing; None: the machine profile's
    default, else PyTorch DDP's); the per-term arrays stay those of the paper's model.

    ``collectives``: a selection (docs/collectives.md); None takes the machine profile's.
    ``mapping`` (hierarchical machines, docs/hierarchy.md): 'best' costs each grid with the
    cheaper of 'pr-inside' and 'pc-inside'; or one of them for every grid.
    """
    _check(grids, overlap)
    algo = machine_algorithms(machine, collectives)
    layers = LayerArrays.of(network)
    compute_s, compute_model, outside = compute_per_iteration_s(network, machine, grids, compute)
    comparison = None
    schedule = None
    chosen: Bucketing | None = None
    if overlap == "backward":
        chosen = bucket if isinstance(bucket, Bucketing) else bucketing(
            bucket, machine_default=machine.bucket)
    if machine.hierarchical:
        comparison, groups = compare_mappings(layers, grids, plan, algo, machine, compute_s,
                                              overlap, mapping)
        if chosen is not None:
            comparison, schedule = _schedule_mappings(network, machine, grids, plan, algo,
                                                      compute_s, chosen, comparison, mapping)
        if comparison.pr_inside.any():  # the last one costed was Pc inside for every grid
            groups = level_group_costs(layers, grids, plan, algo, machine,
                                       comparison.pr_inside)
    else:
        _flat_mapping(machine, mapping)
        groups = group_costs(layers, grids, plan, algo)
        if chosen is not None:
            schedule = schedule_totals(network, machine, grids, plan, algo, compute_s, chosen)
    return CostTable(network, machine, grids, plan, overlap, algo, tuple(groups), compute_s,
                     compute_model, outside, memory_check=memory, mappings=comparison,
                     schedule=schedule, bucket=chosen)


def _schedule_mappings(network: Network, machine: Machine, grids: Grids, plan: Plan,
                       algo: Algorithms, compute_s: np.ndarray, bucket: Bucketing,
                       comparison: MappingComparison,
                       mapping: str) -> tuple[MappingComparison, ScheduleTotals]:
    """Overlap 'backward' on a machine with levels: the schedule of each grid under both
    mappings; 'best' keeps the shorter (ties: Pr inside).  Returns the comparison with the
    schedules' totals and the chosen schedule of every grid."""
    from dataclasses import replace as _replace

    runs = {name: schedule_totals(network, machine, grids, plan, algo, compute_s, bucket,
                                  np.full(len(grids), name == PR_INSIDE)) for name in MAPPINGS}
    totals = {name: runs[name].total_s for name in MAPPINGS}
    if mapping == BEST:
        pr_inside = ~(totals[MAPPINGS[1]] < totals[MAPPINGS[0]])
    else:
        pr_inside = np.full(len(grids), mapping == PR_INSIDE)
    chosen = runs[PR_INSIDE].where(pr_inside, runs[MAPPINGS[1]])
    return _replace(comparison, total_s=totals, pr_inside=pr_inside), chosen


@dataclass(frozen=True)
class GridTotals:
    """Per-grid sums over layers, shape (G,) each, seconds per iteration."""

    compute_s: np.ndarray
    model_s: np.ndarray
    batch_s: np.ndarray
    domain_s: np.ndarray
    total_s: np.ndarray
    feasible: np.ndarray
    pr_inside: np.ndarray | None = None
    """Hierarchical machines: the mapping of each grid (True: Pr inside); None when flat."""


def evaluate_totals(network: Network, machine: Machine, grids: Grids, plan: Plan,
                    overlap: Overlap = "none", collectives: str | None = None,
                    compute: ComputeModel = "auto",
                    memory: MemoryCheck | None = None, mapping: str = "best",
                    bucket: Bucketing | str | None = None) -> GridTotals:
    """The per-grid totals of :func:`evaluate` without the per-layer arrays.

    Costs each distinct layer once and weights it by its multiplicity: the same sums, several
    times faster on networks of repeated blocks.  Used by sweeps.  Overlap 'backward' needs
    the layers in order (a schedule): it goes through :func:`evaluate`.
    """
    _check(grids, overlap)
    if overlap == "backward":
        return _backward_totals(network, machine, grids, plan, collectives, compute, memory,
                                mapping, bucket)
    layers, counts = LayerArrays.unique_of(network)
    alpha, beta, gamma = machine.alpha_s, machine.beta_s_per_word, machine.gamma_s_per_word
    sums = {term: np.zeros(len(grids)) for term in TERMS}
    feasible = np.ones(len(grids), dtype=bool)
    algo = machine_algorithms(machine, collectives)
    pr_inside = None
    if machine.hierarchical:
        compute_s, _, _ = compute_per_iteration_s(network, machine, grids, compute)
        comparison, groups = compare_mappings(layers, grids, plan, algo, machine, compute_s,
                                              overlap, mapping, counts)
        pr_inside = comparison.pr_inside
        for term in TERMS:
            sums[term] = np.where(comparison.pr_inside,
                                  comparison.seconds[MAPPINGS[0]][term].sum(axis=1),
                                  comparison.seconds[MAPPINGS[1]][term].sum(axis=1))
    else:
        _flat_mapping(machine, mapping)
        groups = group_costs(layers, grids, plan, algo)
        for group in groups:
            weight = counts[0, group.index]
            for term in TERMS:
                sums[term] += group.summed_seconds(term, alpha, beta, weight, gamma)
    for group in groups:
        feasible &= group.feasible
    if memory is not None:
        feasible &= memory_table(network, grids, plan, machine.word_bytes,
                                 memory.optimizer_bytes_per_param,
                                 unique=True).fits(memory.capacity_bytes)
    compute_s, _, _ = compute_per_iteration_s(network, machine, grids, compute)
    total = combine(compute_s, sums["model"], sums["batch"], sums["domain"], overlap)
    return GridTotals(compute_s, sums["model"], sums["batch"], sums["domain"], total, feasible,
                      pr_inside)


SCHEDULE_CHUNK = 1 << 20
"""Grid × layer steps scheduled at once in a sweep (bounds the arrays of the schedule)."""


def _backward_totals(network: Network, machine: Machine, grids: Grids, plan: Plan,
                     collectives: str | None, compute: ComputeModel,
                     memory: MemoryCheck | None, mapping: str,
                     bucket: Bucketing | str | None) -> GridTotals:
    """:func:`evaluate_totals` under overlap 'backward': the sums and feasibility of overlap
    'none' (distinct layers), then the schedule (docs/schedule.md) of the feasible grids only
    — an infeasible grid's total is never used (its total is NaN)."""
    bucket = bucket if isinstance(bucket, Bucketing) else bucketing(
        bucket, machine_default=machine.bucket)
    base = evaluate_totals(network, machine, grids, plan, "none", collectives, compute, memory,
                           mapping)
    keep = np.flatnonzero(base.feasible)
    total = np.full(len(grids), np.nan)
    pr_inside = base.pr_inside
    if keep.size:
        part = grids.take(keep)
        algo = machine_algorithms(machine, collectives)
        compute_s = base.compute_s[keep]
        if machine.hierarchical:
            runs = {name: schedule_totals(network, machine, part, plan, algo, compute_s, bucket,
                                          np.full(keep.size, name == PR_INSIDE))
                    for name in MAPPINGS}
            if mapping == BEST:
                inside = ~(runs[MAPPINGS[1]].total_s < runs[MAPPINGS[0]].total_s)
            else:
                inside = np.full(keep.size, mapping == PR_INSIDE)
            total[keep] = np.where(inside, runs[MAPPINGS[0]].total_s,
                                   runs[MAPPINGS[1]].total_s)
            pr_inside = np.array(base.pr_inside, dtype=bool, copy=True)
            pr_inside[keep] = inside
        else:
            step = max(1, SCHEDULE_CHUNK // len(network.layers))
            for start in range(0, keep.size, step):
                sub = slice(start, start + step)
                total[keep[sub]] = schedule_totals(network, machine, part.take(sub), plan,
                                                   algo, compute_s[sub], bucket).total_s
    return replace(base, total_s=total, pr_inside=pr_inside)


def _level_chosen(machine: Machine, algo: Algorithms, kind: str, p: np.ndarray,
                  stride: np.ndarray, n: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Row 0 of :func:`costmodel.engine.hierarchy.level_chosen` on ``machine``."""
    return np.asarray(level_chosen(kind, p, stride, n, machine.domain_sizes, algo,
                                   machine.links, machine.gamma_s_per_word, total)[0])


def layer_algorithms(table: CostTable, grid: int) -> list[dict[str, str | None]]:
    """Which algorithm each collective of each layer uses on grid ``grid`` (for 'auto': the
    cheapest for that layer's size), in layer order.

    Keys: ``model_allgather`` and ``model_allreduce`` (over Pr, the ⌈B/Pc⌉·d_i activations) and
    ``batch_allreduce`` (the weight gradients: over Pc for a model split, over P for a domain
    split); None where the collective does not run (a group of one process).
    """
    algo = table.algorithms
    out: list[dict[str, str | None]] = [{} for _ in table.network.layers]
    for g in table.groups:
        group = g.group
        pr, pc = group.pr[grid:grid + 1], group.pc[grid:grid + 1]
        layers = g.layers
        activations = local_batch(g.batch[grid:grid + 1], pc) * layers.activations
        if group.mode == DOMAIN:
            p_w, n_w = pr * pc, np.broadcast_to(layers.params, activations.shape)
        else:
            p_w, n_w = pc, shard_words(pr, layers)
        if table.mappings is None:
            gather = algo.chosen(ALLGATHER, pr, activations)[0]
            reduce = algo.chosen(ALLREDUCE, pr, activations)[0]
            weights = algo.chosen(ALLREDUCE, p_w, n_w)[0]
        else:
            inside = np.array([[table.mappings.used(grid) == PR_INSIDE]])
            stride_r, stride_c = strides(pr, pc, inside)
            stride_w = np.ones_like(stride_r) if group.mode == DOMAIN else stride_c
            gather, reduce, weights = (
                _level_chosen(table.machine, algo, kind, p, stride, n, pr * pc)
                for kind, p, stride, n in ((ALLGATHER, pr, stride_r, activations),
                                           (ALLREDUCE, pr, stride_r, activations),
                                           (ALLREDUCE, p_w, stride_w, n_w)))
        model_runs = group.mode == MODEL and int(pr[0, 0]) > 1
        weights_run = int(np.asarray(p_w).ravel()[0]) > 1
        for j, i in enumerate(group.index):
            out[int(i)] = {"model_allgather": str(gather[j]) if model_runs else None,
                           "model_allreduce": str(reduce[j]) if model_runs else None,
                           "batch_allreduce": str(weights[j]) if weights_run else None}
    return out
