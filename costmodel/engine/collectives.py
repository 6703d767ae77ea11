"""α–β–γ cost of the collectives (docs/model.md §3; docs/collectives.md), broadcasting over numpy.

A collective on p processes moving n words costs ``α·messages + β·words + γ·reduced``: latency
terms, words on the critical path, and words of reduction arithmetic on the critical path (γ,
seconds per word reduced; 0 unless the machine profile sets it, so the paper's numbers stay as
they are).  Every algorithm here is linear in n, so it is fixed by a :class:`Rate` of p; the
registry ``REGISTRY[kind][name]`` holds one :class:`Algorithm` per named algorithm and kind
(all-gather, all-reduce, reduce-scatter, broadcast).  :class:`Algorithms` is what one evaluation
uses: one algorithm per kind, or — for ``auto`` — candidates of which the cheapest on the
machine's α, β, γ is taken per message (elementwise, so not linear in n).  Every collective on
p = 1 costs nothing.

Costs: Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication Operations in
MPICH", IJHPCA 19(1) 2005 (TRG); Chan, Heimlich, Purkayastha, van de Geijn, "Collective
communication: theory, practice, and experience", CCPE 19(13) 2007 (CHPG); Bruck et al., "Efficient
algorithms for all-to-all communications in multiport message-passing systems", IEEE TPDS 8(11)
1997.  Non-powers of two in the recursive algorithms use MPICH's fold (docs/collectives.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from costmodel.errors import UnknownName, UsageError


def _zero() -> np.ndarray:
    return np.zeros(())


@dataclass(frozen=True)
class CollectiveCost:
    """Latency count, word count and reduced-word count of one collective.

    ``words`` has the full broadcast shape of the inputs; ``messages`` depends only on the group
    size p and keeps p's shape (it broadcasts against ``words``), so per-grid latency terms are
    never expanded to grid × layer (``auto`` choices are the exception: they depend on n).
    ``reduced`` (words of reduction arithmetic, multiplies γ) is a 0-d zero for collectives that
    reduce nothing.
    """

    messages: np.ndarray
    words: np.ndarray
    reduced: np.ndarray = field(default_factory=_zero)

    def seconds(self, alpha_s: float, beta_s_per_word: float,
                gamma_s_per_word: float = 0.0) -> np.ndarray:
        """α·messages + β·words (+ γ·reduced when γ ≠ 0), in seconds."""
        time = alpha_s * self.messages + beta_s_per_word * self.words
        if gamma_s_per_word:
            time = time + gamma_s_per_word * self.reduced
        return time

    def __add__(self, other: CollectiveCost) -> CollectiveCost:
        return CollectiveCost(self.messages + other.messages, self.words + other.words,
                              self.reduced + other.reduced)


def ceil_log2(p: np.ndarray) -> np.ndarray:
    """⌈log2 p⌉ for integer p ≥ 1 (the paper's ``lg p``), as float64.

    Exact: the binary exponent of p − 1 (its bit length), so 2^k + 1 gives k + 1 for any k.
    """
    p = np.maximum(np.asarray(p, dtype=np.float64), 1.0)
    return np.frexp(p - 1.0)[1].astype(np.float64)


def floor_log2(p: np.ndarray) -> np.ndarray:
    """⌊log2 p⌋ for integer p ≥ 1, as float64 (exact: the bit length of p, minus one)."""
    p = np.maximum(np.asarray(p, dtype=np.float64), 1.0)
    return np.asarray((np.frexp(p)[1] - 1).astype(np.float64))


def _fraction(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.asarray((p - 1.0) / p)


@dataclass(frozen=True)
class Rate:
    """A collective on p processes as a function of its size n (words in total):
    ``messages`` latency terms, ``per_word`` words on the critical path per word of n and
    ``reduce_per_word`` words reduced on the critical path per word of n (γ; default none).

    Every algorithm here moves words in proportion to n, so a collective is fixed by these
    arrays of p's shape; :meth:`of` applies it to sizes n (broadcasting).
    """

    messages: np.ndarray
    per_word: np.ndarray
    reduce_per_word: np.ndarray = field(default_factory=_zero)

    def of(self, n: np.ndarray) -> CollectiveCost:
        """The cost of moving n words: messages, per_word·n, reduce_per_word·n."""
        n = np.asarray(n, dtype=np.float64)
        return CollectiveCost(self.messages, self.per_word * n, self._reduced(n))

    def of_product(self, factor: np.ndarray, size: np.ndarray) -> CollectiveCost:
        """The cost of moving factor·size words, as (rate·factor)·size.

        With ``factor`` of p's shape (G, 1) and ``size`` (1, L) only the last product is
        (G, L); the order of the products is the engine's (it fixes the rounding).
        """
        words = (self.per_word * factor) * size
        reduced = ((self.reduce_per_word * factor) * size if np.any(self.reduce_per_word)
                   else _zero())
        return CollectiveCost(self.messages, words, reduced)

    def _reduced(self, n: np.ndarray) -> np.ndarray:
        return self.reduce_per_word * n if np.any(self.reduce_per_word) else _zero()

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.messages + other.messages, self.per_word + other.per_word,
                    self.reduce_per_word + other.reduce_per_word)


# --------------------------------------------------------------------------- the algorithms

def _f(p: np.ndarray) -> np.ndarray:
    return np.asarray(p, dtype=np.float64)


def _fold(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MPICH's fold for a non-power of two: (p' = 2^⌊lg p⌋, 1.0 where p ≠ p' else 0.0).

    The r = p − p' extra processes hand their data to a partner first (one extra message), the
    power-of-two algorithm runs on p' processes, and the extras receive the result last (one
    more message) — TRG §4.4 (all-reduce) and MPICH's ``allreduce`` source.
    """
    p = _f(p)
    p2 = np.ldexp(1.0, floor_log2(p).astype(np.int64))
    return p2, (p != p2).astype(np.float64)


def bruck_allgather_rate(p: np.ndarray) -> Rate:
    """All-gather (Bruck): ⌈lg p⌉·α + (p−1)/p·n·β for every p (§3; Bruck et al. 1997, TRG §4.1)."""
    return Rate(ceil_log2(p), _fraction(p))


def paper_allreduce_rate(p: np.ndarray) -> Rate:
    """All-reduce as the paper charges it: 2·(α·lg p + β·(p−1)/p·n), no γ (§3, Eqs. 3–4)."""
    return Rate(2.0 * ceil_log2(p), 2.0 * _fraction(p))


def ring_allgather_rate(p: np.ndarray) -> Rate:
    """Ring all-gather: (p−1)·α + (p−1)/p·n·β, any p (TRG §4.1, CHPG §6)."""
    return Rate(_f(p) - 1.0, _fraction(p))


def ring_allreduce_rate(p: np.ndarray) -> Rate:
    """Ring all-reduce (ring reduce-scatter then ring all-gather), any p (CHPG §7):
    2(p−1)·α + 2(p−1)/p·n·β + (p−1)/p·n·γ."""
    return Rate(2.0 * (_f(p) - 1.0), 2.0 * _fraction(p), _fraction(p))


def recursive_doubling_allgather_rate(p: np.ndarray) -> Rate:
    """Recursive-doubling all-gather (TRG §4.1): lg p·α + (p−1)/p·n·β for p a power of two.

    Otherwise MPICH's fold (:func:`_fold`) with p' = 2^⌊lg p⌋: the extras send their n/p words
    (α + n/p·β), the p' processes run recursive doubling on n words (lg p'·α + (p'−1)/p'·n·β),
    and the extras receive the other (p−1)/p·n words (α + (p−1)/p·n·β).
    """
    p = _f(p)
    p2, extra = _fold(p)
    messages = floor_log2(p) + 2.0 * extra
    per_word = _fraction(p2) + extra * (1.0 / p + _fraction(p))
    return Rate(messages, per_word)


def binomial_allgather_rate(p: np.ndarray) -> Rate:
    """Binomial gather to a root, then binomial broadcast (TRG §4.1's fallback, CHPG §5):
    2⌈lg p⌉·α + ((p−1)/p + ⌈lg p⌉)·n·β, any p."""
    lg = ceil_log2(p)
    return Rate(2.0 * lg, _fraction(p) + lg)


def recursive_doubling_allreduce_rate(p: np.ndarray) -> Rate:
    """Recursive-doubling all-reduce (TRG §4.4): lg p·(α + n·β + n·γ) for p a power of two.

    Otherwise the fold: extras send all n words to a partner that reduces them
    (α + n·β + n·γ), lg p' steps of recursive doubling, the extras receive the result (α + n·β):
    (⌊lg p⌋+2)·α + (⌊lg p⌋+2)·n·β + (⌊lg p⌋+1)·n·γ.
    """
    lg = floor_log2(p)
    _, extra = _fold(p)
    return Rate(lg + 2.0 * extra, lg + 2.0 * extra, lg + extra)


def rabenseifner_allreduce_rate(p: np.ndarray) -> Rate:
    """Rabenseifner all-reduce, recursive-halving reduce-scatter + recursive-doubling all-gather
    (TRG §4.4): 2·lg p·α + 2(p−1)/p·n·β + (p−1)/p·n·γ for p a power of two.

    Otherwise the fold, as MPICH does: + (α + n·β + n·γ) before and (α + n·β) after, with p'
    in place of p: 2(⌊lg p⌋+1)·α + (2(p'−1)/p' + 2)·n·β + ((p'−1)/p' + 1)·n·γ.
    """
    p2, extra = _fold(p)
    lg = floor_log2(p)
    return Rate(2.0 * lg + 2.0 * extra, 2.0 * _fraction(p2) + 2.0 * extra,
                _fraction(p2) + extra)


def binomial_allreduce_rate(p: np.ndarray) -> Rate:
    """Binomial-tree reduce then binomial-tree broadcast (TRG §4.4's short-message MPICH-1
    default, CHPG §7): 2⌈lg p⌉·(α + n·β) + ⌈lg p⌉·n·γ, any p."""
    lg = ceil_log2(p)
    return Rate(2.0 * lg, 2.0 * lg, lg)


def paper_reduce_scatter_rate(p: np.ndarray) -> Rate:
    """Reduce-scatter as the paper would charge it: half its all-reduce, ⌈lg p⌉·α + (p−1)/p·n·β,
    no γ — the reduce-scatter half of a two-level all-reduce under the paper's forms
    (docs/hierarchy.md)."""
    return Rate(ceil_log2(p), _fraction(p))


def ring_reduce_scatter_rate(p: np.ndarray) -> Rate:
    """Ring (pairwise) reduce-scatter: (p−1)·α + (p−1)/p·n·(β + γ), any p (TRG §4.3, CHPG §6)."""
    return Rate(_f(p) - 1.0, _fraction(p), _fraction(p))


def recursive_halving_reduce_scatter_rate(p: np.ndarray) -> Rate:
    """Recursive-halving reduce-scatter (TRG §4.3): lg p·α + (p−1)/p·n·(β + γ), p a power of two.

    Otherwise the fold: extras send all n words to be reduced (α + n·β + n·γ), recursive
    halving on p', extras receive their n/p words (α + n/p·β).
    """
    p = _f(p)
    p2, extra = _fold(p)
    return Rate(floor_log2(p) + 2.0 * extra, _fraction(p2) + extra * (1.0 + 1.0 / p),
                _fraction(p2) + extra)


def binomial_broadcast_rate(p: np.ndarray) -> Rate:
    """Binomial-tree broadcast: ⌈lg p⌉·(α + n·β), any p (TRG §4.2, CHPG §5)."""
    lg = ceil_log2(p)
    return Rate(lg, lg)


def scatter_allgather_broadcast_rate(p: np.ndarray) -> Rate:
    """Van de Geijn broadcast: binomial scatter then ring all-gather (TRG §4.2, CHPG §7):
    (⌈lg p⌉ + p − 1)·α + 2(p−1)/p·n·β, any p."""
    return Rate(ceil_log2(p) + _f(p) - 1.0, 2.0 * _fraction(p))


RateOf = Callable[[np.ndarray], Rate]
ProcessScales = tuple[tuple[int, float, float], ...]
"""((p, α factor, β factor), …): a kind's scales for particular group sizes p, p ascending."""

ALLGATHER, ALLREDUCE, REDUCE_SCATTER, BROADCAST = ("allgather", "allreduce", "reduce-scatter",
                                                   "broadcast")
SELECTABLE = (ALLGATHER, ALLREDUCE)
"""The kinds the engine uses and a machine profile or --collectives selects."""
KIND_NAMES = {ALLGATHER: "all-gather", ALLREDUCE: "all-reduce", REDUCE_SCATTER: "reduce-scatter",
              BROADCAST: "broadcast"}


@dataclass(frozen=True)
class Algorithm:
    """One named algorithm of one collective kind: its rate, its cost formula and its source."""

    name: str
    kind: str
    rate: RateOf
    formula: str
    source: str
    candidate: bool = True
    """Whether ``auto`` considers it (the paper's forms are charges, not algorithms)."""


def _registry(*algos: Algorithm) -> dict[str, dict[str, Algorithm]]:
    out: dict[str, dict[str, Algorithm]] = {}
    for algo in algos:
        out.setdefault(algo.kind, {})[algo.name] = algo
    return out


FLAT_RING = "flat-ring"
"""A ring over the group's ranks in order, blind to levels: on one level it is ``ring``; on a
machine with levels docs/hierarchy.md charges each step its slowest edge (not candidate for
``auto`` on one level, where it would only duplicate ``ring``)."""


def _flat(ring: Algorithm) -> Algorithm:
    """``ring`` as the flat ring: the same rate on one level, not an ``auto`` candidate."""
    return replace(ring, name=FLAT_RING, candidate=False,
                   source="a ring over the group's ranks in order (gloo's, NCCL's ring); on a "
                          "machine with levels every step waits for its slowest edge "
                          "(docs/hierarchy.md)")


RING_ALLGATHER = Algorithm("ring", ALLGATHER, ring_allgather_rate, "(p−1)α + (p−1)/p·nβ",
                           "TRG §4.1; CHPG")
RING_ALLREDUCE = Algorithm("ring", ALLREDUCE, ring_allreduce_rate,
                           "2(p−1)α + 2(p−1)/p·nβ + (p−1)/p·nγ", "CHPG §7")

REGISTRY: dict[str, dict[str, Algorithm]] = _registry(
    Algorithm("paper", ALLGATHER, bruck_allgather_rate, "⌈lg p⌉α + (p−1)/p·nβ",
              "the paper's all-gather (= Bruck)", candidate=False),
    Algorithm("bruck", ALLGATHER, bruck_allgather_rate, "⌈lg p⌉α + (p−1)/p·nβ",
              "Bruck et al. 1997; TRG §4.1"),
    Algorithm("recursive-doubling", ALLGATHER, recursive_doubling_allgather_rate,
              "lg p·α + (p−1)/p·nβ (p = 2^k; fold otherwise)", "TRG §4.1"),
    RING_ALLGATHER,
    _flat(RING_ALLGATHER),
    Algorithm("binomial", ALLGATHER, binomial_allgather_rate,
              "2⌈lg p⌉α + ((p−1)/p + ⌈lg p⌉)·nβ", "gather + broadcast; CHPG"),
    Algorithm("paper", ALLREDUCE, paper_allreduce_rate, "2(⌈lg p⌉α + (p−1)/p·nβ)",
              "the paper's Eqs. 3–4", candidate=False),
    Algorithm("rabenseifner", ALLREDUCE, rabenseifner_allreduce_rate,
              "2 lg p·α + 2(p−1)/p·nβ + (p−1)/p·nγ (p = 2^k; fold otherwise)", "TRG §4.4"),
    Algorithm("recursive-doubling", ALLREDUCE, recursive_doubling_allreduce_rate,
              "lg p·(α + nβ + nγ) (p = 2^k; fold otherwise)", "TRG §4.4"),
    RING_ALLREDUCE,
    _flat(RING_ALLREDUCE),
    Algorithm("binomial", ALLREDUCE, binomial_allreduce_rate,
              "2⌈lg p⌉(α + nβ) + ⌈lg p⌉·nγ", "reduce + broadcast; TRG §4.4, CHPG"),
    Algorithm("paper", REDUCE_SCATTER, paper_reduce_scatter_rate, "⌈lg p⌉α + (p−1)/p·nβ",
              "half the paper's all-reduce (docs/hierarchy.md)", candidate=False),
    Algorithm("ring", REDUCE_SCATTER, ring_reduce_scatter_rate, "(p−1)α + (p−1)/p·n(β + γ)",
              "TRG §4.3; CHPG"),
    Algorithm("recursive-halving", REDUCE_SCATTER, recursive_halving_reduce_scatter_rate,
              "lg p·α + (p−1)/p·n(β + γ) (p = 2^k; fold otherwise)", "TRG §4.3"),
    Algorithm("binomial", BROADCAST, binomial_broadcast_rate, "⌈lg p⌉(α + nβ)", "TRG §4.2"),
    Algorithm("scatter-allgather", BROADCAST, scatter_allgather_broadcast_rate,
              "(⌈lg p⌉ + p − 1)α + 2(p−1)/p·nβ", "van de Geijn; TRG §4.2, CHPG"),
)

AUTO = "auto"
FALLBACK = {ALLGATHER: "bruck", ALLREDUCE: "paper"}
"""What a single name selects for a kind that has no algorithm of that name."""
SET_NAMES = ("paper", "ring", FLAT_RING, "recursive-doubling", "rabenseifner", "binomial", "bruck",
             AUTO)
"""The names --collectives and a profile's ``collectives: NAME`` accept."""


# --------------------------------------------------------------------------- selections


@dataclass(frozen=True)
class Algorithms:
    """The collective algorithms one evaluation uses: an all-gather and an all-reduce rate
    function of p, or — for a kind in ``candidates`` (``auto``) — the cheapest of several on
    ``costs`` = (α s, β s/word, γ s/word), chosen per message.

    ``name`` is the selection as given ('paper', 'ring', 'auto', 'allgather=bruck,allreduce=ring');
    ``names`` the (all-gather, all-reduce) algorithm names ('' means ``name``).  Fixed
    selections are linear in n (:attr:`linear`): the engine then works with the rate functions
    :attr:`allgather_rate` and :attr:`allreduce_rate` of p only.
    """

    name: str
    allgather_rate: RateOf
    allreduce_rate: RateOf
    description: str
    names: tuple[str, str] = ("", "")
    candidates: Mapping[str, tuple[Algorithm, ...]] = field(default_factory=dict)
    costs: tuple[float, float, float] | None = None
    scales: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """{kind: (α_kind/α, β_kind/β)} of a machine's per-collective fits (kinds 'allgather',
    'allreduce', 'p2p'); {} — the flat model — by default.  See :meth:`with_scales`."""
    process_scales: Mapping[str, ProcessScales] = field(default_factory=dict)
    """{kind: ((p, α_kind,p/α, β_kind,p/β), …)} of the fits per group size p, p ascending;
    a group whose size is not listed takes the kind's ``scales`` entry.  See :func:`scale_at`."""

    def with_scales(self, scales: Mapping[str, tuple[float, float]],
                    processes: Mapping[str, ProcessScales] | None = None) -> Algorithms:
        """These algorithms with each kind's latency count multiplied by α_kind/α and its words
        by β_kind/β, so that α·messages + β·words is α_kind·messages + β_kind·words.

        ``processes`` gives, per kind, those factors for particular group sizes p (the kind's
        α_kind,p/α, β_kind,p/β); every other p takes the kind's ``scales`` pair (no pair: 1, 1).
        Fixed kinds get scaled rate functions of p; 'auto' kinds choose and scale per message;
        'p2p' (halo messages) is applied by :meth:`p2p`.  γ terms are not scaled.
        """
        processes = {kind: tuple(sorted(rows)) for kind, rows in (processes or {}).items()
                     if rows}
        if not scales and not processes:
            return self
        rates = [_scaled_rate(self.allgather_rate, scales.get(ALLGATHER),
                              processes.get(ALLGATHER, ())),
                 _scaled_rate(self.allreduce_rate, scales.get(ALLREDUCE),
                              processes.get(ALLREDUCE, ()))]
        return replace(self, allgather_rate=rates[0], allreduce_rate=rates[1],
                       scales=dict(scales), process_scales=processes)

    def scale(self, kind: str, p: np.ndarray) -> tuple[Any, Any] | None:
        """(α factor, β factor) of ``kind`` for groups of p processes (:func:`scale_at`)."""
        return scale_at(self.scales.get(kind), self.process_scales.get(kind, ()), p)

    def p2p(self, cost: CollectiveCost) -> CollectiveCost:
        """Halo messages (point-to-point) under the 'p2p' scales, if any.

        A halo is one message between two neighbouring strips, so a p2p pair fitted for p = 2
        applies when listed; otherwise the kind's pooled pair (docs/formats.md).
        """
        return _scaled(cost, self.scale("p2p", np.asarray(2.0)))

    @property
    def linear(self) -> bool:
        """True when no kind is ``auto``: every cost is a rate of p times n."""
        return not self.candidates

    def used(self, kind: str) -> str:
        """The algorithm name of ``kind`` ('auto' for a choice per message)."""
        if kind in self.candidates:
            return AUTO
        return self.names[SELECTABLE.index(kind)] or self.name

    @property
    def label(self) -> str:
        """The selection for titles: 'paper', or 'bruck (all-gather bruck, all-reduce paper)'."""
        used = [self.used(kind) for kind in SELECTABLE]
        if all(u == self.name for u in used):
            return self.name
        parts = ", ".join(f"{KIND_NAMES[k]} {u}" for k, u in zip(SELECTABLE, used))
        return parts if "=" in self.name else f"{self.name} ({parts})"

    def rate_of(self, kind: str) -> RateOf:
        """The rate function of ``kind``; only for a fixed (non-auto) algorithm."""
        if kind in self.candidates:
            raise UsageError(f"{KIND_NAMES[kind]} 'auto' has no single rate: the cheapest "
                             "algorithm depends on the message size")
        return self.allgather_rate if kind == ALLGATHER else self.allreduce_rate

    def cost(self, kind: str, p: np.ndarray, n: np.ndarray) -> CollectiveCost:
        """Cost of ``kind`` moving n words on p processes (broadcasting p against n)."""
        if kind in self.candidates:
            return self._cheapest(self.candidates[kind], p, n, kind)[0]
        return self.rate_of(kind)(p).of(n)

    def allgather(self, p: np.ndarray, n: np.ndarray) -> CollectiveCost:
        """All-gather of n words on p processes."""
        return self.cost(ALLGATHER, p, n)

    def allreduce(self, p: np.ndarray, n: np.ndarray) -> CollectiveCost:
        """All-reduce of n words on p processes."""
        return self.cost(ALLREDUCE, p, n)

    def chosen(self, kind: str, p: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Name of the algorithm ``kind`` uses for each (p, n), broadcast shape, dtype object."""
        shape = np.broadcast_shapes(np.shape(p), np.shape(n))
        if kind not in self.candidates:
            return np.full(shape, self.used(kind), dtype=object)
        candidates = self.candidates[kind]
        index = self._cheapest(candidates, p, n, kind)[1]
        names = np.array([c.name for c in candidates], dtype=object)
        return np.asarray(names[index], dtype=object).reshape(np.shape(index))

    def _cheapest(self, candidates: tuple[Algorithm, ...], p: np.ndarray,
                  n: np.ndarray, kind: str = "") -> tuple[CollectiveCost, np.ndarray]:
        """Elementwise cheapest candidate: (its cost, index into ``candidates``).

        Ties go to the earlier candidate (registry order).  Messages take the full shape of
        (p, n) because the winner depends on n.
        """
        if self.costs is None:
            raise UsageError("collectives 'auto' needs the machine's α, β and γ")
        alpha, beta, gamma = self.costs
        scale = self.scale(kind, p)
        costs = [_scaled(c.rate(p).of(n), scale) for c in candidates]
        shape = np.broadcast_shapes(*(np.shape(x) for c in costs
                                      for x in (c.messages, c.words, c.reduced)))
        seconds = np.stack([np.broadcast_to(c.seconds(alpha, beta, gamma), shape)
                            for c in costs])
        index = np.argmin(seconds, axis=0)

        def pick(name: str) -> np.ndarray:
            stacked = np.stack([np.broadcast_to(getattr(c, name), shape) for c in costs])
            return np.asarray(np.take_along_axis(stacked, index[None], axis=0)[0])

        return CollectiveCost(pick("messages"), pick("words"), pick("reduced")), index


def scale_at(pooled: tuple[float, float] | None, listed: ProcessScales,
             p: np.ndarray) -> tuple[Any, Any] | None:
    """(α factor, β factor) for groups of p processes: a listed p's own pair, else ``pooled``
    (None: 1, 1 — the flat α, β).  Vectorized: with ``listed`` the factors are arrays of p's
    shape (a lookup of p among the listed sizes); without, ``pooled`` itself, so results stay
    bit-identical to one pair per kind.  None when there is nothing to scale.

    ``listed`` = ((p, α factor, β factor), …), p ascending.
    """
    if not listed:
        return pooled
    sizes = np.array([row[0] for row in listed], dtype=np.float64)
    alphas = np.array([row[1] for row in listed], dtype=np.float64)
    betas = np.array([row[2] for row in listed], dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    at = np.minimum(np.searchsorted(sizes, p), len(sizes) - 1)
    hit = sizes[at] == p
    alpha0, beta0 = pooled if pooled is not None else (1.0, 1.0)
    return np.where(hit, alphas[at], alpha0), np.where(hit, betas[at], beta0)


def _scaled(cost: CollectiveCost, scale: tuple[Any, Any] | None) -> CollectiveCost:
    """``cost`` with its latency count × scale[0] and its words × scale[1] (None: as is)."""
    if scale is None:
        return cost
    return CollectiveCost(cost.messages * scale[0], cost.words * scale[1], cost.reduced)


def _scaled_rate(rate_of: RateOf, scale: tuple[float, float] | None,
                 listed: ProcessScales = ()) -> RateOf:
    """The rate function ``rate_of`` with messages × α factor, per_word × β factor, the factors
    of each group size p by :func:`scale_at`."""
    if scale is None and not listed:
        return rate_of

    def scaled(p: np.ndarray) -> Rate:
        rate = rate_of(p)
        factors = scale_at(scale, listed, p)
        assert factors is not None
        return Rate(rate.messages * factors[0], rate.per_word * factors[1],
                    rate.reduce_per_word)

    return scaled


def _auto_rate(p: np.ndarray) -> Rate:
    """Stands for an 'auto' kind's rate: there is none (see Algorithms.rate_of)."""
    raise UsageError("'auto' has no single rate: the cheapest algorithm depends on the "
                     "message size")


def _build(name: str, chosen: Mapping[str, str], description: str,
           costs: tuple[float, float, float] | None = None) -> Algorithms:
    """Algorithms for {kind: algorithm name or 'auto'}."""
    rates = [_auto_rate if chosen[k] == AUTO else REGISTRY[k][chosen[k]].rate
             for k in SELECTABLE]
    candidates = {k: tuple(a for a in REGISTRY[k].values() if a.candidate)
                  for k in SELECTABLE if chosen[k] == AUTO}
    return Algorithms(name, rates[0], rates[1], description,
                      (chosen[ALLGATHER], chosen[ALLREDUCE]), candidates, costs)


def _named_set(name: str, description: str) -> Algorithms:
    return _build(name, parse_selection(name), description)


def parse_selection(text: str) -> dict[str, str]:
    """``NAME`` or ``allgather=NAME,allreduce=NAME`` → {kind: name}, every name checked.

    A single name applies to every kind that has it and leaves the others at FALLBACK; a kind
    left out of the ``kind=NAME`` form stays at the paper's.
    """
    text = text.strip()
    if "=" not in text:
        if text not in SET_NAMES:
            raise UnknownName("collective algorithm", text, SET_NAMES)
        return {kind: text if text in REGISTRY[kind] or text == AUTO else FALLBACK[kind]
                for kind in SELECTABLE}
    chosen = {kind: "paper" for kind in SELECTABLE}
    for part in text.split(","):
        kind, _, name = (s.strip() for s in part.partition("="))
        if kind not in SELECTABLE:
            raise UnknownName("collective kind", kind, SELECTABLE)
        check_name(kind, name)
        chosen[kind] = name
    return chosen


def check_name(kind: str, name: str) -> None:
    """UnknownName unless ``name`` is an algorithm of ``kind`` or 'auto'."""
    if name != AUTO and name not in REGISTRY[kind]:
        raise UnknownName(f"{KIND_NAMES[kind]} algorithm", name, [*REGISTRY[kind], AUTO])


def names_of(kind: str) -> list[str]:
    """The names a selection of ``kind`` accepts: its algorithms and 'auto'."""
    return [*REGISTRY[kind], AUTO]


def algorithms(name: str = "paper",
               costs: tuple[float, float, float] | None = None) -> Algorithms:
    """The collective algorithms selected by ``name`` (see :func:`parse_selection`).

    ``costs`` = (α s, β s/word, γ s/word) of the machine; needed only when a kind is ``auto``.
    """
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    chosen = parse_selection(name)
    if name == AUTO:
        description = "the cheapest algorithm per collective and message size"
    else:
        description = ", ".join(f"{KIND_NAMES[k]} {chosen[k]}" for k in SELECTABLE)
    return _build(name, chosen, description, costs)


ALGORITHMS: dict[str, Algorithms] = {
    "paper": _named_set("paper", "Bruck all-gather; all-reduce charged as two all-gathers "
                                 "(the paper)"),
    "ring": _named_set("ring", "ring all-gather and ring all-reduce: (p−1) and 2(p−1) latency "
                               "terms"),
    FLAT_RING: _named_set(FLAT_RING, "ring all-gather and ring all-reduce over the ranks in "
                                     "order, across levels without a hierarchy"),
    "recursive-doubling": _named_set("recursive-doubling",
                                     "recursive-doubling all-gather and all-reduce"),
    "rabenseifner": _named_set("rabenseifner", "Bruck all-gather; Rabenseifner all-reduce "
                                               "(recursive halving + doubling)"),
    "binomial": _named_set("binomial", "binomial trees: gather + broadcast, reduce + broadcast"),
    "bruck": _named_set("bruck", "Bruck all-gather; the paper's all-reduce"),
}
"""The fixed named sets (linear in n).  ``auto`` is built per machine by :func:`algorithms`."""


# --------------------------------------------------------------------------- shorthands


def allgather_bruck(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """All-gather (Bruck) of n words in total on p processes: α·lg p + β·(p−1)/p·n (§3)."""
    return bruck_allgather_rate(p).of(n)


def allreduce_paper(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """All-reduce as the paper charges it: 2·(α·lg p + β·(p−1)/p·n) (§3, Eqs. 3–4)."""
    return paper_allreduce_rate(p).of(n)


def allreduce_ring(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """Ring all-reduce: 2(p−1)·α + 2·β·(p−1)/p·n + γ·(p−1)/p·n."""
    return ring_allreduce_rate(p).of(n)


def allgather_ring(p: np.ndarray, n: np.ndarray) -> CollectiveCost:
    """Ring all-gather: (p−1)·α + β·(p−1)/p·n."""
    return ring_allgather_rate(p).of(n)


def halo_exchange(active: np.ndarray, words: np.ndarray) -> CollectiveCost:
    """One halo message of ``words`` words where ``active``: α + β·words (Eq. 7), else 0."""
    active, words = np.broadcast_arrays(np.asarray(active, dtype=bool),
                                        np.asarray(words, dtype=np.float64))
    return CollectiveCost(np.where(active, 1.0, 0.0), np.where(active, words, 0.0))
