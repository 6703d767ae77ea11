"""Benchmark of the per-layer plan: ResNet-152 at P = 4096 (docs/perlayer.md).

Run from the repository root (with the package installed, or with ``PYTHONPATH=.``)::

    python benchmarks/bench_perlayer.py                              # prints Markdown
    python benchmarks/bench_perlayer.py --update docs/performance.md # also rewrites its results

Times with ``time.perf_counter`` ``costmodel.planning.perlayer.optimize_per_layer`` for ResNet-152
(156 weighted layers) on cori-knl at P = 4096, B = 8192 with overlap none (the exact dynamic
programme) and overlap batch (the Lagrangian search), and, separately, the construction of the
cost arrays (``problem``) and the dynamic programme alone (``solve_chain``); then the same
exact call on the hierarchical a100-ib-nodes (levels: both mappings solved, docs/perlayer.md
§7), with its ratio to the flat call taken within each round.  After one warm-up of each, the
five are run in turn, ROUNDS times (A, B, C, D, E, A, B, …), and each is reported as min /
median / max.  BLAS and OpenMP are pinned to one thread before numpy is imported.  Target: the
whole call well under a second (median < 1 s), printed PASS or MISS; always exits 0.
With ``--update FILE`` the part of FILE between ``<!-- bench_perlayer:begin -->`` and
``<!-- bench_perlayer:end -->`` is replaced by what it prints.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy is imported

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from costmodel.inputs.loaders import load_machine, load_network  # noqa: E402
from costmodel.planning.perlayer import optimize_per_layer, problem, solve_chain  # noqa: E402
from costmodel.planning.search import Settings  # noqa: E402

P, BATCH = 4096, 8192
ROUNDS = 9
TARGET_S = 1.0
LEVELS_MACHINE = "a100-ib-nodes"
BEGIN, END = "<!-- bench_perlayer:begin -->", "<!-- bench_perlayer:end -->"


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure() -> tuple[str, str]:
    """Markdown: a line about the run and the table of the four timings."""
    load_start = os.getloadavg()
    network, machine = load_network("resnet152"), load_machine("cori-knl")
    levels = load_machine(LEVELS_MACHINE)
    none, batch = Settings(overlap="none"), Settings(overlap="batch")
    prob = problem(network, machine, P, BATCH)
    c = prob.costs
    layer_s = c.model_s + c.batch_s + c.domain_s + prob.penalty
    calls: dict[str, Callable[[], object]] = {
        "`optimize_per_layer`, overlap none (exact DP)":
            lambda: optimize_per_layer(network, machine, P, BATCH, none),
        "`optimize_per_layer`, overlap batch (Lagrangian search)":
            lambda: optimize_per_layer(network, machine, P, BATCH, batch),
        f"`problem`: layer costs ({len(prob.layouts)}, {len(network.layers)}) and "
        "redistribution": lambda: problem(network, machine, P, BATCH),
        "`solve_chain` alone": lambda: solve_chain(layer_s, prob.redistribution.seconds),
        f"`optimize_per_layer` on {LEVELS_MACHINE} (levels, both mappings), overlap none":
            lambda: optimize_per_layer(network, levels, P, BATCH, none),
    }
    for call in calls.values():
        call()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            times[name].append(timed(call))
    load_end = os.getloadavg()
    cores = os.cpu_count() or 1
    busy = max(load_start[0], load_end[0]) > 0.5 * cores
    head = (f"Measured {datetime.date.today().isoformat()} by `benchmarks/bench_perlayer.py`: "
            f"Python {platform.python_version()}, numpy {np.__version__}, {cores} CPUs "
            f"({platform.machine()}), BLAS pinned to 1 thread; load average (1 min) "
            f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end "
            f"({'**loaded**' if busy else 'quiet'}). ResNet-152 ({len(network.layers)} "
            f"weighted layers), cori-knl, P = {P:,}, B = {BATCH:,}, {len(prob.layouts)} layouts "
            f"per layer; {ROUNDS} rounds of the five calls in turn.")
    rows = ["| call | min [ms] | median [ms] | max [ms] | target (median) |",
            "|---|---:|---:|---:|---:|"]
    for i, (name, values) in enumerate(times.items()):
        low, mid, high = min(values), statistics.median(values), max(values)
        target = ""
        if i < 2 or i == 4:
            target = f"< {TARGET_S:g} s: {'**PASS**' if mid < TARGET_S else '**MISS**'}"
        rows.append(f"| {name} | {low * 1e3:.1f} | {mid * 1e3:.1f} | {high * 1e3:.1f} | "
                    f"{target} |")
    series = list(times.values())
    flat, levels_s = series[0], series[4]
    ratios = [b / a for a, b in zip(flat, levels_s)]  # within each round (docs/performance.md)
    rows.append("")
    rows.append(f"Levels / flat, overlap none, per round: median {statistics.median(ratios):.2f}× "
                f"(min {min(ratios):.2f}×, max {max(ratios):.2f}×) — {LEVELS_MACHINE} solves the "
                "exact DP under both mappings, each with level-split layer costs and "
                "redistribution.")
    return head, "\n".join(rows)


def update(document: Path, text: str) -> None:
    """Replace the part of ``document`` between BEGIN and END by ``text``."""
    content = document.read_text(encoding="utf-8")
    head, found, rest = content.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{document}: expected the markers {BEGIN} and {END}")
    document.write_text(f"{head}{BEGIN}\n{text}{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", type=Path, metavar="FILE",
                        help="also replace FILE's results between the bench_perlayer markers")
    args = parser.parse_args(argv)
    head, rows = measure()
    text = f"{head}\n\n{rows}\n"
    print(text, end="")
    if args.update:
        update(args.update, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
