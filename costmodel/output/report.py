"""Results as plain records (JSON-ready dicts) and as text, Markdown, CSV and JSON strings.

Nothing here computes a cost or writes a file: records are read off the search results, and the
renderers turn a :class:`Table` (headers with units, rows, notes) into a string.
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from costmodel import __version__
from costmodel.engine.collectives import KIND_NAMES, SELECTABLE
from costmodel.engine.cost import TERMS, CostTable, layer_algorithms
from costmodel.engine.memory import COMPONENTS, GIB, MemoryTable, optimizer_label
from costmodel.engine.plans import MODE_NAMES, describe_grid
from costmodel.engine.schedule import bucket_record, grid_schedule_record
from costmodel.planning.search import (
    Efficiency,
    FeasibilityLimit,
    Optimum,
    ScalingLimits,
    SweepResult,
    no_feasible_grid_message,
    reason,
    stops_improving,
)
from costmodel.planning.search import efficiency as efficiency_of
from costmodel.records import (
    AlgorithmsRecord,
    BaselineRecord,
    BestFixedRecord,
    BestGridRecord,
    FixedPlanRecord,
    GridMemoryRecord,
    GridRecord,
    LayerChoiceRecord,
    LayerRecord,
    LevelRecord,
    LimitsRecord,
    MappingRecord,
    MemoryRecord,
    OptimumRecord,
    PerCollectiveRecord,
    PerLayerBestRecord,
    PerLayerRecord,
    PlanSweepRecord,
    ProvenanceRecord,
    SweepRow,
)
from costmodel.units import format_number, format_seconds

if TYPE_CHECKING:  # the per-layer solver loads only with --plan per-layer
    from costmodel.inputs.specs import Machine
    from costmodel.planning.perlayer import PerLayerResult

Per = Literal["iteration", "epoch"]
Format = Literal["table", "json", "csv", "markdown"]
FORMATS = ("table", "json", "csv", "markdown")


_n = format_number


def _n_or_dash(value: float | None) -> str:
    """:func:`format_number`, or a dash for a missing value."""
    return "—" if value is None else format_number(value)


def _sum_or_none(*values: float | None) -> float | None:
    """The sum of ``values`` (left to right), or None when one is missing."""
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def unit_of(per: Per) -> str:
    """The time unit every figure of a record is in: 's/iteration' or 's/epoch'."""
    return f"s/{per}"


def _scale(table: CostTable, per: Per) -> np.ndarray:
    return table.iterations_per_epoch if per == "epoch" else np.ones(len(table.grids))


def _num(value: float) -> float | None:
    """A float for JSON: None for infinities and NaN."""
    value = float(value)
    return value if math.isfinite(value) else None


def grid_records(table: CostTable, per: Per, baseline_total: float | None) -> list[GridRecord]:
    """One record per grid of ``table``: the JSON contract's grid fields (docs/json.md)."""
    scale = _scale(table, per)
    comm = {t: table.comm_s(t) * scale for t in TERMS}
    total = table.total_s * scale
    compute = table.compute_s * scale
    feasible = table.feasible
    uneven = table.uneven
    records: list[GridRecord] = []
    for g in range(len(table.grids)):
        comm_s = sum(float(comm[t][g]) for t in TERMS)
        record: GridRecord = {
            "pr": int(table.grids.pr[g]),
            "pc": int(table.grids.pc[g]),
            "feasible": bool(feasible[g]),
            "uneven": bool(uneven[g]),
            "compute_s": _num(compute[g]),
            "model_comm_s": _num(comm["model"][g]),
            "batch_comm_s": _num(comm["batch"][g]),
            "domain_comm_s": _num(comm["domain"][g]),
            "comm_s": _num(comm_s),
            "total_s": _num(total[g]),
            "speedup_vs_pure_batch": (_num(baseline_total / total[g])
                                      if baseline_total and feasible[g] else None),
        }
        if table.memory_check is not None:
            record["memory_bytes"] = float(table.memory.total[g])
        if not feasible[g]:
            record["reason"] = reason(table, g)
        if table.mappings is not None:
            mapping = mapping_record(table, g, float(scale[g]), unit_of(per))
            record["mapping"] = mapping["mapping"]
            record["mapping_why"] = mapping["mapping_why"]
            record["mapping_total_s"] = mapping["mapping_total_s"]
            record["comm_s_by_level"] = mapping["comm_s_by_level"]
        if table.schedule is not None:  # overlap 'backward' (docs/schedule.md)
            record["schedule"] = grid_schedule_record(table.schedule, g, float(scale[g]))
        records.append(record)
    return records


def mapping_record(table: CostTable, grid: int, scale: float, unit: str) -> MappingRecord:
    """The mapping of one grid on a hierarchical machine (docs/hierarchy.md): the one used,
    why, both totals, and the communication of the used one per level."""
    comp = table.mappings
    assert comp is not None
    pr, pc = int(table.grids.pr[grid]), int(table.grids.pc[grid])
    used = comp.used(grid)
    return {
        "mapping": used,
        "mapping_why": comp.why(grid, pr, pc, scale, unit),
        "mapping_total_s": {m: _num(comp.total_s[m][grid] * scale) for m in comp.total_s},
        "comm_s_by_level": {name: float(sum(comp.seconds[used][t][grid, i] for t in TERMS))
                            * scale for i, name in enumerate(comp.level_names)},
    }


def level_records(table: CostTable) -> list[LevelRecord]:
    """The machine's levels, innermost first (``levels`` of a record on a hierarchical
    machine)."""
    return [{"name": lv.name, "processes": lv.processes, "alpha_s": lv.alpha_s,
             "bandwidth_Bps": lv.bandwidth_Bps} for lv in table.machine.levels]


PER_COLLECTIVE_LABELS = {"allgather": "all-gather", "allreduce": "all-reduce",
                         "p2p": "halo (p2p)"}


def per_collective_record(machine: Machine) -> PerCollectiveRecord:
    """A machine's per-collective fits, JSON-ready (docs/json.md): {kind: {"alpha_s",
    "bandwidth_Bps", "processes": {"p": {"alpha_s", "bandwidth_Bps"}}}}; a kind has
    ``processes`` only when pairs per group size are given; {} without per_collective."""
    out: PerCollectiveRecord = {}
    for kind in PER_COLLECTIVE_LABELS:
        for k, alpha, bandwidth in machine.per_collective:
            if k == kind:
                out[kind] = {"alpha_s": alpha, "bandwidth_Bps": bandwidth}
        for k, p, alpha, bandwidth in sorted(machine.per_collective_processes):
            if k == kind:
                out.setdefault(kind, {}).setdefault("processes", {})[str(p)] = {
                    "alpha_s": alpha, "bandwidth_Bps": bandwidth}
    return out


def per_collective_text(machine: Machine) -> str:
    """The fits in one line: 'all-gather 437 us, 552 MB/s (p=2 390 us, 601 MB/s; p=4 …); …';
    '' without per_collective."""
    from costmodel.units import format_rate

    def pair(alpha_s: float, bandwidth_Bps: float) -> str:
        return f"{format_seconds(alpha_s)}, {format_rate(bandwidth_Bps, 'B/s')}"

    parts = []
    for kind, entry in per_collective_record(machine).items():
        by_p = "; ".join(f"p={p} {pair(e['alpha_s'], e['bandwidth_Bps'])}"
                         for p, e in entry.get("processes", {}).items())
        pooled = (pair(entry["alpha_s"], entry["bandwidth_Bps"])
                  if "alpha_s" in entry and "bandwidth_Bps" in entry else "flat α, bandwidth")
        parts.append(f"{PER_COLLECTIVE_LABELS[kind]} {pooled}" + (f" ({by_p})" if by_p else ""))
    return "; ".join(parts)


def grid_memory_record(table: CostTable, grid: int) -> GridMemoryRecord:
    """Bytes per process of one grid by component, whether it fits, and the largest per-process
    batch b (global batch b·P) that would fit on it (docs/memory.md)."""
    memory = table.memory
    check = table.memory_check
    record: GridMemoryRecord = {
        "pr": int(table.grids.pr[grid]), "pc": int(table.grids.pc[grid]),
        "total_bytes": float(memory.total[grid]),
        "weights_bytes": float(memory.component("weights")[grid]),
        "gradients_bytes": float(memory.component("gradients")[grid]),
        "optimizer_bytes": float(memory.component("optimizer")[grid]),
        "activations_bytes": float(memory.component("activations")[grid]),
        "buffer_bytes": float(memory.component("buffer")[grid]),
    }
    if check is not None:
        record["fits"] = bool(memory.fits(check.capacity_bytes)[grid])
        record["largest_per_process_batch"] = int(
            memory.largest_local_batch(check.capacity_bytes)[grid])
    return record


def memory_record(opt: Optimum) -> MemoryRecord | None:
    """The `memory` block of an `optimize` record (docs/json.md); None without a check."""
    check = opt.table.memory_check
    if check is None:
        return None
    fitting = opt.fitting
    return {
        "capacity_bytes": check.capacity_bytes,
        "optimizer_bytes_per_param": check.optimizer_bytes_per_param,
        "word_bytes": opt.table.machine.word_bytes,
        "best": grid_memory_record(opt.table, opt.best) if opt.best is not None else None,
        "pure_batch": grid_memory_record(opt.pure_batch, 0),
        "smallest_fitting_P": fitting.processes if fitting else None,
        "smallest_fitting_grid": ({"pr": fitting.pr, "pc": fitting.pc}
                                  if fitting and fitting.processes and fitting.pr is not None
                                  and fitting.pc is not None else None),
        "smallest_fitting_searched_up_to_P": fitting.searched_up_to if fitting else None,
    }


def limits_record(limits: ScalingLimits | None, per: Per) -> LimitsRecord | None:
    """The scaling limits of docs/model.md §8 as a record."""
    if limits is None:
        return None
    s = limits.sweep
    scale = s.iterations_per_epoch if per == "epoch" else np.ones(s.processes.size)
    return {
        "feasibility_limit_P": limits.feasibility.processes,
        "feasibility_limit_because": limits.feasibility.because,
        "best_time_stops_improving_P": limits.best_time_processes,
        "efficiency_threshold": limits.efficiency_threshold,
        "efficiency_reference_P": limits.efficiency_reference_processes,
        "efficiency_below_threshold_P": limits.efficiency_processes,
        "swept": [
            {"P": int(p), "pr": int(r), "pc": int(c), "total_s": _num(t), "efficiency": _num(e)}
            for p, r, c, t, e in zip(s.processes, s.best_pr, s.best_pc, s.total_s * scale,
                                     limits.efficiency)
        ],
    }


def baseline_record(edge: CostTable, total_s: float | None) -> BaselineRecord:
    """A baseline of `optimize` (docs/cli.md, "Baselines"): the plan's own 1×P or P×1 grid,
    what that grid does to each kind of layer, its total and why it is infeasible."""
    return {"pr": int(edge.grids.pr[0]), "pc": int(edge.grids.pc[0]),
            "layout": describe_grid(edge.plan, edge.grids, edge.network),
            "feasible": bool(edge.feasible[0]), "total_s": total_s,
            "reason": reason(edge, 0) or None}


def optimum_record(opt: Optimum, per: Per) -> OptimumRecord:
    """Everything `gridcost optimize` reports for one plan, as a JSON-ready dict."""
    table = opt.table
    scale = float(_scale(table, per)[0])
    pure_total = float(opt.pure_batch.total_s[0]) * scale if opt.pure_batch.feasible[0] else None
    pure_model_total = (float(opt.pure_model.total_s[0]) * scale
                        if opt.pure_model.feasible[0] else None)
    grids = grid_records(table, per, pure_total)
    best: BestGridRecord | None = None
    if opt.best is not None:
        grid = grids[opt.best]
        best_total, best_comm = grid["total_s"], grid["comm_s"]
        pure_comm = float(opt.pure_batch.total_comm_s[0]) * scale
        best = {**grid,
                "speedup_vs_pure_model": (_num(pure_model_total / best_total)
                                          if pure_model_total and best_total else None),
                "comm_speedup_vs_pure_batch": (_num(pure_comm / best_comm)
                                               if pure_total and best_comm else None)}
    record: OptimumRecord = {
        "gridcost_version": __version__,
        "net": table.network.name,
        "network_fingerprint": table.network.fingerprint,
        "machine": table.machine.name,
        "P": opt.P,
        "batch": opt.batch,
        "plan": table.plan.name,
        "overlap": table.overlap,
        "collectives": table.algorithms.name,
        "compute_model": table.compute_model,
        "compute_outside_table": bool(table.compute_outside_table.any()),
        "redistribution_charged": False,
        "unit": unit_of(per),
        "iterations_per_epoch": float(table.iterations_per_epoch[0]),
        "grids": grids,
        "best": best,
        "pure_batch": baseline_record(opt.pure_batch, pure_total),
        "pure_model": baseline_record(opt.pure_model, pure_model_total),
        "scaling_limit": limits_record(opt.limits, per),
    }
    memory = memory_record(opt)
    if memory is not None:
        record["memory"] = memory
    if best is None:
        record["error"] = "no feasible grid"
        record["reason"] = no_feasible_grid_message(table)
    algorithms = algorithms_record(table)
    if algorithms is not None:
        record["collective_algorithms"] = algorithms["collective_algorithms"]
        record["gamma_s_per_word"] = algorithms["gamma_s_per_word"]
    if table.mappings is not None:
        record["levels"] = level_records(table)
        record["mapping"] = table.mappings.forced or "best"
    if table.bucket is not None:  # overlap 'backward' (docs/schedule.md)
        record["bucket"] = bucket_record(table.bucket)
    return record


def algorithms_record(table: CostTable) -> AlgorithmsRecord | None:
    """The algorithm of each collective and γ — present only when they differ from the paper's
    (the paper's records stay exactly as they were): ``collective_algorithms`` maps allgather
    and allreduce to a name or 'auto'; ``gamma_s_per_word`` is γ."""
    algo, gamma = table.algorithms, table.machine.gamma_s_per_word
    if algo.name == "paper" and not gamma:
        return None
    return {"collective_algorithms": {kind: algo.used(kind) for kind in SELECTABLE},
            "gamma_s_per_word": gamma}


def collectives_label(record: OptimumRecord) -> str:
    """'paper', 'ring', or 'rabenseifner (all-gather bruck, all-reduce rabenseifner)' from a
    record; adds γ when it is not zero."""
    name = record["collectives"]
    used = record.get("collective_algorithms", {})
    label = name
    if any(u != name for u in used.values()):
        parts = ", ".join(f"{KIND_NAMES[k]} {used[k]}" for k in SELECTABLE)
        label = parts if "=" in name else f"{name} ({parts})"
    gamma = record.get("gamma_s_per_word")
    return label + (f", γ {format_seconds(gamma)}/word" if gamma else "")


def layer_records(table: CostTable, grid: int, per: Per,
                  memory: MemoryTable | None = None) -> list[LayerRecord]:
    """Per-layer breakdown of one grid: split, group sizes, collective, words and seconds, and
    the bytes per process of each memory component (``memory``, default ``table.memory``)."""
    scale = float(_scale(table, per)[grid])
    memory = table.memory if memory is None else memory
    held = {c: memory.layer(c)[grid] for c in COMPONENTS}
    used = layer_algorithms(table, grid)
    words = {t: table.term(t).words[grid] * scale for t in TERMS}
    messages = {t: table.term(t).messages[grid] * scale for t in TERMS}
    seconds = {t: table.seconds(t)[grid] * scale for t in TERMS}
    records: list[LayerRecord] = []
    for i, layer in enumerate(table.network.layers):
        mode = int(table.layout.mode[grid, i])
        pr, pc = int(table.layout.pr[grid, i]), int(table.layout.pc[grid, i])
        split = MODE_NAMES[mode] if pr > 1 else "batch"
        comm = {t: float(seconds[t][i]) for t in TERMS}
        record: LayerRecord = {
            "layer": layer.name, "kind": layer.kind, "split": split, "pr": pr, "pc": pc,
            "params": layer.params, "activations": layer.activations,
            "model_words": float(words["model"][i]),
            "model_messages": float(messages["model"][i]),
            "model_comm_s": comm["model"],
            "batch_words": float(words["batch"][i]),
            "batch_messages": float(messages["batch"][i]),
            "batch_comm_s": comm["batch"],
            "domain_words": float(words["domain"][i]),
            "domain_messages": float(messages["domain"][i]),
            "domain_comm_s": comm["domain"],
            "comm_s": sum(comm[t] for t in TERMS),
            "collectives": collectives_of(split, pr, pc, table.algorithms.name, used[i]),
            "model_allgather_algorithm": used[i].get("model_allgather"),
            "model_allreduce_algorithm": used[i].get("model_allreduce"),
            "batch_allreduce_algorithm": used[i].get("batch_allreduce"),
            "weights_bytes": float(held["weights"][i]),
            "gradients_bytes": float(held["gradients"][i]),
            "optimizer_bytes": float(held["optimizer"][i]),
            "activations_bytes": float(held["activations"][i]),
            "buffer_bytes": float(held["buffer"][i]),
        }
        if table.mappings is not None:
            names = table.mappings.level_names
            by_level = {t: {name: float(table.level_seconds(t)[level][grid, i]) * scale
                            for level, name in enumerate(names)} for t in TERMS}
            record["model_comm_s_by_level"] = by_level["model"]
            record["batch_comm_s_by_level"] = by_level["batch"]
            record["domain_comm_s_by_level"] = by_level["domain"]
        records.append(record)
    return records


def layer_bytes(record: LayerRecord, component: str) -> float:
    """The bytes per process of memory ``component`` (one of COMPONENTS) of a layer record."""
    return {"weights": record["weights_bytes"], "gradients": record["gradients_bytes"],
            "optimizer": record["optimizer_bytes"], "activations": record["activations_bytes"],
            "buffer": record["buffer_bytes"]}[component]


def grid_bytes(record: GridMemoryRecord, component: str) -> float:
    """The bytes per process of memory ``component`` (one of COMPONENTS) of a grid."""
    return {"weights": record["weights_bytes"], "gradients": record["gradients_bytes"],
            "optimizer": record["optimizer_bytes"], "activations": record["activations_bytes"],
            "buffer": record["buffer_bytes"]}[component]


def levels_of_term(record: LayerRecord, term: str) -> dict[str, float]:
    """``{level: seconds}`` of ``term`` (one of TERMS) of a layer record on a machine with
    levels."""
    by_term = {"model": record.get("model_comm_s_by_level"),
               "batch": record.get("batch_comm_s_by_level"),
               "domain": record.get("domain_comm_s_by_level")}[term]
    assert by_term is not None
    return by_term


def collectives_of(split: str, pr: int, pc: int, algo: str,
                   used: dict[str, str | None] | None = None) -> str:
    """Which collectives a layer of this split runs, on which group sizes, with which algorithm.

    ``used`` (from :func:`costmodel.engine.cost.layer_algorithms`) names the algorithm of each
    collective; without it every collective is labelled ``algo``.
    """
    used = used or {}
    gather = used.get("model_allgather") or algo
    reduce = used.get("model_allreduce") or algo
    weights = used.get("batch_allreduce") or algo
    if split == "domain":
        return f"halo ×2 (Pr={pr}); all-reduce W over P={pr * pc} [{weights}]"
    parts = []
    if pr > 1:
        parts.append(f"all-gather Y + all-reduce ΔX over Pr={pr} [{gather}]" if gather == reduce
                     else f"all-gather Y [{gather}] + all-reduce ΔX [{reduce}] over Pr={pr}")
    if pc > 1:
        parts.append(f"all-reduce ΔW over Pc={pc} [{weights}]")
    return "; ".join(parts) or "none (one process)"


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Table:
    """A rendered-table model: headers carry units; cells are str, int, float or None."""

    headers: Sequence[str]
    rows: Sequence[Sequence[object]]
    title: str = ""
    notes: Sequence[str] = field(default_factory=tuple)


def _cell(value: object) -> str:
    """A table cell for people: numbers by :func:`costmodel.units.format_number` (the one rule
    of every text, Markdown and LaTeX table), None as a dash, booleans as yes/no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format_number(value)
    return str(value)


def render_text(table: Table) -> str:
    """Aligned plain-text columns: numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in table.rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(table.headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in table.rows)
               for i in range(len(table.headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(values, widths, numeric)).rstrip()

    out = [table.title] if table.title else []
    out += [line(table.headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    out += list(table.notes)
    return "\n".join(out) + "\n"


def render_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table, with the title as a heading and notes after it."""
    out = [f"### {table.title}", ""] if table.title else []
    out.append("| " + " | ".join(table.headers) + " |")
    out.append("|" + "|".join("---:" if _is_numeric(table, i) else "---"
                              for i in range(len(table.headers))) + "|")
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.rows]
    if table.notes:
        out += [""] + [f"- {n.strip()}" for n in table.notes if n.strip()]
    return "\n".join(out) + "\n"


def _is_numeric(table: Table, i: int) -> bool:
    return all(isinstance(row[i], (int, float)) or row[i] is None for row in table.rows)


def render_csv(table: Table) -> str:
    """CSV with a header row; full precision; empty cell for 'not applicable'."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def render_json(record: object) -> str:
    """Deterministic JSON: sorted keys, two-space indent."""
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(table: Table, record: object, fmt: Format) -> str:
    """``table`` as text, Markdown or CSV, or ``record`` as JSON."""
    if fmt == "json":
        return render_json(record)
    return {"table": render_text, "markdown": render_markdown, "csv": render_csv}[fmt](table)


# --------------------------------------------------------------------------- tables


def grids_table(record: OptimumRecord) -> Table:
    """The grid ranking of one `optimize` record: every factorization, best marked."""
    unit = record["unit"]
    headers = ["Pr", "Pc", f"compute [{unit}]", f"model comm [{unit}]", f"batch comm [{unit}]",
               f"domain comm [{unit}]", f"total [{unit}]", "speedup vs 1×P [×]", "note"]
    best = record["best"]
    rows = []
    for g in record["grids"]:
        note = g.get("reason", "")
        if best is not None and (g["pr"], g["pc"]) == (best["pr"], best["pc"]):
            note = "◀ best"
        if g["uneven"] and g["feasible"]:
            note = (note + " (uneven)").strip()
        if not g["feasible"]:
            note = f"infeasible: {note}"
        values = [g[k] if g["feasible"] else None for k in
                  ("compute_s", "model_comm_s", "batch_comm_s", "domain_comm_s", "total_s",
                   "speedup_vs_pure_batch")]
        row: list[object] = [g["pr"], g["pc"], *values]
        if "memory" in record:
            row.append(g.get("memory_bytes", 0.0) / GIB)
        if "levels" in record:
            row.append(g.get("mapping"))
        if "bucket" in record:
            schedule = g.get("schedule")
            row.append(schedule["exposed_comm_s"] if schedule and g["feasible"] else None)
        rows.append([*row, note])
    if "memory" in record:
        headers.insert(-1, "memory [GiB/process]")
    if "levels" in record:
        headers.insert(-1, "mapping")
    if "bucket" in record:
        headers.insert(-1, f"exposed comm [{unit}]")
    title = (f"{record['net']} on {record['machine']}: P={record['P']}, B={record['batch']}, "
             f"plan {record['plan']}, overlap {record['overlap']}"
             + (f" (buckets {record['bucket']['name']})" if "bucket" in record else "")
             + f", collectives {collectives_label(record)}, compute {record['compute_model']}")
    return Table(headers, rows, title, summary_lines(record))


def summary_lines(record: OptimumRecord) -> list[str]:
    """The closing lines of `optimize`: best grid, speedups and scaling limits."""
    unit = record["unit"]
    lines = [""]
    best = record["best"]
    if best is None:
        lines.append(f"no feasible grid: {record.get('reason')}")
    else:
        lines.append(f"best grid: {best['pr']}×{best['pc']}, {_n_or_dash(best['total_s'])} "
                     f"{unit} (communication {_n_or_dash(best['comm_s'])} {unit})")
        if "mapping" in best:
            lines.append(f"  mapping {best['mapping']} — {best.get('mapping_why')}")
        if "schedule" in best and "bucket" in record:  # overlap 'backward' (docs/schedule.md)
            sched = best["schedule"]
            lines.append(f"  schedule (buckets {record['bucket']['name']}): exposed "
                         f"communication {_n(sched['exposed_comm_s'])} {unit} = blocking "
                         f"{_n(sched['blocking_comm_s'])} + waits {_n(sched['wait_s'])} + "
                         f"tail {_n(sched['tail_s'])}; {_n(sched['hidden_gradient_s'])} of "
                         f"{_n(sched['gradient_comm_s'])} {unit} gradient all-reduce hidden "
                         f"in {sched['buckets']} buckets")
        pure, model = record["pure_batch"], record["pure_model"]
        lines.append(f"  vs pure batch {_baseline_label(pure, 'batch')}: "
                     + (f"{_ratio(best['speedup_vs_pure_batch'])} total, "
                        f"{_ratio(best['comm_speedup_vs_pure_batch'])} communication"
                        if pure["feasible"] else f"infeasible ({pure['reason']})"))
        lines.append(f"  vs pure model {_baseline_label(model, 'model')}: "
                     + (f"{_ratio(best['speedup_vs_pure_model'])} total"
                        if model["feasible"] else f"infeasible ({model['reason']})"))
    limits = record["scaling_limit"]
    if limits is not None:
        text = _limits_text(limits, False, limits["swept"][-1]["P"],
                            [row["efficiency"] for row in limits["swept"]])
        lines.append(f"scaling limit (B={record['batch']}): feasible up to "
                     f"P={limits['feasibility_limit_P']:,} [{limits['feasibility_limit_because']}]"
                     f"; {text}")
    if record.get("memory") is not None:
        lines += memory_summary_lines(record)
    if record["compute_outside_table"]:
        lines.append("note: the local batch lies outside the measured compute table; its end "
                     "segment was extended in log-log")
    lines.append("redistribution between layouts is not charged (the paper's convention)")
    return lines


def _baseline_label(baseline: BaselineRecord, split: str) -> str:
    """'8×1', with the baseline's layout in parentheses when it is not every layer
    ``split``-split (e.g. pure model under domain-batch: conv layers domain-split)."""
    grid = f"{baseline['pr']}×{baseline['pc']}"
    literal = baseline["layout"].startswith(f"every layer {split}-split")
    return grid if literal else f"{grid} ({baseline['layout']})"


def memory_summary_lines(record: OptimumRecord) -> list[str]:
    """The memory lines of `optimize` (docs/memory.md): bytes of the best grid and of pure
    batch, the largest per-process batch that fits on each, the smallest P that fits."""
    if "memory" not in record:
        return []
    memory = record["memory"]
    lines = [f"memory per process (limit {_n(memory['capacity_bytes'] / GIB)} GiB, optimizer "
             f"{optimizer_label(memory['optimizer_bytes_per_param'])}, "
             f"{memory['word_bytes']}-byte words):"]
    for label, grid in (("best", memory["best"]), ("pure batch", memory["pure_batch"])):
        if grid is None:
            continue
        parts = ", ".join(f"{c} {grid_bytes(grid, c) / GIB:.4g}" for c in COMPONENTS)
        b = grid.get("largest_per_process_batch", 0)
        fit = ("largest per-process batch that fits: "
               + (f"{b:,} (B={b * record['P']:,})" if b else "none (not even one sample)"))
        lines.append(f"  {label} {grid['pr']}×{grid['pc']}: {_n(grid['total_bytes'] / GIB)} GiB"
                     f" [{parts} GiB]" + ("" if grid.get("fits", True) else " — does not fit")
                     + f"; {fit}")
    P = memory["smallest_fitting_P"]
    if memory["smallest_fitting_searched_up_to_P"] is not None:
        where = f"every P ≤ {memory['smallest_fitting_searched_up_to_P']:,} searched"
        shape = memory["smallest_fitting_grid"]
        lines.append(f"  smallest P that fits at B={record['batch']:,}: "
                     + (f"P={P:,} ({shape['pr']}×{shape['pc']}; {where})"
                        if P is not None and shape is not None else f"none ({where})"))
    return lines


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _p(value: int | None) -> str:
    return "none" if value is None else f"{value:,}"


def _limits_text(limits: LimitsRecord | PlanSweepRecord, weak: bool, largest: int,
                 efficiencies: Sequence[float | None]) -> str:
    """Where the best time stops improving and the efficiency drops, in words (``weak``:
    weak scaling; ``efficiencies`` of the swept P)."""
    stops, low = limits["best_time_stops_improving_P"], limits["efficiency_below_threshold_P"]
    threshold = limits["efficiency_threshold"]
    best = (f"best time still improving at the largest P swept ({largest:,})" if stops is None
            else f"best time stops improving at P={stops:,}")
    reference = limits["efficiency_reference_P"]
    rule = Efficiency(reference, weak, np.empty(0)).formula
    if reference is None or all(value is None for value in efficiencies):
        efficiency = "efficiency undefined (no feasible P, or zero time at the first P)"
    elif low is None:
        efficiency = f"efficiency {rule} ≥ {threshold:g} at every P swept"
    else:
        efficiency = f"efficiency {rule} < {threshold:g} from P={low:,}"
    return f"{best}; {efficiency}"


def plans_table(records: Sequence[OptimumRecord],
                per_layer: PerLayerRecord | None = None) -> Table:
    """Comparison of plans: each plan's best grid at the same P and B; with ``per_layer`` (a
    :func:`perlayer_record`) a last row for the per-layer plan, its redistribution counted in
    its model comm column."""
    unit = records[0]["unit"]
    headers = ["plan", "best Pr×Pc", f"compute [{unit}]", f"model comm [{unit}]",
               f"batch comm [{unit}]", f"domain comm [{unit}]", f"total [{unit}]",
               "speedup vs 1×P [×]", "feasible up to P"]
    rows: list[list[object]] = []
    for r in records:
        b = r["best"]
        limit = r["scaling_limit"]["feasibility_limit_P"] if r["scaling_limit"] else None
        if b is None:
            rows.append([r["plan"], r.get("error", "infeasible"), None, None, None, None, None,
                         None, limit])
            continue
        rows.append([r["plan"], f"{b['pr']}×{b['pc']}", b["compute_s"], b["model_comm_s"],
                     b["batch_comm_s"], b["domain_comm_s"], b["total_s"],
                     b["speedup_vs_pure_batch"], limit])
    first = records[0]
    title = (f"{first['net']} on {first['machine']}: P={first['P']}, B={first['batch']}, "
             f"overlap {first['overlap']} — best grid of each plan")
    notes: list[str] = []
    if per_layer is not None:
        rows.append(perlayer_plans_row(per_layer))
        notes = ["", "fixed plans: redistribution between layouts not charged (the paper's "
                 "convention); per-layer: charged, and included in its model comm"]
        if per_layer["best"] is not None:
            notes.append("per-layer redistribution: "
                         f"{_n_or_dash(per_layer['best']['redistribution_s'])} "
                         f"{unit}; see `--plan per-layer` for each layer's choice")
    return Table(headers, rows, title, notes)


def layers_table(records: Sequence[LayerRecord], unit: str, title: str) -> Table:
    """Per-layer breakdown of one grid."""
    words = f"words/{unit.split('/')[1]}"
    headers = ["layer", "split", "Pr", "Pc", f"model [{words}]", f"batch [{words}]",
               f"domain [{words}]",
               f"model [{unit}]", f"batch [{unit}]", f"domain [{unit}]", f"comm [{unit}]",
               "collectives"]
    headers += [f"{c} [MiB]" for c in COMPONENTS]
    mib = float(2**20)
    rows: list[list[object]] = [
        [r["layer"], r["split"], r["pr"], r["pc"], r["model_words"], r["batch_words"],
         r["domain_words"], r["model_comm_s"], r["batch_comm_s"], r["domain_comm_s"],
         r["comm_s"], r["collectives"], *(layer_bytes(r, c) / mib for c in COMPONENTS)]
        for r in records]
    notes = [memory_line(records), f"total communication: {_n(sum(r['comm_s'] for r in records))} "
             f"{unit}"]
    if records and "model_comm_s_by_level" in records[0]:
        at = headers.index("collectives") + 1
        headers.insert(at, f"by level [{unit}]")
        for row, r in zip(rows, records):
            row.insert(at, level_split(r))
        names = list(levels_of_term(records[0], "model"))
        notes.append("total by level: " + ", ".join(
            f"{name} {_n(sum(levels_of_term(r, t)[name] for r in records for t in TERMS))}"
            for name in names) + f" {unit}")
    return Table(headers, rows, title, notes)


def level_split(record: LayerRecord) -> str:
    """'model: node 0.12 + network 3.4; batch: network 0.5' — each collective's seconds per
    level of a layer record on a hierarchical machine (levels with 0 s left out)."""
    parts = []
    for term in TERMS:
        levels = levels_of_term(record, term)
        nonzero = [f"{name} {_n(value)}" for name, value in levels.items() if value]
        if nonzero:
            parts.append(f"{term}: {' + '.join(nonzero)}")
    return "; ".join(parts) or "none"


def memory_line(records: Sequence[LayerRecord]) -> str:
    """Bytes per process of a layers breakdown: the sum of every component but the buffer,
    plus the largest buffer (docs/memory.md)."""
    parts = {c: (max if c == "buffer" else sum)(layer_bytes(r, c) for r in records)
             for c in COMPONENTS}
    total = sum(parts.values())
    return (f"memory per process: {_n(total / GIB)} GiB ("
            + ", ".join(f"{c} {_n(parts[c] / GIB)}" for c in COMPONENTS)
            + " GiB; buffer = the largest over layers)")


def sweep_record(result: SweepResult, per: Per, threshold: float,
                 limits: FeasibilityLimit | None, net: str, machine: str) -> PlanSweepRecord:
    """A sweep over P (fixed B: strong scaling; B = b·P: weak scaling) as a JSON-ready dict.

    Efficiency is the rule of docs/model.md §8 (:func:`costmodel.planning.search.efficiency`, as in
    `optimize`): relative to the smallest feasible P swept, from times per iteration,
    T(P₀)·P₀/(P·T(P)) at fixed B (strong), T(P₀)/T(P) when B grows with P (weak).
    """
    scale = result.iterations_per_epoch if per == "epoch" else np.ones(result.processes.size)
    weak = bool((result.batch != result.batch[0]).any())
    feasible = result.feasible
    rows: list[SweepRow] = []
    eff = efficiency_of(result.processes, result.total_s, weak)
    for i, P in enumerate(result.processes):
        ok = bool(feasible[i])
        efficiency = float(eff.values[i]) if np.isfinite(eff.values[i]) else None
        pure = result.pure_batch_total_s[i]
        row: SweepRow = {
            "P": int(P), "batch": int(result.batch[i]), "feasible": ok,
            "pr": int(result.best_pr[i]) if ok else None,
            "pc": int(result.best_pc[i]) if ok else None,
            "grids": int(result.n_grids[i]),
            "compute_s": _num(result.compute_s[i] * scale[i]) if ok else None,
            "model_comm_s": _num(result.model_comm_s[i] * scale[i]) if ok else None,
            "batch_comm_s": _num(result.batch_comm_s[i] * scale[i]) if ok else None,
            "domain_comm_s": _num(result.domain_comm_s[i] * scale[i]) if ok else None,
            "total_s": _num(result.total_s[i] * scale[i]) if ok else None,
            "pure_batch_total_s": _num(pure * scale[i]),
            "speedup_vs_pure_batch": _num(pure / result.total_s[i])
            if ok and np.isfinite(pure) and result.total_s[i] > 0 else None,
            "efficiency": _num(efficiency) if efficiency is not None else None,
        }
        if result.best_pr_inside is not None:
            row["mapping"] = (("pr-inside" if result.best_pr_inside[i] else "pc-inside")
                              if ok else None)
        rows.append(row)
    per_epoch = result.total_s * result.iterations_per_epoch
    stops = stops_improving(np.where(feasible, per_epoch, np.inf))
    return {
        "gridcost_version": __version__, "net": net, "machine": machine, "plan": result.plan,
        "unit": unit_of(per),
        "scaling": "weak" if weak else "strong", "efficiency_threshold": threshold,
        "efficiency_reference_P": eff.reference_processes,
        "rows": rows,
        "largest_feasible_P": int(result.processes[feasible].max()) if feasible.any() else None,
        "feasibility_limit_P": limits.processes if limits else None,
        "feasibility_limit_because": limits.because if limits else None,
        "best_time_stops_improving_P": int(result.processes[stops[0]]) if stops.size else None,
        "efficiency_below_threshold_P": eff.first_below(result.processes, threshold),
    }


def sweep_table(record: PlanSweepRecord, title: str) -> Table:
    """One row per P of a sweep: best grid, its time split, speedup and efficiency."""
    unit = record["unit"]
    headers = ["P", "B", "best Pr×Pc", f"compute [{unit}]", f"model comm [{unit}]",
               f"batch comm [{unit}]", f"domain comm [{unit}]", f"total [{unit}]",
               f"pure batch [{unit}]", "speedup vs 1×P [×]", "efficiency"]
    rows: list[list[object]] = [
            [r["P"], r["batch"], f"{r['pr']}×{r['pc']}" if r["feasible"] else "infeasible",
             r["compute_s"], r["model_comm_s"], r["batch_comm_s"], r["domain_comm_s"],
             r["total_s"], r["pure_batch_total_s"], r["speedup_vs_pure_batch"], r["efficiency"]]
            for r in record["rows"]]
    if record["rows"] and "mapping" in record["rows"][0]:
        headers.insert(3, "mapping")
        for row, r in zip(rows, record["rows"]):
            row.insert(3, r.get("mapping"))
    notes = ["", f"{record['scaling']} scaling, plan {record['plan']}: largest feasible P swept "
             f"{_p(record['largest_feasible_P'])}"]
    if record["feasibility_limit_P"] is not None:
        notes.append(f"feasibility limit: P={record['feasibility_limit_P']:,} "
                     f"[{record['feasibility_limit_because']}]")
    notes.append(_limits_text(record, record["scaling"] == "weak", record["rows"][-1]["P"],
                              [row["efficiency"] for row in record["rows"]]))
    return Table(headers, rows, title, notes)


# --------------------------------------------------------------------------- report tables

_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\\": r"\textbackslash{}", "×": r"$\times$", "·": r"$\cdot$", "—": "--",
                  "◀": "", "≥": r"$\geq$", "≤": r"$\leq$", "<": r"$<$", ">": r"$>$",
                  "α": r"$\alpha$", "β": r"$\beta$"}


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX table cell (pdflatex, no extra packages beyond booktabs): only
    ASCII comes out; Greek letters become math symbols, other non-ASCII a ``?``."""
    return "".join(_latex_char(ch) for ch in text).strip()


def _latex_char(ch: str) -> str:
    if ch in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[ch]
    if ord(ch) < 128:
        return ch
    name = unicodedata.name(ch, "")
    if name.startswith(("GREEK CAPITAL LETTER ", "GREEK SMALL LETTER ")):
        letter = name.rsplit(" ", 1)[1].lower()
        return f"$\\{letter.capitalize() if 'CAPITAL' in name else letter}$"
    return "?"


def render_latex(table: Table) -> str:
    """A booktabs ``tabular`` ready for ``\\input``; the title as a comment above it."""
    numeric = [_is_numeric(table, i) for i in range(len(table.headers))]
    spec = "".join("r" if n else "l" for n in numeric)
    out = [f"% {line}" for line in ([table.title] if table.title else [])]
    out += [f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
            " & ".join(latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    out += [" & ".join(latex_escape(_cell(v)) for v in row) + r" \\" for row in table.rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    out += [f"% {line.strip()}" for line in table.notes if line.strip()]
    return "\n".join(out) + "\n"


def provenance_lines(provenance: ProvenanceRecord) -> list[str]:
    """The provenance block as short lines: version and command, inputs with hashes, settings."""
    lines = [f"generated by gridcost {provenance['gridcost_version']}: {provenance['command']}"]
    for kind, item in provenance["inputs"].items():
        lines.append(f"{kind}: {item['file']} (sha256 {item['sha256']})")
    settings = ", ".join(f"{k}={v}" for k, v in provenance["settings"].items() if v is not None)
    lines.append(f"settings: {settings}")
    return lines


def render_report(tables: Sequence[Table], record: object, provenance: ProvenanceRecord,
                  fmt: Literal["markdown", "latex", "csv", "json"]) -> str:
    """Report tables with their provenance block: a comment in LaTeX and CSV, a footnote list in
    Markdown, a ``provenance`` key in JSON (``{"provenance": …, "result": record}``)."""
    lines = provenance_lines(provenance)
    if fmt == "json":
        return render_json({"provenance": provenance, "result": record})
    if fmt == "latex":
        header = "\n".join(f"% {line}" for line in lines)
        return header + "\n" + "\n".join(render_latex(t) for t in tables)
    if fmt == "csv":
        header = "\n".join(f"# {line}" for line in lines)
        return header + "\n" + "\n".join(
            (f"# {t.title}\n" if t.title else "") + render_csv(t) for t in tables)
    body = "\n".join(render_markdown(t) for t in tables)
    return body + "\n<sub>Provenance: " + "; ".join(lines) + "</sub>\n"


# --------------------------------------------------------------------------- per-layer plan


def perlayer_record(result: PerLayerResult, per: Per) -> PerLayerRecord:
    """Everything `gridcost optimize --plan per-layer` reports, as a JSON-ready dict
    (docs/json.md, "per-layer")."""
    prob = result.problem
    network = prob.network
    scale = network.dataset_samples / prob.batch if per == "epoch" else 1.0

    def seconds(value: float) -> float | None:
        return _num(value * scale)

    levels = prob.placement is not None
    fixed: list[FixedPlanRecord] = []
    for f in result.fixed:
        entry: FixedPlanRecord = {
            "plan": f.plan, "pr": f.pr, "pc": f.pc, "total_s": seconds(f.total_s),
            "charged_pr": f.charged_pr, "charged_pc": f.charged_pc,
            "charged_total_s": seconds(f.charged_total_s),
            "charged_redistribution_s": seconds(f.charged_redistribution_s)}
        if levels:
            entry["mapping"] = f.mapping
            entry["charged_mapping"] = f.charged_mapping
        fixed.append(entry)
    uncharged = min(result.fixed, key=lambda f: f.total_s)
    charged = min(result.fixed, key=lambda f: f.charged_total_s)
    pure = result.pure_batch_total_s
    record: PerLayerRecord = {
        "gridcost_version": __version__,
        "net": network.name,
        "machine": prob.machine.name,
        "P": prob.P,
        "batch": prob.batch,
        "plan": "per-layer",
        "overlap": prob.settings.overlap,
        "collectives": prob.settings.collectives,
        "compute_model": prob.compute_model,
        "compute_outside_table": prob.compute_outside_table,
        "redistribution_charged": True,
        "unit": unit_of(per),
        "iterations_per_epoch": network.dataset_samples / prob.batch,
        "layouts": len(prob.layouts),
        "method": result.method,
        "exact": result.exact,
        "lower_bound_s": seconds(result.lower_bound_s),
        "layers": [],
        "best": None,
        "pure_batch": {"pr": 1, "pc": prob.P, "feasible": bool(np.isfinite(pure)),
                       "total_s": seconds(pure)},
        "fixed_plans": fixed,
        "best_fixed_uncharged": {"plan": uncharged.plan, "pr": uncharged.pr,
                                 "pc": uncharged.pc, "total_s": seconds(uncharged.total_s)},
        "best_fixed_charged": {"plan": charged.plan, "pr": charged.charged_pr,
                               "pc": charged.charged_pc,
                               "total_s": seconds(charged.charged_total_s)},
    }
    if levels:
        # a machine with levels (docs/perlayer.md §7): the levels and the mapping setting here,
        # the mapping of the whole run and the optimum under each in "best"
        record["levels"] = [{"name": lv.name, "processes": lv.processes, "alpha_s": lv.alpha_s,
                             "bandwidth_Bps": lv.bandwidth_Bps} for lv in prob.machine.levels]
        record["mapping"] = prob.settings.mapping
        record["best_fixed_uncharged"]["mapping"] = uncharged.mapping
        record["best_fixed_charged"]["mapping"] = charged.charged_mapping
    if result.choice is None:
        record["error"] = "no feasible layout"
        record["reason"] = result.reason
        return record
    terms = result.layer_terms()
    lay = prob.layouts
    moves = result.moves()
    layers: list[LayerChoiceRecord] = []
    for i, layer in enumerate(network.layers):
        k = int(result.choice[i])
        comm = terms["model_s"][i] + terms["batch_s"][i] + terms["domain_s"][i]
        layers.append({
            "layer": layer.name, "kind": layer.kind, "split": lay.split(k),
            "pr": int(lay.pr[k]), "pc": int(lay.pc[k]), "uneven": bool(terms["uneven"][i]),
            "model_comm_s": seconds(terms["model_s"][i]),
            "batch_comm_s": seconds(terms["batch_s"][i]),
            "domain_comm_s": seconds(terms["domain_s"][i]),
            "comm_s": seconds(comm),
            "redistribution_in_s": seconds(terms["redistribution_s"][i]),
            "redistribution_in_words": float(terms["redistribution_words"][i] * scale),
            "redistribution_in_messages": float(terms["redistribution_messages"][i] * scale),
            "redistribution_in": moves[i],
        })
    record["layers"] = layers
    sums = {t: float(terms[f"{t}_s"].sum()) for t in ("model", "batch", "domain",
                                                       "redistribution")}
    comm = sum(sums.values())
    total = result.total_s
    best: PerLayerBestRecord = {
        "compute_s": seconds(prob.compute_s),
        "model_comm_s": seconds(sums["model"]),
        "batch_comm_s": seconds(sums["batch"]),
        "domain_comm_s": seconds(sums["domain"]),
        "redistribution_s": seconds(sums["redistribution"]),
        "comm_s": seconds(comm),
        "total_s": seconds(total),
        "layout_changes": int(np.count_nonzero(np.diff(result.choice))),
        "speedup_vs_pure_batch": _num(pure / total) if np.isfinite(pure) else None,
        "speedup_vs_best_fixed_charged": (_num(charged.charged_total_s / total)
                                          if np.isfinite(charged.charged_total_s) else None),
        "speedup_vs_best_fixed_uncharged": (_num(uncharged.total_s / total)
                                            if np.isfinite(uncharged.total_s) else None),
    }
    if levels:
        best["mapping"] = result.mapping
        best["mapping_total_s"] = {name: seconds(value) for name, value in
                                   (result.mapping_total_s or {}).items()}
    record["best"] = best
    return record


def perlayer_table(record: PerLayerRecord) -> Table:
    """Each layer's split, grid, own communication and redistribution into it, with the total
    and the comparison with pure batch and the best fixed plan."""
    unit = record["unit"]
    headers = ["layer", "split", "Pr×Pc", f"model comm [{unit}]", f"batch comm [{unit}]",
               f"domain comm [{unit}]", f"layer comm [{unit}]", f"redistribution in [{unit}]",
               "redistribution collectives"]
    rows: list[list[object]] = [
            [r["layer"], r["split"], f"{r['pr']}×{r['pc']}" + (" (uneven)" if r["uneven"] else ""),
             r["model_comm_s"], r["batch_comm_s"], r["domain_comm_s"], r["comm_s"],
             r["redistribution_in_s"], r["redistribution_in"] or ""]
            for r in record["layers"]]
    title = (f"{record['net']} on {record['machine']}: P={record['P']}, B={record['batch']}, "
             f"plan per-layer ({record['layouts']} layouts per layer), overlap "
             f"{record['overlap']}, collectives {record['collectives']}, compute "
             f"{record['compute_model']}"
             + (f", mapping {record['best']['mapping']}" if "levels" in record
                and record["best"] is not None else ""))
    return Table(headers, rows, title, perlayer_summary_lines(record))


def perlayer_summary_lines(record: PerLayerRecord) -> list[str]:
    """The closing lines of `optimize --plan per-layer`."""
    unit = record["unit"]
    best = record["best"]
    lines = [""]
    if best is None:
        return [*lines, f"no feasible layout sequence: {record.get('reason')}"]
    layer_comm = _sum_or_none(best["model_comm_s"], best["batch_comm_s"], best["domain_comm_s"])
    lines.append(f"per-layer total: {_n_or_dash(best['total_s'])} {unit} = compute "
                 f"{_n_or_dash(best['compute_s'])} + layer communication "
                 f"{_n_or_dash(layer_comm)} + "
                 f"redistribution {_n_or_dash(best['redistribution_s'])} "
                 f"({_changes(best['layout_changes'])})"
                 + (", overlap batch" if record["overlap"] == "batch" else "")
                 + (", overlap backward: the schedule overlaps part of it (docs/schedule.md)"
                    if record["overlap"] == "backward" else ""))
    if not record["exact"]:
        lines.append(f"  not proven optimal ({record['method']}): the optimum lies in "
                     f"[{record['lower_bound_s']:.6g}, {best['total_s']:.6g}] {unit}")
    if "levels" in record:
        lines.append(mapping_line(record))
    pure = record["pure_batch"]
    lines.append(f"  vs pure batch 1×{record['P']}: "
                 + (f"{_ratio(best['speedup_vs_pure_batch'])}" if pure["feasible"]
                    else "infeasible"))
    charged, uncharged = record["best_fixed_charged"], record["best_fixed_uncharged"]

    def placed(fixed: BestFixedRecord) -> str:
        return f" {fixed['mapping']}" if fixed.get("mapping") else ""

    if charged["total_s"] is not None:
        lines.append(f"  vs best fixed plan with redistribution charged, {charged['plan']} "
                     f"{charged['pr']}×{charged['pc']}{placed(charged)} "
                     f"({_n(charged['total_s'])} {unit}): "
                     f"{_ratio(best['speedup_vs_best_fixed_charged'])}")
    if uncharged["total_s"] is not None:
        lines.append(f"  vs best fixed plan as the paper charges it (no redistribution), "
                     f"{uncharged['plan']} {uncharged['pr']}×{uncharged['pc']}{placed(uncharged)} "
                     f"({_n(uncharged['total_s'])} {unit}): "
                     f"{_ratio(best['speedup_vs_best_fixed_uncharged'])}")
    lines.append("redistribution between layouts is charged (forward activations and backward "
                 "gradients; docs/perlayer.md)")
    return lines


def mapping_line(record: PerLayerRecord) -> str:
    """The mapping of a per-layer record on a machine with levels: the one used for every
    layer, and the optimum under the other (docs/perlayer.md §7)."""
    best, unit = record["best"], record["unit"]
    assert best is not None
    used, totals = str(best["mapping"]), best["mapping_total_s"]
    other = next(name for name in totals if name != used)
    how = ("forced by --mapping" if record["mapping"] != "best" else
           "the cheaper" if totals[used] != totals[other] else "a tie, Pr inside kept")
    return (f"  mapping {used} for every layer ({how}): {_n_or_dash(totals[used])} {unit}; "
            f"with {other}: {_n_or_dash(totals[other])} {unit}")


def perlayer_plans_row(record: PerLayerRecord) -> list[object]:
    """The per-layer plan as a row of :func:`plans_table`."""
    b = record["best"]
    if b is None:
        return ["per-layer", record.get("error", "infeasible"), *[None] * 7]
    placed = f", {b['mapping']}" if "mapping" in b else ""
    return ["per-layer", f"per layer ({_changes(b['layout_changes'])}{placed})",
            b["compute_s"], _sum_or_none(b["model_comm_s"], b["redistribution_s"]),
            b["batch_comm_s"],
            b["domain_comm_s"], b["total_s"], b["speedup_vs_pure_batch"], None]


def _changes(count: int) -> str:
    return f"{count} layout change{'' if count == 1 else 's'}"
