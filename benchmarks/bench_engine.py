"""Benchmark of the gridcost engine: vectorized vs scalar evaluation, CLI start-up, a big sweep.

Run from the repository root with the package installed::

    python benchmarks/bench_engine.py

One run measures, with ``time.perf_counter``:

(a) grid·layer evaluations per second of ``costmodel.cost.evaluate`` over every factorization of
    every P = 1..4096 (ResNet-152, B = 8192, plan model-batch, cori-knl), and of a plain scalar
    Python reference of docs/model.md §4 on a subsample of the same grids; prints both rates,
    their ratio and the largest relative difference of the per-grid totals;
(b) the wall time of ``gridcost optimize --net vgg16 --P 512`` as a subprocess against a bare
    ``python -c "import numpy, yaml, click"`` (median of 7 interleaved runs each);
(c) the time of one ``costmodel.search.sweep`` over every P = 1..65,536 (ResNet-152, B = 8192).

Targets: (a) ≥ 1e6 evaluations/s and ≥ 100× the scalar reference; (b) ≤ 2× the bare import.
The script always exits 0; a missed target is printed as MISS.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from costmodel import cost
from costmodel.cost import evaluate
from costmodel.grids import Grids, sweep_factorizations
from costmodel.loaders import load_machine, load_network
from costmodel.plans import PLANS
from costmodel.search import CHUNK_ELEMENTS, sweep
from costmodel.specs import Layer, Machine, Network

NETWORK = "resnet152"
MACHINE = "cori-knl"
PLAN = "model-batch"
BATCH = 8192
P_MAX_ENGINE = 4096
P_MAX_SWEEP = 65_536
SCALAR_STRIDE = 50  # every 50th grid goes through the scalar reference
ENGINE_REPEATS = 3
CLI_RUNS = 7
TARGET_RATE = 1e6
TARGET_SPEEDUP = 100.0
TARGET_CLI_RATIO = 2.0


# --------------------------------------------------------------------------- scalar reference


def lg(p: int) -> int:
    """⌈log2 p⌉ for an integer p ≥ 1 (docs/model.md §3's ``lg p``)."""
    return (p - 1).bit_length()


def allgather(p: int, n: float) -> tuple[float, float]:
    """Bruck all-gather of n words on p processes: (latency terms, words) (§3)."""
    return float(lg(p)), (p - 1) / p * n


def allreduce(p: int, n: float) -> tuple[float, float]:
    """All-reduce as the paper charges it: twice the all-gather (§3)."""
    messages, words = allgather(p, n)
    return 2.0 * messages, 2.0 * words


def scalar_layer_s(layer: Layer, pr: int, pc: int, batch: int, alpha: float,
                   beta: float) -> float | None:
    """Seconds per iteration of one layer split model × batch on Pr × Pc (Eq. 8), or None.

    model term: 3·(α·lg Pr + β·⌈B/Pc⌉·(Pr−1)/Pr·d_i); batch term: 2·(α·lg Pc +
    β·(Pc−1)/Pc·|W_i|/Pr), the weight shard being the largest one, ⌈split/Pr⌉/split·|W_i|.
    None when the grid is infeasible for this layer (§6).
    """
    split = layer.out_shape[2]
    if pc > batch or pr > split:
        return None
    samples = -(-batch // pc)
    h, w, c = layer.out_shape
    gathered = samples * h * w * c
    m_ag, w_ag = allgather(pr, gathered)
    m_ar, w_ar = allreduce(pr, gathered)
    shard = layer.weight_params + layer.norm_params
    shard = shard * math.ceil(split / pr) / split
    m_b, w_b = allreduce(pc, shard)
    return alpha * (m_ag + m_ar + m_b) + beta * (w_ag + w_ar + w_b)


def scalar_total_s(network: Network, machine: Machine, pr: int, pc: int,
                   batch: int) -> float:
    """Time per iteration of one grid: flop-rate compute plus every layer's communication."""
    alpha, beta = machine.alpha_s, machine.word_bytes / machine.bandwidth_Bps
    macs = 0
    comm = 0.0
    for layer in network.layers:
        seconds = scalar_layer_s(layer, pr, pc, batch, alpha, beta)
        if seconds is None:
            return math.inf
        comm += seconds
        if layer.kind == "fc":
            macs += layer.in_shape[0] * layer.in_shape[1] * layer.in_shape[2] * layer.out_shape[2]
        else:
            h, w, c = layer.out_shape
            macs += h * w * c * (layer.in_shape[2] // layer.groups) * layer.kernel[0] \
                * layer.kernel[1]
    compute = batch * 3 * 2 * macs / (pr * pc * machine.flop_rate)
    return compute + comm


# --------------------------------------------------------------------------- measurements


def vectorized_totals(network: Network, machine: Machine, grids: Grids) -> np.ndarray:
    """Per-grid time per iteration from the engine, in chunks like costmodel.search.sweep."""
    plan = PLANS[PLAN]
    n = len(grids)
    totals = np.empty(n)
    step = max(1, CHUNK_ELEMENTS // len(network.layers))
    for start in range(0, n, step):
        part = slice(start, min(n, start + step))
        table = evaluate(network, machine, grids.take(part), plan, compute="flops")
        totals[part] = np.where(table.feasible, table.total_s, np.inf)
    return totals


def deduplicated_seconds(network: Network, machine: Machine, grids: Grids) -> float | None:
    """Seconds of ``cost.evaluate_totals`` (distinct layers costed once) on ``grids``, if any."""
    totals_of = getattr(cost, "evaluate_totals", None)
    if totals_of is None:
        return None
    plan = PLANS[PLAN]
    step = max(1, CHUNK_ELEMENTS // len(network.layers))
    start = time.perf_counter()
    for first in range(0, len(grids), step):
        totals_of(network, machine, grids.take(slice(first, first + step)), plan,
                  compute="flops")
    return time.perf_counter() - start


def measure_engine(network: Network, machine: Machine) -> dict[str, float]:
    """(a): evaluations per second of the engine and of the scalar reference."""
    processes = np.arange(1, P_MAX_ENGINE + 1, dtype=np.int64)
    grids, _ = sweep_factorizations(processes, np.array(BATCH))
    evals = len(grids) * len(network.layers)
    vectorized_totals(network, machine, grids.take(slice(0, 64)))  # warm-up
    times = []
    for _ in range(ENGINE_REPEATS):
        start = time.perf_counter()
        totals = vectorized_totals(network, machine, grids)
        times.append(time.perf_counter() - start)
    engine_s = statistics.median(times)
    dedup_s = deduplicated_seconds(network, machine, grids)

    sample = np.arange(0, len(grids), SCALAR_STRIDE)
    start = time.perf_counter()
    scalar = [scalar_total_s(network, machine, int(grids.pr[g]), int(grids.pc[g]),
                             int(grids.batch[g])) for g in sample]
    scalar_s = time.perf_counter() - start
    scalar = np.asarray(scalar)
    reference = totals[sample]
    both = np.isfinite(scalar) & np.isfinite(reference)
    agree_inf = bool((np.isfinite(scalar) == np.isfinite(reference)).all())
    rel = float(np.max(np.abs(scalar[both] - reference[both]) / reference[both]))
    scalar_evals = sample.size * len(network.layers)
    return {
        "grids": len(grids), "layers": len(network.layers), "evals": evals,
        "engine_s": engine_s, "engine_rate": evals / engine_s,
        "scalar_grids": sample.size, "scalar_evals": scalar_evals, "scalar_s": scalar_s,
        "scalar_rate": scalar_evals / scalar_s, "max_rel_diff": rel,
        "feasibility_agrees": float(agree_inf),
        "dedup_s": math.nan if dedup_s is None else dedup_s,
    }


def gridcost_command() -> list[str]:
    """The installed `gridcost` console script next to this interpreter (or on PATH)."""
    local = Path(sys.executable).with_name("gridcost")
    if local.exists():
        return [str(local)]
    found = shutil.which("gridcost")
    if found:
        return [found]
    return [sys.executable, "-m", "costmodel.cli"]


def run_once(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()}")
    return elapsed


def measure_cli() -> dict[str, float]:
    """(b): median wall time of the CLI and of a bare import of its dependencies."""
    cli = [*gridcost_command(), "optimize", "--net", "vgg16", "--P", "512"]
    bare = [sys.executable, "-c", "import numpy, yaml, click"]
    run_once(cli)  # warm the file cache and any byte-code
    run_once(bare)
    cli_times, bare_times = [], []
    for _ in range(CLI_RUNS):  # interleaved, so drift hits both equally
        cli_times.append(run_once(cli))
        bare_times.append(run_once(bare))
    cli_s, bare_s = statistics.median(cli_times), statistics.median(bare_times)
    return {"cli_s": cli_s, "bare_s": bare_s, "ratio": cli_s / bare_s,
            "cli_min": min(cli_times), "cli_max": max(cli_times),
            "bare_min": min(bare_times), "bare_max": max(bare_times)}


def measure_sweep(network: Network, machine: Machine) -> dict[str, float]:
    """(c): one search.sweep over every P = 1..65,536."""
    processes = np.arange(1, P_MAX_SWEEP + 1, dtype=np.int64)
    grids, _ = sweep_factorizations(processes, np.array(BATCH))
    start = time.perf_counter()
    result = sweep(network, machine, processes, np.full(processes.shape, BATCH), PLANS[PLAN])
    elapsed = time.perf_counter() - start
    evals = len(grids) * len(network.layers)
    return {"sweep_s": elapsed, "grids": len(grids), "evals": evals, "rate": evals / elapsed,
            "feasible_P": int(result.feasible.sum())}


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def main() -> int:
    network, machine = load_network(NETWORK), load_machine(MACHINE)
    print(f"gridcost engine benchmark — Python {platform.python_version()}, numpy "
          f"{np.__version__}, {os.cpu_count()} CPUs, {platform.machine()}")
    print(f"network {network.name} ({len(network.layers)} weighted layers), machine "
          f"{machine.name}, plan {PLAN}, B={BATCH}, compute from the flop rate")
    print("load average at start: {:.2f} {:.2f} {:.2f}\n".format(*os.getloadavg()))

    a = measure_engine(network, machine)
    speedup = a["engine_rate"] / a["scalar_rate"]
    print(f"(a) evaluations, P = 1..{P_MAX_ENGINE}: {a['grids']:,} grids × {a['layers']} layers "
          f"= {a['evals']:,} grid·layer evaluations")
    rows = [
        ("vectorized (cost.evaluate)", f"{a['evals']:,}", f"{a['engine_s']:.3f}",
         f"{a['engine_rate']:.3e}", f"≥ {TARGET_RATE:.0e}", _mark(a["engine_rate"] >= TARGET_RATE)),
        (f"scalar reference (every {SCALAR_STRIDE}th grid)", f"{a['scalar_evals']:,}",
         f"{a['scalar_s']:.3f}", f"{a['scalar_rate']:.3e}", "", ""),
        ("ratio vectorized / scalar", "", "", f"{speedup:.0f}×", f"≥ {TARGET_SPEEDUP:.0f}×",
         _mark(speedup >= TARGET_SPEEDUP)),
    ]
    if math.isfinite(a["dedup_s"]):
        rows.append(("per-grid totals only (cost.evaluate_totals)", f"{a['evals']:,}",
                     f"{a['dedup_s']:.3f}", f"{a['evals'] / a['dedup_s']:.3e}", "", "info"))
    _table(("engine", "evaluations", "seconds", "evals/s", "target", ""), rows)
    print(f"    scalar vs vectorized on {a['scalar_grids']:,} grids: max relative difference "
          f"{a['max_rel_diff']:.1e}; feasibility "
          f"{'agrees' if a['feasibility_agrees'] else 'DISAGREES'}\n")

    b = measure_cli()
    print(f"(b) start-up, median of {CLI_RUNS} interleaved runs each")
    _table(("command", "median s", "min s", "max s", "target", ""), [
        ("gridcost optimize --net vgg16 --P 512", f"{b['cli_s']:.3f}", f"{b['cli_min']:.3f}",
         f"{b['cli_max']:.3f}", "", ""),
        ('python -c "import numpy, yaml, click"', f"{b['bare_s']:.3f}", f"{b['bare_min']:.3f}",
         f"{b['bare_max']:.3f}", "", ""),
        ("ratio", f"{b['ratio']:.2f}×", "", "", f"≤ {TARGET_CLI_RATIO:.0f}×",
         _mark(b["ratio"] <= TARGET_CLI_RATIO)),
    ])
    print()

    c = measure_sweep(network, machine)
    print(f"(c) search.sweep over every P = 1..{P_MAX_SWEEP:,}")
    _table(("sweep", "grids", "evaluations", "seconds", "evals/s"), [
        (f"{NETWORK}, B={BATCH}, {PLAN}", f"{c['grids']:,}", f"{c['evals']:,}",
         f"{c['sweep_s']:.2f}", f"{c['rate']:.3e}"),
    ])
    print(f"    P with a feasible grid: {c['feasible_P']:,} of {P_MAX_SWEEP:,}")
    print("\nload average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("    " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    print("    " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("    " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                                  for i, (v, w) in enumerate(zip(row, widths))).rstrip())


if __name__ == "__main__":
    sys.exit(main())
