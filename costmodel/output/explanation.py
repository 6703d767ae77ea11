"""Every term of the cost of one grid, as a formula, with its numbers substituted, and its value.

:func:`explain` takes the same inputs as :func:`costmodel.engine.cost.evaluate` for one Pr×Pc grid
and returns an :class:`Explanation`: per weighted layer the lines of its model, batch and domain
terms (docs/model.md §4), then the compute line (§7, measured table or flop rate), the three
communication sums and the total under the overlap rule (:func:`costmodel.engine.cost.combine`).
Each :class:`Line` carries the symbolic formula, the bindings of its symbols, the expression with
the numbers substituted, and its latency count, words and seconds **per iteration**.

The values are recomputed here, one scalar at a time, from the engine's inputs: the layer specs,
the plan's layout, the machine's α and β, and the collective algorithm's :class:`Rate` functions.
They do not read the :class:`CostTable`'s arrays, so ``tests/test_explain.py`` can check that both
agree (rtol 1e-12) — explain cannot drift from the engine unnoticed.

A profile with ``per_collective`` fits (docs/formats.md) charges each collective its kind's α, β
— for its group size p where the profile lists one — written ``α_ag``, ``β_ar(Pc)``, ``α_p2p``…
(:func:`collective_pair`); latency counts and words are then the raw ones (the engine's tables
hold flat-equivalent counts, which the tests compare on the profile without the fits).

On a machine with ``levels`` (docs/hierarchy.md) every collective term is written once per
level: the group's rank stride under the grid's mapping, its members per block
q_l = gcd(p, K_l/s) (1 when s does not divide K_l; p on the outermost level) and
f_l = q_l/q_(l−1), recomputed here with :func:`math.gcd`; at level l the all-gather runs on
f_l processes and the all-reduce as reduce-scatter + all-gather (q_l < p below the outermost
level) or as an all-reduce (the first level holding the whole group), on n/q_(l−1) words, at
α_l, β_l.  Halos go on the innermost level holding the whole Pr group.  Which mapping the grid
uses ('best': the cheaper total) is the engine's decision, like the layout, and so is the
sentence saying why (:meth:`costmodel.engine.hierarchy.MappingComparison.why`); the tests compare
every layer × term × level with :meth:`costmodel.engine.cost.CostTable.level_seconds`.

Formula text comes from :data:`RATE_TEXTS`, keyed by the algorithm's rate function: each entry
says how to write ``k·(α·L(p) + β·F(p)·n)``.  An entry is used only where it reproduces the rate
function's numbers; a rate function without one (or with a wrong one) is written with the
generic ``α·m + β·w·n`` and the engine's m (latency count) and w (words per word of n).

The renderers at the end turn an :class:`Explanation` into text, Markdown or a JSON-ready record;
nothing here prints.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from costmodel.engine.collectives import (
    ALLGATHER,
    ALLREDUCE,
    FLAT_RING,
    REDUCE_SCATTER,
    REGISTRY,
    Algorithms,
    Rate,
    RateOf,
    algorithms,
    bruck_allgather_rate,
    paper_allreduce_rate,
    paper_reduce_scatter_rate,
    ring_allgather_rate,
    ring_allreduce_rate,
    ring_reduce_scatter_rate,
)
from costmodel.engine.cost import ComputeModel, Overlap, compute_per_iteration_s, evaluate
from costmodel.engine.grids import Grids, check_processes
from costmodel.engine.hierarchy import HALVES, PC_INSIDE, PR_INSIDE, check_algorithms
from costmodel.engine.plans import DOMAIN, MODE_NAMES, Plan
from costmodel.errors import UsageError
from costmodel.inputs.specs import Layer, Machine, Network
from costmodel.records import ExplainLayerRecord, ExplainLineRecord, ExplainRecord
from costmodel.units import format_number

Per = Literal["iteration", "epoch"]

# --------------------------------------------------------------------------- formula text


def _lg(p: int) -> int:
    """⌈log2 p⌉ for p ≥ 1 (0 for p = 1), as an int."""
    return (max(p, 1) - 1).bit_length()


@dataclass(frozen=True)
class RateText:
    """How to write a collective rate as ``k·(α·L(p) + β·F(p)·n)``.

    ``latency`` and ``fraction`` are templates in ``{p}`` (the group-size symbol or number);
    ``latency_of(p)`` is L(p) and ``fraction_of(p)`` is F(p) as (numerator, denominator), both
    integers, so a substituted expression shows exact values like ``31/32``.
    """

    factor: int
    latency: str
    latency_of: Callable[[int], int]
    fraction: str
    fraction_of: Callable[[int], tuple[int, int]]

    def matches(self, rate: Rate, p: int) -> bool:
        """True when k·L(p) and k·F(p) reproduce ``rate`` (evaluated at p): its latency count
        and its words per word of n."""
        num, den = self.fraction_of(p)
        return (math.isclose(self.factor * self.latency_of(p), float(rate.messages.ravel()[0]),
                             rel_tol=1e-12, abs_tol=0.0)
                and math.isclose(self.factor * num / den, float(rate.per_word.ravel()[0]),
                                 rel_tol=1e-12, abs_tol=1e-300))

    def same_shape(self, other: RateText) -> bool:
        """Same L and F (as text): the two can be written as one (k1 + k2)·(…)."""
        return (self.latency, self.fraction) == (other.latency, other.fraction)


_LOG = dict(latency="⌈log2 {p}⌉", latency_of=_lg)
_RING = dict(latency="({p}−1)", latency_of=lambda p: p - 1)
_FRACTION = dict(fraction="({p}−1)/{p}", fraction_of=lambda p: (p - 1, p))

RATE_TEXTS: dict[RateOf, RateText] = {
    bruck_allgather_rate: RateText(1, **_LOG, **_FRACTION),  # type: ignore[arg-type]
    paper_allreduce_rate: RateText(2, **_LOG, **_FRACTION),  # type: ignore[arg-type]
    ring_allgather_rate: RateText(1, **_RING, **_FRACTION),  # type: ignore[arg-type]
    ring_allreduce_rate: RateText(2, **_RING, **_FRACTION),  # type: ignore[arg-type]
    paper_reduce_scatter_rate: RateText(1, **_LOG, **_FRACTION),  # type: ignore[arg-type]
    ring_reduce_scatter_rate: RateText(1, **_RING, **_FRACTION),  # type: ignore[arg-type]
}
"""Formula text of each collective rate function (collectives.py).  A new algorithm adds its
rate functions here; without an entry it is explained with the generic α·m + β·w·n."""


def _rate(rate_of: RateOf, p: int) -> Rate:
    """The engine's rate function evaluated at the one group size p, arrays of shape (1,)."""
    rate = rate_of(np.array([p], dtype=np.int64))
    return Rate(np.asarray(rate.messages, dtype=np.float64).reshape(-1)[:1],
                np.asarray(rate.per_word, dtype=np.float64).reshape(-1)[:1])


def _num(x: float) -> str:
    """A number for a substituted expression: integers without a decimal point, floats in full
    (shortest round-trip repr), so every figure of the JSON record can be typed back into a
    calculator; text and Markdown show them rounded (:func:`readable_text`)."""
    x = float(x)
    if math.isfinite(x) and x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


@dataclass(frozen=True)
class Pair:
    """The α (s) and β (s/word) one collective is charged, with their symbols: the flat ``α``,
    ``β``, or a per-collective fit (docs/formats.md ``per_collective``) such as ``α_ag`` or,
    for a kind with fits per group size, ``α_ag(Pr)``; ``source`` names the profile field
    ('' for the flat pair) and ``bandwidth`` its B/s."""

    alpha: float
    beta: float
    alpha_symbol: str = "α"
    beta_symbol: str = "β"
    source: str = ""
    bandwidth: float = 0.0

    def bindings(self, word_bytes: int) -> tuple[tuple[str, str], ...]:
        """(symbol, value) of α and β as the lines show them."""
        if not self.source:
            return (("α", f"{_num(self.alpha)} s"), ("β", f"{_num(self.beta)} s/word"))
        return ((self.alpha_symbol, f"{_num(self.alpha)} s ({self.source})"),
                (self.beta_symbol, f"{word_bytes}/{_num(self.bandwidth)} = {_num(self.beta)} "
                                   "s/word"))


_SHORT = {"allgather": "ag", "allreduce": "ar", "p2p": "p2p"}


def collective_pair(machine: Machine, kind: str, group: str, p: int) -> Pair:
    """The α, β the engine charges ``kind`` on a group of p processes (symbol ``group``):
    the kind's fit for p (``per_collective.KIND.processes``), else the kind's own fit, else the
    flat α, β — :func:`costmodel.engine.collectives.scale_at`'s rule.  Halos are kind 'p2p', p =
    2."""
    listed = {q: (a, bw) for k, q, a, bw in machine.per_collective_processes if k == kind}
    pooled = {k: (a, bw) for k, a, bw in machine.per_collective}
    if p in listed:
        (alpha, bandwidth), source = listed[p], f"per_collective.{kind}.processes.{p}"
    elif kind in pooled:
        (alpha, bandwidth), source = pooled[kind], f"per_collective.{kind}"
    else:
        return Pair(machine.alpha_s, machine.beta_s_per_word)
    suffix = f"_{_SHORT[kind]}" + (f"({group})" if listed else "")
    return Pair(alpha, machine.word_bytes / bandwidth, f"α{suffix}", f"β{suffix}", source,
                bandwidth)


@dataclass(frozen=True)
class Collective:
    """One collective of a term: which rate function, on which group (symbol and size), and
    the α, β it is charged (the flat pair unless the profile fits this kind)."""

    what: str
    rate_of: RateOf
    group: str
    p: int
    pair: Pair


@dataclass(frozen=True)
class Charge:
    """A term's collectives, as :func:`_collective_text` found them: the raw latency count
    and words per word of n in total, and per part (pair, count, words per word of n)."""

    messages: float
    per_word: float
    parts: tuple[tuple[Pair, float, float], ...]

    def seconds(self, size: float) -> float:
        """Seconds of moving n = ``size`` words: α·m + β·w·n with one pair (the engine's
        order of operations), else Σ α_k·m_k + β_k·w_k·n over the parts."""
        pairs = {pair for pair, _, _ in self.parts}
        if len(pairs) == 1:
            pair = self.parts[0][0]
            return pair.alpha * self.messages + pair.beta * (self.per_word * size)
        return math.fsum(pair.alpha * m + pair.beta * (w * size) for pair, m, w in self.parts)


def _collective_text(parts: Sequence[Collective], size: Callable[[str], str],
                     size_num: Callable[[str], str]) -> tuple[str, str, Charge]:
    """Formula, substituted expression and charge of the sum of ``parts`` (all on the same
    group), n written by ``size(fraction)`` / ``size_num(fraction)``.

    Parts whose text matches their rate and shares L, F and the α, β pair with the others
    merge into one ``k·(α·L + β·F·n)``; otherwise each part is written on its own and the
    terms are added.
    """
    rates = [_rate(c.rate_of, c.p) for c in parts]
    messages = float(sum(float(r.messages[0]) for r in rates))
    per_word = float(sum(float(r.per_word[0]) for r in rates))
    charge = Charge(messages, per_word, tuple((c.pair, float(r.messages[0]),
                                               float(r.per_word[0]))
                                              for c, r in zip(parts, rates)))
    texts = [RATE_TEXTS.get(c.rate_of) for c in parts]
    usable = [t if t is not None and t.matches(r, c.p) else None
              for t, r, c in zip(texts, rates, parts)]
    one_pair = all(c.pair == parts[0].pair for c in parts)
    if all(t is not None for t in usable):
        known = [t for t in usable if t is not None]
        if one_pair and all(known[0].same_shape(t) for t in known):
            known = [RateText(sum(t.factor for t in known), known[0].latency,
                              known[0].latency_of, known[0].fraction, known[0].fraction_of)]
            chunks = [(known[0], parts[0])]
        else:
            chunks = list(zip(known, parts))
        formulas, substituted = [], []
        for text, part in chunks:
            num, den = text.fraction_of(part.p)
            frac_num = _num(num) if den == 1 else f"{num}/{den}"
            k = "" if text.factor == 1 else f"{text.factor}·"
            a, b = part.pair.alpha_symbol, part.pair.beta_symbol
            formulas.append(f"{k}({a}·{text.latency.format(p=part.group)} + {b}·"
                            f"{size(text.fraction.format(p=part.group))})")
            substituted.append(f"{k}({_num(part.pair.alpha)}·{_num(text.latency_of(part.p))} "
                               f"+ {_num(part.pair.beta)}·{size_num(frac_num)})")
        return " + ".join(formulas), " + ".join(substituted), charge
    # generic: α·m + β·w·n with the engine's m and w (no formula text for this algorithm)
    if one_pair:
        pair, group = parts[0].pair, parts[0].group
        formula = (f"{pair.alpha_symbol}·m({group}) + "
                   f"{pair.beta_symbol}·{size('w(' + group + ')')}")
        subst = (f"{_num(pair.alpha)}·{_num(messages)} + "
                 f"{_num(pair.beta)}·{size_num(_num(per_word))}")
        return formula, subst, charge
    formulas, substituted = [], []
    for part, (pair, m, w) in zip(parts, charge.parts):
        name = part.what.replace("all-", "")
        formulas.append(f"{pair.alpha_symbol}·m_{name}({part.group}) + {pair.beta_symbol}·"
                        f"{size(f'w_{name}({part.group})')}")
        substituted.append(f"{_num(pair.alpha)}·{_num(m)} + {_num(pair.beta)}·"
                           f"{size_num(_num(w))}")
    return " + ".join(formulas), " + ".join(substituted), charge


def _pair_bindings(word_bytes: int, *pairs: Pair) -> tuple[tuple[str, str], ...]:
    """The α, β bindings of ``pairs``, each symbol once, in order."""
    out: dict[str, str] = {}
    for pair in pairs:
        for symbol, value in pair.bindings(word_bytes):
            out.setdefault(symbol, value)
    return tuple(out.items())


# --------------------------------------------------------------------------- explanation


@dataclass(frozen=True)
class Line:
    """One explained quantity: formula, symbol bindings, substituted expression, value.

    ``term`` is the engine's term it belongs to (model, batch, domain) or compute, sum, total.
    ``messages`` and ``words`` are the latency count and words per iteration of a communication
    line (None otherwise); ``seconds`` is per iteration.
    """

    label: str
    term: str
    formula: str
    bindings: tuple[tuple[str, str], ...]
    substituted: str
    seconds: float
    messages: float | None = None
    words: float | None = None
    note: str = ""
    level: str = ""
    """On a machine with levels: the level whose α, β this line charges ('' otherwise, and
    for a term that costs nothing on any level)."""


@dataclass(frozen=True)
class LayerExplanation:
    """The lines of one weighted layer on the grid: its split, group sizes and terms."""

    name: str
    kind: str
    split: str
    pr: int
    pc: int
    lines: tuple[Line, ...]
    routes: tuple[str, ...] = ()
    """On a machine with levels: per group of the layer (Pr, Pc or P), its placement and the
    level each phase of its collectives runs on, in the order they run."""

    def seconds(self, term: str) -> float:
        """Seconds per iteration of ``term`` (model, batch, domain) of this layer; 0 if absent."""
        return math.fsum(line.seconds for line in self.lines if line.term == term)

    def count(self, term: str, what: Literal["messages", "words"]) -> float:
        """Latency count or words per iteration of ``term`` of this layer."""
        return math.fsum(getattr(line, what) or 0.0 for line in self.lines if line.term == term)


@dataclass(frozen=True)
class MappingChoice:
    """The mapping of the explained grid on a machine with levels (docs/hierarchy.md).

    ``used`` is 'pr-inside' or 'pc-inside'; ``setting`` the --mapping asked for ('best' or the
    forced one); ``why`` the engine's sentence (:meth:`MappingComparison.why`) per iteration and
    per epoch; ``total_s`` each mapping's total per iteration; ``stride_pr``, ``stride_pc`` the
    rank strides of the grid's Pr and Pc groups under ``used``."""

    used: str
    setting: str
    why_per_iteration: str
    why_per_epoch: str
    total_s: tuple[tuple[str, float], ...]
    stride_pr: int
    stride_pc: int

    def why(self, per: Per) -> str:
        """The sentence in seconds per ``per``."""
        return self.why_per_epoch if per == "epoch" else self.why_per_iteration

    @property
    def rank_rule(self) -> str:
        """Where grid position (r, c) goes: 'rank = r + Pr·c' or 'rank = c + Pc·r'."""
        return "rank = r + Pr·c" if self.used == PR_INSIDE else "rank = c + Pc·r"


@dataclass(frozen=True)
class Explanation:
    """Every term of the cost of one grid (docs/model.md §4–§7), per iteration.

    ``layers`` holds the requested layers (all by default); ``sums`` and ``total`` always cover
    every layer of the network.  ``iterations_per_epoch`` = N/B converts to seconds per epoch.
    """

    network: str
    machine: str
    P: int
    pr: int
    pc: int
    batch: int
    plan: str
    overlap: str
    collectives: str
    compute_model: str
    feasible: bool
    reason: str
    uneven: bool
    settings: tuple[Line, ...]
    layers: tuple[LayerExplanation, ...]
    compute: Line
    sums: tuple[Line, ...]
    total: Line
    iterations_per_epoch: float
    schedule: tuple[Line, ...] = ()
    """Overlap 'backward' (docs/schedule.md): one line per gradient bucket and per wait of the
    iteration's schedule — what is exposed and where it comes from; () otherwise."""
    levels: tuple[tuple[str, int | None, float, float], ...] = ()
    """On a machine with levels: (name, processes per domain, α s, bandwidth B/s) of each
    level, innermost first (docs/hierarchy.md); () on a flat machine."""
    mapping: MappingChoice | None = None
    """On a machine with levels: the mapping of the grid onto the ranks and why."""

    def layer(self, name: str) -> LayerExplanation:
        """The explained layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _unit_word(layer: Layer) -> str:
    return "filters" if layer.kind == "conv" else "units"


def _shard(layer: Layer, pr: int, pc: int) -> tuple[float, Callable[[str], str],
                                                    Callable[[str], str], tuple[str, str], str]:
    """The weight shard a model split leaves on the slowest process, |W_i|·⌈u_i/Pr⌉/u_i words
    (|W_i|/Pr when Pr divides u_i, §6): (words, size text of F·shard, the same with numbers,
    its binding, the note on an uneven split or Pc = 1)."""
    units = layer.split_size
    pieces = -(-units // pr)
    shard = pieces * (layer.params / units)
    if units % pr == 0:
        return (shard, lambda f: f"{f}·|W_i|/Pr", lambda f: f"{f}·{layer.params}/{pr}",
                ("|W_i|/Pr", f"{layer.params}/{pr} = {_num(shard)} words"),
                "Pc = 1: no batch split, nothing to reduce" if pc == 1 else "")
    return (shard, lambda f: f"{f}·|W_i|·⌈u_i/Pr⌉/u_i",
            lambda f: f"{f}·{layer.params}·{pieces}/{units}",
            ("|W_i|·⌈u_i/Pr⌉/u_i", f"{layer.params}·⌈{units}/{pr}⌉/{units} = {_num(shard)} words"),
            f"uneven: Pr = {pr} does not divide u_i = {units} {_unit_word(layer)}; the largest "
            "shard decides")


HaloDirection = tuple[str, tuple[int, int, int], int, str, str, str, int]


def _halo_directions(layer: Layer) -> tuple[HaloDirection, HaloDirection]:
    """The two halo exchanges of a domain-split layer (Eq. 7): (direction, the shape it
    carries, the rows ⌊k/2⌋, the kernel's symbol, the width and channel symbols, k)."""
    return (("forward", layer.in_shape, layer.halo_rows[0], "k_h", "X_W", "X_C",
             layer.kernel[0]),
            ("backward", layer.out_shape, layer.halo_rows[1], "k_w", "Y_W", "Y_C",
             layer.kernel[1]))


def _model_lines(layer: Layer, pr: int, pc: int, batch: int, algo: Algorithms,
                 machine: Machine) -> list[Line]:
    """Model and batch terms of a model × batch layer (Eq. 8; Eq. 3 at Pc = 1, Eq. 4 at Pr = 1)."""
    samples = -(-batch // pc)
    d = layer.activations
    wb = machine.word_bytes
    parts = [Collective("all-gather", algo.allgather_rate, "Pr", pr,
                        collective_pair(machine, "allgather", "Pr", pr)),
             Collective("all-reduce", algo.allreduce_rate, "Pr", pr,
                        collective_pair(machine, "allreduce", "Pr", pr))]
    formula, subst, charge = _collective_text(
        parts, lambda f: f"⌈B/Pc⌉·{f}·d_i", lambda f: f"{samples}·{f}·{d}")
    words = charge.per_word * samples * d
    model = Line(
        f"{layer.name} model: forward all-gather + backward all-reduce over Pr",
        "model", formula,
        (*_pair_bindings(wb, *(c.pair for c in parts)), ("Pr", str(pr)),
         ("⌈B/Pc⌉", f"⌈{batch}/{pc}⌉ = {samples}"), ("d_i", f"{d} activations/sample")),
        subst, charge.seconds(samples * d), charge.messages, words,
        note="" if pr > 1 else "Pr = 1: the layer is not split by model, nothing to gather")

    shard, size, size_num, shard_binding, note = _shard(layer, pr, pc)
    units, what = layer.split_size, _unit_word(layer)
    reduce = Collective("all-reduce", algo.allreduce_rate, "Pc", pc,
                        collective_pair(machine, "allreduce", "Pc", pc))
    formula, subst, charge = _collective_text([reduce], size, size_num)
    words = charge.per_word * shard
    batch_line = Line(
        f"{layer.name} batch: weight-gradient all-reduce over Pc", "batch", formula,
        (*_pair_bindings(wb, reduce.pair), ("Pc", str(pc)),
         ("|W_i|", f"{layer.params} parameters"), ("u_i", f"{units} {what}"),
         ("Pr", str(pr)), shard_binding),
        subst, charge.seconds(shard), charge.messages, words, note)
    return [model, batch_line]


def _halo_lines(layer: Layer, pr: int, pc: int, batch: int, pair: Pair,
                pair_bindings: tuple[tuple[str, str], ...], level: str = "") -> list[Line]:
    """The forward and backward halo exchanges of a domain-split layer (Eq. 7), each one
    message α + β·⌈B/Pc⌉·X_W·X_C·⌊k/2⌋ at ``pair`` (on machines with levels, at ``level``),
    or a line of 0 saying why when Pr = 1 or ⌊k/2⌋ = 0."""
    samples = -(-batch // pc)
    lines = []
    for direction, shape, rows, sym, width, chan, k in _halo_directions(layer):
        formula = (f"{pair.alpha_symbol} + {pair.beta_symbol}·⌈B/Pc⌉·{width}·{chan}·"
                   f"⌊{sym}/2⌋")
        bindings = (*pair_bindings, ("Pr", str(pr)),
                    ("⌈B/Pc⌉", f"⌈{batch}/{pc}⌉ = {samples}"), (width, str(shape[1])),
                    (chan, str(shape[2])), (f"⌊{sym}/2⌋", f"⌊{k}/2⌋ = {rows}"))
        label = f"{layer.name} domain: {direction} halo exchange over Pr"
        if pr == 1 or rows == 0:
            why = ("Pr = 1: the image is not split" if pr == 1
                   else f"⌊{sym}/2⌋ = 0: a kernel of {k} needs no halo")
            lines.append(Line(label, "domain", f"0 if Pr = 1 or ⌊{sym}/2⌋ = 0, else {formula}",
                              bindings, "0", 0.0, 0.0, 0.0, why))
            continue
        halo = float(samples * (shape[1] * shape[2]) * rows)
        lines.append(Line(f"{label}, {level} level" if level else label, "domain", formula,
                          bindings, f"{_num(pair.alpha)} + {_num(pair.beta)}·{samples}·"
                          f"{shape[1]}·{shape[2]}·{rows}",
                          pair.alpha * 1.0 + pair.beta * halo, 1.0, halo, level=level))
    return lines


def _domain_lines(layer: Layer, pr: int, pc: int, batch: int, algo: Algorithms,
                  machine: Machine) -> list[Line]:
    """Halo terms (Eq. 7) and the weight all-reduce over all P (Eq. 9) of a domain-split conv.

    A halo is one message between two neighbouring strips: a profile's p2p fit for p = 2."""
    wb = machine.word_bytes
    halo_pair = collective_pair(machine, "p2p", "2", 2)
    lines = _halo_lines(layer, pr, pc, batch, halo_pair, _pair_bindings(wb, halo_pair))
    P = pr * pc
    reduce = Collective("all-reduce", algo.allreduce_rate, "P", P,
                        collective_pair(machine, "allreduce", "P", P))
    formula, subst, charge = _collective_text(
        [reduce], lambda f: f"{f}·|W_i|", lambda f: f"{f}·{layer.params}")
    words = charge.per_word * layer.params
    lines.append(Line(
        f"{layer.name} batch: weight-gradient all-reduce over all P = Pr·Pc", "batch", formula,
        (*_pair_bindings(wb, reduce.pair), ("P", f"{pr}·{pc} = {P}"),
         ("|W_i|", f"{layer.params} parameters")),
        subst, charge.seconds(float(layer.params)), charge.messages, words,
        "every process keeps all of W_i"))
    return lines


# --------------------------------------------------------------------------- machines with levels


@dataclass(frozen=True)
class Placement:
    """A group of the grid on a machine with levels (docs/hierarchy.md): ``p`` processes
    (symbol ``symbol``: Pr, Pc or P) at rank stride ``stride``, and ``q[l]``, its members in one
    aligned block inside a level-l domain, recomputed here one scalar at a time:

        q_l = gcd(p, K/s) if s divides K, else 1,   K = min(K_l, P);   q_L = p (outermost)

    ``q_texts`` write each q_l with its numbers substituted."""

    symbol: str
    p: int
    stride: int
    stride_text: str
    q: tuple[int, ...]
    q_texts: tuple[str, ...]

    def f(self, level: int) -> int:
        """f_l = q_l/q_(l−1) (q_0 = 1): the group's processes per level-l block."""
        return self.q[level] // (self.q[level - 1] if level else 1)

    def split(self, level: int) -> bool:
        """True where an all-reduce runs as reduce-scatter + all-gather: a level below the
        outermost one whose blocks do not hold the whole group (q_l < p)."""
        return level < len(self.q) - 1 and self.q[level] < self.p


def _placement(machine: Machine, symbol: str, p: int, stride: int, stride_text: str,
               P: int) -> Placement:
    """The :class:`Placement` of a group of p processes at rank stride ``stride``."""
    q: list[int] = []
    texts: list[str] = []
    last = len(machine.levels) - 1
    for index, level in enumerate(machine.levels):
        if index == last or level.processes is None:
            q.append(p)
            texts.append(f"{symbol} = {p} (the outermost level holds the whole group)")
            continue
        domain = min(int(level.processes), P)
        k_symbol = f"K_{level.name}" if level.processes <= P else f"min(K_{level.name}, P)"
        if domain % stride:
            q.append(1)
            texts.append(f"1 (the stride {stride} does not divide {k_symbol} = {domain})")
            continue
        value = math.gcd(p, domain // stride)
        q.append(value)
        texts.append(f"gcd({symbol}, {k_symbol}/stride) = gcd({p}, {domain}/{stride}) = "
                     f"{value}")
    return Placement(symbol, p, stride, stride_text, tuple(q), tuple(texts))


def _level_pair(machine: Machine, index: int) -> Pair:
    """α, β of level ``index``, written α_NAME, β_NAME, from the profile's levels[index]."""
    level = machine.levels[index]
    return Pair(level.alpha_s, machine.word_bytes / level.bandwidth_Bps, f"α_{level.name}",
                f"β_{level.name}", f"levels[{index}]", level.bandwidth_Bps)


def _route(machine: Machine, group: Placement, gather: bool, halo: str = "",
           flat: bool = False) -> str:
    """Where the collectives of ``group`` run, in order: its f per level, then the all-gather
    (outermost level first) and the all-reduce (reduce-scatter up the split levels, all-reduce
    on the first level holding the whole group, all-gather back down); or, for the Pr group
    of a domain split, the level of its halo exchanges (``halo``)."""
    names = [level.name for level in machine.levels]
    active = [i for i in range(len(names)) if group.f(i) > 1]
    head = (f"{group.symbol} = {group.p}, stride {group.stride_text}: "
            + " × ".join(f"f_{names[i]} = {group.f(i)}" for i in range(len(names))))
    if not active:
        return head + " — one process: nothing to communicate"
    if halo:
        return head + f" — halo exchanges between neighbouring strips on {halo}"
    if flat:
        return head + " — flat rings over the ranks in order: each step waits for its slowest edge"
    up = [f"reduce-scatter on {names[i]}" for i in active if group.split(i)]
    whole = [f"all-reduce on {names[i]}" for i in active if not group.split(i)]
    down = [f"all-gather on {names[i]}" for i in reversed(active) if group.split(i)]
    phases = [f"all-reduce: {' → '.join(up + whole + down)}"]
    if gather:
        phases.insert(0, "all-gather: " + " → ".join(names[i] for i in reversed(active)))
    return head + " — " + "; ".join(phases)


def _divided(size: Callable[[str], str], tail: str) -> Callable[[str], str]:
    """``size`` with ``tail`` (a division such as '/q_node') written after it."""
    return lambda fraction: size(fraction) + tail


def _level_lines(label: str, term: str, group: Placement, machine: Machine,
                 algo: Algorithms, gather: bool, size: Callable[[str], str],
                 size_num: Callable[[str], str], n_words: float,
                 bindings: tuple[tuple[str, str], ...], note: str = "") -> list[Line]:
    """One line per level of a term's collectives on ``group`` (docs/hierarchy.md): at level l
    the phases run on f_l processes and n/q_(l−1) words — the all-gather's (``gather``) and the
    all-reduce's: reduce-scatter + all-gather where q_l < p below the outermost level, else
    the all-reduce itself (the first level holding the whole group; f_l = 1 above it).

    ``label`` names the term ('fc6 model'); ``size(F)`` / ``size_num(F)`` write n times the
    fraction F; ``n_words`` is n.  A group of one process gives one line of 0."""
    names = [level.name for level in machine.levels]
    prefix = "forward all-gather + backward " if gather else "weight-gradient "
    if group.p == 1:
        return [Line(f"{label}: {prefix}all-reduce over {group.symbol}", term,
                     f"0 when {group.symbol} = 1", (), "0", 0.0, 0.0, 0.0, note)]
    if algo.used(ALLREDUCE) == FLAT_RING:
        return _flat_ring_lines(label, term, group, machine, gather, size, size_num, n_words,
                                bindings, note)
    halves = HALVES[algo.used(ALLREDUCE)]
    reduce_scatter = REGISTRY[REDUCE_SCATTER][halves[0]].rate
    half_gather = REGISTRY[ALLGATHER][halves[1]].rate
    lines = []
    for index, name in enumerate(names):
        pair = _level_pair(machine, index)
        f, q_before = group.f(index), (group.q[index - 1] if index else 1)
        before = names[index - 1] if index else ""
        f_sym = f"f_{name}"
        placed = [(group.symbol, str(group.p)), ("stride", group.stride_text),
                  (f"q_{name}", group.q_texts[index])]
        if index:
            placed += [(f"q_{before}", str(q_before)),
                       (f_sym, f"q_{name}/q_{before} = {group.q[index]}/{q_before} = {f}")]
        else:
            placed.append((f_sym, f"q_{name} = {f}"))
        split = group.split(index)
        what = prefix + ("all-reduce's reduce-scatter and all-gather" if split
                         else "all-reduce")
        if f == 1:
            if index and q_before == group.p:
                why = (f"the whole {group.symbol} group lies in one {before} block "
                       f"(q_{before} = {group.symbol} = {group.p}): nothing crosses the "
                       f"{name} level")
            elif group.q[index] == 1:
                why = (f"one member of the {group.symbol} group per {name} (q_{name} = 1): "
                       f"no phase runs on {name}")
            else:
                why = (f"q_{name} = q_{before} = {q_before}: a {name} holds no more of the group "
                       f"than one {before} block, so no phase runs on {name}")
            lines.append(Line(f"{label}, {name} level: nothing over {group.symbol}", term,
                              f"0 when {f_sym} = 1", (*pair.bindings(machine.word_bytes),
                                                      *placed),
                              "0", 0.0, 0.0, 0.0, why, name))
            continue
        parts = ([Collective("all-gather", algo.allgather_rate, f_sym, f, pair)]
                 if gather else [])
        if split:
            parts += [Collective("reduce-scatter", reduce_scatter, f_sym, f, pair),
                      Collective("all-gather", half_gather, f_sym, f, pair)]
        else:
            parts.append(Collective("all-reduce", algo.allreduce_rate, f_sym, f, pair))
        formula, subst, charge = _collective_text(
            parts, _divided(size, f"/q_{before}" if index else ""),
            _divided(size_num, f"/{q_before}" if index else ""))
        words_here = n_words / q_before
        if split:
            where = (f"the all-reduce reduce-scatters here first and all-gathers here last; "
                     f"the levels above carry n/q_{name} = n/{group.q[index]} of its words")
        elif index and q_before > 1:
            where = (f"the first level holding the whole {group.symbol} group: it all-reduces "
                     f"the n/q_{before} = n/{q_before} words each block holds")
        elif index:
            where = (f"the first level holding the whole {group.symbol} group, which has one "
                     f"member per {before} (q_{before} = 1): it all-reduces all n words")
        else:
            where = (f"the whole {group.symbol} group lies in one {name} block: the "
                     "all-reduce runs here alone")
        if gather and sum(group.f(k) > 1 for k in range(len(names))) > 1:
            where += ("; the all-gather runs on the outermost level first"
                      + (", here last" if not index else
                         f", here on n/{q_before} words" if q_before > 1 else ""))
        lines.append(Line(f"{label}, {name} level: {what} over {group.symbol}", term,
                          formula, (*pair.bindings(machine.word_bytes), *placed, *bindings),
                          subst, charge.seconds(words_here), charge.messages,
                          charge.per_word * words_here,
                          "; ".join(part for part in (where, note) if part), name))
    return lines


def _flat_ring_lines(label: str, term: str, group: Placement, machine: Machine, gather: bool,
                     size: Callable[[str], str], size_num: Callable[[str], str], n_words: float,
                     bindings: tuple[tuple[str, str], ...], note: str = "") -> list[Line]:
    """The flat ring over ``group`` on a machine with levels (docs/hierarchy.md, "The flat
    ring"), one line per level: s steps (p−1 for the all-gather, 2(p−1) for the all-reduce),
    each as slow as its slowest edge —

        s·α_l at the level with the largest α among those with edges (q_l > q_(l−1)),
        s/p·n·β_l/q_(l−1) at the level with the largest β_l/q_(l−1)

    (ties: the innermost), as :func:`costmodel.engine.hierarchy.flat_ring_rates` charges it."""
    names = [level.name for level in machine.levels]
    prefix = "forward all-gather + backward " if gather else "weight-gradient "
    p, symbol = group.p, group.symbol
    if p == 1:
        return [Line(f"{label}: {prefix}all-reduce over {symbol}", term,
                     f"0 when {symbol} = 1", (), "0", 0.0, 0.0, 0.0, note)]
    factor = 3 if gather else 2
    steps, steps_text = factor * (p - 1), f"{factor}({symbol}−1)"
    before = [1, *group.q[:-1]]
    edges = [i for i in range(len(names)) if group.q[i] > before[i]]
    pairs = [_level_pair(machine, i) for i in range(len(names))]
    latency_at = max(edges, key=lambda i: (pairs[i].alpha, -i))
    words_at = max(edges, key=lambda i: (pairs[i].beta / before[i], -i))
    what = prefix + "all-reduce" + (", flat rings" if gather else ", a flat ring")
    lines = []
    for index, name in enumerate(names):
        pair = _level_pair(machine, index)
        placed = ((symbol, str(p)), ("stride", group.stride_text),
                  (f"q_{name}", group.q_texts[index]),
                  *(((f"q_{names[index - 1]}", str(before[index])),) if index else ()),
                  ("steps", f"{steps_text} = {steps}"))
        share = f"/q_{names[index - 1]}" if index and before[index] > 1 else ""
        share_num = f"/{before[index]}" if index and before[index] > 1 else ""
        formulas, substituted, why = [], [], []
        messages = words = 0.0
        if index == latency_at:
            formulas.append(f"{steps_text}·{pair.alpha_symbol}")
            substituted.append(f"{steps}·{_num(pair.alpha)}")
            messages = float(steps)
            why.append("the largest α among the levels the ring crosses: every step waits "
                       "for it")
        if index == words_at:
            formulas.append(f"{size(f'{steps_text}/{symbol}')}·{pair.beta_symbol}{share}")
            substituted.append(f"{size_num(f'{steps}/{p}')}·{_num(pair.beta)}{share_num}")
            words = steps / p * n_words / before[index]
            why.append(f"the slowest edge per word: β_{name}{share} = "
                       f"{_num(pair.beta / before[index])} s/word"
                       + (f" (one edge leaves each block of q_{names[index - 1]} = "
                          f"{before[index]} members, so they share its link with fewer)"
                          if share else ""))
        if not formulas:
            why.append(f"no ring edge at the {name} level" if index not in edges else
                       "its edges are never a step's slowest")
            lines.append(Line(f"{label}, {name} level: nothing over {symbol}", term, "0",
                              (*pair.bindings(machine.word_bytes), *placed), "0", 0.0, 0.0,
                              0.0, "; ".join(why), name))
            continue
        seconds = messages * pair.alpha + words * pair.beta
        lines.append(Line(f"{label}, {name} level: {what} over {symbol}", term,
                          " + ".join(formulas),
                          (*pair.bindings(machine.word_bytes), *placed, *bindings),
                          " + ".join(substituted), seconds, messages, words,
                          "; ".join(part for part in ("; ".join(why), note) if part), name))
    return lines


def _levels_model_lines(layer: Layer, pr: int, pc: int, batch: int, algo: Algorithms,
                        machine: Machine, rows: Placement,
                        cols: Placement) -> tuple[list[Line], tuple[str, ...]]:
    """:func:`_model_lines` on a machine with levels: the model term over the Pr group
    ``rows`` and the weight all-reduce over the Pc group ``cols``, one line per level each."""
    samples = -(-batch // pc)
    d = layer.activations
    model = _level_lines(
        f"{layer.name} model", "model", rows, machine, algo, True,
        lambda f: f"⌈B/Pc⌉·{f}·d_i", lambda f: f"{samples}·{f}·{d}", float(samples * d),
        (("⌈B/Pc⌉", f"⌈{batch}/{pc}⌉ = {samples}"), ("d_i", f"{d} activations/sample")),
        "" if pr > 1 else "Pr = 1: the layer is not split by model, nothing to gather")
    shard, size, size_num, shard_binding, note = _shard(layer, pr, pc)
    units, what = layer.split_size, _unit_word(layer)
    weights = _level_lines(
        f"{layer.name} batch", "batch", cols, machine, algo, False,
        size, size_num, shard,
        (("|W_i|", f"{layer.params} parameters"), ("u_i", f"{units} {what}"), ("Pr", str(pr)),
         shard_binding), note)
    flat = algo.used(ALLREDUCE) == FLAT_RING
    routes = (_route(machine, rows, True, flat=flat), _route(machine, cols, False, flat=flat))
    return [*model, *weights], routes


def _levels_domain_lines(layer: Layer, pr: int, pc: int, batch: int, algo: Algorithms,
                         machine: Machine, rows: Placement,
                         everyone: Placement) -> tuple[list[Line], tuple[str, ...]]:
    """:func:`_domain_lines` on a machine with levels: each halo at the innermost level whose
    domain holds the whole Pr group (else some neighbour pair crosses it; the slowest pair
    decides), and the weight all-reduce over all P, one line per level."""
    names = [level.name for level in machine.levels]
    at = next(i for i, q in enumerate(rows.q) if q == pr)
    pair = _level_pair(machine, at)
    if at == 0:
        level_text = f"{names[0]}: the whole Pr group lies in one {names[0]} block"
    else:
        level_text = (f"{names[at]}: q_{names[at - 1]} = {rows.q[at - 1]} < Pr = {pr} "
                      f"(stride {rows.stride_text}), so some neighbour pair crosses a "
                      f"{names[at - 1]} boundary; the slowest pair decides")
    lines = _halo_lines(layer, pr, pc, batch, pair,
                        (*pair.bindings(machine.word_bytes), ("level", level_text)), names[at])
    lines += _level_lines(
        f"{layer.name} batch", "batch", everyone, machine, algo, False,
        lambda f: f"{f}·|W_i|", lambda f: f"{f}·{layer.params}", float(layer.params),
        (("|W_i|", f"{layer.params} parameters"),), "every process keeps all of W_i")
    return lines, (_route(machine, rows, False, names[at]),
                   _route(machine, everyone, False, flat=algo.used(ALLREDUCE) == FLAT_RING))


def _compute_line(network: Network, machine: Machine, P: int, batch: int,
                  model: ComputeModel) -> tuple[Line, str]:
    """Compute seconds per iteration (docs/model.md §7) and the compute model's name."""
    grids = Grids(np.array([1]), np.array([P]), np.array([batch]))
    _, used, _ = compute_per_iteration_s(network, machine, grids, model)  # resolves, validates
    N = network.dataset_samples
    if used == "none":
        return Line("compute: none", "compute", "0", (), "0", 0.0), used
    if used.startswith("flops"):
        macs, rate = network.macs, machine.flop_rate
        seconds = batch * (3.0 * 2.0 * macs) / (P * rate)
        return Line(
            "compute: flop model", "compute", "B·3·2·MACs/(P·R)",
            (("B", str(batch)), ("MACs", f"{macs} multiply-adds/sample (forward)"),
             ("P", str(P)), ("R", f"{_num(rate)} FLOP/s")),
            f"{batch}·3·2·{macs}/({P}·{_num(rate)})", seconds,
            note="3 × the forward pass, 2 FLOP per multiply-add"), used
    table = machine.table()
    assert table is not None  # compute_per_iteration_s raised otherwise
    b = max(1.0, batch / P)
    xs, ts = table.local_batch, table.epoch_s
    b_text = f"max(1, {batch}/{P}) = {_num(b)}"
    note = ""
    if b in xs:
        t = float(ts[xs.index(int(b))])
        t_formula = "T(b) = the table entry at b"
        t_subst = f"T({_num(b)}) = {_num(t)} s"
    else:
        k = int(np.searchsorted(np.asarray(xs, dtype=float), b)) - 1
        k = min(max(k, 0), len(xs) - 2)
        b0, b1, t0, t1 = xs[k], xs[k + 1], ts[k], ts[k + 1]
        lb0, lb1, lt0, lt1 = math.log(b0), math.log(b1), math.log(t0), math.log(t1)
        t = math.exp(lt0 + (math.log(b) - lb0) * ((lt1 - lt0) / (lb1 - lb0)))
        t_formula = ("T(b) = T_k·(b/b_k)^s, s = ln(T_{k+1}/T_k)/ln(b_{k+1}/b_k) "
                     "(linear in log b – log T)")
        t_subst = (f"T({_num(b)}) = {_num(t0)}·({_num(b)}/{b0})^(ln({_num(t1)}/{_num(t0)})/"
                   f"ln({b1}/{b0})) = {_num(t)} s")
        if b < xs[0] or b > xs[-1]:
            note = (f"b = {_num(b)} lies outside the table ({xs[0]}…{xs[-1]}); its end segment "
                    "is extended in log–log")
    N = table.samples or N  # the samples of the measured epochs
    seconds = t / P * batch / N
    return Line(
        f"compute: measured table '{table.name}' ({table.network})", "compute",
        f"T(b)/P · B/N, b = max(1, B/P); {t_formula}",
        (("b", b_text), ("T(b)", t_subst), ("P", str(P)), ("B", str(batch)),
         ("N", f"{N} samples/epoch")),
        f"{_num(t)}/{P}·{batch}/{N}", seconds, note=note), used


def _sum_line(term: str, layers: Sequence[LayerExplanation]) -> Line:
    values = [(layer.name, layer.seconds(term)) for layer in layers]
    nonzero = [(n, v) for n, v in values if v != 0.0]
    shown = nonzero if len(nonzero) <= 12 else [*nonzero[:6], ("…", math.nan), *nonzero[-5:]]
    subst = " + ".join("…" if math.isnan(v) else _num(v) for _, v in shown) or "0"
    messages = math.fsum(layer.count(term, "messages") for layer in layers)
    words = math.fsum(layer.count(term, "words") for layer in layers)
    return Line(f"{term} communication: sum over the {len(layers)} weighted layers", "sum",
                f"Σ_i {term}_i", (), subst, math.fsum(v for _, v in values), messages, words,
                note=f"{len(nonzero)} of {len(layers)} layers pay a {term} term")


def _total_line(compute: float, model: float, batch: float, domain: float,
                overlap: Overlap) -> Line:
    """The overlap rule of docs/model.md §7, as :func:`costmodel.engine.cost.combine` applies it."""
    if overlap == "batch":
        value = max(compute, batch) + model + domain
        return Line("total (overlap batch: the gradient all-reduce hides under the compute)",
                    "total", "max(compute, batch) + model + domain", (),
                    f"max({_num(compute)}, {_num(batch)}) + {_num(model)} + {_num(domain)}",
                    value)
    return Line("total (overlap none: everything adds)", "total",
                "compute + model + batch + domain", (),
                f"{_num(compute)} + {_num(model)} + {_num(batch)} + {_num(domain)}",
                compute + model + batch + domain)


def _check_explainable(algo: Algorithms, machine: Machine) -> None:
    """UsageError for what explain cannot write as one formula yet: 'auto' (the algorithm
    depends on the size) and a γ term (reduction arithmetic, docs/collectives.md); on a machine
    with levels, also an all-reduce without a reduce-scatter phase (as the engine refuses it,
    :func:`costmodel.engine.hierarchy.check_algorithms`)."""
    if not algo.linear:
        raise UsageError("explain: collectives 'auto' picks per message; `gridcost layers "
                         "--collectives auto` shows the winners — explain one of them")
    rates = [algo.allgather_rate, algo.allreduce_rate]
    if machine.hierarchical:
        check_algorithms(algo)
        flat = [algo.used(kind) == FLAT_RING for kind in (ALLGATHER, ALLREDUCE)]
        if flat[0] != flat[1]:
            raise UsageError("explain: on a machine with levels it writes the flat ring for both "
                             "collectives or for neither (--collectives flat-ring); `gridcost "
                             "layers` shows this selection's cost per level")
        if not flat[1]:
            halves = HALVES[algo.used(ALLREDUCE)]
            rates += [REGISTRY[REDUCE_SCATTER][halves[0]].rate,
                      REGISTRY[ALLGATHER][halves[1]].rate]
    gamma_terms = any(np.any(rate_of(np.array([2, 3, 4])).reduce_per_word) for rate_of in rates)
    if machine.gamma_s_per_word and gamma_terms:
        raise UsageError(f"explain: machine {machine.name!r} charges γ (reduction arithmetic), "
                         "which explain does not show yet; use --collectives paper or a "
                         "profile without gamma")


def _schedule_lines(network: Network, machine: Machine, table: Any, algo: Algorithms,
                    bucket: Any) -> tuple[Line, tuple[Line, ...]]:
    """Overlap 'backward': the total as the schedule composes it, and one line per bucket and
    per wait of grid 0 (docs/schedule.md); on a machine with levels under the grid's mapping,
    each bucket's latency and slope summed over the levels."""
    from costmodel.engine.schedule import plan_steps, run

    pr_inside = None if table.mappings is None else table.mappings.pr_inside
    steps = plan_steps(network, machine, table.grids, table.plan, algo, table.compute_s,
                       pr_inside)
    levels = machine.hierarchical
    names = tuple(layer.name for layer in network.layers)
    totals, events = run(steps, bucket, machine.word_bytes, record=0, layer_names=names)
    c, b, w, t = (float(x[0]) for x in (totals.compute_s, totals.blocking_s, totals.wait_s,
                                        totals.tail_s))
    total = Line(f"total (overlap backward: one iteration scheduled, buckets {bucket.label})",
                 "total", "compute + blocking + waits + tail", (),
                 f"{_num(c)} + {_num(b)} + {_num(w)} + {_num(t)}", float(totals.total_s[0]),
                 note=(f"blocking = the model and domain sums (Pr-group collectives and halos, "
                       f"on the critical path); {_num(float(totals.hidden_s[0]))} of "
                       f"{_num(float(totals.gradient_s[0]))} s of gradient all-reduce in "
                       f"{int(totals.buckets[0])} buckets runs under the compute; its exposed "
                       "part is the waits and the tail"))
    lines = []
    index = {name: i for i, name in enumerate(names)}
    for e in events:
        if e.lane == "gradient":
            i = index[e.layers[-1]]  # the layer that closes the bucket: its group's rate
            latency = float(steps.bucket_latency_s[0, i, 0])
            per_word = float(steps.bucket_slope_s[0, i, 0])
            lat, slope = ("Σ_l α_l·L_l(p)", "Σ_l β_l·F_l(p)") if levels else ("α·L(p)",
                                                                                 "β·F(p)")
            lines.append(Line(f"{e.what}: {', '.join(e.layers)} over {e.group}", "batch",
                              f"{lat} + {slope}·n, n = the bucket's words (one all-reduce"
                              + (", over the levels)" if levels else ")"),
                              ((lat, f"{_num(latency)} s"),
                               (slope, f"{_num(per_word)} s/word"),
                               ("n", f"{_num(e.words)} words")),
                              f"{_num(latency)} + {_num(per_word)}·{_num(e.words)}",
                              e.end_s - e.start_s, words=e.words,
                              note=f"runs {_num(e.start_s)} → {_num(e.end_s)} s; exposed "
                                   f"{_num(e.exposed_s)} s"))
        elif e.lane == "wait":
            lines.append(Line(f"wait: {e.what}" + (f" ({', '.join(e.layers)})" if e.layers
                                                    else ""), "wait", "compute idle", (),
                              f"{_num(e.start_s)} → {_num(e.end_s)} s", e.end_s - e.start_s))
    return total, tuple(lines)


def explain(network: Network, machine: Machine, P: int, pr: int, batch: int, plan: Plan,
            overlap: Overlap = "none", collectives: str | None = None,
            compute: ComputeModel = "auto", layers: Sequence[str] | None = None,
            bucket: Any = None, mapping: str = "best") -> Explanation:
    """Every term of the cost of the grid Pr × (P/Pr) under ``plan``, per iteration.

    ``layers`` restricts the per-layer lines to those names (UnknownName with suggestions for a
    name the network lacks); the sums and the total always cover the whole network.  Raises
    UsageError when ``pr`` does not divide ``P``.

    On a machine with levels (docs/hierarchy.md) every collective term is written per level,
    under ``mapping`` ('best': the one the engine picks for this grid, and why; or
    'pr-inside' / 'pc-inside'); on a flat machine ``mapping`` must be 'best', as for
    :func:`costmodel.engine.cost.evaluate`.
    """
    P = check_processes(P)
    if isinstance(pr, bool) or not isinstance(pr, (int, np.integer)) or pr < 1 or P % pr:
        raise UsageError(f"--pr: expected a divisor of P={P}, got {pr}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise UsageError(f"batch: expected a positive integer, got {batch!r}")
    pr, batch = int(pr), int(batch)
    wanted = [network.layers[network.layer_index(name)].name for name in (layers or ())]
    algo = algorithms(collectives or machine.collectives)
    _check_explainable(algo, machine)
    grids = Grids(np.array([pr]), np.array([P // pr]), np.array([batch]))
    # the engine decides feasibility, the layout (which split and group sizes per layer) and,
    # on a machine with levels, the mapping
    table = evaluate(network, machine, grids, plan, overlap, collectives, compute,
                     mapping=mapping, bucket=bucket)
    layout = table.layout
    choice = None if table.mappings is None else _mapping_choice(table, mapping)
    explained = []
    for i, layer in enumerate(network.layers):
        mode = int(layout.mode[0, i])
        lpr, lpc = int(layout.pr[0, i]), int(layout.pc[0, i])
        routes: tuple[str, ...] = ()
        if choice is None:
            build = _domain_lines if mode == DOMAIN else _model_lines
            lines = build(layer, lpr, lpc, batch, algo, machine)
        else:
            lines, routes = _layer_level_lines(layer, mode, lpr, lpc, batch, algo, machine,
                                               choice.used == PR_INSIDE)
        explained.append(LayerExplanation(layer.name, layer.kind,
                                          MODE_NAMES[mode] if lpr > 1 else "batch", lpr, lpc,
                                          tuple(lines), routes))
    compute_line, used = _compute_line(network, machine, P, batch, compute)
    sums = tuple(_sum_line(term, explained) for term in ("model", "batch", "domain"))
    total = _total_line(compute_line.seconds, sums[0].seconds, sums[1].seconds, sums[2].seconds,
                        overlap)
    schedule: tuple[Line, ...] = ()
    if overlap == "backward":
        total, schedule = _schedule_lines(network, machine, table, algo, table.bucket)
    N = network.dataset_samples
    settings = (*_link_settings(machine, P),
                Line("iterations per epoch", "setting", "N/B", (),
                     f"{N}/{batch} = {_num(N / batch)}", N / batch))
    from costmodel.planning.search import reason  # search imports cost; keep explain's import light

    shown = tuple(e for e in explained if not wanted or e.name in wanted)
    levels = tuple((lv.name, lv.processes, lv.alpha_s, lv.bandwidth_Bps)
                   for lv in machine.levels) if choice is not None else ()
    return Explanation(
        network.name, machine.name, P, pr, P // pr, batch, plan.name, overlap, algo.name, used,
        bool(table.feasible[0]), reason(table, 0), bool(table.uneven[0]), settings, shown,
        compute_line, sums, total, N / batch, schedule, levels, choice)


def _link_settings(machine: Machine, P: int) -> tuple[Line, ...]:
    """The α and β lines: the flat pair, or α_l, β_l and the processes per domain K_l of every
    level of a machine with levels."""
    if not machine.hierarchical:
        alpha, beta = machine.alpha_s, machine.beta_s_per_word
        return (Line("latency per message", "setting", "α", (), f"{_num(alpha)} s", alpha),
                Line("seconds per word", "setting", "β = word_bytes / bandwidth", (),
                     f"{machine.word_bytes} / {_num(machine.bandwidth_Bps)} = {_num(beta)} "
                     "s/word", beta))
    out = []
    for index, level in enumerate(machine.levels):
        pair = _level_pair(machine, index)
        name = level.name
        out += [Line(f"latency per message on level {name}", "setting", pair.alpha_symbol, (),
                     f"{_num(pair.alpha)} s", pair.alpha),
                Line(f"seconds per word on level {name}", "setting",
                     f"{pair.beta_symbol} = word_bytes / bandwidth_{name}", (),
                     f"{machine.word_bytes} / {_num(level.bandwidth_Bps)} = {_num(pair.beta)} "
                     "s/word", pair.beta)]
        if level.processes is not None:
            out.append(Line(f"processes per {name}", "setting", f"K_{name}", (),
                            f"{level.processes}" + (f" (P = {P} ≤ K_{name}: one {name} holds "
                                                    "every process)"
                                                    if level.processes >= P else ""),
                            float(level.processes)))
    return tuple(out)


def _mapping_choice(table: Any, setting: str) -> MappingChoice:
    """The mapping grid 0 of ``table`` uses, the engine's sentence why (per iteration and per
    epoch, :meth:`MappingComparison.why`), both totals and the rank strides of Pr and Pc."""
    comparison = table.mappings
    pr, pc = int(table.grids.pr[0]), int(table.grids.pc[0])
    epoch = float(table.iterations_per_epoch[0])
    used = comparison.used(0)
    return MappingChoice(
        used, setting, comparison.why(0, pr, pc, 1.0, "s/iteration"),
        comparison.why(0, pr, pc, epoch, "s/epoch"),
        tuple((name, float(comparison.total_s[name][0])) for name in (PR_INSIDE, PC_INSIDE)),
        1 if used == PR_INSIDE else pc, pr if used == PR_INSIDE else 1)


def _layer_level_lines(layer: Layer, mode: int, pr: int, pc: int, batch: int,
                       algo: Algorithms, machine: Machine,
                       pr_inside: bool) -> tuple[list[Line], tuple[str, ...]]:
    """The lines of one layer on a machine with levels, its groups placed as the mapping says
    (docs/hierarchy.md: Pr groups at stride 1 and Pc groups at stride Pr with Pr inside, stride
    Pc and 1 with Pc inside; the weight all-reduce over all P at stride 1)."""
    P = pr * pc
    if pr_inside:
        stride_r, stride_c = 1, pr
        texts = ("1 (pr-inside)", f"Pr = {pr} (pr-inside)")
    else:
        stride_r, stride_c = pc, 1
        texts = (f"Pc = {pc} (pc-inside)", "1 (pc-inside)")
    rows = _placement(machine, "Pr", pr, stride_r, texts[0], P)
    if mode == DOMAIN:
        everyone = _placement(machine, "P", P, 1, "1 (all P processes)", P)
        return _levels_domain_lines(layer, pr, pc, batch, algo, machine, rows, everyone)
    if pc == P:  # the group of all P processes: consecutive ranks under either mapping
        stride_c, texts = 1, (texts[0], "1 (all P processes)")
    cols = _placement(machine, "Pc", pc, stride_c, texts[1], P)
    return _levels_model_lines(layer, pr, pc, batch, algo, machine, rows, cols)


# --------------------------------------------------------------------------- rendering


PRECISION_NOTE = "numbers rounded to 4 significant digits; --format json gives every digit"

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_FLOAT = re.compile(r"(?<![\w.])(?:\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)(?![\w.])")


def readable(x: float) -> str:
    """A number of an explanation for people: 4 significant digits (:func:`format_number`,
    without thousands separators so it reads inside a product); integers in full; a magnitude
    below 0.0001 as ``6.209×10⁻¹⁰``.  JSON keeps every digit (:func:`explanation_record`)."""
    x = float(x)
    if not math.isfinite(x) or (x == int(x) and abs(x) < 1e16):
        return _num(x)
    if abs(x) >= 1e-4:
        return format_number(x, separators=False)
    exponent = math.floor(math.log10(abs(x)))
    mantissa = x / 10.0**exponent
    if round(abs(mantissa), 3) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.4g}×10{str(exponent).translate(_SUPERSCRIPT)}"


def readable_text(text: str) -> str:
    """``text`` (a substituted expression or a binding) with every float written by
    :func:`readable`; integers and names (``conv1_1``, ``layer1.0``) stay as they are."""
    return _FLOAT.sub(lambda match: readable(float(match.group(0))), text)


def _value(seconds: float, per: Per, epoch: float) -> str:
    if per == "epoch":
        return (f"{readable(seconds)} s/iteration × {readable(epoch)} iterations/epoch = "
                f"{readable(seconds * epoch)} s/epoch")
    return f"{readable(seconds)} s/iteration"


def _counts(line: Line, per: Per, epoch: float) -> str:
    if line.messages is None or line.words is None:
        return ""
    scale = epoch if per == "epoch" else 1.0
    messages = line.messages * scale
    return (f"{format_number(messages)} message{'' if messages == 1 else 's'}, "
            f"{format_number(line.words * scale)} words per {per}")


def _title(e: Explanation) -> str:
    title = (f"{e.network} on {e.machine}: {e.pr}×{e.pc} grid (P={e.P}, B={e.batch}), plan "
             f"{e.plan}, overlap {e.overlap}, collectives {e.collectives}, compute "
             f"{e.compute_model}")
    if e.mapping is not None:
        title += f", mapping {e.mapping.used}"
    if not e.feasible:
        title += f" — INFEASIBLE: {e.reason}"
    return title


def _layer_heading(layer: LayerExplanation) -> str:
    how = (f"{layer.split} over Pr={layer.pr} × batch over Pc={layer.pc}" if layer.pr > 1
           else f"batch over Pc={layer.pc}")
    return f"{layer.name} ({layer.kind}; {how})"


def _mapping_lines(e: Explanation, per: Per) -> list[str]:
    """Machines with levels: the levels, the mapping used and why (empty on a flat machine)."""
    m = e.mapping
    if m is None:
        return []
    chosen = ("the cheaper of both" if m.setting == "best"
              else f"forced by --mapping {m.setting}")
    totals = ", ".join(f"{name} {readable(seconds)}" for name, seconds in m.total_s)
    return [f"levels: {' ⊂ '.join(name for name, *_ in e.levels)} (innermost first)",
            f"mapping: {m.used} ({chosen}): {m.rank_rule}, Pr groups at rank stride "
            f"{m.stride_pr}, Pc groups at stride {m.stride_pc}; totals {totals} s/iteration",
            f"  why: {m.why(per)}"]


def _bindings(line: Line) -> str:
    return ", ".join(f"{s} = {readable_text(v)}" for s, v in line.bindings)


def render_text(e: Explanation, per: Per = "epoch") -> str:
    """The explanation as plain text: per layer, per term, formula → numbers → result."""
    epoch = e.iterations_per_epoch
    out = [_title(e), ""]
    out += [f"{s.label}: {s.formula} = {readable_text(s.substituted)}" for s in e.settings]
    out += _mapping_lines(e, per)

    def block(line: Line, indent: str = "  ") -> list[str]:
        rows = [f"{indent}{line.label}", f"{indent}  formula:     {line.formula}"]
        if line.bindings:
            rows.append(f"{indent}  where:       {_bindings(line)}")
        rows.append(f"{indent}  substituted: {readable_text(line.substituted)}")
        counts = _counts(line, per, epoch)
        rows.append(f"{indent}  result:      {_value(line.seconds, per, epoch)}"
                    + (f" ({counts})" if counts else ""))
        if line.note:
            rows.append(f"{indent}  note:        {readable_text(line.note)}")
        return rows

    for layer in e.layers:
        out += ["", _layer_heading(layer)]
        out += [f"  placement: {route}" for route in layer.routes]
        for line in layer.lines:
            out += block(line)
    out += ["", "whole grid"]
    for line in (e.compute, *e.sums, e.total):
        out += block(line)
    if e.schedule:
        out += ["", "schedule of the backward pass (gradient buckets and waits, docs/schedule.md)"]
        for line in e.schedule:
            out += block(line)
    out += ["", "redistribution between layouts is not charged (the paper's convention)",
            PRECISION_NOTE]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(e: Explanation, per: Per = "epoch") -> str:
    """The explanation as GitHub Markdown: one table per layer and one for the whole grid."""
    epoch = e.iterations_per_epoch
    unit = f"s/{per}"
    scale = epoch if per == "epoch" else 1.0
    out = [f"### {_md(_title(e))}", ""]
    out += [f"- {s.label}: {s.formula} = {_md(readable_text(s.substituted))}"
            for s in e.settings]
    out += [f"- {_md(line.strip())}" for line in _mapping_lines(e, per)]
    header = ["| term | formula | where | substituted | s/iteration | " + unit + " |",
              "|---|---|---|---|---:|---:|"]

    def row(line: Line) -> str:
        note = readable_text(line.note or "")
        where = "; ".join(part for part in (_bindings(line), note) if part)
        return (f"| {_md(line.label)} | {_md(line.formula)} | {_md(where)} | "
                f"{_md(readable_text(line.substituted))} | {readable(line.seconds)} | "
                f"{readable(line.seconds * scale)} |")

    for layer in e.layers:
        out += ["", f"#### {_md(_layer_heading(layer))}", ""]
        out += [f"- placement: {_md(route)}" for route in layer.routes]
        out += [""] * bool(layer.routes) + header
        out += [row(line) for line in layer.lines]
    out += ["", "#### whole grid", "", *header]
    out += [row(line) for line in (e.compute, *e.sums, e.total)]
    if e.schedule:
        out += ["", "#### schedule of the backward pass", "", *header]
        out += [row(line) for line in e.schedule]
    out += ["", "- redistribution between layouts is not charged (the paper's convention)",
            f"- {PRECISION_NOTE}"]
    return "\n".join(out) + "\n"


def _line_record(line: Line, epoch: float) -> ExplainLineRecord:
    record: ExplainLineRecord = {
        "label": line.label, "term": line.term, "formula": line.formula,
        "bindings": [{"symbol": s, "value": v} for s, v in line.bindings],
        "substituted": line.substituted, "seconds_per_iteration": line.seconds,
        "seconds_per_epoch": line.seconds * epoch, "messages_per_iteration": line.messages,
        "words_per_iteration": line.words, "note": line.note or None}
    if line.level:
        record["level"] = line.level
    return record


def _layer_record(layer: LayerExplanation, epoch: float) -> ExplainLayerRecord:
    record: ExplainLayerRecord = {
        "layer": layer.name, "kind": layer.kind, "split": layer.split, "pr": layer.pr,
        "pc": layer.pc, "terms": [_line_record(line, epoch) for line in layer.lines]}
    if layer.routes:
        record["routes"] = list(layer.routes)
    return record


def explanation_record(e: Explanation) -> ExplainRecord:
    """The explanation as a JSON-ready dict (seconds both per iteration and per epoch;
    docs/json.md, "explain")."""
    epoch = e.iterations_per_epoch
    record: ExplainRecord = {
        "net": e.network, "machine": e.machine, "P": e.P, "pr": e.pr, "pc": e.pc,
        "batch": e.batch, "plan": e.plan, "overlap": e.overlap, "collectives": e.collectives,
        "compute_model": e.compute_model, "feasible": e.feasible, "reason": e.reason or None,
        "uneven": e.uneven, "iterations_per_epoch": epoch,
        "settings": [_line_record(s, epoch) for s in e.settings],
        "layers": [_layer_record(layer, epoch) for layer in e.layers],
        "compute": _line_record(e.compute, epoch),
        "sums": [_line_record(s, epoch) for s in e.sums],
        "total": _line_record(e.total, epoch),
        "redistribution_charged": False,
    }
    if e.schedule:
        record["schedule"] = [_line_record(s, epoch) for s in e.schedule]
    m = e.mapping
    if m is not None:
        record["levels"] = [{"name": name, "processes": processes, "alpha_s": alpha,
                             "bandwidth_Bps": bandwidth}
                            for name, processes, alpha, bandwidth in e.levels]
        record["mapping"] = m.used
        record["mapping_setting"] = m.setting
        record["mapping_why_per_iteration"] = m.why_per_iteration
        record["mapping_why_per_epoch"] = m.why_per_epoch
        record["mapping_total_s_per_iteration"] = dict(m.total_s)
        record["mapping_strides"] = {"pr": m.stride_pr, "pc": m.stride_pc}
    return record
