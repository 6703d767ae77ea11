"""Measurement commands: `calibrate import|run` (α and β fitted to measured collectives),
`validate` (real training steps against the model) and `published` (published runs against
the model).  The measuring itself is costmodel.measure.live's; the fits and analyses are
costmodel.api's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from costmodel.cli.common import (
    F,
    command_name,
    emit,
    figure_path,
    format_option,
    output_options,
    save_figure,
    show,
    writable_path,
)
from costmodel.progress import terminal_progress

if TYPE_CHECKING:
    from costmodel.api import CalibrationResult


@click.group()
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
                     callback=writable_path, metavar="FILE",
                     help="Write the machine profile YAML here (loads with --machine FILE)."),
        click.option("--plot", "plot_path", default=None, callback=figure_path, metavar="FILE",
                     help="Write the fit and residual plot (.png, .svg or .pdf)."),
        format_option("Output format of the fit table."),
        click.option("-o", "--output", default="-",
                     callback=writable_path, show_default=True, metavar="FILE",
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


def _write_calibration(result: CalibrationResult, profile_path: str | None,
                       plot_path: str | None, fmt: str, output: str) -> None:
    """Write the profile (never one gridcost could not load back: CalibrationResult.profile_for),
    print the fit table (naming the profile written), write the plot."""
    from costmodel.output.report import render

    if profile_path is not None:
        emit(result.profile_for(profile_path), profile_path, "--profile")
        result = result.written_to(profile_path)
    emit(render(result.table, result.record, fmt), output)  # type: ignore[arg-type]
    if plot_path is not None and result.has_plot:
        save_figure(result.plot(), plot_path, "--plot")


TIMEOUT = click.option("--timeout", default=1800.0, show_default=True, type=float,
                       help="Seconds before the local worker processes are ended.")
"""--timeout of the commands that start processes (calibrate run, validate)."""


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
@click.option("--emulate", "emulate", default=None, metavar="SPEC",
              help="For the raw JSON of `calibrate run --emulate` written before it stored "
                   "its emulation: 'nodes=N, ppn=K, link=RATE' as it was run.")
@calibrate_options
def calibrate_import(files: tuple[str, ...], collective: str | None, procs: str | None,
                     word_bytes: str, flop_rate: str | None, collectives: str, name: str | None,
                     summary: str, profile_path: str | None, plot_path: str | None, fmt: str,
                     output: str, accept_implausible: bool, emulate: str | None = None) -> None:
    """Fit α and β to nccl-tests or OSU micro-benchmark logs, or to gridcost's own JSON:
    `calibrate run --raw` (microbenchmarks) or `validate --raw` (the calls of real training
    steps: an in-step calibration).

    \b
    Examples:
      gridcost calibrate import all_reduce_perf.log all_gather_perf.log --profile nccl.yaml
      gridcost calibrate import osu_allreduce.txt osu_latency.txt --procs 64 --plot osu.png
      gridcost calibrate import val-raw.json --profile in-step.yaml
      gridcost calibrate import emu-cal.json --collectives ring --profile emu-ring.yaml
    """
    from costmodel.api import calibrate

    result = calibrate(files, collective=collective, procs=procs, word_bytes=word_bytes,
                       flop_rate=flop_rate, collectives=collectives, name=name,
                       statistic=summary, accept_implausible=accept_implausible,
                       emulate=emulate)
    _write_calibration(result, profile_path, plot_path, fmt, output)


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
@TIMEOUT
@click.option("--raw", "raw_path", default=None, callback=writable_path, metavar="FILE",
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
    from costmodel.measure.live import calibration_run

    measured = calibration_run(
        procs, min_size, max_size, factor, reps, warmup, timeout, idle_gap, concurrent,
        keep_awake, collectives, name, summary, accept_implausible, emulate,
        progress=terminal_progress())
    if measured is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    if raw_path is not None:
        emit(measured.raw_json, raw_path, "--raw")
    _write_calibration(measured.result(), profile_path, plot_path, fmt, output)


EMULATE = click.option(
    "--emulate", "emulate", default=None, metavar="SPEC",
    help="Run on an emulated cluster on this host: 'nodes=N, ppn=K, link=RATE' (e.g. "
         "'nodes=4, ppn=2, link=200 Mbit/s'): a network namespace per node, links shaped to "
         "RATE; needs root or user namespaces (docs/validation.md, \"An emulated "
         "cluster\").")


@click.command()
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
              help="Collective algorithms of the prediction (and of an in-step fit), as "
                   "--collectives of optimize: 'paper', 'ring', 'flat-ring' (gloo's rings), ….")
@TIMEOUT
@click.option("--sync/--no-sync", default=True, show_default=True,
              help="A barrier before each collective, timed apart, so the collective's time "
                   "excludes the ranks' skew (as in calibrate's microbenchmarks).")
@click.option("--plot", "plot_path", default=None, callback=figure_path, metavar="FILE",
              help="Write the predicted-vs-measured plot (.png, .svg or .pdf).")
@click.option("--raw", "raw_path", default=None, callback=writable_path, metavar="FILE",
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
              callback=writable_path, show_default=True, metavar="FILE",
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
    from costmodel.measure.live import validation_run

    measured = validation_run(
        machine, processes, batch, plan_name, iterations, warmup, collectives, timeout, sync,
        from_raw, summary, keep_awake, emulate, ddp, command_name(), terminal_progress())
    if measured is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    if raw_path is not None:
        emit(measured.raw_json, raw_path, "--raw")
    result = measured.result()
    show(result, fmt, output)
    if plot_path is not None:
        save_figure(result.plot(), plot_path, "--plot")
    if not result.ok:
        click.echo("gridcost: validation FAILED (numerics or volumes); see the tables above",
                   err=True)
        raise click.exceptions.Exit(1)


@click.command()
@click.option("--runs", "runs_path", default=None, metavar="FILE",
              help="Runs file (default: the bundled runs, docs/published/runs.yaml); "
                   "machine profiles are read from machines/ beside it.")
@click.option("--plot", "plot_path", default=None, callback=figure_path, metavar="FILE",
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
    from costmodel.api import published as evaluate

    result = evaluate(runs_path)
    show(result, fmt, output)
    if plot_path is not None:
        save_figure(result.plot(), plot_path, "--plot")
