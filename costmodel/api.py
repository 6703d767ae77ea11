"""The Python API: one function per `gridcost` command, each returning a frozen, typed result.

``costmodel.optimize``, ``layers``, ``sweep``, ``explain``, ``timeline`` and
``import_network`` (exported lazily by :mod:`costmodel`) take the network and the machine as a
bundled name, a YAML path or a spec object (:class:`costmodel.inputs.specs.Network`,
:class:`costmodel.inputs.specs.Machine`) and keyword options named like the CLI's (``P``, ``batch``,
``plan``, ``overlap``, ``collectives``, ``compute``, ``per``, ``bucket``, ``bucket_size``,
``mapping``, ``memory_check``, ``optimizer``, ``efficiency``).  Counts take an int or the text
the CLI takes (``sweep(P="8..4096:x2")``).  Every decision the CLI shows lives here: which plans
``plan="all"`` compares, when the per-layer plan joins, the settings block of the provenance.

Each result has ``.record`` (the typed JSON shape, :mod:`costmodel.records`), ``.to_dict()``
(exactly what ``--format json`` prints, parsed), ``.tables`` (what the other formats render), a
short ``repr`` and, where the command has a figure, ``.plot(ax=None)`` (matplotlib is imported
only then).  Errors are the CLI's: :class:`costmodel.errors.GridcostError` with the one-line
message the CLI prints.  See docs/api.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, TypeAlias, TypeGuard, Union, cast

from costmodel import __version__
from costmodel.engine.plans import PER_LAYER, Plan
from costmodel.errors import TooLarge, UsageError
from costmodel.inputs.specs import Machine, Network
from costmodel.limits import Limit
from costmodel.records import (
    JSON,
    CalibrationRecord,
    EmulatedCalibrationRecord,
    ExplainRecord,
    InputRecord,
    JSONObject,
    LayersRecord,
    OptimizeRecord,
    OptimumRecord,
    PerLayerRecord,
    PlansRecord,
    PlanSweepRecord,
    ProvenanceRecord,
    RawValidationRecord,
    SweepRecord,
    TimelineRecord,
    ValidationRecord,
)
from costmodel.units import format_number as _n

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from costmodel.engine.buckets import Bucketing
    from costmodel.engine.memory import MemoryCheck
    from costmodel.engine.schedule import Timeline
    from costmodel.inputs.importers.records import Trace
    from costmodel.measure.series import Series
    from costmodel.output.explanation import Explanation
    from costmodel.output.report import Table
    from costmodel.planning.search import Optimum, ScalingLimits, Settings
    from costmodel.planning.search import SweepResult as SweepResultArrays
    from costmodel.progress import Progress

__all__ = [
    "ExplainResult",
    "ImportResult",
    "LayersResult",
    "MachineLike",
    "NetworkLike",
    "OptimizeResult",
    "SweepResult",
    "TimelineResult",
    "explain",
    "import_network",
    "layers",
    "optimize",
    "sweep",
    "timeline",
]

NetworkLike: TypeAlias = Union[str, "os.PathLike[str]", Network]
"""A bundled network name, a network YAML path, an import SOURCE (``torchvision:resnet50``,
docs/import.md) or a :class:`~costmodel.inputs.specs.Network`."""
MachineLike: TypeAlias = Union[str, "os.PathLike[str]", Machine]
"""A bundled machine name, a machine YAML path or a :class:`~costmodel.inputs.specs.Machine`."""
Count: TypeAlias = int | str
"""A positive integer, or its text as the CLI takes it."""
Per = Literal["iteration", "epoch"]
OverlapName = Literal["none", "batch", "backward"]
ComputeName = Literal["auto", "table", "flops", "none"]
MappingName = Literal["best", "pr-inside", "pc-inside"]
BucketName = Literal["ddp", "horovod", "layer"]

DEFAULT_MACHINE = "cori-knl"
DEFAULT_BATCH = 2048


# --------------------------------------------------------------------------- inputs and settings


def positive_int(value: Count, option: str, largest: Limit | None = None) -> int:
    """``value`` as an int ≥ 1 and ≤ ``largest`` (default: the largest P, costmodel.limits), or
    a UsageError naming ``option`` (e.g. '--P')."""
    from costmodel.limits import MAX_PROCESSES, check

    number = _whole_number(value, option, "a positive integer")
    if number < 1:
        raise UsageError(f"{option}: expected a positive integer, got {str(value)!r}")
    return check(number, largest or MAX_PROCESSES, option, "a positive integer")


def count_of(value: Count, option: str, largest: Limit, minimum: int = 0) -> int:
    """``value`` as an int ≥ ``minimum`` (e.g. --warmup 0) and ≤ ``largest``, or a UsageError
    naming ``option``; the digits are read as :func:`positive_int` reads them."""
    from costmodel.limits import check

    expected = f"an integer ≥ {minimum}"
    number = _whole_number(value, option, expected)
    if number < minimum:
        raise UsageError(f"{option}: expected {expected}, got {str(value)[:40]!r}")
    return check(number, largest, option, expected)


def _whole_number(value: Count, option: str, expected: str) -> int:
    """An int as is, or text of at most 30 ASCII digits (spaces around allowed) as its int; a
    UsageError '``option``: expected ``expected``, got ...' otherwise (signs, points, '1e3')."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 30:
        raise UsageError(f"{option}: expected {expected}, got {str(value)[:40]!r}")
    return int(text, 10)


def batch_of(value: Count, option: str = "--batch") -> int:
    """The global batch B: a positive int within the largest batch (costmodel.limits)."""
    from costmodel.limits import MAX_BATCH

    return positive_int(value, option, MAX_BATCH)


def per_process_batch_of(value: Count, processes: np.ndarray) -> int:
    """--per-process-batch b, with B = b·P within the largest batch for every P swept."""
    from costmodel.limits import MAX_BATCH

    b = batch_of(value, "--per-process-batch")
    top = int(max(processes))
    if b * top > MAX_BATCH.largest:
        raise UsageError(f"--per-process-batch: expected b with B = b·P ≤ "
                         f"{MAX_BATCH.largest:,} ({MAX_BATCH.why}) for every P, got b={b:,} "
                         f"and P up to {top:,}")
    return b


def grid_options(P: Count, pr: Count, batch: Count) -> tuple[int, int, int]:
    """P, Pr and B of a one-grid command (`layers`, `explain`): Pr a divisor of P, B within
    the limits; UsageError naming the option otherwise."""
    from costmodel.planning.search import check_batch

    n_proc = positive_int(P, "--P")
    R = positive_int(pr, "--pr")
    B = check_batch(batch_of(batch))
    if n_proc % R:
        raise UsageError(f"--pr: expected a divisor of P={n_proc}, got {R}")
    return n_proc, R, B


def check_efficiency(efficiency: float) -> None:
    """The efficiency threshold of the scaling limit is in (0, 1], or UsageError."""
    if not 0 < efficiency <= 1:
        raise UsageError(f"--efficiency: expected a number in (0, 1], got {efficiency!r}")


def load_network_like(net: NetworkLike) -> Network:
    """A Network from a spec, a bundled name, a YAML path or an import SOURCE (traced with the
    default input 3×224×224; torch is imported only then)."""
    if isinstance(net, Network):
        return net
    from costmodel.inputs.importers import import_network as trace
    from costmodel.inputs.importers import is_source
    from costmodel.inputs.loaders import load_network

    name = os.fspath(net)
    if is_source(name):
        return trace(name)[2]
    return load_network(name)


def load_machine_like(machine: MachineLike) -> Machine:
    """A Machine from a spec, a bundled name or a YAML path."""
    if isinstance(machine, Machine):
        return machine
    from costmodel.inputs.loaders import load_machine

    return load_machine(os.fspath(machine))


def network_digest(net: NetworkLike) -> InputRecord:
    """Provenance of the network: its file and SHA-256; for an import SOURCE the source and the
    SHA-256 of the imported YAML; for a spec object its name and fingerprint."""
    if isinstance(net, Network):
        return {"name": net.name, "fingerprint": net.fingerprint}
    from costmodel.inputs.importers import import_network as trace
    from costmodel.inputs.importers import is_source
    from costmodel.inputs.loaders import input_digest

    name = os.fspath(net)
    if is_source(name):
        import hashlib

        text = trace(name)[0]
        return {"file": name, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    return input_digest(name, "networks")


def machine_digest(machine: MachineLike) -> InputRecord:
    """Provenance of the machine: its file and SHA-256, or a spec object's name."""
    if isinstance(machine, Machine):
        return {"name": machine.name}
    from costmodel.inputs.loaders import input_digest

    return input_digest(os.fspath(machine), "machines")


def memory_check_of(machine: Machine, memory_check: bool | None,
                    optimizer: str | None) -> MemoryCheck | None:
    """The MemoryCheck the options ask for, or None (docs/memory.md): on with ``memory_check``
    True, or with an ``optimizer`` unless ``memory_check`` is False."""
    from costmodel.engine.memory import MemoryCheck

    per_param = optimizer_bytes_of(machine, optimizer)
    if not (memory_check or (memory_check is None and optimizer is not None)):
        return None
    if machine.memory_bytes is None:
        raise UsageError(f"--memory-check: machine {machine.name!r} has no 'memory' (bytes per "
                         "process); add e.g. 'memory: 16 GiB' to its profile")
    return MemoryCheck(machine.memory_bytes, per_param)


def optimizer_bytes_of(machine: Machine, optimizer: str | None) -> float:
    """Optimizer bytes per parameter: ``optimizer`` (sgd, momentum, adam or a number), else the
    machine profile's."""
    from costmodel.engine.memory import optimizer_bytes

    return (float(machine.optimizer_bytes_per_param) if optimizer is None
            else optimizer_bytes(optimizer))


def settings_of(overlap: str, collectives: str | None, compute: str,
                memory: MemoryCheck | None = None, machine: Machine | None = None,
                mapping: str = "best", bucket: str | None = None,
                bucket_size: str | None = None) -> Settings:
    """The Settings; ``collectives`` None takes the machine profile's selection; ``bucket`` and
    ``bucket_size`` (overlap 'backward' only) the gradient bucketing (docs/schedule.md)."""
    from costmodel.engine.collectives import algorithms
    from costmodel.planning.search import Settings

    if collectives is None and machine is not None:
        collectives = machine.collectives
    if collectives is not None:
        algorithms(collectives)  # validate the name before any work
    chosen = None
    if overlap == "backward":
        from costmodel.engine.buckets import bucketing, parse_size
        from costmodel.limits import MAX_BUCKET_BYTES

        if bucket_size is not None and not parse_size(bucket_size) <= MAX_BUCKET_BYTES.largest:
            raise UsageError(f"--bucket-size: expected a size ≤ {MAX_BUCKET_BYTES.largest:,} B "
                             f"({MAX_BUCKET_BYTES.why}), got {bucket_size[:40]!r}")
        chosen = bucketing(bucket, bucket_size, None if machine is None else machine.bucket)
    elif bucket is not None or bucket_size is not None:
        raise UsageError("--bucket/--bucket-size: gradient buckets are scheduled only under "
                         "--overlap backward")
    return Settings(overlap=overlap, collectives=collectives, compute=compute,  # type: ignore[arg-type]
                    memory=memory, mapping=mapping, bucket=chosen)


def _bucket_settings(settings: Settings) -> JSONObject:
    """Provenance of the bucketing: present only under overlap 'backward'."""
    if settings.bucket is None:
        return {}
    from costmodel.engine.schedule import bucket_record

    return {"bucket": _json(bucket_record(settings.bucket))}  # type: ignore[arg-type]


def _mapping_settings(machine: Machine, mapping: str) -> JSONObject:
    """Provenance of the mapping: present only on a machine with levels (docs/hierarchy.md)."""
    return {"mapping": mapping} if machine.hierarchical else {}


def _memory_settings(memory: MemoryCheck | None) -> JSONObject:
    """Provenance of the memory check: present only when it is on."""
    if memory is None:
        return {}
    return {"memory_check": True, "memory_bytes": memory.capacity_bytes,
            "optimizer_bytes_per_param": memory.optimizer_bytes_per_param}


def _json(value: object) -> JSON:
    """``value`` as :func:`json.loads` gives it back from the CLI's JSON (lists for tuples)."""
    return cast(JSON, json.loads(json.dumps(value, ensure_ascii=False)))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, repr=False)
class CommandResult:
    """What a command computed: its JSON record, the tables its other formats render, and the
    settings block of its provenance (``provenance()`` hashes the inputs on request)."""

    tables: tuple[Table, ...]
    settings: JSONObject
    network_input: NetworkLike = field(repr=False)
    machine_input: MachineLike = field(repr=False)

    def to_dict(self) -> JSONObject:
        """Exactly what the command's ``--format json`` prints, parsed."""
        return cast(JSONObject, _json(self._record()))

    def _record(self) -> object:
        raise NotImplementedError

    def provenance(self, command: str) -> ProvenanceRecord:
        """The provenance block of `gridcost report` (``command`` e.g. 'gridcost report
        grids'): version, command, inputs with SHA-256, settings."""
        return {"gridcost_version": __version__, "command": command,
                "inputs": {"network": network_digest(self.network_input),
                           "machine": machine_digest(self.machine_input)},
                "settings": self.settings}


def _seconds(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{_n(value)} {unit}"


def _best_total_s(record: OptimumRecord | PerLayerRecord) -> float:
    """The total of a record's best grid or layouts (infinite when there is none)."""
    best = record["best"]
    total = None if best is None else best["total_s"]
    return float("inf") if total is None else total


@dataclass(frozen=True, repr=False)
class OptimizeResult(CommandResult):
    """`gridcost optimize`: the best grid of one plan, per-layer, or every plan compared."""

    record: OptimizeRecord = field(default_factory=lambda: cast(OptimizeRecord, {}))
    optima: tuple[Optimum, ...] = ()
    """The fixed plans' optima (costmodel.planning.search.Optimum), for figures and arrays."""
    per: Per = "epoch"

    def _record(self) -> object:
        return self.record

    def plans(self) -> list[OptimumRecord | PerLayerRecord]:
        """The record of each plan costed (the per-layer one last, where it joined)."""
        record = self.record
        if "plans" in record:
            compared = cast(PlansRecord, record)
            extra = compared["per_layer"]
            return [*compared["plans"], *([extra] if extra is not None else [])]
        return [record]

    def best(self) -> OptimumRecord | PerLayerRecord | None:
        """The record of the fastest feasible plan (itself when one plan was costed)."""
        feasible = [r for r in self.plans() if r["best"] is not None]
        if not feasible:
            return None
        return min(feasible, key=_best_total_s)

    def __repr__(self) -> str:
        lines = []
        for r in self.plans():
            head = f"{r['net']} on {r['machine']}: P={r['P']}, B={r['batch']}, plan {r['plan']}"
            if r["best"] is None:
                lines.append(f"{head}: no feasible grid")
            elif "fixed_plans" in r:  # the per-layer plan: no one grid
                best_per_layer = r["best"]
                lines.append(f"{head}: {_seconds(best_per_layer['total_s'], r['unit'])}"
                             + (f", mapping {best_per_layer['mapping']}"
                                if "mapping" in best_per_layer else ""))
            else:
                best = r["best"]
                lines.append(f"{head}: best grid {best['pr']}×{best['pc']}, "
                             f"{_seconds(best['total_s'], r['unit'])} (comm "
                             f"{_seconds(best['comm_s'], r['unit'])})")
        return "OptimizeResult(\n  " + "\n  ".join(lines) + "\n)"

    def plot(self, ax: Axes | None = None) -> Figure:
        """Stacked bars per Pr×Pc grid (`gridcost plot grid`), one panel per plan costed (the
        per-layer plan has no grid bars); ``ax`` draws a single plan's panel there."""
        from costmodel.output.plot import grid_bars

        if not self.optima:
            raise UsageError("plot: the per-layer plan has no grid bars; plot a fixed plan")
        return grid_bars(self.optima, self.per, axes=None if ax is None else [ax])


@dataclass(frozen=True, repr=False)
class LayersResult(CommandResult):
    """`gridcost layers`: the per-layer breakdown of one Pr×Pc grid."""

    record: LayersRecord = field(default_factory=lambda: cast(LayersRecord, {}))

    def _record(self) -> object:
        return self.record

    def __repr__(self) -> str:
        r = self.record
        comm = sum(layer["comm_s"] for layer in r["layers"])
        heaviest = max(r["layers"], key=lambda layer: layer["comm_s"])
        return (f"LayersResult(\n  {r['net']} on {r['machine']}: {r['pr']}×{r['pc']} grid, "
                f"P={r['P']}, B={r['batch']}, plan {r['plan']}"
                + ("" if r["feasible"] else f" — INFEASIBLE: {r['reason']}")
                + f"\n  {len(r['layers'])} layers, communication {_seconds(comm, r['unit'])}; "
                f"most in {heaviest['layer']} "
                f"({_seconds(heaviest['comm_s'], r['unit'])})\n)")

    def plot(self, ax: Axes | None = None) -> Figure:
        """Stacked bars of each layer's model, batch and domain communication."""
        from costmodel.output.plot import figure_of, layer_bars

        r = self.record
        title = (f"{r['net']} on {r['machine']}: {r['pr']}×{r['pc']} grid, P={r['P']}, "
                 f"B={r['batch']}, plan {r['plan']}")
        return figure_of(layer_bars(cast(list[dict[str, object]], r["layers"]), r["unit"], ax,
                                    title))


@dataclass(frozen=True, repr=False)
class SweepResult(CommandResult):
    """`gridcost sweep`: the best grid of each plan for every P (strong or weak scaling)."""

    record: SweepRecord = field(default_factory=lambda: cast(SweepRecord, {}))
    sweeps: tuple[tuple[str, SweepResultArrays], ...] = ()
    """(plan name, costmodel.planning.search.SweepResult) per plan swept."""
    per: Per = "epoch"
    limits: Callable[[], dict[str, ScalingLimits]] | None = field(default=None, compare=False)
    """The scaling limits per plan, computed on request (strong scaling only; None when weak)."""

    def _record(self) -> object:
        return self.record

    def plan_records(self) -> list[PlanSweepRecord]:
        """One record per plan swept."""
        if "sweeps" in self.record:
            return list(cast(list[PlanSweepRecord], cast(JSONObject, self.record)["sweeps"]))
        return [self.record]

    def __repr__(self) -> str:
        lines = []
        for r in self.plan_records():
            feasible = [row for row in r["rows"] if row["feasible"]]
            last = feasible[-1] if feasible else None
            head = (f"{r['net']} on {r['machine']}, plan {r['plan']}, {r['scaling']} scaling, "
                    f"P {r['rows'][0]['P']}..{r['rows'][-1]['P']} ({len(r['rows'])} values)")
            lines.append(head + (": no feasible P" if last is None else
                                 f": at P={last['P']} best {last['pr']}×{last['pc']}, "
                                 f"{_seconds(last['total_s'], r['unit'])}"))
        return "SweepResult(\n  " + "\n  ".join(lines) + "\n)"

    def plot(self, ax: Axes | None = None) -> Figure:
        """Best time against P for each plan and pure batch, scaling limits marked under strong
        scaling (`gridcost plot scaling`)."""
        from costmodel.output.plot import figure_of, scaling

        records = self.plan_records()
        limits = None if self.limits is None else self.limits()
        title = f"{records[0]['net']} on {records[0]['machine']}: best time against P"
        return figure_of(scaling(dict(self.sweeps), self.per, limits, ax=ax, title=title))


@dataclass(frozen=True, repr=False)
class ExplainResult(CommandResult):
    """`gridcost explain`: every term of one grid's cost, formula → numbers → result."""

    explanation: Explanation | None = None
    per: Per = "epoch"

    @property
    def record(self) -> ExplainRecord:
        """The JSON record (docs/json.md, 'explain')."""
        from costmodel.output.explanation import explanation_record

        assert self.explanation is not None
        return explanation_record(self.explanation)

    def _record(self) -> object:
        return self.record

    def text(self, fmt: Literal["table", "markdown"] = "table") -> str:
        """The explanation as the CLI prints it: plain text or Markdown."""
        from costmodel.output.explanation import render_markdown, render_text

        assert self.explanation is not None
        return (render_markdown if fmt == "markdown" else render_text)(self.explanation,
                                                                      self.per)

    def __repr__(self) -> str:
        e = self.explanation
        assert e is not None
        return (f"ExplainResult(\n  {e.network} on {e.machine}: {e.pr}×{e.pc} grid, P={e.P}, "
                f"B={e.batch}, plan {e.plan}, overlap {e.overlap}\n  {len(e.layers)} layers "
                f"explained; total {_n(e.total.seconds)} s/iteration\n)")


@dataclass(frozen=True, repr=False)
class TimelineResult(CommandResult):
    """`gridcost timeline`: one training iteration of one grid as a schedule of events."""

    schedule: Timeline | None = None

    @property
    def record(self) -> TimelineRecord:
        """The JSON record (docs/json.md, 'timeline')."""
        assert self.schedule is not None
        return self.schedule.record()

    def _record(self) -> object:
        return self.record

    def __repr__(self) -> str:
        tl = self.schedule
        assert tl is not None
        return (f"TimelineResult(\n  {tl.network} on {tl.machine}: {tl.pr}×{tl.pc} grid, "
                f"P={tl.P}, B={tl.batch}, plan {tl.plan}, overlap {tl.overlap}\n  iteration "
                f"{_n(tl.total_s * 1e3)} ms, {len(tl.events)} events"
                + ("" if tl.feasible else f" — INFEASIBLE: {tl.reason}") + "\n)")

    def plot(self, ax: Axes | None = None) -> Figure:
        """The iteration as a Gantt chart (its own figure: ``ax`` must be None)."""
        from costmodel.output.plot import timeline as draw

        if ax is not None:
            raise UsageError("plot: the timeline draws its own figure; call plot() without ax")
        assert self.schedule is not None
        return draw(self.schedule)


@dataclass(frozen=True)
class ImportResult:
    """`gridcost import`: the network YAML traced from PyTorch or ONNX, and the Network."""

    source: str
    yaml: str
    network: Network
    skipped: tuple[str, ...]

    def to_dict(self) -> JSONObject:
        """A summary (the command prints YAML, not JSON): source, layers, parameters, MACs."""
        return {"source": self.source, "net": self.network.name,
                "weighted_layers": len(self.network.layers), "params": self.network.params,
                "gmacs_per_sample": self.network.macs / 1e9, "skipped": list(self.skipped)}

    def summary(self) -> str:
        """'SOURCE: N weighted layers, N parameters, X GMAC/sample[, K skipped]'."""
        n = self.network
        return (f"{self.source}: {len(n.layers)} weighted layers, {n.params:,} parameters, "
                f"{_n(n.macs / 1e9)} GMAC/sample"
                + (f", {len(self.skipped)} skipped" if self.skipped else ""))

    def __repr__(self) -> str:
        return f"ImportResult({self.summary()})"


# --------------------------------------------------------------------------- commands


def optimize(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count,
             batch: Count = DEFAULT_BATCH, plan: str = "model-batch",
             overlap: OverlapName = "none", collectives: str | None = None,
             compute: ComputeName = "auto", per: Per = "epoch", efficiency: float = 0.5,
             memory_check: bool | None = None, optimizer: str | None = None,
             mapping: MappingName = "best", bucket: BucketName | None = None,
             bucket_size: str | None = None, command: str = "optimize") -> OptimizeResult:
    """Cost every Pr×Pc factorization of P and pick the best grid (`gridcost optimize`).

    ``plan``: a plan name, 'per-layer' or 'all' (every fixed plan, and the per-layer plan
    unless the memory check is on).  ``command`` names the command
    in error messages.
    """
    from costmodel.engine.plans import choose_plans
    from costmodel.output.report import (
        grids_table,
        optimum_record,
        perlayer_record,
        perlayer_table,
        plans_table,
    )
    from costmodel.planning.search import optimize as run_optimize

    n_proc = positive_int(P, "--P")
    B = batch_of(batch)
    check_efficiency(efficiency)
    plans = choose_plans(plan, command, all_allowed=True, per_layer_allowed=True)
    network, mach = load_network_like(net), load_machine_like(machine)
    memory = memory_check_of(mach, memory_check, optimizer)
    settings = settings_of(overlap, collectives, compute, memory, machine=mach, mapping=mapping,
                           bucket=bucket, bucket_size=bucket_size)
    optima, records = [], []
    for chosen in plans:
        result = run_optimize(network, mach, n_proc, B, chosen, settings, threshold=efficiency,
                              allow_infeasible=len(plans) > 1)
        optima.append(result)
        records.append(optimum_record(result, per))
    provenance: JSONObject = {
        "P": n_proc, "batch": B, "plan": plan, "overlap": overlap,
        "collectives": settings.collectives, "compute": compute, "per": per,
        "efficiency_threshold": efficiency,
        **_memory_settings(memory), **_mapping_settings(mach, mapping),
        **_bucket_settings(settings)}
    def done(table: Table, record: OptimizeRecord) -> OptimizeResult:
        return OptimizeResult(tables=(table,), settings=provenance, network_input=net,
                              machine_input=machine, record=record, optima=tuple(optima),
                              per=per)

    if len(plans) == 1:
        return done(grids_table(records[0]), records[0])
    if memory is not None and plan == PER_LAYER:
        raise UsageError("--plan per-layer: the per-layer plan does not model memory; drop "
                         "--memory-check and --optimizer")
    # under a memory check the per-layer plan (which does not model memory) is left out of
    # 'all'; on a machine with levels it joins, under its own best mapping (docs/perlayer.md)
    per_layer, left_out = None, ""
    if memory is None:
        from costmodel.planning.perlayer import optimize_per_layer

        try:
            per_layer = perlayer_record(
                optimize_per_layer(network, mach, n_proc, B, settings, plan == "all"), per)
        except TooLarge as exc:
            if plan != "all":
                raise
            left_out = f"per-layer plan left out: {exc}"  # the fixed plans still compare
    if per_layer is not None and plan == PER_LAYER:
        return done(perlayer_table(per_layer), per_layer)
    table = plans_table(records, per_layer)
    if left_out:
        table = replace(table, notes=[*table.notes, left_out])
    return done(table, {"plans": records, "per_layer": per_layer})


def layers(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count, pr: Count,
           batch: Count = DEFAULT_BATCH, plan: str = "model-batch",
           overlap: OverlapName = "none", collectives: str | None = None,
           compute: ComputeName = "auto", per: Per = "epoch", memory_check: bool | None = None,
           optimizer: str | None = None, mapping: MappingName = "best",
           bucket: BucketName | None = None, bucket_size: str | None = None,
           command: str = "layers") -> LayersResult:
    """Per-layer breakdown of the grid ``pr`` × P/``pr`` (`gridcost layers`)."""
    from dataclasses import replace

    import numpy as np

    from costmodel.engine.cost import evaluate
    from costmodel.engine.grids import Grids
    from costmodel.engine.memory import memory_table
    from costmodel.engine.plans import choose_plans
    from costmodel.output.report import layer_records, layers_table, unit_of
    from costmodel.planning.search import reason

    n_proc, R, B = grid_options(P, pr, batch)
    [chosen] = choose_plans(plan, command, all_allowed=False)
    network, mach = load_network_like(net), load_machine_like(machine)
    memory = memory_check_of(mach, memory_check, optimizer)
    s = settings_of(overlap, collectives, compute, memory, machine=mach, mapping=mapping,
                    bucket=bucket, bucket_size=bucket_size)
    grids = Grids(np.array([R]), np.array([n_proc // R]), np.array([B]))
    table = evaluate(network, mach, grids, chosen, s.overlap, s.collectives, s.compute, s.memory,
                     s.mapping, s.bucket)
    held = memory_table(network, grids, chosen, mach.word_bytes,
                        optimizer_bytes_of(mach, optimizer))
    records = layer_records(table, 0, per, held)
    unit = unit_of(per)
    feasible = bool(table.feasible[0])
    algo = table.algorithms
    title = (f"{network.name} on {mach.name}: {R}×{n_proc // R} grid, B={B}, plan {chosen.name}"
             + ("" if algo.name == "paper" else f", collectives {algo.label}")
             + ("" if table.mappings is None else f", mapping {table.mappings.used(0)}")
             + ("" if feasible else f" — INFEASIBLE: {reason(table, 0)}"))
    record: LayersRecord = {
        "net": network.name, "machine": mach.name, "P": n_proc, "batch": B, "pr": R,
        "pc": n_proc // R, "plan": chosen.name, "unit": unit, "feasible": feasible,
        "reason": reason(table, 0) or None, "layers": records, "collectives": algo.name}
    if table.mappings is not None:
        from costmodel.output.report import mapping_record

        scale = float(table.iterations_per_epoch[0]) if per == "epoch" else 1.0
        mapped = mapping_record(table, 0, scale, unit)
        record["mapping"] = mapped["mapping"]
        record["mapping_why"] = mapped["mapping_why"]
        record["mapping_total_s"] = mapped["mapping_total_s"]
        record["comm_s_by_level"] = mapped["comm_s_by_level"]
        record["levels"] = [lv.name for lv in mach.levels]
    table_out = layers_table(records, unit, title)
    if table.schedule is not None:  # overlap 'backward' (docs/schedule.md)
        from costmodel.engine.schedule import bucket_record, describe, grid_schedule_record

        assert table.bucket is not None
        scale = float(table.iterations_per_epoch[0]) if per == "epoch" else 1.0
        total = float(table.total_s[0]) * scale
        record["overlap"] = "backward"
        record["bucket"] = bucket_record(table.bucket)
        record["total_s"] = total
        record["schedule"] = grid_schedule_record(table.schedule, 0, scale)
        table_out = replace(table_out, notes=[
            *table_out.notes, f"overlap backward (buckets {table.bucket.label}): iteration "
                              f"{_n(total)} {unit}; "
                              + describe(table.schedule, 0, scale, unit)
                              + " (gridcost timeline draws it)"])
    if "mapping_why" in record:
        table_out = replace(table_out, notes=[*table_out.notes,
                                              f"mapping: {record['mapping_why']}"])
    if mach.per_collective or mach.per_collective_processes:
        from costmodel.output.report import per_collective_record, per_collective_text

        record["per_collective"] = per_collective_record(mach)
        table_out = replace(table_out, notes=[
            *table_out.notes, f"per-collective α, bandwidth: {per_collective_text(mach)} "
                              "(others: the flat α, bandwidth)"])
    settings: JSONObject = {
        "P": n_proc, "pr": R, "batch": B, "plan": plan, "overlap": overlap,
        "collectives": algo.name, "compute": compute, "per": per,
        **_memory_settings(memory), **_mapping_settings(mach, mapping), **_bucket_settings(s)}
    return LayersResult(tables=(table_out,), settings=settings, network_input=net,
                        machine_input=machine, record=record)


def sweep(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count,
          batch: Count = DEFAULT_BATCH, per_process_batch: Count | None = None,
          plan: str = "model-batch", overlap: OverlapName = "none",
          collectives: str | None = None, compute: ComputeName = "auto", per: Per = "epoch",
          efficiency: float = 0.5, memory_check: bool | None = None,
          optimizer: str | None = None, mapping: MappingName = "best",
          bucket: BucketName | None = None, bucket_size: str | None = None,
          progress: Progress | None = None, command: str = "sweep") -> SweepResult:
    """Best grid and its time for each P (`gridcost sweep`).

    ``P``: a list ('8,32,128'), a range ('1..4096') or a geometric range ('1..4096:x2'), or one
    int.  With ``batch`` fixed this is strong scaling; ``per_process_batch`` b gives B = b·P
    (weak scaling).  ``plan`` 'all' sweeps every fixed plan.  ``progress`` (costmodel.progress)
    hears the grids costed.
    """
    import numpy as np

    from costmodel.engine.collectives import algorithms
    from costmodel.engine.grids import parse_processes
    from costmodel.engine.plans import choose_plans
    from costmodel.engine.schedule import bucket_record
    from costmodel.output.report import sweep_record, sweep_table
    from costmodel.planning.search import feasibility_limit, scaling_limits
    from costmodel.planning.search import sweep as run_sweep

    ps = parse_processes(str(P))
    check_efficiency(efficiency)
    if per_process_batch is not None:
        b = per_process_batch_of(per_process_batch, ps)
        batches = ps * b
        label = f"B = {b}·P"
    else:
        B = batch_of(batch)
        batches = np.full(ps.shape, B)
        label = f"B={B}"
    plans = choose_plans(plan, command, all_allowed=True)
    network, mach = load_network_like(net), load_machine_like(machine)
    memory = memory_check_of(mach, memory_check, optimizer)
    settings = settings_of(overlap, collectives, compute, memory, machine=mach, mapping=mapping,
                           bucket=bucket, bucket_size=bucket_size)
    bucketing = cast("Bucketing | None", settings.bucket)
    records: list[PlanSweepRecord] = []
    tables, results = [], []
    for chosen in plans:
        result = run_sweep(network, mach, ps, batches, chosen, settings, progress=progress)
        results.append((chosen.name, result))
        limit = feasibility_limit(network, chosen, int(batches[0])) \
            if per_process_batch is None else None
        record = sweep_record(result, per, efficiency, limit, network.name, mach.name)
        if bucketing is not None:
            record["bucket"] = bucket_record(bucketing)
        algo = algorithms(settings.collectives or "paper")
        if algo.name != "paper":
            record["collectives"] = algo.name
        records.append(record)
        tables.append(sweep_table(record, f"{network.name} on {mach.name}, {label}, plan "
                                          f"{chosen.name}, overlap {overlap}"
                                  + ("" if bucketing is None
                                     else f" (buckets {bucketing.label})")
                                  + ("" if algo.name == "paper"
                                     else f", collectives {algo.label}")))
    provenance: JSONObject = {
        "P": str(P), "batch": None if per_process_batch else int(batches[0]),
        "per_process_batch": int(per_process_batch) if per_process_batch else None,
        "plan": plan, "overlap": overlap, "collectives": settings.collectives,
        "compute": compute, "per": per, "efficiency_threshold": efficiency,
        **_memory_settings(memory), **_mapping_settings(mach, mapping),
        **_bucket_settings(settings)}
    def limits() -> dict[str, ScalingLimits]:
        return {p.name: scaling_limits(network, mach, int(batches[0]), p, settings, efficiency)
                for p in plans}

    return SweepResult(tables=tuple(tables), settings=provenance, network_input=net,
                       machine_input=machine,
                       record=records[0] if len(records) == 1 else {"sweeps": records},
                       sweeps=tuple(results), per=per,
                       limits=None if per_process_batch is not None else limits)


def explain(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count, pr: Count,
            batch: Count = DEFAULT_BATCH, plan: str = "model-batch",
            overlap: OverlapName = "none", collectives: str | None = None,
            compute: ComputeName = "auto", per: Per = "epoch",
            layer_names: Sequence[str] = (), bucket: BucketName | None = None,
            bucket_size: str | None = None, mapping: MappingName = "best",
            command: str = "explain") -> ExplainResult:
    """Every term of the cost of the grid ``pr`` × P/``pr`` (`gridcost explain`);
    ``layer_names`` restricts the per-layer part (sums and total cover every layer).  On a
    machine with levels every collective is written per level under ``mapping``
    (docs/hierarchy.md)."""
    from costmodel.engine.plans import choose_plans
    from costmodel.output.explanation import explain as run_explain

    n_proc, R, B = grid_options(P, pr, batch)
    [chosen] = choose_plans(plan, command, all_allowed=False)
    network, mach = load_network_like(net), load_machine_like(machine)
    s = settings_of(overlap, collectives, compute, machine=mach, mapping=mapping, bucket=bucket,
                    bucket_size=bucket_size)
    result = run_explain(network, mach, n_proc, R, B, chosen, s.overlap, s.collectives,
                         s.compute, layers=list(layer_names) or None, bucket=s.bucket,
                         mapping=s.mapping)
    settings: JSONObject = {"P": n_proc, "pr": R, "batch": B, "plan": plan, "overlap": overlap,
                            "collectives": s.collectives, "compute": compute, "per": per,
                            **_mapping_settings(mach, mapping), **_bucket_settings(s)}
    return ExplainResult(tables=(), settings=settings, network_input=net,
                         machine_input=machine, explanation=result, per=per)


def optima(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count,
           batch: Count = DEFAULT_BATCH, plan: str = "model-batch",
           overlap: OverlapName = "none", collectives: str | None = None,
           compute: ComputeName = "auto", bucket: BucketName | None = None,
           bucket_size: str | None = None, command: str = "plot grid") -> list[Optimum]:
    """The optimum of one plan for every batch × P of the lists ``batch`` and ``P`` (B outer),
    infeasible ones kept, without scaling limits: what `gridcost plot grid/curve/layers`
    draw."""
    from costmodel.engine.grids import parse_processes
    from costmodel.engine.plans import choose_plans
    from costmodel.limits import MAX_BATCH, MAX_PANELS
    from costmodel.planning.search import optimize as run_optimize

    ps = parse_processes(str(P), count=MAX_PANELS)
    bs = parse_processes(str(batch), "--batch", MAX_BATCH, MAX_PANELS)
    if ps.size * bs.size > MAX_PANELS.largest:
        raise UsageError(f"--P, --batch: expected at most {MAX_PANELS.largest} (P, B) pairs "
                         f"({MAX_PANELS.why}), got {ps.size} × {bs.size}")
    [chosen] = choose_plans(plan, command, all_allowed=False)
    network, mach = load_network_like(net), load_machine_like(machine)
    settings = settings_of(overlap, collectives, compute, machine=mach, bucket=bucket,
                           bucket_size=bucket_size)
    return [run_optimize(network, mach, int(p), int(b), chosen, settings, with_limits=False,
                         allow_infeasible=True)
            for b in bs for p in ps]


@dataclass(frozen=True, repr=False)
class CurvesResult:
    """`gridcost plot curve`: communication (or total) time against Pr, one line per P and B."""

    optima: tuple[Optimum, ...]
    what: Literal["communication", "total"]
    per: Per
    title: str

    def __repr__(self) -> str:
        return f"CurvesResult({self.title}: {len(self.optima)} lines)"

    def plot(self, ax: Axes | None = None) -> Figure:
        """The curves, the least point of each starred, titled :attr:`title`."""
        from costmodel.output.plot import cost_curves, curves_from_optima, figure_of

        lines = curves_from_optima(list(self.optima), self.what, self.per)
        return figure_of(cost_curves(lines, self.what, self.per, ax=ax, title=self.title))


def curves(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count,
           batch: Count = DEFAULT_BATCH, plan: str = "model-batch",
           overlap: OverlapName = "none", collectives: str | None = None,
           compute: ComputeName = "auto", per: Per = "epoch",
           what: Literal["communication", "total"] = "communication",
           bucket: BucketName | None = None, bucket_size: str | None = None,
           command: str = "plot curve") -> CurvesResult:
    """The optima of :func:`optima` as curves of ``what`` time against Pr (`gridcost plot
    curve`), titled 'NET on MACHINE, plan PLAN: WHAT time against Pr'."""
    found = optima(net, machine, P=P, batch=batch, plan=plan, overlap=overlap,
                   collectives=collectives, compute=compute, bucket=bucket,
                   bucket_size=bucket_size, command=command)
    table = found[0].table
    title = (f"{table.network.name} on {table.machine.name}, plan {table.plan.name}: "
             f"{what} time against Pr")
    return CurvesResult(optima=tuple(found), what=what, per=per, title=title)


@dataclass(frozen=True, repr=False)
class ScalingResult:
    """`gridcost plot scaling`: the best time against P of each plan, and the scaling limits
    (strong scaling only)."""

    sweeps: tuple[tuple[str, SweepResultArrays], ...]
    limits: dict[str, ScalingLimits] | None
    per: Per
    title: str

    def __repr__(self) -> str:
        return f"ScalingResult({self.title}: {len(self.sweeps)} plans)"

    def plot(self, ax: Axes | None = None) -> Figure:
        """Best time against P for each plan and pure batch, limits marked; titled
        :attr:`title`."""
        from costmodel.output.plot import figure_of
        from costmodel.output.plot import scaling as draw

        return figure_of(draw(dict(self.sweeps), self.per, self.limits, ax=ax,
                              title=self.title))


def scaling(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count,
            batch: Count = DEFAULT_BATCH, per_process_batch: Count | None = None,
            plan: str = "model-batch", overlap: OverlapName = "none",
            collectives: str | None = None, compute: ComputeName = "auto", per: Per = "epoch",
            efficiency: float = 0.5, bucket: BucketName | None = None,
            bucket_size: str | None = None, progress: Progress | None = None,
            command: str = "plot scaling") -> ScalingResult:
    """The sweep of every plan ``plan`` names over the P of ``P`` (`gridcost plot scaling`):
    strong scaling with ``batch`` fixed (the scaling limits at ``efficiency`` computed), weak
    with B = ``per_process_batch``·P (no limits).  Titled 'NET on MACHINE, B=…: best time
    against P'."""
    import numpy as np

    from costmodel.engine.grids import parse_processes
    from costmodel.engine.plans import choose_plans
    from costmodel.planning.search import scaling_limits
    from costmodel.planning.search import sweep as run_sweep

    plans = choose_plans(plan, command, all_allowed=True)
    ps = parse_processes(str(P))
    check_efficiency(efficiency)
    network, mach = load_network_like(net), load_machine_like(machine)
    settings = settings_of(overlap, collectives, compute, machine=mach, bucket=bucket,
                           bucket_size=bucket_size)
    if per_process_batch is not None:
        batches = ps * per_process_batch_of(per_process_batch, ps)
        label = f"B = {per_process_batch}·P"
    else:
        B = batch_of(batch)
        batches = np.full(ps.shape, B)
        label = f"B={B}"
    sweeps = tuple((p.name, run_sweep(network, mach, ps, batches, p, settings,
                                      progress=progress)) for p in plans)
    limits = None if per_process_batch is not None else {
        p.name: scaling_limits(network, mach, int(batches[0]), p, settings, efficiency)
        for p in plans}
    return ScalingResult(sweeps=sweeps, limits=limits, per=per,
                         title=f"{network.name} on {mach.name}, {label}: best time against P")


def _layers_text(names: tuple[str, ...]) -> str:
    if len(names) <= 3:
        return " ".join(names)
    return f"{names[0]} … {names[-1]} ({len(names)} layers)"


def timeline(net: NetworkLike, machine: MachineLike = DEFAULT_MACHINE, *, P: Count,
             pr: Count | None = None, batch: Count = DEFAULT_BATCH, plan: str = "model-batch",
             overlap: OverlapName = "none", collectives: str | None = None,
             compute: ComputeName = "auto", mapping: MappingName = "best",
             bucket: BucketName | None = None, bucket_size: str | None = None) -> TimelineResult:
    """One training iteration of one grid as a schedule (`gridcost timeline`); ``pr`` None
    takes the plan's best grid; ``plan`` 'per-layer' the per-layer optimum (``pr`` ignored).
    Always per iteration."""
    from costmodel.output.report import Table
    from costmodel.planning.iteration import iteration_schedule
    from costmodel.planning.search import check_batch

    n_proc = positive_int(P, "--P")
    B = check_batch(batch_of(batch))
    R = None if pr is None or plan == PER_LAYER else positive_int(pr, "--pr")
    if R is not None and n_proc % R:
        raise UsageError(f"--pr: expected a divisor of P={n_proc}, got {R}")
    network, mach = load_network_like(net), load_machine_like(machine)
    s = settings_of(overlap, collectives, compute, machine=mach, mapping=mapping, bucket=bucket,
                    bucket_size=bucket_size)
    tl = iteration_schedule(network, mach, n_proc, R, B, plan, s)
    record = tl.record()
    headers = ["start [ms]", "end [ms]", "duration [ms]", "lane", "what", "layers",
               "words [per process]", "group", "exposed [ms]"]
    rows: list[list[object]] = [
        [e.start_s * 1e3, e.end_s * 1e3, (e.end_s - e.start_s) * 1e3, e.lane, e.what,
         _layers_text(e.layers), e.words or None, e.group or None, e.exposed_s * 1e3]
        for e in tl.events]
    title = (f"{network.name} on {mach.name}: {tl.pr}×{tl.pc} grid, P={n_proc}, B={B}, plan "
             f"{tl.plan}, overlap {tl.overlap}"
             + (f", buckets {tl.bucket.label}" if tl.overlap == "backward" else ""))
    notes = [f"iteration {_n(record['total_s'] * 1e3)} ms = compute "
             f"{_n(record['compute_s'] * 1e3)} + exposed communication "
             f"{_n(record['exposed_comm_s'] * 1e3)} (blocking "
             f"{_n(record['blocking_comm_s'] * 1e3)}, waits {_n(record['wait_s'] * 1e3)}, tail "
             f"{_n(record['tail_s'] * 1e3)}); {_n(record['hidden_gradient_s'] * 1e3)} of "
             f"{_n(record['gradient_comm_s'] * 1e3)} ms gradient all-reduce hidden in "
             f"{record['buckets']} buckets",
             "lanes 'pr' and 'gradient' are one communication channel per process"]
    if not tl.feasible:
        notes.append(f"INFEASIBLE grid: {tl.reason}")
    settings: JSONObject = {"P": n_proc, "pr": R, "batch": B, "plan": plan, "overlap": overlap,
                            "collectives": s.collectives, "compute": compute,
                            **_mapping_settings(mach, mapping), **_bucket_settings(s)}
    return TimelineResult(tables=(Table(headers, rows, title, notes),), settings=settings,
                          network_input=net, machine_input=machine, schedule=tl)


def import_network(source: str, input: str = "3x224x224",
                   kwargs: str | None = None, skip_unsupported: bool = False) -> ImportResult:
    """Trace a network from PyTorch or ONNX without weights (`gridcost import`): ``source``
    torchvision:NAME, timm:NAME, package.module:callable or an .onnx path; ``input`` one
    sample's CxHxW; ``kwargs`` the constructor's keyword arguments as a JSON object."""
    from costmodel.inputs.importers import import_network as trace
    from costmodel.inputs.importers import parse_input, parse_kwargs

    text, traced, network = trace(source, parse_input(input), parse_kwargs(kwargs),
                                  skip_unsupported)
    return ImportResult(source=source, yaml=text, network=network,
                        skipped=tuple(_skipped(traced)))


def _skipped(traced: Trace) -> list[str]:
    return list(traced.skipped)


def plan_of(name: str) -> Plan:
    """The fixed plan called ``name`` (costmodel.engine.plans), for code that calls the search."""
    from costmodel.engine.plans import plan

    return plan(name)


# --------------------------------------------------------------------------- measurements


@dataclass(frozen=True, repr=False)
class CalibrationResult:
    """`gridcost calibrate import|run`: α and β fitted to measured collectives, the fit table,
    and the machine profile YAML (``profile_yaml``; the CLI writes it with --profile)."""

    record: CalibrationRecord | EmulatedCalibrationRecord
    table: Table
    profile_yaml: str
    warnings: tuple[str, ...]
    has_plot: bool = True
    """Whether :meth:`plot` can draw the fit (not for the levels of an emulated cluster)."""

    def to_dict(self) -> JSONObject:
        """What `calibrate ... --format json` prints, parsed (without --profile's 'profile')."""
        return cast(JSONObject, _json(self.record))

    def profile_for(self, path: str) -> str:
        """The profile YAML to write to ``path``, checked to load back there: a UsageError
        ('nothing written') when the loader would refuse it, so that no caller writes a profile
        gridcost cannot read (costmodel.measure.calibration.loadable_profile)."""
        from costmodel.measure.calibration import loadable_profile

        return loadable_profile(self.profile_yaml, path)

    def written_to(self, path: str) -> CalibrationResult:
        """This result as reported after its profile was written to ``path``: the record names
        the file ('profile') and the table ends with how to use it."""
        from costmodel.output.report import Table

        record = self.record.copy()
        record["profile"] = path
        table = self.table
        notes = [*table.notes, f"wrote machine profile {path} (use: --machine {path})"]
        return replace(self, record=record, table=Table(table.headers, table.rows, table.title,
                                                        notes))

    def __repr__(self) -> str:
        warned = f", {len(self.warnings)} warnings" if self.warnings else ""
        record = self.record
        if _fitted(record):
            head = f"α {_n(record['alpha_s'])} s, bandwidth {_n(record['bandwidth_Bps'])} B/s"
            return (f"CalibrationResult(\n  {head}\n  {len(record['fits'])} series fitted"
                    + warned + "\n)")
        levels = record["levels"] if _emulated(record) else []
        fits = "; ".join(f"{lv['name']} α {_n(lv['alpha_s'])} s, bandwidth "
                         f"{_n(lv['bandwidth_Bps'])} B/s" for lv in levels)
        return f"CalibrationResult(\n  {fits}\n  {len(levels)} levels fitted{warned}\n)"

    def plot(self, ax: Axes | None = None) -> Figure:
        """Measured times with the fits (top) and relative residuals (bottom); its own figure
        (``ax`` must be None)."""
        from costmodel.output.plot import calibration_fits, figure_of

        if ax is not None:
            raise UsageError("plot: the calibration draws two panels; call plot() without ax")
        if not _fitted(self.record):
            raise UsageError("plot: an emulated cluster's calibration fits one α, β per level "
                             "and has no single fit to draw; see its table")
        return figure_of(calibration_fits(self.record["points"])[0])


def _emulated(record: CalibrationRecord | EmulatedCalibrationRecord
              ) -> TypeGuard[EmulatedCalibrationRecord]:
    """Whether a calibration record is an emulated cluster's (one fit per level)."""
    return "levels" in record


def _fitted(record: CalibrationRecord | EmulatedCalibrationRecord
            ) -> TypeGuard[CalibrationRecord]:
    """Whether a calibration record is one α, β fit (not an emulated cluster's levels)."""
    return "levels" not in record


def fit_series(series: Sequence[Series], *, name: str, description: str,
               collectives: str = "paper", flop_rate: float | None = None,
               provenance: Sequence[str] = (), notes: Sequence[str] = (),
               extra: JSONObject | None = None,
               accept_implausible: bool = False) -> CalibrationResult:
    """Fit α and β to ``series`` (costmodel.measure.series.Series) and check the fit's plausibility:
    an implausible fit is refused (UsageError) unless ``accept_implausible``, then kept with
    warnings in the table, the record and the profile.  ``notes`` end the table's notes;
    ``extra`` adds keys to the record."""
    from costmodel.measure.calibration import calibrate as fit
    from costmodel.measure.calibration import (
        calibration_record,
        fits_table,
        implausibilities,
        profile_yaml,
    )
    from costmodel.output.report import Table

    settings_of("none", collectives, "none")
    cal = fit(list(series), collectives)
    problems = implausibilities(cal, list(series))
    if problems and not accept_implausible:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"implausible fit, nothing written: {problems[0]}{more}; measure "
                         "larger messages or more repetitions, or pass --accept-implausible "
                         "to write it with warnings")
    table = fits_table(cal, f"calibration of {name} ({len(series)} series)")
    fitted = calibration_record(cal)
    fitted["warnings"] = list(problems)
    # ``extra``: what the caller measured besides (calibrate run: notes, idle, oversubscribed)
    record = cast(CalibrationRecord, {**fitted, **(extra or {})})
    all_notes = [*table.notes,
                 *(f"WARNING: implausible fit, written because of --accept-implausible: {p}"
                   for p in problems), *notes]
    return CalibrationResult(
        record=record, table=Table(table.headers, table.rows, table.title, all_notes),
        profile_yaml=profile_yaml(cal, name, flop_rate, description, list(provenance),
                                  problems),
        warnings=tuple(problems))


@dataclass(frozen=True)
class ImportedSeries:
    """Series read from benchmark logs or gridcost JSON, with what the profile says of them."""

    series: tuple[Series, ...]
    name: str
    description: str
    flop_rate: float | None
    provenance: tuple[str, ...]
    notes: tuple[str, ...]


def logs_series(files: Sequence[str | os.PathLike[str]], *, collective: str | None = None,
                procs: Count | None = None, word_bytes: Count = 4, flop_rate: str | None = None,
                name: str | None = None, statistic: str = "mean",
                texts: Sequence[str] | None = None) -> ImportedSeries:
    """The series of nccl-tests or OSU logs, or of gridcost's JSON (`calibrate run --raw`,
    `validate --raw`), each file's idle-probe note, and the profile's name and description.
    ``texts``: the files' texts when the caller has read them already."""
    from pathlib import Path

    from costmodel.limits import WORD_BYTES
    from costmodel.measure.calibration import idle_note, idle_probe_of, parse_logs
    from costmodel.units import parse_quantity

    check_profile_name(name)
    p = positive_int(procs, "--procs") if procs is not None else None
    w = positive_int(word_bytes, "--word-bytes", WORD_BYTES)
    rate = parse_quantity(flop_rate, "flop_rate", "", "--flop-rate") if flop_rate else None
    series: list[Series] = []
    notes = []
    paths = [os.fspath(f) for f in files]
    for index, path in enumerate(paths):
        text = texts[index] if texts is not None else read_text(path, LOG_EXPECTED)
        series += parse_logs(text, path, collective, p, w, statistic)
        idle = idle_probe_of(text)
        if idle is not None:
            notes.append(f"{Path(path).name}: {idle_note(idle)[0]}")
    return ImportedSeries(
        series=tuple(series), name=name or "imported",
        description=f"α–β fitted to {len(paths)} benchmark log(s)", flop_rate=rate,
        provenance=("Fitted to: " + ", ".join(Path(f).name for f in paths),),
        notes=tuple(notes))


def calibrate(files: Sequence[str | os.PathLike[str]], *, collective: str | None = None,
              procs: Count | None = None, word_bytes: Count = 4, flop_rate: str | None = None,
              collectives: str = "paper", name: str | None = None, statistic: str = "mean",
              accept_implausible: bool = False, emulate: str | None = None
              ) -> CalibrationResult:
    """Fit α and β to nccl-tests or OSU logs, or to gridcost's JSON (`calibrate run --raw`,
    `validate --raw`): `gridcost calibrate import`.  The raw JSON of `calibrate run --emulate`
    is fitted again level by level (:func:`fit_emulated`; ``emulate`` names the emulation
    for a file written before gridcost stored it).  Measuring this host (`calibrate run`)
    needs torch and processes: costmodel.measure.live.calibration_run."""
    texts = [read_text(os.fspath(files[0]), LOG_EXPECTED)] if len(files) == 1 else None
    emulated_raw = _emulated_raw(os.fspath(files[0]), texts[0]) if texts else None
    if emulated_raw is not None:
        return fit_emulated(emulated_raw, emulate=emulate, collectives=collectives, name=name,
                            statistic=statistic, accept_implausible=accept_implausible)
    if emulate is not None:
        raise UsageError("--emulate: only for the raw JSON of `calibrate run --emulate` "
                         "(node and network series)")
    found = logs_series(files, collective=collective, procs=procs, word_bytes=word_bytes,
                        flop_rate=flop_rate, name=name, statistic=statistic, texts=texts)
    return fit_series(found.series, name=found.name, description=found.description,
                      collectives=collectives, flop_rate=found.flop_rate,
                      provenance=found.provenance, notes=found.notes,
                      accept_implausible=accept_implausible)


LOG_EXPECTED = "a readable text log"
"""What `calibrate import` says an unreadable FILE should have been."""


def _emulated_raw(path: str, text: str) -> EmulatedRaw | None:
    """``text`` (of ``path``) as the raw JSON of `calibrate run --emulate` (an object with
    'node' and 'network'), else None."""
    if not text.lstrip().startswith("{"):
        return None
    from costmodel.inputs.loaders import load_json

    try:
        data = load_json(text, path)
    except ValueError:
        return None
    if not isinstance(data, dict) or not {"node", "network"} <= set(data):
        return None
    return EmulatedRaw(path, data)


@dataclass(frozen=True)
class EmulatedRaw:
    """The raw JSON of `calibrate run --emulate` (what ``--raw`` writes): the ``node`` and
    ``network`` microbenchmarks and, since gridcost stores it, the ``emulation`` spec."""

    source: str
    data: dict[str, object]


def fit_emulated(raw: EmulatedRaw, *, emulate: str | None = None, collectives: str = "paper",
                 name: str | None = None, statistic: str = "mean",
                 accept_implausible: bool = False) -> CalibrationResult:
    """The levels of an emulated cluster fitted from its raw measurement
    (costmodel.measure.emulated): calibrate's joint α, β per level under ``collectives``' forms,
    refused when implausible unless ``accept_implausible`` (then with warnings).  ``emulate``
    ('nodes=N, ppn=K, link=RATE') is the emulation it was measured on, needed where the raw does not
    store it."""
    from costmodel.measure import emulated
    from costmodel.measure.calibration import bench_series
    from costmodel.measure.emulate import parse_emulation
    from costmodel.output.report import Table

    check_profile_name(name)
    settings_of("none", collectives, "none")
    stored = raw.data.get("emulation")
    text = emulate if emulate is not None else stored
    if not isinstance(text, str):
        raise UsageError(f"{raw.source}: an emulated cluster's measurement without its "
                         "emulation; give --emulate 'nodes=N, ppn=K, link=RATE' as it was run")
    spec = parse_emulation(text)
    inside, across = raw.data["node"], raw.data["network"]
    if not isinstance(across, dict) or not (inside is None or isinstance(inside, dict)):
        raise UsageError(f"{raw.source}: expected 'node' and 'network' objects of "
                         "`calibrate run --emulate --raw`")
    source = f"torch.distributed {across.get('backend')}, emulated"
    levels = emulated.fit_levels(bench_series(inside, source, statistic) if inside else [],
                                 bench_series(across, source, statistic), collectives)
    problems = emulated.level_problems(levels)
    if problems and not accept_implausible:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"implausible fit, nothing written: {problems[0]}{more}; measure "
                         "larger messages or more repetitions, or pass --accept-implausible")
    profile_name = name or f"emulated-{spec.nodes}x{spec.ppn}"
    where = (f"emulated cluster of {spec.nodes} nodes × {spec.ppn} processes, links "
             f"{spec.rate_text} (tbf), one host")
    table = emulated.levels_table(levels, spec.ppn, spec.rate_Bps,
                                  f"calibration of {profile_name}: {where}")
    record = emulated.record(levels, spec.ppn, spec.rate_Bps)
    record["warnings"] = problems
    notes = list(table.notes) + [f"WARNING: {p}" for p in problems]
    profile = emulated.profile_yaml(levels, spec.ppn, spec.rate_Bps, profile_name,
                                    float(str(across["flop_rate"])),
                                    f"α–β measured on an {where}",
                                    [emulated.provenance(spec.text, inside, across, statistic,
                                                         collectives)], problems)
    return CalibrationResult(record=record,
                             table=Table(table.headers, table.rows, table.title, notes),
                             profile_yaml=profile, warnings=tuple(problems), has_plot=False)


def check_profile_name(name: str | None) -> None:
    """--name of a calibrated profile: printable text (a control character would be a second
    line in every table and comment); UsageError otherwise."""
    if name is not None and (not name.strip() or not name.isprintable()):
        raise UsageError(f"--name: expected a printable, non-empty name, got {name!r}")


def read_text(path: str, expected: str) -> str:
    """The UTF-8 text of ``path`` through the loaders' one safe reader (size cap, strict UTF-8,
    one-line errors naming the file and ``expected``)."""
    from costmodel.inputs.loaders import read_text as read_input

    return read_input(path, expected=expected)


@dataclass(frozen=True, repr=False)
class ValidationResult:
    """`gridcost validate`: measured training steps against the model's prediction."""

    record: ValidationRecord
    tables: tuple[Table, ...]

    @property
    def ok(self) -> bool:
        """The numerics and the volume check passed (the time targets are reported only)."""
        summary = self.record["summary"]
        return summary["numerics_ok"] and summary["volumes_ok"]

    def to_dict(self) -> JSONObject:
        """What `validate --format json` prints, parsed."""
        return cast(JSONObject, _json(self.record))

    def __repr__(self) -> str:
        runs = self.record["runs"]
        return (f"ValidationResult(\n  {len(runs)} runs; numerics and volumes "
                f"{'ok' if self.ok else 'FAILED'}\n)")

    def plot(self, ax: Axes | None = None) -> Figure:
        """Predicted against measured communication per run."""
        from costmodel.output.plot import figure_of, predicted_vs_measured

        return figure_of(predicted_vs_measured(self.record["runs"], ax))


def validation_of(measured: dict[str, object], machines: dict[int | None, Machine], *,
                  collectives: str = "paper", statistic: str = "mean",
                  ddp: bool = False) -> ValidationResult:
    """Analyse measured validation steps (what `validate --raw` writes) against the model
    with ``machines`` ({P or None for any P: Machine}); with ``ddp``, the DDP steps too."""
    from costmodel.measure.validation import analyse_per_P, load_validation_network, tables

    network = load_validation_network()
    # the measurements, as parse_validation_raw or the measuring workers give them
    raw = cast(RawValidationRecord, measured)
    # on a profile with levels the in-step fit is per level (costmodel.measure.levelfit)
    analysis = analyse_per_P(raw, network, machines, collectives, statistic)
    extra = []
    if ddp and raw.get("ddp"):
        from costmodel.measure.validation import ddp_analysis, ddp_table

        records = []
        for result in raw.get("ddp", []):
            P = int(result["world"])
            profile = machines.get(P, machines.get(None))
            if profile is None:
                raise UsageError(f"--machine: no profile for P = {P}")
            records.append(ddp_analysis(result, network, profile, collectives, statistic))
        analysis["ddp"] = records
        extra.append(ddp_table(records, ", ".join(sorted({m.name for m in machines.values()}))))
    return ValidationResult(record=analysis, tables=(*tables(analysis), *extra))


def validate(machine: MachineLike | dict[int, MachineLike], raw: str | os.PathLike[str], *,
             plan: str = "all", collectives: str = "paper", statistic: str = "mean",
             ddp: bool = False) -> ValidationResult:
    """`gridcost validate --from-raw RAW`: the measurements an earlier ``validate --raw`` wrote,
    predicted with ``machine`` (one profile, or {P: profile}).  Running new measurements needs
    torch and processes: costmodel.measure.live.validation_run."""
    from costmodel.engine.plans import choose_plans
    from costmodel.measure.validation import PLANS, parse_validation_raw

    settings_of("none", collectives, "none")
    machines: dict[int | None, Machine] = (
        {k: load_machine_like(v) for k, v in machine.items()} if isinstance(machine, dict)
        else {None: load_machine_like(machine)})
    plans = [p.name for p in choose_plans(plan, "validate", all_allowed=True, fixed=PLANS)]
    path = os.fspath(raw)
    measured = parse_validation_raw(read_text(path, "the JSON of 'validate --raw'"), path, plans)
    return validation_of(measured, machines, collectives=collectives, statistic=statistic,
                         ddp=ddp)


# --------------------------------------------------------------------------- catalogues


@dataclass(frozen=True, repr=False)
class CatalogueResult:
    """`gridcost nets` or `gridcost machines`: one row (and one JSON record) per bundled file."""

    tables: tuple[Table, ...]
    record: list[JSONObject]

    def to_dict(self) -> JSONObject:
        """The records, under 'items' (what `--format json` prints is the bare list)."""
        return {"items": _json(self.record)}

    def __repr__(self) -> str:
        return f"CatalogueResult({', '.join(str(r['name']) for r in self.record)})"


def network_catalogue() -> CatalogueResult:
    """The bundled networks (`gridcost nets`): parameters, weighted layers (conv, fc), MACs per
    sample, input shape, description."""
    from costmodel.inputs.loaders import bundled_names, load_network
    from costmodel.output.report import Table

    rows, records = [], []
    for name in bundled_names("networks"):
        n = load_network(name)
        convs = sum(layer.kind == "conv" for layer in n.layers)
        rows.append([n.name, n.params, len(n.layers), convs, len(n.layers) - convs,
                     round(n.macs / 1e9, 3), "×".join(map(str, n.input_shape)), n.description])
        records.append(cast(JSONObject, {
            "name": n.name, "params": n.params, "weighted_layers": len(n.layers),
            "conv_layers": convs, "fc_layers": len(n.layers) - convs,
            "gmacs_per_sample": n.macs / 1e9, "input": list(n.input_shape),
            "description": n.description}))
    headers = ["name", "parameters", "weighted layers", "conv", "fc", "GMAC/sample",
               "input H×W×C", "description"]
    return CatalogueResult(tables=(Table(headers, rows),), record=records)


def machine_catalogue() -> CatalogueResult:
    """The bundled machine profiles (`gridcost machines`): α, bandwidth, word size, flop rate,
    memory, compute tables, γ, collectives, levels and per-collective α, bandwidth."""
    from costmodel.inputs.loaders import bundled_names, load_machine
    from costmodel.output.report import Table, per_collective_record, per_collective_text
    from costmodel.units import format_bytes, format_rate, format_seconds

    rows, records = [], []
    for name in bundled_names("machines"):
        m = load_machine(name)
        tables = ", ".join(t.name for t in m.compute_tables) or "—"
        memory = format_bytes(m.memory_bytes) if m.memory_bytes else "—"
        rows.append([m.name, format_seconds(m.alpha_s), format_rate(m.bandwidth_Bps, "B/s"),
                     m.word_bytes, format_rate(m.flop_rate, "FLOP/s"), memory, tables,
                     m.gamma_s_per_word, m.collectives,
                     "; ".join(f"{lv.name}" + (f" {lv.processes}" if lv.processes else "")
                               + f" {format_seconds(lv.alpha_s)} "
                               + format_rate(lv.bandwidth_Bps, "B/s") for lv in m.levels)
                     or "—", per_collective_text(m) or "—"])
        records.append(cast(JSONObject, {
            "name": m.name, "alpha_s": m.alpha_s, "bandwidth_Bps": m.bandwidth_Bps,
            "word_bytes": m.word_bytes, "flop_rate": m.flop_rate,
            "memory_bytes": m.memory_bytes,
            "compute_tables": [t.name for t in m.compute_tables],
            "description": m.description,
            "gamma_s_per_word": m.gamma_s_per_word, "collectives": m.collectives,
            "levels": [{"name": lv.name, "processes": lv.processes,
                        "alpha_s": lv.alpha_s, "bandwidth_Bps": lv.bandwidth_Bps}
                       for lv in m.levels],
            "per_collective": per_collective_record(m)}))
    headers = ["name", "α", "bandwidth", "word [B]", "flop rate", "memory", "compute tables",
               "γ [s/word]", "collectives", "levels (processes, α, bandwidth)",
               "per collective (α, bandwidth; per group size p)"]
    return CatalogueResult(tables=(Table(headers, rows),), record=records)


# --------------------------------------------------------------------------- published runs


@dataclass(frozen=True, repr=False)
class PublishedResult:
    """`gridcost published`: predicted vs measured efficiency of published data-parallel runs
    (the runs table, then the error per overlap mode)."""

    tables: tuple[Table, ...]
    record: JSONObject

    def to_dict(self) -> JSONObject:
        """What `published --format json` prints, parsed."""
        return cast(JSONObject, _json(self.record))

    def __repr__(self) -> str:
        runs = cast(list[JSONObject], self.record["runs"])
        return f"PublishedResult({len(runs)} points)"

    def plot(self, ax: Axes | None = None) -> Figure:
        """Predicted against measured scaling efficiency per run and overlap mode."""
        from costmodel.output.plot import figure_of, published_efficiency

        runs = cast(list[dict[str, object]], self.record["runs"])
        return figure_of(published_efficiency(runs, ax))


def published(runs: str | os.PathLike[str] | None = None) -> PublishedResult:
    """Evaluate the published runs of ``runs`` (default: the bundled docs/published/runs.yaml;
    machine profiles from machines/ beside it) under each overlap mode."""
    from costmodel.measure.published import (
        errors_table,
        evaluate_runs,
        load_runs,
        record,
        runs_table,
    )

    loaded = load_runs(None if runs is None else os.fspath(runs))
    results = evaluate_runs(loaded)
    return PublishedResult(tables=(runs_table(results), errors_table(results)),
                           record=cast(JSONObject, record(loaded, results)))
