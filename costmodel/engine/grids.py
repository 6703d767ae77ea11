"""Every Pr×Pc factorization of P, as integer arrays (docs/model.md §1)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from costmodel.errors import UsageError
from costmodel.limits import MAX_PROCESSES, MAX_SWEEP_VALUES, Limit, check


@dataclass(frozen=True)
class Grids:
    """A set of process grids; all arrays have shape (G,) and dtype int64.

    ``pr`` splits the model or the image domain, ``pc`` the batch; ``batch`` is the global batch
    of each grid (constant for one optimization, B = b·P in a weak-scaling sweep).
    """

    pr: np.ndarray
    pc: np.ndarray
    batch: np.ndarray

    @property
    def p(self) -> np.ndarray:
        """P = Pr·Pc of every grid."""
        return np.asarray(self.pr * self.pc)

    def __len__(self) -> int:
        return int(self.pr.shape[0])

    def take(self, index: np.ndarray | slice) -> Grids:
        """The grids at ``index``."""
        return Grids(self.pr[index], self.pc[index], self.batch[index])


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-D array in increasing order (``np.unique`` without its lazy
    import of ``numpy.ma``, which costs the command line ~15 ms at start-up)."""
    ordered = np.sort(np.asarray(values).ravel())
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def check_processes(P: object) -> int:
    """P as an int, or UsageError when it is not a positive integer ≤ the limit
    (costmodel.limits.MAX_PROCESSES)."""
    if isinstance(P, bool) or not isinstance(P, (int, np.integer)) or P < 1:
        raise UsageError(f"P: expected a positive integer number of processes, got {P!r}")
    return check(int(P), MAX_PROCESSES, "P", "a number of processes")


def divisors(P: int) -> np.ndarray:
    """All divisors of P in increasing order, shape (d(P),).

    Trial division by every d ≤ √P in one vector step: √P ≤ 2^20 under MAX_PROCESSES, a few
    milliseconds and 8 MiB at most.
    """
    return np.array(_divisors(check_processes(P)), dtype=np.int64)


@functools.lru_cache(maxsize=32)
def _divisors(P: int) -> np.ndarray:
    """:func:`divisors`, remembered: reports ask for the layout of one grid at a time."""
    small = np.arange(1, math.isqrt(P) + 1, dtype=np.int64)
    small = small[P % small == 0]
    return sorted_distinct(np.concatenate([small, P // small]))


def factorizations(P: int, batch: int) -> Grids:
    """All (Pr, Pc) with Pr·Pc = P, Pr increasing: 1×P (pure batch) first, P×1 (pure model) last."""
    pr = divisors(P)
    return Grids(pr, P // pr, np.full(pr.shape, batch, dtype=np.int64))


def largest_divisor_at_most(p: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """For each P, its largest divisor d ≤ limit (P itself when P ≤ limit), shape of ``p``.

    Used by `beyond-batch` to give the batch min(P, B) processes and the domain split the
    remaining factor P/B.  Works on the distinct (P, limit) pairs: for small P by the divisor
    pairs (d, P/d), d ≤ √P, in O(√max P) vector steps; for large P (few distinct values, as in
    `optimize`) from each P's divisors.
    """
    p = np.asarray(p, dtype=np.int64)
    limit = np.broadcast_to(np.asarray(limit, dtype=np.int64), p.shape)
    if p.size == 0:
        return np.array(p, dtype=np.int64)
    pairs, inverse = np.unique(np.stack([p.ravel(), limit.ravel()]), axis=1, return_inverse=True)
    values, caps = pairs[0], pairs[1]
    root = math.isqrt(int(values.max()))
    if root * values.size > _SIEVE_WORK and values.size * 64 < root:
        best = np.array([int(d[d <= c].max()) for d, c in
                         ((divisors(int(v)), int(c)) for v, c in zip(values, caps))],
                        dtype=np.int64)
        return best[inverse.ravel()].reshape(p.shape)
    best = np.ones_like(values)
    for d in range(1, root + 1):
        divides = values % d == 0
        best = np.where(divides & (d <= caps), np.maximum(best, d), best)
        other = values // d
        best = np.where(divides & (other <= caps), np.maximum(best, other), best)
    return best[inverse.ravel()].reshape(p.shape)


_SIEVE_WORK = 1 << 16
"""Below this many (value, d) pairs `largest_divisor_at_most` loops over d directly."""


def divisor_work(processes: np.ndarray) -> int:
    """Trial divisions :func:`sweep_factorizations` needs for sorted distinct ``processes``:
    the cheaper of dividing each P by every d ≤ √P and sieving its span."""
    processes = np.asarray(processes, dtype=np.int64)
    if processes.size == 0:
        return 0
    low, top = int(processes.min()), int(processes.max())
    root = math.isqrt(top)
    one_by_one = processes.size * (root + 1)
    sieve = int((top - low + 1) * (math.log(root + 1) + 1)) + root
    return min(one_by_one, sieve)


def sweep_factorizations(processes: np.ndarray, batch: np.ndarray) -> tuple[Grids, np.ndarray]:
    """All factorizations of every P in ``processes`` (with its batch), concatenated.

    Returns the grids and, for each grid, the index of its P in ``processes``.  Few or scattered
    P: divisors one by one; a dense set: a divisor sieve over its span [low, top] — every pair
    (d, P/d) with d ≤ √P, O((top − low)·log top + √top) — with no per-P Python work.
    """
    processes = np.asarray(processes, dtype=np.int64)
    batch = np.broadcast_to(np.asarray(batch, dtype=np.int64), processes.shape)
    low, top = int(processes.min()), int(processes.max())
    root = math.isqrt(top)
    repeated = sorted_distinct(processes).size < processes.size  # e.g. one P at two batches
    one_by_one = processes.size * (root + 1)
    sieve = (top - low + 1) * (math.log(root + 1) + 1) + root
    if repeated or one_by_one <= 4 * sieve:  # few P: divisors one by one
        parts = [divisors(int(p)) for p in processes]
        d = np.concatenate(parts)
        owner = np.repeat(np.arange(processes.size), [part.size for part in parts])
        multiple = processes[owner]
    else:  # many P: every (k, multiple of k ≥ k²) pair of the span at once, and its cofactor
        k = np.arange(1, root + 1, dtype=np.int64)
        first = np.maximum(-(-low // k), k)  # least cofactor q ≥ k with k·q ≥ low
        per_k = np.maximum(top // k - first + 1, 0)
        small = np.repeat(k, per_k)
        start = np.repeat(np.cumsum(per_k) - per_k, per_k)
        cofactor = np.repeat(first, per_k) + (np.arange(small.size, dtype=np.int64) - start)
        multiple = small * cofactor
        position = np.full(top - low + 1, -1, dtype=np.int64)
        position[processes - low] = np.arange(processes.size)
        keep = position[multiple - low] >= 0
        small, cofactor, multiple = small[keep], cofactor[keep], multiple[keep]
        distinct = cofactor != small
        d = np.concatenate([small, cofactor[distinct]])
        multiple = np.concatenate([multiple, multiple[distinct]])
        owner = position[multiple - low]
    order = np.lexsort((d, owner))
    d, multiple, owner = d[order], multiple[order], owner[order]
    return Grids(d, multiple // d, batch[owner]), owner


def parse_processes(text: str, option: str = "--P", largest: Limit = MAX_PROCESSES,
                    count: Limit = MAX_SWEEP_VALUES) -> np.ndarray:
    """Process counts from ``"8,32,128,512"``, ``"1..65536"`` (every integer) or ``"1..4096:x2"``
    (geometric, ×2), or any comma-separated mix; returns sorted unique int64 values.

    Every value must be at most ``largest`` and the values at most ``count`` in number (checked
    before any array is built; costmodel.limits)."""
    values: list[np.ndarray] = []
    total = 0
    for part in str(text).split(","):
        item = part.strip()
        try:
            if ".." in item:
                span, _, step = item.partition(":")
                low_text, high_text = span.split("..")
                low, high = _integer(low_text), _integer(high_text)
                if low < 1 or high < low:
                    raise ValueError
                check(high, largest, option, "every value")
                if step:
                    if not step.startswith("x") or _integer(step[1:]) < 2:
                        raise ValueError
                    factor = _integer(step[1:])
                    geometric = []
                    value = low
                    while value <= high:
                        geometric.append(value)
                        value *= factor
                    total += len(geometric)
                    check(total, count, option, "a number of values")
                    values.append(np.array(geometric, dtype=np.int64))
                else:
                    total += high - low + 1
                    check(total, count, option, "a number of values")
                    values.append(np.arange(low, high + 1, dtype=np.int64))
            else:
                number = _integer(item)
                if number < 1:
                    raise ValueError
                check(number, largest, option, "every value")
                total += 1
                check(total, count, option, "a number of values")
                values.append(np.array([number], dtype=np.int64))
        except ValueError:
            raise UsageError(
                f"{option}: expected positive integers as 'N', 'A,B,C', 'LOW..HIGH' or "
                f"'LOW..HIGH:x2', got {item[:40]!r}") from None
    return sorted_distinct(np.concatenate(values))


def _integer(text: str) -> int:
    """A decimal integer of at most 30 digits (ValueError otherwise)."""
    text = text.strip()
    if not text or len(text) > 30 or not text.isascii() or not text.lstrip("+-").isdigit():
        raise ValueError(text)
    return int(text, 10)
