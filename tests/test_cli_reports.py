"""CLI: `sweep`, `report` (Markdown, LaTeX, CSV, JSON with provenance) and `plot`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from costmodel.cli import cli, main
from costmodel.loaders import load_network
from costmodel.plans import PLANS
from costmodel.search import optimize, sweep

REPO = Path(__file__).resolve().parent.parent
FC7 = ("--net", "alexnet", "--P", "8,32,128,512", "--plan", "fc-model")


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def fail(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err, (code, out, err)
    assert len(err.splitlines()) == 1
    return err.strip()


# --------------------------------------------------------------------------- sweep


def test_sweep_strong_rows_match_optimize() -> None:
    record = json.loads(run("sweep", *FC7, "--format", "json"))
    assert record["scaling"] == "strong"
    assert [r["P"] for r in record["rows"]] == [8, 32, 128, 512]
    from costmodel.loaders import load_machine

    net, machine = load_network("alexnet"), load_machine("cori-knl")
    for row in record["rows"]:
        best = optimize(net, machine, row["P"], 2048, PLANS["fc-model"], with_limits=False)
        g = best.table.grids
        assert (row["pr"], row["pc"]) == (int(g.pr[best.best]), int(g.pc[best.best]))
        epoch = float(best.table.total_s[best.best] * best.table.iterations_per_epoch[0])
        assert row["total_s"] == pytest.approx(epoch, rel=1e-12)
    # strong-scaling efficiency relative to the first P: T(8)·8 / (P·T(P))
    first = record["rows"][0]
    for row in record["rows"]:
        expected = first["total_s"] * 8 / (row["P"] * row["total_s"])
        assert row["efficiency"] == pytest.approx(expected, rel=1e-12)
    assert record["feasibility_limit_P"] == 2048


def test_sweep_weak_scaling_batch_grows_with_P() -> None:
    record = json.loads(run("sweep", "--net", "alexnet", "--P", "128,512,2048",
                            "--per-process-batch", "4", "--plan", "fc-model", "--format",
                            "json"))
    assert record["scaling"] == "weak"
    assert [r["batch"] for r in record["rows"]] == [512, 2048, 8192]
    first = record["rows"][0]
    for row in record["rows"]:
        # weak-scaling efficiency from times per iteration: T(P0)/T(P)
        per_iteration = row["total_s"] * row["batch"] / 1_200_000
        first_iteration = first["total_s"] * first["batch"] / 1_200_000
        assert row["efficiency"] == pytest.approx(first_iteration / per_iteration, rel=1e-12)


def test_sweep_range_lists_every_P_and_marks_infeasible() -> None:
    record = json.loads(run("sweep", "--net", "alexnet", "--P", "2040..2050", "--batch", "2048",
                            "--plan", "fc-model", "--format", "json"))
    rows = record["rows"]
    assert [r["P"] for r in rows] == list(range(2040, 2051))
    assert [r["feasible"] for r in rows] == [P <= 2048 for P in range(2040, 2051)]
    assert all(r["pr"] is None for r in rows if not r["feasible"])
    assert record["largest_feasible_P"] == 2048


def test_sweep_plan_all_text_has_one_table_per_plan() -> None:
    out = run("sweep", "--net", "alexnet", "--P", "8,512", "--plan", "all")
    for name in PLANS:
        assert f"plan {name}, overlap none" in out
    assert "[s/epoch]" in out


def test_sweep_equals_library_sweep() -> None:
    import numpy as np

    from costmodel.loaders import load_machine

    record = json.loads(run("sweep", "--net", "resnet18", "--P", "1..64", "--batch", "256",
                            "--per", "iteration", "--format", "json"))
    lib = sweep(load_network("resnet18"), load_machine("cori-knl"), np.arange(1, 65),
                np.full(64, 256), PLANS["model-batch"])
    assert [r["total_s"] for r in record["rows"]] == pytest.approx(list(lib.total_s), rel=1e-12)


@pytest.mark.parametrize(("args", "message"), [
    (("--P", "0..8"), "gridcost: --P: expected positive integers as 'N', 'A,B,C', 'LOW..HIGH' or "
                      "'LOW..HIGH:x2', got '0..8'"),
    (("--P", "8,x"), "gridcost: --P: expected positive integers as 'N', 'A,B,C', 'LOW..HIGH' or "
                     "'LOW..HIGH:x2', got 'x'"),
    (("--P", "8", "--per-process-batch", "0"),
     "gridcost: --per-process-batch: expected a positive integer, got '0'"),
    (("--P", "8", "--efficiency", "1.5"),
     "gridcost: --efficiency: expected a number in (0, 1], got 1.5"),
])
def test_sweep_bad_input(capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                         message: str) -> None:
    assert fail(capsys, "sweep", "--net", "alexnet", *args) == message


# --------------------------------------------------------------------------- report


def _sha(path: str) -> str:
    return hashlib.sha256((REPO / path).read_bytes()).hexdigest()


def test_report_latex_is_a_booktabs_tabular_with_provenance() -> None:
    out = run("report", "grids", "--net", "alexnet", "--P", "512", "--plan", "fc-model",
              "--format", "latex")
    lines = out.splitlines()
    assert lines[0] == "% generated by gridcost 0.1.0: gridcost report grids"
    assert f"% network: networks/alexnet.yaml (sha256 {_sha('networks/alexnet.yaml')})" in lines
    assert f"% machine: machines/cori-knl.yaml (sha256 {_sha('machines/cori-knl.yaml')})" in lines
    assert any(line.startswith("% settings: P=512, batch=2048, plan=fc-model") for line in lines)
    begin = lines.index(r"\begin{tabular}{rrrrrrrrl}")
    assert lines[begin + 1] == r"\toprule"
    assert lines[begin + 2].startswith(r"Pr & Pc & compute [s/epoch] & model comm [s/epoch]")
    assert lines[begin + 3] == r"\midrule"
    body = lines[begin + 4:lines.index(r"\bottomrule")]
    assert len(body) == 10  # every factorization of 512
    assert all(row.endswith(r" \\") and row.count(" & ") == 8 for row in body)
    assert r"32 & 16 & 22.36" in out and "best (uneven)" in out
    assert lines[lines.index(r"\bottomrule") + 1] == r"\end{tabular}"
    # nothing a plain pdflatex would choke on outside comments
    for line in lines:
        if not line.startswith("%"):
            assert all(ord(ch) < 128 for ch in line), line


def test_report_latex_escapes_special_characters() -> None:
    out = run("report", "layers", "--net", "vgg16", "--P", "64", "--pr", "2", "--format",
              "latex")
    assert r"conv1\_1" in out and "conv1_1 " not in out.split(r"\midrule")[1]
    assert r"[words/epoch]" in out


def test_report_csv_has_comment_provenance_then_parseable_table() -> None:
    out = run("report", "layers", "--net", "alexnet", "--P", "512", "--pr", "32", "--plan",
              "fc-model", "--format", "csv")
    comments = [line for line in out.splitlines() if line.startswith("#")]
    assert comments[0] == "# generated by gridcost 0.1.0: gridcost report layers"
    rows = list(csv.DictReader(io.StringIO("\n".join(
        line for line in out.splitlines() if not line.startswith("#")))))
    assert [r["layer"] for r in rows] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6",
                                          "fc7", "fc8"]
    assert float(rows[5]["model [s/epoch]"]) == pytest.approx(0.5719013214111328, rel=1e-12)


def test_report_markdown_ends_with_provenance() -> None:
    out = run("report", "sweep", "--net", "alexnet", "--P", "8,32", "--plan", "fc-model")
    assert out.splitlines()[0].startswith("### alexnet on cori-knl, B=2048, plan fc-model")
    last = out.splitlines()[-1]
    assert last.startswith("<sub>Provenance: generated by gridcost 0.1.0: gridcost report sweep")
    assert "settings: P=8,32, batch=2048, plan=fc-model" in last


def test_report_json_wraps_the_record_with_provenance() -> None:
    out = json.loads(run("report", "grids", "--net", "alexnet", "--P", "512", "--plan",
                         "fc-model", "--format", "json"))
    assert set(out) == {"provenance", "result"}
    plain = json.loads(run("optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model",
                           "--format", "json"))
    assert out["result"] == plain
    assert out["provenance"]["inputs"]["network"]["sha256"] == _sha("networks/alexnet.yaml")
    assert out["provenance"]["settings"]["plan"] == "fc-model"


def test_report_provenance_hashes_a_user_file(tmp_path: Path) -> None:
    net = tmp_path / "mine.yaml"
    net.write_text((REPO / "networks/alexnet.yaml").read_text().replace(
        "name: alexnet", "name: mine"), encoding="utf-8")
    out = json.loads(run("report", "grids", "--net", str(net), "--P", "8", "--format", "json"))
    assert out["provenance"]["inputs"]["network"] == {
        "file": str(net), "sha256": hashlib.sha256(net.read_bytes()).hexdigest()}


def test_report_is_deterministic() -> None:
    args = ("report", "grids", "--net", "alexnet", "--P", "64", "--plan", "all", "--format",
            "latex")
    assert run(*args) == run(*args)


def test_report_rejects_table_format(capsys: pytest.CaptureFixture[str]) -> None:
    message = fail(capsys, "report", "grids", "--net", "alexnet", "--P", "8", "--format", "table")
    assert message.startswith("gridcost: Invalid value for '--format'")


# --------------------------------------------------------------------------- plot


@pytest.mark.parametrize(("kind", "args"), [
    ("grid", ("--P", "8,32", "--plan", "fc-model")),
    ("curve", ("--P", "32,128", "--batch", "512,2048")),
    ("scaling", ("--P", "1..64:x2", "--plan", "all")),
    ("layers", ("--P", "64",)),
])
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_a_figure(tmp_path: Path, kind: str, args: tuple[str, ...],
                              suffix: str) -> None:
    path = tmp_path / f"figure{suffix}"
    out = run("plot", kind, "--net", "alexnet", *args, "-o", str(path))
    assert out == f"wrote {path}\n"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:400]


def test_plot_svg_is_deterministic(tmp_path: Path) -> None:
    paths = [tmp_path / "a.svg", tmp_path / "b.svg"]
    for path in paths:
        run("plot", "grid", "--net", "alexnet", "--P", "8", "-o", str(path))
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_plot_rejects_unknown_extension_before_computing(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    message = fail(capsys, "plot", "grid", "--net", "alexnet", "--P", "8", "-o",
                   str(tmp_path / "fig.gif"))
    assert message == (f"gridcost: --output: expected a file name ending in .png, .svg or .pdf,"
                       f" got '{tmp_path / 'fig.gif'}'")


def test_plot_layers_needs_a_single_P(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    message = fail(capsys, "plot", "layers", "--net", "alexnet", "--P", "8,32", "-o",
                   str(tmp_path / "h.png"))
    assert message == "gridcost: --P: expected a positive integer, got '8,32'"


def test_latex_escape_keeps_only_ascii() -> None:
    from costmodel.report import latex_escape

    assert latex_escape("all-reduce ΔX over Pr=32") == r"all-reduce $\Delta$X over Pr=32"
    assert latex_escape("α_β & 50% #1 {x} 1×2 — ≤") == (
        r"$\alpha$\_$\beta$ \& 50\% \#1 \{x\} 1$\times$2 -- $\leq$")
    assert latex_escape("→") == "?"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_tables_compile(tmp_path: Path) -> None:
    inputs = []
    for i, args in enumerate([
        ("grids", "--net", "alexnet", "--P", "512", "--plan", "fc-model"),
        ("layers", "--net", "vgg16", "--P", "64", "--pr", "2"),
        ("sweep", "--net", "alexnet", "--P", "8,512", "--plan", "all"),
    ]):
        (tmp_path / f"t{i}.tex").write_text(run("report", *args, "--format", "latex"))
        inputs.append(f"\\input{{t{i}.tex}}\n")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\\tiny\n"
        + "\n".join(inputs) + "\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").is_file()


def test_sweep_without_compute_has_no_efficiency() -> None:
    """--compute none makes P = 1 free: efficiency and speedup there are undefined (null)."""
    record = json.loads(run("sweep", "--net", "alexnet", "--P", "1,8", "--compute", "none",
                            "--format", "json"))
    assert [r["efficiency"] for r in record["rows"]] == [None, None]
    assert record["rows"][0]["speedup_vs_pure_batch"] is None
    assert record["efficiency_below_threshold_P"] is None
