"""Start the measurement processes: P local workers on 127.0.0.1, or this process under torchrun.

On one host gridcost starts the workers itself (``python -m costmodel.measure.worker``, env://
rendezvous on a free loopback port) and always ends them — on success, on a worker's failure,
on the time limit, on Ctrl-C and on SIGTERM: each worker runs in its own session and is killed by
process group; a worker also dies with its parent (Linux ``PR_SET_PDEATHSIG``).  Under
``torchrun`` (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set) the task runs in this process and
only rank 0 gets a result.  Only the standard library here: torch is imported by the workers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from costmodel.errors import MeasureError
from costmodel.progress import PROGRESS_FILE_VARIABLE, Progress, read_progress

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Oversubscription:
    """More measuring processes on this host than CPU cores it may run on."""

    processes: int
    cores: int
    counted_by: str

    @property
    def text(self) -> str:
        return (f"oversubscribed: {self.processes} processes on {self.cores} available cores "
                f"({self.counted_by}): ranks wait for a core, so the times measure the "
                "scheduler as much as the link")


def available_cores() -> tuple[int, str]:
    """CPU cores this process may run on and how they were counted: the affinity mask
    (os.sched_getaffinity, Linux) or else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), "os.sched_getaffinity"
    return os.cpu_count() or 1, "os.cpu_count"


def oversubscription(processes: int) -> Oversubscription | None:
    """An Oversubscription when ``processes`` on this host exceed its available cores."""
    cores, counted_by = available_cores()
    return Oversubscription(processes, cores, counted_by) if processes > cores else None


def under_torchrun() -> bool:
    """True when the rendezvous variables of torchrun (env://) are set."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FOLDER_PREFIX = "gridcost-measure-"
"""Prefix of the measurement's temporary folder, followed by the parent's pid and '-'."""


class Interrupted(MeasureError):
    """The measurement was interrupted and its workers ended: exit code 130 after Ctrl-C
    (SIGINT), 143 after SIGTERM, as a shell reports a process ended by the signal."""

    def __init__(self, signum: int) -> None:
        self.exit_code = 128 + signum
        what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        super().__init__(f"{what}: all worker processes were ended")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that cleanup code runs."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (_Terminated) for the duration, so cleanup runs."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(procs: list[subprocess.Popen[bytes]], grace_s: float = 3.0) -> None:
    """End every worker still running (SIGTERM to its process group, then SIGKILL) and reap."""
    for proc in procs:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def keep_awake_supported() -> bool:
    """True where :mod:`costmodel.measure.awake` can run (Linux's SCHED_IDLE policy)."""
    return hasattr(os, "SCHED_IDLE") and sys.platform.startswith("linux")


def _start_keepers(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` busy loops at SCHED_IDLE (costmodel.measure.awake), each in its own session."""
    env = dict(os.environ, GRIDCOST_PARENT_PID=str(os.getpid()))
    return [subprocess.Popen([sys.executable, "-m", "costmodel.measure.awake"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(count)]


def reap_stale_folders(root: str | None = None) -> list[str]:
    """Remove the temporary folders of measurements whose gridcost process is gone (killed
    with SIGKILL, which no cleanup survives): ``gridcost-measure-<pid>-*`` with no process
    <pid>.  Returns the folders removed."""
    import re
    import shutil

    removed = []
    base = Path(root or tempfile.gettempdir())
    pattern = re.compile(re.escape(FOLDER_PREFIX) + r"(\d+)-")
    with suppress(OSError):
        for entry in base.iterdir():
            match = pattern.match(entry.name)
            if match is None or not entry.is_dir() or _alive(int(match.group(1))):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(str(entry))
    return removed


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts as alive)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def run_local(task: str, args: dict[str, Any], nprocs: int, timeout_s: float,
              keep_awake: bool = False, progress: Progress | None = None) -> Any:
    """Run ``task`` on ``nprocs`` local worker processes and return rank 0's result.

    ``keep_awake``: also run one :mod:`costmodel.measure.awake` loop per CPU for the duration,
    so that no CPU goes idle (see there).  Raises MeasureError when a worker fails (with the end
    of its output), when the run takes longer than ``timeout_s`` seconds, or when interrupted;
    every worker and keeper is ended either way.  ``progress`` (costmodel.progress) hears
    rank 0's progress while the workers run.
    """
    if keep_awake and not keep_awake_supported():
        raise MeasureError("--keep-awake needs Linux (the SCHED_IDLE scheduling policy)")
    procs: list[subprocess.Popen[bytes]] = []
    keepers: list[subprocess.Popen[bytes]] = []
    logs: list[IO[str]] = []
    reap_stale_folders()
    with tempfile.TemporaryDirectory(prefix=f"{FOLDER_PREFIX}{os.getpid()}-") as tmp:
        folder = Path(tmp)
        args_path, result_path = folder / "args.json", folder / "result.json"
        args_path.write_text(json.dumps(args), encoding="utf-8")
        port = free_port()
        try:
            with _sigterm_as_interrupt():
                if keep_awake:
                    keepers = _start_keepers(os.cpu_count() or 1)
                for rank in range(nprocs):
                    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                               RANK=str(rank), WORLD_SIZE=str(nprocs), LOCAL_RANK=str(rank),
                               LOCAL_WORLD_SIZE=str(nprocs), GLOO_SOCKET_IFNAME="lo",
                               OMP_NUM_THREADS="1", GRIDCOST_PARENT_PID=str(os.getpid()))
                    if progress is not None:
                        env[PROGRESS_FILE_VARIABLE] = str(folder / "progress")
                    log: IO[str] = open(  # noqa: SIM115
                        folder / f"rank{rank}.log", "w", encoding="utf-8")
                    logs.append(log)
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "costmodel.measure.worker", task, str(args_path),
                         str(result_path)],
                        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True))
                _wait(procs, folder, timeout_s, progress)
        except KeyboardInterrupt as exc:
            raise Interrupted(signal.SIGTERM if isinstance(exc, _Terminated)
                              else signal.SIGINT) from None
        finally:
            _terminate(procs + keepers)
            for log in logs:
                log.close()
        try:
            return json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise MeasureError(f"rank 0 wrote no result: {_tail(folder / 'rank0.log')}") from None


def _wait(procs: list[subprocess.Popen[bytes]], folder: Path, timeout_s: float,
          progress: Progress | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last: tuple[int, int, str] | None = None
    while True:
        if progress is not None:
            now = read_progress(str(folder / "progress"))
            if now is not None and now != last:
                last = now
                progress(*now)
        codes = [proc.poll() for proc in procs]
        for rank, code in enumerate(codes):
            if code not in (None, 0):
                raise MeasureError(f"worker rank {rank} failed (exit code {code}): "
                                   f"{_tail(folder / f'rank{rank}.log')}")
        if all(code == 0 for code in codes):
            if progress is not None and last is not None:
                progress(last[1], last[1], last[2])  # done: the line is wiped
            return
        if time.monotonic() > deadline:
            raise MeasureError(f"the measurement did not finish within {timeout_s:g} s "
                               "(--timeout); all worker processes were ended")
        time.sleep(0.05)


def run(task: str, args: dict[str, Any], nprocs: int, timeout_s: float,
        keep_awake: bool = False, progress: Progress | None = None) -> Any:
    """Under torchrun: run ``task`` in this process (rank 0 returns the result, others None);
    otherwise start ``nprocs`` local workers (:func:`run_local`), ``progress`` hearing theirs."""
    if under_torchrun():
        if keep_awake:
            raise MeasureError("--keep-awake is for local runs; on a cluster set the nodes' "
                               "idle policy (e.g. the kernel's idle=poll) instead")
        from costmodel.measure.worker import run_task

        return run_task(task, args)
    return run_local(task, args, nprocs, timeout_s, keep_awake, progress)
