"""The `gridcost` command line: parses options, calls the library, prints or writes the result.

The CLI is a package by command group, each command parse → one library call → render:

- :mod:`costmodel.cli.planning`: optimize, layers, explain, timeline;
- :mod:`costmodel.cli.sweeps`: sweep, plot grid|curve|scaling|layers, report grids|layers|sweep,
  reproduce;
- :mod:`costmodel.cli.catalogue`: nets, machines, import;
- :mod:`costmodel.cli.measurement`: calibrate import|run, validate, published;
- :mod:`costmodel.cli.common`: the shared option decorators, output checks and rendering.

This ``__init__`` holds the root group :data:`cli`, the entry points :func:`main` (in-process,
returns the exit code) and :func:`run` (the console script), the mapping of errors to exit
codes and the SIGTERM handling.  The CLI is the only part of gridcost that prints, writes files
or turns errors into exit codes: every GridcostError and click usage error becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from costmodel import __version__
from costmodel.cli import catalogue, measurement, planning, sweeps
from costmodel.errors import GridcostError

__all__ = ["cli", "main", "run"]


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


for _command in (planning.optimize, planning.layers, planning.explain, planning.timeline,
                 sweeps.sweep, sweeps.report, sweeps.plot, sweeps.reproduce,
                 catalogue.nets, catalogue.machines, catalogue.import_command,
                 measurement.calibrate, measurement.validate, measurement.published):
    cli.add_command(_command)


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


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
