"""Sweeps, figures and reports: `sweep`, `report grids|layers|sweep`, `plot
grid|curve|scaling|layers` and `reproduce`; each calls one library function (costmodel.api,
costmodel.output.reproduce) and renders or writes its result."""

from __future__ import annotations

from typing import Any

import click

from costmodel.cli.common import (
    api_options,
    command_name,
    efficiency_option,
    figure_output,
    layers_parameters,
    model_options,
    optimize_parameters,
    output_options,
    per_process_option,
    plan_option,
    report_options,
    save_figure,
    show,
    show_report,
    single,
    sweep_parameters,
    writable_folder,
    writable_path,
    write_file,
)
from costmodel.errors import UsageError
from costmodel.progress import terminal_progress


@click.command()
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

    show(api.sweep(**api_options(options), progress=terminal_progress()), fmt, output)


@click.group()
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

    show_report(api.optimize(**api_options(options)), fmt, output)


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

    show_report(api.layers(**api_options(options)), fmt, output)


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

    show_report(api.sweep(**api_options(options), progress=terminal_progress()), fmt,
                 output)


@click.group()
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
    from costmodel.api import optima
    from costmodel.output.plot import grid_bars

    options: dict[str, Any] = dict(
        P=processes, batch=batch, plan=plan_name, overlap=overlap, collectives=collectives,
        compute=compute, bucket=bucket, bucket_size=bucket_size, command=command_name())
    save_figure(grid_bars(optima(net, machine, **options), per), output)


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
    from costmodel.api import curves

    options: dict[str, Any] = dict(
        P=processes, batch=batch, plan=plan_name, overlap=overlap, collectives=collectives,
        compute=compute, per=per, what=what, bucket=bucket, bucket_size=bucket_size,
        command=command_name())
    result = curves(net, machine, **options)
    save_figure(result.plot(), output)


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
    from costmodel.api import scaling

    options: dict[str, Any] = dict(
        P=processes, batch=batch, per_process_batch=per_process, plan=plan_name,
        overlap=overlap, collectives=collectives, compute=compute, per=per,
        efficiency=efficiency, bucket=bucket, bucket_size=bucket_size, command=command_name())
    result = scaling(net, machine, **options, progress=terminal_progress())
    save_figure(result.plot(), output)


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
    from costmodel.api import optima
    from costmodel.output.plot import layer_heatmap

    options: dict[str, Any] = dict(
        P=single(processes, "--P"), batch=batch, plan=plan_name, overlap=overlap,
        collectives=collectives, compute=compute, bucket=bucket, bucket_size=bucket_size,
        command=command_name())
    optimum = optima(net, machine, **options)[0]
    save_figure(layer_heatmap(optimum.table, per).figure, output)


@click.command()
@click.option("--out", "out", required=True, callback=writable_folder, metavar="DIR",
              help="Folder for the figures, tables and claims (created if missing).")
@click.option("--format", "formats", type=click.Choice(["png", "svg", "pdf"]), multiple=True,
              help="Figure format; repeat for several.  [default: png]")
@click.option("--doc", "doc", default=None, callback=writable_path, metavar="FILE",
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
    from costmodel.output.reproduce import outputs

    made = outputs(out, doc, formats, figures=figures, beyond=beyond,
                   progress=terminal_progress())
    write_folder(made.files, out)
    if made.document is not None and doc is not None:
        write_file(made.document, doc, "--doc", newline="\n")
        click.echo(doc)


def write_folder(files: dict[str, str | bytes], folder: str) -> None:
    """Write ``files`` ({name: text or bytes}) into ``folder`` (created if missing), printing
    each path; a UsageError naming --out when the folder cannot take them."""
    import os

    try:
        os.makedirs(folder, exist_ok=True)
        for name, content in files.items():
            path = os.path.join(folder, name)
            if isinstance(content, bytes):
                with open(path, "wb") as binary:
                    binary.write(content)
            else:
                with open(path, "w", encoding="utf-8", newline="\n") as text:
                    text.write(content)
            click.echo(path)
    except OSError as exc:
        raise UsageError(f"--out: cannot write into {folder!r}: {exc.strerror}") from None
