"""An in-step calibration on a machine with levels: α_l, β_l of every level fitted jointly to the
calls of training steps (docs/validation.md, "In-step calibration across levels").

Every charged call of a run (``ranks[i].log``) belongs to a group of the run's grid — the term
says which, exactly as the engine charges it (costmodel.engine.cost.level_volumes): a model call
runs over the layer group's Pr (rank stride of the Pr groups), a weight all-reduce over its Pc
(stride of the Pc groups) or, for a domain-split group, over all P (stride 1); a halo message
goes to the innermost level that holds the whole Pr group.  The strides follow from the run's
``mapping`` (costmodel.engine.hierarchy.strides).  The engine splits such a collective over the
levels (costmodel.engine.hierarchy.level_costs): m_l messages and w_l words at level l, so the
call's time is linear in the unknowns,

    t = Σ_l (m_l·α_l + w_l·β_l) + γ·r        (r: reduced words, γ the profile's),

and the α_l, β_l of all levels are the non-negative least-squares solution of these equations
with each row divided by its measured t (the relative residual, as ``calibrate`` fits).  Where
the engine chooses by the links (a flat ring charges its messages and words at the slowest
level, 'auto' the cheapest algorithm), the rows are built with the profile's links — the split
its own prediction uses; the fitted links then choose in the prediction.  (Rebuilding the rows
with the fitted links need not settle: on the emulated cluster's flat-ring fits the slowest
latency flips between the node and the network from one fit to the next.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from costmodel.engine.collectives import ALLGATHER, ALLREDUCE, Algorithms
from costmodel.engine.cost import machine_algorithms
from costmodel.engine.grids import Grids
from costmodel.engine.hierarchy import PR_INSIDE, halo_level, level_costs, strides
from costmodel.engine.plans import DOMAIN
from costmodel.engine.plans import plan as plan_named
from costmodel.errors import SpecError
from costmodel.inputs.specs import Machine, Network
from costmodel.measure.series import StepCall, statistic
from costmodel.records import RawRunRecord

CHARGED = ("model", "batch", "domain")
EXTRAPOLATION = 10.0
"""The most a fitted β_l is trusted beyond its data: a held-out run whose calls move more than
this many times the largest words per call the other runs moved on a level gets no prediction
(the fit never saw that regime; a β fitted on small messages is mostly latency)."""


@dataclass(frozen=True)
class CallGroup:
    """Where one logged call runs: its kind ('allgather', 'allreduce', 'p2p'), the group size
    p, the rank stride of the group and the processes P of the grid."""

    kind: str
    p: int
    stride: int
    total: int


@dataclass(frozen=True)
class LevelFit:
    """Fitted α_l (s) and β_l (s/word) per level, innermost first; or ``why`` not."""

    alphas: tuple[float, ...]
    betas: tuple[float, ...]
    why: str | None = None

    def machine(self, machine: Machine, name: str) -> Machine:
        """``machine`` with the fitted α_l and bandwidth_l = word_bytes/β_l on its levels (the
        outermost also as the flat α, bandwidth, as a profile with levels has them)."""
        levels = tuple(dataclasses.replace(level, alpha_s=a, bandwidth_Bps=machine.word_bytes / b)
                       for level, a, b in zip(machine.levels, self.alphas, self.betas))
        return dataclasses.replace(machine, name=name, levels=levels,
                                   alpha_s=levels[-1].alpha_s,
                                   bandwidth_Bps=levels[-1].bandwidth_Bps)


def call_groups(network: Network, plan_name: str, pr: int, pc: int, mapping: str | None,
                calls: Sequence[StepCall], source: str = "raw") -> list[CallGroup | None]:
    """The group of every call (None for calls the model does not charge: redistribution).

    Derived as :func:`costmodel.engine.cost.level_volumes` does: the plan's layer group of the
    call's layer gives the group sizes (Pr, Pc) and the mode, :func:`strides` the strides under
    ``mapping`` (None: pr-inside, the rank order a step measured without one runs in).  A
    SpecError naming ``source`` when a logged group size differs from the derived one (the raw
    was not measured with this plan and grid).
    """
    grids = Grids(np.array([pr]), np.array([pc]), np.array([1]))
    is_conv = np.array([layer.kind == "conv" for layer in network.layers])
    index = {layer.name: j for j, layer in enumerate(network.layers)}
    group_of: dict[int, tuple[int, int, int]] = {}
    for group in plan_named(plan_name).groups(grids, is_conv):
        for j in group.index:
            group_of[int(j)] = (group.mode, int(group.pr[0, 0]), int(group.pc[0, 0]))
    inside = np.array([[mapping in (None, PR_INSIDE)]])
    out: list[CallGroup | None] = []
    for call in calls:
        if call.term not in CHARGED or call.layer not in index:
            out.append(None)
            continue
        mode, gpr, gpc = group_of[index[call.layer]]
        stride_r, stride_c = (int(s[0, 0]) for s in strides(np.array([[gpr]]),
                                                             np.array([[gpc]]), inside))
        total = gpr * gpc
        if call.term == "model":
            where = CallGroup(call.kind, gpr, stride_r, total)
        elif call.term == "domain":
            where = CallGroup("p2p", gpr, stride_r, total)
        elif mode == DOMAIN:
            where = CallGroup(ALLREDUCE, total, 1, total)
        else:
            where = CallGroup(ALLREDUCE, gpc, stride_c, total)
        if call.kind != "p2p" and call.p != where.p:
            raise SpecError(source, f"log ({call.layer}, {call.term}, {call.op})",
                            f"a group of {where.p} processes on grid {pr}×{pc} of plan "
                            f"{plan_name}, got p = {call.p}")
        out.append(where)
    return out


def call_row(group: CallGroup, words: int, machine: Machine, algo: Algorithms,
             links: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, float]:
    """Coefficients (m_0 … m_(L−1), w_0 … w_(L−1)) of one call of ``words`` words on ``group``
    and its reduced words r: the engine's per-level split with ``links`` (module docstring)."""
    levels = len(machine.levels)
    row = np.zeros(2 * levels)
    domains = machine.domain_sizes
    if group.kind == "p2p":  # one halo message at the halo level (level_volumes)
        at = int(halo_level(np.array([[group.p]]), np.array([[group.stride]]), domains,
                            np.array([[group.total]]))[0, 0])
        row[at], row[levels + at] = 1.0, float(words)
        return row, 0.0
    costs = level_costs(ALLGATHER if group.kind == "allgather" else ALLREDUCE,
                        np.array([[group.p]]), np.array([[group.stride]]),
                        np.array([[float(words)]]), domains, algo, links,
                        machine.gamma_s_per_word, np.array([[group.total]]))
    reduced = 0.0
    for level, cost in enumerate(costs):
        row[level] = float(np.asarray(cost.messages).reshape(-1)[0])
        row[levels + level] = float(np.asarray(cost.words).reshape(-1)[0])
        reduced += float(np.asarray(cost.reduced).reshape(-1)[0])
    return row, reduced


def fit_rows(rows: np.ndarray, seconds: np.ndarray, reduced: np.ndarray,
             gamma_s_per_word: float, level_names: Sequence[str]) -> LevelFit:
    """Non-negative least squares of rows·(α, β) = seconds − γ·reduced, each equation divided
    by its measured seconds (the relative residual).  ``why`` names the levels the rows do not
    determine (no call there, or α and β not separable: the matrix has rank < 2L), or a level
    whose fitted β is 0 (no bandwidth a profile can hold)."""
    from scipy.optimize import nnls  # type: ignore[import-untyped]

    levels = len(level_names)
    if len(rows) == 0:
        return LevelFit((), (), "no timed call to fit")
    weighted = rows / seconds[:, None]
    target = (seconds - gamma_s_per_word * reduced) / seconds
    norms = np.linalg.norm(weighted, axis=0)
    missing = [level_names[i] for i in range(levels)
               if norms[i] == 0 and norms[levels + i] == 0]
    if missing:
        return LevelFit((), (), f"no call of the other runs reaches the {', '.join(missing)} "
                                "level")
    if (norms == 0).any() or np.linalg.matrix_rank(weighted / np.where(norms > 0, norms, 1.0)) \
            < 2 * levels:
        return LevelFit((), (), "the other runs' calls do not separate α and β of every level "
                                "(singular fit)")
    scaled, _ = nnls(weighted / norms, target)
    x = scaled / norms
    alphas, betas = tuple(float(a) for a in x[:levels]), tuple(float(b) for b in x[levels:])
    flat = [level_names[i] for i, b in enumerate(betas) if not b > 0]
    if flat:
        return LevelFit(alphas, betas, f"the fit gives the {', '.join(flat)} level no "
                                       "bandwidth term (β = 0)")
    return LevelFit(alphas, betas)


@dataclass(frozen=True)
class RunCalls:
    """The charged calls of one run: their groups, words and summary seconds."""

    groups: tuple[CallGroup, ...]
    words: tuple[int, ...]
    seconds: tuple[float, ...]


def run_calls(network: Network, plan_name: str, pr: int, pc: int, mapping: str | None,
              calls: Sequence[StepCall], summary: str = "mean",
              source: str = "raw") -> RunCalls:
    """The charged calls of a run with words and time (``summary`` over the timed iterations),
    each with its group (:func:`call_groups`)."""
    summarise = statistic(summary)
    groups, words, seconds = [], [], []
    for call, group in zip(calls, call_groups(network, plan_name, pr, pc, mapping, calls,
                                              source)):
        if group is None or call.words <= 0 or not call.seconds:
            continue
        time = summarise(call.seconds)
        if time > 0:
            groups.append(group)
            words.append(call.words)
            seconds.append(time)
    return RunCalls(tuple(groups), tuple(words), tuple(seconds))


@dataclass(frozen=True)
class RunRows:
    """The equations of one run's calls (module docstring): coefficients (calls, 2L) — m_l
    then w_l per level —, measured seconds and reduced words per call."""

    rows: np.ndarray
    seconds: np.ndarray
    reduced: np.ndarray


def run_rows(run: RunCalls, machine: Machine, algo: Algorithms) -> RunRows:
    """The equations of ``run``'s calls, each split with the machine's own links."""
    built = [call_row(g, w, machine, algo, machine.links) for g, w in zip(run.groups, run.words)]
    return RunRows(np.array([r for r, _ in built]).reshape(len(built), 2 * len(machine.levels)),
                   np.array(run.seconds, dtype=np.float64),
                   np.array([r for _, r in built], dtype=np.float64))


def _fit(runs: Sequence[RunRows], machine: Machine) -> LevelFit:
    """:func:`fit_rows` on the equations of ``runs`` together."""
    return fit_rows(np.vstack([np.zeros((0, 2 * len(machine.levels))), *(r.rows for r in runs)]),
                    np.concatenate([np.zeros(0), *(r.seconds for r in runs)]),
                    np.concatenate([np.zeros(0), *(r.reduced for r in runs)]),
                    machine.gamma_s_per_word, [level.name for level in machine.levels])


def fit_levels(runs: Sequence[RunCalls], machine: Machine,
               collectives: str | None = None) -> LevelFit:
    """α_l, β_l of every level of ``machine`` fitted to the calls of ``runs`` (module
    docstring), each call's rows built with the machine's own links."""
    algo = machine_algorithms(machine, collectives)
    return _fit([run_rows(run, machine, algo) for run in runs], machine)


def _largest_words(runs: Sequence[RunRows], levels: int) -> np.ndarray:
    """Per level, the most words one call of ``runs`` moves there (the engine's split)."""
    return np.asarray(np.max([r.rows[:, levels:].max(axis=0, initial=0.0) for r in runs],
                             axis=0, initial=0.0))


def _within_range(fit: LevelFit, held_out: RunRows, train: Sequence[RunRows],
                  machine: Machine) -> LevelFit:
    """``fit``, or no fit when the held-out run moves more than EXTRAPOLATION times the
    largest words per call the training runs moved on some level (module docstring)."""
    levels = len(machine.levels)
    seen, needed = _largest_words(train, levels), _largest_words([held_out], levels)
    for name, have, want in zip((lv.name for lv in machine.levels), seen, needed):
        if want > EXTRAPOLATION * have:
            return LevelFit(fit.alphas, fit.betas,
                            f"this run moves up to {want:,.0f} words per call on the {name} "
                            f"level, the other runs at most {have:,.0f}: β_{name} would be "
                            f"extrapolated more than {EXTRAPOLATION:g}×")
    return fit


@dataclass(frozen=True)
class LevelPrediction:
    """One run's in-step prediction on a machine with levels: seconds per term (None where the
    fit says ``why`` not) and the fit of the other runs."""

    seconds: dict[str, float] | None
    fit: LevelFit


def level_in_step_predictions(runs: Sequence[RawRunRecord], calls: Sequence[
        Sequence[StepCall]], network: Network, machine: Machine, batch: int,
        collectives: str = "paper", summary: str = "mean"
) -> list[LevelPrediction]:
    """Each run predicted with the α_l, β_l fitted to the calls of the **other** runs of its P
    (leave-one-run-out), on a copy of ``machine`` carrying them (:meth:`LevelFit.machine`) and
    with the run's mapping (docs/validation.md).  A run whose log has a group size its plan
    does not (:func:`call_groups`) trains no fit: the others of its P say so instead."""
    from costmodel.engine.cost import evaluate

    sizes = [int(r["pr"]) * int(r["pc"]) for r in runs]
    algo = machine_algorithms(machine, collectives)
    charged: list[RunRows | str] = []
    for r, c in zip(runs, calls):
        grid = f"{r['plan']} {r['pr']}×{r['pc']} {r.get('mapping', PR_INSIDE)}"
        try:
            charged.append(run_rows(run_calls(network, r["plan"], int(r["pr"]), int(r["pc"]),
                                              r.get("mapping"), c, summary, grid),
                                    machine, algo))
        except SpecError as error:  # a log the plan does not explain: no fit on it
            charged.append(str(error))
    out: list[LevelPrediction] = []
    for j, run in enumerate(runs):
        train = [charged[i] for i in range(len(runs)) if i != j and sizes[i] == sizes[j]]
        unusable = [t for t in train if isinstance(t, str)]
        usable = [t for t in train if not isinstance(t, str)]
        fit = (LevelFit((), (), f"another run's calls do not fit its plan ({unusable[0]})")
               if unusable else _fit(usable, machine))
        held_out = charged[j]
        if fit.why is None and not isinstance(held_out, str):
            fit = _within_range(fit, held_out, usable, machine)
        if fit.why is not None:
            out.append(LevelPrediction(None, fit))
            continue
        fitted = fit.machine(machine, f"{machine.name} in-step")
        table = evaluate(network, fitted, Grids(np.array([int(run["pr"])]),
                                                np.array([int(run["pc"])]), np.array([batch])),
                         plan_named(run["plan"]), collectives=collectives, compute="none",
                         mapping=run.get("mapping") or "best")
        out.append(LevelPrediction({t: float(table.comm_s(t)[0]) for t in CHARGED}, fit))
    return out

