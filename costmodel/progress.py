"""Progress of long work (sweeps, reproduce, calibrate run, validate) for a person at a terminal.

The library reports progress through a plain callback, :data:`Progress`: ``progress(done,
total, what)`` after each unit of work (``done`` of ``total`` units, ``what`` names the work).
Library functions take ``progress=None`` and call :func:`report`, so they stay silent unless a
caller asks.  The CLI passes :func:`terminal_progress`, which draws one ``\\r``-rewritten line on
stderr only when stderr is a terminal and ``CI`` is not set: pipes, files and CI logs stay
byte-identical with or without it.  No dependency beyond the standard library.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``: ``done`` of ``total`` units of ``what`` are finished."""

MIN_INTERVAL_S = 0.1
"""Least time between two redraws of the line (the last one is always drawn)."""


def report(progress: Progress | None, done: int, total: int, what: str) -> None:
    """Call ``progress`` when there is one: the one line a long-running loop needs."""
    if progress is not None:
        progress(done, total, what)


def _ci(environ: Mapping[str, str]) -> bool:
    """True when ``CI`` is set to anything but empty, 0, false or no (GitHub, GitLab… set it)."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether progress belongs on ``stream``: it is a terminal and we are not in CI."""
    environ = os.environ if environ is None else environ
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False
    return bool(tty) and not _ci(environ)


class TerminalProgress:
    """Draws ``what: done/total (NN %)`` as one line rewritten with ``\\r`` on ``stream``.

    Redraws at most every MIN_INTERVAL_S seconds (``clock`` is injectable for tests); when
    ``done`` reaches ``total`` the line is wiped, so what follows starts on a clean line.
    """

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self._last = -float("inf")
        self._width = 0

    def __call__(self, done: int, total: int, what: str) -> None:
        now = self.clock()
        finished = total > 0 and done >= total
        if not finished and now - self._last < MIN_INTERVAL_S:
            return
        self._last = now
        if finished:
            self._write("\r" + " " * self._width + "\r")
            self._width = 0
            return
        percent = f" ({100 * done // total} %)" if total > 0 else ""
        text = f"{what}: {done:,}/{total:,}{percent}"
        self._write("\r" + text.ljust(self._width))
        self._width = len(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal must not end the work
            pass


def terminal_progress(stream: TextIO | None = None,
                      environ: Mapping[str, str] | None = None) -> Progress | None:
    """A :class:`TerminalProgress` on ``stream`` (default stderr) when :func:`wanted`, else
    None — pass the result straight to a library function's ``progress``."""
    stream = sys.stderr if stream is None else stream
    return TerminalProgress(stream) if wanted(stream, environ) else None


PROGRESS_FILE_VARIABLE = "GRIDCOST_PROGRESS_FILE"
"""Environment variable naming the file a measurement worker writes its progress to; the
launcher (costmodel.measure.launch) sets it and reads the file while it waits."""


class FileProgress:
    """A :data:`Progress` for a worker process: writes ``done total what`` to ``path``
    (replaced atomically, at most every MIN_INTERVAL_S seconds, always the last one)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self._last = -float("inf")

    def __call__(self, done: int, total: int, what: str) -> None:
        now = self.clock()
        if done < total and now - self._last < MIN_INTERVAL_S:
            return
        self._last = now
        line = f"{int(done)} {int(total)} {' '.join(what.split())}\n"
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(line)
            os.replace(tmp, self.path)
        except OSError:  # progress is a courtesy, never a failure
            pass


def worker_progress(rank: int, environ: Mapping[str, str] | None = None) -> Progress | None:
    """Rank 0's :class:`FileProgress` when the launcher asked for one, else None."""
    environ = os.environ if environ is None else environ
    path = environ.get(PROGRESS_FILE_VARIABLE)
    return FileProgress(path) if path and rank == 0 else None


def read_progress(path: str) -> tuple[int, int, str] | None:
    """``(done, total, what)`` from a :class:`FileProgress` file; None when absent or torn."""
    try:
        with open(path, encoding="utf-8") as handle:
            done, total, what = handle.read().rstrip("\n").split(" ", 2)
        return int(done), int(total), what
    except (OSError, ValueError):
        return None
