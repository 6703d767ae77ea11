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

Each is linear in n, so it is a :class:`~costmodel.collectives.Rate` per level of p's shape
(G, 1).  The paper's forms give exactly its flat cost when α, β are the same on every level and
p, K are powers of two; a one-level machine gives exactly the flat cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.collectives import (
    ALLGATHER,
    ALLREDUCE,
    REDUCE_SCATTER,
    REGISTRY,
    Algorithms,
    Rate,
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
    """UsageError unless ``algo`` can run across levels: fixed algorithms (not 'auto') and an
    all-reduce made of a reduce-scatter and an all-gather (paper, ring, rabenseifner)."""
    if not algo.linear:
        raise UsageError("collectives 'auto' is not modelled on a machine with levels; choose "
                         "a fixed algorithm (e.g. --collectives paper)")
    allreduce = algo.used(ALLREDUCE)
    if allreduce not in HALVES:
        raise UsageError(f"all-reduce {allreduce!r} has no reduce-scatter phase to run inside a "
                         f"node; on a machine with levels use one of {', '.join(HALVES)}")


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
                algo: Algorithms, total: np.ndarray | None = None) -> LevelRates:
    """Per-level rates of a group of p processes with rank stride ``stride`` (module docstring).

    ``domains``: processes per domain of every level but the outermost (cumulative); ``p`` and
    ``stride`` of shape (G, 1); ``total`` the processes P of each grid (see :func:`members`).
    Level l works on f_l = q_l/q_(l−1) processes and n/q_(l−1) words.
    """
    p = np.asarray(p, dtype=np.int64)
    stride = np.asarray(stride, dtype=np.int64)
    reduce_scatter, half_gather = (REGISTRY[REDUCE_SCATTER][HALVES[algo.used(ALLREDUCE)][0]],
                                   REGISTRY[ALLGATHER][HALVES[algo.used(ALLREDUCE)][1]])
    gathers, reduces = [], []
    before = np.ones_like(p)
    for domain in (*domains, None):
        q = np.broadcast_to(p, np.broadcast_shapes(p.shape, stride.shape)) if domain is None \
            else members(p, stride, domain, total)
        f = q // before
        share = 1.0 / before
        gathers.append(_scaled(algo.allgather_rate(f), share))
        whole = _scaled(algo.allreduce_rate(f), share)
        if domain is None:
            reduces.append(whole)
        else:
            split = _scaled(reduce_scatter.rate(f) + half_gather.rate(f), share)
            reduces.append(_where(q < p, split, whole))
        before = q
    return LevelRates(tuple(gathers), tuple(reduces))


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
