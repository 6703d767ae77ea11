"""The engine's explicit limits, checked before any work starts (docs/cli.md, "Limits").

Each limit is a number and the reason for it; :func:`check` turns a value beyond a limit into
one UsageError line that names the option, the limit and why.  The cost engine works on int64
and float64 arrays, so every limit also keeps its products exact and finite.
"""

from __future__ import annotations

from dataclasses import dataclass

from costmodel.errors import UsageError


@dataclass(frozen=True)
class Limit:
    """A largest value and why it is the largest."""

    largest: int
    why: str


MAX_PROCESSES = Limit(
    2**40, "10^5 times the largest machines built, and P·B stays exact in 64-bit arithmetic")
"""Largest P of any command (1,099,511,627,776): divisors of P are found by trial division up
to √P ≤ 2^20 in one vector step (milliseconds)."""

MAX_BATCH = Limit(
    2**40, "far beyond any dataset, and B·words per sample stays finite and exact")
"""Largest global batch B, also B = b·P of a weak-scaling sweep."""

MAX_SWEEP_VALUES = Limit(
    2**18, "a sweep's time and output grow with the number of P values: 262,144 values take "
           "about a minute and print as many rows")
"""Largest number of distinct P values of a sweep (`sweep`, `report sweep`, `plot scaling`)."""

MAX_DIVISOR_WORK = 2**31
"""Trial divisions allowed to enumerate the divisors of a sweep's P values (ranges are sieved,
scattered values divided one by one): seconds at most."""

MAX_PANELS = Limit(24, "one panel per P, or one line per (P, B): more is unreadable")
"""Largest number of P values in `plot grid` and of (P, B) lines in `plot curve`."""

CELLS_PER_CHUNK = 1 << 21
"""Grid × layer cells evaluated at once: the (G, L) float64 arrays of one chunk take ~16 MiB
each; a sweep keeps only per-P results between chunks (costmodel.planning.search)."""

GRIDS_PER_BLOCK = 1 << 19
"""Grids (Pr, Pc) of a sweep enumerated at once; with CELLS_PER_CHUNK this bounds a sweep's
memory whatever its number of P values (costmodel.planning.search.sweep)."""

MEMORY_BUDGET_BYTES = 1 << 29
"""The peak resident memory a sweep stays under whatever its number of P values (512 MiB, numpy
and the interpreter included).  Measured at P = 1 … 262,144: the engine 185 MiB for AlexNet
(405 MiB before the pure-batch reference was chunked); the whole `gridcost sweep` command, its
262,144-row table included, 350 MB for AlexNet and 290 MB for ResNet-152.  tests/test_limits.py
checks the engine's peak in a subprocess."""

MAX_REDISTRIBUTION_CELLS = Limit(
    2**22, "the per-layer search holds ~10 float64 arrays of that shape, ~300 MB at this size")
"""Largest (L−1)·K² of `--plan per-layer`: L weighted layers, K = 2·d(P) − 1 layouts of P."""

MAX_OPTIMIZER_BYTES = Limit(1024, "256 float32 words of state per parameter, beyond any optimizer")
"""Largest --optimizer number (bytes of state per parameter)."""

MAX_MESSAGE_BYTES = Limit(2**34, "16 GiB, the memory of one accelerator")
"""Largest message of `calibrate run` (--min-size, --max-size) and of a --bucket-size."""

MAX_BUCKET_BYTES = Limit(2**50, "1 PiB, beyond the gradients of any model: one bucket")
"""Largest --bucket-size."""

MAX_REPETITIONS = Limit(10**6, "a million timed calls of one size is hours of measurement")
"""Largest --reps, --warmup, --iterations."""

MAX_LOCAL_PROCESSES = Limit(1024, "local worker processes on one host")
"""Largest process count of `calibrate run` and `validate` on one host."""

WORD_BYTES = Limit(64, "a word of 64 bytes is already 8 float64 values")
"""Largest --word-bytes of `calibrate import`."""

MAX_TIMEOUT_S = 10**7
"""Largest --timeout in seconds (116 days)."""


def check(value: int, limit: Limit, option: str, what: str = "") -> int:
    """``value`` when at most ``limit.largest``; else UsageError naming the limit and why."""
    if value > limit.largest:
        raise UsageError(f"{option}: expected {what or 'a value'} ≤ {limit.largest:,} "
                         f"({limit.why}), got {value:,}")
    return value
