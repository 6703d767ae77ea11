"""What the commands of `gridcost` share: option decorators, output-path checks, rendering.

Rendering is the CLI's one job beyond parsing: a library result (costmodel.api,
costmodel.measure.live) becomes text on stdout or in a file (:func:`show`, :func:`show_report`,
:func:`emit`) or a figure file (:func:`save_figure`).  Output paths are checked writable while the
options are parsed (:func:`writable_path`, :func:`figure_path`, :func:`writable_folder`), before any
work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from costmodel.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MACHINE = "cori-knl"
DEFAULT_BATCH = 2048
"""costmodel.api's defaults (tests/test_cli_thin.py checks), repeated so that parsing options
does not import the API before a command runs."""


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


FORMATS = ("table", "json", "csv", "markdown")
"""What --format renders a table as (costmodel.output.report.render)."""


def format_option(help_text: str = "Output format.") -> Callable[[F], F]:
    """--format of a command that renders tables: one of FORMATS, 'table' by default."""
    return click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="table",
                        show_default=True, help=help_text)


def output_options(func: F) -> F:
    """--format and --output."""
    func = click.option("-o", "--output", default="-",
                        callback=writable_path, show_default=True, metavar="FILE",
                        help="Write here; '-' is stdout.")(func)
    return format_option()(func)


def emit(text: str, output: str, option: str = "--output") -> None:
    """``text`` on stdout ('-') or into the file ``output`` (:func:`write_file`)."""
    if output == "-":
        click.echo(text, nl=False)
        return
    write_file(text, output, option)


def write_file(text: str, path: str, option: str, newline: str | None = None) -> None:
    """``text`` into the file ``path`` (UTF-8; ``newline`` as :func:`open` takes it); a
    UsageError naming ``option`` when it cannot be written."""
    try:
        with open(path, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"{option}: cannot write {path!r}: {exc.strerror}") from None


def option_name(param: click.Parameter | None) -> str:
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


def writable_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of an output-file option: the path, checked writable ('-' is stdout)."""
    if value is not None and value != "-":
        _check_writable(value, option_name(param))
    return value


def writable_folder(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback of an output-folder option: an existing writable folder, or one that can be
    created (its nearest existing parent is a writable folder)."""
    import errno
    import os

    option = option_name(param)
    folder = os.path.abspath(value)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        code = errno.EEXIST if folder == os.path.abspath(value) else errno.ENOTDIR
        raise UsageError(f"{option}: cannot write into {value!r}: {os.strerror(code)}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: cannot write into {value!r}: {os.strerror(errno.EACCES)}")
    return value


def api_options(options: dict[str, Any]) -> dict[str, Any]:
    """A command's options as the keywords of its costmodel.api function (--P → P, --plan →
    plan, --per-process-batch → per_process_batch), with the command named in messages."""
    renames = {"processes": "P", "plan_name": "plan", "per_process": "per_process_batch"}
    return {**{renames.get(k, k): v for k, v in options.items()}, "command": command_name()}


def show(result: Any, fmt: str, output: str) -> None:
    """Render a costmodel.api result: its JSON record, or its tables."""
    from costmodel.output.report import render

    if fmt == "json" or len(result.tables) == 1:
        text = render(result.tables[0], result.record, fmt)  # type: ignore[arg-type]
    else:
        text = "\n".join(render(t, None, fmt) for t in result.tables)  # type: ignore[arg-type]
    emit(text, output)


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


def stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply ``decorators`` as if written top to bottom above a function."""
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func
    return apply


optimize_parameters = stack(model_options, memory_options,
                            plan_option(all_allowed=True, per_layer=True), efficiency_option,
                            mapping_option)
"""The parameters of `costmodel.api.optimize`, shared by `optimize` and `report grids`."""
layers_parameters = stack(model_options, memory_options, pr_option,
                          plan_option(all_allowed=False), mapping_option)
"""The parameters of `costmodel.api.layers`, shared by `layers` and `report layers`."""
sweep_parameters = stack(model_options, memory_options, per_process_option,
                         plan_option(all_allowed=True), efficiency_option, mapping_option)
"""The parameters of `costmodel.api.sweep`, shared by `sweep` and `report sweep`."""


def report_options(func: F) -> F:
    """--format (markdown, latex, csv, json) and --output for report tables."""
    func = click.option("-o", "--output", default="-",
                        callback=writable_path, show_default=True, metavar="FILE",
                        help="Write here; '-' is stdout.")(func)
    return click.option("--format", "fmt",
                        type=click.Choice(["markdown", "latex", "csv", "json"]),
                        default="markdown", show_default=True, help="Output format.")(func)


def show_report(result: Any, fmt: str, output: str) -> None:
    """Render a costmodel.api result with its provenance block (the command as typed)."""
    from costmodel.output.report import render_report

    context = click.get_current_context()
    command = " ".join(["gridcost", *context.command_path.split()[1:]])
    emit(render_report(list(result.tables), result.record, result.provenance(command),
                       fmt), output)  # type: ignore[arg-type]


FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def figure_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of a figure option: a .png, .svg or .pdf path that can be written."""
    if value is None:
        return None
    if not value.lower().endswith(FIGURE_SUFFIXES):
        raise UsageError(f"{option_name(param)}: expected a file name ending in .png, .svg "
                         f"or .pdf, got {value!r}")
    return writable_path(ctx, param, value)


def figure_output(func: F) -> F:
    """-o/--output: the figure file; its extension (.png, .svg, .pdf) picks the format."""
    return click.option("-o", "--output", required=True, metavar="FILE", callback=figure_path,
                        help="Figure file: .png, .svg or .pdf.")(func)


def save_figure(figure: Any, output: str, option: str = "--output") -> None:
    """Write a result's figure to ``output`` (its extension picks the format) and say so; a
    UsageError naming ``option`` when it cannot be written."""
    from costmodel.output.plot import save

    try:
        save(figure, output)
    except OSError as exc:
        raise UsageError(f"{option}: cannot write {output!r}: {exc.strerror}") from None
    click.echo(f"wrote {output}")


def command_name() -> str:
    """The running subcommand as typed after `gridcost`: 'layers', 'report sweep', 'plot grid'
    (for messages)."""
    names = []
    ctx: click.Context | None = click.get_current_context(silent=True)
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def single(value: str, option: str) -> str:
    """One P (``--P`` of a command that draws one), checked, as text for the library."""
    from costmodel.api import positive_int

    return str(positive_int(value, option))


