"""Benchmark of the per-layer plan: ResNet-152 at P = 4096 (docs/perlayer.md §6).

Run from the repository root with the package installed::

    python benchmarks/bench_perlayer.py

Measures with ``time.perf_counter`` (median of 7 runs after one warm-up) the time of
``costmodel.perlayer.optimize_per_layer`` for ResNet-152 (156 weighted layers) on cori-knl at
P = 4096, B = 8192, overlap none (the exact DP) and overlap batch (the Lagrangian search), and,
separately, of the DP alone (``solve_chain`` on the prepared cost arrays).  Target: well under a
second for the whole call.  Always exits 0; a missed target is printed as MISS.
"""

from __future__ import annotations

import platform
import statistics
import time

from costmodel.loaders import load_machine, load_network
from costmodel.perlayer import optimize_per_layer, problem, solve_chain
from costmodel.search import Settings

TARGET_S = 1.0


def median_time(call: object, repeat: int = 7) -> float:
    call()  # type: ignore[operator]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    network, machine = load_network("resnet152"), load_machine("cori-knl")
    P, B = 4096, 8192
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{network.name}: {len(network.layers)} weighted layers, P={P}, B={B}")
    for overlap in ("none", "batch"):
        settings = Settings(overlap=overlap)  # type: ignore[arg-type]
        elapsed = median_time(lambda s=settings: optimize_per_layer(network, machine, P, B, s))
        result = optimize_per_layer(network, machine, P, B, settings)
        verdict = "ok" if elapsed < TARGET_S else "MISS"
        print(f"optimize_per_layer, overlap {overlap}: {elapsed * 1e3:.1f} ms "
              f"({len(result.problem.layouts)} layouts, {result.method}, exact={result.exact}) "
              f"[target < {TARGET_S:g} s: {verdict}]")
    prob = problem(network, machine, P, B)
    c = prob.costs
    layer_s = c.model_s + c.batch_s + c.domain_s + prob.penalty
    elapsed = median_time(lambda: solve_chain(layer_s, prob.redistribution.seconds))
    print(f"solve_chain alone (156 layers × 25² transitions): {elapsed * 1e3:.2f} ms")
    elapsed = median_time(lambda: problem(network, machine, P, B))
    print(f"problem (layer costs (25, 156) and redistribution (155, 25, 25)): "
          f"{elapsed * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
