"""Measured collective times as fitting input: :class:`Series`, the repetition summaries, and the
calls of a training step as series (an in-step calibration).

Shared by :mod:`costmodel.measure.calibration` (which fits series) and
:mod:`costmodel.measure.validation` (which reads training steps and calibrates on their calls):
neither imports the other for these, so there is no import cycle between them.  No torch here.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from costmodel.errors import UsageError
from costmodel.records import RawRankRecord, RawRunRecord

COLLECTIVES = ("allgather", "allreduce", "p2p")
"""The calibrated collectives: all-gather, all-reduce and one point-to-point message."""

STATISTICS: dict[str, Callable[[Sequence[float]], float]] = {
    "mean": statistics.fmean,
    "median": statistics.median,
}
"""How repeated timings of one call become one time.  ``mean`` (the default everywhere): a
training run pays every repetition, slow ones included, so its time is the sum of the calls'
means — and nccl-tests and the OSU benchmarks report averages too.  ``median``: the typical
call, blind to a tail of slow repetitions (what gridcost used before; kept to compare)."""


def statistic(name: str) -> Callable[[Sequence[float]], float]:
    """The summary function called ``name`` (one of :data:`STATISTICS`)."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise UsageError(f"statistic: expected one of {', '.join(STATISTICS)}, "
                         f"got {name!r}") from None


COLLECTIVE_LABELS = {"allgather": "all-gather", "allreduce": "all-reduce",
                     "p2p": "point-to-point"}


@dataclass(frozen=True)
class Series:
    """Times of one collective on p processes: sizes ``words`` (n, words of ``word_bytes``
    bytes, model convention) and ``seconds`` (one summary time per size), arrays of equal
    length."""

    collective: str
    p: int
    words: np.ndarray
    seconds: np.ndarray
    word_bytes: int = 4
    source: str = ""

    def __post_init__(self) -> None:
        if self.collective not in COLLECTIVES:
            raise UsageError(f"unknown collective {self.collective!r} "
                             f"(known: {', '.join(COLLECTIVES)})")
        if self.p < 2:
            raise UsageError(f"{self.source or self.collective}: expected at least 2 processes, "
                             f"got {self.p}")
        if len(self.words) != len(self.seconds) or len(self.words) < 2:
            raise UsageError(f"{self.source or self.collective}: expected at least two "
                             "(size, time) points")
        if isinstance(self.word_bytes, bool) or not isinstance(self.word_bytes, int) \
                or self.word_bytes < 1:
            raise UsageError(f"{self.source or self.collective}: expected a positive number "
                             f"of bytes per word, got {self.word_bytes!r}")

    @property
    def label(self) -> str:
        return f"{COLLECTIVE_LABELS[self.collective]}, p={self.p}"


@dataclass(frozen=True)
class StepCall:
    """One communication call of the training step: where it is (layer, term, op), what it is
    (kind 'allgather' | 'allreduce' | 'p2p', group size p, words n in the model's convention)
    and its seconds in every timed iteration — the slowest rank's, matched by call."""

    layer: str
    term: str
    op: str
    kind: str
    p: int
    words: int
    seconds: tuple[float, ...]


def _kind(op: str) -> str:
    if op.startswith("halo"):
        return "p2p"
    return "allgather" if op == "all-gather" else "allreduce"


def step_calls(ranks: Sequence[RawRankRecord]) -> list[StepCall]:
    """Every call rank 0 logged, with the slowest rank's seconds per timed iteration.

    A call is (layer, term, op, occurrence): ranks may log different calls (an interior strip
    sends two halos, an edge strip one), so calls are matched by key, not by position.  Empty
    for records without per-call times.
    """
    iterations = ranks[0]["iterations"]
    if not iterations or "call_s" not in iterations[0]:
        return []
    per_rank: list[dict[tuple[tuple[str, str, str], int], list[float]]] = []
    for rank in ranks:
        seen: dict[tuple[str, str, str], int] = {}
        calls: dict[tuple[tuple[str, str, str], int], list[float]] = {}
        for i, entry in enumerate(rank["log"]):
            name = (entry["layer"], entry["term"], entry["op"])
            seen[name] = seen.get(name, -1) + 1
            calls[(name, seen[name])] = [it.get("call_s", [])[i] for it in rank["iterations"]]
        per_rank.append(calls)
    out = []
    seen = {}
    for entry in ranks[0]["log"]:
        name = (entry["layer"], entry["term"], entry["op"])
        seen[name] = seen.get(name, -1) + 1
        key = (name, seen[name])
        slowest = tuple(max(calls[key][k] for calls in per_rank if key in calls)
                        for k in range(len(iterations)))
        out.append(StepCall(entry["layer"], entry["term"], entry["op"], _kind(entry["op"]),
                            int(entry["p"]), int(entry["words"]), slowest))
    return out


def in_step_series(runs: Sequence[RawRunRecord], source: str = "training step",
                   summary: str = "mean") -> list[Series]:
    """Series for calibration from the calls of training steps (``validate --raw`` runs): per
    collective kind and group size, each call's words and ``summary`` of its seconds over the
    timed iterations (redistribution all-gathers included: they are all-gathers too).

    Calibrating on these measures α and β *in the conditions of the step* — compute between
    the calls, the threads of every process on the cores — where ``calibrate run`` measures
    collectives back to back.  Kinds and sizes with fewer than two distinct sizes are left out
    (a line needs two).
    """
    return calls_series([step_calls(run["ranks"]) for run in runs], source, summary)


def calls_series(calls_of_runs: Sequence[Sequence[StepCall]], source: str = "training step",
                 summary: str = "mean") -> list[Series]:
    """:func:`in_step_series` from the :func:`step_calls` of each run."""
    summarise = statistic(summary)
    points: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for calls in calls_of_runs:
        for call in calls:
            if call.words > 0 and call.seconds:
                points.setdefault((call.kind, call.p), []).append(
                    (call.words, summarise(call.seconds)))
    out = []
    for (kind, p), found in sorted(points.items()):
        if len({w for w, _ in found}) < 2:
            continue
        found.sort()
        out.append(Series(kind, p, np.array([w for w, _ in found], dtype=np.float64),
                          np.array([t for _, t in found]), 4, source))
    return out
