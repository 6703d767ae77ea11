"""Search: best grid, baselines, sweeps over P and scaling limits (docs/model.md §6, §8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.engine.buckets import Bucketing
from costmodel.engine.cost import (
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
from costmodel.engine.grids import (
    Grids,
    check_processes,
    divisor_work,
    factorizations,
    sorted_distinct,
    sweep_factorizations,
)
from costmodel.engine.memory import MemoryCheck, memory_reason, memory_table
from costmodel.engine.plans import PLANS, Plan
from costmodel.errors import NoFeasibleGrid, UsageError
from costmodel.inputs.specs import Machine, Network
from costmodel.limits import (
    CELLS_PER_CHUNK,
    GRIDS_PER_BLOCK,
    MAX_DIVISOR_WORK,
    MAX_PROCESSES,
    MAX_SWEEP_VALUES,
)
from costmodel.progress import Progress, report

CHUNK_ELEMENTS = CELLS_PER_CHUNK
"""Grid × layer cells evaluated at once (costmodel.limits.CELLS_PER_CHUNK)."""

MAX_FIT_SEARCH = MAX_SWEEP_VALUES.largest
"""`optimize --memory-check` searches the smallest fitting P among every P up to this (or the
plan's feasibility limit, when smaller); the output says how far it searched."""


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
    # the layout of this one grid: table.layout would lay out every grid (quadratic in reports)
    layout = table.plan.layout(table.grids.take(slice(grid, grid + 1)), table.network)
    pr, pc = int(layout.pr[0, i]), int(layout.pc[0, i])
    batch = int(table.grids.batch[grid])
    code = int(codes[i])
    if code == NO_SAMPLES:
        if pc == int(table.grids.pc[grid]):
            return f"Pc={pc} > B={batch}: a process would hold no samples ({layer.name})"
        # the plan gives this layer a batch group other than the grid's Pc (fc-model's convs)
        return (f"{layer.name} is batch-split over {pc} processes under plan {table.plan.name} "
                f"and {pc} > B={batch}: a process would hold no samples")
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
        return np.asarray(np.isfinite(self.total_s))


def sweep(network: Network, machine: Machine, processes: np.ndarray, batch: np.ndarray,
          plan: Plan, settings: Settings = Settings(),
          progress: Progress | None = None) -> SweepResult:
    """Best grid of ``plan`` for every P in ``processes`` (batch per P: fixed B or b·P).

    The P values are taken in blocks of about GRIDS_PER_BLOCK factorizations, each block's
    grids evaluated in chunks of at most CELLS_PER_CHUNK grid × layer cells, the pure-batch
    reference too; only per-P results are kept, so memory does not grow with the sweep
    (costmodel.limits).  ``progress`` (costmodel.progress) hears the P values done after each
    chunk.
    """
    processes = np.asarray(processes, dtype=np.int64)
    batch = np.broadcast_to(np.asarray(batch, dtype=np.int64), processes.shape)
    if processes.size == 0 or (processes < 1).any():
        raise UsageError("P: expected positive integers")
    check_processes(int(processes.max()))
    n_p = processes.size
    block = max(1, GRIDS_PER_BLOCK // int(np.log(float(processes.max())) + 2))
    starts = range(0, n_p, block)
    work = sum(divisor_work(sorted_distinct(processes[s:s + block])) for s in starts)
    if work > MAX_DIVISOR_WORK:
        raise UsageError(f"P: the {n_p:,} values swept, up to {int(processes.max()):,}, are too "
                         f"many and too scattered to factor: ~{work:.2g} trial divisions, at "
                         f"most {MAX_DIVISOR_WORK:.2g} (seconds of work); sweep a range or "
                         "fewer values")
    names = ("total", "compute", "model", "batch", "domain")
    out = {k: np.full(n_p, np.inf if k == "total" else np.nan) for k in names}
    best_pr = np.zeros(n_p, dtype=np.int64)
    best_pc = np.zeros(n_p, dtype=np.int64)
    best_inside = np.ones(n_p, dtype=bool)
    n_grids = np.zeros(n_p, dtype=np.int64)
    pure_total = np.empty(n_p)
    step = max(1, CELLS_PER_CHUNK // len(network.layers))
    for first_p in starts:
        here = slice(first_p, min(n_p, first_p + block))
        grids, owner = sweep_factorizations(processes[here], batch[here])
        n = len(grids)
        columns = {k: np.empty(n) for k in names}
        feasible = np.empty(n, dtype=bool)
        pr_inside = np.ones(n, dtype=bool)
        for start in range(0, n, step):
            part = slice(start, min(n, start + step))
            totals = evaluate_totals(network, machine, grids.take(part), plan,
                                     settings.overlap, settings.collectives, settings.compute,
                                     settings.memory, settings.mapping, settings.bucket)
            columns["total"][part] = totals.total_s
            columns["compute"][part] = totals.compute_s
            columns["model"][part] = totals.model_s
            columns["batch"][part] = totals.batch_s
            columns["domain"][part] = totals.domain_s
            feasible[part] = totals.feasible
            if totals.pr_inside is not None:
                pr_inside[part] = totals.pr_inside
            report(progress, here.start + int(owner[part.stop - 1]) + 1, n_p,
                   f"sweep {plan.name}: P values")
        total = np.where(feasible, columns["total"], np.inf)
        # best grid per P: sort by (owner, total) and take each owner's first row
        order = np.lexsort((grids.pr, total, owner))
        first = order[np.r_[0, np.flatnonzero(np.diff(owner[order])) + 1]]
        out["total"][here] = total[first]
        for k in names[1:]:
            out[k][here] = columns[k][first]
        best_pr[here], best_pc[here] = grids.pr[first], grids.pc[first]
        best_inside[here] = pr_inside[first]
        n_grids[here] = np.bincount(owner, minlength=here.stop - here.start)
        pure_total[here] = _pure_batch_totals(network, machine, processes[here], batch[here],
                                              settings)
    return SweepResult(
        plan=plan.name, processes=processes, batch=batch.copy(),
        best_pr=best_pr, best_pc=best_pc, total_s=out["total"],
        compute_s=out["compute"], model_comm_s=out["model"],
        batch_comm_s=out["batch"], domain_comm_s=out["domain"],
        pure_batch_total_s=pure_total, n_grids=n_grids,
        iterations_per_epoch=network.dataset_samples / batch.astype(np.float64),
        best_pr_inside=best_inside if machine.hierarchical else None,
    )


def _pure_batch_totals(network: Network, machine: Machine, processes: np.ndarray,
                       batch: np.ndarray, settings: Settings) -> np.ndarray:
    """Time per iteration of pure data parallelism (1×P, every layer batch-split), (n_P,),
    evaluated in chunks of at most CELLS_PER_CHUNK grid × layer cells."""
    out = np.empty(processes.size)
    step = max(1, CELLS_PER_CHUNK // len(network.layers))
    for start in range(0, processes.size, step):
        part = slice(start, min(processes.size, start + step))
        grids = Grids(np.ones_like(processes[part]), processes[part].copy(),
                      batch[part].copy())
        if settings.overlap == "backward":  # the schedule needs no per-term arrays here
            totals = evaluate_totals(network, machine, grids, PLANS["model-batch"],
                                     settings.overlap, settings.collectives, settings.compute,
                                     settings.memory, settings.mapping, settings.bucket)
            out[part] = np.where(totals.feasible, totals.total_s, np.inf)
            continue
        table = evaluate(network, machine, grids, PLANS["model-batch"], settings.overlap,
                         settings.collectives, settings.compute, settings.memory,
                         settings.mapping, settings.bucket)
        out[part] = np.where(table.feasible, table.total_s, np.inf)
    return out


def stops_improving(time: np.ndarray) -> np.ndarray:
    """Indices i of finite times whose successor is no faster (inf = infeasible), (n,) → (k,).

    The first is the strong-scaling limit; none when the time improves to the end of the sweep.
    """
    time = np.asarray(time, dtype=np.float64)
    return np.flatnonzero(np.isfinite(time[:-1]) & ~(time[1:] < time[:-1]))


@dataclass(frozen=True)
class Efficiency:
    """Parallel efficiency over the P of a sweep (docs/model.md §8), the one rule of `optimize`
    and `sweep`: T(P₀)·P₀/(P·T(P)) at fixed B, T(P₀)/T(P) when B grows with P (weak scaling),
    with T the best time per iteration and P₀ the smallest P swept that has a feasible grid
    (P₀ = 1 whenever P = 1 is swept and feasible: T(1)/(P·T(P)))."""

    reference_processes: int | None
    """P₀; None when no P swept is feasible or T(P₀) is not positive (efficiency undefined)."""
    weak: bool
    values: np.ndarray
    """Efficiency per P swept, (n,); NaN where the P is infeasible or undefined."""

    def first_below(self, processes: np.ndarray, threshold: float) -> int | None:
        """The first P swept whose efficiency is below ``threshold``; None if none is."""
        low = np.flatnonzero(np.isfinite(self.values) & (self.values < threshold))
        return int(np.asarray(processes)[low[0]]) if low.size else None

    @property
    def formula(self) -> str:
        """The rule with its reference written out, e.g. "T(1)/(P·T(P))" or "T(8)·8/(P·T(P))"."""
        p0 = self.reference_processes
        if p0 is None:
            return "T(P₀)/T(P)" if self.weak else "T(P₀)·P₀/(P·T(P))"
        if self.weak:
            return f"T({p0})/T(P)"
        return "T(1)/(P·T(P))" if p0 == 1 else f"T({p0})·{p0}/(P·T(P))"


def efficiency(processes: np.ndarray, time: np.ndarray, weak: bool = False) -> Efficiency:
    """Efficiency of the best times ``time`` (per iteration, inf = infeasible) at ``processes``
    (ascending), relative to the smallest feasible P swept (docs/model.md §8)."""
    processes = np.asarray(processes, dtype=np.int64)
    time = np.asarray(time, dtype=np.float64)
    usable = np.isfinite(time) & (time > 0)
    values = np.full(time.shape, np.nan)
    feasible = np.flatnonzero(np.isfinite(time))
    if feasible.size == 0 or not time[feasible[0]] > 0:
        return Efficiency(None, weak, values)
    base = int(feasible[0])
    ratio = time[base] / np.where(usable, time, np.nan)
    values = ratio if weak else ratio * processes[base] / processes
    return Efficiency(int(processes[base]), weak, np.where(usable, values, np.nan))


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
    efficiency_reference_processes: int | None = None
    """P₀ of the efficiency T(P₀)·P₀/(P·T(P)): 1 unless a memory check rules P = 1 out."""


def scaling_limits(network: Network, machine: Machine, batch: int, plan: Plan,
                   settings: Settings = Settings(), threshold: float = 0.5,
                   largest: int | None = None) -> ScalingLimits:
    """Feasibility and strong-scaling limits of ``plan`` at fixed global batch ``batch``.

    The sweep covers P = 1, 2, 4, … up to the feasibility limit (or ``largest``, and at most
    MAX_PROCESSES), plus that limit.
    Strong-scaling limit: the first P after which the best time no longer improves; efficiency
    limit: the first P with T(1)/(P·T(P)) below ``threshold`` — T(P₀)·P₀/(P·T(P)) from the first
    feasible P₀ when a memory check rules out P = 1 (:func:`efficiency`).
    """
    limit = feasibility_limit(network, plan, batch)
    top = min(limit.processes, largest or limit.processes, MAX_PROCESSES.largest)
    powers = 2 ** np.arange(int(np.log2(max(top, 1))) + 1, dtype=np.int64)
    swept = sorted_distinct(np.concatenate([powers, [top]]))
    result = sweep(network, machine, swept, np.full(swept.shape, batch), plan, settings)
    time = result.total_s
    finite = np.isfinite(time)
    eff = efficiency(swept, time)
    best_at = None
    if finite.any():
        stops = stops_improving(np.where(finite, time, np.inf))
        best_at = int(swept[stops[0]]) if stops.size else None
    return ScalingLimits(limit, swept, best_at, threshold, eff.first_below(swept, threshold),
                         eff.values, result, eff.reference_processes)


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

    The baselines are the plan's own edge grids, costed with the same plan and settings as the
    table's rows: pure batch 1×P (every layer batch-split, in every plan, while P ≤ B) and pure
    model P×1 (every layer on the Pr axis, split the way the plan splits it: model-split in
    model-batch; convs domain-split in domain-batch; convs batch-split in fc-model; convs
    beyond-batch in beyond-batch) — docs/cli.md, "Baselines".  When no grid is feasible, raises
    NoFeasibleGrid saying why and what would work — or, with ``allow_infeasible``, returns an
    Optimum whose ``best`` is None.
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
    # the baselines are the plan's own 1×P and P×1 rows, costed exactly as in ``table``
    pure = evaluate(network, machine, edges.take(slice(0, 1)), plan, settings.overlap,
                    settings.collectives, settings.compute, settings.memory, settings.mapping,
                    settings.bucket)
    pure_model = evaluate(network, machine, edges.take(slice(1, 2)), plan, settings.overlap,
                          settings.collectives, settings.compute, settings.memory,
                          settings.mapping, settings.bucket)
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
    """Smallest P ≤ ``upto`` (default: the plan's feasibility limit at B = ``batch``, at most
    MAX_FIT_SEARCH) for which some Pr×Pc grid of ``plan`` is feasible and fits in ``memory``
    (docs/memory.md).

    Every P is tried, in blocks [2^k, 2^(k+1)) of increasing P (all factorizations of a block at
    once, vectorized), stopping at the first block with a fitting grid; the grid reported is the
    one with the least Pr among the fitting grids of that P.
    """
    batch = check_batch(batch)
    top = min(feasibility_limit(network, plan, batch).processes, MAX_FIT_SEARCH) \
        if upto is None else int(upto)
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
