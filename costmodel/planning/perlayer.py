"""The `per-layer` plan: every weighted layer picks its own split and grid (docs/perlayer.md).

A *layout* is (mode, Pr, Pc) with Pr·Pc = P: batch (Pr = 1), model on Pr × batch on Pc, or
domain on Pr × batch on Pc (conv layers only).  Each layer's cost in each layout comes from the
engine (`cost.model_batch_volumes`, `cost.domain_volumes`, docs/model.md §4); consecutive layers
in different layouts pay a redistribution of the activations forward and of their gradients
backward, built from collectives (docs/perlayer.md §2).  A dynamic programme over layers ×
layouts finds the cheapest sequence exactly for overlap `none`; for overlap `batch` the
objective max(compute, Σ batch) + Σ rest is not additive and a Lagrangian search gives a
feasible sequence with a certified lower bound (docs/perlayer.md §3).  On a machine with
levels everything is costed under one mapping of the ranks onto the nodes for the whole run,
each collective split over the levels its ranks span, and the search runs under each mapping
(docs/perlayer.md §7).

Shapes: K layouts, L weighted layers.  Layer costs are (K, L), redistribution (L−1, K, K) with
entry [i, k, l] the cost between layer i in layout k and layer i+1 in layout l.  Everything is
seconds, words or messages per training iteration.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from costmodel.engine.collectives import Algorithms, Rate
from costmodel.engine.cost import (
    LayerArrays,
    combine,
    compute_per_iteration_s,
    domain_volumes,
    evaluate,
    group_feasibility,
    level_volumes,
    local_batch,
    machine_algorithms,
    model_batch_volumes,
)
from costmodel.engine.grids import Grids, check_processes, divisors, factorizations
from costmodel.engine.hierarchy import (
    BEST,
    MAPPINGS,
    PC_INSIDE,
    PR_INSIDE,
    check_algorithms,
    check_mapping,
    level_rates,
    members,
)
from costmodel.engine.plans import DOMAIN, MODEL, PLANS, LayerGroup
from costmodel.errors import NoFeasibleGrid, TooLarge, UsageError
from costmodel.inputs.specs import Machine, Network
from costmodel.limits import MAX_REDISTRIBUTION_CELLS
from costmodel.planning.search import Settings, check_batch

NOT_CONV = 4
"""Feasibility code of a domain split on a fully connected layer (it has no image to cut)."""

DEFAULT_SETTINGS = Settings()

LAMBDA_STEPS = 40
"""Bisection steps of the Lagrangian search under overlap `batch` (docs/perlayer.md §3)."""


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layouts:
    """The K layouts of P: batch 1×P first, then model r×P/r and domain r×P/r for every
    divisor r > 1 in increasing order; ``mode``, ``pr``, ``pc`` have shape (K,).

    Batch is the model mode with Pr = 1 (and equals a domain split with Pr = 1), so it appears
    once: K = 2·d(P) − 1, 25 for P = 4096.
    """

    mode: np.ndarray
    pr: np.ndarray
    pc: np.ndarray

    def __len__(self) -> int:
        return int(self.pr.size)

    def split(self, k: int) -> str:
        """'batch', 'model' or 'domain' for layout ``k``."""
        if self.pr[k] == 1:
            return "batch"
        return "domain" if self.mode[k] == DOMAIN else "model"

    def index(self, mode: np.ndarray, pr: np.ndarray) -> np.ndarray:
        """Layout index of (mode, Pr) pairs of any shape; Pr = 1 maps to batch in either mode."""
        mode, pr = np.broadcast_arrays(np.asarray(mode), np.asarray(pr, dtype=np.int64))
        d = (len(self) + 1) // 2  # divisors of P
        position = np.searchsorted(self.pr[:d], pr)
        return np.where(pr == 1, 0, np.where(mode == DOMAIN, d - 1 + position, position))


def layouts(P: int) -> Layouts:
    """Every layout of P processes (see :class:`Layouts`)."""
    d = divisors(check_processes(P))
    split = d[1:]
    pr = np.concatenate([d, split])
    mode = np.concatenate([np.full(d.size, MODEL), np.full(split.size, DOMAIN)]).astype(np.int8)
    return Layouts(mode, pr, P // pr)


# --------------------------------------------------------------------------- placement


@dataclass(frozen=True)
class Placement:
    """How the ranks of a hierarchical machine (docs/hierarchy.md) carry every layout: the
    machine (its levels), the mapping — one for the whole run, so every layer's layout and
    every redistribution use it — and the (α s, β s/word) of each level, innermost first
    (the machine's own, or latency-free ones for a bound)."""

    machine: Machine
    pr_inside: bool
    links: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, machine: Machine, mapping: str) -> Placement:
        """``machine`` placed with ``mapping`` ('pr-inside' or 'pc-inside')."""
        return cls(machine, mapping == PR_INSIDE, machine.links)

    @property
    def mapping(self) -> str:
        return PR_INSIDE if self.pr_inside else PC_INSIDE

    @property
    def domains(self) -> tuple[int, ...]:
        """Processes per domain of every level but the outermost (cumulative)."""
        return self.machine.domain_sizes

    def latency_free(self) -> Placement:
        """The same placement with α = 0 on every level."""
        return replace(self, links=tuple((0.0, beta) for _, beta in self.links))

    def group_stride(self, pr: np.ndarray, pc: np.ndarray) -> np.ndarray:
        """Rank stride of the Pr group of a layout (pr, pc): 1 with Pr inside, Pc with Pc
        inside (docs/hierarchy.md, "Placing the grid on the ranks")."""
        pc = np.asarray(pc, dtype=np.int64)
        return np.ones_like(pc) if self.pr_inside else pc


# --------------------------------------------------------------------------- layer costs


@dataclass(frozen=True)
class LayerCosts:
    """Per layout × layer seconds per iteration of each term (docs/model.md §4), (K, L) each,
    the feasibility code (0 = feasible, cost.NO_SAMPLES …, NOT_CONV) and the uneven flag."""

    model_s: np.ndarray
    batch_s: np.ndarray
    domain_s: np.ndarray
    code: np.ndarray
    uneven: np.ndarray

    @property
    def feasible(self) -> np.ndarray:
        return np.asarray(self.code == 0)


def layer_costs(layers: LayerArrays, lay: Layouts, batch: int, algo: Algorithms,
                alpha_s: float, beta_s_per_word: float,
                gamma_s_per_word: float = 0.0,
                placement: Placement | None = None) -> LayerCosts:
    """Every layer in every layout, from the engine's group functions in two calls (model/batch
    layouts and domain layouts), each on (K_mode, 1) group sizes × (1, L) layers.

    The numbers are those of `cost.evaluate` for a plan putting the layer in that layout, so a
    fixed plan re-costed here agrees with the engine (tests/test_perlayer.py).  With a
    ``placement`` (a machine with levels) they come from `cost.level_volumes` under its
    mapping, each term summed over the levels at their own α, β as the engine sums them
    (``alpha_s`` and ``beta_s_per_word`` are then unused).
    """
    K, L = len(lay), layers.params.shape[1]
    out = {name: np.zeros((K, L)) for name in ("model", "batch", "domain")}
    code = np.zeros((K, L), dtype=np.int8)
    uneven = np.zeros((K, L), dtype=bool)
    b = np.full((1, 1), batch, dtype=np.int64)
    index = np.arange(L)
    for mode in (MODEL, DOMAIN):
        rows = np.flatnonzero(lay.mode == mode)
        pr, pc = lay.pr[rows][:, None], lay.pc[rows][:, None]
        group = LayerGroup(index, mode, pr, pc)
        if placement is not None:
            inside = np.full((rows.size, 1), placement.pr_inside)
            per_level = level_volumes(group, layers, b, algo, placement.machine, inside)
            for term in ("model", "batch", "domain"):
                parts = [getattr(v, term).seconds(alpha, beta, gamma_s_per_word)
                         for v, (alpha, beta) in zip(per_level, placement.links)]
                out[term][rows] = functools.reduce(np.add, parts[1:], parts[0])
        elif mode == MODEL:
            model, weights = model_batch_volumes(pr, pc, layers, b, algo)
            out["model"][rows] = model.seconds(alpha_s, beta_s_per_word, gamma_s_per_word)
            out["batch"][rows] = weights.seconds(alpha_s, beta_s_per_word, gamma_s_per_word)
        else:
            halo, weights = domain_volumes(pr, pc, layers, b, algo)
            out["domain"][rows] = halo.seconds(alpha_s, beta_s_per_word, gamma_s_per_word)
            out["batch"][rows] = weights.seconds(alpha_s, beta_s_per_word, gamma_s_per_word)
        group_code, group_uneven = group_feasibility(group, layers, b)
        if mode == DOMAIN:
            group_code = np.where(layers.is_conv, group_code, np.int8(NOT_CONV))
        code[rows] = group_code
        uneven[rows] = group_uneven
    return LayerCosts(out["model"], out["batch"], out["domain"], code, uneven)


# --------------------------------------------------------------------------- redistribution


def alltoall_rate(p: np.ndarray) -> Rate:
    """Personalized all-to-all by pairwise exchange on p processes, m words held per process:
    (p−1)·α + β·(p−1)/p·m (each process keeps 1/p and sends 1/p to each of the p−1 others)."""
    p = np.asarray(p, dtype=np.float64)
    return Rate(p - 1.0, (p - 1.0) / p)


def level_alltoall_rates(p: np.ndarray, stride: np.ndarray, placement: Placement,
                         total: int) -> list[Rate]:
    """The pairwise all-to-all of a group of p processes with rank stride ``stride`` on each
    level of ``placement``'s machine, innermost first, m words held per process.

    Every member sends m/p words to each of the p − 1 others, and a message goes over the level
    where its two ends first share a domain: with q_l members per aligned level-l block
    (:func:`costmodel.engine.hierarchy.members`; q_0 = 1, q_L = p) a member has q_l − q_(l−1)
    partners at level l, so level l carries (q_l − q_(l−1))·α_l + β_l·(q_l − q_(l−1))/p·m.  Ordering
    the p − 1 rounds level by level (a mixed-radix shift: first the partners in the node, then the
    rest) makes every round use one level for every member, so this is also the lock-step time.
    Summed over the levels: (p − 1)·α + β·(p − 1)/p·m, :func:`alltoall_rate`.
    """
    p = np.asarray(p, dtype=np.int64)
    before = np.ones_like(p)
    out = []
    for domain in (*placement.domains, None):
        q = (np.broadcast_to(p, np.broadcast_shapes(p.shape, np.shape(stride)))
             if domain is None else members(p, stride, domain, np.int64(total)))
        partners = (q - before).astype(np.float64)
        out.append(Rate(partners, partners / p))
        before = q
    return out


@dataclass(frozen=True)
class Route:
    """One way of moving a layer boundary's data from layout k to layout l, per level
    (innermost first; one level on a flat machine): latency count and words per word of
    activations per sample n, each (levels, K, K); words = per_sample · n."""

    messages: np.ndarray
    per_sample: np.ndarray

    def __add__(self, other: Route) -> Route:
        return Route(self.messages + other.messages, self.per_sample + other.per_sample)

    @property
    def T(self) -> Route:
        """The route with source and target swapped (the last two axes)."""
        return Route(np.swapaxes(self.messages, -1, -2), np.swapaxes(self.per_sample, -1, -2))


def forward_routes(lay: Layouts, batch: int, algo: Algorithms,
                   placement: Placement | None = None) -> tuple[Route, Route]:
    """The two candidate routes of the forward redistribution k → l (docs/perlayer.md §2).

    With g = gcd(Pr_k, Pr_l), b_k = ⌈B/Pc_k⌉, b_l = ⌈B/Pc_l⌉ and n words per sample:

    * replicated (batch, model) → replicated: all-gather over Pr_l/g of b_l·n words;
    * replicated → domain: all-to-all over Pr_l/g, b_l·n/Pr_l words held per process;
    * domain → any: route A first all-gathers the strips over Pr_k (b_k·n words: the layout
      becomes model Pr_k) and continues as from model Pr_k; route B first all-to-alls back to
      batch (b_k·n/Pr_k words per process) and continues as from batch.
      Domain → the same domain layout costs 0.

    With a ``placement`` (docs/perlayer.md §7) each collective runs over the ranks that hold
    the data under its mapping — the Pr_l/g members of layout l's Pr group that hold distinct
    sample blocks: rank stride g with Pr inside, Pc_l with Pc inside; the strips of layout k:
    its Pr group — and is split over the levels: the all-gather as
    `costmodel.engine.hierarchy.level_rates`, the all-to-all by :func:`level_alltoall_rates`.

    Returns (A, B), each (levels, K, K); on rows of replicated sources B equals A.
    """
    pr, pc = lay.pr.astype(np.int64), lay.pc.astype(np.int64)
    P = int(pr[0] * pc[0])
    b = local_batch(np.int64(batch), pc).astype(np.float64)  # (K,)
    domain = lay.mode == DOMAIN
    src, dst = pr[:, None], pr[None, :]

    def rates(p: np.ndarray, stride: np.ndarray) -> tuple[list[Rate], list[Rate]]:
        """(all-gather, all-to-all) of groups of p processes with ``stride``, per level."""
        if placement is None:
            return [algo.allgather_rate(p)], [alltoall_rate(p)]
        gathers = level_rates(p, stride, placement.domains, algo, np.int64(P),
                              placement.machine.links).allgather
        return list(gathers), level_alltoall_rates(p, stride, placement, P)

    def to_target(source_pr: np.ndarray) -> Route:
        # replicated source with Pr = source_pr (K, K) or (K, 1) → each target layout l
        common = np.gcd(source_pr, dst)
        group = dst // common
        stride = (common if placement is None or placement.pr_inside
                  else np.broadcast_to(pc[None, :], common.shape))
        messages, per_sample = [], []
        for gather, scatter in zip(*rates(group, stride)):
            messages.append(np.where(domain[None, :], scatter.messages, gather.messages))
            per_sample.append(np.where(domain[None, :], scatter.per_word * (b / pr)[None, :],
                                       gather.per_word * b[None, :]))
        shape = (len(messages), len(lay), len(lay))
        return Route(np.broadcast_to(np.array(messages), shape),
                     np.broadcast_to(np.array(per_sample), shape))

    def leave(rate: list[Rate], words: np.ndarray) -> Route:
        # a domain source's first step over its own Pr group; nothing for replicated sources
        return Route(np.array([np.where(domain, r.messages, 0.0)[:, None] for r in rate]),
                     np.array([np.where(domain, r.per_word * words, 0.0)[:, None]
                               for r in rate]))

    direct = to_target(src)
    strip_stride = np.ones_like(pr) if placement is None else placement.group_stride(pr, pc)
    gather_strips, to_batch = rates(pr, strip_stride)
    route_a = leave(gather_strips, b) + direct
    route_b = leave(to_batch, b / pr) + to_target(np.ones_like(src))
    same = np.eye(len(lay), dtype=bool)
    # a domain source: the strips' own layout is free; replicated sources have one route
    a = Route(np.where(same, 0.0, route_a.messages), np.where(same, 0.0, route_a.per_sample))
    bb = Route(np.where(same, 0.0, np.where(domain[:, None], route_b.messages, a.messages)),
               np.where(same, 0.0, np.where(domain[:, None], route_b.per_sample,
                                            a.per_sample)))
    return a, bb


@dataclass(frozen=True)
class Redistribution:
    """Redistribution between consecutive layers, forward and backward together, per iteration:
    ``messages``, ``words``, ``seconds`` of shape (L−1, K, K) — entry [i, k, l] for layer i in
    layout k and layer i+1 in layout l, summed over the levels of a hierarchical machine — and
    the chosen forward and backward routes (0 = A, 1 = B) of the same shape."""

    messages: np.ndarray
    words: np.ndarray
    seconds: np.ndarray
    forward_route: np.ndarray
    backward_route: np.ndarray
    forward_s: np.ndarray | None = None
    """Seconds of the forward move alone (activations k → l), (L−1, K, K); the backward move
    (their gradients l → k) is ``seconds − forward_s``.  For overlap 'backward', which places
    each on its own side of the iteration (docs/schedule.md)."""


def redistribution(layers: LayerArrays, lay: Layouts, batch: int, algo: Algorithms,
                   alpha_s: float, beta_s_per_word: float,
                   placement: Placement | None = None) -> Redistribution:
    """The redistribution cost tensor (docs/perlayer.md §2), shape (L−1, K, K).

    n_i = X_H·X_W·X_C of layer i+1 (its input, after any pooling: what actually moves).  The
    forward pass moves activations k → l, the backward pass their gradients l → k (the same
    size); each direction takes the cheaper of its two routes, per layer boundary.  With a
    ``placement`` every level's messages and words are charged at that level's α, β
    (docs/perlayer.md §7); ``alpha_s`` and ``beta_s_per_word`` are then unused.
    """
    n = (layers.in_height * layers.in_row_words)[0, 1:][:, None, None]  # (L−1, 1, 1)
    a, b = forward_routes(lay, batch, algo, placement)
    links = ((alpha_s, beta_s_per_word),) if placement is None else placement.links

    def seconds_of(r: Route) -> np.ndarray:
        latency = functools.reduce(np.add, [alpha * m for m, (alpha, _) in
                                            zip(r.messages, links)])
        slope = functools.reduce(np.add, [beta * w for w, (_, beta) in
                                          zip(r.per_sample, links)])
        return np.asarray(latency + slope * n)

    fpick = seconds_of(b) < seconds_of(a)
    back_a, back_b = a.T, b.T
    bpick = seconds_of(back_b) < seconds_of(back_a)
    # level by level, accumulated in place: few (L−1, K, K) arrays alive at a time
    totals: list[np.ndarray] = []
    for level, (alpha, beta) in enumerate(links):
        fm = np.where(fpick, b.messages[level], a.messages[level])
        fw = np.where(fpick, b.per_sample[level], a.per_sample[level])
        fw *= n
        forward = alpha * fm
        forward += beta * fw
        messages = np.where(bpick, back_b.messages[level], back_a.messages[level])
        messages += fm
        del fm
        words = np.where(bpick, back_b.per_sample[level], back_a.per_sample[level])
        words *= n
        words += fw
        del fw
        seconds = alpha * messages
        seconds += beta * words
        parts = [messages, words, seconds, forward]
        if totals:
            for total, part in zip(totals, parts):
                total += part
        else:
            totals = parts
        del parts, messages, words, seconds, forward
    return Redistribution(totals[0], totals[1], totals[2], fpick.astype(np.int8),
                          bpick.astype(np.int8), totals[3])


def describe_move(lay: Layouts, k: int, target: int, route: int) -> str:
    """The collectives of one move from layout k to layout ``target`` by ``route`` (0 = A,
    1 = B; see :func:`forward_routes`), for people."""
    if k == target:
        return "none"
    steps = []
    source = int(lay.pr[k])
    if lay.mode[k] == DOMAIN and source > 1:
        if route == 0:
            steps.append(f"all-gather strips over {source}")
        else:
            steps.append(f"all-to-all over {source}")
            source = 1
    group = int(lay.pr[target]) // int(np.gcd(source, int(lay.pr[target])))
    if group > 1:
        what = "all-to-all" if lay.mode[target] == DOMAIN else "all-gather"
        steps.append(f"{what} over {group}")
    return " + ".join(steps) or "none (local)"


# --------------------------------------------------------------------------- dynamic programme


def solve_chain(layer_s: np.ndarray, redist_s: np.ndarray) -> tuple[float, np.ndarray]:
    """Least Σ layer_s[choice_i, i] + Σ redist_s[i, choice_i, choice_{i+1}] and its argmin.

    cost_0 = layer_s[:, 0]; cost_i[l] = layer_s[l, i] + min_k (cost_{i−1}[k] + redist_s[i−1, k, l]);
    backtracked from argmin cost_{L−1}.  Ties go to the lowest layout index (batch, then small Pr).
    ``layer_s`` (K, L) with inf for infeasible layouts, ``redist_s`` (L−1, K, K); returns
    (value, choice (L,)).  O(L·K²) with the K×K minimum vectorized.
    """
    K, L = layer_s.shape
    columns = np.arange(K)
    cost = layer_s[:, 0].copy()
    back = np.empty((max(L - 1, 0), K), dtype=np.int64)
    for i in range(1, L):
        candidate = cost[:, None] + redist_s[i - 1]
        back[i - 1] = np.argmin(candidate, axis=0)
        cost = candidate[back[i - 1], columns] + layer_s[:, i]
    choice = np.empty(L, dtype=np.int64)
    choice[-1] = int(np.argmin(cost))
    for i in range(L - 1, 0, -1):
        choice[i - 1] = back[i - 1, choice[i]]
    return float(cost[choice[-1]]), choice


@dataclass(frozen=True)
class Problem:
    """Everything the per-layer search needs at one (P, B): layouts, layer costs (K, L),
    redistribution (L−1, K, K), compute seconds per iteration, overlap."""

    network: Network
    machine: Machine
    P: int
    batch: int
    settings: Settings
    layouts: Layouts
    costs: LayerCosts
    redistribution: Redistribution
    compute_s: float
    compute_model: str
    compute_outside_table: bool
    steps: Any = None
    """Overlap 'backward': the schedule's steps of every layout × layer
    (costmodel.engine.schedule.Steps with K rows); None otherwise."""
    placement: Placement | None = None
    """A machine with levels: the mapping every layout and redistribution is costed with
    (docs/perlayer.md §7); None on a flat machine."""

    @property
    def mapping(self) -> str | None:
        """'pr-inside' or 'pc-inside' on a machine with levels, None when flat."""
        return None if self.placement is None else self.placement.mapping

    def sequence_steps(self, choice: np.ndarray) -> Any:
        """Overlap 'backward': the schedule's steps of layout sequences (S, L)."""
        return _sequence_steps(self, choice)

    @property
    def penalty(self) -> np.ndarray:
        """0 where a layer may take a layout, inf where not, (K, L)."""
        return np.where(self.costs.feasible, 0.0, np.inf)

    def sequence_terms(self, choice: np.ndarray) -> dict[str, np.ndarray]:
        """Per-sequence sums of each term for layout sequences ``choice`` (S, L): model, batch,
        domain, redistribution seconds per iteration, and feasibility, each (S,)."""
        choice = np.atleast_2d(choice)
        columns = np.arange(choice.shape[1])
        sums = {t: getattr(self.costs, f"{t}_s")[choice, columns].sum(axis=1)
                for t in ("model", "batch", "domain")}
        between = np.arange(choice.shape[1] - 1)
        sums["redistribution"] = self.redistribution.seconds[
            between, choice[:, :-1], choice[:, 1:]].sum(axis=1)
        sums["feasible"] = self.costs.feasible[choice, columns].all(axis=1)
        return sums

    def totals(self, choice: np.ndarray) -> np.ndarray:
        """Total seconds per iteration of layout sequences (S, L), inf where infeasible, (S,).

        Redistribution is never hidden: under overlap `batch` it adds to the model term.
        """
        s = self.sequence_terms(choice)
        if self.settings.overlap == "backward":
            from costmodel.engine.schedule import run

            bucket: Any = self.settings.bucket  # a Bucketing: problem() resolves it
            schedule = run(self.sequence_steps(choice), bucket, self.machine.word_bytes)[0]
            return np.where(s["feasible"], schedule.total_s, np.inf)
        total = combine(np.float64(self.compute_s), s["model"] + s["redistribution"], s["batch"],
                        s["domain"], self.settings.overlap)
        return np.where(s["feasible"], total, np.inf)


def _sequence_steps(prob: Problem, choice: np.ndarray) -> Any:
    """The schedule's steps of layout sequences ``choice`` (S, L): each layer's collectives in
    its layout, the forward redistribution into layer i+1 before its forward compute and the
    backward one (its gradients back to layer i's layout) after its backward compute."""
    from costmodel.engine.schedule import Steps

    steps = prob.steps
    choice = np.atleast_2d(choice)
    rows = np.arange(choice.shape[1])[:, None]
    layout = choice.T  # (L, S)
    out: dict[str, Any] = {}
    for name in ("fwd_compute_s", "bwd_compute_s", "fwd_pre_s", "fwd_post_s", "bwd_pre_s",
                 "bwd_post_s", "grad_words", "grad_group", "fwd_pre_words", "fwd_post_words",
                 "bwd_pre_words", "bwd_post_words", "pr"):
        out[name] = getattr(steps, name)[rows, layout].astype(np.float64)
    for name in ("bucket_latency_s", "bucket_slope_s"):
        out[name] = getattr(steps, name)[:, rows, layout]
    r = prob.redistribution
    assert r.forward_s is not None
    between = rows[:-1]
    forward = r.forward_s[between, layout[:-1], layout[1:]]  # (L−1, S)
    backward = r.seconds[between, layout[:-1], layout[1:]] - forward
    zero = np.zeros((1, choice.shape[0]))
    out["fwd_pre_s"] = out["fwd_pre_s"] + np.concatenate([zero, forward], axis=0)
    out["bwd_post_s"] = out["bwd_post_s"] + np.concatenate([zero, backward], axis=0)
    out["processes"] = np.full(choice.shape[0], float(prob.P))
    return Steps(**out)


def layout_steps(network: Network, machine: Machine, lay: Layouts, batch: int,
                 algo: Algorithms, compute_s: float, mapping: str | None = None) -> Any:
    """The schedule's steps of every layout × layer (K rows, docs/schedule.md): model layouts as
    the plan model-batch, domain layouts as domain-batch on the same (Pr, Pc); ``mapping``
    (machines with levels): the one placement of every layout (None: flat, or Pr inside)."""
    from costmodel.engine.schedule import Steps, plan_steps

    K = len(lay)
    parts = {}
    for mode, plan_name in ((MODEL, "model-batch"), (DOMAIN, "domain-batch")):
        rows = np.flatnonzero(lay.mode == mode)
        g = Grids(lay.pr[rows].astype(np.int64), lay.pc[rows].astype(np.int64),
                  np.full(rows.size, batch, dtype=np.int64))
        inside = None if mapping is None else np.full(rows.size, mapping == PR_INSIDE)
        parts[mode] = (rows, plan_steps(network, machine, g, PLANS[plan_name], algo,
                                        np.full(rows.size, compute_s), inside, labels=True))
    first = parts[MODEL][1]
    out: dict[str, Any] = {}
    for name in ("fwd_compute_s", "bwd_compute_s", "fwd_pre_s", "fwd_post_s", "bwd_pre_s",
                 "bwd_post_s", "grad_words", "grad_group", "fwd_pre_words", "fwd_post_words",
                 "bwd_pre_words", "bwd_post_words", "pr", "bucket_latency_s",
                 "bucket_slope_s"):
        value = getattr(first, name)
        full = np.zeros((*value.shape[:-1], K))
        for rows, st in parts.values():
            full[..., rows] = getattr(st, name)
        out[name] = full
    out["processes"] = np.full(K, float(lay.pr[0] * lay.pc[0]))
    return Steps(**out)


def problem(network: Network, machine: Machine, P: int, batch: int,
            settings: Settings = DEFAULT_SETTINGS, feasible_only: bool = False,
            mapping: str | None = None) -> Problem:
    """Layouts, layer costs and redistribution of ``network`` at P processes, global batch B.

    On a machine with levels everything is costed under one ``mapping``, 'pr-inside' or
    'pc-inside' (None: the settings' mapping, Pr inside when that is 'best'; docs/perlayer.md
    §7); on a flat machine ``mapping`` must be None and the settings' 'best'.

    Before the (L−1, K, K) redistribution is built: with ``feasible_only``, NoFeasibleGrid when
    some layer has no feasible layout; and TooLarge when it would exceed
    MAX_REDISTRIBUTION_CELLS (costmodel.limits).
    """
    P = check_processes(P)
    batch = check_batch(batch)
    setting = check_mapping(settings.mapping)
    if not machine.hierarchical and (setting != BEST or mapping is not None):
        raise UsageError(f"mapping {mapping or setting!r}: machine {machine.name!r} has no "
                         "levels (one α and β for every message), so the mapping changes "
                         "nothing; add 'levels' to its profile (docs/hierarchy.md) or drop "
                         "--mapping")
    algo = machine_algorithms(machine, settings.collectives)
    if not algo.linear:
        raise UsageError("plan per-layer: collectives 'auto' is not supported yet (its "
                         "redistribution is costed with one all-gather rate); pick an algorithm")
    placement = None
    if machine.hierarchical:
        check_algorithms(algo)
        chosen = mapping or (PR_INSIDE if setting == BEST else setting)
        placement = Placement.of(machine, check_mapping(chosen))
    lay = layouts(P)
    layers = LayerArrays.of(network)
    alpha, beta = machine.alpha_s, machine.beta_s_per_word
    costs = layer_costs(layers, lay, batch, algo, alpha, beta, machine.gamma_s_per_word,
                        placement)
    stuck = np.flatnonzero(~costs.feasible.any(axis=0))
    if feasible_only and stuck.size:
        raise NoFeasibleGrid(_no_layout_text(network, lay, P, batch, int(stuck[0])))
    cells = (len(network.layers) - 1) * len(lay) ** 2
    if cells > MAX_REDISTRIBUTION_CELLS.largest:
        raise TooLarge(f"plan per-layer: {len(network.layers) - 1} layer boundaries × "
                         f"{len(lay)}² layout pairs of P={P} = {cells:,} redistribution costs, "
                         f"at most {MAX_REDISTRIBUTION_CELLS.largest:,} "
                         f"({MAX_REDISTRIBUTION_CELLS.why}); use a fixed plan, or a P with "
                         "fewer divisors")
    grid = Grids(np.array([1]), np.array([P]), np.array([batch]))
    compute_s, compute_model, outside = compute_per_iteration_s(network, machine, grid,
                                                                settings.compute)
    steps = None
    if settings.overlap == "backward":
        from costmodel.engine.buckets import Bucketing, bucketing

        if not isinstance(settings.bucket, Bucketing):
            settings = replace(settings, bucket=bucketing(settings.bucket, None,
                                                          machine.bucket))
        steps = layout_steps(network, machine, lay, batch, algo, float(compute_s[0]),
                             None if placement is None else placement.mapping)
    return Problem(network, machine, P, batch, settings, lay, costs,
                   redistribution(layers, lay, batch, algo, alpha, beta, placement),
                   float(compute_s[0]), compute_model, bool(outside[0]), steps, placement)


# --------------------------------------------------------------------------- fixed plans


@dataclass(frozen=True)
class FixedPlan:
    """A fixed plan at (P, B): its best grid as the engine costs it (redistribution not
    charged, the paper's convention) and its best grid with redistribution charged.  Seconds
    per iteration; pr/pc None and total inf when no grid is feasible."""

    plan: str
    pr: int | None
    pc: int | None
    total_s: float
    charged_pr: int | None
    charged_pc: int | None
    charged_total_s: float
    charged_redistribution_s: float
    mapping: str | None = None
    """Machines with levels: the mapping of the uncharged best grid (None when flat)."""
    charged_mapping: str | None = None
    """Machines with levels: the mapping of the charged best grid (None when flat)."""


def fixed_plan_sequences(prob: Problem, plan_name: str) -> tuple[Grids, np.ndarray]:
    """The layout sequence of ``plan_name`` on every grid of P: (grids, (G, L) layout indices)."""
    grids = factorizations(prob.P, prob.batch)
    layout = PLANS[plan_name].layout(grids, prob.network)
    return grids, prob.layouts.index(layout.mode, layout.pr)


def engine_totals(network: Network, machine: Machine, P: int, batch: int,
                  settings: Settings) -> dict[str, dict[str, np.ndarray]]:
    """A machine with levels: each fixed plan's engine total on every grid of P under each
    mapping, ``[mapping][plan]`` (G,), inf where infeasible — one `cost.evaluate` per plan,
    which costs both mappings anyway."""
    grids = factorizations(P, batch)
    out: dict[str, dict[str, np.ndarray]] = {name: {} for name in MAPPINGS}
    for plan_name, plan in PLANS.items():
        table = evaluate(network, machine, grids, plan, settings.overlap, settings.collectives,
                         settings.compute, bucket=settings.bucket)
        assert table.mappings is not None
        for name in MAPPINGS:
            out[name][plan_name] = np.where(table.feasible, table.mappings.total_s[name],
                                            np.inf)
    return out


def fixed_plans(prob: Problem,
                engine_s: dict[str, np.ndarray] | None = None) -> list[FixedPlan]:
    """The four fixed plans, uncharged (engine) and charged (re-costed here), at (P, B); on a
    machine with levels both under the problem's mapping.  ``engine_s``: each plan's engine
    totals per grid when already known (:func:`engine_totals`), else `cost.evaluate` runs."""
    s = prob.settings
    out = []
    for name in PLANS:
        grids, seqs = fixed_plan_sequences(prob, name)
        if engine_s is not None:
            engine = engine_s[name]
        else:
            table = evaluate(prob.network, prob.machine, grids, PLANS[name], s.overlap,
                             s.collectives, s.compute, bucket=s.bucket,
                             mapping=prob.mapping or BEST)
            engine = np.where(table.feasible, table.total_s, np.inf)
        charged = prob.totals(seqs)
        best, cbest = int(np.argmin(engine)), int(np.argmin(charged))
        redist = float(prob.sequence_terms(seqs[cbest])["redistribution"][0])
        ok, cok = bool(np.isfinite(engine[best])), bool(np.isfinite(charged[cbest]))
        out.append(FixedPlan(name, int(grids.pr[best]) if ok else None,
                             int(grids.pc[best]) if ok else None, float(engine[best]),
                             int(grids.pr[cbest]) if cok else None,
                             int(grids.pc[cbest]) if cok else None, float(charged[cbest]),
                             redist if cok else 0.0, prob.mapping, prob.mapping))
    return out


def best_fixed_plans(per_mapping: list[list[FixedPlan]]) -> list[FixedPlan]:
    """Per plan, the cheaper of its uncharged bests and of its charged bests over the mappings
    solved (``per_mapping``: :func:`fixed_plans` of each, Pr inside first; ties keep the
    first): the fixed plans as `optimize --plan NAME` costs them with each grid's better
    mapping, and charged the same way."""
    out = []
    for plans in zip(*per_mapping):
        uncharged = min(plans, key=lambda f: f.total_s)
        charged = min(plans, key=lambda f: f.charged_total_s)
        out.append(replace(uncharged, charged_pr=charged.charged_pr,
                           charged_pc=charged.charged_pc,
                           charged_total_s=charged.charged_total_s,
                           charged_redistribution_s=charged.charged_redistribution_s,
                           charged_mapping=charged.charged_mapping))
    return out


# --------------------------------------------------------------------------- search


@dataclass(frozen=True)
class PerLayerResult:
    """The per-layer optimum at (P, B); seconds per iteration.

    ``choice`` (L,) is each layer's layout index into ``problem.layouts`` (None when some layer
    has no feasible layout).  ``exact`` says the optimum is proven (always under overlap
    `none`); ``lower_bound_s`` is a proven lower bound on the optimum total (equal to
    ``total_s`` when exact).
    """

    problem: Problem
    choice: np.ndarray | None
    total_s: float
    lower_bound_s: float
    exact: bool
    method: str
    pure_batch_total_s: float
    fixed: list[FixedPlan]
    reason: str | None
    mapping_total_s: dict[str, float] | None = None
    """Machines with levels: the per-layer optimum found under each mapping ('pr-inside',
    'pc-inside'), seconds per iteration; the one used is ``problem.mapping``.  None when flat."""

    @property
    def mapping(self) -> str | None:
        """The mapping of the whole run on a machine with levels, None when flat."""
        return self.problem.mapping

    @property
    def P(self) -> int:
        return self.problem.P

    @property
    def batch(self) -> int:
        return self.problem.batch

    def layer_terms(self) -> dict[str, np.ndarray]:
        """Per layer of the chosen sequence, seconds/words/messages per iteration, (L,) each:
        ``model_s``, ``batch_s``, ``domain_s`` (the layer's own communication) and
        ``redistribution_s``, ``_words``, ``_messages`` into the layer (0 for the first)."""
        assert self.choice is not None
        prob, choice = self.problem, self.choice
        columns = np.arange(choice.size)
        out = {f"{t}_s": getattr(prob.costs, f"{t}_s")[choice, columns]
               for t in ("model", "batch", "domain")}
        between = columns[:-1]
        r = prob.redistribution
        for name, values in (("s", r.seconds), ("words", r.words), ("messages", r.messages)):
            out[f"redistribution_{name}"] = np.concatenate(
                [[0.0], values[between, choice[:-1], choice[1:]]])
        out["uneven"] = prob.costs.uneven[choice, columns]
        return out

    def moves(self) -> list[str | None]:
        """Per layer, the collectives that bring its input into its layout (forward, then the
        gradients back, backward); None where the layout does not change."""
        assert self.choice is not None
        prob, choice = self.problem, self.choice
        r, lay = prob.redistribution, prob.layouts
        out: list[str | None] = [None]
        for i in range(1, choice.size):
            k, m = int(choice[i - 1]), int(choice[i])
            if k == m:
                out.append(None)
                continue
            forward = describe_move(lay, k, m, int(r.forward_route[i - 1, k, m]))
            backward = describe_move(lay, m, k, int(r.backward_route[i - 1, k, m]))
            out.append(f"fwd {forward}; bwd {backward}")
        return out


def _lagrangian(prob: Problem, candidates: list[np.ndarray]) -> tuple[float, str]:
    """Overlap `batch`: minimize max(C, Σb) + Σ(m + d + r) over layout sequences.

    For λ ∈ [0, 1], max(C, Σb) ≥ λ·Σb + (1−λ)·C, so every λ gives the lower bound
    DP_λ + (1−λ)·C with DP_λ the least Σ(m + d + r + λ·b), and its argmin is a candidate.  λ is
    bisected on the sign of Σb(λ) − C (a supergradient of the concave bound).  Appends each
    argmin to ``candidates``; returns (best lower bound, method).
    """
    c = prob.costs
    rest = c.model_s + c.domain_s + prob.penalty
    C = prob.compute_s
    redist = prob.redistribution.seconds

    def at(lam: float) -> tuple[float, float]:
        value, choice = solve_chain(rest + lam * c.batch_s, redist)
        candidates.append(choice)
        batch_sum = float(prob.sequence_terms(choice)["batch"][0])
        return value + (1.0 - lam) * C, batch_sum

    bound1, batch1 = at(1.0)
    if batch1 >= C:  # the additive optimum already has max(C, Σb) = Σb: bound is attained
        return bound1, "dynamic programme (overlap batch, all-reduce not hidden at optimum)"
    bound0, batch0 = at(0.0)
    best = max(bound0, bound1)
    if batch0 <= C:  # the least Σ rest already hides its all-reduce
        return best, "dynamic programme (overlap batch, all-reduce hidden at optimum)"
    low, high = 0.0, 1.0
    for _ in range(LAMBDA_STEPS):
        mid = 0.5 * (low + high)
        bound, batch_sum = at(mid)
        best = max(best, bound)
        if batch_sum > C:
            low = mid
        else:
            high = mid
    return best, "Lagrangian bisection over λ (overlap batch)"


def _backward_bound(prob: Problem, candidates: list[np.ndarray]) -> tuple[float, str]:
    """Overlap `backward`: a proven lower bound and candidate sequences (docs/schedule.md §6).

    Every schedule takes at least max(C, Σ bucket all-reduces) + Σ blocking (the compute and
    the blocking collectives form one chain; every collective shares one channel), and a
    bucket costs at least the β (and γ) part of its layers' all-reduces — all of it when every
    layer is its own bucket.  So the Lagrangian of overlap `batch` (:func:`_lagrangian`) on
    those per-layer costs bounds the optimum from below, and its argmins are candidates; each
    candidate is then costed by the schedule.  Also, the last bucket holds the first layer's
    gradient and starts after the last compute, so every schedule takes at least C + Σ
    blocking + that layer's all-reduce alone: a chain solved exactly by :func:`solve_chain`.
    """
    batch_s = prob.costs.batch_s
    bucket: Any = prob.settings.bucket
    if not bucket.per_layer:
        batch_s = layer_costs(LayerArrays.of(prob.network), prob.layouts, prob.batch,
                              machine_algorithms(prob.machine, prob.settings.collectives),
                              0.0, prob.machine.beta_s_per_word,
                              prob.machine.gamma_s_per_word,
                              None if prob.placement is None
                              else prob.placement.latency_free()).batch_s
    relaxed = replace(prob, costs=replace(prob.costs, batch_s=batch_s),
                      settings=replace(prob.settings, overlap="batch"), steps=None)
    bound, _ = _lagrangian(relaxed, candidates)
    # the last bucket holds the first layer's gradient and starts after the last compute:
    # total ≥ C + Σ blocking + the first layer's all-reduce alone
    chain = prob.costs.model_s + prob.costs.domain_s + prob.penalty
    chain[:, 0] += prob.costs.batch_s[:, 0]
    value, choice = solve_chain(chain, prob.redistribution.seconds)
    candidates.append(choice)
    return max(bound, value + prob.compute_s), (
        "schedule of the Lagrangian candidates of overlap batch (overlap backward; bound: "
        "overlap batch with latency-free buckets, or compute + blocking + the last all-reduce)")


def optimize_per_layer(network: Network, machine: Machine, P: int, batch: int,
                       settings: Settings = DEFAULT_SETTINGS,
                       allow_infeasible: bool = False) -> PerLayerResult:
    """The cheapest layout per layer, redistribution charged (docs/perlayer.md).

    Overlap `none`: exact by :func:`solve_chain`.  Overlap `batch`: the best of the Lagrangian
    candidates and of the four fixed plans' sequences (re-costed with redistribution), with a
    certified lower bound.  Overlap `backward`: the same candidates costed by the schedule,
    with the bound of :func:`_backward_bound`.  Raises NoFeasibleGrid when some layer has no
    feasible layout (or returns a result with ``choice`` None under ``allow_infeasible``).

    On a machine with levels the mapping is one placement for the whole run: the search runs
    under each mapping and keeps the cheaper total (ties: Pr inside), or the one
    ``settings.mapping`` forces; the result carries both totals (docs/perlayer.md §7).  The
    lower bound is then the smaller of the two (the optimum is the smaller optimum), and the
    fixed plans are compared with each grid's better mapping (or the forced one).
    """
    if not machine.hierarchical:
        return _search(problem(network, machine, P, batch, settings,
                               feasible_only=not allow_infeasible), allow_infeasible)
    setting = check_mapping(settings.mapping)

    def solved(name: str) -> Problem:
        return problem(network, machine, P, batch, settings, feasible_only=not allow_infeasible,
                       mapping=name)

    # two mappings' (L−1, K, K) arrays within the memory MAX_REDISTRIBUTION_CELLS allows one:
    # past half of it the first run keeps its answer only, and its problem is rebuilt if that
    # mapping is the one used
    first_problem = solved(MAPPINGS[0])
    engine = engine_totals(network, machine, P, batch, first_problem.settings)
    first = _search(first_problem, allow_infeasible, engine[MAPPINGS[0]])
    del first_problem
    cells = (len(network.layers) - 1) * len(first.problem.layouts) ** 2
    if 2 * cells > MAX_REDISTRIBUTION_CELLS.largest:
        first = replace(first, problem=_without_arrays(first.problem))
    runs = [first, _search(solved(MAPPINGS[1]), allow_infeasible, engine[MAPPINGS[1]])]
    if setting == BEST:
        chosen = runs[1] if runs[1].total_s < runs[0].total_s else runs[0]
        bound = min(run.lower_bound_s for run in runs)
        fixed = best_fixed_plans([run.fixed for run in runs])
    else:
        chosen = runs[MAPPINGS.index(setting)]
        bound, fixed = chosen.lower_bound_s, chosen.fixed
    mapping_total_s = {name: run.total_s for name, run in zip(MAPPINGS, runs)}
    if chosen is first and first.problem.redistribution.seconds.size == 0 < cells:
        del runs  # drop the other mapping's arrays before building these again
        chosen = replace(first, problem=solved(MAPPINGS[0]))
    exact = chosen.choice is not None and chosen.total_s <= bound * (1.0 + 1e-12)
    return replace(chosen, lower_bound_s=min(bound, chosen.total_s), exact=exact, fixed=fixed,
                   mapping_total_s=mapping_total_s)


def _without_arrays(prob: Problem) -> Problem:
    """``prob`` without its (L−1, K, K) redistribution and its schedule steps: enough to keep
    a result's totals and choice while another mapping is solved, not to cost sequences."""
    empty = np.empty((0, 0, 0))
    nothing = Redistribution(empty, empty, empty, empty.astype(np.int8), empty.astype(np.int8))
    return replace(prob, redistribution=nothing, steps=None)


def _search(prob: Problem, allow_infeasible: bool,
            engine_s: dict[str, np.ndarray] | None = None) -> PerLayerResult:
    """:func:`optimize_per_layer` on one problem (one mapping on a machine with levels);
    ``engine_s`` as :func:`fixed_plans`."""
    settings, network = prob.settings, prob.network
    fixed = fixed_plans(prob, engine_s)
    # pure batch: every layer in layout 0 (1×P), no layout change, so nothing to redistribute
    pure_engine = float(prob.totals(np.zeros((1, len(network.layers)), dtype=np.int64))[0])
    stuck = np.flatnonzero(~prob.costs.feasible.any(axis=0))
    if stuck.size:
        message = no_layout_message(prob, int(stuck[0]))
        if not allow_infeasible:
            raise NoFeasibleGrid(message)
        return PerLayerResult(prob, None, np.inf, np.inf, False, "none", pure_engine, fixed,
                              message)
    c = prob.costs
    if settings.overlap == "none":
        layer_s = c.model_s + c.batch_s + c.domain_s + prob.penalty
        _, choice = solve_chain(layer_s, prob.redistribution.seconds)
        total = float(prob.totals(choice)[0])
        return PerLayerResult(prob, choice, total, total, True, "dynamic programme",
                              pure_engine, fixed, None)
    candidates: list[np.ndarray] = []
    if settings.overlap == "backward":
        bound, method = _backward_bound(prob, candidates)
    else:
        bound, method = _lagrangian(prob, candidates)
    for plan_name in PLANS:
        candidates.extend(fixed_plan_sequences(prob, plan_name)[1])
    stack = np.array(candidates)
    totals = prob.totals(stack)
    best = int(np.argmin(totals))
    total = float(totals[best])
    exact = total <= bound * (1.0 + 1e-12)
    return PerLayerResult(prob, stack[best], total, min(bound, total), exact, method,
                          pure_engine, fixed, None)


def no_layout_message(prob: Problem, i: int) -> str:
    """Why layer ``i`` has no feasible layout at (P, B) (docs/model.md §6)."""
    return _no_layout_text(prob.network, prob.layouts, prob.P, prob.batch, i)


def _no_layout_text(network: Network, lay: Layouts, P: int, batch: int, i: int) -> str:
    layer = network.layers[i]
    batch_ok = lay.pc <= batch
    need = int(lay.pr[np.flatnonzero(batch_ok)[0]]) if batch_ok.any() else None
    what = "filters" if layer.kind == "conv" else "units"
    parts = [f"Pc = P/Pr ≤ B={batch} needs Pr ≥ {need}" if need else
             f"no Pc ≤ B={batch}"]
    parts.append(f"a model split allows Pr ≤ {layer.split_size} {what}")
    if layer.kind == "conv":
        strip = max(1, layer.halo_rows[0])
        parts.append(f"a domain split Pr ≤ {layer.in_shape[0] // strip} "
                     f"({layer.in_shape[0]} rows in strips of ≥ {strip})")
    else:
        parts.append("a domain split is for conv layers only")
    return (f"plan per-layer: no feasible layout for {layer.name} at P={P}, "
            f"B={batch}: " + "; ".join(parts))
