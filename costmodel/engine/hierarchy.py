"""Hierarchical machines: collectives that span levels, and the mapping of the grid onto nodes.

A machine profile with ``levels`` (docs/hierarchy.md) has a latency and a per-process bandwidth
per level, innermost first (within a node, across nodes).  Ranks 0 … P−1 fill the domains of
each level in order (K_l consecutive ranks per level-l domain); the Pr × Pc grid is laid on the
ranks with either the Pr groups contiguous (``pr-inside``: rank = r + Pr·c) or the Pc groups
contiguous (``pc-inside``: rank = c + Pc·r).  A group of p processes with stride s then has

    q_l = gcd(p, K_l/s) when s divides K_l, else 1

members in each aligned block that lies inside one level-l domain (q_L = p at the outermost
level), and its collectives run level by level (Thakur, Rabenseifner, Gropp 2005 §4.4 for the
all-reduce as reduce-scatter + all-gather; Träff & Sanders-style hierarchical collectives; NCCL's
intra-node reduce-scatter/all-gather around an inter-node all-reduce).  With f_l = q_l/q_(l−1)
(q_0 = 1) and n the words in total:

    all-gather: level l gathers n/q_(l−1) words over f_l processes (outermost level first);
    all-reduce: every level below the outermost one that has a member outside its domain
                (q_l < p) reduce-scatters n/q_(l−1) words over f_l processes before and
                all-gathers them after; the first level holding the whole group (q_l = p)
                all-reduces n/q_(l−1) words over f_l processes.

Each is linear in n, so it is a :class:`~costmodel.engine.collectives.Rate` per level of p's shape
(G, 1).  The paper's forms give exactly its flat cost when α, β are the same on every level and
p, K are powers of two; a one-level machine gives exactly the flat cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.engine.collectives import (
    ALLGATHER,
    ALLREDUCE,
    AUTO,
    FLAT_RING,
    REDUCE_SCATTER,
    REGISTRY,
    Algorithms,
    CollectiveCost,
    Rate,
    algorithms,
)
from costmodel.errors import UnknownName, UsageError
from costmodel.units import format_number as _n

PR_INSIDE, PC_INSIDE, BEST = "pr-inside", "pc-inside", "best"
MAPPINGS = (PR_INSIDE, PC_INSIDE)
"""The two placements of the grid on the ranks: Pr groups contiguous, or Pc groups contiguous."""
MAPPING_CHOICES = (BEST, *MAPPINGS)

HALVES: dict[str, tuple[str, str]] = {
    "paper": ("paper", "paper"),
    "ring": ("ring", "ring"),
    "rabenseifner": ("recursive-halving", "recursive-doubling"),
}
"""All-reduce → the (reduce-scatter, all-gather) it is made of: what runs on the inner levels."""

TERM_WHAT = {"model": "the model all-gathers and ΔX all-reduces over Pr",
             "batch": "the weight-gradient all-reduces (over Pc, or P for pure-batch and "
                      "domain-split layers)",
             "domain": "the halo exchanges"}


def check_mapping(name: str) -> str:
    """``name`` if it is 'best', 'pr-inside' or 'pc-inside', else UnknownName."""
    if name not in MAPPING_CHOICES:
        raise UnknownName("mapping", name, MAPPING_CHOICES)
    return name


def check_algorithms(algo: Algorithms) -> None:
    """UsageError unless ``algo`` can run across levels: an all-reduce made of a reduce-scatter
    and an all-gather (paper, ring, rabenseifner), a flat ring, or 'auto' (which chooses among
    those, docs/hierarchy.md)."""
    allreduce = algo.used(ALLREDUCE)
    if allreduce not in HALVES and allreduce not in (FLAT_RING, AUTO):
        raise UsageError(f"all-reduce {allreduce!r} has no reduce-scatter phase to run inside a "
                         f"node; on a machine with levels use one of "
                         f"{', '.join([*HALVES, FLAT_RING, AUTO])}")


def members(p: np.ndarray, stride: np.ndarray, domain: int,
            total: np.ndarray | None = None) -> np.ndarray:
    """q: members of a group (p processes, ranks r0 + s·j) in one aligned block inside a domain
    of ``domain`` consecutive ranks, int64 of the broadcast shape of p and s.

    The largest divisor q of p with s·q dividing the domain size K: gcd(p, K/s) when s | K,
    else 1, with K = min(domain, P) (``total`` = P: a machine smaller than one domain is one
    domain).  Blocks of s·q consecutive ranks then never straddle a domain boundary; when p and
    K do not divide each other some blocks of one domain are charged to the next level (the
    slowest group decides, docs/hierarchy.md).
    """
    p = np.asarray(p, dtype=np.int64)
    stride = np.asarray(stride, dtype=np.int64)
    size = (np.asarray(domain, dtype=np.int64) if total is None
            else np.minimum(domain, np.asarray(total, dtype=np.int64)))
    divides = size % stride == 0
    per_domain = np.where(divides, size // np.maximum(stride, 1), 1)
    return np.where(divides, np.gcd(p, per_domain), 1).astype(np.int64)


def _scaled(rate: Rate, factor: np.ndarray) -> Rate:
    return Rate(rate.messages, rate.per_word * factor, rate.reduce_per_word * factor)


def _where(mask: np.ndarray, a: Rate, b: Rate) -> Rate:
    return Rate(np.where(mask, a.messages, b.messages), np.where(mask, a.per_word, b.per_word),
                np.where(mask, a.reduce_per_word, b.reduce_per_word))


@dataclass(frozen=True)
class LevelRates:
    """The all-gather and all-reduce of one group per level (innermost first), each a Rate of
    the group's shape: the words at level l per word of n."""

    allgather: tuple[Rate, ...]
    allreduce: tuple[Rate, ...]


def level_rates(p: np.ndarray, stride: np.ndarray, domains: tuple[int, ...],
                algo: Algorithms, total: np.ndarray | None = None,
                links: tuple[tuple[float, float], ...] | None = None) -> LevelRates:
    """Per-level rates of a group of p processes with rank stride ``stride`` (module docstring).

    ``domains``: processes per domain of every level but the outermost (cumulative); ``p`` and
    ``stride`` of shape (G, 1); ``total`` the processes P of each grid (see :func:`members`).
    Level l works on f_l = q_l/q_(l−1) processes and n/q_(l−1) words.  A kind whose algorithm
    is ``flat-ring`` is a ring over all p ranks instead (:func:`flat_ring_rates`), which needs
    the machine's ``links``.
    """
    p = np.asarray(p, dtype=np.int64)
    stride = np.asarray(stride, dtype=np.int64)
    qs = _members_per_level(p, stride, domains, total)
    flat = {kind: algo.used(kind) == FLAT_RING for kind in (ALLGATHER, ALLREDUCE)}
    if flat[ALLGATHER] and flat[ALLREDUCE]:
        return LevelRates(flat_ring_rates(p, qs, links, ALLGATHER),
                          flat_ring_rates(p, qs, links, ALLREDUCE))
    halves = HALVES["ring" if flat[ALLREDUCE] else algo.used(ALLREDUCE)]
    reduce_scatter = REGISTRY[REDUCE_SCATTER][halves[0]]
    half_gather = REGISTRY[ALLGATHER][halves[1]]
    gathers, reduces = [], []
    before = np.ones_like(p)
    for index, q in enumerate(qs):
        f = q // before
        share = 1.0 / before
        gathers.append(_scaled(algo.allgather_rate(f), share))
        whole = _scaled(algo.allreduce_rate(f), share)
        if index == len(qs) - 1:
            reduces.append(whole)
        else:
            split = _scaled(reduce_scatter.rate(f) + half_gather.rate(f), share)
            reduces.append(_where(q < p, split, whole))
        before = q
    return LevelRates(flat_ring_rates(p, qs, links, ALLGATHER) if flat[ALLGATHER]
                      else tuple(gathers),
                      flat_ring_rates(p, qs, links, ALLREDUCE) if flat[ALLREDUCE]
                      else tuple(reduces))


def _members_per_level(p: np.ndarray, stride: np.ndarray, domains: tuple[int, ...],
                       total: np.ndarray | None) -> list[np.ndarray]:
    """q_l for every level, innermost first (q_L = p at the outermost)."""
    shape = np.broadcast_shapes(p.shape, stride.shape)
    return [*(members(p, stride, domain, total) for domain in domains),
            np.broadcast_to(p, shape)]


def flat_ring_rates(p: np.ndarray, qs: list[np.ndarray],
                    links: tuple[tuple[float, float], ...] | None, kind: str) -> tuple[Rate, ...]:
    """A ring over the group's p ranks in order, on a machine with levels: per-level rates.

    The ring has s steps (s = p−1 for an all-gather, 2(p−1) for an all-reduce: reduce-scatter
    then all-gather), each moving n/p words over every edge at once, so each step lasts as long
    as its slowest edge.  An edge between consecutive members is at level l when they share a
    level-l domain but not a level-(l−1) one; level l has edges when q_l > q_(l−1) (q_(−1) = 1).
    A level-(l−1) domain of K processes holds K/q_(l−1) groups' blocks, each with one edge
    leaving it, so K/q_(l−1) processes share its link where a level's per-process bandwidth
    assumes all K do: that edge moves at q_(l−1) times it.  Charged:

        messages s at the level with the largest α among those with edges,
        words s/p·n/q_(l−1) (γ: (p−1)/p·n) at the level with the largest β_l/q_(l−1).

    (The sum of the two maxima: exact when one level has both, as on every profile where the
    outer level is the slower.)  On one level this is the ring.  ``links`` are the (α, β) per
    level (Machine.links).
    """
    if links is None or len(links) != len(qs):
        raise ValueError("flat-ring across levels needs the machine's links, one per level")
    ring = (REGISTRY[kind]["ring"].rate)(p)
    alphas = np.array([a for a, _ in links])
    betas = np.array([b for _, b in links])
    before = [np.ones_like(qs[0]), *qs[:-1]]
    has_edges = np.stack([q > b for q, b in zip(qs, before)])
    has_edges[0] |= ~has_edges.any(axis=0)  # p = 1: nothing moves; charge level 0 (zeros)
    shape = (len(qs),) + (1,) * qs[0].ndim
    slowest_alpha = np.argmax(np.where(has_edges, alphas.reshape(shape), -np.inf), axis=0)
    effective_beta = np.stack([betas[i] / b for i, b in enumerate(before)])
    slowest_beta = np.argmax(np.where(has_edges, effective_beta, -np.inf), axis=0)
    zero = np.zeros(np.shape(qs[0]))
    rates = []
    for level, b in enumerate(before):
        words_here = slowest_beta == level
        rates.append(Rate(np.where(slowest_alpha == level, ring.messages, zero),
                          np.where(words_here, ring.per_word / b, zero),
                          np.where(words_here, ring.reduce_per_word, zero)))
    return tuple(rates)


LEVEL_CANDIDATES = {ALLGATHER: ("bruck", "recursive-doubling", "ring", "binomial", FLAT_RING),
                    ALLREDUCE: ("ring", "rabenseifner", FLAT_RING)}
"""What 'auto' chooses among on a machine with levels: every all-gather run level by level or
as a flat ring; the all-reduces that split into a reduce-scatter and an all-gather, or the flat
ring (recursive doubling and binomial trees have no reduce-scatter phase to run in a node)."""


def fixed_selection(kind: str, name: str) -> Algorithms:
    """The selection with ``name`` for ``kind`` and a fixed partner for the other kind (one
    whose all-reduce splits into halves, so that level_rates can run it): how 'auto' costs
    each of LEVEL_CANDIDATES."""
    other = "ring" if kind == ALLGATHER else "bruck"
    pair = {kind: name, (ALLREDUCE if kind == ALLGATHER else ALLGATHER): other}
    return algorithms(f"allgather={pair[ALLGATHER]},allreduce={pair[ALLREDUCE]}")


def _level_options(kind: str, p: np.ndarray, stride: np.ndarray, n: np.ndarray,
                   domains: tuple[int, ...], links: tuple[tuple[float, float], ...],
                   gamma_s_per_word: float, total: np.ndarray | None
                   ) -> tuple[list[list[CollectiveCost]], np.ndarray]:
    """Per-level costs of every LEVEL_CANDIDATES[kind] and the index of the cheapest in total
    seconds (ties: the earlier), of the broadcast shape of p and n."""
    field = "allgather" if kind == ALLGATHER else "allreduce"
    options = [[rate.of(n) for rate in getattr(
        level_rates(p, stride, domains, fixed_selection(kind, c), total, links), field)]
        for c in LEVEL_CANDIDATES[kind]]
    seconds = [sum((c.seconds(a, b, gamma_s_per_word) for c, (a, b) in zip(costs, links)),
                   np.zeros(())) for costs in options]
    shape = np.broadcast_shapes(*(np.shape(x) for x in seconds))
    return options, np.argmin(np.stack([np.broadcast_to(x, shape) for x in seconds]), axis=0)


def level_costs(kind: str, p: np.ndarray, stride: np.ndarray, n: np.ndarray,
                domains: tuple[int, ...], algo: Algorithms,
                links: tuple[tuple[float, float], ...], gamma_s_per_word: float = 0.0,
                total: np.ndarray | None = None) -> tuple[CollectiveCost, ...]:
    """Per-level cost (innermost first) of one collective of n words over a group of p
    processes with rank stride ``stride``: the fixed algorithm's :func:`level_rates`, or for
    'auto' the LEVEL_CANDIDATES entry whose levels cost the least in total, chosen per element
    (each p and n: the winner depends on the message size)."""
    if kind not in algo.candidates:
        field = "allgather" if kind == ALLGATHER else "allreduce"
        return tuple(rate.of(n) for rate in getattr(
            level_rates(p, stride, domains, algo, total, links), field))
    options, index = _level_options(kind, p, stride, n, domains, links, gamma_s_per_word, total)
    shape = index.shape

    def pick(level: int, name: str) -> np.ndarray:
        stacked = np.stack([np.broadcast_to(getattr(costs[level], name), shape)
                            for costs in options])
        return np.asarray(np.take_along_axis(stacked, index[None], axis=0)[0])

    return tuple(CollectiveCost(pick(level, "messages"), pick(level, "words"),
                                pick(level, "reduced")) for level in range(len(links)))


def level_chosen(kind: str, p: np.ndarray, stride: np.ndarray, n: np.ndarray,
                 domains: tuple[int, ...], algo: Algorithms,
                 links: tuple[tuple[float, float], ...], gamma_s_per_word: float = 0.0,
                 total: np.ndarray | None = None) -> np.ndarray:
    """Name of the algorithm :func:`level_costs` charges for each element, dtype object."""
    if kind not in algo.candidates:
        shape = np.broadcast_shapes(np.shape(p), np.shape(stride), np.shape(n))
        return np.full(shape, algo.used(kind), dtype=object)
    index = _level_options(kind, p, stride, n, domains, links, gamma_s_per_word, total)[1]
    return np.asarray(np.array(LEVEL_CANDIDATES[kind], dtype=object)[index], dtype=object)


def halo_level(pr: np.ndarray, stride: np.ndarray, domains: tuple[int, ...],
               total: np.ndarray | None = None) -> np.ndarray:
    """The level of the halo messages of a Pr group, int64 of the broadcast shape: the innermost
    level whose domain holds the whole group (every neighbour pair inside it); otherwise some
    pair crosses it, and the slowest pair decides."""
    shape = np.broadcast_shapes(np.shape(pr), np.shape(stride))
    level = np.full(shape, len(domains), dtype=np.int64)
    for index in reversed(range(len(domains))):
        level = np.where(members(pr, stride, domains[index], total) == pr, index, level)
    return level


def strides(pr: np.ndarray, pc: np.ndarray,
            pr_inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank strides of the Pr groups and the Pc groups: (1, Pr) with Pr inside, (Pc, 1) with Pc
    inside; ``pr_inside`` (G, 1) bool broadcasts against pr, pc."""
    one = np.ones_like(np.asarray(pr, dtype=np.int64))
    return (np.where(pr_inside, one, pc).astype(np.int64),
            np.where(pr_inside, pr, one).astype(np.int64))


@dataclass(frozen=True)
class MappingComparison:
    """Both mappings of every grid: seconds per iteration of each term per level, (G, n_levels)
    in ``seconds[mapping][term]``, totals (G,) in ``total_s[mapping]``, and the mapping used
    per grid, ``pr_inside`` (G,) (the cheaper total; ties keep Pr inside; or the forced one)."""

    level_names: tuple[str, ...]
    seconds: dict[str, dict[str, np.ndarray]]
    total_s: dict[str, np.ndarray]
    pr_inside: np.ndarray
    forced: str | None = None

    def used(self, grid: int) -> str:
        """The mapping grid ``grid`` is costed with."""
        return PR_INSIDE if self.pr_inside[grid] else PC_INSIDE

    def why(self, grid: int, pr: int, pc: int, scale: float = 1.0, unit: str = "s") -> str:
        """One sentence: which mapping grid ``grid`` uses and the term that decides it, with
        where (on which level) its seconds go under each mapping."""
        inner = self.level_names[0]
        label = {PR_INSIDE: f"Pr inside the {inner}", PC_INSIDE: f"Pc inside the {inner}"}
        win = self.used(grid)
        lose = PC_INSIDE if win == PR_INSIDE else PR_INSIDE

        def term_s(mapping: str, term: str) -> np.ndarray:
            return np.asarray(self.seconds[mapping][term][grid] * scale)

        def where(levels: np.ndarray) -> str:
            parts = [f"{name} {_n(value)}" for name, value in zip(self.level_names, levels)
                     if value]
            return ", ".join(parts) if parts else "none"

        saving = {t: float(term_s(lose, t).sum() - term_s(win, t).sum()) for t in TERM_WHAT}
        total = (float(self.total_s[win][grid]) * scale, float(self.total_s[lose][grid]) * scale)
        prefix = f"forced {label[win]}" if self.forced else label[win]
        if max(saving.values()) <= 0 and total[0] == total[1]:
            return (f"no difference: both mappings cost {_n(total[0])} {unit} (no collective "
                    f"crosses a level boundary differently); {win} kept")
        term = max(saving, key=lambda t: saving[t])
        what = TERM_WHAT[term] + (f"={pr}" if term == "model" else "")
        return (f"{prefix}: {what} take {_n(term_s(win, term).sum())} {unit} "
                f"({where(term_s(win, term))}) against {_n(term_s(lose, term).sum())} {unit} "
                f"({where(term_s(lose, term))}) with {label[lose]}; total {_n(total[0])} vs "
                f"{_n(total[1])} {unit}")
