"""Published runs: predicted vs measured scaling efficiency of data-parallel CNN training
(docs/validation.md, "Published runs").

Inputs (``docs/published/``): ``runs.yaml`` — measured points with their sources — and one
machine profile per stated hardware in ``machines/``.  Every run is pure data parallelism, a
1 × P grid with a fixed per-GPU batch b (global batch b·P), and its gradients are bucketed as
its framework does it (:mod:`costmodel.engine.buckets` presets: ``ddp``, ``horovod``, ``layer``).

**Compute input.**  The one-GPU throughput X₁ (images/s) of a run fixes its compute: the
machine's flop rate is replaced by X₁ · 6 · MACs (docs/model.md §7 charges 3·2·MACs FLOPs per
sample), so the one-GPU iteration costs exactly b / X₁ seconds and a P-GPU iteration b / X₁ of
compute plus what the overlap mode leaves of the communication.

**Efficiency.**  Weak scaling over P0 → P processes (P0 = 1 unless a run gives another
reference): predicted E = T(P0) / T(P), T the iteration time of the mode (``none``, ``batch``
or ``backward``); measured E = X_P / (P/P0 · X_P0), or the efficiency the source states.  The
error is predicted − measured, in percentage points.

Nothing here is fitted to the measurements: bucket sizes are the frameworks' defaults, link
rates come from the machine profiles (datasheets, or assumptions stated in their comments).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from costmodel.errors import SpecError
from costmodel.inputs.loaders import Fields, _check_version, bundled_folder, is_file, read_document
from costmodel.inputs.specs import Machine, Network
from costmodel.output.report import Table
from costmodel.records import PublishedRecord

MODES = ("none", "batch", "backward")
"""The overlap modes compared, the paper's two bounds and the schedule."""

DEFAULT_RUNS = Path(str(bundled_folder("published_runs") / "runs.yaml"))
"""The stored runs (docs/published/runs.yaml; a wheel carries them as costmodel.published_runs)."""

BUCKETS = ("ddp", "horovod", "layer")
_RUN_KEYS = {"id", "source", "where", "network", "machine", "framework", "bucket", "batch",
             "processes", "reference_processes", "throughput", "efficiency", "single_gpu"}


@dataclass(frozen=True)
class Source:
    """Where measurements were published: its title and address (with the revision read)."""

    key: str
    title: str
    address: str


@dataclass(frozen=True)
class PublishedRun:
    """One measured point: P processes of a data-parallel run and its scaling efficiency.

    ``measured_efficiency`` is the source's number, or throughput / (P · single-GPU
    throughput) when the run gives its throughput (``throughput`` is then set).
    """

    id: str
    source: str
    where: str
    network: str
    machine: str
    framework: str
    bucket: str
    batch: int
    processes: int
    reference_processes: int
    measured_efficiency: float
    single_gpu_throughput: float
    single_gpu_origin: str
    throughput: float | None = None


@dataclass(frozen=True)
class PublishedRuns:
    """The file's sources and runs, and the folder its machine profiles are read from."""

    source: str
    sources: dict[str, Source]
    runs: tuple[PublishedRun, ...]
    machines_folder: Path


def _positive(f: Fields, key: str, upper: float = float("inf")) -> float:
    value = f.raw(key, required=True)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < value <= upper:
        bound = "" if upper == float("inf") else f" and ≤ {upper:g}"
        raise f.error(key, f"a number > 0{bound}", value)
    return float(value)


def _source(key: object, value: object, origin: str) -> Source:
    if not isinstance(key, str) or not key.strip():
        raise SpecError(origin, "sources", "names that are non-empty strings", key)
    f = Fields(value, origin, f"sources.{key}", {"title", "address"})
    return Source(key, f.text("title"), f.text("address"))


def _run(value: object, origin: str, index: int, sources: dict[str, Source]) -> PublishedRun:
    f = Fields(value, origin, f"runs[{index}]", _RUN_KEYS)
    source = f.text("source")
    if source not in sources:
        raise f.error("source", f"one of the sources {', '.join(sorted(sources))}", source)
    processes = f.integer("processes", minimum=2)
    reference = f.integer("reference_processes", default=1)
    if reference >= processes or processes % reference:
        raise f.error("reference_processes", f"a divisor of processes ({processes}) smaller "
                      "than it", reference)
    single = Fields(f.raw("single_gpu", required=True), origin, f.at("single_gpu"),
                    {"throughput", "origin"})
    single_throughput = _positive(single, "throughput")
    if f.has("throughput") == f.has("efficiency"):
        raise SpecError(origin, f.path, "exactly one of throughput (images/s at P) and "
                        "efficiency (the source's scaling efficiency)")
    throughput = None
    if f.has("throughput"):
        if reference != 1:
            raise f.error("throughput", "efficiency instead: a throughput is compared with the "
                          "single-GPU one, so reference_processes must be 1")
        throughput = _positive(f, "throughput")
        efficiency = throughput / (processes * single_throughput)
    else:
        efficiency = _positive(f, "efficiency", upper=1.5)
    return PublishedRun(
        id=f.text("id"), source=source, where=f.text("where"), network=f.text("network"),
        machine=f.text("machine"), framework=f.text("framework"),
        bucket=f.choice("bucket", BUCKETS), batch=f.integer("batch"), processes=processes,
        reference_processes=reference, measured_efficiency=efficiency,
        single_gpu_throughput=single_throughput, single_gpu_origin=single.text("origin"),
        throughput=throughput)


def load_runs(path: str | Path | None = None) -> PublishedRuns:
    """Read and check a runs file (default: docs/published/runs.yaml of the checkout).

    Every error is one line naming the file and the field (costmodel.errors.SpecError)."""
    path = Path(DEFAULT_RUNS if path is None else path)
    if not is_file(path):
        raise SpecError(str(path), "", "an existing runs file (give it with --runs)",
                        "no such file")
    doc = read_document(str(path), "machines")
    top = Fields(doc.data, doc.source, "", {"version", "sources", "runs"})
    _check_version(top)
    raw_sources = top.raw("sources", required=True)
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise top.error("sources", "a non-empty mapping of source names to {title, address}",
                        type(raw_sources).__name__)
    sources = {str(k): _source(k, v, doc.source) for k, v in raw_sources.items()}
    items = top.items("runs")
    if not items:
        raise top.error("runs", "a non-empty list of runs", items)
    runs = tuple(_run(item, doc.source, i, sources) for i, item in enumerate(items))
    seen: set[str] = set()
    for i, run in enumerate(runs):
        if run.id in seen:
            raise SpecError(doc.source, f"runs[{i}].id", "an id no other run has", run.id)
        seen.add(run.id)
    return PublishedRuns(doc.source, sources, runs, path.resolve().parent / "machines")


def machine_path(runs: PublishedRuns, name: str) -> str:
    """The profile ``name`` of a run: ``machines/NAME.yaml`` beside the runs file, else a
    bundled machine of that name."""
    local = runs.machines_folder / f"{name}.yaml"
    return str(local) if local.is_file() else name


# --------------------------------------------------------------------------- predictions


@dataclass(frozen=True)
class PointResult:
    """One run: measured and predicted efficiency per mode (fractions), and the iteration
    times (s) of the mode at P0 and at P."""

    run: PublishedRun
    predicted: dict[str, float]
    iteration_s: dict[str, tuple[float, float]]
    across_nodes: bool = False
    """Whether the machine profile has levels (the run spans nodes)."""

    @property
    def missing_s(self) -> float:
        """Seconds per iteration at P that the measurement takes beyond the ``backward``
        prediction, T(P0) · (1/E_measured − 1/E_backward) with T(P0) the predicted reference
        iteration (b/X₁ from one GPU); negative: the model is the slower."""
        reference_s = self.iteration_s["backward"][0]
        return reference_s * (1.0 / self.run.measured_efficiency
                              - 1.0 / self.predicted["backward"])

    def error_pp(self, mode: str) -> float:
        """Predicted − measured efficiency, percentage points."""
        return 100.0 * (self.predicted[mode] - self.run.measured_efficiency)


def predict(run: PublishedRun, network: Network, machine: Machine) -> PointResult:
    """Predicted scaling efficiency of ``run`` under every mode of :data:`MODES`.

    The machine's flop rate becomes X₁ · 6 · MACs (module docstring), so one GPU computes an
    iteration of b samples in b / X₁ s; the grids are 1 × P0 and 1 × P with global batches
    b·P0 and b·P; E = T(P0) / T(P)."""
    from costmodel.engine.buckets import bucketing
    from costmodel.engine.cost import evaluate_totals
    from costmodel.engine.grids import Grids
    from costmodel.engine.plans import plan

    rated = replace(machine, flop_rate=run.single_gpu_throughput * 6.0 * network.macs)
    p = np.array([run.reference_processes, run.processes], dtype=np.int64)
    grids = Grids(np.ones(2, dtype=np.int64), p, run.batch * p)
    predicted: dict[str, float] = {}
    times: dict[str, tuple[float, float]] = {}
    for mode in MODES:
        totals = evaluate_totals(network, rated, grids, plan("model-batch"), mode,  # type: ignore[arg-type]
                                 compute="flops", bucket=bucketing(run.bucket))
        before, after = float(totals.total_s[0]), float(totals.total_s[1])
        predicted[mode] = before / after
        times[mode] = (before, after)
    return PointResult(run, predicted, times, machine.hierarchical)


def evaluate_runs(runs: PublishedRuns) -> list[PointResult]:
    """:func:`predict` for every run, loading each network and machine once."""
    from costmodel.inputs.loaders import load_machine, load_network

    networks: dict[str, Network] = {}
    machines: dict[str, Machine] = {}
    out = []
    for run in runs.runs:
        if run.network not in networks:
            networks[run.network] = load_network(run.network)
        if run.machine not in machines:
            machines[run.machine] = load_machine(machine_path(runs, run.machine))
        out.append(predict(run, networks[run.network], machines[run.machine]))
    return out


@dataclass(frozen=True)
class ModeError:
    """Absolute error of one mode over the runs, percentage points."""

    mode: str
    mean_pp: float
    median_pp: float
    max_pp: float
    mean_signed_pp: float


def mode_errors(results: list[PointResult]) -> list[ModeError]:
    """Mean, median and largest |predicted − measured| per mode, and the mean signed error."""
    out = []
    for mode in MODES:
        errors = [r.error_pp(mode) for r in results]
        absolute = [abs(e) for e in errors]
        out.append(ModeError(mode, statistics.fmean(absolute), statistics.median(absolute),
                             max(absolute), statistics.fmean(errors)))
    return out


# --------------------------------------------------------------------------- tables, record


def _pct(fraction: float) -> float:
    return round(100.0 * fraction, 1)


def runs_table(results: list[PointResult]) -> Table:
    """One row per run: measured and predicted efficiency (%) and the errors (pp)."""
    rows = []
    for r in results:
        run = r.run
        p = f"{run.reference_processes}→{run.processes}" if run.reference_processes > 1 \
            else str(run.processes)
        rows.append([run.id, run.network, run.machine, run.bucket, run.batch, p,
                     _pct(run.measured_efficiency),
                     *(_pct(r.predicted[m]) for m in MODES),
                     *(round(r.error_pp(m), 1) for m in MODES),
                     round(1e3 * r.missing_s, 1)])
    headers = ["run", "network", "machine", "bucket", "b (/GPU)", "P",
               "measured (%)", *(f"{m} (%)" for m in MODES), *(f"{m} err (pp)" for m in MODES),
               "beyond backward (ms/iter)"]
    return Table(headers, rows, "published runs: scaling efficiency, predicted vs measured")


def errors_table(results: list[PointResult]) -> Table:
    """Mean and median absolute error per mode, percentage points: over all runs, the runs
    within one node (a flat machine profile) and the runs across nodes (a profile with
    levels)."""
    subsets = [("all", results),
               ("one node", [r for r in results if not r.across_nodes]),
               ("across nodes", [r for r in results if r.across_nodes])]
    rows = []
    for name, subset in subsets:
        if not subset:
            continue
        rows += [[name, len(subset), e.mode, round(e.mean_pp, 1), round(e.median_pp, 1),
                  round(e.max_pp, 1), round(e.mean_signed_pp, 1)] for e in mode_errors(subset)]
    return Table(["runs", "count", "mode", "mean abs err (pp)", "median abs err (pp)",
                  "max abs err (pp)", "mean signed err (pp)"], rows,
                 f"published runs: error per mode over {len(results)} runs")


def record(runs: PublishedRuns, results: list[PointResult]) -> PublishedRecord:
    """Everything at full precision, for JSON."""
    return {
        "runs_file": runs.source,
        "sources": {k: {"title": s.title, "address": s.address}
                    for k, s in runs.sources.items()},
        "runs": [{
            "id": r.run.id, "source": r.run.source, "where": r.run.where,
            "network": r.run.network, "machine": r.run.machine,
            "framework": r.run.framework, "bucket": r.run.bucket,
            "batch_per_gpu": r.run.batch, "processes": r.run.processes,
            "reference_processes": r.run.reference_processes,
            "throughput_img_s": r.run.throughput,
            "single_gpu_throughput_img_s": r.run.single_gpu_throughput,
            "single_gpu_origin": r.run.single_gpu_origin,
            "measured_efficiency": r.run.measured_efficiency,
            "predicted_efficiency": dict(r.predicted),
            "error_pp": {m: r.error_pp(m) for m in MODES},
            "across_nodes": r.across_nodes,
            "beyond_backward_s": r.missing_s,
            "iteration_s": {m: {"reference": t[0], "at_P": t[1]}
                            for m, t in r.iteration_s.items()},
        } for r in results],
        "errors_pp": {e.mode: {"mean_abs": e.mean_pp, "median_abs": e.median_pp,
                               "max_abs": e.max_pp, "mean_signed": e.mean_signed_pp}
                      for e in mode_errors(results)},
    }
