"""One training iteration of one grid as events: what `gridcost timeline` draws and lists
(docs/schedule.md §5).

Above both the schedule (:mod:`costmodel.engine.schedule`, the recurrence) and the search
(:mod:`costmodel.planning.search`, which picks the grid when none is given): the cost table builds
on the schedule, and this module on both, so every import runs one way.  Under overlap ``batch`` the
paper's bound is drawn; under ``none`` every all-reduce blocks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from costmodel.engine.buckets import PRESETS, Bucketing, bucketing
from costmodel.engine.cost import evaluate, machine_algorithms
from costmodel.engine.grids import Grids
from costmodel.engine.plans import Plan
from costmodel.engine.plans import plan as plan_named
from costmodel.engine.schedule import (
    Event,
    ScheduleTotals,
    Steps,
    Timeline,
    mark_exposed,
    plan_steps,
    run,
)
from costmodel.errors import UsageError
from costmodel.inputs.specs import Machine, Network
from costmodel.planning.search import Settings, optimize, reason

if TYPE_CHECKING:  # the per-layer solver loads only with the per-layer plan
    from costmodel.planning.perlayer import Problem


def _paper_batch(totals: ScheduleTotals, events: list[Event]) -> tuple[ScheduleTotals,
                                                                       list[Event]]:
    """Overlap 'batch' drawn: the paper's bound lets the whole gradient all-reduce hide under
    any compute, so its all-reduces are laid back to back on their own lane after the blocking
    collectives' time; the total is max(compute, Σ all-reduce) + blocking (docs/model.md §7)."""
    chain = [e for e in events if e.lane in ("compute", "pr")]
    grads = [e for e in events if e.lane == "gradient"]
    t = float(totals.blocking_s[0])
    laid = []
    for e in grads:
        laid.append(replace(e, start_s=t, end_s=t + (e.end_s - e.start_s), exposed_s=0.0))
        t = laid[-1].end_s
    end_chain = float(totals.compute_s[0] + totals.blocking_s[0])
    chain = _unwaited(chain)
    total = max(end_chain, t)
    out = chain + laid
    if total > end_chain:
        out.append(Event("wait", end_chain, total, "last all-reduce after the last compute",
                         (), 0.0, "", total - end_chain))
    new = ScheduleTotals(np.array([total]), totals.compute_s, totals.blocking_s,
                         np.zeros(1), np.array([total - end_chain]), totals.gradient_s,
                         totals.buckets)
    return new, mark_exposed(out)


def _unwaited(chain: list[Event]) -> list[Event]:
    """The compute and blocking events back to back (no waits), in their order."""
    t = 0.0
    out = []
    for e in sorted(chain, key=lambda e: e.start_s):
        d = e.end_s - e.start_s
        out.append(replace(e, start_s=t, end_s=t + d))
        t += d
    return out


def iteration_schedule(network: Network, machine: Machine, P: int, pr: int | None,
                       batch: int, plan: Plan | str, settings: Settings | None = None
                       ) -> Timeline:
    """One iteration of grid ``pr`` × P/``pr`` as a schedule of events (docs/schedule.md).

    ``plan``: a Plan, a plan name, or 'per-layer' (the per-layer optimum at P; ``pr`` is then
    ignored).  ``pr`` None takes the best grid of ``plan`` under ``settings``.  ``settings``
    (costmodel.planning.search.Settings) gives overlap, collectives, compute, mapping and bucket;
    under overlap 'none' every all-reduce blocks (one per layer, the paper's count, unless a bucket
    is given), under 'batch' the paper's bound is drawn, under 'backward' the schedule.
    """
    s = settings if settings is not None else Settings()
    bucket = (s.bucket if isinstance(s.bucket, Bucketing)
              else bucketing(s.bucket, None, machine.bucket) if s.overlap == "backward"
              else PRESETS["layer"] if s.bucket is None else bucketing(s.bucket))
    names = tuple(layer.name for layer in network.layers)
    algo = machine_algorithms(machine, s.collectives)
    if plan == "per-layer":
        # the per-layer solver loads only when the per-layer plan is drawn (start-up time)
        from costmodel.planning.perlayer import optimize_per_layer

        result = optimize_per_layer(network, machine, P, batch, replace(s, bucket=bucket))
        assert result.choice is not None
        prob = result.problem
        steps = prob.steps if prob.steps is not None else _perlayer_steps(prob)
        seq = prob.sequence_steps(result.choice) if prob.steps is not None else \
            _sequence_of(prob, steps, result.choice)
        lay = prob.layouts
        pr_used = int(lay.pr[result.choice].max())
        note = ("per-layer plan: each layer its own layout (Pr of the most split layer "
                "shown); redistribution as blocking collectives"
                + (f"; mapping {prob.mapping} for every layer" if prob.mapping else ""))
        feasible, why, plan_name = True, "", "per-layer"
        compute_model = prob.compute_model
    else:
        chosen = plan_named(plan) if isinstance(plan, str) else plan
        if pr is None:
            best = optimize(network, machine, P, batch, chosen, replace(s, bucket=bucket),
                            with_limits=False)
            assert best.best is not None
            pr = int(best.table.grids.pr[best.best])
        if P % pr:
            raise UsageError(f"--pr: expected a divisor of P={P}, got {pr}")
        grids = Grids(np.array([pr]), np.array([P // pr]), np.array([batch]))
        table = evaluate(network, machine, grids, chosen, s.overlap, s.collectives, s.compute,
                         None, s.mapping, bucket if s.overlap == "backward" else None)
        pr_inside = None if table.mappings is None else table.mappings.pr_inside
        seq = plan_steps(network, machine, grids, chosen, algo, table.compute_s, pr_inside,
                         labels=True)
        pr_used, plan_name = pr, chosen.name
        feasible, why = bool(table.feasible[0]), reason(table, 0)
        compute_model = table.compute_model
        note = ("" if pr_inside is None else
                f"mapping {'pr-inside' if pr_inside[0] else 'pc-inside'}")
    totals, events = run(seq, bucket, machine.word_bytes, record=0, layer_names=names,
                         serial=s.overlap == "none")
    if s.overlap == "batch":
        totals, events = _paper_batch(totals, events)
    forward_end = float((seq.fwd_compute_s + seq.fwd_pre_s + seq.fwd_post_s).sum(axis=0)[0])
    return Timeline(network.name, machine.name, P, pr_used, P // pr_used, batch, plan_name,
                    s.overlap, bucket, totals, tuple(events), feasible, why, compute_model,
                    forward_end, note)


def _perlayer_steps(prob: Problem) -> Steps:
    """The schedule's steps of every layout of a per-layer problem solved without them."""
    from costmodel.planning.perlayer import layout_steps

    algo = machine_algorithms(prob.machine, prob.settings.collectives)
    steps: Steps = layout_steps(prob.network, prob.machine, prob.layouts, prob.batch, algo,
                                prob.compute_s, prob.mapping)
    return steps


def _sequence_of(prob: Problem, steps: Steps, choice: np.ndarray) -> Steps:
    """The steps of the layout sequence ``choice`` of ``prob`` given every layout's ``steps``."""
    out: Steps = replace(prob, steps=steps).sequence_steps(choice)
    return out
