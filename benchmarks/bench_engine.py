"""Benchmark of the gridcost engine: vectorized vs scalar evaluation, CLI start-up, big sweeps.

Run from the repository root (with the package installed, or with ``PYTHONPATH=.``)::

    python benchmarks/bench_engine.py                             # prints Markdown
    python benchmarks/bench_engine.py --update docs/performance.md # also rewrites its results

One run measures, with ``time.perf_counter``, each ratio with both of its sides interleaved
(A, B, A, B, … for several rounds, after a warm-up of each), so that a change of the machine's
speed during the run hits both sides alike; every ratio is reported as the min, median and max
of the per-round ratios:

(a) grid·layer evaluations per second of ``costmodel.engine.cost.evaluate`` over every factorization
of
    every P = 1..4096 (ResNet-152, B = 8192, plan model-batch, cori-knl), against a plain scalar
    Python reference of docs/model.md §4 on every 50th of the same grids; also the largest
    relative difference of the two engines' per-grid totals;
(b) the wall time of ``gridcost optimize --net vgg16 --P 512`` as a subprocess against a bare
    ``python -c "import numpy, yaml, click"``;
(c) ``costmodel.planning.search.sweep`` over every P = 1..65,536 and 1..262,144, each in a fresh
child
    process that reports its own peak resident memory (see :func:`peak_mib`).

BLAS and OpenMP are pinned to one thread (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS = 1, set before numpy is imported and inherited by every child), so the figures
do not depend on how many cores a BLAS library decides to use.

Targets, judged on the median: (a) ≥ 1e6 evaluations/s and ≥ 100× the scalar reference;
(b) ≤ 2× the bare import.  A met target prints PASS, a missed one MISS; the script always
exits 0.  Everything it prints is Markdown; with ``--update FILE`` the part of FILE between
``<!-- bench_engine:begin -->`` and ``<!-- bench_engine:end -->`` is replaced by it.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy is imported; children inherit it

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from costmodel.engine import cost  # noqa: E402
from costmodel.engine.cost import evaluate  # noqa: E402
from costmodel.engine.grids import Grids, sweep_factorizations  # noqa: E402
from costmodel.engine.plans import PLANS  # noqa: E402
from costmodel.inputs.loaders import load_machine, load_network  # noqa: E402
from costmodel.inputs.specs import Layer, Machine, Network  # noqa: E402
from costmodel.planning.search import CHUNK_ELEMENTS, sweep  # noqa: E402

NETWORK = "resnet152"
MACHINE = "cori-knl"
PLAN = "model-batch"
BATCH = 8192
P_MAX_ENGINE = 4096
SWEEP_P_MAX = (65_536, 262_144)
SWEEP_RUNS = 3
SCALAR_STRIDE = 50  # every 50th grid goes through the scalar reference
ENGINE_ROUNDS = 9
CLI_ROUNDS = 11
TARGET_RATE = 1e6
TARGET_SPEEDUP = 100.0
TARGET_CLI_RATIO = 2.0
BEGIN, END = "<!-- bench_engine:begin -->", "<!-- bench_engine:end -->"


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
    """Per-grid time per iteration from the engine, in chunks like
    costmodel.planning.search.sweep."""
    plan = PLANS[PLAN]
    n = len(grids)
    totals = np.empty(n)
    step = max(1, CHUNK_ELEMENTS // len(network.layers))
    for start in range(0, n, step):
        part = slice(start, min(n, start + step))
        table = evaluate(network, machine, grids.take(part), plan, compute="flops")
        totals[part] = np.where(table.feasible, table.total_s, np.inf)
    return totals


def deduplicated_totals(network: Network, machine: Machine, grids: Grids) -> None:
    """``cost.evaluate_totals`` (distinct layers costed once) on ``grids``, in chunks."""
    plan = PLANS[PLAN]
    step = max(1, CHUNK_ELEMENTS // len(network.layers))
    for first in range(0, len(grids), step):
        cost.evaluate_totals(network, machine, grids.take(slice(first, first + step)), plan,
                             compute="flops")


def scalar_totals(network: Network, machine: Machine, grids: Grids,
                  sample: np.ndarray) -> np.ndarray:
    """Per-grid time per iteration from the scalar reference, for the grids in ``sample``."""
    return np.asarray([scalar_total_s(network, machine, int(grids.pr[g]), int(grids.pc[g]),
                                      int(grids.batch[g])) for g in sample])


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(min, median, max)."""
    return min(values), statistics.median(values), max(values)


def measure_engine(network: Network, machine: Machine) -> dict[str, object]:
    """(a): per round, the engine, the scalar reference and evaluate_totals, one after another."""
    processes = np.arange(1, P_MAX_ENGINE + 1, dtype=np.int64)
    grids, _ = sweep_factorizations(processes, np.array(BATCH))
    sample = np.arange(0, len(grids), SCALAR_STRIDE)
    layers = len(network.layers)
    evals, scalar_evals = len(grids) * layers, sample.size * layers

    totals = vectorized_totals(network, machine, grids)  # warm-up of each side, and the check
    scalar = scalar_totals(network, machine, grids, sample)
    deduplicated_totals(network, machine, grids)
    reference = totals[sample]
    both = np.isfinite(scalar) & np.isfinite(reference)
    agree = bool((np.isfinite(scalar) == np.isfinite(reference)).all())
    rel = float(np.max(np.abs(scalar[both] - reference[both]) / reference[both]))

    engine_rate, scalar_rate, dedup_rate, ratio = [], [], [], []
    for _ in range(ENGINE_ROUNDS):
        engine_s = timed(lambda: vectorized_totals(network, machine, grids))
        scalar_s = timed(lambda: scalar_totals(network, machine, grids, sample))
        dedup_s = timed(lambda: deduplicated_totals(network, machine, grids))
        engine_rate.append(evals / engine_s)
        scalar_rate.append(scalar_evals / scalar_s)
        dedup_rate.append(evals / dedup_s)
        ratio.append(engine_rate[-1] / scalar_rate[-1])
    return {"grids": len(grids), "layers": layers, "evals": evals,
            "scalar_grids": int(sample.size), "scalar_evals": scalar_evals,
            "engine_rate": spread(engine_rate), "scalar_rate": spread(scalar_rate),
            "dedup_rate": spread(dedup_rate), "ratio": spread(ratio),
            "max_rel_diff": rel, "feasibility_agrees": agree}


def gridcost_command() -> list[str]:
    """The installed `gridcost` console script next to this interpreter (or on PATH), else
    ``python -m costmodel.cli``."""
    local = Path(sys.executable).with_name("gridcost")
    if local.exists():
        return [str(local)]
    found = shutil.which("gridcost")
    if found:
        return [found]
    return [sys.executable, "-m", "costmodel.cli"]


def run_child(command: list[str]) -> tuple[float, float, str]:
    """Run ``command`` to the end; (wall seconds, CPU seconds (user + system), its output).

    The child's stdout and stderr are read together; the CPU time is the child's own, from
    ``os.wait4``.
    """
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdout is not None
    out = child.stdout.read()  # to the end of the output; the child is reaped by wait4 below
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.stdout.close()
    child.returncode = code = os.waitstatus_to_exitcode(status)
    text = out.decode(errors="replace")
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed ({code}): {text.strip()}")
    return elapsed, usage.ru_utime + usage.ru_stime, text


def peak_mib() -> float:
    """This process's peak resident memory so far, MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this program's own memory.  Not
    ru_maxrss: a child started from a large parent inherits the parent's ru_maxrss through
    fork and exec, so a child's ru_maxrss is never below its parent's size.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def measure_cli() -> dict[str, object]:
    """(b): the CLI and a bare import of its dependencies, alternately, CLI_ROUNDS pairs."""
    command = gridcost_command()
    cli = [*command, "optimize", "--net", "vgg16", "--P", "512"]
    bare = [sys.executable, "-c", "import numpy, yaml, click"]
    # gridcost's byte-code as an installed wheel has it (pip compiles on install): without it,
    # under PYTHONDONTWRITEBYTECODE every start would compile gridcost but not numpy, yaml, click
    import compileall

    import costmodel

    compileall.compile_dir(str(Path(costmodel.__file__).parent), quiet=1)
    run_child(cli)  # warm the file cache
    run_child(bare)
    wall: dict[str, list[float]] = {"cli": [], "bare": [], "ratio": []}
    cpu: dict[str, list[float]] = {"cli": [], "bare": [], "ratio": []}
    for _ in range(CLI_ROUNDS):
        a_wall, a_cpu, _ = run_child(cli)
        b_wall, b_cpu, _ = run_child(bare)
        for figures, a, b in ((wall, a_wall, b_wall), (cpu, a_cpu, b_cpu)):
            figures["cli"].append(a)
            figures["bare"].append(b)
            figures["ratio"].append(a / b)
    return {"command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)),
            **{f"{k}_s": spread(v) for k, v in wall.items() if k != "ratio"},
            **{f"{k}_cpu_s": spread(v) for k, v in cpu.items() if k != "ratio"},
            "ratio": spread(wall["ratio"]), "cpu_ratio": spread(cpu["ratio"])}


def child_sweep(p_max: int) -> None:
    """In a child process: one search.sweep over P = 1..p_max; prints its figures as JSON."""
    network, machine = load_network(NETWORK), load_machine(MACHINE)
    processes = np.arange(1, p_max + 1, dtype=np.int64)
    before = peak_mib()
    start = time.perf_counter()
    result = sweep(network, machine, processes, np.full(processes.shape, BATCH), PLANS[PLAN])
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "feasible_P": int(result.feasible.sum()),
                      "peak_before_sweep_mib": before, "peak_mib": peak_mib()}))


def measure_sweeps(network: Network) -> list[dict[str, object]]:
    """(c): each sweep SWEEP_RUNS times in a fresh child process (the sizes alternate)."""
    script = str(Path(__file__).resolve())
    runs: dict[int, list[tuple[float, float, dict[str, float]]]] = {p: [] for p in SWEEP_P_MAX}
    for _ in range(SWEEP_RUNS):
        for p_max in SWEEP_P_MAX:
            _, _, out = run_child([sys.executable, script, "--child-sweep", str(p_max)])
            figures = json.loads(out.strip().splitlines()[-1])
            runs[p_max].append((figures["seconds"], figures["peak_mib"], figures))
    rows = []
    for p_max, done in runs.items():
        grids, _ = sweep_factorizations(np.arange(1, p_max + 1, dtype=np.int64),
                                        np.array(BATCH))
        seconds = [d[0] for d in done]
        rows.append({"p_max": p_max, "grids": len(grids),
                     "evals": len(grids) * len(network.layers), "seconds": spread(seconds),
                     "peak_mib": spread([d[1] for d in done]),
                     "imports_mib": max(d[2]["peak_before_sweep_mib"] for d in done),
                     "feasible_P": int(done[0][2]["feasible_P"])})
    return rows


# --------------------------------------------------------------------------- output


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


def three(values: object, form: str) -> list[str]:
    low, mid, high = values  # type: ignore[misc]
    return [format(low, form), format(mid, form), format(high, form)]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> str:
    """A Markdown table; columns from ``right`` on are right-aligned."""
    align = ["---" if i < right else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(network: Network, machine: Machine, load_start: tuple[float, float, float],
           a: dict[str, object], b: dict[str, object], c: list[dict[str, object]]) -> str:
    load_end = os.getloadavg()
    cores = os.cpu_count() or 1
    busy = max(load_start[0], load_end[0]) > 0.5 * cores
    out = [
        f"Measured {datetime.date.today().isoformat()} by `benchmarks/bench_engine.py`: "
        f"Python {platform.python_version()}, numpy {np.__version__}, {cores} CPUs "
        f"({platform.machine()}), BLAS and OpenMP pinned to 1 thread. Load average (1 min) "
        f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end: the machine was "
        + ("**loaded** (other work running; absolute rates are low and noisy, the paired "
           "ratios less so)." if busy else "quiet."),
        "",
        f"**(a) Grid·layer evaluations per second.** {network.name} ({a['layers']} weighted "
        f"layers), {machine.name}, plan `{PLAN}`, B = {BATCH}, compute from the flop rate; every "
        f"factorization of every P = 1..{P_MAX_ENGINE:,}: {a['grids']:,} grids × {a['layers']} "
        f"layers = {a['evals']:,} evaluations. {ENGINE_ROUNDS} rounds, each timing the three "
        "rows one after another; the ratio is taken within each round.",
        "",
        table(["engine", "evaluations", "min", "median", "max", "target (median)"], [
            ["vectorized, `cost.evaluate` [evaluations/s]", f"{a['evals']:,}",
             *three(a["engine_rate"], ".3g"),
             f"≥ {TARGET_RATE:.0e}: {verdict(a['engine_rate'][1] >= TARGET_RATE)}"],  # type: ignore[index]
            [f"scalar Python reference, every {SCALAR_STRIDE}th grid [evaluations/s]",
             f"{a['scalar_evals']:,}", *three(a["scalar_rate"], ".3g"), ""],
            ["**ratio vectorized / scalar** [×]", "", *three(a["ratio"], ".0f"),
             f"≥ {TARGET_SPEEDUP:.0f}×: {verdict(a['ratio'][1] >= TARGET_SPEEDUP)}"],  # type: ignore[index]
            ["per-grid totals only, `cost.evaluate_totals` [evaluations/s, effective]",
             f"{a['evals']:,}", *three(a["dedup_rate"], ".3g"), "(information)"],
        ]),
        "",
        f"The scalar reference and the engine agree on the {a['scalar_grids']:,} sampled grids "
        f"to a relative {a['max_rel_diff']:.1e}; feasibility "
        f"{'agrees on every one' if a['feasibility_agrees'] else '**DISAGREES**'}.",
        "",
        f"**(b) Start-up of the command line.** `{b['command']} optimize --net vgg16 --P 512` "
        "against `python -c \"import numpy, yaml, click\"`, each a fresh process, "
        f"{CLI_ROUNDS} pairs run alternately after one warm-up each; the ratio is taken within "
        "each pair.",
        "",
        table(["command", "min", "median", "max", "target (median)"], [
            ["`gridcost optimize --net vgg16 --P 512`, wall [s]", *three(b["cli_s"], ".3f"), ""],
            ["`python -c \"import numpy, yaml, click\"`, wall [s]", *three(b["bare_s"], ".3f"),
             ""],
            ["**ratio of the wall times** [×]", *three(b["ratio"], ".2f"),
             f"≤ {TARGET_CLI_RATIO:.0f}×: {verdict(b['ratio'][1] <= TARGET_CLI_RATIO)}"],  # type: ignore[index]
            ["`gridcost optimize --net vgg16 --P 512`, CPU [s]", *three(b["cli_cpu_s"], ".3f"),
             ""],
            ["`python -c \"import numpy, yaml, click\"`, CPU [s]",
             *three(b["bare_cpu_s"], ".3f"), ""],
            ["ratio of the CPU times (user + system) [×]", *three(b["cpu_ratio"], ".2f"),
             "(information)"],
        ]),
        "",
        "CPU time is the child's own (user + system, from `os.wait4`); on a loaded machine it "
        "moves less than the wall time, which also counts the time spent waiting for a core.",
        "",
        f"**(c) Sweeps over every P.** `costmodel.planning.search.sweep`, {network.name}, "
        f"B = {BATCH}, plan `{PLAN}`, each sweep {SWEEP_RUNS} times in a fresh child process; "
        "peak memory is the child's own high-water mark of resident memory (VmHWM), imports "
        "included.",
        "",
        table(["sweep", "grids", "evaluations", "seconds (min / median / max)",
               "peak memory [MiB] (min / median / max)", "of which imports [MiB]",
               "P with a feasible grid"],
              [[f"P = 1..{r['p_max']:,}", f"{r['grids']:,}", f"{r['evals']:,}",
                " / ".join(three(r["seconds"], ".2f")), " / ".join(three(r["peak_mib"], ".0f")),
                f"{r['imports_mib']:.0f}", f"{r['feasible_P']:,}"] for r in c]),
    ]
    return "\n".join(out) + "\n"


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
                        help="also replace FILE's results between the bench_engine markers")
    parser.add_argument("--child-sweep", type=int, metavar="P", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_sweep:
        child_sweep(args.child_sweep)
        return 0
    load_start = os.getloadavg()
    network, machine = load_network(NETWORK), load_machine(MACHINE)
    a = measure_engine(network, machine)
    b = measure_cli()
    c = measure_sweeps(network)
    text = report(network, machine, load_start, a, b, c)
    print(text, end="")
    if args.update:
        update(args.update, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
