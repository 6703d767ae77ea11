"""The catalogue: `nets` and `machines` (the bundled networks and machine profiles) and
`import` (a network YAML traced from PyTorch or ONNX)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from costmodel.cli.common import emit, format_option, writable_path
from costmodel.cli.common import show as show_result

if TYPE_CHECKING:
    from costmodel.api import ImportResult


def _print_bundled(kind: str, name: str) -> None:
    """Print a bundled file verbatim (`nets --show`, `machines --show`)."""
    from costmodel.inputs.loaders import bundled_text

    click.echo(bundled_text(kind, name), nl=False)


@click.command()
@format_option()
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
    from costmodel.api import network_catalogue

    show_result(network_catalogue(), fmt, "-")


@click.command()
@format_option()
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
    from costmodel.api import machine_catalogue

    show_result(machine_catalogue(), fmt, "-")


@click.command("import")
@click.argument("source")
@click.option("-o", "--output", default="-",
              callback=writable_path, show_default=True, metavar="FILE",
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
    from costmodel.api import import_network

    result = import_network(source, input_spec, kwargs_json, skip_unsupported)
    emit(result.yaml, output)
    _report_import(result)


def _report_import(result: ImportResult) -> None:
    """On stderr: each module skipped (not costed), then the summary of the import."""
    for skipped in result.skipped:
        click.echo(f"gridcost import: skipped (not costed): {skipped}", err=True)
    click.echo(f"gridcost import: {result.summary()}", err=True)
