"""α–β cost of the collectives (cost-model.md §3), broadcasting over numpy arrays.

Each function returns a :class:`CollectiveCost` of two arrays: the number of latency terms
(multiplies α, seconds per message) and the words on the critical path (multiplies β, seconds
per word).  Time is ``α·messages + β·words``.  Every collective on p = 1 costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from costmodel.errors import UnknownName


@dataclass(frozen=True)
class CollectiveCost:
    """Latency count and word count of one collective, arrays of one broadcast shape."""

    messages: np.ndarray
    words: np.ndarray

    def seconds(self, alpha_s: float, beta_s_per_word: float) -> np.ndarray:
        """α·messages + β·words, in seconds."""
        return alpha_s * self.messages + beta_s_per_word * self.words

    def __add__(self, other: CollectiveCost) -> CollectiveCost:
        return CollectiveCost(self.messages + other.messages, self.words + other.words)

    def scaled(self, factor: float | np.ndarray) -> CollectiveCost:
        return CollectiveCost(self.messages * factor, self.words * factor)


def ceil_log2(p: np.ndarray) -> np.ndarray:
    """⌈log2 p⌉ for integer p ≥ 1 (the paper's ``lg p``), as float64.

    Exact: the binary exponent of p − 1 (its bit length), so 2^k + 1 gives k + 1 for any k.
    """
    p = np.maximum(np.asarray(p, dtype=np.float64), 1.0)
    return np.frexp(p - 1.0)[1].astype(np.float64)


def _fraction(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return (p - 1.0) / p


def allgather_bruck(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """All-gather (Bruck) of n words in total on p processes: α·lg p + β·(p−1)/p·n (§3)."""
    p = np.asarray(p)
    return CollectiveCost(ceil_log2(p) + 0 * np.asarray(n, dtype=float),
                          _fraction(p) * np.asarray(n, dtype=float))


def allreduce_paper(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """All-reduce as the paper charges it: 2·(α·lg p + β·(p−1)/p·n) (§3, Eqs. 3–4)."""
    return allgather_bruck(p, n).scaled(2.0)


def allreduce_ring(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """Ring all-reduce: 2(p−1)·α + 2·β·(p−1)/p·n (reduce-scatter then all-gather)."""
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return CollectiveCost(2.0 * (p - 1.0) + 0 * n, 2.0 * _fraction(p) * n)


def allgather_ring(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """Ring all-gather: (p−1)·α + β·(p−1)/p·n."""
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return CollectiveCost((p - 1.0) + 0 * n, _fraction(p) * n)


def halo_exchange(active: np.ndarray, words: np.ndarray) -> CollectiveCost:
    """One halo message of ``words`` words where ``active``: α + β·words (Eq. 7), else 0."""
    active, words = np.broadcast_arrays(np.asarray(active, dtype=bool),
                                        np.asarray(words, dtype=np.float64))
    return CollectiveCost(np.where(active, 1.0, 0.0), np.where(active, words, 0.0))


Collective = Callable[[np.ndarray, np.ndarray], CollectiveCost]


@dataclass(frozen=True)
class Algorithms:
    """The all-gather and all-reduce algorithms one evaluation uses."""

    name: str
    allgather: Collective
    allreduce: Collective
    description: str


ALGORITHMS: dict[str, Algorithms] = {
    "paper": Algorithms("paper", allgather_bruck, allreduce_paper,
                        "Bruck all-gather; all-reduce charged as two all-gathers (the paper)"),
    "ring": Algorithms("ring", allgather_ring, allreduce_ring,
                       "ring all-gather and ring all-reduce: (p−1) and 2(p−1) latency terms"),
}


def algorithms(name: str) -> Algorithms:
    """The collective algorithm set called ``name`` ('paper' or 'ring')."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UnknownName("collective algorithm", name, ALGORITHMS) from None
