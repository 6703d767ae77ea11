"""costmodel.measure.published: the published-run inputs, one efficiency by hand, the loader's errors,
and the "Published runs" section of docs/validation.md against what gridcost computes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from golden import line_difference

from costmodel.cli import main
from costmodel.errors import SpecError
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.measure.published import (
    DEFAULT_RUNS,
    MODES,
    evaluate_runs,
    load_runs,
    machine_path,
    mode_errors,
    predict,
)

DOCS = Path(__file__).parents[1] / "docs"


@pytest.fixture(scope="module")
def runs():  # type: ignore[no-untyped-def]
    return load_runs()


@pytest.fixture(scope="module")
def results(runs):  # type: ignore[no-untyped-def]
    return evaluate_runs(runs)


def test_stored_runs_meet_the_issue_s_minimum(runs) -> None:  # type: ignore[no-untyped-def]
    """At least 20 points from at least 4 sources; every machine profile loads."""
    assert len(runs.runs) >= 20
    assert len({r.source for r in runs.runs}) >= 4
    for name in {r.machine for r in runs.runs}:
        assert load_machine(machine_path(runs, name)).name == name


def test_one_point_by_hand(runs) -> None:  # type: ignore[no-untyped-def]
    """tf-vgg16-b64-p8: VGG16, 8 P100 on NVLink (80 GB/s, α 2 µs, 4-byte words, ring),
    64 images per GPU, 154 images/s on one GPU.

    compute = 64/154 s; overlap none adds one ring all-reduce per weighted layer (16 layers):
    16 · 2(p−1)·α + 2(p−1)/p · W · β, W = 138,357,544 parameters, β = 4 B / 80 GB/s.
    E = compute / (compute + communication)."""
    run = next(r for r in runs.runs if r.id == "tf-vgg16-b64-p8")
    result = predict(run, load_network("vgg16"), load_machine(machine_path(runs, "dgx1-p100")))
    compute = 64 / 154
    comm = 16 * 2 * 7 * 2e-6 + 2 * 7 / 8 * 138_357_544 * (4 / 80e9)
    assert result.iteration_s["none"][0] == pytest.approx(compute, rel=1e-12)
    assert result.predicted["none"] == pytest.approx(compute / (compute + comm), rel=1e-9)
    assert result.predicted["none"] == pytest.approx(0.97068, abs=5e-6)
    # batch hides the all-reduce entirely (it is shorter than the compute)
    assert result.predicted["batch"] == pytest.approx(1.0, abs=1e-12)
    assert run.measured_efficiency == pytest.approx(1081 / (8 * 154), rel=1e-12)


def test_modes_are_ordered_and_one_gpu_is_pure_compute(results) -> None:  # type: ignore[no-untyped-def]
    """time(batch) ≤ time(backward) ≤ time(none), so the efficiencies are ordered the other
    way; the reference iteration of a run from one GPU is b / X₁ s in every mode."""
    for r in results:
        e = r.predicted
        assert e["none"] <= e["backward"] + 1e-12 <= e["batch"] + 2e-12, r.run.id
        if r.run.reference_processes == 1:
            for mode in MODES:
                assert r.iteration_s[mode][0] == pytest.approx(
                    r.run.batch / r.run.single_gpu_throughput, rel=1e-12)


def test_error_summary(results) -> None:  # type: ignore[no-untyped-def]
    errors = {e.mode: e for e in mode_errors(results)}
    for e in errors.values():
        assert 0 <= e.median_pp <= e.max_pp and e.mean_pp <= e.max_pp
    by_hand = sum(abs(r.error_pp("none")) for r in results) / len(results)
    assert errors["none"].mean_pp == pytest.approx(by_hand)


# --------------------------------------------------------------------------- loader errors


def _write(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(DEFAULT_RUNS.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (tmp_path / "machines").symlink_to(DEFAULT_RUNS.parent / "machines")
    return path


def _set(key: str, value: object):  # type: ignore[no-untyped-def]
    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["runs"][0][key] = value
    return edit


def _drop(key: str):  # type: ignore[no-untyped-def]
    def edit(data: dict) -> None:  # type: ignore[type-arg]
        del data["runs"][0][key]
    return edit


def _both(data: dict) -> None:  # type: ignore[type-arg]
    data["runs"][0]["efficiency"] = 0.9


def _duplicate(data: dict) -> None:  # type: ignore[type-arg]
    data["runs"][1]["id"] = data["runs"][0]["id"]


def _no_origin(data: dict) -> None:  # type: ignore[type-arg]
    del data["runs"][0]["single_gpu"]["origin"]


@pytest.mark.parametrize("edit, field", [
    (_set("processes", 1), "runs[0].processes"),
    (_set("processes", "8"), "runs[0].processes"),
    (_set("bucket", "fusion"), "runs[0].bucket"),
    (_set("source", "nowhere"), "runs[0].source"),
    (_set("throughput", -3), "runs[0].throughput"),
    (_set("colour", "red"), "runs[0].colour"),
    (_set("reference_processes", 3), "runs[0].reference_processes"),
    (_drop("network"), "runs[0].network"),
    (_drop("throughput"), "runs[0]"),
    (_both, "runs[0]"),
    (_duplicate, "runs[1].id"),
    (_no_origin, "runs[0].single_gpu.origin"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.update(runs=[]), "runs"),
    (lambda d: d["runs"][23].update(efficiency=1.7), "runs[23].efficiency"),
])
def test_bad_runs_file_is_one_line_naming_the_field(tmp_path: Path, edit, field: str,  # type: ignore[no-untyped-def]
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(SpecError) as err:
        load_runs(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {field}") and "\n" not in message
    assert main(["published", "--runs", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_missing_runs_file_and_bad_plot_name(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["published", "--runs", str(tmp_path / "none.yaml")]) == 2
    assert "expected an existing runs file" in capsys.readouterr().err
    assert main(["published", "--plot", str(tmp_path / "p.gif")]) == 2
    assert "--plot" in capsys.readouterr().err


def test_cli_json_and_plot(tmp_path: Path) -> None:
    import json

    out, png = tmp_path / "p.json", tmp_path / "p.png"
    assert main(["published", "--format", "json", "-o", str(out), "--plot", str(png)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert len(record["runs"]) >= 20 and set(record["errors_pp"]) == set(MODES)
    assert png.stat().st_size > 10_000
    for run in record["runs"]:
        assert math.isfinite(run["predicted_efficiency"]["backward"])


# --------------------------------------------------------------------------- docs/validation.md


def _rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def test_validation_page_published_tables_are_what_gridcost_computes(tmp_path: Path) -> None:
    """Every row of `gridcost published --format markdown` is on docs/validation.md, in its
    "Published runs" section (numbers at the precision of tests/golden.py)."""
    page = (DOCS / "validation.md").read_text(encoding="utf-8")
    section = page[page.index("## Published runs"):]
    out = tmp_path / "p.md"
    assert main(["published", "--format", "markdown", "-o", str(out)]) == 0
    wanted = _rows(out.read_text(encoding="utf-8"))
    shown = _rows(section)
    assert len(wanted) >= 24
    for row in wanted:
        assert row in shown or any(line_difference(row, line) is None for line in shown), row


def test_readme_quotes_the_computed_errors(results) -> None:  # type: ignore[no-untyped-def]
    """The error figures README.md quotes are the ones gridcost computes."""
    readme = " ".join((DOCS.parent / "README.md").read_text(encoding="utf-8").split())
    every = {e.mode: e for e in mode_errors(results)}
    across = {e.mode: e for e in mode_errors([r for r in results if r.across_nodes])}
    one = {e.mode: e for e in mode_errors([r for r in results if not r.across_nodes])}
    quoted = [f"within {every['backward'].mean_pp:.1f} points on average (median "
              f"{every['backward'].median_pp:.1f})",
              f"{across['backward'].mean_pp:.1f} on the runs across nodes",
              f"miss by {across['none'].mean_pp:.1f} and {across['batch'].mean_pp:.1f}",
              f"by {one['none'].mean_pp:.1f} (`none`) to {one['backward'].mean_pp:.1f} points"]
    for text in quoted:
        assert text in readme, text
