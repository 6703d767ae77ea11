"""Progress on stderr for people at a terminal; silent in pipes, files and CI."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from cli_helpers import run

from costmodel.engine.plans import PLANS
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.planning.search import sweep
from costmodel.progress import (
    MIN_INTERVAL_S,
    FileProgress,
    TerminalProgress,
    read_progress,
    report,
    terminal_progress,
    wanted,
    worker_progress,
)


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_rewritten_line_wiped_at_the_end() -> None:
    stream, clock = FakeTerminal(), Clock()
    progress = TerminalProgress(stream, clock)
    progress(0, 2000, "sweep model-batch: grids")
    clock.now += MIN_INTERVAL_S
    progress(1000, 2000, "sweep model-batch: grids")
    clock.now += MIN_INTERVAL_S
    progress(2000, 2000, "sweep model-batch: grids")
    text = stream.getvalue()
    assert "\n" not in text
    assert text.startswith("\rsweep model-batch: grids: 0/2,000 (0 %)")
    assert "\rsweep model-batch: grids: 1,000/2,000 (50 %)" in text
    assert text.endswith("\r" + " " * len("sweep model-batch: grids: 1,000/2,000 (50 %)") + "\r")


def test_redraws_are_throttled_but_the_end_is_not() -> None:
    stream, clock = FakeTerminal(), Clock()
    progress = TerminalProgress(stream, clock)
    for done in range(100):
        progress(done, 100, "x")
    assert stream.getvalue().count("\r") == 1  # only the first, all within one interval
    progress(100, 100, "x")
    assert stream.getvalue().count("\r") == 3  # the wipe: "\r   \r"


def test_wanted_only_on_a_terminal_outside_ci() -> None:
    assert wanted(FakeTerminal(), {})
    assert not wanted(io.StringIO(), {})
    for value in ("true", "1", "yes"):
        assert not wanted(FakeTerminal(), {"CI": value})
    assert wanted(FakeTerminal(), {"CI": "false"})
    assert terminal_progress(io.StringIO(), {}) is None
    assert terminal_progress(FakeTerminal(), {"CI": "true"}) is None
    assert isinstance(terminal_progress(FakeTerminal(), {}), TerminalProgress)


def test_a_closed_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    stream.close()  # isatty() raises ValueError on a closed stream
    assert not wanted(stream, {})


def test_report_without_a_callback_does_nothing() -> None:
    report(None, 1, 2, "x")


def test_sweep_reports_every_p_done() -> None:
    heard: list[tuple[int, int, str]] = []
    net, machine = load_network("alexnet"), load_machine("cori-knl")
    ps = np.arange(1, 65)
    result = sweep(net, machine, ps, np.full(ps.shape, 2048), PLANS["model-batch"],
                   progress=lambda d, t, w: heard.append((d, t, w)))
    assert heard and heard[-1][0] == heard[-1][1] == ps.size == result.processes.size
    assert all(w == "sweep model-batch: P values" for _, _, w in heard)
    assert [d for d, _, _ in heard] == sorted(d for d, _, _ in heard)


def test_the_cli_writes_no_progress_when_stderr_is_not_a_terminal() -> None:
    out = run("sweep", "--net", "alexnet", "--P", "1..64")
    assert "\r" not in out


def test_worker_progress_goes_through_a_file(tmp_path: Path) -> None:
    path = str(tmp_path / "progress")
    assert worker_progress(0, {}) is None
    assert worker_progress(1, {"GRIDCOST_PROGRESS_FILE": path}) is None
    writer = worker_progress(0, {"GRIDCOST_PROGRESS_FILE": path})
    assert isinstance(writer, FileProgress)
    assert read_progress(path) is None
    writer(3, 10, "calibrating allreduce, p=2")
    assert read_progress(path) == (3, 10, "calibrating allreduce, p=2")
    writer(4, 10, "throttled")
    assert read_progress(path) == (3, 10, "calibrating allreduce, p=2")
    writer(10, 10, "calibrating allreduce, p=2")
    assert read_progress(path) == (10, 10, "calibrating allreduce, p=2")
