"""The engine's limits (costmodel.limits, docs/cli.md "Limits"): every input beyond them is one
line on stderr and exit code 2 before any work; output paths are checked first; signals give
130 and 143; memory stays bounded (peak RSS of a subprocess, never a timing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import fail, run, run_json

from costmodel.cli import main
from costmodel.engine.grids import (
    divisors,
    largest_divisor_at_most,
    parse_processes,
    sweep_factorizations,
)
from costmodel.limits import MAX_BATCH, MAX_PROCESSES, MAX_SWEEP_VALUES, MEMORY_BUDGET_BYTES
from costmodel.measure.launch import FOLDER_PREFIX, reap_stale_folders

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 120
"""Generous: a run that needs it has hung (the regressions took minutes or never ended)."""


def gridcost(*args: str, stdin: bytes | None = None,
             timeout: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
    """`python -m costmodel.cli ARGS` in a subprocess from the repository root."""
    return subprocess.run([sys.executable, "-m", "costmodel.cli", *args], cwd=ROOT,
                          input=None if stdin is None else stdin.decode("utf-8"),
                          capture_output=True, text=True, timeout=timeout)


def peak_rss_mib(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; its peak resident memory (MiB: VmHWM, which unlike
    ru_maxrss does not inherit the forking parent's peak) and stdout."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc (Linux)")
    probe = code + textwrap.dedent("""
        from pathlib import Path
        hwm = [x for x in Path("/proc/self/status").read_text().splitlines()
               if x.startswith("VmHWM:")][0]
        print("PEAK", hwm.split()[1])
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    peak = [line for line in done.stdout.splitlines() if line.startswith("PEAK")][-1]
    return int(peak.split()[1]) / 1024, done.stdout


# --------------------------------------------------------------------------- P and batch


@pytest.mark.parametrize("value", [str(2**64), str(2**62), str(2**40 + 1)])
def test_p_beyond_the_limit_is_one_line(capsys: pytest.CaptureFixture[str], value: str) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", value)
    assert line.startswith("gridcost: --P: expected a positive integer ≤ 1,099,511,627,776 (")
    assert MAX_PROCESSES.why in line


def test_layers_at_p_2_63_is_refused_not_negative(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "layers", "--net", "alexnet", "--P", str(2**63), "--pr", "1")
    assert "--P: expected a positive integer ≤ 1,099,511,627,776" in line


def test_batch_beyond_the_limit(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "4", "--batch", str(2**63))
    assert line.startswith(f"gridcost: --batch: expected a positive integer ≤ "
                           f"{MAX_BATCH.largest:,}")


def test_weak_scaling_batch_b_times_p_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "sweep", "--net", "alexnet", "--P", "1,1099511627776",
                "--per-process-batch", "2")
    assert "--per-process-batch: expected b with B = b·P ≤ 1,099,511,627,776" in line


def test_largest_p_and_batch_give_finite_positive_times() -> None:
    out = run("optimize", "--net", "alexnet", "--P", str(MAX_PROCESSES.largest),
              "--batch", str(MAX_BATCH.largest), "--plan", "fc-model", "--format", "csv")
    import csv
    import math

    cells = [cell for row in list(csv.reader(out.splitlines()))[1:] for cell in row[:-1]]
    numbers = [float(cell) for cell in cells if cell.replace(".", "").replace("e-", "").isdigit()
               or cell.startswith("-")]
    assert numbers and all(math.isfinite(x) and x >= 0 for x in numbers)


def test_the_largest_batch_keeps_the_scaling_limit_sweep_within_the_largest_p() -> None:
    """The feasibility limit B × 96 is beyond the largest P: the sweep stops at the largest P."""
    out = run("optimize", "--net", "alexnet", "--P", "4", "--batch", str(MAX_BATCH.largest))
    assert "feasible up to P=105,553,116,266,496" in out
    assert "at the largest P swept (1,099,511,627,776)" in out


@pytest.mark.parametrize("args", [
    ("sweep", "--net", "alexnet", "--P", "1..1000000000"),
    ("sweep", "--net", "alexnet", "--P", "1..100000000"),
    ("report", "sweep", "--net", "alexnet", "--P", "1..100000000"),
    ("plot", "scaling", "--net", "alexnet", "--P", "1..100000000", "-o", "x.png"),
])
def test_sweep_size_is_bounded_before_any_work(capsys: pytest.CaptureFixture[str],
                                               args: tuple[str, ...]) -> None:
    line = fail(capsys, *args)
    assert f"--P: expected a number of values ≤ {MAX_SWEEP_VALUES.largest:,}" in line


def test_parse_processes_checks_before_building_arrays() -> None:
    with pytest.raises(Exception, match="number of values"):
        parse_processes("1..1000000000000")
    with pytest.raises(Exception, match="every value"):
        parse_processes("1..4611686018427387904:x2")
    assert parse_processes("1..1099511627776:x2").size == 41


def test_a_prime_near_1e12_answers(capsys: pytest.CaptureFixture[str]) -> None:
    """Was > 60 s: beyond-batch and per-layer looped over every d ≤ √P in Python."""
    assert divisors(999999999989).tolist() == [1, 999999999989]
    assert largest_divisor_at_most(np.array([999999999989, 2**40]), np.array([2048, 2048])) \
        .tolist() == [1, 2048]
    done = gridcost("optimize", "--net", "alexnet", "--P", "999999999989", "--plan", "all")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "P=999999999989" in done.stdout and "no feasible layout" in done.stdout


def test_divisors_of_large_p_match_a_plain_count() -> None:
    P = 963761198400  # 6,720 divisors, the most of any P ≤ 10^12
    d = divisors(P)
    assert d.size == 6720 and (P % d == 0).all() and d[0] == 1 and d[-1] == P


def test_sieve_of_a_block_far_from_one_matches_one_by_one() -> None:
    processes = np.arange(10**9, 10**9 + 3000, dtype=np.int64)
    grids, owner = sweep_factorizations(processes, np.array(64))
    for i in (0, 1, 1234, 2999):
        assert grids.pr[owner == i].tolist() == divisors(int(processes[i])).tolist()


def test_plot_grid_panels_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "plot", "grid", "--net", "alexnet", "--P", "1..2000", "-o", "g.png")
    assert "--P: expected a number of values ≤ 24 (one panel per P" in line
    line = fail(capsys, "plot", "curve", "--net", "alexnet", "--P", "1..10", "--batch",
                "8,16,32", "-o", "c.png")
    assert "at most 24 (P, B) pairs" in line


# --------------------------------------------------------------------------- numeric options


@pytest.mark.parametrize(("args", "start"), [
    (("--optimizer", "1e308"), "gridcost: --optimizer: expected sgd, momentum, adam or a number"),
    (("--optimizer", "nan"), "gridcost: --optimizer: expected sgd, momentum, adam or a number"),
    (("--overlap", "backward", "--bucket-size", "1e300"), "gridcost: --bucket-size: expected"),
    (("--overlap", "backward", "--bucket-size", "2000000GiB"),
     "gridcost: --bucket-size: expected a size ≤"),
    (("--efficiency", "nan"), "gridcost: --efficiency: expected a number in (0, 1]"),
    (("--batch", "0"), "gridcost: --batch: expected a positive integer, got '0'"),
    (("--batch", "+8"), "gridcost: --batch: expected a positive integer, got '+8'"),
])
def test_numeric_options_are_range_checked(capsys: pytest.CaptureFixture[str],
                                           args: tuple[str, ...], start: str) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "4", *args)
    assert line.startswith(start), line


@pytest.mark.parametrize(("args", "start"), [
    (("--reps", "0"), "gridcost: --reps: expected a positive integer"),
    (("--reps", "10000001"), "gridcost: --reps: expected a positive integer ≤ 1,000,000"),
    (("--warmup", "-1"), "gridcost: --warmup: expected an integer ≥ 0"),
    (("--min-size", "0 B"), "gridcost: --min-size: expected a positive"),
    (("--max-size", "1 PiB"), "gridcost: --max-size: expected a size from 1 B"),
    (("--factor", "100000"), "gridcost: --factor: expected a positive integer ≤ 1,024"),
    (("--procs", "2..100000"), "gridcost: --procs: expected every value ≤ 1,024"),
    (("--timeout", "nan"), "gridcost: --timeout: expected seconds in (0,"),
    (("--timeout", "-1"), "gridcost: --timeout: expected seconds in (0,"),
])
def test_calibrate_run_options_are_range_checked(capsys: pytest.CaptureFixture[str],
                                                 args: tuple[str, ...], start: str) -> None:
    pytest.importorskip("torch")
    line = fail(capsys, "calibrate", "run", *args)
    assert line.startswith(start), line


def test_calibrate_import_word_bytes_is_bounded(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    log = tmp_path / "osu.txt"
    log.write_text("# OSU\n4 1.0\n")
    line = fail(capsys, "calibrate", "import", str(log), "--word-bytes", "65")
    assert line.startswith("gridcost: --word-bytes: expected a positive integer ≤ 64")


# --------------------------------------------------------------------------- paths, stdin, usage


def test_unwritable_plot_is_refused_before_any_output(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "published", "--plot", "/nonexistent/dir/x.png")
    assert line == "gridcost: --plot: cannot write '/nonexistent/dir/x.png': No such file or " \
                   "directory"


def test_unwritable_doc_is_refused_before_the_folder_is_written(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "repro"
    line = fail(capsys, "reproduce", "--out", str(out), "--doc", "/nonexistent/dir/r.md",
                "--no-figures", "--no-beyond")
    assert line.startswith("gridcost: --doc: cannot write '/nonexistent/dir/r.md'")
    assert not out.exists()


@pytest.mark.parametrize("args", [
    ("optimize", "--net", "alexnet", "--P", "8", "-o", "/nonexistent/x.txt"),
    ("report", "grids", "--net", "alexnet", "--P", "8", "-o", "/nonexistent/x.md"),
    ("plot", "grid", "--net", "alexnet", "--P", "8", "-o", "/nonexistent/x.png"),
    ("calibrate", "import", "x.log", "--profile", "/nonexistent/p.yaml"),
])
def test_every_output_path_is_checked_first(capsys: pytest.CaptureFixture[str],
                                            args: tuple[str, ...]) -> None:
    line = fail(capsys, *args)
    assert "cannot write '/nonexistent/" in line and "No such file or directory" in line
    option = args[args.index(next(a for a in args if a.startswith("/nonexistent"))) - 1]
    assert line.startswith(f"gridcost: {'--output' if option == '-o' else option}: ")


def test_a_folder_as_output_file_is_refused(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "8", "-o", str(tmp_path))
    assert line.endswith("Is a directory")


@pytest.mark.parametrize("command", [["report", "grids"], ["report", "layers", "--pr", "2"],
                                     ["report", "sweep"]])
def test_report_reads_the_network_from_stdin_once(command: list[str]) -> None:
    text = (ROOT / "networks" / "alexnet.yaml").read_bytes()
    done = gridcost(*command, "--net", "-", "--P", "4", "--format", "json", stdin=text)
    assert done.returncode == 0, done.stderr
    import hashlib
    import json

    network = json.loads(done.stdout)["provenance"]["inputs"]["network"]
    assert network["sha256"] == hashlib.sha256(text).hexdigest()


def test_bare_gridcost_is_a_short_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and 2 <= len(err.splitlines()) <= 4, err
    assert err.startswith("usage: gridcost COMMAND") and "gridcost --help" in err


# --------------------------------------------------------------------------- memory


def test_sweep_memory_does_not_grow_with_the_sweep() -> None:
    """The pure-batch reference was one unchunked evaluation: 405 MiB at P ≤ 262,144."""
    peak, out = peak_rss_mib(textwrap.dedent("""
        import numpy as np
        from costmodel.inputs.loaders import load_machine, load_network
        from costmodel.engine.plans import PLANS
        from costmodel.planning.search import sweep
        ps = np.arange(1, 262145)
        r = sweep(load_network("alexnet"), load_machine("cori-knl"), ps, np.full(ps.size, 2048),
                  PLANS["model-batch"])
        print("BEST", int(r.best_pr[-1]), bool(np.isfinite(r.pure_batch_total_s).any()))
    """))
    assert "BEST" in out
    assert peak < 300, f"peak {peak:.0f} MiB"
    assert peak * 2**20 < MEMORY_BUDGET_BYTES


def test_per_layer_at_720720_finds_infeasibility_before_big_arrays() -> None:
    """ResNet-152 at P = 720,720 built 2.7 GB of redistribution arrays first."""
    peak, out = peak_rss_mib(textwrap.dedent("""
        from costmodel.cli import main
        print("CODE", main(["optimize", "--net", "resnet152", "--P", "720720",
                            "--plan", "per-layer"]))
        print("CODE2", main(["optimize", "--net", "resnet152", "--P", "720720", "--batch",
                             "1000000", "--plan", "per-layer"]))
    """))
    assert "CODE 2" in out and "CODE2 2" in out
    assert peak < 300, f"peak {peak:.0f} MiB"


def test_per_layer_messages(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "720720", "--plan", "per-layer")
    assert line.startswith("gridcost: plan per-layer: no feasible layout for conv1 at P=720720")
    line = fail(capsys, "optimize", "--net", "resnet152", "--P", "720720", "--batch", "1000000",
                "--plan", "per-layer")
    assert "redistribution costs, at most 4,194,304" in line


def test_plan_all_leaves_out_a_per_layer_plan_beyond_its_limit() -> None:
    """--plan all compared nothing when the per-layer search was too large for P's divisors:
    the fixed plans are compared and the table says why per-layer is missing."""
    args = ("optimize", "--net", "resnet152", "--P", "720720", "--batch", "1048576",
            "--plan", "all")
    text = run(*args)
    assert "per-layer plan left out: plan per-layer: 155 layer boundaries" in text
    record = run_json(*args)
    assert record["per_layer"] is None
    assert [p["plan"] for p in record["plans"]] == ["model-batch", "fc-model", "domain-batch",
                                                    "beyond-batch"]


# --------------------------------------------------------------------------- signals


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize(("signum", "code", "message"), [
    (signal.SIGINT, 130, "gridcost: aborted"),
    (signal.SIGTERM, 143, "gridcost: terminated (SIGTERM)"),
])
def test_signals_during_a_sweep(signum: int, code: int, message: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "costmodel.cli", "sweep", "--net",
                             "resnet152", "--P", "1..262144"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        # past start-up (imports take well under 2 CPU seconds): the sweep itself is running
        while _cpu_seconds(proc.pid) < 2.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert out == "" and err.strip().splitlines()[-1] == message and "Traceback" not in err


def test_folders_of_killed_measurements_are_reaped(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"{FOLDER_PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{FOLDER_PREFIX}{os.getpid()}-def"
    other = tmp_path / "gridcost-measure-old"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "args.json").write_text("{}")
    assert reap_stale_folders(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and live.exists() and other.exists()
