"""Search: best grid, baselines, sweeps over P and scaling limits (docs/model.md §6, §8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.buckets import Bucketing
from costmodel.cost import (
    MODEL_TOO_WIDE,
    NO_SAMPLES,
    OUT_OF_MEMORY,
    STRIP_TOO_THIN,
    ComputeModel,
    CostTable,
    Overlap,
    evaluate,
    evaluate_totals,
    structurally_feasible,
)
from costmodel.errors import NoFeasibleGrid, UsageError
from costmodel.grids import (
    Grids,
    check_processes,
    factorizations,
    sorted_distinct,
    sweep_factorizations,
)
from costmodel.memory import MemoryCheck, memory_reason, memory_table
from costmodel.plans import PLANS, Plan
from costmodel.specs import Machine, Network

CHUNK_ELEMENTS = 1 << 21
"""Grid × layer elements evaluated at once in a sweep (bounds memory at ~0.5 GB)."""


@dataclass(frozen=True)
class Settings:
    """Everything besides network, machine and P that a cost depends on."""

    overlap: Overlap = "none"
    collectives: str | None = None
    """A collective selection (docs/collectives.md); None takes the machine profile's."""
    compute: ComputeModel = "auto"
    memory: MemoryCheck | None = None
    """With a check, grids that do not fit in memory are infeasible (docs/memory.md); None (the
    default, the paper's setting) checks nothing."""
    mapping: str = "best"
    """Hierarchical machines (docs/hierarchy.md): 'best' (each grid's cheaper mapping),
    'pr-inside' or 'pc-inside'."""
    bucket: Bucketing | str | None = None
    """Overlap 'backward' (docs/schedule.md): the gradient bucketing — a Bucketing, a preset
    name (ddp, horovod, layer) or None for the machine profile's default, else ddp.  Ignored
    by 'none' and 'batch'."""


def check_batch(batch: object) -> int:
    """The global batch as an int, or UsageError."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise UsageError(f"batch: expected a positive integer, got {batch!r}")
    return int(batch)


def no_feasible_grid_message(table: CostTable) -> str:
    """Why no grid of ``table`` (all factorizations of one P) is feasible, and what would work."""
    network, plan = table.network, table.plan
    P, batch = int(table.grids.p[0]), int(table.grids.batch[0])
    last = len(table.grids) - 1
    limit = feasibility_limit(network, plan, batch)
    return (f"plan {plan.name}: no feasible grid for P={P}, B={batch} "
            f"(e.g. {table.grids.pr[last]}×{table.grids.pc[last]}: {reason(table, last)}; "
            f"1×{P}: {reason(table, 0)}); this plan reaches at most P={limit.processes} at "
            f"B={batch}: {limit.because}" + _other_plans(network, P, batch, plan))


def grid_code(table: CostTable, grid: int) -> int:
    """Feasibility code of one grid: the first failing layer's code, else OUT_OF_MEMORY when a
    memory check fails, else OK."""
    failing = np.flatnonzero(table.code[grid])
    if failing.size:
        return int(table.code[grid][failing[0]])
    return OUT_OF_MEMORY if not table.memory_fits[grid] else 0


def reason(table: CostTable, grid: int) -> str:
    """Why grid ``grid`` of ``table`` is infeasible: the first failing layer (docs/model.md §6),
    else the memory it needs (docs/memory.md)."""
    codes = table.code[grid]
    failing = np.flatnonzero(codes)
    if failing.size == 0:
        if table.memory_check is not None and not table.memory_fits[grid]:
            return memory_reason(float(table.memory.total[grid]),
                                 table.memory_check.capacity_bytes)
        return ""
    i = int(failing[0])
    layer = table.network.layers[i]
    pr, pc = int(table.layout.pr[grid, i]), int(table.layout.pc[grid, i])
    batch = int(table.grids.batch[grid])
    code = int(codes[i])
    if code == NO_SAMPLES:
        return f"Pc={pc} > B={batch}: a process would hold no samples ({layer.name})"
    if code == MODEL_TOO_WIDE:
        what = "filters" if layer.kind == "conv" else "units"
        return f"Pr={pr} > {layer.split_size} {what} of {layer.name}"
    assert code == STRIP_TOO_THIN
    rows = layer.in_shape[0] / pr
    return (f"{layer.name}: {layer.in_shape[0]}/{pr} = {rows:.3g} rows per strip, "
            f"thinner than its halo of {max(1, layer.halo_rows[0])}")


@dataclass(frozen=True)
class FeasibilityLimit:
    """The largest P with any feasible grid (docs/model.md §8) and what sets it."""

    processes: int
    because: str


def feasibility_limit(network: Network, plan: Plan, batch: int) -> FeasibilityLimit:
    """Largest P for which ``plan`` has a feasible grid at global batch ``batch``.

    Every plan needs Pc ≤ B; each split caps Pr: a model split by the narrowest layer it splits, a
    domain split by the thinnest strip max(1, ⌊k_h/2⌋) rows; `fc-model` keeps convs pure batch
    (P ≤ B).  The limit is B × the tightest cap.
    """
    caps: list[tuple[int, str]] = []
    for layer in network.layers:
        rule = plan.conv if layer.kind == "conv" else plan.fc
        if rule == "grid-model":
            what = "filters" if layer.kind == "conv" else "units"
            caps.append((layer.split_size, f"{layer.split_size} {what} of {layer.name}"))
        elif rule == "pure-batch":
            caps.append((1, f"{layer.name} is pure batch"))
        else:
            strip = max(1, layer.halo_rows[0])
            cap = max(1, layer.in_shape[0] // strip)
            caps.append((cap, f"{layer.in_shape[0]} rows of {layer.name} in strips of ≥ {strip}"))
    cap, because = min(caps, key=lambda c: c[0])
    return FeasibilityLimit(batch * cap, f"B={batch} × {cap} ({because})")


@dataclass(frozen=True)
class SweepResult:
    """Best grid of a plan for each P of a sweep; arrays of shape (n_P,), per iteration."""

    plan: str
    processes: np.ndarray
    batch: np.ndarray
    best_pr: np.ndarray
    best_pc: np.ndarray
    total_s: np.ndarray
    compute_s: np.ndarray
    model_comm_s: np.ndarray
    batch_comm_s: np.ndarray
    domain_comm_s: np.ndarray
    pure_batch_total_s: np.ndarray
    n_grids: np.ndarray
    iterations_per_epoch: np.ndarray
    best_pr_inside: np.ndarray | None = None
    """Machines with levels: the mapping of each best grid (True: Pr inside); None when flat."""

    @property
    def feasible(self) -> np.ndarray:
        return np.isfinite(self.total_s)


def sweep(network: Network, machine: Machine, processes: np.ndarray, batch: np.ndarray,
          plan: Plan, settings: Settings = Settings()) -> SweepResult:
    """Best grid of ``plan`` for every P in ``processes`` (batch per P: fixed B or b·P).

    All factorizations of all P are evaluated in chunks of at most CHUNK_ELEMENTS grid × layer
    elements; only per-grid totals are kept.
    """
    processes = np.asarray(processes, dtype=np.int64)
    batch = np.broadcast_to(np.asarray(batch, dtype=np.int64), processes.shape)
    if processes.size == 0 or (processes < 1).any():
        raise UsageError("P: expected positive integers")
    grids, owner = sweep_factorizations(processes, batch)
    n = len(grids)
    columns = {k: np.empty(n) for k in ("total", "compute", "model", "batch", "domain")}
    feasible = np.empty(n, dtype=bool)
    pr_inside = np.ones(n, dtype=bool)
    step = max(1, CHUNK_ELEMENTS // len(network.layers))
    for start in range(0, n, step):
        part = slice(start, min(n, start + step))
        totals = evaluate_totals(network, machine, grids.take(part), plan, settings.overlap,
                                 settings.collectives, settings.compute, settings.memory,
                                 settings.mapping, settings.bucket)
        columns["total"][part] = totals.total_s
        columns["compute"][part] = totals.compute_s
        columns["model"][part] = totals.model_s
        columns["batch"][part] = totals.batch_s
        columns["domain"][part] = totals.domain_s
        feasible[part] = totals.feasible
        if totals.pr_inside is not None:
            pr_inside[part] = totals.pr_inside
    total = np.where(feasible, columns["total"], np.inf)
    # best grid per P: sort by (owner, total) and take each owner's first row
    order = np.lexsort((grids.pr, total, owner))
    first = order[np.r_[0, np.flatnonzero(np.diff(owner[order])) + 1]]
    pure_total = _pure_batch_totals(network, machine, processes, batch, settings)
    return SweepResult(
        plan=plan.name, processes=processes, batch=batch.copy(),
        best_pr=grids.pr[first], best_pc=grids.pc[first], total_s=total[first],
        compute_s=columns["compute"][first], model_comm_s=columns["model"][first],
        batch_comm_s=columns["batch"][first], domain_comm_s=columns["domain"][first],
        pure_batch_total_s=pure_total, n_grids=np.bincount(owner, minlength=processes.size),
        iterations_per_epoch=network.dataset_samples / batch.astype(np.float64),
        best_pr_inside=pr_inside[first] if machine.hierarchical else None,
    )


def _pure_batch_totals(network: Network, machine: Machine, processes: np.ndarray,
                       batch: np.ndarray, settings: Settings) -> np.ndarray:
    """Time per iteration of pure data parallelism (1×P, every layer batch-split), (n_P,)."""
    grids = Grids(np.ones_like(processes), processes.copy(), batch.copy())
    table = evaluate(network, machine, grids, PLANS["model-batch"], settings.overlap,
                     settings.collectives, settings.compute, settings.memory, settings.mapping,
                     settings.bucket)
    return np.where(table.feasible, table.total_s, np.inf)


def stops_improving(time: np.ndarray) -> np.ndarray:
    """Indices i of finite times whose successor is no faster (inf = infeasible), (n,) → (k,).

    The first is the strong-scaling limit; none when the time improves to the end of the sweep.
    """
    time = np.asarray(time, dtype=np.float64)
    return np.flatnonzero(np.isfinite(time[:-1]) & ~(time[1:] < time[:-1]))


@dataclass(frozen=True)
class ScalingLimits:
    """Both scaling limits of one plan (docs/model.md §8)."""

    feasibility: FeasibilityLimit
    swept: np.ndarray
    best_time_processes: int | None
    efficiency_threshold: float
    efficiency_processes: int | None
    efficiency: np.ndarray
    sweep: SweepResult


def scaling_limits(network: Network, machine: Machine, batch: int, plan: Plan,
                   settings: Settings = Settings(), threshold: float = 0.5,
                   largest: int | None = None) -> ScalingLimits:
    """Feasibility and strong-scaling limits of ``plan`` at fixed global batch ``batch``.

    The sweep covers P = 1, 2, 4, … up to the feasibility limit (or ``largest``), plus that limit.
    Strong-scaling limit: the first P after which the best time no longer improves; efficiency
    limit: the first P with T(1)/(P·T(P)) below ``threshold`` — T(P0)·P0/(P·T(P)) from the first
    feasible P0 when a memory check rules out P = 1.
    """
    limit = feasibility_limit(network, plan, batch)
    top = min(limit.processes, largest) if largest else limit.processes
    powers = 2 ** np.arange(int(np.log2(max(top, 1))) + 1, dtype=np.int64)
    swept = sorted_distinct(np.concatenate([powers, [top]]))
    result = sweep(network, machine, swept, np.full(swept.shape, batch), plan, settings)
    time = result.total_s
    finite = np.isfinite(time)
    # relative to the first feasible P: P = 1 unless a memory check rules it out
    base = int(np.flatnonzero(finite)[0]) if finite.any() else 0
    with np.errstate(invalid="ignore", divide="ignore"):
        efficiency = time[base] * swept[base] / (swept * time)
    if not time[base] > 0:  # no compute and no communication at the base P: undefined
        efficiency = np.full(swept.shape, np.nan)
    best_at = None
    if finite.any():
        stops = stops_improving(np.where(finite, time, np.inf))
        best_at = int(swept[stops[0]]) if stops.size else None
    low = np.flatnonzero(finite & (efficiency < threshold))
    eff_at = int(swept[low[0]]) if low.size else None
    return ScalingLimits(limit, swept, best_at, threshold, eff_at, efficiency, result)


@dataclass(frozen=True)
class Optimum:
    """The result of optimizing one plan at one P: every grid's cost and the best one."""

    table: CostTable
    best: int | None
    pure_batch: CostTable
    pure_model: CostTable
    limits: ScalingLimits | None
    fitting: FittingProcesses | None = None
    """Under a memory check: the smallest P whose grids fit (docs/memory.md)."""

    @property
    def P(self) -> int:
        return int(self.table.grids.p[0])

    @property
    def batch(self) -> int:
        return int(self.table.grids.batch[0])


def optimize(network: Network, machine: Machine, P: int, batch: int, plan: Plan,
             settings: Settings = Settings(), with_limits: bool = True,
             threshold: float = 0.5, allow_infeasible: bool = False) -> Optimum:
    """Cost every Pr×Pc factorization of P under ``plan`` and pick the fastest feasible grid.

    Pure batch (1×P) and pure model (P×1), both with every layer split the same way, are costed
    alongside for comparison.  When no grid is feasible, raises NoFeasibleGrid saying why and
    what would work — or, with ``allow_infeasible``, returns an Optimum whose ``best`` is None.
    """
    P = check_processes(P)
    batch = check_batch(batch)
    grids = factorizations(P, batch)
    table = evaluate(network, machine, grids, plan, settings.overlap, settings.collectives,
                     settings.compute, settings.memory, settings.mapping, settings.bucket)
    feasible = table.feasible
    if not feasible.any() and not allow_infeasible:
        raise NoFeasibleGrid(no_feasible_grid_message(table))
    best = int(np.argmin(np.where(feasible, table.total_s, np.inf))) if feasible.any() else None
    edges = Grids(np.array([1, P]), np.array([P, 1]), np.array([batch, batch]))
    model_batch = PLANS["model-batch"]
    pure = evaluate(network, machine, edges.take(slice(0, 1)), model_batch, settings.overlap,
                    settings.collectives, settings.compute, settings.memory, settings.mapping,
                    settings.bucket)
    pure_model = evaluate(network, machine, edges.take(slice(1, 2)), model_batch,
                          settings.overlap, settings.collectives, settings.compute,
                          settings.memory, settings.mapping, settings.bucket)
    limits = (scaling_limits(network, machine, batch, plan, settings, threshold)
              if with_limits else None)
    fitting = (smallest_fitting_processes(network, machine, batch, plan, settings.memory)
               if with_limits and settings.memory is not None else None)
    return Optimum(table, best, pure, pure_model, limits, fitting)


@dataclass(frozen=True)
class FittingProcesses:
    """The smallest P (fixed B) with a grid that is feasible and fits in memory, searched over
    every P = 1 … ``searched_up_to`` (the plan's feasibility limit); None when none fits."""

    processes: int | None
    pr: int | None
    pc: int | None
    searched_up_to: int


def smallest_fitting_processes(network: Network, machine: Machine, batch: int, plan: Plan,
                               memory: MemoryCheck, upto: int | None = None) -> FittingProcesses:
    """Smallest P ≤ ``upto`` (default: the plan's feasibility limit at B = ``batch``) for which
    some Pr×Pc grid of ``plan`` is feasible and fits in ``memory`` (docs/memory.md).

    Every P is tried, in blocks [2^k, 2^(k+1)) of increasing P (all factorizations of a block at
    once, vectorized), stopping at the first block with a fitting grid; the grid reported is the
    one with the least Pr among the fitting grids of that P.
    """
    batch = check_batch(batch)
    top = feasibility_limit(network, plan, batch).processes if upto is None else int(upto)
    low = 1
    while low <= top:
        high = min(top, 2 * low - 1)
        processes = np.arange(low, high + 1, dtype=np.int64)
        grids, owner = sweep_factorizations(processes, np.full(processes.shape, batch))
        step = max(1, CHUNK_ELEMENTS // len(network.layers))
        fits = np.empty(len(grids), dtype=bool)
        for start in range(0, len(grids), step):
            part = slice(start, min(len(grids), start + step))
            chunk = grids.take(part)
            ok = structurally_feasible(network, chunk, plan)
            ok[ok] = memory_table(network, chunk.take(ok), plan, machine.word_bytes,
                                  memory.optimizer_bytes_per_param,
                                  unique=True).fits(memory.capacity_bytes)
            fits[part] = ok
        if fits.any():
            first = int(np.flatnonzero(fits)[0])  # grids are ordered by (P, Pr)
            return FittingProcesses(int(processes[owner[first]]), int(grids.pr[first]),
                                    int(grids.pc[first]), top)
        low = high + 1
    return FittingProcesses(None, None, None, top)


def _other_plans(network: Network, P: int, batch: int, plan: Plan) -> str:
    working = [name for name, other in PLANS.items()
               if other is not plan and feasibility_limit(network, other, batch).processes >= P]
    return f"; plans that reach P={P}: {', '.join(working)}" if working else ""
