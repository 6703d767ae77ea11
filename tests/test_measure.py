"""Measurements on real processes (torch.distributed, gloo over 127.0.0.1).

These tests check mechanics and exact counts, never timings: the benchmarks return positive,
finite medians; the training step equals one process; the words handed to every collective
equal the model's count; worker processes never outlive a run (success, failure, time limit);
the commands run unchanged under torchrun.  Kept small (2-4 processes, few sizes, one or two
iterations): the CI machine has 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("torch", reason="torch is not installed: pip install '.[measure]' "
                                    "(CI installs torch==2.13.0, a CPU build)")

from costmodel.cli import cli, main
from costmodel.errors import MeasureError
from costmodel.inputs.loaders import load_machine
from costmodel.measure.launch import run_local
from costmodel.measure.validation import analyse, load_validation_network

LOGS = Path(__file__).resolve().parent / "data" / "logs"
WORKER = "costmodel.measure.worker"
KEEPER = "costmodel.measure.awake"


def workers_alive(parent: int | None = None) -> list[int]:
    """Pids of worker processes started by ``parent`` (default: this test process) that are
    still running."""
    parent = os.getpid() if parent is None else parent
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        if any(name in cmdline for name in (WORKER, KEEPER)) and state != "Z" and f"GRIDCOST_PARENT_PID={parent} " in \
                _environ(entry):
            alive.append(int(entry.name))
    return alive


def _environ(entry: Path) -> str:
    try:
        return (entry / "environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


BENCH = {"procs": [2, 3], "sizes_bytes": [4, 4096, 65536], "reps": 2, "warmup": 1,
         "collectives": ["allgather", "allreduce", "p2p"], "timeout_s": 120}


def test_bench_measures_every_collective_and_cleans_up() -> None:
    result = run_local("bench", BENCH, 3, timeout_s=180)
    kinds = {(s["collective"], s["p"]) for s in result["series"]}
    assert kinds == {("allgather", 2), ("allreduce", 2), ("p2p", 2), ("allgather", 3),
                     ("allreduce", 3)}
    for s in result["series"]:
        assert len(s["words"]) == 3
        assert all(math.isfinite(t) and t > 0 for t in s["seconds"])
        # every repetition is kept (the slowest rank's), the medians are theirs
        assert [len(x) for x in s["samples"]] == [BENCH["reps"]] * 3
        assert s["seconds"] == [statistics.median(x) for x in s["samples"]]
    gather3 = next(s for s in result["series"] if s["collective"] == "allgather" and s["p"] == 3)
    assert gather3["words"] == [3, 1023, 16383]  # n/p words from each of 3, rounded
    assert result["backend"] == "gloo" and result["world"] == 3
    assert result["flop_rate"] > 0
    assert workers_alive() == []


def test_keep_awake_runs_idle_priority_loops_only_while_measuring() -> None:
    from costmodel.measure.launch import _start_keepers, _terminate

    keepers = _start_keepers(2)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
                os.sched_getscheduler(k.pid) != os.SCHED_IDLE for k in keepers):
            time.sleep(0.05)
        assert all(os.sched_getscheduler(k.pid) == os.SCHED_IDLE for k in keepers)
    finally:
        _terminate(keepers)
    assert all(k.poll() is not None for k in keepers)
    result = run_local("bench", dict(BENCH, procs=[2], sizes_bytes=[4, 4096]), 2,
                       timeout_s=180, keep_awake=True)
    assert {s["collective"] for s in result["series"]} == {"allgather", "allreduce", "p2p"}
    assert workers_alive() == []  # keepers ended with the workers


def test_concurrent_groups_tile_the_world() -> None:
    args = dict(BENCH, procs=[2, 4], sizes_bytes=[4, 4096])
    tiled = run_local("bench", args, 4, timeout_s=240)
    assert tiled["concurrent"] is True
    assert {(s["collective"], s["p"]): s["groups"] for s in tiled["series"]} == {
        ("allgather", 2): 2, ("allreduce", 2): 2, ("p2p", 2): 2,
        ("allgather", 4): 1, ("allreduce", 4): 1}
    alone = run_local("bench", dict(args, concurrent=False), 4, timeout_s=240)
    assert {s["groups"] for s in alone["series"]} == {1} and alone["concurrent"] is False
    assert workers_alive() == []


def test_keep_awake_is_refused_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    from costmodel.errors import MeasureError
    from costmodel.measure.launch import run

    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1"),
                        ("MASTER_PORT", "1")):
        monkeypatch.setenv(name, value)
    with pytest.raises(MeasureError, match="--keep-awake is for local runs"):
        run("bench", BENCH, 2, 10.0, keep_awake=True)


def test_idle_probe_times_both_arrivals() -> None:
    result = run_local("bench", dict(BENCH, procs=[2], sizes_bytes=[4, 4096],
                                     idle_gap_s=0.001), 2, timeout_s=180)
    idle = result["idle"]
    assert idle["gap_s"] == 0.001 and idle["p"] == 2
    assert len(idle["back_to_back"]) == len(idle["after_idle"]) == BENCH["reps"]
    assert all(t > 0 for t in idle["back_to_back"] + idle["after_idle"])
    assert run_local("bench", dict(BENCH, procs=[2], sizes_bytes=[4, 4096]), 2,
                     timeout_s=180)["idle"] is None


def test_a_failing_worker_ends_all_and_says_why() -> None:
    with pytest.raises(MeasureError, match=r"worker rank \d failed .*unknown task 'nope'"):
        run_local("nope", BENCH, 2, timeout_s=120)
    assert workers_alive() == []


def test_the_time_limit_ends_all_workers() -> None:
    slow = dict(BENCH, sizes_bytes=[64 * 2**20], reps=50)
    with pytest.raises(MeasureError, match=r"did not finish within 1 s"):
        run_local("bench", slow, 2, timeout_s=1.0)
    assert workers_alive() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_ends_every_worker(signum: int) -> None:
    """gridcost is interrupted while its workers measure: it says so, exits 130 (Ctrl-C) or
    143 (SIGTERM), leaves none."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "costmodel.cli", "calibrate", "run", "--procs", "2",
         "--min-size", "64 MiB", "--max-size", "64 MiB", "--reps", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while len(workers_alive(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers_alive(proc.pid)) == 2
        time.sleep(1.0)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    what = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert f"gridcost: {what}: all worker processes were ended" in err
    assert workers_alive(proc.pid) == []


def _written_or_refused(code: int, output: str, profile: Path, refused_code: int = 2) -> bool:
    """True when a quick real calibration wrote its profile; False when this host's noise fitted
    a term outside the loader's ranges, which --accept-implausible does not write either (the
    refusal is then checked: one line, exit 2, no file)."""
    if code == 0:
        return True
    assert code == refused_code, output
    assert "nothing written: the fitted profile would not load" in output, output
    assert not profile.exists()
    return False


def test_calibrate_run_writes_a_profile_optimize_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile, raw = tmp_path / "host.yaml", tmp_path / "raw.json"
    # through main, the console script's entry point: a refusal is a GridcostError mapped there
    code = main(["calibrate", "run", "--procs", "2", "--min-size", "4 B", "--max-size", "1 MiB",
                 "--factor", "16", "--reps", "2", "--warmup", "1", "--name", "ci-host",
                 "--profile", str(profile), "--raw", str(raw),
                 # a quick run's fit may well be implausible: kept, flagged
                 "--accept-implausible"])
    out = capsys.readouterr()
    if not _written_or_refused(code, out.out + out.err, profile):
        return
    assert "point-to-point  2" in out.out
    assert "host check: a 64-word all-reduce on 2 processes takes" in out.out
    machine = load_machine(str(profile))
    assert machine.name == "ci-host" and machine.alpha_s >= 0 and machine.bandwidth_Bps > 0
    assert machine.flop_rate > 0
    assert len(json.loads(raw.read_text())["series"]) == 3
    again = CliRunner().invoke(cli, ["calibrate", "import", str(raw), "--format", "json",
                                     "--accept-implausible"], catch_exceptions=False)
    assert again.exit_code == 0 and len(json.loads(again.stdout)["fits"]) == 3
    done = CliRunner().invoke(cli, ["optimize", "--net", "alexnet", "--P", "4", "--machine",
                                    str(profile), "--plan", "fc-model"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert workers_alive() == []


def test_calibrate_run_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in [(["--procs", "1..2"], "--procs: expected process counts ≥ 2"),
                          (["--max-size", "2 B", "--min-size", "4 B"], "--max-size ≥ --min-size"),
                          (["--min-size", "four"], "--min-size: expected")]:
        assert main(["calibrate", "run", *args]) == 2
        assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- validate


def _validate(P: int, plans: list[str], grids: list[list[int]], batch: int = 8) -> Any:
    args = {"batch": batch, "plans": plans, "grids": grids, "warmup": 0, "iterations": 1,
            "lr": 0.01, "seed": 0, "timeout_s": 120}
    return run_local("validate", args, P, timeout_s=240)


@pytest.fixture(scope="module")
def two() -> dict[str, Any]:
    result = _validate(2, ["model-batch", "fc-model", "domain-batch"], [[1, 2], [2, 1]])
    return analyse(result, load_validation_network(), load_machine("cori-knl"))


def test_distributed_step_equals_one_process(two: dict[str, Any]) -> None:
    assert len(two["runs"]) == 6
    for run in two["runs"]:
        n = run["numerics"]
        assert n["allclose"], run
        assert n["loss"] == pytest.approx(n["reference_loss"], rel=1e-5)
        assert n["max_rel_grad_error"] < 1e-4


def test_words_of_every_collective_match_the_model_exactly(two: dict[str, Any]) -> None:
    for run in two["runs"]:
        assert run["volumes_ok"], run["volumes"]
        for v in run["volumes"]:
            if v["op"] in ("all-gather", "halo X", "halo ΔY") or v["term"] == "batch":
                if v["term"] == "redistribution":
                    assert v["model_calls"] == 0
                    continue
                assert v["status"] == "exact", v
    pure_batch = next(r for r in two["runs"] if r["plan"] == "fc-model" and r["pr"] == 1)
    assert pure_batch["volumes_exact"]
    fc1 = {v["op"]: v for v in next(r for r in two["runs"] if r["plan"] == "fc-model"
                                    and r["pr"] == 2)["volumes"] if v["layer"] == "fc1"}
    # fc1 on 2×1: all-gather of B·d = 8·1024 words; ΔX is the input, 8·4096 (the paper: 8·1024)
    assert fc1["all-gather"]["words"] == [8192]
    assert fc1["all-reduce ΔX"]["words"] == [32768]
    assert fc1["all-reduce ΔX"]["model_words"] == 8192


def test_timings_are_recorded_not_judged(two: dict[str, Any]) -> None:
    for run in two["runs"]:
        assert run["measured_comm_s"] > 0 and run["predicted_comm_s"] > 0
        assert run["measured_s"]["step"] >= run["measured_comm_s"]
    assert {r["P"] for r in two["summary"]["rankings"]} == {2}
    assert set(two["summary"]["mape_pct_by_P"]) == {2}
    for run in two["runs"]:  # every charged call is compared with the profile's time for it
        charged = [v for v in run["volumes"] if v["term"] != "redistribution"]
        assert len(run["call_ratio_fastest"]) == sum(v["calls"] for v in charged)
        assert all(0 < f <= m for f, m in zip(run["call_ratio_fastest"],
                                              run["call_ratio_median"]))


def test_interior_strips_exchange_halos_with_both_neighbours() -> None:
    result = _validate(4, ["domain-batch"], [[4, 1]], batch=4)
    analysis = analyse(result, load_validation_network(), load_machine("cori-knl"))
    [run] = analysis["runs"]
    assert run["numerics"]["allclose"]
    halos = [v for v in run["volumes"] if v["term"] == "domain"]
    assert len(halos) == 4
    for v in halos:
        assert v["calls"] == 2 and v["model_calls"] == 1  # the model charges one message
        assert v["words"] == [v["model_words"]]           # of exactly the right size
    assert run["volumes_ok"]
    assert workers_alive() == []


def test_validate_command_end_to_end(tmp_path: Path) -> None:
    plot = tmp_path / "v.png"
    result = CliRunner().invoke(cli, ["validate", "--machine", "cori-knl", "--P", "2", "--batch",
                                      "4", "--plan", "fc-model", "--iterations", "1",
                                      "--warmup", "1", "--plot", str(plot)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for heading in ("1. numerics", "2. volumes", "3. time", "4. ranking"):
        assert heading in result.stdout
    assert "numerics: PASS; volumes: PASS" in result.stdout
    assert plot.stat().st_size > 10_000


def test_validate_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in [(["--P", "4", "--batch", "6"], "--batch: expected a multiple of P=4"),
                          (["--plan", "beyond-batch"], "--plan beyond-batch is not available "
                           "for `validate`, which runs Pr×Pc grids of the fixed plans on real "
                           "processes; use one of model-batch, fc-model, domain-batch or 'all'"),
                          (["--machine", "nope"], "'nope' (known: a100-ib")]:
        assert main(["validate", *(["--machine", "cori-knl"] if "--machine" not in args
                                   else []), *args]) == 2
        assert message in capsys.readouterr().err


def test_calibrate_run_under_torchrun(tmp_path: Path) -> None:
    """The same command, started by torchrun (env:// rendezvous): rank 0 writes the profile."""
    profile = tmp_path / "tr.yaml"
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "costmodel.cli", "calibrate", "run", "--min-size", "4 B", "--max-size", "1 MiB",
         "--factor", "16", "--reps", "2", "--warmup", "1", "--profile", str(profile),
         "--accept-implausible"],
        capture_output=True, text=True, timeout=240, env=env, check=False)
    # refused, rank 0 exits 2 and torchrun reports its child's failure with 1
    if _written_or_refused(done.returncode, done.stderr, profile, refused_code=1):
        assert done.stdout.count("calibration of") == 1  # only rank 0 reports
        assert load_machine(str(profile)).bandwidth_Bps > 0
