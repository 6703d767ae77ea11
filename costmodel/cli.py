"""The `gridcost` command line: parses options, calls the library, prints or writes the result.

This is the only module that prints, writes files or turns errors into exit codes.  Every
GridcostError and click usage error becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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
from costmodel.units import format_number as _n

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MACHINE = "cori-knl"
FACTOR = Limit(1024, "message sizes growing by more than 1024 leave the α–β fit too few points")
DEFAULT_BATCH = 2048


def _positive_int(value: str, option: str, largest: Limit | None = None) -> int:
    """``value`` as an integer ≥ 1 and ≤ ``largest`` (default: the largest P,
    costmodel.limits); UsageError otherwise (costmodel.api.positive_int)."""
    from costmodel.api import positive_int

    return positive_int(value, option, largest)


def _count(value: str, option: str, largest: Limit, minimum: int = 0) -> int:
    """A count ≥ ``minimum`` (e.g. --warmup 0) and ≤ ``largest``."""
    from costmodel.limits import check

    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 30 or int(text) < minimum:
        raise UsageError(f"{option}: expected an integer ≥ {minimum}, got {value[:40]!r}")
    return check(int(text), largest, option, f"an integer ≥ {minimum}")


def _batch(value: str) -> int:
    from costmodel.api import batch_of

    return batch_of(value)


def _per_process_batch(value: str, processes: Any) -> int:
    from costmodel.api import per_process_batch_of

    return per_process_batch_of(value, processes)


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


def _settings(overlap: str, collectives: str | None, compute: str) -> Any:
    """Check --collectives (and the overlap, compute names) before any work."""
    from costmodel.api import settings_of

    return settings_of(overlap, collectives, compute)


def _api_options(options: dict[str, Any]) -> dict[str, Any]:
    """A command's options as the keywords of its costmodel.api function (--P → P, --plan →
    plan, --per-process-batch → per_process_batch), with the command named in messages."""
    renames = {"processes": "P", "plan_name": "plan", "per_process": "per_process_batch"}
    return {**{renames.get(k, k): v for k, v in options.items()}, "command": _command()}



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


def _show(result: Any, fmt: str, output: str) -> None:
    """Render a costmodel.api result: its JSON record, or its tables."""
    from costmodel.report import render

    if fmt == "json" or len(result.tables) == 1:
        text = render(result.tables[0], result.record, fmt)  # type: ignore[arg-type]
    else:
        text = "\n".join(render(t, None, fmt) for t in result.tables)  # type: ignore[arg-type]
    _emit(text, output)


PER_LAYER = "per-layer"
"""The plan name of the per-layer optimizer (costmodel.perlayer); not one of plans.PLANS."""


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
"""The parameters of `costmodel.api.optimize`, shared by `optimize` and `report grids`."""
layers_parameters = _stack(model_options, memory_options, pr_option,
                           plan_option(all_allowed=False), mapping_option)
"""The parameters of `costmodel.api.layers`, shared by `layers` and `report layers`."""
sweep_parameters = _stack(model_options, memory_options, per_process_option,
                          plan_option(all_allowed=True), efficiency_option, mapping_option)
"""The parameters of `costmodel.api.sweep`, shared by `sweep` and `report sweep`."""


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
    from costmodel import api

    _show(api.optimize(**_api_options(options)), fmt, output)


@cli.command()
@layers_parameters
@output_options
def layers(fmt: str, output: str, **options: Any) -> None:
    """Per-layer breakdown of one Pr×Pc grid: split, group sizes, collectives, words, seconds.

    \b
    Example:
      gridcost layers --net alexnet --P 512 --pr 16 --plan fc-model
    """
    from costmodel import api

    _show(api.layers(**_api_options(options)), fmt, output)


@cli.command()
@model_options
@pr_option
@plan_option(all_allowed=False)
@mapping_option
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
            bucket_size: str | None = None, mapping: str = "best") -> None:
    """Every term of one grid's cost: the formula, the numbers substituted, the result.

    For each weighted layer, its model, batch and domain (halo) terms; then the compute time
    (measured table or flop model), the sums over layers and the total under --overlap.
    Every figure can be checked by hand.

    \b
    Example:
      gridcost explain --net alexnet --P 512 --pr 32 --plan fc-model --layer fc6
    """
    from costmodel import api
    from costmodel.report import render_json

    options: dict[str, Any] = dict(
        net=net, machine=machine, P=processes, pr=pr, batch=batch, plan=plan_name,
        overlap=overlap, collectives=collectives, compute=compute, per=per,
        layer_names=layer_names, bucket=bucket, bucket_size=bucket_size, mapping=mapping,
        command=_command())
    result = api.explain(**options)
    text = render_json(result.record) if fmt == "json" else result.text(fmt)  # type: ignore[arg-type]
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
    from costmodel import api

    _show(api.sweep(**_api_options(options), progress=terminal_progress()), fmt, output)


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


def _show_report(result: Any, fmt: str, output: str) -> None:
    """Render a costmodel.api result with its provenance block (the command as typed)."""
    from costmodel.report import render_report

    context = click.get_current_context()
    command = " ".join(["gridcost", *context.command_path.split()[1:]])
    _emit(render_report(list(result.tables), result.record, result.provenance(command),
                        fmt), output)  # type: ignore[arg-type]


@report.command("grids")
@optimize_parameters
@report_options
def report_grids(fmt: str, output: str, **options: Any) -> None:
    """The grid ranking of `optimize` (or the plan comparison with --plan all).

    \b
    Example:
      gridcost report grids --net alexnet --P 512 --plan fc-model --format latex
    """
    from costmodel import api

    _show_report(api.optimize(**_api_options(options)), fmt, output)


@report.command("layers")
@layers_parameters
@report_options
def report_layers(fmt: str, output: str, **options: Any) -> None:
    """The per-layer breakdown of one grid.

    \b
    Example:
      gridcost report layers --net alexnet --P 512 --pr 32 --plan fc-model --format latex
    """
    from costmodel import api

    _show_report(api.layers(**_api_options(options)), fmt, output)


@report.command("sweep")
@sweep_parameters
@report_options
def report_sweep(fmt: str, output: str, **options: Any) -> None:
    """A sweep over P (strong or weak scaling).

    \b
    Example:
      gridcost report sweep --net alexnet --P 8,32,128,512 --plan fc-model --format latex
    """
    from costmodel import api

    _show_report(api.sweep(**_api_options(options), progress=terminal_progress()), fmt,
                 output)


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
    from costmodel.api import optima

    options: dict[str, Any] = dict(
        net=net, machine=machine, P=processes, batch=batch, plan=plan_name, overlap=overlap,
        collectives=collectives, compute=compute, bucket=bucket, bucket_size=bucket_size,
        command=_command())
    return optima(**options)


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

    from costmodel.api import check_efficiency, load_machine_like, load_network_like, settings_of
    from costmodel.grids import parse_processes
    from costmodel.plans import choose_plans
    from costmodel.plot import scaling
    from costmodel.search import scaling_limits, sweep

    plans = choose_plans(plan_name, _command(), all_allowed=True)
    ps = parse_processes(processes)
    check_efficiency(efficiency)
    network, mach = load_network_like(net), load_machine_like(machine)
    settings = settings_of(overlap, collectives, compute, machine=mach, bucket=bucket,
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
    from costmodel import api
    from costmodel.report import render

    options: dict[str, Any] = dict(
        net=net, machine=machine, P=processes, pr=pr, batch=batch, plan=plan_name,
        overlap=overlap, collectives=collectives, compute=compute, mapping=mapping,
        bucket=bucket, bucket_size=bucket_size)
    result = api.timeline(**options)
    text = render(result.tables[0], result.record, fmt)  # type: ignore[arg-type]
    if output is not None:
        _save_figure(result.plot(), output)
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
    from costmodel.api import check_profile_name

    check_profile_name(name)


def _finish_calibration(series: list[Any], collectives: str, name: str, description: str,
                        flop_rate: float | None, provenance: list[str], profile_path: str | None,
                        plot_path: str | None, fmt: str, output: str,
                        extra: dict[str, Any] | None = None,
                        accept_implausible: bool = False) -> None:
    """Fit, check the fit's plausibility (refused unless ``accept_implausible``: then with
    warnings), print the fit table (with ``extra``'s 'notes'; its other keys go into the JSON
    record), write the profile and the plot."""
    from costmodel.api import fit_series
    from costmodel.report import Table, render

    extra = dict(extra or {})
    notes = extra.pop("notes", [])
    result = fit_series(series, name=name, description=description, collectives=collectives,
                        flop_rate=flop_rate, provenance=provenance, notes=notes, extra=extra,
                        accept_implausible=accept_implausible)
    record, table = dict(result.record), result.table
    if profile_path is not None:
        _emit(_loadable_profile(result.profile_yaml, profile_path), profile_path, "--profile")
        record["profile"] = profile_path
        table = Table(table.headers, table.rows, table.title, [
            *table.notes, f"wrote machine profile {profile_path} (use: --machine {profile_path})"])
    _emit(render(table, record, fmt), output)  # type: ignore[arg-type]
    if plot_path is not None:
        _save_figure(result.plot(), plot_path, "--plot")


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
    from costmodel.api import logs_series

    found = logs_series(files, collective=collective, procs=procs, word_bytes=word_bytes,
                        flop_rate=flop_rate, name=name, statistic=summary)
    _finish_calibration(list(found.series), collectives, found.name, found.description,
                        found.flop_rate, list(found.provenance), profile_path, plot_path, fmt,
                        output, {"notes": list(found.notes)} if found.notes else None,
                        accept_implausible)


def _read_text(path: str, expected: str) -> str:
    """The UTF-8 text of ``path``; a SpecError naming it and ``expected`` when unreadable."""
    from costmodel.loaders import read_text

    return read_text(path, expected=expected)


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
@click.option("--emulate", "emulate", default=None, metavar="SPEC",
              help="Measure an emulated cluster on this host, 'nodes=N, ppn=K, link=RATE', "
                   "and write a profile with levels (node, network); --procs is ignored; "
                   "needs root or user namespaces (docs/validation.md).")
def calibrate_run(procs: str, min_size: str, max_size: str, factor: str, reps: str,
                  warmup: str, timeout: float, raw_path: str | None, idle_gap: str,
                  concurrent: bool, keep_awake: bool, collectives: str,
                  name: str | None, summary: str, profile_path: str | None,
                  plot_path: str | None, fmt: str, output: str,
                  accept_implausible: bool, emulate: str | None = None) -> None:
    """Measure all-gather, all-reduce and point-to-point with torch.distributed and fit α, β.

    On one host gridcost starts the processes itself (gloo over 127.0.0.1, NCCL with GPUs) and
    always ends them; under torchrun it measures the cluster it was started on.

    \b
    Examples:
      gridcost calibrate run --procs 2..4 --profile host.yaml --plot fit.png
      torchrun --nnodes 2 --nproc-per-node 4 -m costmodel.cli calibrate run --profile c.yaml
      gridcost calibrate run --emulate "nodes=4, ppn=2, link=200 Mbit/s" --profile emu.yaml
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
    if emulate is not None:
        _calibrate_emulated(emulate, args, timeout, raw_path, collectives, name, summary,
                            profile_path, fmt, output, accept_implausible)
        return
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


def _loadable_profile(text: str, path: str) -> str:
    """``text`` when gridcost can load it back; --accept-implausible writes implausible fits, but
    never a profile outside the loader's ranges (docs/formats.md, "Limits and ranges")."""
    from costmodel.errors import SpecError
    from costmodel.loaders import machine_from_text

    try:
        machine_from_text(text, path)
    except SpecError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise UsageError(f"--profile {path}: nothing written: the fitted profile would not load "
                         f"({reason})") from None
    return text


def _calibrate_emulated(text: str, args: dict[str, Any], timeout: float, raw_path: str | None,
                        collectives: str, name: str | None, summary: str,
                        profile_path: str | None, fmt: str, output: str,
                        accept_implausible: bool) -> None:
    """calibrate run --emulate: both levels measured on the emulated cluster, a profile with
    levels written (costmodel.emulated)."""
    import json

    from costmodel import emulated
    from costmodel.calibration import bench_series
    from costmodel.measure.emulate import calibration_runs, network_sizes, parse_emulation
    from costmodel.report import Table, render

    spec = parse_emulation(text)
    _settings("none", collectives, "none")
    inside, across = calibration_runs(spec, args, timeout, terminal_progress())
    if raw_path is not None:
        _emit(json.dumps({"node": inside, "network": across}, indent=2, sort_keys=True) + "\n",
              raw_path)
    source = f"torch.distributed {across['backend']}, emulated"
    levels = emulated.fit_levels(bench_series(inside, source, summary) if inside else [],
                                 bench_series(across, source, summary), collectives)
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
    rec = emulated.record(levels, spec.ppn, spec.rate_Bps)
    rec["warnings"] = problems
    notes = list(table.notes) + [f"WARNING: {p}" for p in problems]
    if profile_path is not None:
        provenance = [f"Measured by gridcost calibrate run --emulate '{spec.text}': {source} "
                      f"(torch {across['torch']}), {summary} of {args['reps']} after "
                      f"{args['warmup']} warm-up, sizes {args['sizes_bytes'][0]} B to "
                      f"{args['sizes_bytes'][-1]} B inside a node, to "
                      f"{network_sizes(spec, args['sizes_bytes'])[-1]} B across nodes."]
        _emit(_loadable_profile(emulated.profile_yaml(
            levels, spec.ppn, spec.rate_Bps, profile_name, float(across["flop_rate"]),
            f"α–β measured on an {where}", provenance, problems), profile_path), profile_path)
        rec["profile"] = profile_path
        notes.append(f"wrote machine profile {profile_path} (use: --machine {profile_path})")
    _emit(render(Table(table.headers, table.rows, table.title, notes), rec, fmt),  # type: ignore[arg-type]
          output)


EMULATE = click.option(
    "--emulate", "emulate", default=None, metavar="SPEC",
    help="Run on an emulated cluster on this host: 'nodes=N, ppn=K, link=RATE' (e.g. "
         "'nodes=4, ppn=2, link=200 Mbit/s'): a network namespace per node, links shaped to "
         "RATE; needs root or user namespaces (docs/validation.md, \"An emulated "
         "cluster\").")


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
@EMULATE
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
             fmt: str, output: str, ddp: bool = False, emulate: str | None = None) -> None:
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
      gridcost validate --emulate "nodes=8, ppn=2, link=200 Mbit/s" --P 4,8,16 \\
          --machine emu.yaml --plan fc-model
    """
    import json

    from costmodel.api import validation_of
    from costmodel.plans import choose_plans
    from costmodel.report import render
    from costmodel.validation import PLANS, parse_validation_raw

    _timeout(timeout)
    _settings("none", collectives, "none")
    machines = _machines_per_P(machine)
    plans = [p.name for p in choose_plans(plan_name, _command(), all_allowed=True,
                                          fixed=PLANS)]
    merged: dict[str, Any] | None
    if from_raw is not None:
        merged = parse_validation_raw(_read_text(from_raw, "the JSON of 'validate --raw'"),
                                      from_raw, plans)
    elif emulate is not None:
        if ddp or keep_awake:
            raise UsageError("--emulate: --ddp and --keep-awake are for local runs")
        merged = _measure_emulated(emulate, machines, processes, batch, plans, iterations,
                                   warmup, timeout, sync)
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
    result = validation_of(merged, machines, collectives=collectives, statistic=summary,
                           ddp=ddp)
    analysis = result.record
    if fmt == "json":
        _emit(render(result.tables[0], analysis, "json"), output)
    else:
        _emit("\n".join(render(t, None, fmt) for t in result.tables),  # type: ignore[arg-type]
              output)
    if plot_path is not None:
        _save_figure(result.plot(), plot_path, "--plot")
    if not result.ok:
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


def _measure_emulated(text: str, machines: dict[int | None, Any], processes: str, batch: str,
                      plans: list[str], iterations: str, warmup: str, timeout: float,
                      sync: bool) -> dict[str, Any]:
    """validate --emulate: every P on the emulated cluster, both mappings of every grid."""
    from costmodel.grids import parse_processes
    from costmodel.measure import require_torch
    from costmodel.measure.emulate import parse_emulation, validation_runs
    from costmodel.validation import valid_grids

    spec = parse_emulation(text)
    for P, profile in machines.items():
        inner = profile.levels[0].processes if profile.hierarchical else None
        if inner != spec.ppn:
            raise UsageError(f"--machine{'' if P is None else f' {P}='}: expected a profile "
                             f"with levels whose node holds ppn={spec.ppn} processes (gridcost "
                             f"calibrate run --emulate), got {profile.name!r}")
    B = _positive_int(batch, "--batch")
    ps = [int(p) for p in parse_processes(processes)]
    grids_by_P = {P: [list(g) for g in valid_grids(P, B)[0]] for P in ps}
    require_torch()
    args = {"batch": B, "plans": plans, "warmup": _positive_int(warmup, "--warmup"),
            "iterations": _positive_int(iterations, "--iterations"), "lr": 0.01, "seed": 0,
            "timeout_s": timeout, "sync": sync, "grids_by_P": grids_by_P}
    return validation_runs(spec, ps, args, timeout, terminal_progress())


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
               f"{network.params:,} parameters, {_n(network.macs / 1e9)} GMAC/sample"
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


def _bare_group(argv: list[str] | None) -> click.Context | None:
    """The context of a group named without a command (a bare `gridcost` or `gridcost plot`),
    else None; found before click runs, as click < 8.2 prints the whole help instead."""
    group: click.Group = cli
    path = "gridcost"
    for token in sys.argv[1:] if argv is None else argv:
        sub = group.commands.get(token)
        if token.startswith("-") or not isinstance(sub, click.Group):
            return None
        group, path = sub, f"{path} {token}"
    return click.Context(group, info_name=path)


def _run(argv: list[str] | None) -> int:
    bare = _bare_group(argv)
    if bare is not None:
        click.echo(_short_usage(bare), err=True)
        return 2
    try:
        cli.main(args=argv, prog_name="gridcost", standalone_mode=False)
    except GridcostError as exc:
        click.echo(f"gridcost: {exc}", err=True)
        return exc.exit_code
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
