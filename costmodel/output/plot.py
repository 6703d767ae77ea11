"""Figures of the cost model: grid bars (the paper's Figs. 6–10), cost curves, scaling, heatmaps.

The only module of gridcost that imports matplotlib.  It never touches pyplot or the global
backend: figures are :class:`matplotlib.figure.Figure` objects drawn with Agg when saved.  Every
public function takes ``ax=None`` (``axes=None`` for several panels), draws into a new figure when
none is given, and returns what it drew.  Times are per ``per`` (``"epoch"`` or ``"iteration"``),
in seconds, read off the library's result objects (:class:`~costmodel.planning.search.Optimum`,
:class:`~costmodel.planning.search.SweepResult`, :class:`~costmodel.engine.cost.CostTable`).
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

from costmodel.engine.cost import TERMS, CostTable
from costmodel.errors import UsageError
from costmodel.planning.search import Optimum, ScalingLimits, SweepResult
from costmodel.units import format_number
from costmodel.units import format_number as _n

Per = Literal["iteration", "epoch"]
What = Literal["communication", "total"]

PANEL_SIZE = (7.0, 4.0)
"""Figure size of one panel, inches."""

PNG_DPI = 150
"""Resolution of every PNG gridcost writes (`plot`, `reproduce`, `calibrate --plot`…)."""

COLOURS = {
    "compute": "#9a9a9a",
    "model": "#0072B2",
    "batch": "#E69F00",
    "domain": "#009E73",
}
"""Fixed colour of each bar segment (Okabe–Ito, readable by colour-blind readers)."""

SEGMENT_LABELS = {
    "compute": "compute",
    "model": "model comm",
    "batch": "batch comm",
    "domain": "domain comm (halo)",
}

LINE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")

SERIES_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#000000",
                  "#8C564B", "#7F7F7F", "#17BECF", "#BCBD22")
"""Colours for many series at once (calibration fits): no two near-identical hues — Okabe–Ito
without its sky blue and yellow, then brown, grey, cyan and olive."""

CLIP_RATIO = 15.0
"""Grid bars: when the tallest bar exceeds this multiple of the best, the axis stops at it and
the cut bars carry their totals, so the best bar stays readable."""

SAVE_FORMATS = ("png", "svg", "pdf")
_METADATA: dict[str, dict[str, str | None]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}


# ---------------------------------------------------------------- helpers


def _check_per(per: str) -> Per:
    if per not in ("epoch", "iteration"):
        raise UsageError(f"per: expected 'epoch' or 'iteration', got {per!r}")
    return "epoch" if per == "epoch" else "iteration"


def _unit(per: str) -> str:
    return f"s/{_check_per(per)}"


def _scale(table: CostTable, per: str) -> np.ndarray:
    """Factor per grid (G,) from seconds per iteration to seconds per ``per``."""
    if _check_per(per) == "epoch":
        return np.asarray(table.iterations_per_epoch, dtype=np.float64)
    return np.ones(len(table.grids))


def _figure_of(ax: Axes) -> Figure:
    fig = ax.get_figure(root=True)
    if not isinstance(fig, Figure):
        raise UsageError("ax: expected an Axes that belongs to a Figure")
    return fig


def _new_axes() -> Axes:
    fig = Figure(figsize=PANEL_SIZE, layout="constrained")
    return fig.add_subplot()


def _grid_label(pr: int, pc: int) -> str:
    return f"{pr}×{pc}"


def _int_label(value: float, _pos: object = None) -> str:
    return format_number(round(value)) if value >= 1 else format_number(value)


def _number_label(value: float, _pos: object = None) -> str:
    """An axis tick by the table rule (costmodel.units.format_number): never an exponent."""
    return format_number(float(value))


def _log2_ticks(ax: Axes, values: np.ndarray, most: int = 10) -> None:
    """Log-2 x axis with integer ticks at powers of two spanning ``values``, at most ``most``."""
    ax.set_xscale("log", base=2)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return
    low = math.floor(math.log2(float(values.min())))
    high = math.ceil(math.log2(float(values.max())))
    step = max(1, math.ceil((high - low + 1) / most))
    ticks = [2.0**k for k in range(low, high + 1, step)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(_int_label))
    ax.xaxis.set_minor_locator(NullLocator())


def _log_y(ax: Axes) -> None:
    """Log y axis labelled at 1, 2 and 5 × powers of ten, in plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(_number_label))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _title(ax: Axes, text: str, width: int = 80) -> None:
    """Set a title of fontsize 10, wrapping lines longer than ``width`` characters."""
    lines = [textwrap.fill(line, width) for line in text.split("\n")]
    ax.set_title("\n".join(lines), fontsize=10)


def describe(table: CostTable) -> str:
    """What a table is about, for titles, from the user's own settings: ``"alexnet on
    cori-knl, plan fc-model"`` (the paper's figure numbers belong to `reproduce` only)."""
    text = f"{table.network.name} on {table.machine.name}, plan {table.plan.name}"
    if table.overlap == "batch":
        text += ", gradient all-reduce overlapped"
    if table.overlap == "backward":
        text += ", overlap backward"
    return text


def _unique(values: Sequence[str]) -> str:
    return " | ".join(dict.fromkeys(values))


def _ratio(numerator: float, denominator: float) -> str:
    if denominator > 0 and math.isfinite(numerator / denominator):
        return f"{numerator / denominator:.1f}×"
    return "–"


# ---------------------------------------------------------------- 1. grid bars


def _panels(n: int) -> tuple[Figure, list[Axes]]:
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows + 0.6),
                 layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for extra in axes[n:]:
        extra.set_visible(False)
    return fig, axes[:n]


def _bar_segments(table: CostTable, per: str) -> dict[str, np.ndarray]:
    """Heights (G,) of the stacked segments in ``per``; they add up to the grid's total time.

    With overlap ``batch`` (docs/model.md §7) only the part of the gradient all-reduce that
    sticks out of the computation, max(0, batch − compute), is drawn.
    """
    scale = _scale(table, per)
    heights = {"compute": table.compute_s * scale}
    for term in TERMS:
        heights[term] = table.comm_s(term) * scale
    if table.overlap == "batch":
        heights["batch"] = np.maximum(heights["batch"] - heights["compute"], 0.0)
    if table.schedule is not None:  # overlap 'backward': the schedule's exposed all-reduce
        heights["batch"] = (table.schedule.wait_s + table.schedule.tail_s) * scale
    return heights


def _draw_bars(ax: Axes, opt: Optimum, per: str) -> set[str]:
    table = opt.table
    grids = table.grids
    n = len(grids)
    x = np.arange(n, dtype=np.float64)
    feasible = table.feasible
    heights = _bar_segments(table, per)
    bottom = np.zeros(n)
    drawn: set[str] = set()
    for name in ("compute", *TERMS):
        h = heights[name]
        ax.bar(x[feasible], h[feasible], bottom=bottom[feasible], width=0.7,
               color=COLOURS[name], label=SEGMENT_LABELS[name], zorder=2)
        if (h[feasible] > 0).any():
            drawn.add(name)
        bottom = bottom + h
    total = table.total_s * _scale(table, per)
    top = float(total[feasible].max()) if feasible.any() else 1.0
    best_total = float(total[opt.best]) if opt.best is not None else top
    clipped = best_total > 0 and top > CLIP_RATIO * best_total
    if clipped:
        top = CLIP_RATIO * best_total
        for g in np.flatnonzero(feasible & (total > top * 1.16)):
            ax.text(float(x[g]), top * 1.14, f"{format_number(float(total[g]))} ↑",
                    rotation=90, ha="center", va="top", fontsize=8, color="white",
                    fontweight="bold", zorder=4)
    ax.set_ylim(0.0, top * 1.16)
    ax.yaxis.set_major_formatter(FuncFormatter(_number_label))
    for g in np.flatnonzero(~feasible):
        ax.text(float(x[g]), top * 0.02, "infeasible", rotation=90, ha="center", va="bottom",
                fontsize=8, color="#555555", style="italic", zorder=3)
    labels = [_grid_label(int(r), int(c)) for r, c in zip(grids.pr, grids.pc)]
    ax.set_xticks(x, labels, fontsize=8, rotation=45 if n > 10 else 0,
                  ha="right" if n > 10 else "center", rotation_mode="anchor")
    ax.set_xlim(-0.6, n - 0.4)
    best = opt.best
    if best is not None:
        ax.get_xticklabels()[best].set_fontweight("bold")
        if feasible[0]:
            comm = table.total_comm_s * _scale(table, per)
            text = (f"{_ratio(float(total[0]), float(total[best]))} "
                    f"({_ratio(float(comm[0]), float(comm[best]))})")
        else:
            text = "best"
        ax.annotate(text, (float(x[best]), float(total[best])), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=9,
                    fontweight="bold", zorder=4)
    _title(ax, f"P={opt.P}, B={opt.batch}" + (f"; axis cut at {CLIP_RATIO:g}× the best, taller "
                                               "bars labelled with their total" if clipped
                                               else ""))
    ax.set_xlabel("grid Pr×Pc (model/domain × batch processes)", fontsize=9)
    ax.set_ylabel(f"time [{_unit(per)}]", fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    return drawn


def grid_bars(optima: Sequence[Optimum], per: str = "epoch",
              axes: Sequence[Axes] | None = None) -> Figure:
    """Stacked bars of compute and model, batch, domain communication for every Pr×Pc grid.

    The paper's Figs. 6–10: one panel per Optimum (one P), one bar per grid of that P (1×P
    leftmost), infeasible grids left empty and marked.  Above the best grid: "X× (Y×)", its total
    and communication speedup over the leftmost bar (1×P) of the panel.  Heights in seconds per
    ``per``; with overlap ``batch`` only the exposed part of the gradient all-reduce is stacked,
    so each bar's top is the grid's total time.  Returns the Figure.
    """
    per = _check_per(per)
    optima = list(optima)
    if not optima:
        raise UsageError("grid_bars: expected at least one Optimum")
    if axes is None:
        fig, panels = _panels(len(optima))
    else:
        panels = list(axes)
        if len(panels) != len(optima):
            raise UsageError(f"axes: expected {len(optima)} Axes, one per Optimum, "
                             f"got {len(panels)}")
        fig = _figure_of(panels[0])
    drawn: set[str] = set()
    for ax, opt in zip(panels, optima):
        drawn |= _draw_bars(ax, opt, per)
    shown = [name for name in ("compute", *TERMS) if name in drawn or name == "compute"]
    labels = dict(SEGMENT_LABELS)
    if any(opt.table.overlap in ("batch", "backward") for opt in optima):
        labels["batch"] = "batch comm not hidden under compute"
    handles = [Patch(color=COLOURS[name], label=labels[name]) for name in shown]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9,
               frameon=False)
    subject = _unique([describe(opt.table) for opt in optima])
    fig.suptitle(f"{subject}\ntime per {per} by grid; above the best grid: total "
                 "(communication) speedup vs 1×P", fontsize=10)
    return fig


# ---------------------------------------------------------------- 2. cost curves


def curves_from_optima(optima: Sequence[Optimum], what: str = "communication",
                       per: str = "epoch") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"P=512, B=2048": (Pr, seconds)}`` for :func:`cost_curves`, feasible grids only.

    ``what`` is ``"communication"`` (all three terms) or ``"total"``; seconds per ``per``.  The
    plan is added to the label when the optima mix plans.
    """
    if what not in ("communication", "total"):
        raise UsageError(f"what: expected 'communication' or 'total', got {what!r}")
    optima = list(optima)
    several_plans = len({opt.table.plan.name for opt in optima}) > 1
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for opt in optima:
        table = opt.table
        seconds = table.total_comm_s if what == "communication" else table.total_s
        seconds = seconds * _scale(table, per)
        keep = table.feasible
        label = f"P={opt.P}, B={opt.batch}"
        if several_plans:
            label += f", {table.plan.name}"
        curves[label] = (table.grids.pr[keep].copy(), np.asarray(seconds[keep]))
    return curves


def cost_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                what: str = "communication", per: str = "epoch", ax: Axes | None = None,
                title: str | None = None) -> Axes:
    """Communication (or total) time against Pr, one line per label, best point starred.

    ``curves`` maps a label to (Pr values, seconds per ``per``) of equal length, e.g. from
    :func:`curves_from_optima`.  Log-2 x axis; log y axis when the values span more than a
    factor 20.  Returns the Axes.
    """
    if what not in ("communication", "total"):
        raise UsageError(f"what: expected 'communication' or 'total', got {what!r}")
    per = _check_per(per)
    if ax is None:
        fig = Figure(figsize=(PANEL_SIZE[0], PANEL_SIZE[1] + 1.0), layout="constrained")
        ax = fig.add_subplot()
    everything: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    for i, (label, (pr, seconds)) in enumerate(curves.items()):
        pr = np.asarray(pr, dtype=np.float64)
        seconds = np.asarray(seconds, dtype=np.float64)
        if pr.shape != seconds.shape:
            raise UsageError(f"curve {label!r}: Pr and seconds differ in shape "
                             f"({pr.shape} vs {seconds.shape})")
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        ax.plot(pr, seconds, marker=MARKERS[i % len(MARKERS)], markersize=5, color=colour,
                label=label, zorder=2)
        finite = np.isfinite(seconds)
        if finite.any():
            best = int(np.argmin(np.where(finite, seconds, np.inf)))
            ax.plot([pr[best]], [seconds[best]], marker="*", markersize=15, color=colour,
                    markeredgecolor="black", markeredgewidth=0.8, linestyle="none", zorder=3)
            everything.append(seconds[finite])
        xs.append(pr)
    _log2_ticks(ax, np.concatenate(xs) if xs else np.array([]))
    values = np.concatenate(everything) if everything else np.array([])
    positive = values[values > 0]
    if positive.size and positive.size == values.size and positive.max() > 20 * positive.min():
        _log_y(ax)
    name = "communication" if what == "communication" else "total time"
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="*", markersize=12, color="#777777",
                          markeredgecolor="black", linestyle="none", label=f"least {name}"))
    # below the axes, never over the curves
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncols=min(3, len(handles)), frameon=False)
    ax.set_xlabel("Pr (processes on the model/domain split; Pc = P/Pr on the batch)",
                  fontsize=9)
    ax.set_ylabel(f"{name} [{_unit(per)}]", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(color="#e0e0e0", linewidth=0.6)
    _title(ax, title if title is not None else f"{name} per {per} by grid")
    return ax


# ---------------------------------------------------------------- 3. scaling


def _time_of(sweep: SweepResult, per: str) -> np.ndarray:
    scale = sweep.iterations_per_epoch if per == "epoch" else np.ones(sweep.processes.size)
    return np.asarray(sweep.total_s * scale, dtype=np.float64)


def _batch_text(sweeps: Sequence[SweepResult]) -> str:
    batches = np.concatenate([s.batch for s in sweeps]) if sweeps else np.array([])
    if batches.size and (batches == batches[0]).all():
        return f"B={int(batches[0])}"
    ratios = np.concatenate([s.batch / s.processes for s in sweeps]) if sweeps else np.array([])
    if ratios.size and (ratios == ratios[0]).all():
        return f"B={_n(ratios[0])}·P"
    return "B varies"


def scaling(sweeps: Mapping[str, SweepResult], per: str = "epoch",
            limits: Mapping[str, ScalingLimits] | None = None, ax: Axes | None = None,
            title: str | None = None) -> Axes:
    """Best time per ``per`` against P for each plan, and pure batch (1×P), log–log.

    With ``limits`` (keyed like ``sweeps``): a dashed vertical line at each plan's feasibility
    limit when it lies within the plotted P, and a ringed point where its best time stops
    improving (docs/model.md §8; the legend says "improving throughout" when it never stops
    within the sweep).  Infeasible P are left out.  Returns the Axes.
    """
    per = _check_per(per)
    if ax is None:
        fig = Figure(figsize=(PANEL_SIZE[0], PANEL_SIZE[1] + 1.4), layout="constrained")
        ax = fig.add_subplot()
    limits = limits or {}
    plotted: list[np.ndarray] = []
    pure: dict[int, float] = {}
    for s in sweeps.values():
        scale = s.iterations_per_epoch if per == "epoch" else np.ones(s.processes.size)
        for p, t in zip(s.processes, s.pure_batch_total_s * scale):
            if np.isfinite(t):
                pure.setdefault(int(p), float(t))
    colours: dict[str, str] = {}
    for i, (label, s) in enumerate(sweeps.items()):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        colours[label] = colour
        time = _time_of(s, per)
        ok = np.isfinite(time)
        text = label
        lim = limits.get(label)
        if lim is not None:
            stop = lim.best_time_processes
            text += (f": feasible to P={lim.feasibility.processes:,}, "
                     + ("improving throughout" if stop is None
                        else f"stops improving at P={stop:,}"))
        # later lines thinner, so plans that coincide (fc-model and beyond-batch up to P = B)
        # stay visible one inside the other
        ax.plot(s.processes[ok], time[ok], marker=MARKERS[i % len(MARKERS)],
                markersize=max(3.0, 8.0 - 1.3 * i), linewidth=max(0.8, 2.8 - 0.6 * i),
                color=colour, label=text, zorder=2 + 0.01 * i)
        plotted.append(s.processes[ok].astype(np.float64))
    if pure:
        ps = np.array(sorted(pure), dtype=np.float64)
        # drawn last and on top: where a plan's best grid is 1×P the two coincide
        ax.plot(ps, [pure[int(p)] for p in ps], color="black", linestyle=":",
                linewidth=1.4, marker="x", markersize=6, markeredgewidth=1.4,
                label="pure batch (1×P), drawn on top", zorder=6)
        plotted.append(ps)
    xs = np.concatenate(plotted) if plotted else np.array([1.0])
    low, high = float(xs.min()), float(xs.max())
    any_line = any_ring = False
    for label, lim in limits.items():
        colour = colours.get(label, "black")
        at = lim.feasibility.processes
        if low <= at <= high:
            ax.axvline(at, color=colour, linestyle="--", linewidth=1.0, zorder=1)
            any_line = True
        stop = lim.best_time_processes
        if stop is None:
            continue
        source = sweeps.get(label, lim.sweep)
        where = np.flatnonzero(source.processes == stop)
        if where.size == 0:
            source = lim.sweep
            where = np.flatnonzero(source.processes == stop)
        if where.size:
            y = float(_time_of(source, per)[where[0]])
            if np.isfinite(y):
                ax.plot([stop], [y], marker="o", markersize=13, markerfacecolor="none",
                        markeredgecolor=colour, markeredgewidth=1.6, linestyle="none",
                        zorder=3)
                any_ring = True
    _log_y(ax)
    _log2_ticks(ax, xs)
    handles, _ = ax.get_legend_handles_labels()
    if any_line:
        handles.append(Line2D([], [], color="#555555", linestyle="--", linewidth=1.0,
                              label="feasibility limit"))
    if any_ring:
        handles.append(Line2D([], [], marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor="#555555", linestyle="none",
                              label="best time stops improving"))
    # below the axes, never over the curves
    longest = max((len(str(h.get_label())) for h in handles), default=0)
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncols=1 if longest > 42 or len(handles) < 2 else 2, frameon=False)
    ax.set_xlabel("P (processes)", fontsize=9)
    ax.set_ylabel(f"best total time [{_unit(per)}]", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(color="#e0e0e0", linewidth=0.6, which="major")
    batch = _batch_text(list(sweeps.values()))
    _title(ax, title if title is not None else f"best time per {per} vs P, {batch}")
    return ax


# ---------------------------------------------------------------- 4. layer heatmap

ANNOTATE_CELLS = 120
"""Cells are annotated with their value when the heatmap has at most this many."""

MAX_ROWS = 24
"""The heatmap shows at most this many rows: deeper networks are summed by stage or block
(the dotted prefix of the layer names), else the heaviest layers plus one row 'other'."""

MAX_GRID_LABELS = 24
"""At most this many grid labels on the x axis (every k-th beyond)."""


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def heatmap_rows(names: Sequence[str], weight: np.ndarray,
                 most: int = MAX_ROWS) -> tuple[list[str], list[np.ndarray], str]:
    """Rows of a layer heatmap: (labels, layer indices of each row, how they were made).

    One row per layer when there are at most ``most``.  Else the layers are summed by the
    dotted prefix of their names (``layer3.12.conv2`` → ``layer3.12``, or ``layer3``), the
    deepest prefix that gives at most ``most`` rows, in order of first appearance; when no
    prefix does, the ``most`` − 1 layers with the largest ``weight`` (their communication)
    keep a row each, in network order, and the rest are summed in a last row 'other'.
    """
    n = len(names)
    if n <= most:
        return list(names), [np.array([i]) for i in range(n)], ""
    depth = max(name.count(".") for name in names)
    for level in range(depth, 0, -1):
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(".".join(name.split(".")[:level]), []).append(i)
        if 1 < len(groups) <= most:
            labels = [f"{key} ({len(v)} layers)" if len(v) > 1 else key
                      for key, v in groups.items()]
            return (labels, [np.array(v) for v in groups.values()],
                    f"{n} layers summed by {'stage' if level == 1 else 'block'} "
                    "(name prefix)")
    keep = np.sort(np.argsort(-weight, kind="stable")[:most - 1])
    rest = np.setdiff1d(np.arange(n), keep)
    return ([names[i] for i in keep] + [f"other ({rest.size} layers)"],
            [np.array([i]) for i in keep] + [rest],
            f"the {most - 1} of {n} layers with the most communication; the rest summed")


def layer_heatmap(table: CostTable, per: str = "epoch", ax: Axes | None = None,
                  max_rows: int = MAX_ROWS) -> Axes:
    """Communication of every weighted layer (rows) on every grid Pr×Pc (columns) of one P.

    Colour: seconds per ``per`` (all three terms) on a log scale; zero cells and infeasible
    grids are masked (grey), infeasible grids also hatched.  Cells carry their value when there
    are at most ANNOTATE_CELLS of them.  A network deeper than ``max_rows`` weighted layers is
    shown in at most ``max_rows`` rows (:func:`heatmap_rows`: summed by stage or block, else the
    heaviest layers plus 'other'), which the title says, so the figure stays a bounded size.
    Returns the Axes.
    """
    per = _check_per(per)
    if len(np.unique(table.grids.p)) != 1 or len(np.unique(table.grids.batch)) != 1:
        raise UsageError("layer_heatmap: expected the grids of one P and one batch")
    scale = _scale(table, per)[:, None]
    seconds = sum((table.seconds(t) for t in TERMS), np.zeros(table.code.shape)) * scale
    per_layer = seconds.T  # (L, G)
    feasible = table.feasible
    weight = np.where(feasible[None, :], per_layer, 0.0).sum(axis=1)
    names = [layer.name for layer in table.network.layers]
    labels, members, grouping = heatmap_rows(names, weight, max(2, max_rows))
    values = np.stack([per_layer[m].sum(axis=0) for m in members])  # (rows, G)
    if ax is None:
        fig = Figure(figsize=(PANEL_SIZE[0], max(PANEL_SIZE[1], 1.6 + 0.32 * len(labels))),
                     layout="constrained")
        ax = fig.add_subplot()
    fig = _figure_of(ax)
    masked = np.ma.masked_where((values <= 0) | ~feasible[None, :], values)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e8e8e8")
    shown = masked.compressed()
    if shown.size:
        vmin, vmax = float(shown.min()), float(shown.max())
        if vmax <= vmin:
            vmin, vmax = vmin / 10, vmax * 10
    else:
        vmin, vmax = 1e-6, 1.0
    norm = LogNorm(vmin=vmin, vmax=vmax)
    image = ax.imshow(masked, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    n_rows, n_grids = values.shape
    for column in np.flatnonzero(~feasible):
        ax.add_patch(Rectangle((float(column) - 0.5, -0.5), 1.0, n_rows, fill=False, hatch="//",
                               edgecolor="#9a9a9a", linewidth=0.0))
    if values.size <= ANNOTATE_CELLS:
        for i in range(n_rows):
            for g in range(n_grids):
                if not feasible[g]:
                    continue
                v = float(values[i, g])
                if v <= 0:
                    text, colour = "0", "#555555"
                else:
                    text = format_number(float(f"{v:.2g}"))
                    colour = "white" if norm(v) < 0.55 else "black"
                ax.text(g, i, text, ha="center", va="center", fontsize=8, color=colour)
    grids = table.grids
    step = max(1, math.ceil(n_grids / MAX_GRID_LABELS))
    ticks = np.arange(0, n_grids, step)
    ax.set_xticks(ticks, [_grid_label(int(grids.pr[g]), int(grids.pc[g])) for g in ticks],
                  fontsize=8, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(np.arange(n_rows), labels, fontsize=8)
    ax.set_xlabel("grid Pr×Pc (bold: fastest in total; hatched: infeasible)"
                  + (f"; every {_ordinal(step)} grid labelled" if step > 1 else ""), fontsize=9)
    ax.set_ylabel("weighted layer" if not grouping else "weighted layers (summed rows)",
                  fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"communication [{_unit(per)}], log scale", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(_number_label))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    if feasible.any():
        best = int(np.argmin(np.where(feasible, table.total_s, np.inf)))
        if best % step == 0:
            ax.get_xticklabels()[best // step].set_fontweight("bold")
    _title(ax, f"{describe(table)}\ncommunication per layer, P={int(grids.p[0])}, "
               f"B={int(grids.batch[0])}" + (f"\nrows: {grouping}" if grouping else ""))
    return ax


# ---------------------------------------------------------------- saving


def layer_bars(layers: Sequence[Mapping[str, object]], unit: str, ax: Axes | None = None,
               title: str | None = None) -> Axes:
    """Stacked bars of each layer's model, batch and domain communication of one grid.

    ``layers``: the ``layers`` records of `gridcost layers --format json` (keys ``layer``,
    ``model_comm_s``, ``batch_comm_s``, ``domain_comm_s`` in ``unit``).  Returns the Axes.
    """
    ax = _new_axes() if ax is None else ax
    names = [str(r["layer"]) for r in layers]
    x = np.arange(len(names), dtype=np.float64)
    bottom = np.zeros(len(names))
    for term in TERMS:
        h = np.array([float(r[f"{term}_comm_s"]) for r in layers])  # type: ignore[arg-type]
        ax.bar(x, h, bottom=bottom, width=0.7, color=COLOURS[term], label=SEGMENT_LABELS[term],
               zorder=2)
        bottom = bottom + h
    many = len(names) > 12
    ax.set_xticks(x, names, fontsize=8, rotation=90 if many else 45, ha="center" if many
                  else "right", rotation_mode="default" if many else "anchor")
    ax.set_xlabel("layer", fontsize=9)
    ax.set_ylabel(f"communication [{unit}]", fontsize=9)
    ax.yaxis.set_major_formatter(FuncFormatter(_number_label))
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, frameon=False)
    if title is not None:
        _title(ax, title)
    return ax


def save(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` to ``path`` as PNG (150 dpi), SVG or PDF, chosen by the extension.

    Output is reproducible: no dates or software versions in the metadata and a fixed SVG hash
    salt, so saving the same figure twice gives identical bytes.  Raises UsageError for any
    other extension.
    """
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in SAVE_FORMATS:
        raise UsageError(f"{os.fspath(path)}: expected a file name ending in .png, .svg or "
                         f".pdf, got {Path(path).suffix or 'no extension'!r}")
    with matplotlib.rc_context({"svg.hashsalt": "gridcost", "pdf.compression": 6}):
        fig.savefig(path, format=ext, dpi=PNG_DPI, metadata=_METADATA[ext])


def panels(n: int) -> tuple[Figure, list[Axes]]:
    """A new Figure with ``n`` panels in two columns (one column for n = 1), and its Axes."""
    if n < 1:
        raise UsageError(f"panels: expected at least one panel, got {n}")
    return _panels(n)


def figure_of(drawn: Figure | Axes) -> Figure:
    """The Figure of what a plotting function returned (a Figure, or an Axes of one)."""
    return drawn if isinstance(drawn, Figure) else _figure_of(drawn)


def figure_bytes(drawn: Figure | Axes, fmt: str, dpi: int = PNG_DPI) -> bytes:
    """The figure (or the figure of an Axes) encoded as ``fmt`` (png, svg, pdf), as bytes.

    The same reproducible settings as :func:`save` (no dates or versions in the metadata, fixed
    SVG hash salt): drawing and encoding the same figure twice gives identical bytes.
    """
    if fmt not in SAVE_FORMATS:
        raise UsageError(f"format: expected one of {', '.join(SAVE_FORMATS)}, got {fmt!r}")
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "gridcost", "pdf.compression": 6}):
        figure_of(drawn).savefig(buffer, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return buffer.getvalue()


# ---------------------------------------------------------------- measurements


def _bytes_label(value: float, _pos: object = None) -> str:
    """A message size tick: ``1 KiB``, ``64 MiB`` (binary prefixes, no exponent)."""
    for prefix, factor in (("Gi", 2.0**30), ("Mi", 2.0**20), ("Ki", 2.0**10)):
        if value >= factor:
            return f"{format_number(value / factor)} {prefix}B"
    return f"{format_number(value)} B"


def calibration_fits(points: Sequence[Mapping[str, object]],
                     axes: Sequence[Axes] | None = None) -> list[Axes]:
    """Measured collective times and their fits (top, log-log) and relative residuals (bottom).

    ``points`` are the records of costmodel.measure.calibration.points_records: per point the
    collective, p, bytes, measured_s, series_fit_s and joint_fit_s.  One colour and marker per
    series (SERIES_COLOURS: no two alike); dots measured, solid line the series' own fit
    a + b·n, dashed the profile's joint α, β — each style named in the legend.
    """
    if axes is None:
        fig = Figure(figsize=(PANEL_SIZE[0], PANEL_SIZE[1] * 1.9), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.0, 1.0])
    else:
        top, bottom = axes[0], axes[1]
    keys = sorted({(str(p["collective"]), int(p["p"])) for p in points})  # type: ignore[call-overload]
    handles: list[Line2D] = []
    for i, (collective, procs) in enumerate(keys):
        rows = sorted((p for p in points if p["collective"] == collective
                       and p["p"] == procs), key=lambda p: float(p["bytes"]))  # type: ignore[arg-type]
        x = np.array([float(p["bytes"]) for p in rows])  # type: ignore[arg-type]
        measured = np.array([float(p["measured_s"]) for p in rows])  # type: ignore[arg-type]
        own = np.array([float(p["series_fit_s"]) for p in rows])  # type: ignore[arg-type]
        joint = np.array([float(p["joint_fit_s"]) for p in rows])  # type: ignore[arg-type]
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        marker = MARKERS[i % len(MARKERS)]
        top.plot(x, measured * 1e6, marker, color=colour, markersize=4, linestyle="none")
        top.plot(x, own * 1e6, "-", color=colour, linewidth=1.2)
        top.plot(x, joint * 1e6, "--", color=colour, linewidth=1.0)
        bottom.plot(x, (own - measured) / measured * 100, marker + "-", color=colour,
                    markersize=3, linewidth=0.8)
        handles.append(Line2D([], [], marker=marker, color=colour, markersize=5, linewidth=1.2,
                              label=f"{collective}, p={procs}"))
    handles += [Line2D([], [], marker="o", color="#555555", linestyle="none", markersize=4,
                       label="dots: measured"),
                Line2D([], [], color="#555555", linewidth=1.2, label="solid: fit a + b·n"),
                Line2D([], [], color="#555555", linewidth=1.0, linestyle="--",
                       label="dashed: joint α, β")]
    top.set_xscale("log", base=2)
    top.set_yscale("log")
    top.yaxis.set_major_formatter(FuncFormatter(_number_label))
    top.yaxis.set_minor_formatter(NullFormatter())
    top.set_ylabel("time [µs]")
    top.legend(handles=handles, fontsize="small", loc="upper left", ncols=2)
    top.grid(color="#e0e0e0", linewidth=0.6)
    bottom.axhline(0.0, color="black", linewidth=0.6)
    bottom.set_xscale("log", base=2)
    bottom.xaxis.set_major_locator(LogLocator(base=4.0))
    bottom.xaxis.set_major_formatter(FuncFormatter(_bytes_label))
    bottom.xaxis.set_minor_locator(NullLocator())
    bottom.tick_params(axis="x", labelrotation=45)
    bottom.set_xlabel("message size n·word [bytes]")
    bottom.set_ylabel("residual of a + b·n [%]")
    bottom.grid(color="#e0e0e0", linewidth=0.6)
    _title(top, "calibration: measured collective times and α–β fits")
    return [top, bottom]


P_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
"""Marker of each process count in the validation plot, in increasing P."""


def _place_labels(ax: Axes, points: Sequence[tuple[float, float, str]],
                  limits: tuple[float, float]) -> None:
    """Label points of a log–log square plot without overlaps: each label takes the first of
    several offsets whose box meets no label placed before it (a greedy, good-enough layout);
    labels that fit nowhere are left out rather than printed over each other."""
    low, high = math.log10(limits[0]), math.log10(limits[1])

    def frac(v: float) -> float:
        return (math.log10(v) - low) / (high - low)

    char_w, height = 0.0105, 0.04  # in axes fractions, fontsize 7 on a 7 × 4 inch panel
    offsets = ((6, 2), (6, -9), (-6, 2), (-6, -9), (6, 11), (-6, 11), (6, -18), (-6, -18))
    placed: list[tuple[float, float, float, float]] = []
    for x, y, text in sorted(points, key=lambda p: (p[0], p[1])):
        width = char_w * len(text)
        for dx, dy in offsets:
            fx, fy = frac(x) + dx / 430.0, frac(y) + dy / 240.0
            x0 = fx if dx > 0 else fx - width
            box = (x0, fy, x0 + width, fy + height)
            if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3]
                   for b in placed):
                placed.append(box)
                ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                            fontsize=7, ha="left" if dx > 0 else "right", va="bottom",
                            color="#333333")
                break


def predicted_vs_measured(rows: Sequence[Mapping[str, object]], ax: Axes | None = None) -> Axes:
    """Predicted against measured communication time per grid (log-log, the diagonal y = x).

    ``rows`` are validation records with plan, P, pr, pc, predicted_comm_s, measured_comm_s.
    Colour: the plan; marker: P (both in the legend); the predicted best grid of each (P, plan)
    is drawn filled, the others open; each point is labelled with its grid where the label
    does not overlap another.  Records with an ``in_step_predicted_comm_s`` (the in-step
    calibration, leave-one-run-out) add a grey × at that prediction.
    """
    if ax is None:
        fig = Figure(figsize=(PANEL_SIZE[0], PANEL_SIZE[1] + 1.5), layout="constrained")
        ax = fig.add_subplot()
    def series(r: Mapping[str, object]) -> str:
        """Colour key: the plan, and the mapping of the grid on the nodes when measured."""
        return f"plan {r['plan']}" + (f", {r['mapping']}" if r.get("mapping") else "")

    plans = sorted({series(r) for r in rows})
    processes = sorted({int(r["P"]) for r in rows})  # type: ignore[call-overload]
    colour_of = {name: LINE_COLOURS[i % len(LINE_COLOURS)] for i, name in enumerate(plans)}
    marker_of = {P: P_MARKERS[i % len(P_MARKERS)] for i, P in enumerate(processes)}
    values: list[float] = []
    labels: list[tuple[float, float, str]] = []
    for r in rows:
        pred, meas = float(r["predicted_comm_s"]), float(r["measured_comm_s"])  # type: ignore[arg-type]
        values += [pred, meas]
        colour = colour_of[series(r)]
        filled = bool(r.get("predicted_best", False))
        ax.plot(meas * 1e3, pred * 1e3, marker_of[int(r["P"])], color=colour,  # type: ignore[call-overload]
                markerfacecolor=colour if filled else "none", markeredgewidth=1.4,
                markersize=8, zorder=3)
        labels.append((meas * 1e3, pred * 1e3, f"{r['pr']}×{r['pc']}"))
        in_step = r.get("in_step_predicted_comm_s")
        if in_step is not None:
            values.append(float(in_step))  # type: ignore[arg-type]
            ax.plot(meas * 1e3, float(in_step) * 1e3, "x", color="#777777",  # type: ignore[arg-type]
                    markersize=5, zorder=2)
    handles: list[Line2D | Patch] = [Patch(color=colour_of[name], label=name)
                                     for name in plans]
    handles += [Line2D([], [], marker=marker_of[P], color="#555555", linestyle="none",
                       markersize=7, markerfacecolor="none", label=f"P = {P}")
                for P in processes]
    handles.append(Line2D([], [], marker="o", color="#555555", linestyle="none", markersize=7,
                          label="filled: predicted best grid"))
    if any(r.get("in_step_predicted_comm_s") is not None for r in rows):
        handles.append(Line2D([], [], marker="x", color="#777777", linestyle="none",
                              label="in-step calibration (leave-one-run-out)"))
    if values:
        low, high = min(values) * 1e3 / 1.5, max(values) * 1e3 * 1.5
        ax.plot([low, high], [low, high], "-", color="black", linewidth=0.6, zorder=1)
        ax.fill_between([low, high], [low * 0.85, high * 0.85], [low * 1.15, high * 1.15],
                        color="#cccccc", alpha=0.4, zorder=0)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        handles += [Line2D([], [], color="black", linewidth=0.6, label="y = x"),
                    Patch(color="#cccccc", alpha=0.4, label="±15 %")]
        _place_labels(ax, labels, (low, high))
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(_number_label))
        axis.set_minor_formatter(FuncFormatter(
            lambda v, _pos: format_number(v) if str(int(v / 10 ** math.floor(math.log10(v))))
            in "25" else ""))
    ax.set_xlabel("measured communication per iteration [ms]")
    ax.set_ylabel("predicted communication per iteration [ms]")
    ax.grid(color="#e0e0e0", linewidth=0.6, which="both")
    ax.legend(handles=handles, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncols=3, frameon=False)
    _title(ax, "gridcost validate: predicted vs measured communication")
    return ax


# --------------------------------------------------------------------------- timeline

TIMELINE_LANES = ("gradient", "pr", "compute")
"""Lanes of the timeline, bottom to top: gradient all-reduces, blocking collectives, compute.
The two communication lanes are one channel per process (docs/schedule.md §4)."""

MIN_EVENT_FRACTION = 0.002
"""Collectives shorter than this fraction of the iteration are drawn this wide (and said so)."""

TIMELINE_COLOURS = {
    "forward": "#56B4E9",
    "backward": "#0072B2",
    "pr": "#E69F00",
    "halo": "#CC79A7",
    "gradient": "#009E73",
    "exposed": "#D55E00",
}
"""Okabe–Ito colours of the timeline's event kinds."""


def _time_unit(total_s: float) -> tuple[float, str]:
    if total_s < 1e-3:
        return 1e6, "µs"
    if total_s < 10.0:
        return 1e3, "ms"
    return 1.0, "s"


def timeline(tl: Any) -> Figure:
    """One iteration as a Gantt chart (docs/schedule.md §5): a compute lane (forward light,
    backward dark), the blocking Pr-group collectives and halos, and the gradient all-reduce
    buckets — the two communication lanes are one channel — with every stretch of exposed
    communication (compute idle) hatched in vermilion across the compute lane and over the
    exposed part of each all-reduce.  ``tl``: a costmodel.engine.schedule.Timeline."""
    scale, unit = _time_unit(max(tl.total_s, 1e-12))
    fig = Figure(figsize=(12.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    lanes = {"compute": 2.0, "pr": 1.0, "gradient": 0.0}
    height = 0.7
    total = tl.total_s * scale
    min_label = total * 0.045
    thinnest = total * MIN_EVENT_FRACTION
    widened = False
    for e in tl.events:
        x0, width = e.start_s * scale, (e.end_s - e.start_s) * scale
        if width <= 0:
            continue
        if e.lane in ("pr", "gradient") and width < thinnest:
            width, widened = thinnest, True  # visible, if not to scale
        if e.lane == "wait":
            ax.add_patch(Rectangle((x0, lanes["compute"] - height / 2), width, height,
                                   facecolor="white", edgecolor=TIMELINE_COLOURS["exposed"],
                                   hatch="////", linewidth=0.8))
            continue
        y = lanes[e.lane]
        if e.lane == "compute":
            colour = TIMELINE_COLOURS["forward" if e.what == "forward" else "backward"]
        elif e.lane == "pr":
            colour = TIMELINE_COLOURS["halo" if e.what.startswith("halo") else "pr"]
        else:
            colour = TIMELINE_COLOURS["gradient"]
        ax.add_patch(Rectangle((x0, y - height / 2), width, height, facecolor=colour,
                               edgecolor="white", linewidth=0.4))
        if e.lane == "gradient" and e.exposed_s > 0:
            _hatch_exposed(ax, e, tl.events, scale, y, height)
        label = _event_label(e)
        if width >= min_label and label:
            dark = colour in (TIMELINE_COLOURS["backward"], TIMELINE_COLOURS["gradient"])
            ax.text(x0 + width / 2, y, label, ha="center", va="center", fontsize=7,
                    color="white" if dark else "black", clip_on=True)
    fwd = tl.forward_end_s * scale
    ax.axvline(fwd, color="#555555", linewidth=0.8, linestyle=":")
    ax.text(fwd, 2.5, " backward →", fontsize=8, va="bottom", ha="left", color="#555555")
    ax.text(0, 2.5, "forward →", fontsize=8, va="bottom", ha="left", color="#555555")
    ax.set_xlim(0, total * 1.01)
    ax.set_ylim(-0.6, 2.85)
    ax.set_yticks([lanes["gradient"], lanes["pr"], lanes["compute"]])
    ax.set_yticklabels(["gradient all-reduce\n(buckets, Pc / P group)",
                        "blocking collectives\n(Pr group, halos)", "compute"], fontsize=8)
    ax.set_xlabel(f"time within one iteration [{unit}]")
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    ax.set_axisbelow(True)
    r = tl.record()
    title = (f"{tl.network} on {tl.machine}: {tl.pr}×{tl.pc} grid (P={tl.P}, B={tl.batch}), "
             f"plan {tl.plan}, overlap {tl.overlap}"
             + (f", buckets {tl.bucket.label}" if tl.overlap == "backward" else ""))
    summary = (f"iteration {_n(total)} {unit} = compute {_n(r['compute_s'] * scale)} + exposed "
               f"communication {_n(r['exposed_comm_s'] * scale)} {unit} (blocking "
               f"{_n(r['blocking_comm_s'] * scale)}, waits for the channel "
               f"{_n(r['wait_s'] * scale)}, tail after the last compute "
               f"{_n(r['tail_s'] * scale)})\ngradient all-reduce "
               f"{_n(r['gradient_comm_s'] * scale)} {unit} in {r['buckets']} buckets, "
               f"{_n(r['hidden_gradient_s'] * scale)} {unit} of it hidden under the compute")
    ax.set_title(f"{title}\n{summary}", fontsize=9)
    handles = [Patch(facecolor=TIMELINE_COLOURS["forward"], label="forward compute"),
               Patch(facecolor=TIMELINE_COLOURS["backward"], label="backward compute (ΔX, ΔW)"),
               Patch(facecolor=TIMELINE_COLOURS["pr"], label="Pr all-gather Y / all-reduce ΔX"),
               Patch(facecolor=TIMELINE_COLOURS["halo"], label="halo exchange"),
               Patch(facecolor=TIMELINE_COLOURS["gradient"], label="gradient bucket all-reduce"),
               Patch(facecolor="white", edgecolor=TIMELINE_COLOURS["exposed"], hatch="////",
                     label="exposed communication (compute idle)")]
    note = "the two communication lanes are one channel per process: they never overlap"
    if widened:
        note += (f"; collectives shorter than {MIN_EVENT_FRACTION:.1%} of the iteration are "
                 "drawn that wide")
    if tl.note:
        note += f"; {tl.note}"
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=6,
              fontsize=7.5, frameon=False, title=note, title_fontsize=7)
    return fig


def _event_label(e: Any) -> str:
    if e.lane == "gradient":
        name = str(e.what).replace("all-reduce bucket ", "b")
        if not e.layers:
            return name
        if len(e.layers) == 1:
            return f"{name}: {e.layers[0]}"
        return f"{name}: {len(e.layers)} layers"
    return str(e.layers[0]) if e.layers else ""


def _hatch_exposed(ax: Axes, e: Any, events: Sequence[Any], scale: float, y: float,
                   height: float) -> None:
    """Hatch the parts of all-reduce ``e`` that run while the compute is idle."""
    for w in events:
        if w.lane != "wait":
            continue
        a, b = max(e.start_s, w.start_s), min(e.end_s, w.end_s)
        if b > a:
            ax.add_patch(Rectangle((a * scale, y - height / 2), (b - a) * scale, height,
                                   facecolor="none", edgecolor=TIMELINE_COLOURS["exposed"],
                                   hatch="////", linewidth=0.0))


# --------------------------------------------------------------------------- published runs


def published_efficiency(rows: Sequence[Mapping[str, Any]], ax: Axes | None = None) -> Axes:
    """Predicted against measured scaling efficiency of published runs (docs/validation.md,
    "Published runs"): one marker per overlap mode, the diagonal and a ±5-point band.

    ``rows`` are the run records of :func:`costmodel.measure.published.record` (measured_efficiency,
    predicted_efficiency per mode)."""
    if ax is None:
        ax = Figure(figsize=(6.4, 5.8), layout="constrained").add_subplot()
    modes = ("backward", "none", "batch")  # drawn in this order: open markers on top
    styles = {"none": ("s", "#D55E00"), "batch": ("^", "#E69F00"),
              "backward": ("o", "#0072B2")}
    low = 100.0
    for mode in modes:
        marker, colour = styles[mode]
        x = np.array([100 * float(r["measured_efficiency"]) for r in rows])
        y = np.array([100 * float(r["predicted_efficiency"][mode]) for r in rows])
        low = min(low, float(x.min()), float(y.min()))
        ax.plot(x, y, marker, color=colour, markerfacecolor="none" if mode != "backward"
                else colour, markersize=8 if mode == "batch" else 6, alpha=0.85,
                label=mode)
    low = max(0.0, math.floor((low - 3) / 5) * 5)
    top = 102.0
    ax.plot([low, top], [low, top], "-", color="black", linewidth=0.6, label="y = x")
    ax.fill_between([low, top], [low - 5, top - 5], [low + 5, top + 5], color="#cccccc",
                    alpha=0.4, label="±5 points")
    ax.set_xlim(low, top)
    ax.set_ylim(low, top)
    ax.set_aspect("equal")
    ax.set_xlabel("measured scaling efficiency [%]")
    ax.set_ylabel("predicted scaling efficiency [%]")
    ax.legend(fontsize="small", title="overlap mode", title_fontsize="small",
              loc="lower right")
    _title(ax, f"published runs ({len(rows)}): predicted vs measured scaling efficiency")
    return ax
