"""Every Pr×Pc factorization of P, as integer arrays (docs/model.md §1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.errors import UsageError


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
        return self.pr * self.pc

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
    """P as an int, or UsageError when it is not a positive integer."""
    if isinstance(P, bool) or not isinstance(P, (int, np.integer)) or P < 1:
        raise UsageError(f"P: expected a positive integer number of processes, got {P!r}")
    return int(P)


def divisors(P: int) -> np.ndarray:
    """All divisors of P in increasing order, shape (d(P),)."""
    P = check_processes(P)
    small = np.arange(1, int(np.sqrt(P)) + 2, dtype=np.int64)
    small = small[(small * small <= P) & (P % small == 0)]
    return sorted_distinct(np.concatenate([small, P // small]))


def factorizations(P: int, batch: int) -> Grids:
    """All (Pr, Pc) with Pr·Pc = P, Pr increasing: 1×P (pure batch) first, P×1 (pure model) last."""
    pr = divisors(P)
    return Grids(pr, P // pr, np.full(pr.shape, batch, dtype=np.int64))


def sweep_factorizations(processes: np.ndarray, batch: np.ndarray) -> tuple[Grids, np.ndarray]:
    """All factorizations of every P in ``processes`` (with its batch), concatenated.

    Returns the grids and, for each grid, the index of its P in ``processes``.  Built with a
    divisor sieve: O(N log N) for N = max(processes), no per-P Python work beyond the sieve.
    """
    processes = np.asarray(processes, dtype=np.int64)
    batch = np.broadcast_to(np.asarray(batch, dtype=np.int64), processes.shape)
    top = int(processes.max())
    repeated = sorted_distinct(processes).size < processes.size  # e.g. one P at two batches
    if repeated or processes.size * np.sqrt(top) < 4 * top:  # few P: divisors one by one
        parts = [divisors(int(p)) for p in processes]
        d = np.concatenate(parts)
        owner = np.repeat(np.arange(processes.size), [part.size for part in parts])
        multiple = processes[owner]
    else:  # many P: sieve every (k, multiple of k) pair up to the largest P at once
        k = np.arange(1, top + 1, dtype=np.int64)
        per_k = top // k
        d = np.repeat(k, per_k)
        start = np.repeat(np.cumsum(per_k) - per_k, per_k)
        multiple = d * (np.arange(d.size, dtype=np.int64) - start + 1)
        position = np.full(top + 1, -1, dtype=np.int64)
        position[processes] = np.arange(processes.size)
        keep = position[multiple] >= 0
        d, multiple = d[keep], multiple[keep]
        owner = position[multiple]
    order = np.lexsort((d, owner))
    d, multiple, owner = d[order], multiple[order], owner[order]
    return Grids(d, multiple // d, batch[owner]), owner


def parse_processes(text: str, option: str = "--P") -> np.ndarray:
    """Process counts from ``"8,32,128,512"``, ``"1..65536"`` (every integer) or ``"1..4096:x2"``
    (geometric, ×2), or any comma-separated mix; returns sorted unique int64 values."""
    values: list[np.ndarray] = []
    for part in str(text).split(","):
        item = part.strip()
        try:
            if ".." in item:
                span, _, step = item.partition(":")
                low_text, high_text = span.split("..")
                low, high = int(low_text), int(high_text)
                if low < 1 or high < low:
                    raise ValueError
                if step:
                    if not step.startswith("x") or int(step[1:]) < 2:
                        raise ValueError
                    factor = int(step[1:])
                    count = int(np.floor(np.log(high / low) / np.log(factor) + 1e-9)) + 1
                    values.append(low * factor ** np.arange(max(count, 0), dtype=np.int64))
                else:
                    values.append(np.arange(low, high + 1, dtype=np.int64))
            else:
                number = int(item)
                if number < 1:
                    raise ValueError
                values.append(np.array([number], dtype=np.int64))
        except ValueError:
            raise UsageError(
                f"{option}: expected positive integers as 'N', 'A,B,C', 'LOW..HIGH' or "
                f"'LOW..HIGH:x2', got {item!r}") from None
    return sorted_distinct(np.concatenate(values))
