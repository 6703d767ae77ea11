"""Live measurements: what `gridcost calibrate run` and `gridcost validate` do between parsing
their options and rendering the result.

Both check every option before any process starts, then measure with torch.distributed
(costmodel.measure: local processes, the torchrun world, or an emulated cluster in network
namespaces) and hand back a :class:`Measured`: the raw measurements as JSON text (what --raw
writes, re-read by `calibrate import` and `validate --from-raw`) and, on request, the fit or the
analysis.  The two stay apart so that a caller can keep the measurements even when the fit is
refused (an implausible fit, a profile that would not load).  Under torchrun every rank
measures and only rank 0 gets a result: the others get None.

No torch at import; :func:`costmodel.measure.require_torch` names the extra to install.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from costmodel.errors import UsageError
from costmodel.limits import MAX_LOCAL_PROCESSES, MAX_REPETITIONS, Limit

if TYPE_CHECKING:
    from costmodel.api import CalibrationResult, ValidationResult
    from costmodel.inputs.specs import Machine
    from costmodel.progress import Progress

R = TypeVar("R")

FACTOR = Limit(1024, "message sizes growing by more than 1024 leave the α–β fit too few points")
"""The largest growth factor of calibrate run's message sizes (--factor)."""
COLLECTIVES = ["allgather", "allreduce", "p2p"]
"""What calibrate run measures."""


@dataclass(frozen=True)
class Measured(Generic[R]):
    """Measurements taken, and what they give."""

    raw_json: str
    """The measurements as JSON text, one trailing newline (what --raw writes)."""
    fit: Callable[[], R] = field(repr=False)
    """The fit (calibrate run) or the analysis (validate) of the measurements; may refuse with
    a UsageError (e.g. an implausible fit without accept_implausible)."""

    def result(self) -> R:
        """The fit or the analysis: :attr:`fit` called."""
        return self.fit()


# --------------------------------------------------------------------------- options


def message_bytes(value: str, option: str) -> int:
    """A message size ≥ 1 byte and ≤ the largest message (costmodel.limits), e.g. '64 MiB'."""
    from costmodel.limits import MAX_MESSAGE_BYTES
    from costmodel.units import parse_quantity

    size = parse_quantity(value, "bytes", "", option)
    if not 1 <= size <= MAX_MESSAGE_BYTES.largest:
        raise UsageError(f"{option}: expected a size from 1 B to {MAX_MESSAGE_BYTES.largest:,} "
                         f"B ({MAX_MESSAGE_BYTES.why}), got {value[:40]!r}")
    return int(size)


def check_timeout(value: float) -> float:
    """--timeout: seconds in (0, MAX_TIMEOUT_S] (costmodel.limits)."""
    from costmodel.limits import MAX_TIMEOUT_S

    if not 0 < value <= MAX_TIMEOUT_S:
        raise UsageError(f"--timeout: expected seconds in (0, {MAX_TIMEOUT_S:,}], got {value!r}")
    return value


def message_sizes(low: int, high: int, grow: int) -> list[int]:
    """low, low·grow, low·grow², … up to ``high``: the sizes calibrate run measures."""
    sizes = []
    size = low
    while size <= high:
        sizes.append(size)
        size *= grow
    return sizes


def idle_gap_s(text: str) -> float:
    """--idle-gap: a time ('2 ms'), or 0 to skip the host check."""
    from costmodel.units import parse_quantity

    return 0.0 if text.strip() in ("0", "0 s", "0 ms") else \
        parse_quantity(text, "time", "", "--idle-gap")


def machines_per_P(values: tuple[str, ...] | list[str]) -> dict[int | None, Machine]:
    """``--machine`` values (``FILE`` or ``P=FILE``) → {P or None (any P): Machine}."""
    from costmodel.api import positive_int
    from costmodel.inputs.loaders import load_machine

    machines: dict[int | None, Machine] = {}
    for value in values:
        head, sep, tail = value.partition("=")
        key = positive_int(head, "--machine P") if sep and head.strip().isdigit() else None
        path = tail if key is not None else value
        if key in machines:
            raise UsageError(f"--machine: two profiles for "
                             f"{'every P' if key is None else f'P = {key}'}")
        machines[key] = load_machine(path)
    return machines


# --------------------------------------------------------------------------- calibrate run


def calibration_run(procs: str = "2..4", min_size: str = "4 B", max_size: str = "64 MiB",
                    factor: str = "4", reps: str = "10", warmup: str = "2",
                    timeout: float = 1800.0, idle_gap: str = "2 ms", concurrent: bool = True,
                    keep_awake: bool = False, collectives: str = "paper",
                    name: str | None = None, statistic: str = "mean",
                    accept_implausible: bool = False, emulate: str | None = None,
                    progress: Progress | None = None) -> Measured[CalibrationResult] | None:
    """`gridcost calibrate run`: time all-gather, all-reduce and point-to-point for each
    process count of ``procs`` and message size from ``min_size`` to ``max_size`` (×``factor``),
    ``reps`` timed after ``warmup`` untimed, on local processes (gloo over 127.0.0.1, NCCL with
    GPUs), the torchrun world, or (``emulate`` 'nodes=N, ppn=K, link=RATE') an emulated cluster
    measured inside and across its nodes.  The result fits α, β (a profile with levels when
    emulated; costmodel.measure.emulated).  None on the ranks but 0 under torchrun."""
    from costmodel.api import check_profile_name, count_of, positive_int
    from costmodel.engine.grids import parse_processes
    from costmodel.measure import require_torch
    from costmodel.measure.launch import run, under_torchrun

    check_profile_name(name)
    check_timeout(timeout)
    if emulate is not None:
        from costmodel.measure.emulate import parse_emulation

        parse_emulation(emulate)  # a bad spec is reported before anything starts
    require_torch()
    torchrun = under_torchrun()
    world = int(os.environ["WORLD_SIZE"]) if torchrun else 0
    ps = [int(p) for p in parse_processes(str(world) if torchrun and procs == "2..4" else procs,
                                          "--procs", MAX_LOCAL_PROCESSES, MAX_LOCAL_PROCESSES)]
    if ps[0] < 2:
        raise UsageError(f"--procs: expected process counts ≥ 2, got {procs!r}")
    if torchrun and ps[-1] > world:
        raise UsageError(f"--procs: at most the world size {world} under torchrun, got {procs!r}")
    low, high = message_bytes(min_size, "--min-size"), message_bytes(max_size, "--max-size")
    grow = positive_int(factor, "--factor", FACTOR)
    if grow < 2 or high < low:
        raise UsageError("--factor must be ≥ 2 and --max-size ≥ --min-size")
    sizes = message_sizes(low, high, grow)
    args = {"procs": ps, "sizes_bytes": sizes,
            "reps": positive_int(reps, "--reps", MAX_REPETITIONS),
            "warmup": count_of(warmup, "--warmup", MAX_REPETITIONS),
            "collectives": COLLECTIVES, "timeout_s": timeout,
            "idle_gap_s": idle_gap_s(idle_gap), "keep_awake": keep_awake,
            "concurrent": concurrent}
    if emulate is not None:
        return _emulated_calibration(emulate, args, timeout, collectives, name, statistic,
                                     accept_implausible, progress)
    result = run("bench", args, ps[-1], timeout, keep_awake, progress)
    if result is None:  # a rank other than 0 under torchrun: rank 0 reports
        return None

    def fit() -> CalibrationResult:
        return _fit_local(result, torchrun, world, ps, sizes, grow, args, concurrent,
                          keep_awake, collectives, name, statistic, accept_implausible)

    return Measured(raw_json=json.dumps(result, indent=2, sort_keys=True) + "\n", fit=fit)


def _fit_local(result: dict[str, Any], torchrun: bool, world: int, ps: list[int],
               sizes: list[int], grow: int, args: dict[str, Any], concurrent: bool,
               keep_awake: bool, collectives: str, name: str | None, statistic: str,
               accept_implausible: bool) -> CalibrationResult:
    """α, β fitted to the microbenchmarks of local processes or a torchrun world, with the
    notes of the host (more processes than cores; the idle probe) in the table and record."""
    import socket

    from costmodel.api import fit_series
    from costmodel.measure.calibration import bench_series, idle_note
    from costmodel.measure.launch import oversubscription

    source = f"torch.distributed {result['backend']}"
    series = bench_series(result, source, statistic)
    host = socket.gethostname()
    where = f"torchrun world of {world}" if torchrun else f"host {host}, 127.0.0.1"
    provenance = [f"Measured by gridcost calibrate run: {source} (torch {result['torch']}), "
                  f"{where}, p = {', '.join(map(str, ps))}, sizes {sizes[0]} B to {sizes[-1]} B "
                  f"×{grow}, {statistic} of {args['reps']} after {args['warmup']} warm-up, "
                  + (f"every group of p among {ps[-1]} processes at once (--concurrent)"
                     if concurrent else "one group of p at a time (--isolated)")
                  + (", CPUs kept awake (--keep-awake)." if keep_awake else "."),
                  "flop_rate: one process, float32 matrix product (torch.mm 384×384)."]
    notes: list[str] = []
    extra: dict[str, Any] = {}
    crowded = oversubscription(int(os.environ.get("LOCAL_WORLD_SIZE", world)) if torchrun
                               else ps[-1])
    if crowded is not None:
        notes.append(crowded.text)
        extra["oversubscribed"] = {"processes": crowded.processes, "cores": crowded.cores,
                                   "counted_by": crowded.counted_by}
        provenance.append(crowded.text + ".")
    if result.get("idle"):
        note, ratio = idle_note(result["idle"])
        notes.append(note)
        extra["idle"] = dict(result["idle"], median_ratio=ratio)
    return fit_series(series, name=name or f"calibrated-{host}",
                      description=f"α–β measured on {where} ({source})", collectives=collectives,
                      flop_rate=float(result["flop_rate"]), provenance=provenance, notes=notes,
                      extra=extra, accept_implausible=accept_implausible)


def _emulated_calibration(text: str, args: dict[str, Any], timeout: float, collectives: str,
                          name: str | None, statistic: str, accept_implausible: bool,
                          progress: Progress | None) -> Measured[CalibrationResult]:
    """calibrate run --emulate: both levels measured on the emulated cluster, a profile with
    levels fitted (costmodel.measure.emulated)."""
    from costmodel.api import settings_of
    from costmodel.measure.emulate import calibration_runs, parse_emulation

    spec = parse_emulation(text)
    settings_of("none", collectives, "none")
    inside, across = calibration_runs(spec, args, timeout, progress)

    raw = {"node": inside, "network": across, "emulation": spec.text}

    def fit() -> CalibrationResult:
        from costmodel.api import EmulatedRaw, fit_emulated

        return fit_emulated(EmulatedRaw("calibrate run --emulate", raw),
                            collectives=collectives, name=name, statistic=statistic,
                            accept_implausible=accept_implausible)

    return Measured(raw_json=json.dumps(raw, indent=2, sort_keys=True) + "\n", fit=fit)


# --------------------------------------------------------------------------- validate


def validation_run(machine: tuple[str, ...] | list[str], processes: str = "2,4",
                   batch: str = "16", plan: str = "all", iterations: str = "5",
                   warmup: str = "2", collectives: str = "paper", timeout: float = 1800.0,
                   sync: bool = True, from_raw: str | None = None, statistic: str = "mean",
                   keep_awake: bool = False, emulate: str | None = None, ddp: bool = False,
                   command: str = "validate",
                   progress: Progress | None = None) -> Measured[ValidationResult] | None:
    """`gridcost validate`: train the small AlexNet-shaped network with the Pr×Pc algorithm for
    every P of ``processes`` and grid of the plans ``plan`` names (local processes, the
    torchrun world, or an ``emulate``d cluster; with ``ddp`` also DistributedDataParallel
    steps), or read the measurements an earlier --raw wrote (``from_raw``).  The result
    predicts them with the profiles ``machine`` ('FILE' or 'P=FILE' each).  None on the ranks
    but 0 under torchrun."""
    from costmodel.api import read_text, settings_of, validation_of
    from costmodel.engine.plans import choose_plans
    from costmodel.measure.validation import PLANS, parse_validation_raw

    check_timeout(timeout)
    settings_of("none", collectives, "none")
    machines = machines_per_P(machine)
    plans = [p.name for p in choose_plans(plan, command, all_allowed=True, fixed=PLANS)]
    merged: dict[str, Any] | None
    if from_raw is not None:
        merged = parse_validation_raw(read_text(from_raw, "the JSON of 'validate --raw'"),
                                      from_raw, plans)
    elif emulate is not None:
        if ddp or keep_awake:
            raise UsageError("--emulate: --ddp and --keep-awake are for local runs")
        merged = _emulated_validation(emulate, machines, processes, batch, plans, iterations,
                                      warmup, timeout, sync, progress)
    else:
        merged = _local_validation(processes, batch, plans, iterations, warmup, timeout, sync,
                                   keep_awake, progress)
        if merged is not None and ddp:
            merged["ddp"] = _ddp_steps(processes, batch, iterations, warmup, timeout,
                                       keep_awake)
        if merged is None or (merged.get("ddp") is None and ddp):
            return None  # a rank other than 0 under torchrun: rank 0 reports
    measured = merged

    def analyse() -> ValidationResult:
        return validation_of(measured, machines, collectives=collectives, statistic=statistic,
                             ddp=ddp)

    return Measured(raw_json=json.dumps(measured) + "\n", fit=analyse)


def _local_processes(processes: str) -> list[int]:
    """The P of --P (local processes), or the torchrun world size."""
    from costmodel.engine.grids import parse_processes
    from costmodel.measure.launch import under_torchrun

    return [int(os.environ["WORLD_SIZE"])] if under_torchrun() else \
        [int(p) for p in parse_processes(processes, "--P", MAX_LOCAL_PROCESSES,
                                         MAX_LOCAL_PROCESSES)]


def _local_validation(processes: str, batch: str, plans: list[str], iterations: str,
                      warmup: str, timeout: float, sync: bool, keep_awake: bool,
                      progress: Progress | None) -> dict[str, Any] | None:
    """Run the validation steps for every P (local processes, or the torchrun world); the
    merged result on rank 0, None on the other ranks."""
    from costmodel.api import batch_of, positive_int
    from costmodel.measure import require_torch
    from costmodel.measure.launch import run
    from costmodel.measure.validation import valid_grids

    B = batch_of(batch)
    ps = _local_processes(processes)
    if ps[0] < 2:
        raise UsageError(f"--P: expected process counts ≥ 2, got {processes!r}")
    jobs = []
    for P in ps:
        grids, _skipped = valid_grids(P, B)
        jobs.append((P, grids))
    require_torch()
    args = {"batch": B, "plans": plans, "warmup": positive_int(warmup, "--warmup",
                                                               MAX_REPETITIONS),
            "iterations": positive_int(iterations, "--iterations", MAX_REPETITIONS),
            "lr": 0.01, "seed": 0,
            "timeout_s": timeout, "sync": sync}
    merged: dict[str, Any] = {"runs": []}
    for P, grids in jobs:
        result = run("validate", dict(args, grids=[list(g) for g in grids]), P, timeout,
                     keep_awake, progress)
        if result is None:
            return None
        merged["runs"] += result["runs"]
        merged.update(backend=result["backend"], batch=result["batch"], keep_awake=keep_awake)
    return merged


def _emulated_validation(text: str, machines: dict[int | None, Machine], processes: str,
                         batch: str, plans: list[str], iterations: str, warmup: str,
                         timeout: float, sync: bool,
                         progress: Progress | None) -> dict[str, Any]:
    """validate --emulate: every P on the emulated cluster, both mappings of every grid."""
    from costmodel.api import positive_int
    from costmodel.engine.grids import parse_processes
    from costmodel.measure import require_torch
    from costmodel.measure.emulate import parse_emulation, validation_runs
    from costmodel.measure.validation import valid_grids

    spec = parse_emulation(text)
    for P, profile in machines.items():
        inner = profile.levels[0].processes if profile.hierarchical else None
        if inner != spec.ppn:
            raise UsageError(f"--machine{'' if P is None else f' {P}='}: expected a profile "
                             f"with levels whose node holds ppn={spec.ppn} processes (gridcost "
                             f"calibrate run --emulate), got {profile.name!r}")
    B = positive_int(batch, "--batch")
    ps = [int(p) for p in parse_processes(processes)]
    grids_by_P = {P: [list(g) for g in valid_grids(P, B)[0]] for P in ps}
    require_torch()
    args = {"batch": B, "plans": plans, "warmup": positive_int(warmup, "--warmup"),
            "iterations": positive_int(iterations, "--iterations"), "lr": 0.01, "seed": 0,
            "timeout_s": timeout, "sync": sync, "grids_by_P": grids_by_P}
    return validation_runs(spec, ps, args, timeout, progress)


def _ddp_steps(processes: str, batch: str, iterations: str, warmup: str, timeout: float,
               keep_awake: bool) -> list[dict[str, Any]] | None:
    """DDP steps (costmodel.measure.ddp) for every P whose P divides B; rank 0's records, None
    on the other ranks under torchrun."""
    from costmodel.api import batch_of, positive_int
    from costmodel.measure.launch import run

    B = batch_of(batch)
    ps = _local_processes(processes)
    args = {"batch": B, "warmup": positive_int(warmup, "--warmup", MAX_REPETITIONS),
            "iterations": positive_int(iterations, "--iterations", MAX_REPETITIONS),
            "seed": 0,
            "timeout_s": timeout}
    out = []
    for P in ps:
        if B % P:
            raise UsageError(f"--ddp: expected --batch to be a multiple of every P, got "
                             f"B={B}, P={P}")
        result = run("ddp", args, P, timeout, keep_awake)
        if result is None:
            return None
        out.append(result)
    return out
