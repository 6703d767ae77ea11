"""The paper's evaluation (Figs. 6–10) recomputed, its headline claims checked, and one step past.

The setup is the paper's, as docs/model.md §9 records it: grouped AlexNet, ImageNet
(N = 1.2 M), the machine `cori-knl` (α = 2 µs, 6 GiB/s, 4-byte words) with its compute table
`paper-figures`.  This module runs the paper's experiments through
:func:`costmodel.planning.search.optimize` and :func:`~costmodel.planning.search.sweep` (nothing is
tuned: the numbers are whatever the printed equations give), sets each headline claim of the paper's
text beside gridcost's number with the difference and its reason, runs the same study for VGG-16 and
ResNet-50 on `cori-knl` and `a100-ib`, and renders everything — figures, tables,
``claims.json`` and the document docs/reproduction.md — as ``{relative file name: str | bytes}``.
It never writes a file; ``gridcost reproduce`` does.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from costmodel.engine.cost import CostTable
from costmodel.engine.plans import PLANS
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.inputs.specs import Machine, Network
from costmodel.output.report import Table, render_csv, render_latex, render_markdown
from costmodel.planning.search import (
    Optimum,
    ScalingLimits,
    Settings,
    SweepResult,
    optimize,
    scaling_limits,
    sweep,
)
from costmodel.progress import Progress, report

PAPER_NET = "alexnet"
PAPER_MACHINE = "cori-knl"
PAPER_BATCH = 2048
"""The global batch of the paper's Figs. 6–8 (docs/model.md §9)."""

PANEL_PROCESSES = (8, 32, 128, 512)
"""P of the panels of Figs. 6–8.  The paper's text names P = 8 and P = 512 (docs/model.md §9);
32 and 128 fill the powers of four in between (our choice, stated in the document)."""

WEAK_SETTINGS = ((512, 128), (8192, 2048), (32768, 8192))
"""(B, P) of Fig. 9: weak scaling with 4 samples per process."""

WEAK_PER_PROCESS = 4

BEYOND_BATCH = 512
BEYOND_PROCESSES = (1024, 2048, 4096)
"""Fig. 10: B = 512 on P past the batch limit; the conv images are split P/B ways."""

STUDY_NETS = ("vgg16", "resnet50")
STUDY_MACHINES = ("cori-knl", "a100-ib")
STUDY_BATCH = 2048
STUDY_PROCESSES = (8, 32, 128, 512, 2048)

FIGURE_DPI = 150
"""Resolution of the PNG figures: costmodel.output.plot.PNG_DPI, the one resolution of every figure
gridcost writes (kept here so that this module loads without matplotlib)."""

ARTEFACT_DIGITS = 12
"""Significant digits of every number in the written tables (CSV, Markdown, LaTeX) and in
``claims.json``.  The last bits of a float depend on the machine (SIMD paths, numpy's summation
order); 12 digits keep every result far beyond its meaning and make the files the same on every
machine but for a value that sits on a rounding boundary, which the tests allow for by comparing
numbers to a relative 1e-9 (tests/golden.py)."""


def significant(value: Any, digits: int = ARTEFACT_DIGITS) -> Any:
    """``value`` with every float, also inside dicts, lists and tuples, rounded to ``digits``
    significant digits (``float(f"{x:.12g}")``: 22.363281249999993 → 22.36328125); other values
    unchanged."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: significant(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(significant(v, digits) for v in value)
    return value


# --------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class Experiment:
    """One of the paper's figures recomputed: its panels (one Optimum per P) and, for Fig. 9,
    the weak-scaling sweep.  ``key`` names the files (``fig6.png``, ``fig6.csv``, …)."""

    key: str
    figure: str
    title: str
    plan: str
    overlap: str
    optima: tuple[Optimum, ...]
    sweep: SweepResult | None = None


def _alexnet() -> tuple[Network, Machine]:
    return load_network(PAPER_NET), load_machine(PAPER_MACHINE)


def paper_experiments() -> tuple[Experiment, ...]:
    """Figs. 6–10 with the settings of docs/model.md §9 (compute: table `paper-figures`)."""
    net, machine = _alexnet()

    def panels(plan: str, overlap: str, cases: Sequence[tuple[int, int]]) -> tuple[Optimum, ...]:
        settings = Settings(overlap=overlap)  # type: ignore[arg-type]
        return tuple(optimize(net, machine, P, batch, PLANS[plan], settings, with_limits=False)
                     for batch, P in cases)

    fixed = [(PAPER_BATCH, P) for P in PANEL_PROCESSES]
    weak_ps = 2 ** np.arange(7, 14, dtype=np.int64)  # 128 … 8192
    weak = sweep(net, machine, weak_ps, WEAK_PER_PROCESS * weak_ps, PLANS["fc-model"])
    return (
        Experiment("fig6", "Fig. 6", "one grid for all layers (conv and fc model × batch)",
                   "model-batch", "none", panels("model-batch", "none", fixed)),
        Experiment("fig7", "Fig. 7", "convolutions pure batch, grid on the fully connected "
                   "layers", "fc-model", "none", panels("fc-model", "none", fixed)),
        Experiment("fig8", "Fig. 8", "as Fig. 7, gradient all-reduce overlapped with "
                   "computation", "fc-model", "batch", panels("fc-model", "batch", fixed)),
        Experiment("fig9", "Fig. 9", "weak scaling, 4 samples per process, plan fc-model",
                   "fc-model", "none", panels("fc-model", "none", WEAK_SETTINGS), weak),
        Experiment("fig10", "Fig. 10", "B = 512 beyond the batch limit: conv images split "
                   "P/B ways", "beyond-batch", "none",
                   panels("beyond-batch", "none", [(BEYOND_BATCH, P) for P in BEYOND_PROCESSES])),
    )


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """A headline claim of docs/model.md §9 beside gridcost's number.

    ``paper`` is the stated value (None when the paper states only the settings) with ``decimals``
    decimal places as printed; ``gridcost`` is computed; ``details`` holds the numbers behind the
    explanation (seconds per epoch unless the name says otherwise).
    """

    key: str
    figure: str
    statement: str
    quantity: str
    paper: float | None
    paper_text: str
    gridcost: float
    gridcost_text: str
    decimals: int | None
    explanation: str
    details: dict[str, float] = field(default_factory=dict)

    @property
    def difference(self) -> float | None:
        """gridcost − paper, in the unit of the quantity."""
        return None if self.paper is None else self.gridcost - self.paper

    @property
    def relative(self) -> float | None:
        """(gridcost − paper) / paper."""
        return None if self.paper is None or self.paper == 0 else \
            (self.gridcost - self.paper) / self.paper

    @property
    def within_rounding(self) -> bool | None:
        """Whether gridcost's value rounds to the paper's as printed (half a unit of its last
        digit; a tiny tolerance absorbs binary floating point at the boundary)."""
        if self.paper is None or self.decimals is None:
            return None
        return abs(self.gridcost - self.paper) <= 0.5 * 10.0 ** -self.decimals * (1 + 1e-12)

    def record(self) -> dict[str, Any]:
        """JSON-ready dict (claims.json)."""
        return {"key": self.key, "figure": self.figure, "statement": self.statement,
                "quantity": self.quantity, "paper": self.paper, "paper_text": self.paper_text,
                "gridcost": self.gridcost, "gridcost_text": self.gridcost_text,
                "difference": self.difference, "relative_difference": self.relative,
                "paper_decimals": self.decimals, "within_rounding": self.within_rounding,
                "explanation": self.explanation, "details": dict(sorted(self.details.items()))}


@dataclass(frozen=True)
class _Best:
    """The best grid of one Optimum and its ratios to pure batch, per epoch."""

    pr: int
    pc: int
    total_s: float
    comm_s: float
    model_s: float
    batch_s: float
    compute_s: float
    pure_total_s: float
    pure_comm_s: float

    @property
    def speedup(self) -> float:
        return self.pure_total_s / self.total_s

    @property
    def comm_speedup(self) -> float:
        return self.pure_comm_s / self.comm_s

    @property
    def grid(self) -> str:
        return f"{self.pr}×{self.pc}"


def _epoch(table: CostTable) -> float:
    return float(table.iterations_per_epoch[0])


def _at(opt: Optimum, g: int) -> _Best:
    """Grid ``g`` of ``opt`` (per epoch) with pure batch 1×P for reference."""
    t, pure, scale = opt.table, opt.pure_batch, _epoch(opt.table)
    return _Best(int(t.grids.pr[g]), int(t.grids.pc[g]), float(t.total_s[g]) * scale,
                 float(t.total_comm_s[g]) * scale, float(t.comm_s("model")[g]) * scale,
                 float(t.comm_s("batch")[g]) * scale, float(t.compute_s[g]) * scale,
                 float(pure.total_s[0]) * scale, float(pure.total_comm_s[0]) * scale)


def _best(opt: Optimum) -> _Best:
    assert opt.best is not None, "every experiment of the paper has a feasible grid"
    return _at(opt, opt.best)


def _grid_index(opt: Optimum, pr: int) -> int:
    return int(np.flatnonzero(opt.table.grids.pr == pr)[0])


def _model_parts(opt: Optimum, g: int) -> tuple[float, float]:
    """Model communication of grid ``g`` in the conv layers and in the fc layers, s/epoch."""
    conv = np.array([layer.kind == "conv" for layer in opt.table.network.layers])
    model = opt.table.seconds("model")[g] * _epoch(opt.table)
    return float(model[conv].sum()), float(model[~conv].sum())


def _panel(exp: Experiment, P: int) -> Optimum:
    return next(opt for opt in exp.optima if opt.P == P)


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


def _x(value: float) -> str:
    return f"{value:.2f}×"


def paper_claims(experiments: Sequence[Experiment]) -> tuple[Claim, ...]:
    """Every headline claim of docs/model.md §9 with gridcost's value and the reason for any
    difference.  The explanations quote numbers computed here, never retyped ones."""
    exps = {e.key: e for e in experiments}
    claims: list[Claim] = []
    claims += _fig6_claims(exps["fig6"])
    claims += _fig7_claims(exps["fig7"])
    claims += _fig8_claims(exps["fig8"])
    claims += _fig9_claims(exps["fig9"])
    claims += _fig10_claims(exps["fig10"])
    return tuple(claims)


def _fig6_claims(exp: Experiment) -> list[Claim]:
    opt = _panel(exp, 512)
    best = _best(opt)
    g16 = _grid_index(opt, 16)
    at16 = _at(opt, g16)
    conv16, fc16 = _model_parts(opt, g16)
    implied_comm = at16.pure_comm_s / 5.0
    implied_total = at16.pure_total_s / 2.1
    details = {
        "best_pr": best.pr, "best_pc": best.pc, "best_total_s": best.total_s,
        "best_comm_s": best.comm_s, "pure_batch_total_s": best.pure_total_s,
        "pure_batch_comm_s": best.pure_comm_s,
        "grid_16x32_total_s": at16.total_s, "grid_16x32_comm_s": at16.comm_s,
        "grid_16x32_model_comm_conv_s": conv16, "grid_16x32_model_comm_fc_s": fc16,
        "grid_16x32_batch_comm_s": at16.batch_s, "grid_16x32_compute_s": at16.compute_s,
        "grid_16x32_speedup": at16.speedup, "grid_16x32_comm_speedup": at16.comm_speedup,
        "implied_paper_16x32_comm_s": implied_comm,
        "implied_paper_16x32_total_s": implied_total,
        "implied_paper_16x32_model_comm_s": implied_comm - at16.batch_s,
    }
    why = (
        "Not reproduced. gridcost implements Eq. 8 as printed, and the printed equations "
        "reproduce the paper's model-communication bars only approximately (docs/model.md §9): "
        "the fully connected part comes out about 19% lower than the bars, and the conv part of "
        "Fig. 6 follows a form the paper does not give. On the paper's 16×32 grid gridcost charges "
        f"{_fmt(at16.model_s, 4)} s/epoch of model communication, {_fmt(conv16, 4)} s of it in "
        f"the five conv layers and {_fmt(fc16, 3)} s in fc6–fc8, plus "
        f"{_fmt(at16.batch_s, 3)} s of batch communication and {_fmt(at16.compute_s, 4)} s of "
        f"compute: {_fmt(at16.total_s, 4)} s/epoch, {_x(at16.speedup)} of pure batch "
        f"({_fmt(at16.pure_total_s, 4)} s), i.e. slower. The conv model term "
        "3·β·⌈B/Pc⌉·(Pr−1)/Pr·d_i is large because conv outputs are large (d = 290,400 words "
        "per sample for conv1), so the optimum moves to a small Pr. The paper's stated ratios, "
        "divided into gridcost's pure-batch times (whose batch communication matches the "
        "paper's bars to a fraction of a percent, docs/model.md §9), imply "
        f"{_fmt(implied_comm, 3)} s/epoch of "
        f"communication at 16×32 (from 5.0×) and a total of {_fmt(implied_total, 3)} s (from "
        f"2.1×), i.e. about {_fmt(implied_comm - at16.batch_s, 2)} s of model communication "
        f"where gridcost computes {_fmt(at16.model_s, 4)} s.")
    statement = ("B = 2048, P = 512, same grid for all layers (Fig. 6): best 16×32, 2.1× faster "
                 "in total and 5.0× less communication than pure batch 1×512.")
    opt8 = _panel(exp, 8)
    p8 = _best(opt8)
    totals8 = np.where(opt8.table.feasible, opt8.table.total_s, np.inf)
    runner_up = _at(opt8, int(np.argsort(totals8, kind="stable")[1]))
    pure8 = _at(opt8, 0)
    return [
        Claim("fig6-best-grid", "Fig. 6", statement, "Pr of the best grid at P = 512 "
              "(Pc = 512/Pr)", 16.0, "16×32", float(best.pr), best.grid, 0, why, details),
        Claim("fig6-total-speedup", "Fig. 6", statement, "total speedup of the best grid over "
              "1×512 [×]", 2.1, "2.1×", best.speedup, f"{_x(best.speedup)} ({best.grid})", 1,
              why, details),
        Claim("fig6-comm-speedup", "Fig. 6", statement, "communication of 1×512 over that of "
              "the best grid [×]", 5.0, "5.0×", best.comm_speedup,
              f"{_x(best.comm_speedup)} ({best.grid})", 1, why, details),
        Claim("fig6-P8", "Fig. 6", "At P = 8 nothing beats pure batch (Fig. 6).",
              "total speedup of the best grid over 1×8 [×]", 1.0, "1× (pure batch is best)",
              p8.speedup, f"{_x(p8.speedup)} (best {p8.grid})", 1,
              f"Agrees: the best grid at P = 8 is {p8.grid}. The runner-up, "
              f"{runner_up.grid}, saves {_fmt(pure8.batch_s - runner_up.batch_s, 3)} s/epoch "
              f"of gradient all-reduce but adds {_fmt(runner_up.model_s, 4)} s of model "
              "communication, most of it moving conv activations.",
              {"best_pr": p8.pr, "best_pc": p8.pc, "best_total_s": p8.total_s,
               "runner_up_pr": runner_up.pr, "runner_up_model_comm_s": runner_up.model_s,
               "runner_up_batch_comm_s": runner_up.batch_s,
               "pure_batch_comm_s": pure8.batch_s}),
    ]


def _fig7_claims(exp: Experiment) -> list[Claim]:
    best = _best(_panel(exp, 512))
    low, high = best.pure_comm_s / 9.75, best.pure_comm_s / 9.65
    implied = best.pure_comm_s / 9.7
    fc_low, fc_mid, fc_high = (c - best.batch_s for c in (low, implied, high))
    gap_low, gap_high = sorted(abs(best.model_s / fc - 1) * 100 for fc in (fc_low, fc_high))
    details = {
        "best_pr": best.pr, "best_pc": best.pc, "best_total_s": best.total_s,
        "best_comm_s": best.comm_s, "best_model_comm_s": best.model_s,
        "best_batch_comm_s": best.batch_s, "pure_batch_total_s": best.pure_total_s,
        "pure_batch_comm_s": best.pure_comm_s, "implied_paper_comm_s": implied,
        "implied_paper_fc_model_comm_s": fc_mid,
        "fc_model_comm_gap_relative": best.model_s / fc_mid - 1,
        "fc_model_comm_gap_relative_low": best.model_s / fc_high - 1,
        "fc_model_comm_gap_relative_high": best.model_s / fc_low - 1,
    }
    statement = ("B = 2048, P = 512, conv layers pure batch, grid on the fully connected layers "
                 "(Fig. 7): 2.5× total, 9.7× less communication than 1×512.")
    total_why = (f"Agrees to the printed precision: the best grid is {best.grid}, "
                 f"{_fmt(best.total_s, 4)} s/epoch against {_fmt(best.pure_total_s, 4)} s for "
                 "1×512. The total is dominated by compute and batch communication, both of "
                 "which match the paper's bars (docs/model.md §9).")
    comm_why = (
        f"gridcost's ratio is higher. Its best grid {best.grid} communicates "
        f"{_fmt(best.comm_s, 4)} s/epoch ({_fmt(best.model_s, 4)} s model, "
        f"{_fmt(best.batch_s, 4)} s batch); 1×512 communicates {_fmt(best.pure_comm_s, 4)} s. "
        "The printed equations give the fully connected model communication about 19% below "
        "the paper's bars while matching its batch bars (docs/model.md §9); a smaller "
        "communication of the best grid raises the ratio. From the stated 9.7× alone (read as "
        f"9.65–9.75, and assuming the paper's best grid is also {best.grid} — the paper does "
        "not say), "
        f"the paper's best grid communicates {_fmt(implied, 4)} s, i.e. "
        f"{fc_mid:.2f} s of fc model communication where gridcost computes "
        f"{best.model_s:.2f} s: {abs(best.model_s / fc_mid - 1) * 100:.0f}% lower "
        f"({gap_low:.0f}–{gap_high:.0f}% over the rounding range), the same "
        "direction as, and a little smaller than, the ~19% read off the bars.")
    return [
        Claim("fig7-total-speedup", "Fig. 7", statement, "total speedup of the best grid over "
              "1×512 [×]", 2.5, "2.5×", best.speedup, f"{_x(best.speedup)} ({best.grid})", 1,
              total_why, details),
        Claim("fig7-comm-speedup", "Fig. 7", statement, "communication of 1×512 over that of "
              "the best grid [×]", 9.7, "9.7×", best.comm_speedup,
              f"{_x(best.comm_speedup)} ({best.grid})", 1, comm_why, details),
    ]


def _fig8_claims(exp: Experiment) -> list[Claim]:
    opt = _panel(exp, 512)
    best = _best(opt)
    hidden = best.batch_s <= best.compute_s
    why = (f"Agrees to the printed precision: with the gradient all-reduce hidden under the "
           f"{_fmt(best.compute_s, 4)} s/epoch of compute (total = max(compute, batch) + model "
           f"+ halo, docs/model.md §7), the best grid is {best.grid}, "
           f"{_fmt(best.total_s, 4)} s/epoch against {_fmt(best.pure_total_s, 4)} s for 1×512, "
           f"whose {_fmt(best.pure_comm_s, 4)} s of batch communication cannot hide. "
           + (f"On {best.grid} the batch communication ({_fmt(best.batch_s, 3)} s) is fully "
              f"hidden and only the model communication ({_fmt(best.model_s, 3)} s) shows; a "
              "larger Pr only adds model communication, which is not hidden."
              if hidden else ""))
    return [Claim("fig8-total-speedup", "Fig. 8", "Same as Fig. 7 with the gradient "
                  "all-reduce overlapped (Fig. 8): still 2.0×.", "total speedup of the best "
                  "grid over 1×512 [×]", 2.0, "2.0×", best.speedup,
                  f"{_x(best.speedup)} ({best.grid})", 1, why,
                  {"best_pr": best.pr, "best_pc": best.pc, "best_total_s": best.total_s,
                   "best_model_comm_s": best.model_s, "best_batch_comm_s": best.batch_s,
                   "compute_s": best.compute_s, "pure_batch_total_s": best.pure_total_s})]


def _fig9_claims(exp: Experiment) -> list[Claim]:
    claims = []
    first = _best(exp.optima[0])
    for opt in exp.optima:
        best = _best(opt)
        # weak scaling: the work per process is fixed, so ideal is a constant time per iteration
        per_iteration = best.total_s / _epoch(opt.table)
        first_iteration = first.total_s / _epoch(exp.optima[0].table)
        efficiency = first_iteration / per_iteration
        why = (f"The paper states the settings of Fig. 9, no number (docs/model.md §9). "
               f"gridcost: best "
               f"fc-model grid {best.grid}, {_fmt(best.total_s, 4)} s/epoch against "
               f"{_fmt(best.pure_total_s, 4)} s for 1×{opt.P}; weak-scaling efficiency "
               f"(time per iteration at P = {exp.optima[0].P} over that at P = {opt.P}) "
               f"{efficiency:.3f}.")
        claims.append(Claim(
            f"fig9-P{opt.P}", "Fig. 9", "Weak scaling with 4 samples per process, B/P = "
            "512/128, 8192/2048, 32768/8192 (Fig. 9).",
            f"total speedup of the best fc-model grid over 1×{opt.P} at B = {opt.batch} [×]",
            None, f"B/P = {opt.batch}/{opt.P} (setting only)", best.speedup,
            f"{_x(best.speedup)} ({best.grid})", None, why,
            {"P": opt.P, "batch": opt.batch, "best_pr": best.pr, "best_pc": best.pc,
             "best_total_s": best.total_s, "pure_batch_total_s": best.pure_total_s,
             "weak_efficiency": efficiency}))
    return claims


def _domain_ways(opt: Optimum) -> int:
    """How many ways the conv images are split on the best grid (Pr of conv layers)."""
    conv = [i for i, layer in enumerate(opt.table.network.layers) if layer.kind == "conv"]
    assert opt.best is not None
    return int(opt.table.layout.pr[opt.best, conv[0]])


def _fig10_claims(exp: Experiment) -> list[Claim]:
    net, machine = _alexnet()
    ways = [_domain_ways(opt) for opt in exp.optima]
    reached = [opt.P for opt in exp.optima if opt.best is not None]
    top = exp.optima[-1]
    best = _best(top)
    limits = scaling_limits(net, machine, BEYOND_BATCH, PLANS["beyond-batch"],
                            largest=max(BEYOND_PROCESSES))
    limit = limits.feasibility
    pure512 = optimize(net, machine, BEYOND_BATCH, BEYOND_BATCH, PLANS["beyond-batch"],
                       with_limits=False)
    pure_total = float(pure512.pure_batch.total_s[0]) * _epoch(pure512.table)
    statement = ("B = 512 beyond the batch limit (Fig. 10): conv images split 2, 4 and 8 ways, "
                 "reaching P = 4096.")
    times = {f"P{opt.P}_best_total_s": _best(opt).total_s for opt in exp.optima}
    details: dict[str, float] = {
        "feasibility_limit_P": limit.processes, "pure_batch_P512_total_s": pure_total,
        "P4096_best_pr": best.pr, "P4096_best_pc": best.pc,
        "P4096_speedup_vs_pure_batch_P512": pure_total / best.total_s, **times,
    }
    grids = ", ".join(f"{_best(o).grid} at P = {o.P} ({_fmt(_best(o).total_s, 4)} s/epoch)"
                      for o in exp.optima)
    return [
        Claim("fig10-domain-ways", "Fig. 10", statement, "ways the conv images are split at "
              f"P = {top.P}", 8.0, "2, 4, 8", float(ways[-1]), ", ".join(map(str, ways)), 0,
              "Agrees, by construction: plan beyond-batch gives the batch the largest divisor "
              "of P not above B and the image height the rest, P/B = "
              + ", ".join(map(str, ways)) + " at P = "
              + ", ".join(str(o.P) for o in exp.optima) + ".", details),
        Claim("fig10-reach", "Fig. 10", statement, "largest P of Fig. 10 with a feasible grid",
              4096.0, "P = 4096", float(max(reached)), f"P = {max(reached)}", 0,
              f"Agrees: every P shown has a feasible grid; best {grids}. Pure batch stops at "
              f"P = B = {BEYOND_BATCH} ({_fmt(pure_total, 4)} s/epoch); at P = {top.P} the "
              f"plan is {pure_total / best.total_s:.1f}× faster than that. gridcost puts the "
              f"plan's feasibility limit at P = {limit.processes} ({limit.because}).",
              details),
    ]


# --------------------------------------------------------------------------- beyond the paper


@dataclass(frozen=True)
class Study:
    """One network on one machine at B = STUDY_BATCH: every plan's optimum at each P of
    STUDY_PROCESSES (``optima[plan][i]``) and its scaling limits (docs/model.md §8)."""

    network: str
    machine: str
    batch: int
    compute_model: str
    optima: dict[str, tuple[Optimum, ...]]
    limits: dict[str, ScalingLimits]

    @property
    def key(self) -> str:
        return f"beyond_{self.network}_{self.machine}"

    def winner(self, i: int) -> tuple[str, _Best] | None:
        """The fastest plan at STUDY_PROCESSES[i] and its best grid (None if none feasible)."""
        feasible = [(name, _best(opts[i])) for name, opts in self.optima.items()
                    if opts[i].best is not None]
        if not feasible:
            return None
        return min(feasible, key=lambda pair: pair[1].total_s)


def beyond_studies(progress: Progress | None = None, done: int = 0,
                   total: int | None = None) -> tuple[Study, ...]:
    """VGG-16 and ResNet-50 on cori-knl and a100-ib (compute from the flop rate: `auto` picks
    it because cori-knl's measured table is AlexNet's).  ``progress`` hears each study done,
    counted from ``done`` of ``total`` (default: the studies alone)."""
    studies = []
    total = len(STUDY_NETS) * len(STUDY_MACHINES) if total is None else total
    for name in STUDY_NETS:
        net = load_network(name)
        for machine_name in STUDY_MACHINES:
            machine = load_machine(machine_name)
            optima = {plan: tuple(optimize(net, machine, P, STUDY_BATCH, PLANS[plan],
                                           with_limits=False, allow_infeasible=True)
                                  for P in STUDY_PROCESSES) for plan in PLANS}
            limits = {plan: scaling_limits(net, machine, STUDY_BATCH, PLANS[plan])
                      for plan in PLANS}
            compute = optima["model-batch"][0].table.compute_model
            studies.append(Study(name, machine_name, STUDY_BATCH, compute, optima, limits))
            report(progress, done + len(studies), total, f"reproduce: {name} on {machine_name}")
    return tuple(studies)


# --------------------------------------------------------------------------- everything


@dataclass(frozen=True)
class Reproduction:
    """The paper's experiments, its claims checked, and (optionally) the study beyond it."""

    experiments: tuple[Experiment, ...]
    claims: tuple[Claim, ...]
    studies: tuple[Study, ...]


def reproduce(beyond: bool = True, progress: Progress | None = None) -> Reproduction:
    """Run the paper's evaluation (and, with ``beyond``, the VGG-16/ResNet-50 study);
    ``progress`` (costmodel.progress) hears each step done: the paper's figures, each study."""
    total = 1 + (len(STUDY_NETS) * len(STUDY_MACHINES) if beyond else 0)
    report(progress, 0, total, "reproduce: the paper's figures")
    experiments = paper_experiments()
    report(progress, 1, total, "reproduce: the paper's figures")
    return Reproduction(experiments, paper_claims(experiments),
                        beyond_studies(progress, 1, total) if beyond else ())


@dataclass(frozen=True)
class Outputs:
    """What `gridcost reproduce` writes: the files of its output folder, and the document."""

    files: dict[str, str | bytes]
    """{name relative to the folder: text or image bytes} (:func:`artefacts`)."""
    document: str | None
    """The reproduction document (:func:`render_document`), when one was asked for."""


def outputs(folder: str | os.PathLike[str], document: str | os.PathLike[str] | None = None,
            formats: Sequence[str] = (), figures: bool = True, beyond: bool = True,
            progress: Progress | None = None) -> Outputs:
    """Reproduce (:func:`reproduce`) and render everything `gridcost reproduce` writes into
    ``folder``: figures in each of ``formats`` (default png), tables, claims; with ``document``
    (a path), the document linking into ``folder`` from there, its images the first format."""
    repro = reproduce(beyond=beyond, progress=progress)
    chosen = tuple(formats) or ("png",)
    files = artefacts(repro, formats=chosen, figures=figures)
    text = None if document is None else render_document(
        repro, figures=relative_link(document, folder), image=chosen[0])
    return Outputs(files=files, document=text)


def claims_json(claims: Sequence[Claim]) -> str:
    """claims.json: every claim's record, in order, deterministic; floats to
    ``ARTEFACT_DIGITS`` significant digits."""
    return json.dumps({"source": "Gholami et al., SPAA 2018: the claims of its text "
                                 "(docs/model.md §9)",
                       "claims": [significant(c.record()) for c in claims]},
                      indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _signed(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:+.{digits}g}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"


def _rounding(claim: Claim) -> str:
    flag = claim.within_rounding
    return "—" if flag is None else ("yes" if flag else "no")


def claims_table(claims: Sequence[Claim]) -> Table:
    """The claims side by side: paper, gridcost, difference, whether it rounds to the paper."""
    headers = ["figure", "quantity", "paper", "gridcost", "difference", "relative",
               "within rounding"]
    rows = [[c.figure, c.quantity, c.paper_text, c.gridcost_text, _signed(c.difference),
             _percent(c.relative), _rounding(c)] for c in claims]
    return Table(headers, rows,
                 "The paper's headline claims (docs/model.md §9) and gridcost's numbers")


def claims_markdown(claims: Sequence[Claim]) -> str:
    """claims.md: the table, then each claim's explanation."""
    out = [render_markdown(claims_table(claims)), "### Why", ""]
    reasons: dict[str, list[Claim]] = {}
    for c in claims:
        reasons.setdefault(c.explanation, []).append(c)
    for explanation, group in reasons.items():
        what = "; ".join(c.quantity for c in group)
        out.append(f"- **{group[0].figure}, {what}** — {explanation}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- tables


def _grid_rows(opt: Optimum) -> list[list[Any]]:
    """One row per grid of one panel, seconds per epoch (the bars as plotted)."""
    t = opt.table
    scale = _epoch(t)
    feasible = t.feasible
    pure_total = float(opt.pure_batch.total_s[0]) * scale if opt.pure_batch.feasible[0] else None
    pure_comm = (float(opt.pure_batch.total_comm_s[0]) * scale
                 if opt.pure_batch.feasible[0] else None)
    rows = []
    for g in range(len(t.grids)):
        ok = bool(feasible[g])

        def value(array: np.ndarray, g: int = g, ok: bool = ok) -> float | None:
            return float(array[g]) * scale if ok else None

        total, comm = value(t.total_s), value(t.total_comm_s)
        note = "best" if g == opt.best else ("" if ok else "infeasible")
        rows.append([opt.P, opt.batch, int(t.grids.pr[g]), int(t.grids.pc[g]), ok,
                     value(t.compute_s), value(t.comm_s("model")), value(t.comm_s("batch")),
                     value(t.comm_s("domain")), comm, total,
                     pure_total / total if pure_total and total else None,
                     pure_comm / comm if pure_comm and comm else None, note])
    return rows


UNIT = "s/epoch"


def figure_table(exp: Experiment) -> Table:
    """Every bar of every panel of a figure: P, B, grid, the stacked times and speedups."""
    headers = ["P", "B", "Pr", "Pc", "feasible", f"compute [{UNIT}]", f"model comm [{UNIT}]",
               f"batch comm [{UNIT}]", f"domain comm [{UNIT}]", f"comm [{UNIT}]",
               f"total [{UNIT}]", "speedup vs 1×P [×]", "comm ratio 1×P / grid [×]", "note"]
    rows = [row for opt in exp.optima for row in _grid_rows(opt)]
    notes = [f"{PAPER_NET} on {PAPER_MACHINE}, plan {exp.plan}, overlap {exp.overlap}, "
             f"compute {exp.optima[0].table.compute_model}"]
    if exp.overlap == "batch":
        notes.append("total = max(compute, batch comm) + model comm + domain comm")
    if exp.key == "fig10":
        notes.append("1×P is infeasible for P > B: speedups vs 1×P are not applicable")
    return Table(headers, rows, f"{exp.figure}: {exp.title}", notes)


def sweep_table(result: SweepResult, title: str) -> Table:
    """Best grid per P of a sweep (the points of a scaling line), seconds per epoch."""
    headers = ["P", "B", "best Pr×Pc", f"compute [{UNIT}]", f"model comm [{UNIT}]",
               f"batch comm [{UNIT}]", f"domain comm [{UNIT}]", f"total [{UNIT}]",
               f"pure batch 1×P [{UNIT}]", "speedup vs 1×P [×]"]
    rows = []
    for i, P in enumerate(result.processes):
        scale = float(result.iterations_per_epoch[i])
        ok = bool(result.feasible[i])
        pure = float(result.pure_batch_total_s[i])

        def value(array: np.ndarray, i: int = i, ok: bool = ok, scale: float = scale
                  ) -> float | None:
            return float(array[i]) * scale if ok else None

        rows.append([int(P), int(result.batch[i]),
                     f"{result.best_pr[i]}×{result.best_pc[i]}" if ok else "infeasible",
                     value(result.compute_s), value(result.model_comm_s),
                     value(result.batch_comm_s), value(result.domain_comm_s),
                     value(result.total_s), pure * scale if math.isfinite(pure) else None,
                     pure / float(result.total_s[i]) if ok and math.isfinite(pure) else None])
    return Table(headers, rows, title)


def study_table(study: Study) -> Table:
    """Each plan's best grid at each P of the study, with its speedup over pure batch."""
    headers = ["P", "plan", "best Pr×Pc", f"compute [{UNIT}]", f"comm [{UNIT}]",
               f"total [{UNIT}]", f"pure batch 1×P [{UNIT}]", "speedup vs 1×P [×]", "note"]
    rows = []
    for i, P in enumerate(STUDY_PROCESSES):
        won = study.winner(i)
        for plan, opts in study.optima.items():
            opt = opts[i]
            if opt.best is None:
                rows.append([P, plan, "infeasible", None, None, None, None, None, ""])
                continue
            b = _best(opt)
            rows.append([P, plan, b.grid, b.compute_s, b.comm_s, b.total_s, b.pure_total_s,
                         b.speedup, "fastest plan" if won and won[0] == plan else ""])
    return Table(headers, rows, f"{study.network} on {study.machine}, B={study.batch}: best grid "
                 "of each plan", [f"compute: {study.compute_model}"])


def limits_table(study: Study) -> Table:
    """How far each plan scales at B = study.batch (docs/model.md §8)."""
    headers = ["plan", "feasible up to P", "because", "best time stops improving at P",
               "efficiency T(1)/(P·T(P)) < 0.5 from P", f"best time at the limit [{UNIT}]",
               "best grid at the limit"]
    rows = []
    for plan, lim in study.limits.items():
        s = lim.sweep
        last = int(np.flatnonzero(s.feasible)[-1])
        t = float(s.total_s[last] * s.iterations_per_epoch[last])
        rows.append([plan, lim.feasibility.processes, lim.feasibility.because,
                     lim.best_time_processes, lim.efficiency_processes, t,
                     f"{s.best_pr[last]}×{s.best_pc[last]}"])
    return Table(headers, rows, f"{study.network} on {study.machine}, B={study.batch}: scaling "
                 "limits", ["P swept: 1, 2, 4, … up to each plan's feasibility limit; "
                            "'—': never within the sweep"])


# --------------------------------------------------------------------------- figures


def figure(exp: Experiment) -> Any:
    """The matplotlib Figure of one experiment, drawn with costmodel.output.plot."""
    from costmodel.output import plot
    if exp.sweep is None:
        fig = plot.grid_bars(exp.optima)
        fig.suptitle(f"{exp.figure} (gridcost): {exp.title}\n{plot.describe(exp.optima[0].table)}"
                     f"; above the best grid: total (communication) speedup vs 1×P",
                     fontsize=10)
        return fig
    fig, (left, right) = plot.panels(2)
    plot.cost_curves(plot.curves_from_optima(exp.optima, "total"), "total", ax=left,
                     title="total time per epoch by grid (fc-model)")
    plot.scaling({"fc-model, B = 4·P": exp.sweep}, ax=right,
                 title="weak scaling: best time per epoch vs P, B = 4·P")
    fig.suptitle(f"{exp.figure} (gridcost): {exp.title}\n{PAPER_NET} on {PAPER_MACHINE}",
                 fontsize=10)
    return fig


def study_figure(study: Study) -> Any:
    """Best time per epoch vs P of each plan of a study, with its scaling limits."""
    from costmodel.output import plot
    sweeps = {plan: lim.sweep for plan, lim in study.limits.items()}
    return plot.scaling(sweeps, limits=study.limits, title=(
        f"{study.network} on {study.machine}, B={study.batch}: best time per epoch vs P\n"
        f"compute: {study.compute_model}"))


# --------------------------------------------------------------------------- artefacts


def artefacts(repro: Reproduction, formats: Sequence[str] = ("png",), dpi: int = FIGURE_DPI,
              figures: bool = True) -> dict[str, str | bytes]:
    """Everything ``gridcost reproduce`` writes: {relative file name: text or image bytes}.

    Per experiment ``<key>.md``/``.csv``/``.tex`` (plus ``fig9_scaling``), per study the same
    for ``<key>`` and ``<key>_limits``, ``claims.json``, ``claims.md``, ``claims.tex``,
    ``README.md`` (the document with links into this folder), and with ``figures`` one image
    per experiment and study in each of ``formats``.  Every number of the tables and of
    ``claims.json`` has at most ``ARTEFACT_DIGITS`` significant digits.
    """
    out: dict[str, str | bytes] = {}

    def table(name: str, t: Table) -> None:
        t = replace(t, rows=[significant(list(row)) for row in t.rows])
        out[f"{name}.md"] = render_markdown(t)
        out[f"{name}.csv"] = render_csv(t)
        out[f"{name}.tex"] = render_latex(t)

    for exp in repro.experiments:
        table(exp.key, figure_table(exp))
        if exp.sweep is not None:
            table(f"{exp.key}_scaling", sweep_table(exp.sweep, f"{exp.figure}: weak scaling, "
                                                    "best fc-model grid per P, B = 4·P"))
    for study in repro.studies:
        table(study.key, study_table(study))
        table(f"{study.key}_limits", limits_table(study))
    out["claims.json"] = claims_json(repro.claims)
    out["claims.md"] = claims_markdown(repro.claims)
    out["claims.tex"] = render_latex(claims_table(repro.claims))
    out["README.md"] = render_document(repro, figures="", image=formats[0] if formats else "png")
    if figures:
        from costmodel.output import plot
        drawings = [(exp.key, figure(exp)) for exp in repro.experiments]
        drawings += [(study.key, study_figure(study)) for study in repro.studies]
        for key, drawn in drawings:
            for fmt in formats:
                out[f"{key}.{fmt}"] = plot.figure_bytes(drawn, fmt, dpi)
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- the document


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return render_markdown(Table(headers, [significant(list(r)) for r in rows])).rstrip("\n")


def render_document(repro: Reproduction, figures: str = "figures/", image: str = "png") -> str:
    """docs/reproduction.md, rendered from the computed results.

    ``figures`` is the path from the document to the folder the figures and tables are in
    (``"figures/"`` for docs/reproduction.md next to docs/figures).
    """
    exps = {e.key: e for e in repro.experiments}
    claims = {c.key: c for c in repro.claims}
    net, machine = _alexnet()
    fig6, fig7, fig8 = (_best(_panel(exps[k], 512)) for k in ("fig6", "fig7", "fig8"))
    out: list[str] = []
    add = out.append
    add("# Reproducing the paper's evaluation\n")
    add("<!-- Generated by costmodel.output.reproduce.render_document; do not edit by hand. "
        "Regenerate with: gridcost reproduce --out docs/figures --doc docs/reproduction.md -->\n")
    add("This page recomputes the evaluation of Gholami, Azad, Jin, Keutzer, Buluç, *Integrated "
        "Model, Batch and Domain Parallelism in Training Neural Networks* (SPAA 2018), Figs. "
        "6–10, with gridcost and the settings of docs/model.md §9, sets every headline claim "
        "beside gridcost's number, and explains each difference. Nothing was tuned to match: "
        "the numbers are what the printed equations give (docs/model.md maps each equation to "
        "its function). Then it runs the same study for VGG-16 and ResNet-50 on the paper's "
        "machine and on a GPU cluster.\n")
    add("Regenerate everything on this page — figures, tables, `claims.json` and the page "
        "itself — with\n")
    add("```sh\ngridcost reproduce --out docs/figures --doc docs/reproduction.md\n```\n")
    add("`tests/test_reproduce.py` checks that this page equals what the generator produces and "
        "pins every number of `claims.json` (golden file "
        "`tests/data/golden/reproduce_claims.json`, rewritten by `python "
        "tests/regen_golden.py`). The CSV tables and `claims.json` hold numbers to "
        f"{ARTEFACT_DIGITS} significant digits, since the last bits of a float differ between "
        "machines and numpy versions; the tests compare text exactly and numbers to a relative "
        "10⁻⁹ (one unit of the last digit shown in the rounded tables), never to the last bit "
        "(`tests/golden.py`).\n")

    add("## Setup\n")
    add(_md_table(["setting", "value"], [
        ["network", f"`{PAPER_NET}`: grouped AlexNet, {net.params:,} parameters with biases, "
                    f"N = {net.dataset_samples:,} images per epoch"],
        ["machine", f"`{PAPER_MACHINE}`: α = {machine.alpha_s * 1e6:g} µs, bandwidth "
                    f"{machine.bandwidth_Bps / 2**30:g} GiB/s, {machine.word_bytes}-byte words"],
        ["compute", f"{exps['fig6'].optima[0].table.compute_model}: the epoch times implied "
                    "by the compute bars of Figs. 6–10 (docs/model.md §9)"],
        ["collectives", "the paper's: Bruck all-gather, all-reduce as two all-gathers"],
        ["Figs. 6–8", f"B = {PAPER_BATCH}, panels P = "
                      + ", ".join(map(str, PANEL_PROCESSES))],
        ["Fig. 9", "weak scaling, B = 4·P: B/P = "
                   + ", ".join(f"{b}/{p}" for b, p in WEAK_SETTINGS)
                   + " (the scaling line also has the powers of two in between)"],
        ["Fig. 10", f"B = {BEYOND_BATCH}, P = " + ", ".join(map(str, BEYOND_PROCESSES))],
        ["times", "seconds per epoch; redistribution between layouts is not charged (the "
                  "paper's convention)"],
    ]) + "\n")
    add("The paper's text names only P = 8 and P = 512 for the panels of Figs. 6–8 "
        "(docs/model.md §9); the panels here add P = 32 and 128 to fill the powers of four in "
        "between. The plans are those of docs/model.md §5: `model-batch` (Fig. 6), `fc-model` "
        "(Figs. 7–9; Fig. 8 with overlap `batch`), `beyond-batch` (Fig. 10).\n")

    add("## Claims\n")
    add(_md_table(claims_table(repro.claims).headers, claims_table(repro.claims).rows) + "\n")
    add("\"within rounding\": gridcost's value rounds to the paper's as printed (e.g. 2.5× "
        "covers 2.45–2.55). Exact values: "
        f"[`claims.json`]({figures}claims.json).\n")

    def fig(key: str, caption: str) -> None:
        add(f"![{caption}]({figures}{key}.{image})\n")
        add(f"Numbers plotted: [`{key}.csv`]({figures}{key}.csv), "
            f"[`{key}.md`]({figures}{key}.md).\n")

    add("## Fig. 6 — one grid for all layers\n")
    fig("fig6", "Fig. 6 recomputed")
    for key in ("fig6-best-grid", "fig6-P8"):
        add(f"**{claims[key].quantity}.** {claims[key].explanation}\n")
    d = claims["fig6-total-speedup"].details
    add(f"gridcost's best grid at P = 512 is {fig6.grid}, {_x(fig6.speedup)} in total and "
        f"{_x(fig6.comm_speedup)} in communication. The gap to the paper, on its own grid:\n")
    add(_md_table(["16×32 at P = 512", f"gridcost [{UNIT}]",
                   f"implied by the paper's ratios [{UNIT}]"], [
        ["model communication, conv layers", d["grid_16x32_model_comm_conv_s"], None],
        ["model communication, fc layers", d["grid_16x32_model_comm_fc_s"], None],
        ["model communication", d["grid_16x32_model_comm_conv_s"]
         + d["grid_16x32_model_comm_fc_s"], d["implied_paper_16x32_model_comm_s"]],
        ["batch communication", d["grid_16x32_batch_comm_s"], None],
        ["all communication (paper: 1×512 ÷ 5.0)", d["grid_16x32_comm_s"],
         d["implied_paper_16x32_comm_s"]],
        ["total (paper: 1×512 ÷ 2.1)", d["grid_16x32_total_s"],
         d["implied_paper_16x32_total_s"]],
    ]) + "\n")
    add("The implied column divides gridcost's pure-batch times (1×512: "
        f"{_fmt(d['pure_batch_comm_s'], 4)} s of communication, "
        f"{_fmt(d['pure_batch_total_s'], 4)} s in total) by the paper's stated ratios; "
        "the printed equations reproduce the paper's batch bars to a fraction of a percent "
        "(docs/model.md §9), so those denominators are the paper's too. The model-"
        "communication row of that column assumes the 16×32 batch bar matches as well. The "
        "difference is almost all in the conv layers, whose Fig. 6 form the paper does not "
        "print; gridcost keeps the printed Eq. 8 rather than guess it.\n")

    add("## Fig. 7 — convolutions pure batch, grid on the fully connected layers\n")
    fig("fig7", "Fig. 7 recomputed")
    for key in ("fig7-total-speedup", "fig7-comm-speedup"):
        add(f"**{claims[key].quantity}.** {claims[key].explanation}\n")
    add(f"gridcost's best grid: {fig7.grid}, {_x(fig7.speedup)} total, "
        f"{_x(fig7.comm_speedup)} communication.\n")

    add("## Fig. 8 — as Fig. 7, gradient all-reduce overlapped\n")
    fig("fig8", "Fig. 8 recomputed")
    add(f"**{claims['fig8-total-speedup'].quantity}.** "
        f"{claims['fig8-total-speedup'].explanation}\n")
    add(f"gridcost's best grid: {fig8.grid}, {_x(fig8.speedup)} total. The bars stack only "
        "the part of the gradient all-reduce that is not hidden under the computation.\n")

    add("## Fig. 9 — weak scaling, 4 samples per process\n")
    fig9 = [c for c in repro.claims if c.figure == "Fig. 9"]
    fig("fig9", "Fig. 9 recomputed")
    add(f"The scaling line: [`fig9_scaling.csv`]({figures}fig9_scaling.csv). The paper "
        "states the settings of Fig. 9 but no number to compare (docs/model.md §9), so "
        "gridcost's results stand on their own:\n")
    add(_md_table(["B/P", "best grid", f"total [{UNIT}]", f"1×P [{UNIT}]",
                   "speedup vs 1×P [×]", "weak-scaling efficiency"],
                  [[f"{c.details['batch']:.0f}/{c.details['P']:.0f}",
                    f"{c.details['best_pr']:.0f}×{c.details['best_pc']:.0f}",
                    c.details["best_total_s"], c.details["pure_batch_total_s"], c.gridcost,
                    c.details["weak_efficiency"]] for c in fig9]) + "\n")
    prs = sorted({int(c.details["best_pr"]) for c in fig9})
    lowest = min(c.details["weak_efficiency"] for c in fig9)
    add("The weak-scaling efficiency is the time per iteration at P = "
        f"{fig9[0].details['P']:.0f} over that at P. With 4 samples per process the compute "
        "per iteration is constant; the best grid has Pr = "
        + ", ".join(map(str, prs)) + " on the fully connected layers"
        + (" at every P" if len(prs) == 1 else "")
        + f", and the efficiency stays at or above {lowest:.3f}.\n")

    add("## Fig. 10 — B = 512 beyond the batch limit\n")
    fig("fig10", "Fig. 10 recomputed")
    for key in ("fig10-domain-ways", "fig10-reach"):
        add(f"**{claims[key].quantity}.** {claims[key].explanation}\n")

    if repro.studies:
        _document_studies(repro.studies, figures, image, add)
    return "\n".join(out)


def _document_studies(studies: Sequence[Study], figures: str, image: str,
                      add: Any) -> None:
    add("## Beyond the paper: VGG-16 and ResNet-50 on cori-knl and an A100 cluster\n")
    add(f"The same study at B = {STUDY_BATCH} for P = "
        + ", ".join(map(str, STUDY_PROCESSES))
        + ", all four plans, on the paper's `cori-knl` and on `a100-ib` (DGX A100, 25 GB/s "
        "HDR InfiniBand per GPU, α = 5 µs, bf16 words, 125 TFLOP/s sustained). cori-knl's "
        "compute table was measured for AlexNet only, so for these networks the compute comes "
        "from the machine's flop rate (`--compute auto` picks it): 3 × 2 × the forward "
        "multiply-adds per sample over the sustained rate (docs/model.md §7). The scaling "
        "limits sweep P = 1, 2, 4, … up to each plan's feasibility limit (docs/model.md §8).\n")
    for study in studies:
        add(f"### {study.network} on {study.machine}\n")
        add(f"![{study.network} on {study.machine}]({figures}{study.key}.{image})\n")
        rows = []
        for i, P in enumerate(STUDY_PROCESSES):
            won = study.winner(i)
            cells: list[Any] = [P]
            for plan in PLANS:
                opt = study.optima[plan][i]
                cells.append("infeasible" if opt.best is None else
                             f"{_best(opt).grid} ({_x(_best(opt).speedup)})")
            cells.append(won[0] if won else "—")
            rows.append(cells)
        add(_md_table(["P", *(f"{plan}: best grid (speedup vs 1×P)" for plan in PLANS),
                       "fastest"], rows) + "\n")
        rows = [[plan, lim.feasibility.processes, lim.best_time_processes,
                 lim.efficiency_processes] for plan, lim in study.limits.items()]
        add(_md_table(["plan", "feasible up to P", "best time stops improving at P",
                       "efficiency T(1)/(P·T(P)) < 0.5 from P"], rows) + "\n")
        add(_study_summary(study) + "\n")
        add(f"Tables: [`{study.key}.csv`]({figures}{study.key}.csv), "
            f"[`{study.key}_limits.csv`]({figures}{study.key}_limits.csv).\n")


def _study_summary(study: Study) -> str:
    """Sentences read off a study: which plan and grid win, and how far each plan scales."""
    parts = []
    top = len(STUDY_PROCESSES) - 1
    for i in (0, top):
        won = study.winner(i)
        if won is None:
            continue
        plan, b = won
        parts.append(f"At P = {STUDY_PROCESSES[i]} the fastest is {plan} on {b.grid}, a "
                     f"speedup of {_x(b.speedup)} over pure batch.")
    text = " ".join(parts) + " "
    net = load_network(study.network)
    fc = sum(layer.params for layer in net.layers if layer.kind != "conv")
    text += (f"The fully connected layers hold {fc / net.params * 100:.0f}% of "
             f"{study.network}'s {net.params:,} parameters; the gradient all-reduce that "
             "fc-model's grid shrinks is theirs, the convolutions' stays that of pure batch. ")
    pure_batch_wins = [STUDY_PROCESSES[i] for i in range(len(STUDY_PROCESSES))
                       if (won := study.winner(i)) is not None and won[1].pr == 1]
    if pure_batch_wins:
        text += ("Pure batch (Pr = 1) is still the best grid at P = "
                 + ", ".join(map(str, pure_batch_wins)) + ". ")
    stops = {plan: lim.best_time_processes for plan, lim in study.limits.items()}
    reach = {plan: lim.feasibility.processes for plan, lim in study.limits.items()}
    far = max(reach, key=lambda k: reach[k])
    text += (f"Fixed at B = {study.batch}, fc-model stops at P = {reach['fc-model']:,} (its "
             f"convolutions are pure batch); {far} reaches furthest, P = {reach[far]:,}. ")
    stopping = [f"{plan} at P = {p:,}" for plan, p in stops.items() if p is not None]
    text += ("The best time stops improving for " + ", ".join(stopping) + "."
             if stopping else "Within each plan's feasible range the best time keeps "
             "improving (more processes never make it slower), although the parallel "
             "efficiency falls below 0.5 as listed.")
    return text


def relative_link(document: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """The path from ``document``'s directory to ``folder``, with a trailing slash ('' if same)."""
    rel = os.path.relpath(os.path.abspath(folder), os.path.dirname(os.path.abspath(document)))
    rel = rel.replace(os.sep, "/")
    return "" if rel == "." else rel.rstrip("/") + "/"
