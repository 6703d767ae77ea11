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
    """Latency count and word count of one collective.

    ``words`` has the full broadcast shape of the inputs; ``messages`` depends only on the group
    size p and keeps p's shape (it broadcasts against ``words``), so per-grid latency terms are
    never expanded to grid × layer.
    """

    messages: np.ndarray
    words: np.ndarray

    def seconds(self, alpha_s: float, beta_s_per_word: float) -> np.ndarray:
        """α·messages + β·words, in seconds."""
        return alpha_s * self.messages + beta_s_per_word * self.words

    def __add__(self, other: CollectiveCost) -> CollectiveCost:
        return CollectiveCost(self.messages + other.messages, self.words + other.words)



def ceil_log2(p: np.ndarray) -> np.ndarray:
    """⌈log2 p⌉ for integer p ≥ 1 (the paper's ``lg p``), as float64.

    Exact: the binary exponent of p − 1 (its bit length), so 2^k + 1 gives k + 1 for any k.
    """
    p = np.maximum(np.asarray(p, dtype=np.float64), 1.0)
    return np.frexp(p - 1.0)[1].astype(np.float64)


def _fraction(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return (p - 1.0) / p


@dataclass(frozen=True)
class Rate:
    """A collective on p processes as a function of its size n (words in total):
    ``messages`` latency terms and ``per_word`` words on the critical path per word of n.

    Every algorithm here moves words in proportion to n, so a collective is fixed by these two
    arrays of p's shape; :meth:`of` applies it to sizes n (broadcasting).
    """

    messages: np.ndarray
    per_word: np.ndarray

    def of(self, n: np.ndarray) -> CollectiveCost:
        """The cost of moving n words: messages, per_word·n."""
        return CollectiveCost(self.messages, self.per_word * np.asarray(n, dtype=np.float64))

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.messages + other.messages, self.per_word + other.per_word)


def bruck_allgather_rate(p: np.ndarray) -> Rate:
    """All-gather (Bruck): α·lg p + β·(p−1)/p·n (§3)."""
    return Rate(ceil_log2(p), _fraction(p))


def paper_allreduce_rate(p: np.ndarray) -> Rate:
    """All-reduce as the paper charges it: 2·(α·lg p + β·(p−1)/p·n) (§3, Eqs. 3–4)."""
    return Rate(2.0 * ceil_log2(p), 2.0 * _fraction(p))


def ring_allgather_rate(p: np.ndarray) -> Rate:
    """Ring all-gather: (p−1)·α + β·(p−1)/p·n."""
    return Rate(np.asarray(p, dtype=np.float64) - 1.0, _fraction(p))


def ring_allreduce_rate(p: np.ndarray) -> Rate:
    """Ring all-reduce (reduce-scatter then all-gather): 2(p−1)·α + 2·β·(p−1)/p·n."""
    return Rate(2.0 * (np.asarray(p, dtype=np.float64) - 1.0), 2.0 * _fraction(p))


def allgather_bruck(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """All-gather (Bruck) of n words in total on p processes: α·lg p + β·(p−1)/p·n (§3)."""
    return bruck_allgather_rate(p).of(n)


def allreduce_paper(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """All-reduce as the paper charges it: 2·(α·lg p + β·(p−1)/p·n) (§3, Eqs. 3–4)."""
    return paper_allreduce_rate(p).of(n)


def allreduce_ring(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """Ring all-reduce: 2(p−1)·α + 2·β·(p−1)/p·n (reduce-scatter then all-gather)."""
    return ring_allreduce_rate(p).of(n)


def allgather_ring(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """Ring all-gather: (p−1)·α + β·(p−1)/p·n."""
    return ring_allgather_rate(p).of(n)


def halo_exchange(active: np.ndarray, words: np.ndarray) -> CollectiveCost:
    """One halo message of ``words`` words where ``active``: α + β·words (Eq. 7), else 0."""
    active, words = np.broadcast_arrays(np.asarray(active, dtype=bool),
                                        np.asarray(words, dtype=np.float64))
    return CollectiveCost(np.where(active, 1.0, 0.0), np.where(active, words, 0.0))


RateOf = Callable[[np.ndarray], Rate]


@dataclass(frozen=True)
class Algorithms:
    """The all-gather and all-reduce algorithms one evaluation uses, as rates of p."""

    name: str
    allgather_rate: RateOf
    allreduce_rate: RateOf
    description: str

    def allgather(self, p: np.ndarray, n: np.ndarray) -> CollectiveCost:
        """All-gather of n words on p processes."""
        return self.allgather_rate(p).of(n)

    def allreduce(self, p: np.ndarray, n: np.ndarray) -> CollectiveCost:
        """All-reduce of n words on p processes."""
        return self.allreduce_rate(p).of(n)


ALGORITHMS: dict[str, Algorithms] = {
    "paper": Algorithms("paper", bruck_allgather_rate, paper_allreduce_rate,
                        "Bruck all-gather; all-reduce charged as two all-gathers (the paper)"),
    "ring": Algorithms("ring", ring_allgather_rate, ring_allreduce_rate,
                       "ring all-gather and ring all-reduce: (p−1) and 2(p−1) latency terms"),
}


def algorithms(name: str) -> Algorithms:
    """The collective algorithm set called ``name`` ('paper' or 'ring')."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UnknownName("collective algorithm", name, ALGORITHMS) from None
