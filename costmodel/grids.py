"""Every Pr×Pc factorization of P, as integer arrays (cost-model.md §1)."""

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
    return np.unique(np.concatenate([small, P // small]))


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
    d = np.concatenate([np.full(top // k, k, dtype=np.int64) for k in range(1, top + 1)])
    multiple = np.concatenate([np.arange(k, top + 1, k, dtype=np.int64) for k in range(1, top + 1)])
    position = np.full(top + 1, -1, dtype=np.int64)
    position[processes] = np.arange(processes.size)
    keep = position[multiple] >= 0
    d, multiple = d[keep], multiple[keep]
    order = np.lexsort((d, position[multiple]))
    d, multiple = d[order], multiple[order]
    owner = position[multiple]
    return Grids(d, multiple // d, batch[owner]), owner
