"""One training iteration as a schedule of events: overlap ``backward`` (docs/schedule.md).

Between the paper's two bounds — ``none`` (every collective adds to the compute) and ``batch``
(the whole gradient all-reduce hides under the compute) — this models what frameworks do:

* **forward**, layer by layer: the forward halo exchange of a domain-split layer, its compute,
  the Pr-group all-gather of its output (model split); each blocks the next step;
* **backward**, layer by layer in reverse: the backward halo exchange, the compute of ΔX and ΔW,
  the blocking Pr-group all-reduce of ΔX; the layer's weight gradient is ready when its
  backward step ends;
* **gradients** are fused into buckets in the order they become ready
(:mod:`costmodel.engine.buckets`)
  and a bucket's all-reduce over its group (Pc, or all P for domain-split layers) starts once
  the bucket is full and the channel is free;
* the iteration ends when both the last compute and the last all-reduce have ended.

**What shares what.**  Each process has one communication channel: every collective it takes
part in — the blocking Pr-group collectives, the halos and the gradient all-reduces — runs on
it one at a time, non-preemptively, in the order it is issued (a layer's ΔX exchange is issued
before the bucket its gradient closes).  In the α–β model β is the per-process link time per
word, so two collectives sharing the link concurrently take at least the sum of their β terms;
running them one after the other is the work-conserving schedule with the same finishing time
for the pair (and it is what collectives issued on a single NCCL stream do).  Compute runs on
its own lane, concurrently with the channel.

**Hierarchical machines** enter through the duration of each collective: a two-level
collective's phases (inside the node, across nodes, docs/hierarchy.md) run one after the other
on the same channel, so its duration is the sum over levels, with the grid's mapping; under
``mapping best`` each grid takes the mapping whose schedule is shorter.

The recurrence runs over the L layers with numpy arrays over the G grids: O(G·L).

Per-layer compute (docs/schedule.md §2): the compute of the whole network (measured table or
flop rate, docs/model.md §7) is split between layers by their share of multiply-adds, and
within a layer between forward and backward as 1 : r with r = ``backward_ratio`` of the machine
(2 unless the profile says otherwise: the backward pass computes ΔX and ΔW, each a product of
the forward's size — the standard 2×-forward backward FLOP count, e.g. Kaplan et al., "Scaling
Laws for Neural Language Models", 2020, §2.1: 2N forward, 4N backward FLOPs per token).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from costmodel.engine.buckets import FIT_UNDER_CAP, Bucketing
from costmodel.engine.collectives import (
    ALLGATHER,
    ALLREDUCE,
    Algorithms,
    CollectiveCost,
    halo_exchange,
)
from costmodel.engine.grids import Grids
from costmodel.engine.hierarchy import (
    LEVEL_CANDIDATES,
    fixed_selection,
    halo_level,
    level_costs,
    level_rates,
    strides,
)
from costmodel.engine.layerarrays import LayerArrays, local_batch
from costmodel.engine.plans import DOMAIN, Plan
from costmodel.inputs.specs import Machine, Network
from costmodel.records import BucketRecord, EventRecord, ScheduleRecord, TimelineRecord


@dataclass(frozen=True)
class Steps:
    """Everything the schedule needs, per layer × grid, shape (L, G) — layer-major, so the
    recurrence over layers reads contiguous rows — seconds per iteration.

    ``fwd_pre_s`` runs before a layer's forward compute (its forward halo; redistribution into
    it under the per-layer plan), ``fwd_post_s`` after it (the Pr-group all-gather of Y);
    ``bwd_pre_s`` before its backward compute (the backward halo), ``bwd_post_s`` after it (the
    Pr-group all-reduce of ΔX; redistribution of the gradient back under the per-layer plan).
    ``grad_words`` are the words of the layer's weight gradient all-reduced over a group of
    ``grad_group`` processes.  A bucket of W words closing at layer i costs
    min over a of (``bucket_latency_s[a, i]`` + ``bucket_slope_s[a, i]``·W), arrays (A, L, G):
    one affine cost per candidate algorithm (one for a fixed algorithm, several for 'auto').
    The ``*_words`` arrays and ``pr`` (labels for timelines) may be None.
    """

    fwd_compute_s: np.ndarray
    bwd_compute_s: np.ndarray
    fwd_pre_s: np.ndarray
    fwd_post_s: np.ndarray
    bwd_pre_s: np.ndarray
    bwd_post_s: np.ndarray
    grad_words: np.ndarray
    grad_group: np.ndarray
    bucket_latency_s: np.ndarray
    bucket_slope_s: np.ndarray
    fwd_pre_words: np.ndarray | None = None
    fwd_post_words: np.ndarray | None = None
    bwd_pre_words: np.ndarray | None = None
    bwd_post_words: np.ndarray | None = None
    pr: np.ndarray | None = None
    """(L, G) the Pr group of each layer (for labels); None when not known."""
    processes: np.ndarray | None = None
    """(G,) P of each grid (for labels); None when not known."""

    @property
    def shape(self) -> tuple[int, int]:
        """(L, G): layers × grids."""
        rows, columns = self.fwd_compute_s.shape
        return int(rows), int(columns)

    def allreduce_s(self, words: np.ndarray, layer: int) -> np.ndarray:
        """Seconds of all-reducing ``words`` (G,) over layer ``layer``'s gradient group, (G,)."""
        if self.bucket_latency_s.shape[0] == 1:
            one: np.ndarray = (self.bucket_latency_s[0, layer]
                               + self.bucket_slope_s[0, layer] * words)
            return one
        costs = self.bucket_latency_s[:, layer] + self.bucket_slope_s[:, layer] * words
        out: np.ndarray = costs.min(axis=0)
        return out

    def take(self, index: np.ndarray | slice) -> Steps:
        """The grids (last axis) at ``index``."""
        parts: dict[str, Any] = {f.name: None if getattr(self, f.name) is None
                                 else getattr(self, f.name)[..., index] for f in fields(self)}
        return Steps(**parts)


@dataclass(frozen=True)
class ScheduleTotals:
    """The schedule of every grid, seconds per iteration, shape (G,) each.

    ``total_s`` = ``compute_s`` + ``blocking_s`` + ``wait_s`` + ``tail_s``: the compute, the
    blocking collectives (Pr-group all-gathers and ΔX all-reduces, halos, redistribution), the
    time the compute waits for the channel while a gradient all-reduce occupies it, and the
    all-reduce left after the last compute.  ``gradient_s`` is the sum of all bucket
    all-reduces; ``gradient_s − wait_s − tail_s`` of it ran under the compute (``hidden_s``).
    ``serial_s`` is the iteration with nothing overlapped and these buckets (overlap ``none``
    with the same buckets); ``bound_s`` = max(compute, gradient) + blocking (overlap ``batch``
    with the same buckets), so bound_s ≤ total_s ≤ serial_s.
    """

    total_s: np.ndarray
    compute_s: np.ndarray
    blocking_s: np.ndarray
    wait_s: np.ndarray
    tail_s: np.ndarray
    gradient_s: np.ndarray
    buckets: np.ndarray

    @property
    def exposed_s(self) -> np.ndarray:
        """Communication on the critical path: total − compute."""
        out: np.ndarray = self.blocking_s + self.wait_s + self.tail_s
        return out

    @property
    def hidden_s(self) -> np.ndarray:
        """Gradient all-reduce that ran while the compute ran."""
        out: np.ndarray = self.gradient_s - self.wait_s - self.tail_s
        return out

    @property
    def serial_s(self) -> np.ndarray:
        """Nothing overlapped, these buckets: compute + blocking + gradient."""
        out: np.ndarray = self.compute_s + self.blocking_s + self.gradient_s
        return out

    @property
    def bound_s(self) -> np.ndarray:
        """Everything hidden that can be, these buckets: max(compute, gradient) + blocking."""
        out: np.ndarray = np.maximum(self.compute_s, self.gradient_s) + self.blocking_s
        return out

    def where(self, mask: np.ndarray, other: ScheduleTotals) -> ScheduleTotals:
        """This schedule where ``mask`` (G,), ``other`` elsewhere."""
        return ScheduleTotals(**{f.name: np.where(mask, getattr(self, f.name),
                                                  getattr(other, f.name))
                                 for f in fields(self)})

    def take(self, index: np.ndarray | slice) -> ScheduleTotals:
        return ScheduleTotals(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(frozen=True)
class Event:
    """One event of one grid's iteration, seconds from the start of the iteration.

    ``lane``: 'compute', 'pr' (blocking collectives of the Pr group and halos), 'gradient' (the
    bucket all-reduces) or 'wait' (compute idle, waiting for the channel or, at the end, for
    the last all-reduce); 'pr' and 'gradient' are one channel and never overlap.  ``words`` per
    process; ``group`` the process group ('Pr=4', 'Pc=16', 'P=64', '' for compute);
    ``exposed_s`` the part of it on the critical path (compute idle meanwhile).
    """

    lane: str
    start_s: float
    end_s: float
    what: str
    layers: tuple[str, ...]
    words: float
    group: str
    exposed_s: float

    def record(self) -> EventRecord:
        return {"lane": self.lane, "start_s": self.start_s, "end_s": self.end_s,
                "duration_s": self.end_s - self.start_s, "what": self.what,
                "layers": list(self.layers), "words": self.words, "group": self.group,
                "exposed_s": self.exposed_s}


# --------------------------------------------------------------------------- the recurrence


def _block(t: np.ndarray, free: np.ndarray, duration: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A blocking collective issued at ``t``: it starts when the channel is free, the compute
    waits for its end.  Zero-duration collectives (groups of one) neither wait nor occupy the
    channel.  Returns (start, end = the compute's new clock, the channel's free time, wait)."""
    busy = duration > 0
    start = np.where(busy, np.maximum(t, free), t)
    end = start + duration
    return start, end, np.where(busy, end, free), start - t


def run(steps: Steps, bucket: Bucketing, word_bytes: int, record: int | None = None,
        layer_names: tuple[str, ...] = (), serial: bool = False
        ) -> tuple[ScheduleTotals, list[Event]]:
    """Run the schedule of every grid (module docstring); with ``record`` = a grid index, also
    return that grid's events in time order (for timelines), else [].

    ``serial``: the compute also waits for every bucket all-reduce (nothing overlaps): the
    total is then ``serial_s``, overlap ``none`` drawn as a schedule.

    Buckets fill in ready order (layer L−1 first) and close when (a) the next layer's gradient
    goes to another group, (b) the cap is reached (rule 'reach', DDP) or the next gradient would
    not fit under it (rule 'fit', Horovod), or (c) the last layer is done; the first bucket has
    its own cap.
    """
    L, G = steps.shape
    names = layer_names or tuple(f"layer{i}" for i in range(L))
    events: list[Event] = []
    # forward: nothing else is on the channel yet, so the steps simply add up
    blocking = steps.fwd_pre_s.sum(axis=0) + steps.fwd_post_s.sum(axis=0)
    t = steps.fwd_compute_s.sum(axis=0) + blocking
    if record is not None:
        clock = 0.0
        for i in range(L):
            for what, duration, words, lane in (
                    ("halo (forward)", steps.fwd_pre_s, steps.fwd_pre_words, "pr"),
                    ("forward", steps.fwd_compute_s, None, "compute"),
                    ("all-gather Y", steps.fwd_post_s, steps.fwd_post_words, "pr")):
                d = float(duration[i, record])
                if d > 0:
                    events.append(_event(steps, record, lane, clock, clock + d, what,
                                         (names[i],), words, i))
                clock += d
    pre_on: np.ndarray = np.asarray(steps.bwd_pre_s.any(axis=1))
    post_on: np.ndarray = np.asarray(steps.bwd_post_s.any(axis=1))
    cap = bucket.cap_bytes / word_bytes
    first_cap = bucket.first_cap_bytes / word_bytes
    free = np.zeros(G)
    wait = np.zeros(G)
    acc = np.zeros(G)
    members: list[str] = []
    nbuckets = np.zeros(G)
    gradient = np.zeros(G)
    for i in range(L - 1, -1, -1):
        for what, duration, words, is_compute in (
                ("halo (backward)", steps.bwd_pre_s, steps.bwd_pre_words, False),
                ("backward (ΔX, ΔW)", steps.bwd_compute_s, None, True),
                ("all-reduce ΔX", steps.bwd_post_s, steps.bwd_post_words, False)):
            if not is_compute and not (pre_on if what.startswith("halo") else post_on)[i]:
                continue  # a collective no grid runs at this layer
            d = duration[i]
            if is_compute:
                if record is not None and d[record] > 0:
                    events.append(_event(steps, record, "compute", float(t[record]),
                                         float(t[record] + d[record]), what, (names[i],),
                                         None, i))
                t = t + d
                continue
            start, end, free, waited = _block(t, free, d)
            if record is not None and d[record] > 0:
                if waited[record] > 0:
                    events.append(Event("wait", float(t[record]), float(start[record]),
                                        "compute waits for the channel", (names[i],), 0.0,
                                        "", float(waited[record])))
                events.append(_event(steps, record, "pr", float(start[record]),
                                     float(end[record]), what, (names[i],), words, i))
            wait += waited
            blocking = blocking + d
            t = end
        acc = acc + steps.grad_words[i]
        members.append(names[i])
        if i == 0:
            close = np.ones(G, dtype=bool)
        else:
            limit = np.where(nbuckets == 0, first_cap, cap)
            change = steps.grad_group[i - 1] != steps.grad_group[i]
            if bucket.rule == FIT_UNDER_CAP:
                full = acc + steps.grad_words[i - 1] > limit
            else:
                full = acc >= limit
            close = change | full
        if not close.any():
            continue
        cost = np.where(close, steps.allreduce_s(acc, i), 0.0)
        start = np.maximum(t, free)
        runs = close & (cost > 0)
        if record is not None and close[record]:
            if runs[record]:
                events.append(Event("gradient", float(start[record]),
                                    float(start[record] + cost[record]),
                                    f"all-reduce bucket {int(nbuckets[record]) + 1}",
                                    tuple(members), float(acc[record]),
                                    f"{_group_name(steps, record, i)}", 0.0))
            members = []
        free = np.where(runs, start + cost, free)
        if serial:
            if record is not None and runs[record] and start[record] > t[record]:
                events.append(Event("wait", float(t[record]), float(start[record]),
                                    "compute waits for the channel", (names[i],), 0.0, "",
                                    float(start[record] - t[record])))
            if record is not None and runs[record]:
                events.append(Event("wait", float(start[record]), float(free[record]),
                                    "compute waits for the gradient all-reduce", (names[i],),
                                    0.0, "", float(free[record] - start[record])))
            wait = wait + np.where(runs, free - t, 0.0)
            t = np.where(runs, free, t)
        gradient = gradient + cost
        nbuckets = nbuckets + close
        acc = np.where(close, 0.0, acc)
    total = np.maximum(t, free)
    compute = steps.fwd_compute_s.sum(axis=0) + steps.bwd_compute_s.sum(axis=0)
    tail = total - t
    if record is not None and tail[record] > 0:
        events.append(Event("wait", float(t[record]), float(total[record]),
                            "last all-reduce after the last compute", (), 0.0, "",
                            float(tail[record])))
    totals = ScheduleTotals(total, compute, blocking, wait, tail, gradient, nbuckets)
    return totals, mark_exposed(events)


def _group_name(steps: Steps, g: int, i: int) -> str:
    """'Pc=16' for a Pc group, 'P=512' for all processes (pure batch, domain split)."""
    p = int(steps.grad_group[i, g])
    if steps.processes is None:
        return f"{p} processes"
    return f"P={p}" if p == int(steps.processes[g]) else f"Pc={p}"


def _event(steps: Steps, g: int, lane: str, start: float, end: float, what: str,
           layers: tuple[str, ...], words: np.ndarray | None, i: int) -> Event:
    group = ""
    if lane == "pr":
        pr = None if steps.pr is None else int(steps.pr[i, g])
        group = "neighbour" if what.startswith("halo") else (f"Pr={pr}" if pr else "Pr group")
    return Event(lane, start, end, what, layers,
                 0.0 if words is None else float(words[i, g]), group,
                 end - start if lane == "pr" else 0.0)


def mark_exposed(events: list[Event]) -> list[Event]:
    """Each gradient all-reduce's exposed part: its overlap with the compute's idle time
    ('wait' events); events sorted by start."""
    idle = [(e.start_s, e.end_s) for e in events if e.lane == "wait"]
    out = []
    for e in events:
        if e.lane == "gradient":
            overlap = sum(max(0.0, min(e.end_s, b) - max(e.start_s, a)) for a, b in idle)
            e = replace(e, exposed_s=overlap)
        out.append(e)
    return sorted(out, key=lambda e: (e.start_s, e.lane != "compute"))


# --------------------------------------------------------------------------- steps of a plan


def compute_split(network: Network, compute_s: np.ndarray,
                  backward_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward compute per layer × grid, (L, G) each: C · (MACs_i / Σ MACs) split
    1 : r between forward and backward (module docstring)."""
    macs = np.array([layer.macs for layer in network.layers], dtype=np.float64)
    share = (macs / macs.sum())[:, None] * np.asarray(compute_s, dtype=np.float64)[None, :]
    return share / (1.0 + backward_ratio), share * (backward_ratio / (1.0 + backward_ratio))


class _Links:
    """Seconds of collectives on a flat or hierarchical machine, one mapping per grid."""

    def __init__(self, machine: Machine, algo: Algorithms, grids: Grids,
                 pr_inside: np.ndarray | None) -> None:
        self.machine, self.algo = machine, algo
        self.gamma = machine.gamma_s_per_word
        self.levels = machine.hierarchical
        self.total = grids.p[None, :]
        self.pr_inside = (np.ones((1, len(grids)), dtype=bool) if pr_inside is None
                          else np.asarray(pr_inside, dtype=bool).reshape(1, -1))

    def _stride(self, p: np.ndarray, pr: np.ndarray, pc: np.ndarray,
                over_rows: bool) -> np.ndarray:
        stride_r, stride_c = strides(pr, pc, self.pr_inside)
        return stride_r if over_rows else np.where(p == self.total, 1, stride_c)

    def _level_rates(self, p: np.ndarray, pr: np.ndarray, pc: np.ndarray, over_rows: bool,
                     algo: Algorithms | None = None) -> Any:
        return level_rates(p, self._stride(p, pr, pc, over_rows), self.machine.domain_sizes,
                           algo or self.algo, self.total, self.machine.links)

    def pr_collectives(self, pr: np.ndarray, pc: np.ndarray, samples: np.ndarray,
                       size: np.ndarray, into: tuple[np.ndarray, np.ndarray] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """(all-gather, all-reduce) seconds of samples·size words over Pr, (Lg, G) each;
        written into ``into`` (two (Lg, G) views) when given and the machine is flat."""
        a, b = self.machine.alpha_s, self.machine.beta_s_per_word
        if not self.levels and self.algo.linear:
            # α·m(p) + (β·w(p) + γ·r(p))·samples · size: one (Lg, G) product per collective
            out = []
            for k, rate in enumerate((self.algo.allgather_rate(pr),
                                      self.algo.allreduce_rate(pr))):
                per_word = (b * rate.per_word + self.gamma * rate.reduce_per_word) * samples
                latency = a * rate.messages
                if into is None:
                    out.append(latency + per_word * size)
                    continue
                target = into[k]
                np.multiply(per_word, size, out=target)
                np.add(target, latency, out=target)
                out.append(target)
            return out[0], out[1]
        if not self.levels:
            words = samples * size
            return (self.algo.allgather(pr, words).seconds(a, b, self.gamma),
                    self.algo.allreduce(pr, words).seconds(a, b, self.gamma))
        if not self.algo.linear:
            stride, words = self._stride(pr, pr, pc, True), samples * size
            seconds = [sum((c.seconds(a, b, self.gamma) for c, (a, b) in zip(
                level_costs(kind, pr, stride, words, self.machine.domain_sizes, self.algo,
                            self.machine.links, self.gamma, self.total), self.machine.links)),
                np.zeros(())) for kind in (ALLGATHER, ALLREDUCE)]
            return seconds[0], seconds[1]
        rows = self._level_rates(pr, pr, pc, True)
        gather = reduce = np.zeros(1)
        for g, r, (a, b) in zip(rows.allgather, rows.allreduce, self.machine.links):
            gather = gather + g.of_product(samples, size).seconds(a, b, self.gamma)
            reduce = reduce + r.of_product(samples, size).seconds(a, b, self.gamma)
        return gather, reduce

    def halo(self, active: np.ndarray, words: np.ndarray, pr: np.ndarray,
             pc: np.ndarray) -> np.ndarray:
        """Seconds of one halo message of ``words`` where ``active`` (Eq. 7), (Lg, G)."""
        if not self.levels:
            cost: CollectiveCost = self.algo.p2p(halo_exchange(active, words))
            return cost.seconds(self.machine.alpha_s, self.machine.beta_s_per_word)
        stride_r, _ = strides(pr, pc, self.pr_inside)
        at = halo_level(pr, stride_r, self.machine.domain_sizes, self.total)
        out = np.zeros(np.broadcast_shapes(np.shape(active), np.shape(words)))
        for level, (a, b) in enumerate(self.machine.links):
            out = out + halo_exchange(active & (at == level), words).seconds(a, b)
        return out

    def allreduce_affine(self, p: np.ndarray, pr: np.ndarray,
                         pc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All-reduce over p as (latency s, s per word), each (A, 1, G): one row per candidate
        algorithm (A = 1 unless 'auto')."""
        if self.levels:
            options = ([None] if self.algo.linear else
                       [fixed_selection(ALLREDUCE, name) for name in LEVEL_CANDIDATES[ALLREDUCE]])
            lats, slopes = [], []
            for option in options:
                rates = self._level_rates(p, pr, pc, False, option).allreduce
                lats.append(sum((a * r.messages for r, (a, _) in zip(rates, self.machine.links)),
                                np.zeros(p.shape)))
                slopes.append(sum((b * r.per_word + self.gamma * r.reduce_per_word
                                   for r, (_, b) in zip(rates, self.machine.links)),
                                  np.zeros(p.shape)))
            return np.stack(lats), np.stack(slopes)
        a, b = self.machine.alpha_s, self.machine.beta_s_per_word
        if self.algo.linear:
            rate = self.algo.allreduce_rate(p)
            return ((a * np.broadcast_to(rate.messages, p.shape))[None],
                    (b * np.broadcast_to(rate.per_word, p.shape)
                     + self.gamma * np.broadcast_to(rate.reduce_per_word, p.shape))[None])
        scale = self.algo.scale(ALLREDUCE, p)
        lats, slopes = [], []
        for candidate in self.algo.candidates[ALLREDUCE]:
            rate = candidate.rate(p)
            sa, sb = (1.0, 1.0) if scale is None else scale
            lats.append(np.broadcast_to(a * rate.messages * sa, p.shape))
            slopes.append(np.broadcast_to(b * rate.per_word * sb
                                          + self.gamma * rate.reduce_per_word, p.shape))
        return np.stack(lats), np.stack(slopes)


def plan_steps(network: Network, machine: Machine, grids: Grids, plan: Plan, algo: Algorithms,
               compute_s: np.ndarray, pr_inside: np.ndarray | None = None,
               labels: bool = False) -> Steps:
    """The schedule's steps of ``plan`` on ``grids`` (docs/schedule.md §1): the collectives of
    docs/model.md §4 split into their forward and backward parts.

    Model split: forward all-gather of ⌈B/Pc⌉·d_i over Pr, backward all-reduce of the same size
    over Pr (together Eq. 8's model term), gradient |W_i|/Pr (largest shard) over Pc.  Domain
    split: forward halo ⌈B/Pc⌉·X_W·X_C·⌊k_h/2⌋, backward halo ⌈B/Pc⌉·Y_W·Y_C·⌊k_w/2⌋ (Eq. 7),
    gradient |W_i| over all P (Eq. 9).  ``pr_inside`` (G,): the mapping on a machine with
    levels (None: Pr inside).  ``labels``: also the words and Pr of each step (timelines).
    """
    layers = LayerArrays.of(network).transposed()
    G, L = len(grids), len(network.layers)
    links = _Links(machine, algo, grids, pr_inside)
    names = ["fwd_pre_s", "fwd_post_s", "bwd_pre_s", "bwd_post_s", "grad_words", "grad_group"]
    if labels:
        names += ["fwd_pre_words", "fwd_post_words", "bwd_pre_words", "bwd_post_words", "pr"]
    out = {name: np.zeros((L, G)) for name in names}
    lat = np.zeros((1, L, G))
    slope = np.zeros((1, L, G))
    batch = grids.batch[None, :]
    for group in plan.groups(grids, layers.is_conv.T):
        idx = _columns(group.index)
        sub = layers.take_rows(group.index)
        pr, pc = group.pr.T, group.pc.T  # (1, G)
        samples = local_batch(batch, pc)
        shape = (sub.params.shape[0], G)
        if group.mode == DOMAIN:
            split = pr > 1
            fwd_words = samples * sub.in_row_words * sub.halo_h
            bwd_words = samples * sub.out_row_words * sub.halo_w
            fwd_on, bwd_on = split & (sub.halo_h > 0), split & (sub.halo_w > 0)
            out["fwd_pre_s"][idx] = links.halo(fwd_on, fwd_words, pr, pc)
            out["bwd_pre_s"][idx] = links.halo(bwd_on, bwd_words, pr, pc)
            if labels:
                out["fwd_pre_words"][idx] = np.where(fwd_on, fwd_words, 0.0)
                out["bwd_pre_words"][idx] = np.where(bwd_on, bwd_words, 0.0)
            p_w = pr * pc
            out["grad_words"][idx] = np.broadcast_to(sub.params, shape)
        else:
            views = ((out["fwd_post_s"][idx], out["bwd_post_s"][idx])
                     if isinstance(idx, slice) else None)
            gather, reduce = links.pr_collectives(pr, pc, samples, sub.activations, views)
            if views is None or gather is not views[0]:
                out["fwd_post_s"][idx] = np.broadcast_to(gather, shape)
                out["bwd_post_s"][idx] = np.broadcast_to(reduce, shape)
            if labels:
                moved = np.where(pr > 1, samples * sub.activations, 0.0)
                out["fwd_post_words"][idx] = moved
                out["bwd_post_words"][idx] = moved
            p_w = pc
            # |W_i|/Pr of the slowest process, as cost.shard_words (§6)
            if isinstance(idx, slice):
                view = out["grad_words"][idx]
                np.divide(sub.split_size, pr, out=view)
                np.ceil(view, out=view)
                view *= sub.params / sub.split_size
            else:
                shard = np.ceil(sub.split_size / pr) * (sub.params / sub.split_size)
                out["grad_words"][idx] = np.broadcast_to(shard, shape)
        out["grad_group"][idx] = np.broadcast_to(p_w, shape)
        if labels:
            out["pr"][idx] = np.broadcast_to(pr, shape)
        a, sl = links.allreduce_affine(np.asarray(p_w, dtype=np.int64), pr, pc)
        if a.shape[0] != lat.shape[0]:
            lat = np.broadcast_to(lat, (a.shape[0], L, G)).copy()
            slope = np.broadcast_to(slope, (a.shape[0], L, G)).copy()
        lat[:, idx] = np.broadcast_to(a, (a.shape[0], *shape))
        slope[:, idx] = np.broadcast_to(sl, (a.shape[0], *shape))
    fwd, bwd = compute_split(network, compute_s, machine.backward_ratio)
    return Steps(fwd_compute_s=fwd, bwd_compute_s=bwd, bucket_latency_s=lat,
                 bucket_slope_s=slope, processes=grids.p.astype(np.float64), **out)


def _columns(index: np.ndarray) -> np.ndarray | slice:
    """``index`` as a slice when it is a contiguous run (cheap assignment), else as is."""
    if index.size and index[-1] - index[0] == index.size - 1:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def schedule_totals(network: Network, machine: Machine, grids: Grids, plan: Plan,
                    algo: Algorithms, compute_s: np.ndarray, bucket: Bucketing,
                    pr_inside: np.ndarray | None = None) -> ScheduleTotals:
    """The schedule of ``plan`` on every grid (G,): :func:`plan_steps`, then :func:`run`."""
    steps = plan_steps(network, machine, grids, plan, algo, compute_s, pr_inside)
    return run(steps, bucket, machine.word_bytes)[0]


# --------------------------------------------------------------------------- records


def bucket_record(bucket: Bucketing) -> BucketRecord:
    """The bucketing in JSON (docs/json.md): name, caps in bytes, filling rule, source."""
    return {"name": bucket.name, "cap_bytes": bucket.cap_bytes,
            "first_cap_bytes": bucket.first_cap_bytes, "rule": bucket.rule,
            "source": bucket.source}


def grid_schedule_record(totals: ScheduleTotals, grid: int, scale: float) -> ScheduleRecord:
    """One grid's schedule in JSON (docs/json.md), seconds × ``scale`` (1 per iteration, N/B
    per epoch): what is exposed and where it comes from."""
    def num(x: np.ndarray) -> float:
        return float(x[grid]) * scale

    return {"exposed_comm_s": num(totals.exposed_s), "blocking_comm_s": num(totals.blocking_s),
            "wait_s": num(totals.wait_s), "tail_s": num(totals.tail_s),
            "gradient_comm_s": num(totals.gradient_s),
            "hidden_gradient_s": num(totals.hidden_s), "buckets": int(totals.buckets[grid])}


def describe(totals: ScheduleTotals, grid: int, scale: float = 1.0, unit: str = "s") -> str:
    """One sentence for people: where the exposed communication of a grid comes from."""
    r = grid_schedule_record(totals, grid, scale)
    return (f"exposed communication {r['exposed_comm_s']:.4g} {unit} = blocking Pr-group "
            f"collectives and halos {r['blocking_comm_s']:.4g} + compute waiting for the "
            f"channel {r['wait_s']:.4g} + all-reduce after the last compute {r['tail_s']:.4g}; "
            f"{r['hidden_gradient_s']:.4g} of {r['gradient_comm_s']:.4g} {unit} gradient "
            f"all-reduce hidden, {r['buckets']} buckets")


# --------------------------------------------------------------------------- one grid


@dataclass(frozen=True)
class Timeline:
    """One iteration of one grid as events (docs/schedule.md §5): what ``gridcost timeline``
    draws and lists.  Seconds per iteration."""

    network: str
    machine: str
    P: int
    pr: int
    pc: int
    batch: int
    plan: str
    overlap: str
    bucket: Bucketing
    totals: ScheduleTotals
    events: tuple[Event, ...]
    feasible: bool
    reason: str
    compute_model: str
    forward_end_s: float
    note: str = ""

    @property
    def total_s(self) -> float:
        return float(self.totals.total_s[0])

    def record(self) -> TimelineRecord:
        """JSON-ready (docs/json.md, 'timeline')."""
        return {"net": self.network, "machine": self.machine, "P": self.P, "pr": self.pr,
                "pc": self.pc, "batch": self.batch, "plan": self.plan,
                "overlap": self.overlap, "bucket": bucket_record(self.bucket),
                "feasible": self.feasible, "reason": self.reason or None,
                "compute_model": self.compute_model, "unit": "s/iteration",
                "total_s": self.total_s, "compute_s": float(self.totals.compute_s[0]),
                "forward_end_s": self.forward_end_s,
                **grid_schedule_record(self.totals, 0, 1.0), "note": self.note or None,
                "events": [e.record() for e in self.events]}
