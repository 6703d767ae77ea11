"""Tests of costmodel.output.plot: what each figure draws, its labels and units, reproducible saving."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text

from costmodel.engine.plans import PLANS
from costmodel.errors import UsageError
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.output import plot
from costmodel.planning.search import Optimum, ScalingLimits, Settings, optimize, scaling_limits

NET = load_network("alexnet")
MACHINE = load_machine("cori-knl")
PS = (8, 512)


@pytest.fixture(scope="module")
def optima() -> list[Optimum]:
    return [optimize(NET, MACHINE, P, 2048, PLANS["model-batch"], with_limits=False)
            for P in PS]


@pytest.fixture(scope="module")
def limits() -> dict[str, ScalingLimits]:
    return {name: scaling_limits(NET, MACHINE, 2048, PLANS[name], largest=4096)
            for name in ("model-batch", "fc-model")}


def _bars(ax: Axes) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def _texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text) if isinstance(t, Text))


# ---------------------------------------------------------------- grid_bars


def test_grid_bars_one_panel_per_optimum_four_segments_per_feasible_grid(
        optima: list[Optimum]) -> None:
    fig = plot.grid_bars(optima)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(PS)
    for ax, opt in zip(panels, optima):
        n_feasible = int(opt.table.feasible.sum())
        containers = _bars(ax)
        assert len(containers) == 4  # compute, model, batch, domain
        assert all(len(c) == n_feasible for c in containers)
        assert ax.get_title() == f"P={opt.P}, B=2048"
        assert ax.get_ylabel() == "time [s/epoch]"
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels[0] == f"1×{opt.P}" and labels[-1] == f"{opt.P}×1"
        assert len(labels) == len(opt.table.grids)


def test_grid_bars_marks_infeasible_grids_and_the_best_speedup(optima: list[Optimum]) -> None:
    fig = plot.grid_bars(optima)
    big = fig.axes[1]  # P=512: Pr > 96 filters of conv1 is infeasible
    opt = optima[1]
    n_infeasible = int((~opt.table.feasible).sum())
    assert n_infeasible == 3
    assert [t.get_text() for t in big.texts].count("infeasible") == n_infeasible
    total = opt.table.total_s
    comm = opt.table.total_comm_s
    assert opt.best is not None
    expected = f"{total[0] / total[opt.best]:.1f}× ({comm[0] / comm[opt.best]:.1f}×)"
    assert expected in [t.get_text() for t in big.texts]
    # the top of the best bar is its total time per epoch
    top = max(c[opt.best].get_y() + c[opt.best].get_height() for c in _bars(big))
    assert top == pytest.approx(total[opt.best] * opt.table.iterations_per_epoch[0])


def test_grid_bars_suptitle_legend_and_per_iteration(optima: list[Optimum]) -> None:
    fig = plot.grid_bars(optima[:1], per="iteration")
    assert fig.axes[0].get_ylabel() == "time [s/iteration]"
    suptitle = fig.get_suptitle()
    assert "alexnet on cori-knl" in suptitle and "model-batch" in suptitle
    assert len(fig.legends) == 1
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["compute", "model comm", "batch comm"]  # no domain split in this plan


def test_grid_bars_overlap_stacks_to_the_total() -> None:
    opt = optimize(NET, MACHINE, 512, 2048, PLANS["fc-model"], Settings(overlap="batch"),
                   with_limits=False)
    fig = plot.grid_bars([opt], per="iteration")
    containers = _bars(fig.axes[0])
    tops = [max(c[g].get_y() + c[g].get_height() for c in containers)
            for g in range(len(opt.table.grids))]
    np.testing.assert_allclose(tops, opt.table.total_s)
    assert "not hidden" in _texts(fig)


def test_grid_bars_with_no_feasible_grid() -> None:
    opt = optimize(NET, MACHINE, 4096, 2048, PLANS["fc-model"], with_limits=False,
                   allow_infeasible=True)
    assert opt.best is None
    ax = plot.grid_bars([opt]).axes[0]
    assert [t.get_text() for t in ax.texts] == ["infeasible"] * len(opt.table.grids)
    assert all(len(c) == 0 for c in _bars(ax))


def test_grid_bars_draws_into_given_axes(optima: list[Optimum]) -> None:
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert plot.grid_bars(optima, axes=list(axes)) is fig
    with pytest.raises(UsageError, match="expected 2 Axes"):
        plot.grid_bars(optima, axes=[axes[0]])
    with pytest.raises(UsageError, match="per"):
        plot.grid_bars(optima, per="hour")


# ---------------------------------------------------------------- cost_curves


def test_curves_from_optima_keeps_feasible_grids(optima: list[Optimum]) -> None:
    curves = plot.curves_from_optima(optima, "communication")
    assert list(curves) == ["P=8, B=2048", "P=512, B=2048"]
    pr, seconds = curves["P=512, B=2048"]
    table = optima[1].table
    np.testing.assert_array_equal(pr, table.grids.pr[table.feasible])
    np.testing.assert_allclose(
        seconds, (table.total_comm_s * table.iterations_per_epoch)[table.feasible])
    with pytest.raises(UsageError, match="what"):
        plot.curves_from_optima(optima, "memory")


def test_cost_curves_one_line_per_label_with_best_point(optima: list[Optimum]) -> None:
    ax = plot.cost_curves(plot.curves_from_optima(optima, "total"), "total")
    assert isinstance(ax, Axes)
    lines = [line for line in ax.get_lines() if line.get_label() in ("P=8, B=2048",
                                                                     "P=512, B=2048")]
    assert len(lines) == 2
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 2
    best = optima[1].best
    assert best is not None
    assert np.asarray(stars[1].get_xdata())[0] == optima[1].table.grids.pr[best]
    assert ax.get_xscale() == "log"
    assert ax.get_ylabel() == "total time [s/epoch]"
    assert "Pr" in ax.get_xlabel()


def test_cost_curves_into_given_axes_and_shape_check() -> None:
    ax = Figure().add_subplot()
    curves = {"a": (np.array([1, 2, 4]), np.array([3.0, 2.0, 5.0]))}
    assert plot.cost_curves(curves, ax=ax, per="iteration", title="t [s]") is ax
    assert ax.get_ylabel() == "communication [s/iteration]"
    with pytest.raises(UsageError, match="shape"):
        plot.cost_curves({"a": (np.array([1, 2]), np.array([1.0]))})


# ---------------------------------------------------------------- scaling


def test_scaling_lines_limits_and_labels(limits: dict[str, ScalingLimits]) -> None:
    sweeps = {name: lim.sweep for name, lim in limits.items()}
    # best times improve up to each limit here; pretend fc-model stopped at P=512 to see a ring
    limits = dict(limits, **{"fc-model": replace(limits["fc-model"], best_time_processes=512)})
    expected_rings = sum(lim.best_time_processes is not None for lim in limits.values())
    ax = plot.scaling(sweeps, limits=limits)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "model-batch: feasible to P=196,608, improving throughout" in labels
    assert "fc-model: feasible to P=2,048, stops improving at P=512" in labels
    assert "pure batch (1×P), drawn on top" in labels
    # fc-model's limit P=2048 lies in the plotted range (up to 4096); model-batch's does not
    verticals = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [float(np.asarray(line.get_xdata())[0]) for line in verticals] == [2048.0]
    rings = [line for line in ax.get_lines() if line.get_markerfacecolor() == "none"]
    assert len(rings) == expected_rings >= 1
    ring = next(line for line in rings if np.asarray(line.get_xdata())[0] == 512)
    sweep = limits["fc-model"].sweep
    at = int(np.flatnonzero(sweep.processes == 512)[0])
    assert np.asarray(ring.get_ydata())[0] == pytest.approx(
        sweep.total_s[at] * sweep.iterations_per_epoch[at])
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_ylabel() == "best total time [s/epoch]"
    assert ax.get_xlabel() == "P (processes)"
    assert "B=2048" in ax.get_title()
    legend_box = ax.get_legend()
    assert legend_box is not None
    legend = [t.get_text() for t in legend_box.get_texts()]
    assert "feasibility limit" in legend and "best time stops improving" in legend


def test_scaling_without_limits(limits: dict[str, ScalingLimits]) -> None:
    sweep = limits["fc-model"].sweep
    ax = plot.scaling({"fc-model": sweep}, per="iteration")
    line = ax.get_lines()[0]
    ok = np.isfinite(sweep.total_s)
    np.testing.assert_allclose(np.asarray(line.get_ydata()), sweep.total_s[ok])
    assert ax.get_ylabel() == "best total time [s/iteration]"


# ---------------------------------------------------------------- layer_heatmap


def test_layer_heatmap_rows_columns_mask_and_colourbar(optima: list[Optimum]) -> None:
    table = optima[1].table
    ax = plot.layer_heatmap(table)
    image = ax.get_images()[0]
    data = image.get_array()
    assert data is not None
    assert data.shape == (len(NET.layers), len(table.grids))
    assert np.ma.getmaskarray(data)[:, ~table.feasible].all()
    assert [t.get_text() for t in ax.get_yticklabels()] == [layer.name for layer in NET.layers]
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["1×512", "2×256"]
    colourbar = image.colorbar
    assert colourbar is not None
    assert "[s/epoch]" in colourbar.ax.get_ylabel()
    assert "P=512, B=2048" in ax.get_title() and "alexnet on cori-knl" in ax.get_title()
    n_annotated = len(NET.layers) * int(table.feasible.sum())
    assert len(ax.texts) == n_annotated


def test_layer_heatmap_wants_one_p(limits: dict[str, ScalingLimits]) -> None:
    from costmodel.engine.cost import evaluate
    from costmodel.engine.grids import Grids

    grids = Grids(np.array([1, 1]), np.array([4, 8]), np.array([64, 64]))
    with pytest.raises(UsageError, match="one P"):
        plot.layer_heatmap(evaluate(NET, MACHINE, grids, PLANS["fc-model"]))


# ---------------------------------------------------------------- save


@pytest.fixture(scope="module")
def small_figure() -> Figure:
    ax = Figure(figsize=(3, 2)).add_subplot()
    plot.cost_curves({"P=8": (np.array([1, 2, 4, 8]), np.array([4.0, 2.0, 3.0, 9.0]))}, ax=ax)
    return plot._figure_of(ax)


@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_save_formats_and_reproducible_bytes(small_figure: Figure, tmp_path: Path,
                                             ext: str) -> None:
    first, second = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
    plot.save(small_figure, first)
    plot.save(small_figure, str(second))
    data = first.read_bytes()
    magic = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[ext]
    assert data.startswith(magic)
    assert data == second.read_bytes()
    if ext == "png":  # 150 dpi: the IHDR width is the figure width in inches × 150
        assert int.from_bytes(data[16:20], "big") == round(small_figure.get_figwidth() * 150)


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_redrawn_figures_save_identically(tmp_path: Path, ext: str) -> None:
    curves = {"P=8": (np.array([1, 2, 4, 8]), np.array([4.0, 2.0, 3.0, 9.0]))}
    paths = [tmp_path / f"{i}.{ext}" for i in range(2)]
    for path in paths:
        ax = Figure(figsize=(3, 2)).add_subplot()
        plot.save(plot._figure_of(plot.cost_curves(curves, ax=ax)), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()


@pytest.mark.parametrize("name", ["figure.jpg", "figure", "figure.png.txt"])
def test_save_rejects_unknown_extensions(small_figure: Figure, tmp_path: Path,
                                         name: str) -> None:
    with pytest.raises(UsageError, match=r"expected a file name ending in \.png, \.svg or \.pdf"):
        plot.save(small_figure, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_importing_plot_leaves_pyplot_alone() -> None:
    code = ("import sys, costmodel.output.plot; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- bytes and panels


def test_figure_bytes_of_an_axes_equals_that_of_its_figure(optima: list[Optimum]) -> None:
    fig = plot.grid_bars(optima[:1])
    ax = fig.axes[0]
    assert plot.figure_bytes(ax, "svg") == plot.figure_bytes(fig, "svg")
    assert plot.figure_of(ax) is fig


def test_figure_bytes_rejects_an_unknown_format(optima: list[Optimum]) -> None:
    with pytest.raises(UsageError, match=r"^format: expected one of png, svg, pdf, got 'gif'$"):
        plot.figure_bytes(plot.grid_bars(optima[:1]), "gif")


def test_panels_gives_n_visible_axes() -> None:
    fig, axes = plot.panels(3)
    assert len(axes) == 3 and sum(ax.get_visible() for ax in fig.axes) == 3
    with pytest.raises(UsageError, match=r"^panels: expected at least one panel, got 0$"):
        plot.panels(0)


def test_predicted_vs_measured_marks_in_step_predictions() -> None:
    from costmodel.output.plot import predicted_vs_measured

    rows = [{"plan": "fc-model", "P": 2, "pr": 1, "pc": 2, "predicted_comm_s": 0.02,
             "measured_comm_s": 0.025, "predicted_best": False},
            {"plan": "fc-model", "P": 2, "pr": 2, "pc": 1, "predicted_comm_s": 0.01,
             "measured_comm_s": 0.015, "predicted_best": True}]
    plain = predicted_vs_measured(rows)
    labels = [t.get_text() for t in plain.get_legend().get_texts()]
    assert "in-step calibration (leave-one-run-out)" not in labels
    with_in_step = predicted_vs_measured([dict(r, in_step_predicted_comm_s=0.5 * float(
        r["predicted_comm_s"])) for r in rows])  # type: ignore[arg-type]
    labels = [t.get_text() for t in with_in_step.get_legend().get_texts()]
    assert "in-step calibration (leave-one-run-out)" in labels
    crosses = [line for line in with_in_step.get_lines() if line.get_marker() == "x"
               and len(line.get_xdata()) == 1]
    points = sorted((float(c.get_xdata()[0]), float(c.get_ydata()[0])) for c in crosses)
    assert np.allclose(points, [(15.0, 5.0), (25.0, 10.0)])
    assert with_in_step.get_ylim()[0] <= 5.0  # the axes include the in-step points


# ---------------------------------------------------------------- what people expect to see


def _draw(fig: Figure) -> object:
    """Lay out and draw ``fig`` with Agg; its renderer (for text and legend extents)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG from its IHDR chunk."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_a_deep_network_heatmap_is_summed_by_stage_and_stays_small() -> None:
    net = load_network("resnet152")
    opt = optimize(net, MACHINE, 64, 2048, PLANS["model-batch"], with_limits=False)
    ax = plot.layer_heatmap(opt.table)
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) <= plot.MAX_ROWS
    assert rows[0] == "conv1" and rows[-1] == "fc"
    assert "layer3 (109 layers)" in rows
    assert "rows: 156 layers summed by stage" in ax.get_title()
    image = ax.get_images()[0].get_array()
    assert image is not None and image.shape == (len(rows), len(opt.table.grids))
    # the sums keep the total: every feasible column adds up to the grid's communication
    scale = opt.table.iterations_per_epoch[:, None]
    full = sum(opt.table.seconds(t) for t in ("model", "batch", "domain")) * scale
    assert np.allclose(np.asarray(image).sum(axis=0), full.sum(axis=1), rtol=1e-12)
    width, height = _png_size(plot.figure_bytes(ax, "png"))
    assert width <= 1200 and height <= 1800  # was 1050 × 9540 with one row per layer
    colourbar = plot.figure_of(ax).axes[-1]
    _draw(plot.figure_of(ax))
    ticks = [t.get_text() for t in colourbar.get_yticklabels() if t.get_text()]
    assert ticks and not any("$" in t or "e" in t for t in ticks)


def test_many_grids_get_at_most_max_grid_labels() -> None:
    net = load_network("resnet50")
    opt = optimize(net, MACHINE, 5040, 5040, PLANS["model-batch"], with_limits=False)
    ax = plot.layer_heatmap(opt.table)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(opt.table.grids) == 60 and len(labels) <= plot.MAX_GRID_LABELS
    assert "every 3rd grid labelled" in ax.get_xlabel()


def test_heatmap_rows_by_block_then_heaviest_plus_other() -> None:
    names = ["conv1", *[f"layer{s}.{b}.conv{c}" for s in (1, 2) for b in range(4)
                        for c in (1, 2)], "fc"]
    labels, members, how = plot.heatmap_rows(names, np.ones(len(names)), most=12)
    assert labels[:2] == ["conv1", "layer1.0 (2 layers)"] and len(labels) == 10
    assert "by block" in how and sum(m.size for m in members) == len(names)
    flat = [f"fc{i}" for i in range(30)]
    weight = np.arange(30, dtype=np.float64)
    labels, members, how = plot.heatmap_rows(flat, weight, most=5)
    assert labels == ["fc26", "fc27", "fc28", "fc29", "other (26 layers)"]
    assert members[-1].tolist() == list(range(26)) and "the rest summed" in how


def test_one_dpi_everywhere() -> None:
    from costmodel.output import reproduce
    assert reproduce.FIGURE_DPI == plot.PNG_DPI


def test_a_users_plot_carries_no_paper_figure_number(optima: list[Optimum]) -> None:
    fig = plot.grid_bars(optima)
    assert "Fig." not in _texts(fig) and "Eq." not in _texts(fig)
    assert "Fig." not in plot.describe(optima[0].table)


def test_a_wide_range_cuts_the_axis_and_labels_the_cut_bars() -> None:
    net = load_network("vgg16")
    opt = optimize(net, MACHINE, 64, 2048, PLANS["model-batch"], with_limits=False)
    fig = plot.grid_bars([opt])
    ax = fig.axes[0]
    assert opt.best is not None
    best = float(opt.table.total_s[opt.best] * opt.table.iterations_per_epoch[opt.best])
    assert ax.get_ylim()[1] <= plot.CLIP_RATIO * best * 1.2
    assert "axis cut at 15× the best" in ax.get_title()
    worst = float((opt.table.total_s * opt.table.iterations_per_epoch).max())
    from costmodel.units import format_number

    assert f"{format_number(worst)} ↑" in [t.get_text() for t in ax.texts]


def test_a_narrow_range_keeps_the_whole_axis(optima: list[Optimum]) -> None:
    fig = plot.grid_bars(optima[:1])
    assert "cut" not in fig.axes[0].get_title()
    assert not any("↑" in t.get_text() for t in fig.axes[0].texts)


def test_scaling_legend_below_the_axes_and_pure_batch_on_top(
        limits: dict[str, ScalingLimits]) -> None:
    sweeps = {name: lim.sweep for name, lim in limits.items()}
    ax = plot.scaling(sweeps, limits=limits)
    legend = ax.get_legend()
    assert legend is not None
    fig = plot.figure_of(ax)
    renderer = _draw(fig)
    assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0  # type: ignore[arg-type]
    pure = next(line for line in ax.get_lines() if str(line.get_label()).startswith("pure"))
    plans = [line for line in ax.get_lines() if str(line.get_label()).split(":")[0] in sweeps]
    assert all(pure.get_zorder() > line.get_zorder() for line in plans)


def test_tick_labels_never_use_an_exponent(optima: list[Optimum],
                                           limits: dict[str, ScalingLimits]) -> None:
    sweeps = {name: lim.sweep for name, lim in limits.items()}
    drawn = [plot.scaling(sweeps, limits=limits), *plot.grid_bars(optima).axes,
             plot.cost_curves(plot.curves_from_optima(optima, "total"), "total")]
    for ax in drawn:
        _draw(plot.figure_of(ax))
        for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
            assert "e+" not in label.get_text() and "e-" not in label.get_text()
            assert "10^" not in label.get_text() and "$" not in label.get_text()


CALIBRATION_POINTS = [
    {"collective": c, "p": p, "bytes": float(n), "measured_s": 1e-3 + n * 1e-9,
     "series_fit_s": 1e-3 + n * 1.1e-9, "joint_fit_s": 9e-4 + n * 1e-9}
    for c in ("allgather", "allreduce") for p in (2, 3, 4) for n in (4, 1024, 2**20)
] + [{"collective": "p2p", "p": 2, "bytes": float(n), "measured_s": 5e-4 + n * 1e-9,
      "series_fit_s": 5e-4 + n * 1e-9, "joint_fit_s": 6e-4 + n * 1e-9} for n in (4, 2**20)]


def test_calibration_fits_distinct_colours_and_labelled_line_styles() -> None:
    top, bottom = plot.calibration_fits(CALIBRATION_POINTS)
    legend = top.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert {"solid: fit a + b·n", "dashed: joint α, β", "dots: measured"} <= set(labels)
    series = [h for h, text in zip(legend.legend_handles, labels) if ", p=" in text]
    colours = [h.get_color() for h in series]  # type: ignore[union-attr]
    assert len(series) == 7 and len(set(colours)) == 7
    dashed = [line for line in top.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 7 and len({line.get_color() for line in dashed}) == 7
    assert top.get_ylabel() == "time [µs]" and "[bytes]" in bottom.get_xlabel()


VALIDATION_ROWS = [
    {"plan": plan, "P": P, "pr": pr, "pc": P // pr, "predicted_comm_s": 0.01 * P + 0.001 * pr,
     "measured_comm_s": 0.011 * P + 0.001 * pr, "predicted_best": pr == 1}
    for plan in ("fc-model", "model-batch") for P in (2, 4) for pr in (1, 2, 4) if pr <= P]


def test_validation_plot_tells_p_apart_by_marker_and_legend() -> None:
    ax = plot.predicted_vs_measured(VALIDATION_ROWS)
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert {"P = 2", "P = 4", "plan fc-model", "plan model-batch"} <= set(labels)
    marker_of = {}
    for line in ax.get_lines():
        if len(line.get_xdata()) == 1 and line.get_marker() != "x":
            x = float(line.get_xdata()[0])
            row = next(r for r in VALIDATION_ROWS
                       if abs(float(r["measured_comm_s"]) * 1e3 - x) < 1e-9)  # type: ignore[arg-type]
            marker_of.setdefault(row["P"], set()).add(line.get_marker())
    assert all(len(m) == 1 for m in marker_of.values())
    assert marker_of[2] != marker_of[4]


def test_validation_labels_do_not_overlap() -> None:
    rows = [dict(r, measured_comm_s=0.02, predicted_comm_s=0.02) for r in VALIDATION_ROWS]
    ax = plot.predicted_vs_measured(rows + VALIDATION_ROWS)
    fig = plot.figure_of(ax)
    renderer = _draw(fig)
    boxes = [t.get_window_extent(renderer) for t in ax.texts]  # type: ignore[arg-type]
    assert boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b) or (a.intersection(a, b) is not None
                                         and a.intersection(a, b).width < 1.5)  # type: ignore[union-attr]
