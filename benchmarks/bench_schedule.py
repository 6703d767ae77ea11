"""Benchmark of overlap 'backward' (docs/schedule.md): the schedule against the paper's modes.

Run from the repository root::

    python benchmarks/bench_schedule.py

One run measures, with ``time.perf_counter`` (best of a few repeats for the short ones):

(a) ``costmodel.planning.search.optimize`` of ResNet-152 at P = 4096, B = 8192, plan model-batch, on
    cori-knl, with scaling limits (as `gridcost optimize` runs it), under overlap none and
    backward; prints both times and their ratio (target: backward well under one second);
(b) one ``costmodel.planning.search.sweep`` over every P = 1..65,536 (ResNet-152, B = 8192), under
    overlap none and backward; prints both times, their ratio and the grid·layer events per
    second of the schedule (target: backward in seconds).

The ratios are the numbers to quote: both modes run in the same process on the same machine.
The script always exits 0; a missed target is printed as MISS.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from costmodel.engine.grids import sweep_factorizations
from costmodel.engine.plans import PLANS
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.planning.search import Settings, optimize, sweep

NETWORK, MACHINE, PLAN, BATCH = "resnet152", "cori-knl", "model-batch", 8192
P_OPTIMIZE, P_SWEEP = 4096, 65_536
REPEATS = 3
TARGET_OPTIMIZE_S = 1.0
TARGET_SWEEP_S = 60.0


def timed(func: object, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    network, machine = load_network(NETWORK), load_machine(MACHINE)
    plan = PLANS[PLAN]
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}; {NETWORK} ({len(network.layers)} layers) on {MACHINE}, "
          f"B={BATCH}, plan {PLAN}")
    times = {}
    for overlap in ("none", "backward"):
        settings = Settings(overlap=overlap)  # type: ignore[arg-type]
        times[overlap] = timed(lambda s=settings: optimize(network, machine, P_OPTIMIZE, BATCH,
                                                           plan, s), REPEATS)
    verdict = "ok" if times["backward"] < TARGET_OPTIMIZE_S else "MISS"
    print(f"(a) optimize P={P_OPTIMIZE} with limits: none {times['none']:.3f} s, backward "
          f"{times['backward']:.3f} s, ratio {times['backward'] / times['none']:.1f}× "
          f"[{verdict}: target < {TARGET_OPTIMIZE_S:g} s]")
    processes = np.arange(1, P_SWEEP + 1, dtype=np.int64)
    grids, _ = sweep_factorizations(processes, np.full(processes.shape, BATCH))
    sweeps = {}
    for overlap in ("none", "backward"):
        settings = Settings(overlap=overlap)  # type: ignore[arg-type]
        sweeps[overlap] = timed(lambda s=settings: sweep(network, machine, processes,
                                                         np.full(processes.shape, BATCH),
                                                         plan, s), 1)
    events = len(grids) * len(network.layers)
    verdict = "ok" if sweeps["backward"] < TARGET_SWEEP_S else "MISS"
    print(f"(b) sweep P=1..{P_SWEEP:,} ({len(grids):,} grids): none {sweeps['none']:.2f} s, "
          f"backward {sweeps['backward']:.2f} s, ratio "
          f"{sweeps['backward'] / sweeps['none']:.1f}×; {events / sweeps['backward']:.3g} "
          f"grid·layer steps/s [{verdict}: target < {TARGET_SWEEP_S:g} s]")


if __name__ == "__main__":
    main()
