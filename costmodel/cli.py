"""The `gridcost` command line: parses options, calls the library, prints or writes the result.

This is the only module that prints, writes files or turns errors into exit codes.  Every
GridcostError and click usage error becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click

from costmodel import __version__
from costmodel.errors import GridcostError, UsageError
from costmodel.limits import (
    MAX_LOCAL_PROCESSES,
    MAX_REPETITIONS,
    Limit,
)
from costmodel.progress import terminal_progress

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MACHINE = "cori-knl"
WORD_BYTES = Limit(64, "a word of 64 bytes is already 8 float64 values")
FACTOR = Limit(1024, "message sizes growing by more than 1024 leave the α–β fit too few points")
DEFAULT_BATCH = 2048


def _positive_int(value: str, option: str, largest: Limit | None = None) -> int:
    """``value`` as an integer ≥ 1 and ≤ ``largest`` (default: the largest P,
    costmodel.limits); UsageError otherwise."""
    from costmodel.limits import MAX_PROCESSES, check

    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 30:
        raise UsageError(f"{option}: expected a positive integer, got {value[:40]!r}")
    number = int(text, 10)
    if number < 1:
        raise UsageError(f"{option}: expected a positive integer, got {value!r}")
    return check(number, largest or MAX_PROCESSES, option, "a positive integer")


def _count(value: str, option: str, largest: Limit, minimum: int = 0) -> int:
    """A count ≥ ``minimum`` (e.g. --warmup 0) and ≤ ``largest``."""
    from costmodel.limits import check

    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 30 or int(text) < minimum:
        raise UsageError(f"{option}: expected an integer ≥ {minimum}, got {value[:40]!r}")
    return check(int(text), largest, option, f"an integer ≥ {minimum}")


def _batch(value: str) -> int:
    from costmodel.limits import MAX_BATCH

    return _positive_int(value, "--batch", MAX_BATCH)


def _per_process_batch(value: str, processes: Any) -> int:
    """--per-process-batch b, with B = b·P within the largest batch for every P swept."""
    from costmodel.limits import MAX_BATCH

    b = _positive_int(value, "--per-process-batch", MAX_BATCH)
    top = int(max(processes))
    if b * top > MAX_BATCH.largest:
        raise UsageError(f"--per-process-batch: expected b with B = b·P ≤ "
                         f"{MAX_BATCH.largest:,} ({MAX_BATCH.why}) for every P, got b={b:,} "
                         f"and P up to {top:,}")
    return b


def model_options(func: F) -> F:
    """--net, --machine, --P, --batch, --overlap, --collectives, --compute, --per."""
    decorators = [
        click.option("--net", "net", required=True, metavar="NET",
                     help="Network: a YAML path, a bundled name (see `gridcost nets`) or an "
                          "import SOURCE such as torchvision:resnet50 (see `gridcost import`)."),
        click.option("--machine", default=DEFAULT_MACHINE, show_default=True, metavar="M",
                     help="Machine profile: a YAML path or a bundled name "
                          "(see `gridcost machines`)."),
        click.option("--P", "processes", required=True, metavar="P",
                     help="Number of processes."),
        click.option("--batch", default=str(DEFAULT_BATCH), show_default=True, metavar="B",
                     help="Global mini-batch size (the paper's Figs. 6-8 use 2048)."),
        click.option("--overlap", type=click.Choice(["none", "batch", "backward"]),
                     default="none", show_default=True,
                     help="'none' adds every collective to the compute; 'batch' hides the "
                          "whole gradient all-reduce under the compute; 'backward' schedules "
                          "one iteration: gradients fused into buckets and all-reduced during "
                          "the backward pass (docs/schedule.md)."),
        click.option("--bucket", type=click.Choice(["ddp", "horovod", "layer"]), default=None,
                     help="With --overlap backward: gradient buckets as PyTorch DDP (25 MiB, "
                          "first 1 MiB), Horovod (64 MB fusion buffer) or one all-reduce per "
                          "layer.  [default: the machine profile's schedule.bucket, else ddp]"),
        click.option("--bucket-size", "bucket_size", default=None, metavar="SIZE",
                     help="With --overlap backward: one bucket cap for every bucket, e.g. "
                          "25MiB, 64MB; 0 = one all-reduce per layer (the paper's latency "
                          "count).  Overrides --bucket."),
        click.option("--collectives", default=None, metavar="ALGO",
                     help="Collective algorithms: paper (Bruck all-gather, all-reduce as two "
                          "all-gathers), ring, recursive-doubling, rabenseifner, binomial, "
                          "bruck, or auto (the cheapest per collective and message size); or "
                          "per collective, 'allgather=NAME,allreduce=NAME'.  [default: the "
                          "machine profile's 'collectives', else paper]"),
        click.option("--compute", type=click.Choice(["auto", "table", "flops", "none"]),
                     default="auto", show_default=True,
                     help="Compute model: the machine's measured table (when measured for this "
                          "network), its flop rate, or none."),
        click.option("--per", type=click.Choice(["iteration", "epoch"]), default="epoch",
                     show_default=True, help="Report seconds per iteration or per epoch."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def memory_options(func: F) -> F:
    """--memory-check/--no-memory-check and --optimizer (docs/memory.md)."""
    func = click.option(
        "--optimizer", default=None, metavar="OPT",
        help="Optimizer state for the memory check: sgd (0), momentum (4), adam (8 bytes per "
             "parameter) or a number of bytes per parameter; default: the machine profile's "
             "'optimizer' (sgd when absent).  Turns the memory check on.")(func)
    return click.option(
        "--memory-check/--no-memory-check", "memory_check", default=None,
        help="Mark grids that do not fit in the machine profile's 'memory' per process as "
             "infeasible and report memory per process.  Off by default (the paper's "
             "setting); --optimizer turns it on.")(func)


def _memory(mach: Any, memory_check: bool | None, optimizer: str | None) -> Any:
    """The MemoryCheck the options ask for, or None (docs/memory.md)."""
    from costmodel.memory import MemoryCheck

    per_param = _optimizer_bytes(mach, optimizer)
    if not (memory_check or (memory_check is None and optimizer is not None)):
        return None
    if mach.memory_bytes is None:
        raise UsageError(f"--memory-check: machine {mach.name!r} has no 'memory' (bytes per "
                         "process); add e.g. 'memory: 16 GiB' to its profile")
    return MemoryCheck(mach.memory_bytes, per_param)


def _optimizer_bytes(mach: Any, optimizer: str | None) -> float:
    from costmodel.memory import optimizer_bytes

    return (float(mach.optimizer_bytes_per_param) if optimizer is None
            else optimizer_bytes(optimizer))


mapping_option = click.option(
    "--mapping", type=click.Choice(["best", "pr-inside", "pc-inside"]), default="best",
    show_default=True,
    help="Machines with levels (docs/hierarchy.md): place the Pr groups (pr-inside) or the Pc "
         "groups (pc-inside) on consecutive ranks, i.e. inside a node; 'best' costs both and "
         "keeps the cheaper per grid.")


def output_options(func: F) -> F:
    """--format and --output."""
    func = click.option("-o", "--output", default="-",
                        callback=_writable_path, show_default=True, metavar="FILE",
                        help="Write here; '-' is stdout.")(func)
    func = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
                        default="table", show_default=True, help="Output format.")(func)
    return func


def _emit(text: str, output: str, option: str = "--output") -> None:
    if output == "-":
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"{option}: cannot write {output!r}: {exc.strerror}") from None


def _option_name(param: click.Parameter | None) -> str:
    """The long name of an option (``--output``) for messages."""
    if param is None:
        return "--output"
    names = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    return names[0] if names else f"--{param.name}"


def _check_writable(path: str, option: str) -> None:
    """UsageError unless ``path`` can be written as a file: checked before any work, so that a
    bad output path is reported before other outputs are written."""
    import errno
    import os

    def refuse(code: int) -> None:
        raise UsageError(f"{option}: cannot write {path!r}: {os.strerror(code)}")

    if not path:
        refuse(errno.ENOENT)
    if os.path.isdir(path):
        refuse(errno.EISDIR)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        refuse(errno.ENOENT if not os.path.exists(parent) else errno.ENOTDIR)
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            refuse(errno.EACCES)
    elif not os.access(parent, os.W_OK | os.X_OK):
        refuse(errno.EACCES)


def _writable_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of an output-file option: the path, checked writable ('-' is stdout)."""
    if value is not None and value != "-":
        _check_writable(value, _option_name(param))
    return value


def _writable_folder(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback of an output-folder option: an existing writable folder, or one that can be
    created (its nearest existing parent is a writable folder)."""
    import errno
    import os

    option = _option_name(param)
    folder = os.path.abspath(value)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        code = errno.EEXIST if folder == os.path.abspath(value) else errno.ENOTDIR
        raise UsageError(f"{option}: cannot write into {value!r}: {os.strerror(code)}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: cannot write into {value!r}: {os.strerror(errno.EACCES)}")
    return value


def _load(net: str, machine: str) -> tuple[Any, Any]:
    from costmodel.loaders import load_machine

    if "-" in (net, machine):
        _replay_stdin()
    return _network(net), load_machine(machine)


class _ReplayedStdin:
    """Standard input read once and replayed to every reader: `report` reads `--net -` to
    load the network and again to hash it for the provenance block."""

    def __init__(self, data: bytes, encoding: str, errors: str) -> None:
        self._data, self.encoding, self.errors = data, encoding, errors

    @property
    def buffer(self) -> Any:
        import io

        return io.BytesIO(self._data)

    def read(self, size: int = -1) -> str:
        return self._data.decode(self.encoding, self.errors)

    def isatty(self) -> bool:
        return False


def _replay_stdin() -> None:
    """Make every later read of standard input see the same bytes (idempotent)."""
    if isinstance(sys.stdin, _ReplayedStdin) or sys.stdin is None:
        return
    stream: Any = sys.stdin
    raw = getattr(stream, "buffer", None)
    data = raw.read() if raw is not None else stream.read().encode("utf-8")
    sys.stdin = _ReplayedStdin(data, getattr(stream, "encoding", None) or "utf-8",
                               getattr(stream, "errors", None) or "strict")


def _network(net: str) -> Any:
    """--net: a bundled name, a network YAML path, or an import SOURCE (``torchvision:NAME``,
    ``timm:NAME``, ``package.module:callable``, a ``.onnx`` path; docs/import.md), traced with
    the default input 3×224×224 (torch is imported only then)."""
    from costmodel.importers import import_network, is_source
    from costmodel.loaders import load_network

    if is_source(net):
        return import_network(net)[2]
    return load_network(net)


def _network_digest(net: str) -> dict[str, str]:
    """Provenance of --net: its file and SHA-256; for a SOURCE, the source in place of the file
    and the SHA-256 of the imported YAML."""
    from costmodel.importers import import_network, is_source
    from costmodel.loaders import input_digest

    if is_source(net):
        import hashlib

        text = import_network(net)[0]
        return {"file": net, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    return input_digest(net, "networks")


def _settings(overlap: str, collectives: str | None, compute: str, memory: Any = None,
              machine: Any = None, mapping: str = "best", bucket: str | None = None,
              bucket_size: str | None = None) -> Any:
    """The settings; ``collectives`` None takes the machine profile's selection; ``bucket``
    and ``bucket_size`` (overlap 'backward' only) the gradient bucketing (docs/schedule.md)."""
    from costmodel.collectives import algorithms
    from costmodel.search import Settings

    if collectives is None and machine is not None:
        collectives = machine.collectives
    if collectives is not None:
        algorithms(collectives)  # validate the name before any work
    chosen = None
    if overlap == "backward":
        from costmodel.buckets import bucketing, parse_size
        from costmodel.limits import MAX_BUCKET_BYTES

        if bucket_size is not None and not parse_size(bucket_size) <= MAX_BUCKET_BYTES.largest:
            raise UsageError(f"--bucket-size: expected a size ≤ {MAX_BUCKET_BYTES.largest:,} B "
                             f"({MAX_BUCKET_BYTES.why}), got {bucket_size[:40]!r}")
        chosen = bucketing(bucket, bucket_size,
                           None if machine is None else machine.bucket)
    elif bucket is not None or bucket_size is not None:
        raise UsageError("--bucket/--bucket-size: gradient buckets are scheduled only under "
                         "--overlap backward")
    return Settings(overlap=overlap, collectives=collectives, compute=compute,  # type: ignore[arg-type]
                    memory=memory, mapping=mapping, bucket=chosen)


def _bucket_settings(settings: Any) -> dict[str, Any]:
    """Provenance of the bucketing: present only under overlap 'backward'."""
    if settings.bucket is None:
        return {}
    from costmodel.schedule import bucket_record

    return {"bucket": bucket_record(settings.bucket)}


def _mapping_settings(machine: Any, mapping: str) -> dict[str, Any]:
    """Provenance of the mapping: present only on a machine with levels (docs/hierarchy.md)."""
    return {"mapping": mapping} if machine.hierarchical else {}


def _memory_settings(memory: Any) -> dict[str, Any]:
    """Provenance of the memory check: present only when it is on."""
    if memory is None:
        return {}
    return {"memory_check": True, "memory_bytes": memory.capacity_bytes,
            "optimizer_bytes_per_param": memory.optimizer_bytes_per_param}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gridcost")
def cli() -> None:
    """gridcost: how to split each layer over Pr×Pc processes, and what it costs.

    Implements the α–β model of Gholami et al., "Integrated Model, Batch and Domain
    Parallelism in Training Neural Networks" (SPAA 2018).

    \b
    Example:
      gridcost optimize --net vgg16 --P 512
    """


@dataclass(frozen=True)
class Result:
    """What a command computed: tables to render, the JSON record, and its provenance (built on
    request: only `report` needs it, and hashing the inputs re-reads them)."""

    tables: list[Any]
    record: Any
    provenance: Callable[[], dict[str, Any]]


def _provenance(argv_name: str, net: str, machine: str,
                settings: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    context = click.get_current_context(silent=True)
    path = context.command_path.split()[1:] if context is not None else [argv_name]
    command = " ".join(["gridcost", *path])

    def build() -> dict[str, Any]:
        from costmodel.loaders import input_digest

        return {"gridcost_version": __version__, "command": command,
                "inputs": {"network": _network_digest(net),
                           "machine": input_digest(machine, "machines")},
                "settings": settings}

    return build


def _show(result: Result, fmt: str, output: str) -> None:
    from costmodel.report import render

    if fmt == "json" or len(result.tables) == 1:
        text = render(result.tables[0], result.record, fmt)  # type: ignore[arg-type]
    else:
        text = "\n".join(render(t, None, fmt) for t in result.tables)  # type: ignore[arg-type]
    _emit(text, output)


def _optimize_result(net: str, machine: str, processes: str, batch: str, overlap: str,
                     collectives: str | None, compute: str, per: str, plan_name: str,
                     efficiency: float, memory_check: bool | None = None,
                     optimizer: str | None = None, mapping: str = "best",
                     bucket: str | None = None, bucket_size: str | None = None) -> Result:
    from costmodel.plans import choose_plans
    from costmodel.report import grids_table, optimum_record, plans_table
    from costmodel.search import optimize as run_optimize

    P = _positive_int(processes, "--P")
    B = _batch(batch)
    _check_efficiency(efficiency)
    plans = choose_plans(plan_name, _command(), all_allowed=True, per_layer_allowed=True)
    network, mach = _load(net, machine)
    memory = _memory(mach, memory_check, optimizer)
    settings = _settings(overlap, collectives, compute, memory, machine=mach, mapping=mapping,
                         bucket=bucket, bucket_size=bucket_size)
    records = []
    for chosen in plans:
        result = run_optimize(network, mach, P, B, chosen, settings, threshold=efficiency,
                              allow_infeasible=len(plans) > 1)
        records.append(optimum_record(result, per))  # type: ignore[arg-type]
    provenance = _provenance("optimize", net, machine, {
        "P": P, "batch": B, "plan": plan_name, "overlap": overlap,
        "collectives": settings.collectives, "compute": compute, "per": per,
        "efficiency_threshold": efficiency,
        **_memory_settings(memory), **_mapping_settings(mach, mapping),
        **_bucket_settings(settings)})
    if len(plans) == 1:
        return Result([grids_table(records[0])], records[0], provenance)
    if memory is not None and plan_name == PER_LAYER:
        raise UsageError("--plan per-layer: the per-layer plan does not model memory; drop "
                         "--memory-check and --optimizer")
    # under a memory check or on a machine with levels the per-layer plan (which models
    # neither) is left out of 'all'
    per_layer = None if memory is not None or (mach.hierarchical and plan_name == "all") \
        else _per_layer_record(
        network, mach, P, B, settings, per, allow_infeasible=plan_name == "all")
    if per_layer is not None and plan_name == PER_LAYER:
        from costmodel.report import perlayer_table

        return Result([perlayer_table(per_layer)], per_layer, provenance)
    return Result([plans_table(records, per_layer)], {"plans": records, "per_layer": per_layer},
                  provenance)


PER_LAYER = "per-layer"
"""The plan name of the per-layer optimizer (costmodel.perlayer); not one of plans.PLANS."""


def _per_layer_record(network: Any, machine: Any, P: int, B: int, settings: Any, per: str,
                      allow_infeasible: bool) -> dict[str, Any]:
    from costmodel.perlayer import optimize_per_layer
    from costmodel.report import perlayer_record

    result = optimize_per_layer(network, machine, P, B, settings, allow_infeasible)
    return perlayer_record(result, per)  # type: ignore[arg-type]


def _check_efficiency(efficiency: float) -> None:
    if not 0 < efficiency <= 1:
        raise UsageError(f"--efficiency: expected a number in (0, 1], got {efficiency!r}")


def _layers_result(net: str, machine: str, processes: str, batch: str, overlap: str,
                   collectives: str | None, compute: str, per: str, pr: str, plan_name: str,
                   memory_check: bool | None = None, optimizer: str | None = None,
                   mapping: str = "best", bucket: str | None = None,
                   bucket_size: str | None = None) -> Result:
    import numpy as np

    from costmodel.cost import evaluate
    from costmodel.grids import Grids
    from costmodel.memory import memory_table
    from costmodel.plans import choose_plans
    from costmodel.report import layer_records, layers_table, unit_of
    from costmodel.search import check_batch, reason

    P = _positive_int(processes, "--P")
    R = _positive_int(pr, "--pr")
    B = check_batch(_batch(batch))
    if P % R:
        raise UsageError(f"--pr: expected a divisor of P={P}, got {R}")
    [chosen] = choose_plans(plan_name, _command(), all_allowed=False)
    network, mach = _load(net, machine)
    memory = _memory(mach, memory_check, optimizer)
    s = _settings(overlap, collectives, compute, memory, machine=mach, mapping=mapping,
                  bucket=bucket, bucket_size=bucket_size)
    grids = Grids(np.array([R]), np.array([P // R]), np.array([B]))
    table = evaluate(network, mach, grids, chosen, s.overlap, s.collectives, s.compute, s.memory,
                     s.mapping, s.bucket)
    held = memory_table(network, grids, chosen, mach.word_bytes, _optimizer_bytes(mach, optimizer))
    records = layer_records(table, 0, per, held)  # type: ignore[arg-type]
    unit = unit_of(per)  # type: ignore[arg-type]
    feasible = bool(table.feasible[0])
    algo = table.algorithms
    title = (f"{network.name} on {mach.name}: {R}×{P // R} grid, B={B}, plan {chosen.name}"
             + ("" if algo.name == "paper" else f", collectives {algo.label}")
             + ("" if table.mappings is None else f", mapping {table.mappings.used(0)}")
             + ("" if feasible else f" — INFEASIBLE: {reason(table, 0)}"))
    record = {"net": network.name, "machine": mach.name, "P": P, "batch": B, "pr": R,
              "pc": P // R, "plan": chosen.name, "unit": unit, "feasible": feasible,
              "reason": reason(table, 0) or None, "layers": records,
              "collectives": algo.name}
    if table.mappings is not None:
        from costmodel.report import mapping_record

        scale = float(table.iterations_per_epoch[0]) if per == "epoch" else 1.0
        record.update(mapping_record(table, 0, scale, unit))
        record["levels"] = [lv.name for lv in mach.levels]
    provenance = _provenance("layers", net, machine, {
        "P": P, "pr": R, "batch": B, "plan": plan_name, "overlap": overlap,
        "collectives": algo.name, "compute": compute, "per": per,
        **_memory_settings(memory), **_mapping_settings(mach, mapping), **_bucket_settings(s)})
    table_out = layers_table(records, unit, title)
    if table.schedule is not None:  # overlap 'backward' (docs/schedule.md)
        from costmodel.schedule import bucket_record, describe, grid_schedule_record

        scale = float(table.iterations_per_epoch[0]) if per == "epoch" else 1.0
        record["overlap"] = "backward"
        record["bucket"] = bucket_record(table.bucket)
        record["total_s"] = float(table.total_s[0]) * scale
        record["schedule"] = grid_schedule_record(table.schedule, 0, scale)
        table_out = replace(table_out, notes=[
            *table_out.notes, f"overlap backward (buckets {table.bucket.label}): iteration "
                              f"{record['total_s']:.4g} {unit}; "
                              + describe(table.schedule, 0, scale, unit)
                              + " (gridcost timeline draws it)"])
    if table.mappings is not None:
        table_out = replace(table_out, notes=[*table_out.notes,
                                              f"mapping: {record['mapping_why']}"])
    if mach.per_collective or mach.per_collective_processes:
        from costmodel.report import per_collective_record, per_collective_text

        record["per_collective"] = per_collective_record(mach)
        table_out = replace(table_out, notes=[
            *table_out.notes, f"per-collective α, bandwidth: {per_collective_text(mach)} "
                              "(others: the flat α, bandwidth)"])
    return Result([table_out], record, provenance)


def _sweep_result(net: str, machine: str, processes: str, batch: str, overlap: str,
                  collectives: str | None, compute: str, per: str, per_process: str | None,
                  plan_name: str, efficiency: float, memory_check: bool | None = None,
                  optimizer: str | None = None, mapping: str = "best",
                  bucket: str | None = None, bucket_size: str | None = None) -> Result:
    import numpy as np

    from costmodel.collectives import algorithms
    from costmodel.grids import parse_processes
    from costmodel.plans import choose_plans
    from costmodel.report import sweep_record, sweep_table
    from costmodel.search import feasibility_limit
    from costmodel.search import sweep as run_sweep

    ps = parse_processes(processes)
    _check_efficiency(efficiency)
    if per_process is not None:
        b = _per_process_batch(per_process, ps)
        batches = ps * b
        label = f"B = {b}·P"
    else:
        B = _batch(batch)
        batches = np.full(ps.shape, B)
        label = f"B={B}"
    plans = choose_plans(plan_name, _command(), all_allowed=True)
    network, mach = _load(net, machine)
    memory = _memory(mach, memory_check, optimizer)
    settings = _settings(overlap, collectives, compute, memory, machine=mach, mapping=mapping,
                         bucket=bucket, bucket_size=bucket_size)
    records, tables = [], []
    for chosen in plans:
        result = run_sweep(network, mach, ps, batches, chosen, settings,
                           progress=terminal_progress())
        limit = feasibility_limit(network, chosen, int(batches[0])) if per_process is None \
            else None
        record = sweep_record(result, per, efficiency, limit)  # type: ignore[arg-type]
        record.update(net=network.name, machine=mach.name)
        record.update(_bucket_settings(settings))
        algo = algorithms(settings.collectives or "paper")
        if algo.name != "paper":
            record["collectives"] = algo.name
        records.append(record)
        tables.append(sweep_table(record, f"{network.name} on {mach.name}, {label}, plan "
                                          f"{chosen.name}, overlap {overlap}"
                                  + ("" if settings.bucket is None
                                     else f" (buckets {settings.bucket.label})")
                                  + ("" if algo.name == "paper"
                                     else f", collectives {algo.label}")))
    provenance = _provenance("sweep", net, machine, {
        "P": processes, "batch": None if per_process else int(batches[0]),
        "per_process_batch": int(per_process) if per_process else None, "plan": plan_name,
        "overlap": overlap, "collectives": settings.collectives, "compute": compute, "per": per,
        "efficiency_threshold": efficiency, **_memory_settings(memory),
        **_mapping_settings(mach, mapping), **_bucket_settings(settings)})
    return Result(tables, records[0] if len(records) == 1 else {"sweeps": records}, provenance)


def plan_option(all_allowed: bool, per_layer: bool = False) -> Callable[[F], F]:
    """--plan, with or without 'all' (and 'per-layer' where the command offers it)."""
    names = "model-batch, fc-model, domain-batch, beyond-batch" + (
        ", per-layer (each layer its own split and grid, redistribution charged)"
        if per_layer else "") + (", or 'all' to compare" if all_allowed else "")
    return click.option("--plan", "plan_name", default="model-batch", show_default=True,
                        metavar="PLAN", help=f"Plan: {names}.")


efficiency_option = click.option(
    "--efficiency", default=0.5, show_default=True, type=float,
    help="Threshold of the parallel efficiency T(P0)·P0/(P·T(P)) of the scaling limit, P0 the "
         "smallest feasible P swept (1 when swept): docs/model.md §8.")
pr_option = click.option("--pr", "pr", required=True, metavar="R",
                         help="Pr of the grid (Pc = P/Pr).")
per_process_option = click.option(
    "--per-process-batch", "per_process", default=None, metavar="b",
    help="Weak scaling: global batch B = b·P for every P (instead of a fixed --batch).")


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply ``decorators`` as if written top to bottom above a function."""
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func
    return apply


optimize_parameters = _stack(model_options, memory_options,
                             plan_option(all_allowed=True, per_layer=True), efficiency_option,
                             mapping_option)
"""The parameters of `_optimize_result`, shared by `optimize` and `report grids`."""
layers_parameters = _stack(model_options, memory_options, pr_option,
                           plan_option(all_allowed=False), mapping_option)
"""The parameters of `_layers_result`, shared by `layers` and `report layers`."""
sweep_parameters = _stack(model_options, memory_options, per_process_option,
                          plan_option(all_allowed=True), efficiency_option, mapping_option)
"""The parameters of `_sweep_result`, shared by `sweep` and `report sweep`."""


@cli.command()
@optimize_parameters
@output_options
def optimize(fmt: str, output: str, **options: Any) -> None:
    """Cost every Pr×Pc factorization of P and report the best grid.

    \b
    Examples:
      gridcost optimize --net vgg16 --P 512
      gridcost optimize --net alexnet --P 512 --batch 2048 --plan fc-model
      gridcost optimize --net resnet50 --machine a100-ib --P 1024 --plan all --format json
      gridcost optimize --net resnet152 --P 4096 --batch 8192 --plan per-layer
    """
    _show(_optimize_result(**options), fmt, output)


@cli.command()
@layers_parameters
@output_options
def layers(fmt: str, output: str, **options: Any) -> None:
    """Per-layer breakdown of one Pr×Pc grid: split, group sizes, collectives, words, seconds.

    \b
    Example:
      gridcost layers --net alexnet --P 512 --pr 16 --plan fc-model
    """
    _show(_layers_result(**options), fmt, output)


@cli.command()
@model_options
@pr_option
@plan_option(all_allowed=False)
@click.option("--layer", "layer_names", multiple=True, metavar="NAME",
              help="Explain only this weighted layer (repeatable); default: every layer.  "
                   "Compute, sums and total always cover the whole network.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]),
              default="table", show_default=True, help="Output format.")
@click.option("-o", "--output", default="-",
              callback=_writable_path, show_default=True, metavar="FILE",
              help="Write here; '-' is stdout.")
def explain(net: str, machine: str, processes: str, batch: str, overlap: str,
            collectives: str | None,
            compute: str, per: str, pr: str, plan_name: str, layer_names: tuple[str, ...],
            fmt: str, output: str, bucket: str | None = None,
            bucket_size: str | None = None) -> None:
    """Every term of one grid's cost: the formula, the numbers substituted, the result.

    For each weighted layer, its model, batch and domain (halo) terms; then the compute time
    (measured table or flop model), the sums over layers and the total under --overlap.
    Every figure can be checked by hand.

    \b
    Example:
      gridcost explain --net alexnet --P 512 --pr 32 --plan fc-model --layer fc6
    """
    from costmodel.explain import explain as run_explain
    from costmodel.explain import explanation_record
    from costmodel.explain import render_markdown as explain_markdown
    from costmodel.explain import render_text as explain_text
    from costmodel.plans import choose_plans
    from costmodel.report import render_json
    from costmodel.search import check_batch

    P = _positive_int(processes, "--P")
    R = _positive_int(pr, "--pr")
    B = check_batch(_batch(batch))
    if P % R:
        raise UsageError(f"--pr: expected a divisor of P={P}, got {R}")
    [chosen] = choose_plans(plan_name, _command(), all_allowed=False)
    network, mach = _load(net, machine)
    s = _settings(overlap, collectives, compute, machine=mach, bucket=bucket,
                  bucket_size=bucket_size)
    result = run_explain(network, mach, P, R, B, chosen, s.overlap, s.collectives, s.compute,
                         layers=layer_names or None, bucket=s.bucket)
    if fmt == "json":
        text = render_json(explanation_record(result))
    elif fmt == "markdown":
        text = explain_markdown(result, per)  # type: ignore[arg-type]
    else:
        text = explain_text(result, per)  # type: ignore[arg-type]
    _emit(text, output)


@cli.command()
@sweep_parameters
@output_options
def sweep(fmt: str, output: str, **options: Any) -> None:
    """Best grid, its time split and speedup for each P: strong or weak scaling.

    --P takes a list (8,32,128,512), a range of every integer (1..65536) or a geometric range
    (1..65536:x2).  With --batch B fixed this is strong scaling; with --per-process-batch b the
    global batch is b·P (weak scaling).

    \b
    Examples:
      gridcost sweep --net alexnet --P 8,32,128,512 --plan fc-model
      gridcost sweep --net resnet152 --P 1..65536 --batch 8192 --format csv -o sweep.csv
      gridcost sweep --net alexnet --P 128,512,2048 --per-process-batch 4 --plan fc-model
    """
    _show(_sweep_result(**options), fmt, output)


@cli.group()
def report() -> None:
    """Report-ready tables with a provenance block: Markdown, LaTeX (booktabs), CSV, JSON.

    Each table carries the gridcost version, the input files with their SHA-256 and every
    setting (in a comment for LaTeX and CSV, a footnote for Markdown, a key for JSON).

    \b
    Examples:
      gridcost report grids --net alexnet --P 512 --plan fc-model --format latex -o grids.tex
      gridcost report layers --net alexnet --P 512 --pr 32 --plan fc-model --format markdown
      gridcost report sweep --net vgg16 --P 8..4096:x2 --format csv -o sweep.csv
    """


def report_options(func: F) -> F:
    """--format (markdown, latex, csv, json) and --output for report tables."""
    func = click.option("-o", "--output", default="-",
                        callback=_writable_path, show_default=True, metavar="FILE",
                        help="Write here; '-' is stdout.")(func)
    return click.option("--format", "fmt",
                        type=click.Choice(["markdown", "latex", "csv", "json"]),
                        default="markdown", show_default=True, help="Output format.")(func)


def _show_report(result: Result, fmt: str, output: str) -> None:
    from costmodel.report import render_report

    _emit(render_report(result.tables, result.record, result.provenance(), fmt),  # type: ignore[arg-type]
          output)


@report.command("grids")
@optimize_parameters
@report_options
def report_grids(fmt: str, output: str, **options: Any) -> None:
    """The grid ranking of `optimize` (or the plan comparison with --plan all).

    \b
    Example:
      gridcost report grids --net alexnet --P 512 --plan fc-model --format latex
    """
    _show_report(_optimize_result(**options), fmt, output)


@report.command("layers")
@layers_parameters
@report_options
def report_layers(fmt: str, output: str, **options: Any) -> None:
    """The per-layer breakdown of one grid.

    \b
    Example:
      gridcost report layers --net alexnet --P 512 --pr 32 --plan fc-model --format latex
    """
    _show_report(_layers_result(**options), fmt, output)


@report.command("sweep")
@sweep_parameters
@report_options
def report_sweep(fmt: str, output: str, **options: Any) -> None:
    """A sweep over P (strong or weak scaling).

    \b
    Example:
      gridcost report sweep --net alexnet --P 8,32,128,512 --plan fc-model --format latex
    """
    _show_report(_sweep_result(**options), fmt, output)


@cli.group()
def plot() -> None:
    """Figures (PNG, SVG or PDF by the extension of -o): grid bars, cost curves, scaling,
    per-layer heatmaps.

    --P takes a list (8,32,128,512) or a range (1..4096:x2) where a command draws several P.

    \b
    Examples:
      gridcost plot grid --net alexnet --P 8,32,128,512 --plan fc-model -o fig7.png
      gridcost plot curve --net alexnet --P 128,512 --batch 512,2048 -o curves.svg
      gridcost plot scaling --net alexnet --P 1..4096:x2 --plan all -o scaling.pdf
      gridcost plot layers --net vgg16 --P 512 -o layers.png
    """


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def _figure_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of a figure option: a .png, .svg or .pdf path that can be written."""
    if value is None:
        return None
    if not value.lower().endswith(FIGURE_SUFFIXES):
        raise UsageError(f"{_option_name(param)}: expected a file name ending in .png, .svg "
                         f"or .pdf, got {value!r}")
    return _writable_path(ctx, param, value)


def figure_output(func: F) -> F:
    """-o/--output: the figure file; its extension (.png, .svg, .pdf) picks the format."""
    return click.option("-o", "--output", required=True, metavar="FILE", callback=_figure_path,
                        help="Figure file: .png, .svg or .pdf.")(func)


def _save_figure(figure: Any, output: str, option: str = "--output") -> None:
    from costmodel.plot import save

    try:
        save(figure, output)
    except OSError as exc:
        raise UsageError(f"{option}: cannot write {output!r}: {exc.strerror}") from None
    click.echo(f"wrote {output}")


def _optima(net: str, machine: str, processes: str, batch: str, overlap: str,
            collectives: str | None,
            compute: str, plan_name: str, bucket: str | None = None,
            bucket_size: str | None = None) -> list[Any]:
    from costmodel.grids import parse_processes
    from costmodel.limits import MAX_BATCH, MAX_PANELS
    from costmodel.plans import choose_plans
    from costmodel.search import optimize as run_optimize

    ps = parse_processes(processes, count=MAX_PANELS)
    bs = parse_processes(batch, "--batch", MAX_BATCH, MAX_PANELS)
    if ps.size * bs.size > MAX_PANELS.largest:
        raise UsageError(f"--P, --batch: expected at most {MAX_PANELS.largest} (P, B) pairs "
                         f"({MAX_PANELS.why}), got {ps.size} × {bs.size}")
    [chosen] = choose_plans(plan_name, _command(), all_allowed=False)
    network, mach = _load(net, machine)
    settings = _settings(overlap, collectives, compute, machine=mach, bucket=bucket,
                         bucket_size=bucket_size)
    return [run_optimize(network, mach, int(P), int(B), chosen, settings, with_limits=False,
                         allow_infeasible=True)
            for B in bs for P in ps]


@plot.command("grid")
@model_options
@plan_option(all_allowed=False)
@figure_output
def plot_grid(net: str, machine: str, processes: str, batch: str, overlap: str,
              collectives: str | None, compute: str, per: str, plan_name: str, output: str,
              bucket: str | None = None, bucket_size: str | None = None) -> None:
    """Stacked bars per Pr×Pc grid (compute, model, batch, domain communication), one panel
    per P, the best bar labelled "X× (Y×)" against 1×P — the paper's Figs. 6-10.

    \b
    Example:
      gridcost plot grid --net alexnet --P 8,32,128,512 --plan fc-model -o fig7.png
    """
    from costmodel.plot import grid_bars

    optima = _optima(net, machine, processes, batch, overlap, collectives, compute, plan_name,
                     bucket, bucket_size)
    _save_figure(grid_bars(optima, per), output)


@plot.command("curve")
@model_options
@plan_option(all_allowed=False)
@click.option("--what", type=click.Choice(["communication", "total"]), default="communication",
              show_default=True, help="Plot communication or total time against Pr.")
@figure_output
def plot_curve(net: str, machine: str, processes: str, batch: str, overlap: str,
               collectives: str | None, compute: str, per: str, plan_name: str, what: str,
               output: str, bucket: str | None = None, bucket_size: str | None = None) -> None:
    """Communication (or total) time against Pr, one line per P and B (lists allowed in --P
    and --batch), the least point of each line starred.

    \b
    Example:
      gridcost plot curve --net alexnet --P 128,512 --batch 512,2048 -o curves.png
    """
    from costmodel.plot import cost_curves, curves_from_optima

    optima = _optima(net, machine, processes, batch, overlap, collectives, compute, plan_name,
                     bucket, bucket_size)
    table = optima[0].table
    title = (f"{table.network.name} on {table.machine.name}, plan {table.plan.name}: "
             f"{what} time against Pr")
    ax = cost_curves(curves_from_optima(optima, what, per), what, per, title=title)
    _save_figure(ax.figure, output)


@plot.command("scaling")
@model_options
@per_process_option
@plan_option(all_allowed=True)
@efficiency_option
@figure_output
def plot_scaling(net: str, machine: str, processes: str, batch: str, overlap: str,
                 collectives: str | None, compute: str, per: str, per_process: str | None,
                 plan_name: str, efficiency: float, output: str, bucket: str | None = None,
                 bucket_size: str | None = None) -> None:
    """Best time against P for each plan and for pure batch, scaling limits marked.

    \b
    Example:
      gridcost plot scaling --net alexnet --P 1..4096:x2 --plan all -o scaling.png
    """
    import numpy as np

    from costmodel.grids import parse_processes
    from costmodel.plans import choose_plans
    from costmodel.plot import scaling
    from costmodel.search import scaling_limits, sweep

    plans = choose_plans(plan_name, _command(), all_allowed=True)
    ps = parse_processes(processes)
    _check_efficiency(efficiency)
    network, mach = _load(net, machine)
    settings = _settings(overlap, collectives, compute, machine=mach, bucket=bucket,
                         bucket_size=bucket_size)
    if per_process is not None:
        batches = ps * _per_process_batch(per_process, ps)
        label = f"B = {per_process}·P"
    else:
        B = _batch(batch)
        batches = np.full(ps.shape, B)
        label = f"B={B}"
    sweeps = {p.name: sweep(network, mach, ps, batches, p, settings,
                            progress=terminal_progress()) for p in plans}
    limits = None if per_process is not None else {
        p.name: scaling_limits(network, mach, int(batches[0]), p, settings, efficiency)
        for p in plans}
    title = f"{network.name} on {mach.name}, {label}: best time against P"
    ax = scaling(sweeps, per, limits, title=title)
    _save_figure(ax.figure, output)


@plot.command("layers")
@model_options
@plan_option(all_allowed=False)
@figure_output
def plot_layers(net: str, machine: str, processes: str, batch: str, overlap: str,
                collectives: str | None, compute: str, per: str, plan_name: str,
                output: str, bucket: str | None = None, bucket_size: str | None = None) -> None:
    """Heatmap of communication per layer × grid for one P.

    \b
    Example:
      gridcost plot layers --net vgg16 --P 512 -o layers.png
    """
    from costmodel.plot import layer_heatmap

    optimum = _optima(net, machine, _single(processes, "--P"), batch, overlap, collectives,
                      compute, plan_name, bucket, bucket_size)[0]
    _save_figure(layer_heatmap(optimum.table, per).figure, output)


def _command() -> str:
    """The running subcommand as typed after `gridcost`: 'layers', 'report sweep', 'plot grid'
    (for messages)."""
    names = []
    ctx: click.Context | None = click.get_current_context(silent=True)
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def _single(value: str, option: str) -> str:
    return str(_positive_int(value, option))


@cli.command()
@model_options
@click.option("--pr", "pr", default=None, metavar="R",
              help="Pr of the grid (Pc = P/Pr); default: the best grid of the plan under "
                   "--overlap.  Ignored by --plan per-layer.")
@plan_option(all_allowed=False, per_layer=True)
@mapping_option
@click.option("-o", "--output", default=None, metavar="FILE", callback=_figure_path,
              help="Also draw the Gantt chart here: .png, .svg or .pdf.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True,
              help="Format of the event list on stdout.")
def timeline(net: str, machine: str, processes: str, batch: str, overlap: str,
             collectives: str | None, compute: str, per: str, pr: str | None, plan_name: str,
             mapping: str, output: str | None, fmt: str, bucket: str | None = None,
             bucket_size: str | None = None) -> None:
    """One training iteration of one grid as a schedule: every compute step, blocking
    collective and gradient bucket with its start, end, words and group, and the exposed
    communication (docs/schedule.md).  Always per iteration (--per is ignored).

    \b
    Examples:
      gridcost timeline --net resnet50 --machine a100-ib --P 64 --pr 1 --overlap backward \\
          -o iteration.png
      gridcost timeline --net vgg16 --P 64 --pr 4 --overlap backward --bucket horovod
      gridcost timeline --net alexnet --P 64 --plan per-layer --overlap backward --format json
    """
    from costmodel.report import Table, render
    from costmodel.schedule import iteration_schedule
    from costmodel.search import check_batch

    P = _positive_int(processes, "--P")
    B = check_batch(_batch(batch))
    R = None if pr is None or plan_name == PER_LAYER else _positive_int(pr, "--pr")
    if R is not None and P % R:
        raise UsageError(f"--pr: expected a divisor of P={P}, got {R}")
    network, mach = _load(net, machine)
    s = _settings(overlap, collectives, compute, machine=mach, mapping=mapping, bucket=bucket,
                  bucket_size=bucket_size)
    tl = iteration_schedule(network, mach, P, R, B, plan_name, s)
    record = tl.record()
    headers = ["start [ms]", "end [ms]", "duration [ms]", "lane", "what", "layers",
               "words [per process]", "group", "exposed [ms]"]
    def layers_text(names: tuple[str, ...]) -> str:
        if len(names) <= 3:
            return " ".join(names)
        return f"{names[0]} … {names[-1]} ({len(names)} layers)"

    rows = [[e.start_s * 1e3, e.end_s * 1e3, (e.end_s - e.start_s) * 1e3, e.lane, e.what,
             layers_text(e.layers), e.words or None, e.group or None, e.exposed_s * 1e3]
            for e in tl.events]
    title = (f"{network.name} on {mach.name}: {tl.pr}×{tl.pc} grid, P={P}, B={B}, plan "
             f"{tl.plan}, overlap {tl.overlap}"
             + (f", buckets {tl.bucket.label}" if tl.overlap == "backward" else ""))
    notes = [f"iteration {record['total_s'] * 1e3:.4g} ms = compute "
             f"{record['compute_s'] * 1e3:.4g} + exposed communication "
             f"{record['exposed_comm_s'] * 1e3:.4g} (blocking "
             f"{record['blocking_comm_s'] * 1e3:.4g}, waits {record['wait_s'] * 1e3:.4g}, tail "
             f"{record['tail_s'] * 1e3:.4g}); {record['hidden_gradient_s'] * 1e3:.4g} of "
             f"{record['gradient_comm_s'] * 1e3:.4g} ms gradient all-reduce hidden in "
             f"{record['buckets']} buckets",
             "lanes 'pr' and 'gradient' are one communication channel per process"]
    if not tl.feasible:
        notes.append(f"INFEASIBLE grid: {tl.reason}")
    text = render(Table(headers, rows, title, notes), record, fmt)  # type: ignore[arg-type]
    if output is not None:
        from costmodel.plot import timeline as draw_timeline

        _save_figure(draw_timeline(tl), output)
    _emit(text, "-")


@cli.command()
@click.option("--out", "out", required=True, callback=_writable_folder, metavar="DIR",
              help="Folder for the figures, tables and claims (created if missing).")
@click.option("--format", "formats", type=click.Choice(["png", "svg", "pdf"]), multiple=True,
              help="Figure format; repeat for several.  [default: png]")
@click.option("--doc", "doc", default=None, callback=_writable_path, metavar="FILE",
              help="Also write the reproduction document here, linking into DIR.")
@click.option("--beyond/--no-beyond", default=True, show_default=True,
              help="Also run the VGG-16/ResNet-50 study on cori-knl and a100-ib.")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="Draw the figures (--no-figures: tables, claims and document only).")
def reproduce(out: str, formats: tuple[str, ...], doc: str | None, beyond: bool,
              figures: bool) -> None:
    """Recompute the paper's Figs. 6-10 and check its headline claims (docs/model.md §9).

    Writes one figure per experiment, Markdown and CSV tables of the numbers plotted,
    claims.json and claims.md (each claim: paper, gridcost, difference, why) and README.md;
    prints one line per file.  The output is deterministic.

    \b
    Examples:
      gridcost reproduce --out repro
      gridcost reproduce --out docs/figures --doc docs/reproduction.md
      gridcost reproduce --out repro --format svg --no-beyond
    """
    import os

    from costmodel import reproduce as rep

    result = rep.reproduce(beyond=beyond, progress=terminal_progress())
    files = rep.artefacts(result, formats=formats or ("png",), figures=figures)
    if doc is not None:
        files_doc = rep.render_document(result, figures=rep.relative_link(doc, out),
                                        image=(formats or ("png",))[0])
    try:
        os.makedirs(out, exist_ok=True)
        for name, content in files.items():
            path = os.path.join(out, name)
            if isinstance(content, bytes):
                with open(path, "wb") as binary:
                    binary.write(content)
            else:
                with open(path, "w", encoding="utf-8", newline="\n") as text:
                    text.write(content)
            click.echo(path)
    except OSError as exc:
        raise UsageError(f"--out: cannot write into {out!r}: {exc.strerror}") from None
    if doc is not None:
        try:
            with open(doc, "w", encoding="utf-8", newline="\n") as text:
                text.write(files_doc)
        except OSError as exc:
            raise UsageError(f"--doc: cannot write {doc!r}: {exc.strerror}") from None
        click.echo(doc)


def _print_bundled(kind: str, name: str) -> None:
    """Print a bundled file verbatim (`nets --show`, `machines --show`)."""
    from costmodel.loaders import bundled_text

    click.echo(bundled_text(kind, name), nl=False)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True, help="Output format.")
@click.option("--show", metavar="NAME", default=None,
              help="Print the bundled network NAME as YAML, verbatim with its comments: a "
                   "starting point for your own network file.")
def nets(fmt: str, show: str | None) -> None:
    """List the bundled networks: parameters, weighted layers, MACs per sample.

    \b
    Examples:
      gridcost nets
      gridcost nets --show alexnet > my-net.yaml
    """
    if show is not None:
        _print_bundled("networks", show)
        return
    from costmodel.loaders import bundled_names, load_network
    from costmodel.report import Table, render

    rows, records = [], []
    for name in bundled_names("networks"):
        n = load_network(name)
        convs = sum(layer.kind == "conv" for layer in n.layers)
        rows.append([n.name, n.params, len(n.layers), convs, len(n.layers) - convs,
                     round(n.macs / 1e9, 3), "×".join(map(str, n.input_shape)), n.description])
        records.append({"name": n.name, "params": n.params, "weighted_layers": len(n.layers),
                        "conv_layers": convs, "fc_layers": len(n.layers) - convs,
                        "gmacs_per_sample": n.macs / 1e9, "input": list(n.input_shape),
                        "description": n.description})
    headers = ["name", "parameters", "weighted layers", "conv", "fc", "GMAC/sample",
               "input H×W×C", "description"]
    click.echo(render(Table(headers, rows), records, fmt), nl=False)  # type: ignore[arg-type]


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True, help="Output format.")
@click.option("--show", metavar="NAME", default=None,
              help="Print the bundled machine profile NAME as YAML, verbatim with its comments: "
                   "a starting point for your own cluster's profile.")
def machines(fmt: str, show: str | None) -> None:
    """List the bundled machine profiles: α, bandwidth, word size, flop rate, memory, γ,
    collective algorithms, levels and per-collective α, bandwidth (per group size where given).

    \b
    Examples:
      gridcost machines
      gridcost machines --show cori-knl > my-cluster.yaml
    """
    if show is not None:
        _print_bundled("machines", show)
        return
    from costmodel.loaders import bundled_names, load_machine
    from costmodel.report import Table, per_collective_record, per_collective_text, render
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
        records.append({"name": m.name, "alpha_s": m.alpha_s, "bandwidth_Bps": m.bandwidth_Bps,
                        "word_bytes": m.word_bytes, "flop_rate": m.flop_rate,
                        "memory_bytes": m.memory_bytes,
                        "compute_tables": [t.name for t in m.compute_tables],
                        "description": m.description,
                        "gamma_s_per_word": m.gamma_s_per_word, "collectives": m.collectives,
                        "levels": [{"name": lv.name, "processes": lv.processes,
                                    "alpha_s": lv.alpha_s, "bandwidth_Bps": lv.bandwidth_Bps}
                                   for lv in m.levels],
                        "per_collective": per_collective_record(m)})
    headers = ["name", "α", "bandwidth", "word [B]", "flop rate", "memory", "compute tables",
               "γ [s/word]", "collectives", "levels (processes, α, bandwidth)",
               "per collective (α, bandwidth; per group size p)"]
    click.echo(render(Table(headers, rows), records, fmt), nl=False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- measurements


@cli.group()
def calibrate() -> None:
    """Fit α and β of a machine profile to measured collectives (docs/validation.md).

    `run` measures this host (or a torchrun cluster) with torch.distributed; `import` reads
    nccl-tests and OSU micro-benchmark logs.  Both fit t(n) = a + b·n per collective and p,
    map a, b to α, β through the collective's cost formula, and write a profile for optimize.

    \b
    Examples:
      gridcost calibrate run --procs 2..4 --profile host.yaml --plot fit.png
      gridcost calibrate import all_reduce_perf.log all_gather_perf.log --profile nccl.yaml
      gridcost optimize --net alexnet --P 4 --machine host.yaml
    """


KEEP_AWAKE = click.option(
    "--keep-awake/--no-keep-awake", default=False, show_default=True,
    help="Local runs: keep every CPU out of idle with a lowest-priority busy loop "
         "(SCHED_IDLE), so that waiting ranks do not sleep; for hosts whose idle CPUs wake "
         "slowly (see calibrate's host check).")


def statistic_option(text: str) -> Callable[[F], F]:
    """--statistic mean|median (calibration.STATISTICS), with a command's own help text."""
    return click.option("--statistic", "summary", type=click.Choice(["mean", "median"]),
                        default="mean", show_default=True,
                        help=text + "  mean: what a training run pays, slow repetitions "
                             "included; median: the typical call.")


def calibrate_options(func: F) -> F:
    """--collectives, --name, --profile, --plot, --format, -o shared by calibrate run/import."""
    decorators = [
        click.option("--collectives", default="paper", show_default=True, metavar="ALGO",
                     help="Cost formulas that map a, b to α, β: 'paper' or 'ring'."),
        click.option("--name", default=None, metavar="NAME",
                     help="Name of the written machine profile."),
        statistic_option("Summary of each size's repetitions (gridcost JSON input; "
                         "nccl-tests and OSU logs hold averages)."),
        click.option("--profile", "profile_path", default=None,
                     callback=_writable_path, metavar="FILE",
                     help="Write the machine profile YAML here (loads with --machine FILE)."),
        click.option("--plot", "plot_path", default=None, callback=_figure_path, metavar="FILE",
                     help="Write the fit and residual plot (.png, .svg or .pdf)."),
        click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
                     default="table", show_default=True, help="Output format of the fit table."),
        click.option("-o", "--output", default="-",
                     callback=_writable_path, show_default=True, metavar="FILE",
                     help="Write the fit table here; '-' is stdout."),
        click.option("--accept-implausible", is_flag=True, default=False,
                     help="Write a physically implausible fit anyway (bandwidth > 10 TB/s, a "
                          "zero term, < 2 sizes in the bandwidth regime, median residual > "
                          "50 %), with warnings in the output and the profile; without it such "
                          "a fit is refused (exit 2)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _profile_name(name: str | None) -> None:
    """--name of a calibrated profile: printable text (a control character would be a second
    line in every table and comment); UsageError otherwise."""
    if name is not None and (not name.strip() or not name.isprintable()):
        raise UsageError(f"--name: expected a printable, non-empty name, got {name!r}")


def _finish_calibration(series: list[Any], collectives: str, name: str, description: str,
                        flop_rate: float | None, provenance: list[str], profile_path: str | None,
                        plot_path: str | None, fmt: str, output: str,
                        extra: dict[str, Any] | None = None,
                        accept_implausible: bool = False) -> None:
    """Fit, check the fit's plausibility (refused unless ``accept_implausible``: then with
    warnings), print the fit table (with ``extra``'s 'notes'; its other keys go into the JSON
    record), write the profile and the plot."""
    from costmodel.calibration import calibrate as fit
    from costmodel.calibration import (
        calibration_record,
        fits_table,
        implausibilities,
        profile_yaml,
    )
    from costmodel.report import Table, render

    _settings("none", collectives, "none")
    cal = fit(series, collectives)
    problems = implausibilities(cal, series)
    if problems and not accept_implausible:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"implausible fit, nothing written: {problems[0]}{more}; measure "
                         "larger messages or more repetitions, or pass --accept-implausible "
                         "to write it with warnings")
    table = fits_table(cal, f"calibration of {name} ({len(series)} series)")
    record = calibration_record(cal)
    record["warnings"] = problems
    if profile_path is not None:
        text = profile_yaml(cal, name, flop_rate, description, provenance, problems)
        _emit(text, profile_path, "--profile")
        record["profile"] = profile_path
    notes = list(table.notes)
    notes += [f"WARNING: implausible fit, written because of --accept-implausible: {p}"
              for p in problems]
    extra = dict(extra or {})
    notes += extra.pop("notes", [])
    record.update(extra)
    if profile_path is not None:
        notes.append(f"wrote machine profile {profile_path} (use: --machine {profile_path})")
    _emit(render(Table(table.headers, table.rows, table.title, notes), record, fmt),  # type: ignore[arg-type]
          output)
    if plot_path is not None:
        from costmodel.plot import calibration_fits

        axes = calibration_fits(record["points"])  # type: ignore[arg-type]
        _save_figure(axes[0].figure, plot_path, "--plot")


@calibrate.command("import")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--collective", type=click.Choice(["allgather", "allreduce", "p2p"]), default=None,
              help="The collective of every FILE (default: from the log or its file name).")
@click.option("--procs", default=None, metavar="P",
              help="Processes of the run (OSU logs do not print it; nccl-tests do).")
@click.option("--word-bytes", default="4", show_default=True, metavar="W",
              help="Bytes per word of the profile; the logs' data type must match.")
@click.option("--flop-rate", default=None, metavar="RATE",
              help="Flop rate to write into the profile, e.g. '20 TFLOP/s' (logs lack it).")
@calibrate_options
def calibrate_import(files: tuple[str, ...], collective: str | None, procs: str | None,
                     word_bytes: str, flop_rate: str | None, collectives: str, name: str | None,
                     summary: str, profile_path: str | None, plot_path: str | None, fmt: str,
                     output: str, accept_implausible: bool) -> None:
    """Fit α and β to nccl-tests or OSU micro-benchmark logs, or to gridcost's own JSON:
    `calibrate run --raw` (microbenchmarks) or `validate --raw` (the calls of real training
    steps: an in-step calibration).

    \b
    Examples:
      gridcost calibrate import all_reduce_perf.log all_gather_perf.log --profile nccl.yaml
      gridcost calibrate import osu_allreduce.txt osu_latency.txt --procs 64 --plot osu.png
      gridcost calibrate import val-raw.json --profile in-step.yaml
    """
    from pathlib import Path

    from costmodel.calibration import idle_note, idle_probe_of, parse_logs
    from costmodel.units import parse_quantity

    _profile_name(name)
    p = _positive_int(procs, "--procs") if procs is not None else None
    w = _positive_int(word_bytes, "--word-bytes", WORD_BYTES)
    rate = parse_quantity(flop_rate, "flop_rate", "", "--flop-rate") if flop_rate else None
    series, notes = [], []
    for path in files:
        text = _read_text(path, "a readable text log")
        series += parse_logs(text, path, collective, p, w, summary)
        idle = idle_probe_of(text)
        if idle is not None:
            notes.append(f"{Path(path).name}: {idle_note(idle)[0]}")
    label = name or "imported"
    _finish_calibration(series, collectives, label,
                        f"α–β fitted to {len(files)} benchmark log(s)", rate,
                        ["Fitted to: " + ", ".join(Path(f).name for f in files)], profile_path,
                        plot_path, fmt, output, {"notes": notes} if notes else None,
                        accept_implausible)


def _read_text(path: str, expected: str) -> str:
    """The UTF-8 text of ``path``; a SpecError naming it and ``expected`` when unreadable."""
    from pathlib import Path

    from costmodel.errors import SpecError

    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, "", expected, str(exc)) from None


def _parse_bytes(value: str, option: str) -> int:
    """A message size ≥ 1 byte and ≤ the largest message (costmodel.limits)."""
    from costmodel.limits import MAX_MESSAGE_BYTES
    from costmodel.units import parse_quantity

    size = parse_quantity(value, "bytes", "", option)
    if not 1 <= size <= MAX_MESSAGE_BYTES.largest:
        raise UsageError(f"{option}: expected a size from 1 B to {MAX_MESSAGE_BYTES.largest:,} "
                         f"B ({MAX_MESSAGE_BYTES.why}), got {value[:40]!r}")
    return int(size)


def _timeout(value: float) -> float:
    from costmodel.limits import MAX_TIMEOUT_S

    if not 0 < value <= MAX_TIMEOUT_S:
        raise UsageError(f"--timeout: expected seconds in (0, {MAX_TIMEOUT_S:,}], got {value!r}")
    return value


@calibrate.command("run")
@click.option("--procs", default="2..4", show_default=True, metavar="P",
              help="Process counts to measure: '2..4', '2,4'.  Under torchrun: at most the "
                   "world size (default there: the world size).")
@click.option("--min-size", default="4 B", show_default=True, metavar="SIZE",
              help="Smallest message.")
@click.option("--max-size", default="64 MiB", show_default=True, metavar="SIZE",
              help="Largest message.")
@click.option("--factor", default="4", show_default=True, metavar="F",
              help="Message sizes grow by this factor.")
@click.option("--reps", default="10", show_default=True, metavar="N",
              help="Timed repetitions per size (summarised by --statistic).")
@click.option("--warmup", default="2", show_default=True, metavar="N",
              help="Untimed repetitions before them.")
@click.option("--timeout", default=1800.0, show_default=True, type=float,
              help="Seconds before the local worker processes are ended.")
@click.option("--raw", "raw_path", default=None, callback=_writable_path, metavar="FILE",
              help="Also write the measurements as JSON (re-fit with `calibrate import`).")
@click.option("--idle-gap", default="2 ms", show_default=True, metavar="TIME",
              help="Host check: time a small all-reduce also when the ranks arrive this far "
                   "apart (the first waits idle, as in a training step); '0' skips it.")
@click.option("--concurrent/--isolated", default=True, show_default=True,
              help="Concurrent: all ⌊W/p⌋ disjoint groups of p of the W processes measure at "
                   "once, as the groups of a Pr×Pc grid of W processes communicate; isolated: "
                   "one group, the other processes idle.")
@KEEP_AWAKE
@calibrate_options
def calibrate_run(procs: str, min_size: str, max_size: str, factor: str, reps: str,
                  warmup: str, timeout: float, raw_path: str | None, idle_gap: str,
                  concurrent: bool, keep_awake: bool, collectives: str,
                  name: str | None, summary: str, profile_path: str | None,
                  plot_path: str | None, fmt: str, output: str,
                  accept_implausible: bool) -> None:
    """Measure all-gather, all-reduce and point-to-point with torch.distributed and fit α, β.

    On one host gridcost starts the processes itself (gloo over 127.0.0.1, NCCL with GPUs) and
    always ends them; under torchrun it measures the cluster it was started on.

    \b
    Examples:
      gridcost calibrate run --procs 2..4 --profile host.yaml --plot fit.png
      torchrun --nnodes 2 --nproc-per-node 4 -m costmodel.cli calibrate run --profile c.yaml
    """
    import json
    import os
    import socket

    from costmodel.calibration import bench_series, idle_note
    from costmodel.grids import parse_processes
    from costmodel.measure import require_torch
    from costmodel.measure.launch import oversubscription, run, under_torchrun
    from costmodel.units import parse_quantity

    _profile_name(name)
    _timeout(timeout)
    require_torch()
    torchrun = under_torchrun()
    world = int(os.environ["WORLD_SIZE"]) if torchrun else 0
    ps = [int(p) for p in parse_processes(str(world) if torchrun and procs == "2..4" else procs,
                                          "--procs", MAX_LOCAL_PROCESSES, MAX_LOCAL_PROCESSES)]
    if ps[0] < 2:
        raise UsageError(f"--procs: expected process counts ≥ 2, got {procs!r}")
    if torchrun and ps[-1] > world:
        raise UsageError(f"--procs: at most the world size {world} under torchrun, got {procs!r}")
    low, high = _parse_bytes(min_size, "--min-size"), _parse_bytes(max_size, "--max-size")
    grow = _positive_int(factor, "--factor", FACTOR)
    if grow < 2 or high < low:
        raise UsageError("--factor must be ≥ 2 and --max-size ≥ --min-size")
    sizes = []
    size = low
    while size <= high:
        sizes.append(size)
        size *= grow
    gap_s = 0.0 if idle_gap.strip() in ("0", "0 s", "0 ms") else \
        parse_quantity(idle_gap, "time", "", "--idle-gap")
    args = {"procs": ps, "sizes_bytes": sizes,
            "reps": _positive_int(reps, "--reps", MAX_REPETITIONS),
            "warmup": _count(warmup, "--warmup", MAX_REPETITIONS),
            "collectives": ["allgather", "allreduce", "p2p"], "timeout_s": timeout,
            "idle_gap_s": gap_s, "keep_awake": keep_awake, "concurrent": concurrent}
    result = run("bench", args, ps[-1], timeout, keep_awake, terminal_progress())
    if result is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    if raw_path is not None:
        _emit(json.dumps(result, indent=2, sort_keys=True) + "\n", raw_path, "--raw")
    source = f"torch.distributed {result['backend']}"
    series = bench_series(result, source, summary)
    host = socket.gethostname()
    where = f"torchrun world of {world}" if torchrun else f"host {host}, 127.0.0.1"
    provenance = [f"Measured by gridcost calibrate run: {source} (torch {result['torch']}), "
                  f"{where}, p = {', '.join(map(str, ps))}, sizes {sizes[0]} B to {sizes[-1]} B "
                  f"×{grow}, {summary} of {args['reps']} after {args['warmup']} warm-up, "
                  + (f"every group of p among {ps[-1]} processes at once (--concurrent)"
                     if concurrent else "one group of p at a time (--isolated)")
                  + (", CPUs kept awake (--keep-awake)." if keep_awake else "."),
                  "flop_rate: one process, float32 matrix product (torch.mm 384×384)."]
    extra: dict[str, Any] = {"notes": []}
    crowded = oversubscription(int(os.environ.get("LOCAL_WORLD_SIZE", world)) if torchrun
                               else ps[-1])
    if crowded is not None:
        extra["notes"].append(crowded.text)
        extra["oversubscribed"] = {"processes": crowded.processes, "cores": crowded.cores,
                                   "counted_by": crowded.counted_by}
        provenance.append(crowded.text + ".")
    if result.get("idle"):
        note, ratio = idle_note(result["idle"])
        extra["notes"].append(note)
        extra["idle"] = dict(result["idle"], median_ratio=ratio)
    _finish_calibration(series, collectives, name or f"calibrated-{host}",
                        f"α–β measured on {where} ({source})", float(result["flop_rate"]),
                        provenance, profile_path, plot_path, fmt, output, extra,
                        accept_implausible)


@cli.command()
@click.option("--machine", "machine", required=True, multiple=True, metavar="[P=]M",
              help="Calibrated machine profile for the predictions (gridcost calibrate run); "
                   "repeat as P=FILE for a profile per process count, e.g. --machine 2=a.yaml "
                   "--machine 4=b.yaml.")
@click.option("--P", "processes", default="2,4", show_default=True, metavar="P",
              help="Process counts, each run separately (under torchrun: the world size).")
@click.option("--batch", default="16", show_default=True, metavar="B",
              help="Global mini-batch (a multiple of every P).")
@click.option("--plan", "plan_name", default="all", show_default=True, metavar="PLAN",
              help="model-batch, fc-model, domain-batch or 'all'.")
@click.option("--iterations", default="5", show_default=True, metavar="N",
              help="Timed training iterations per grid (after --warmup).")
@click.option("--warmup", default="2", show_default=True, metavar="N",
              help="Untimed iterations before them (the first one is checked numerically).")
@click.option("--collectives", default="paper", show_default=True, metavar="ALGO",
              help="Collective cost formulas of the prediction: 'paper' or 'ring'.")
@click.option("--timeout", default=1800.0, show_default=True, type=float,
              help="Seconds before the local worker processes are ended.")
@click.option("--sync/--no-sync", default=True, show_default=True,
              help="A barrier before each collective, timed apart, so the collective's time "
                   "excludes the ranks' skew (as in calibrate's microbenchmarks).")
@click.option("--plot", "plot_path", default=None, callback=_figure_path, metavar="FILE",
              help="Write the predicted-vs-measured plot (.png, .svg or .pdf).")
@click.option("--raw", "raw_path", default=None, callback=_writable_path, metavar="FILE",
              help="Also write the workers' raw measurements as JSON.")
@click.option("--from-raw", "from_raw", default=None, metavar="FILE",
              help="Analyse the measurements an earlier --raw wrote instead of running new "
                   "ones (e.g. to predict the same runs with another --machine).")
@statistic_option("Summary of the timed iterations; use the one the profile was calibrated "
                  "with.")
@KEEP_AWAKE
@click.option("--ddp/--no-ddp", "ddp", default=False, show_default=True,
              help="Also time data-parallel steps with PyTorch's DistributedDataParallel "
                   "(default buckets) on P processes and compare them with --overlap "
                   "backward (docs/schedule.md).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True, help="Output format.")
@click.option("-o", "--output", default="-",
              callback=_writable_path, show_default=True, metavar="FILE",
              help="Write here; '-' is stdout.")
def validate(machine: tuple[str, ...], processes: str, batch: str, plan_name: str, iterations: str,
             warmup: str, collectives: str, timeout: float, sync: bool, plot_path: str | None,
             raw_path: str | None, from_raw: str | None, summary: str, keep_awake: bool,
             fmt: str, output: str, ddp: bool = False) -> None:
    """Train a small AlexNet-shaped network with the Pr×Pc algorithm on real processes and
    check the model: numerics vs one process, words per collective, time vs prediction.

    Exit code 1 when the numerics or the volume check fails; the time targets (MAPE,
    ranking) are reported, not enforced.  See docs/validation.md.

    \b
    Examples:
      gridcost calibrate run --procs 2 --profile p2.yaml        # for 2-process jobs
      gridcost calibrate run --procs 2..4 --profile p4.yaml     # for 4-process jobs
      gridcost validate --machine 2=p2.yaml --machine 4=p4.yaml --raw val.json
      gridcost validate --machine other.yaml --from-raw val.json
      torchrun --nnodes 2 --nproc-per-node 4 -m costmodel.cli validate --machine c.yaml
    """
    import json

    from costmodel.plans import choose_plans
    from costmodel.report import render
    from costmodel.validation import (
        PLANS,
        analyse_per_P,
        load_validation_network,
        parse_validation_raw,
        tables,
    )

    _timeout(timeout)
    _settings("none", collectives, "none")
    machines = _machines_per_P(machine)
    network = load_validation_network()
    plans = [p.name for p in choose_plans(plan_name, _command(), all_allowed=True,
                                          fixed=PLANS)]
    merged: dict[str, Any] | None
    if from_raw is not None:
        merged = parse_validation_raw(_read_text(from_raw, "the JSON of 'validate --raw'"),
                                      from_raw, plans)
    else:
        merged = _measure_validation(processes, batch, plans, iterations, warmup, timeout, sync,
                                     keep_awake)
        if merged is not None and ddp:
            merged["ddp"] = _measure_ddp(processes, batch, iterations, warmup, timeout,
                                         keep_awake)
        if merged is None or (merged.get("ddp") is None and ddp):
            return  # a rank other than 0 under torchrun: rank 0 reports
    if raw_path is not None:
        _emit(json.dumps(merged) + "\n", raw_path, "--raw")
    analysis = analyse_per_P(merged, network, machines, collectives, summary)
    extra = []
    if ddp and merged.get("ddp"):
        from costmodel.validation import ddp_analysis, ddp_table

        records = []
        for result in merged["ddp"]:
            P = int(result["world"])
            profile = machines.get(P, machines.get(None))
            if profile is None:
                raise UsageError(f"--machine: no profile for P = {P}")
            records.append(ddp_analysis(result, network, profile, collectives, summary))
        analysis["ddp"] = records
        extra.append(ddp_table(records, ", ".join(sorted({m.name for m in machines.values()}))))
    if fmt == "json":
        _emit(render(tables(analysis)[0], analysis, "json"), output)
    else:
        _emit("\n".join(render(t, None, fmt) for t in [*tables(analysis), *extra]),  # type: ignore[arg-type]
              output)
    if plot_path is not None:
        from costmodel.plot import predicted_vs_measured

        _save_figure(predicted_vs_measured(analysis["runs"]).figure, plot_path, "--plot")
    outcome = analysis["summary"]
    if not (outcome["numerics_ok"] and outcome["volumes_ok"]):
        click.echo("gridcost: validation FAILED (numerics or volumes); see the tables above",
                   err=True)
        raise click.exceptions.Exit(1)


def _machines_per_P(values: tuple[str, ...]) -> dict[int | None, Any]:
    """``--machine`` values (``FILE`` or ``P=FILE``) → {P or None (any P): Machine}."""
    from costmodel.loaders import load_machine

    machines: dict[int | None, Any] = {}
    for value in values:
        head, sep, tail = value.partition("=")
        key = _positive_int(head, "--machine P") if sep and head.strip().isdigit() else None
        path = tail if key is not None else value
        if key in machines:
            raise UsageError(f"--machine: two profiles for "
                             f"{'every P' if key is None else f'P = {key}'}")
        machines[key] = load_machine(path)
    return machines


def _measure_validation(processes: str, batch: str, plans: list[str], iterations: str,
                        warmup: str, timeout: float, sync: bool,
                        keep_awake: bool) -> dict[str, Any] | None:
    """Run the validation steps for every P (local processes, or the torchrun world); the
    merged result on rank 0, None on the other ranks."""
    import os

    from costmodel.grids import parse_processes
    from costmodel.measure import require_torch
    from costmodel.measure.launch import run, under_torchrun
    from costmodel.validation import valid_grids

    B = _batch(batch)
    torchrun = under_torchrun()
    ps = [int(os.environ["WORLD_SIZE"])] if torchrun else \
        [int(p) for p in parse_processes(processes, "--P", MAX_LOCAL_PROCESSES,
                                         MAX_LOCAL_PROCESSES)]
    if ps[0] < 2:
        raise UsageError(f"--P: expected process counts ≥ 2, got {processes!r}")
    jobs = []
    for P in ps:
        grids, _skipped = valid_grids(P, B)
        jobs.append((P, grids))
    require_torch()
    args = {"batch": B, "plans": plans, "warmup": _positive_int(warmup, "--warmup",
                                                                MAX_REPETITIONS),
            "iterations": _positive_int(iterations, "--iterations", MAX_REPETITIONS),
            "lr": 0.01, "seed": 0,
            "timeout_s": timeout, "sync": sync}
    merged: dict[str, Any] = {"runs": []}
    for P, grids in jobs:
        result = run("validate", dict(args, grids=[list(g) for g in grids]), P, timeout,
                     keep_awake, terminal_progress())
        if result is None:
            return None
        merged["runs"] += result["runs"]
        merged.update(backend=result["backend"], batch=result["batch"], keep_awake=keep_awake)
    return merged


def _measure_ddp(processes: str, batch: str, iterations: str, warmup: str, timeout: float,
                 keep_awake: bool) -> list[dict[str, Any]] | None:
    """DDP steps (costmodel.measure.ddp) for every P whose P divides B; rank 0's records, None
    on the other ranks under torchrun."""
    import os

    from costmodel.grids import parse_processes
    from costmodel.measure.launch import run, under_torchrun

    B = _batch(batch)
    ps = [int(os.environ["WORLD_SIZE"])] if under_torchrun() else \
        [int(p) for p in parse_processes(processes, "--P", MAX_LOCAL_PROCESSES,
                                         MAX_LOCAL_PROCESSES)]
    args = {"batch": B, "warmup": _positive_int(warmup, "--warmup", MAX_REPETITIONS),
            "iterations": _positive_int(iterations, "--iterations", MAX_REPETITIONS),
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


@cli.command()
@click.option("--runs", "runs_path", default=None, metavar="FILE",
              help="Runs file (default: the bundled runs, docs/published/runs.yaml); "
                   "machine profiles are read from machines/ beside it.")
@click.option("--plot", "plot_path", default=None, callback=_figure_path, metavar="FILE",
              help="Write the predicted-vs-measured efficiency plot (.png, .svg or .pdf).")
@output_options
def published(runs_path: str | None, plot_path: str | None, fmt: str, output: str) -> None:
    """Predicted vs measured scaling efficiency of published data-parallel runs under the
    overlap modes none, batch and backward, with the error per mode (docs/validation.md,
    "Published runs").

    \b
    Examples:
      gridcost published
      gridcost published --format markdown --plot published.png
    """
    from costmodel.published import errors_table, evaluate_runs, load_runs, record, runs_table
    from costmodel.report import render

    runs = load_runs(runs_path)
    results = evaluate_runs(runs)
    tables = [runs_table(results), errors_table(results)]
    if fmt == "json":
        _emit(render(tables[0], record(runs, results), "json"), output)
    else:
        _emit("\n".join(render(t, None, fmt) for t in tables), output)  # type: ignore[arg-type]
    if plot_path is not None:
        from costmodel.plot import figure_of, published_efficiency

        _save_figure(figure_of(published_efficiency(record(runs, results)["runs"])),
                     plot_path, "--plot")


# ------------------------------------------------------------------------ import (docs/import.md)


@cli.command("import")
@click.argument("source")
@click.option("-o", "--output", default="-",
              callback=_writable_path, show_default=True, metavar="FILE",
              help="Write the network YAML here; '-' is stdout.")
@click.option("--input", "input_spec", default="3x224x224", show_default=True, metavar="CxHxW",
              help="One sample's input, channels × height × width.")
@click.option("--kwargs", "kwargs_json", default=None, metavar="JSON",
              help="Keyword arguments of the model's constructor, a JSON object.")
@click.option("--skip-unsupported", is_flag=True,
              help="Skip unsupported modules or operators instead of failing; each is listed "
                   "on stderr and in the YAML header, and costs nothing.")
def import_command(source: str, output: str, input_spec: str, kwargs_json: str | None,
                   skip_unsupported: bool) -> None:
    """Write a network YAML traced from PyTorch or ONNX, without weights.

    SOURCE is torchvision:NAME, timm:NAME, package.module:callable (your own model, built with
    no arguments or with --kwargs) or a path to an .onnx file.  Needs the optional extra
    gridcost[import].  Any command also takes a SOURCE as --net directly.

    \b
    Examples:
      gridcost import torchvision:resnet50 -o resnet50.yaml
      gridcost import torchvision:vit_b_16 --input 3x224x224 -o vit.yaml
      gridcost import mypackage.models:Net --kwargs '{"width": 64}' -o net.yaml
      gridcost import model.onnx -o model.yaml
      gridcost optimize --net torchvision:convnext_tiny --P 512
    """
    from costmodel.importers import import_network, parse_input, parse_kwargs

    text, trace, network = import_network(source, parse_input(input_spec),
                                          parse_kwargs(kwargs_json), skip_unsupported)
    _emit(text, output)
    for skipped in trace.skipped:
        click.echo(f"gridcost import: skipped (not costed): {skipped}", err=True)
    click.echo(f"gridcost import: {source}: {len(network.layers)} weighted layers, "
               f"{network.params:,} parameters, {network.macs / 1e9:.4g} GMAC/sample"
               + (f", {len(trace.skipped)} skipped" if trace.skipped else ""), err=True)


def _short_usage(ctx: click.Context | None) -> str:
    """A few lines for a group called without a command: usage, commands, where help is."""
    path = ctx.command_path if ctx is not None else "gridcost"
    group = ctx.command if ctx is not None else cli
    names = ", ".join(group.list_commands(ctx)) if isinstance(group, click.Group) and ctx \
        else ""
    example = "   e.g. gridcost optimize --net vgg16 --P 512" if path == "gridcost" else ""
    return (f"usage: {path} COMMAND [OPTIONS]{example}\n"
            f"commands: {names}\n"
            f"'{path} --help' describes each; '{path} COMMAND --help' its options")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that cleanup code runs; exit code 143."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; one line on stderr and exit 2 for every user error, 130 after
    Ctrl-C (SIGINT), 143 after SIGTERM."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="gridcost", standalone_mode=False)
    except GridcostError as exc:
        click.echo(f"gridcost: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare `gridcost` or `gridcost plot`
        click.echo(_short_usage(exc.ctx), err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"gridcost: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, _Terminated):
            click.echo("gridcost: terminated (SIGTERM)", err=True)
            return 143
        click.echo("gridcost: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
