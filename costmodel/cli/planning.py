"""Planning commands: `optimize`, `layers`, `explain` and `timeline` (one grid, or the best
one, of one P); each calls one costmodel.api function and renders its result."""

from __future__ import annotations

from typing import Any

import click

from costmodel.cli.common import (
    api_options,
    command_name,
    emit,
    figure_path,
    format_option,
    layers_parameters,
    mapping_option,
    model_options,
    optimize_parameters,
    output_options,
    plan_option,
    pr_option,
    save_figure,
    show,
    writable_path,
)


@click.command()
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

    show(api.optimize(**api_options(options)), fmt, output)


@click.command()
@layers_parameters
@output_options
def layers(fmt: str, output: str, **options: Any) -> None:
    """Per-layer breakdown of one Pr×Pc grid: split, group sizes, collectives, words, seconds.

    \b
    Example:
      gridcost layers --net alexnet --P 512 --pr 16 --plan fc-model
    """
    from costmodel import api

    show(api.layers(**api_options(options)), fmt, output)


@click.command()
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
              callback=writable_path, show_default=True, metavar="FILE",
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
    from costmodel.output.report import render_json

    options: dict[str, Any] = dict(
        net=net, machine=machine, P=processes, pr=pr, batch=batch, plan=plan_name,
        overlap=overlap, collectives=collectives, compute=compute, per=per,
        layer_names=layer_names, bucket=bucket, bucket_size=bucket_size, mapping=mapping,
        command=command_name())
    result = api.explain(**options)
    text = render_json(result.record) if fmt == "json" else result.text(fmt)  # type: ignore[arg-type]
    emit(text, output)


@click.command()
@model_options
@click.option("--pr", "pr", default=None, metavar="R",
              help="Pr of the grid (Pc = P/Pr); default: the best grid of the plan under "
                   "--overlap.  Ignored by --plan per-layer.")
@plan_option(all_allowed=False, per_layer=True)
@mapping_option
@click.option("-o", "--output", default=None, metavar="FILE", callback=figure_path,
              help="Also draw the Gantt chart here: .png, .svg or .pdf.")
@format_option("Format of the event list on stdout.")
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
    from costmodel.output.report import render

    options: dict[str, Any] = dict(
        net=net, machine=machine, P=processes, pr=pr, batch=batch, plan=plan_name,
        overlap=overlap, collectives=collectives, compute=compute, mapping=mapping,
        bucket=bucket, bucket_size=bucket_size)
    result = api.timeline(**options)
    text = render(result.tables[0], result.record, fmt)  # type: ignore[arg-type]
    if output is not None:
        save_figure(result.plot(), output)
    emit(text, "-")
