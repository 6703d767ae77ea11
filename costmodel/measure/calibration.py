"""Calibration: fit α and β of the machine profile to measured collective times.

Input is a set of :class:`Series` — one collective on one process count p, its sizes n (words,
in the model's convention of docs/model.md §3: the total words of an all-gather, the vector of an
all-reduce, the one message of a point-to-point send) and one time per size in seconds — the
mean (default) or the median of the repetitions, see :data:`STATISTICS`.  They come from
``gridcost calibrate run`` (torch.distributed microbenchmarks, costmodel.measure), from the calls
of a real training step (``gridcost validate --raw``; costmodel.measure.series.in_step_series) or
from the logs of nccl-tests and the OSU micro-benchmarks (parsed here from text; the CLI reads
the files; both report average times).

The fit (docs/validation.md, "Calibration"):

1. per series, ``t(n) = a + b·n`` by robust least squares on *relative* residuals
   ``(a + b·n − t)/t`` (scipy.optimize.least_squares, soft-L1 loss, a, b ≥ 0), so 4 B and 64 MiB
   weigh alike;
2. a and b map to α and β through the collective's rate in costmodel.engine.collectives (messages
m(p)
   and words per word w(p)): ``α = a/m(p)``, ``β = b/w(p)`` — e.g. Bruck all-gather
   m = ⌈log2 p⌉, w = (p−1)/p; the paper's all-reduce m = 2⌈log2 p⌉, w = 2(p−1)/p; a
   point-to-point message m = 1, w = 1;
3. the profile's single α and β are one joint fit of ``t = α·m(p) + β·w(p)·n`` over every point
   of every series (same relative residuals).

No torch here; scipy is imported inside the fitting functions only.
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import numpy as np

from costmodel.engine.collectives import Rate, algorithms
from costmodel.errors import SpecError, UsageError
from costmodel.inputs.specs import Machine
from costmodel.measure.series import COLLECTIVE_LABELS as COLLECTIVE_LABELS
from costmodel.measure.series import COLLECTIVES as COLLECTIVES
from costmodel.measure.series import STATISTICS as STATISTICS
from costmodel.measure.series import Series as Series
from costmodel.measure.series import in_step_series
from costmodel.measure.series import statistic as statistic
from costmodel.output.report import Table
from costmodel.records import (
    CalibrationRecord,
    IdleRecord,
    PointRecord,
    RawBenchSeriesRecord,
    SeriesFitRecord,
)


def rate_of(collective: str, p: int, collectives: str = "paper") -> Rate:
    """The model's rate (messages m(p), words per word w(p)) of ``collective`` on p processes."""
    algo = algorithms(collectives)
    parr = np.asarray(float(p))
    if collective == "allgather":
        return algo.allgather_rate(parr)
    if collective == "allreduce":
        return algo.allreduce_rate(parr)
    return Rate(np.asarray(1.0), np.asarray(1.0))  # one halo-style message: α + β·n (Eq. 7)


@dataclass(frozen=True)
class SeriesFit:
    """t(n) = a + b·n for one series and what it means for α and β.

    ``a_s`` seconds, ``b_s_per_word`` seconds per word; ``alpha_s = a/m(p)``,
    ``beta_s_per_word = b/w(p)``; ``relative_residuals`` (fit − measured)/measured per point.
    """

    series: Series
    a_s: float
    b_s_per_word: float
    messages: float
    per_word: float
    relative_residuals: np.ndarray

    @property
    def alpha_s(self) -> float:
        return self.a_s / self.messages if self.messages > 0 else 0.0

    @property
    def beta_s_per_word(self) -> float:
        return self.b_s_per_word / self.per_word

    def predict(self, words: np.ndarray) -> np.ndarray:
        return self.a_s + self.b_s_per_word * np.asarray(words, dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """Per-series fits and the joint α (s), β (s/word) over all of them."""

    fits: tuple[SeriesFit, ...]
    alpha_s: float
    beta_s_per_word: float
    word_bytes: int
    collectives: str
    relative_residuals: np.ndarray
    per_collective: tuple[tuple[str, float, float], ...] = ()
    """(kind, α s, β s/word) of each collective kind's own joint fit over its series (all p),
    in COLLECTIVES order; kinds whose fit finds no bandwidth term are left out."""

    @property
    def bandwidth_Bps(self) -> float:
        """word_bytes / β, bytes per second."""
        return self.word_bytes / self.beta_s_per_word

    def predict(self, series: Series) -> np.ndarray:
        """The joint fit's time for each point of ``series``: α·m(p) + β·w(p)·n, seconds."""
        rate = rate_of(series.collective, series.p, self.collectives)
        return (self.alpha_s * float(rate.messages)
                + self.beta_s_per_word * float(rate.per_word) * series.words)


def _robust_linear(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust least squares of t ≈ X·c (columns of ``x``), relative residuals, c ≥ 0.

    Returns (coefficients, relative residuals).  Starts from the ordinary relative least-squares
    solution clipped to ≥ 0.  Numerical warnings and whatever LAPACK prints are kept from the
    output; a fit that ends in non-finite values is a UsageError.
    """
    with _native_output_silenced(), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            coef, residuals = _solve_relative(x, t)
        except (np.linalg.LinAlgError, ValueError):
            coef = np.full(x.shape[1], np.nan)
            residuals = np.full(t.shape, np.nan)
    if not (np.isfinite(coef).all() and np.isfinite(residuals).all()):
        raise UsageError("the α–β fit did not converge to finite values: check the sizes and "
                         "times of the measurements")
    return coef, residuals


@contextmanager
def _native_output_silenced() -> Iterator[None]:
    """Send what native code (LAPACK's error printer, Fortran) writes to file descriptors 1
    and 2 to a scratch file for the duration, so that only gridcost's own output appears."""
    import os
    import sys
    import tempfile

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved: list[tuple[int, int]] = []
    try:
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
    except OSError:  # no such descriptors (an embedded interpreter): nothing to guard
        for _, copy in saved:
            os.close(copy)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            for fd, _ in saved:
                os.dup2(sink.fileno(), fd)
            yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def _solve_relative(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_robust_linear` without its guards."""
    from scipy.optimize import least_squares  # type: ignore[import-untyped]

    scale = 1.0 / t
    design = x * scale[:, None]
    if not np.isfinite(design).all():  # LAPACK is never handed infinities (numpy < 1.25 on
        raise ValueError("non-finite sizes or times")  # Python 3.11 then raises SystemError)
    start, *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    # columns differ by orders of magnitude (seconds vs seconds per word): solve in units of
    # each column's start so the solver's tolerances mean the same for both
    col = np.maximum(np.abs(start), 1e-30)
    col = np.where(start > 0, col, np.max(t) / np.maximum(np.max(x, axis=0), 1e-30))

    def residual(c: np.ndarray) -> np.ndarray:
        return np.asarray((design @ (c * col)) - 1.0)

    x0 = np.clip(start / col, 0.0, None) + 1e-12
    solved = least_squares(residual, x0, bounds=(0.0, np.inf), loss="soft_l1", f_scale=0.1,
                           x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
    coef = solved.x * col
    return coef, (x @ coef - t) / t


def fit_series(series: Series, collectives: str = "paper") -> SeriesFit:
    """Fit t(n) = a + b·n to one series and map (a, b) to (α, β) through its rate."""
    words = np.asarray(series.words, dtype=np.float64)
    seconds = np.asarray(series.seconds, dtype=np.float64)
    if np.any(seconds <= 0) or np.any(words <= 0):
        raise UsageError(f"{series.source or series.label}: sizes and times must be positive")
    x = np.column_stack([np.ones_like(words), words])
    (a, b), residuals = _robust_linear(x, seconds)
    rate = rate_of(series.collective, series.p, collectives)
    return SeriesFit(series, float(a), float(b), float(rate.messages), float(rate.per_word),
                     residuals)


def calibrate(series: Sequence[Series], collectives: str = "paper") -> Calibration:
    """Fit each series, then the joint α, β of ``t = α·m(p) + β·w(p)·n`` over all points."""
    if not series:
        raise UsageError("no measurements to fit")
    word_bytes = {s.word_bytes for s in series}
    if len(word_bytes) != 1:
        raise UsageError(f"the series use different word sizes {sorted(word_bytes)}; "
                         "calibrate one word size at a time")
    fits = tuple(fit_series(s, collectives) for s in series)
    (alpha, beta), residuals = _joint_fit(series, collectives)
    if beta <= 0:
        raise UsageError("the fit found no bandwidth term (β = 0): measure larger messages")
    per_kind = []
    for kind in COLLECTIVES:
        mine = [s for s in series if s.collective == kind]
        if mine:
            (a_k, b_k), _ = _joint_fit(mine, collectives)
            if b_k > 0:
                per_kind.append((kind, float(a_k), float(b_k)))
    return Calibration(fits, float(alpha), float(beta), word_bytes.pop(), collectives, residuals,
                       tuple(per_kind))


def _joint_fit(series: Sequence[Series], collectives: str) -> tuple[np.ndarray, np.ndarray]:
    """Robust fit of t = α·m(p) + β·w(p)·n over every point of ``series``: ((α, β), relative
    residuals)."""
    rows, times = [], []
    for s in series:
        rate = rate_of(s.collective, s.p, collectives)
        rows.append(np.column_stack([np.full(len(s.words), float(rate.messages)),
                                     float(rate.per_word) * np.asarray(s.words, float)]))
        times.append(np.asarray(s.seconds, dtype=np.float64))
    return _robust_linear(np.vstack(rows), np.concatenate(times))


# --------------------------------------------------------------------------- plausibility


MAX_BANDWIDTH_BPS = 10e12
"""10 TB/s: no link a process sends over is faster (NVLink 5 moves 1.8 TB/s per GPU, HBM3e
memory about 8 TB/s); a fitted bandwidth beyond it means the sizes never left the latency
regime, not a fast network."""

MIN_LATENCY_S = 1e-9
"""Smallest plausible α: 1 ns, below any message's latency (shared memory takes ~100 ns).  A
fit with less found no latency term — the bounded fit stops at 0."""

MIN_BANDWIDTH_SIZES = 2
"""Sizes a fit needs where its bandwidth term β·w(p)·n is at least its latency term α·m(p):
with fewer, β is set by one point (or none) and is noise."""

MAX_MEDIAN_RESIDUAL = 0.5
"""Largest median |relative residual| of a fit: beyond it a typical point is off by more than
half, and α + β·n does not describe the measurements."""


@dataclass(frozen=True)
class WrittenFit:
    """One (α, β) pair the profile would carry, the series it was fitted to and its name."""

    label: str
    alpha_s: float
    beta_s_per_word: float
    series: tuple[Series, ...]


def written_fits(cal: Calibration, series: Sequence[Series]) -> list[WrittenFit]:
    """Every α, β the profile of ``cal`` carries (:func:`profile_yaml`): the joint pair, each
    kind's pair and each (kind, p) pair, with the series behind each."""
    out = [WrittenFit("joint fit", cal.alpha_s, cal.beta_s_per_word, tuple(series))]
    for kind, alpha, beta in cal.per_collective:
        out.append(WrittenFit(f"{COLLECTIVE_LABELS[kind]} fit over all its p", alpha, beta,
                              tuple(s for s in series if s.collective == kind)))
    for kind, p, alpha, beta in per_process_fits(cal):
        out.append(WrittenFit(f"{COLLECTIVE_LABELS[kind]} fit at p={p}", alpha, beta,
                              tuple(s for s in series if s.collective == kind and s.p == p)))
    return out


def implausibilities(cal: Calibration, series: Sequence[Series]) -> list[str]:
    """What is physically implausible about the α, β pairs ``cal`` would write (docs/cli.md,
    "calibrate"): a bandwidth above :data:`MAX_BANDWIDTH_BPS`, an α below :data:`MIN_LATENCY_S`
    or a β ≤ 0, fewer
    than :data:`MIN_BANDWIDTH_SIZES` sizes in the bandwidth regime, a median |relative residual|
    above :data:`MAX_MEDIAN_RESIDUAL`.  One line per problem; [] when none."""
    problems = []
    for fit in written_fits(cal, series):
        alpha, beta = fit.alpha_s, fit.beta_s_per_word
        if not beta > 0:
            problems.append(f"{fit.label}: no bandwidth term (β = {beta:.3g} s/word)")
            continue
        bandwidth = cal.word_bytes / beta
        if bandwidth > MAX_BANDWIDTH_BPS:
            problems.append(f"{fit.label}: bandwidth {bandwidth / 1e6:.3g} MB/s, beyond any "
                            f"real link (> {MAX_BANDWIDTH_BPS / 1e12:.0f} TB/s)")
        if not alpha >= MIN_LATENCY_S:
            problems.append(f"{fit.label}: no latency term (α = {alpha:.3g} s, below 1 ns)")
        regime: set[float] = set()
        residuals = []
        for s in fit.series:
            rate = rate_of(s.collective, s.p, cal.collectives)
            latency = alpha * float(rate.messages)
            bandwidth_term = beta * float(rate.per_word) * np.asarray(s.words, float)
            regime |= {float(n) * s.word_bytes
                       for n, t in zip(s.words, bandwidth_term) if t >= latency}
            seconds = np.asarray(s.seconds, float)
            residuals.append((latency + bandwidth_term - seconds) / seconds)
        if len(regime) < MIN_BANDWIDTH_SIZES:
            problems.append(f"{fit.label}: {len(regime)} size(s) where bandwidth outweighs "
                            f"latency (at least {MIN_BANDWIDTH_SIZES} needed; the crossover is "
                            f"~{_size_text(alpha / beta * cal.word_bytes)})")
        median = float(np.median(np.abs(np.concatenate(residuals)))) if residuals else 0.0
        if median > MAX_MEDIAN_RESIDUAL:
            problems.append(f"{fit.label}: poor fit, median residual {median * 100:.0f} % "
                            f"(> {MAX_MEDIAN_RESIDUAL * 100:.0f} %)")
    return problems


def _size_text(n_bytes: float) -> str:
    """Bytes for a message: '412 KiB', '3.1 MiB' (binary steps), '12 B'."""
    value, unit = float(n_bytes), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or not np.isfinite(value):
            break
        value, unit = value / 1024, bigger
    return f"{value:.3g} {unit}"


# --------------------------------------------------------------------------- machine profile


def calibrated_machine(cal: Calibration, base: Machine, name: str) -> Machine:
    """``base`` (its flop rate, memory, compute tables) with the fitted α, β of ``cal``: the
    joint pair, each kind's own pair and each series' pair per group size (``per_collective``
    with ``processes``) — the profile :func:`profile_yaml` writes, without the YAML round trip.
    A flat machine (no ``levels``)."""
    wb = cal.word_bytes
    return dataclasses.replace(
        base, name=name, alpha_s=cal.alpha_s, bandwidth_Bps=cal.bandwidth_Bps, word_bytes=wb,
        levels=(),
        per_collective=tuple((kind, alpha, wb / beta) for kind, alpha, beta in cal.per_collective),
        per_collective_processes=tuple((kind, p, alpha, wb / beta)
                                       for kind, p, alpha, beta in per_process_fits(cal)))


def _g(value: float) -> str:
    return f"{value:.6g}"


def profile_yaml(cal: Calibration, name: str, flop_rate: float | None, description: str,
                 provenance: Sequence[str] = (), warnings: Sequence[str] = ()) -> str:
    """A machine profile (docs/formats.md) with the joint α and bandwidth, as YAML text.

    ``flop_rate`` in FLOP/s; None writes a placeholder of 1 TFLOP/s and a comment saying so.
    The per-series fits go into comments, and so do ``warnings`` (the implausibilities it was
    written despite).  Loads with costmodel.inputs.loaders.load_machine.
    """
    lines = [f"# Machine profile written by gridcost calibrate ({cal.collectives} collectives).",
             *(f"# WARNING (written with --accept-implausible): {_comment(w)}"
               for w in warnings),
             *(f"# {_comment(p)}" for p in provenance),
             "# Per-series fits t(n) = a + b·n and the α, β they imply (n in words):"]
    for f in cal.fits:
        worst = float(np.max(np.abs(f.relative_residuals))) * 100
        lines.append(f"#   {f.series.label}: a = {_g(f.a_s * 1e6)} us, "
                     f"b = {_g(f.b_s_per_word * 1e9)} ns/word -> α = {_g(f.alpha_s * 1e6)} us, "
                     f"β = {_g(f.beta_s_per_word * 1e9)} ns/word; worst residual {worst:.1f} %")
    worst = float(np.max(np.abs(cal.relative_residuals))) * 100
    lines.append(f"# Joint fit over all points: worst residual {worst:.1f} %.")
    if flop_rate is None:
        lines.append("# flop_rate: NOT measured (communication logs only) — 1 TFLOP/s is a "
                     "placeholder; set it.")
        flop_rate = 1e12
    lines += [
        "version: 1",
        f"name: {_yaml_text(name)}",
        f"description: {_yaml_text(description)}",
        f"alpha: {_g(cal.alpha_s * 1e6)} us",
        f"bandwidth: {_g(cal.bandwidth_Bps / 1e6)} MB/s",
        f"word_bytes: {cal.word_bytes}",
        f"flop_rate: {_g(flop_rate / 1e9)} GFLOP/s",
    ]
    if cal.per_collective:
        lines.append("# Each collective kind's own joint fit over its series (all p), used for "
                     "that kind instead of alpha, bandwidth;")
        lines.append("# processes: per group size p, the fit of that kind's series on p "
                     "processes, used for groups of exactly p.")
        lines.append("per_collective:")
        by_p = per_process_fits(cal)
        for kind, a_k, b_k in cal.per_collective:
            alpha, bandwidth = f"{_g(a_k * 1e6)} us", f"{_g(cal.word_bytes / b_k / 1e6)} MB/s"
            rows = [(p, a, b) for k, p, a, b in by_p if k == kind]
            if not rows:
                lines.append(f"  {kind}: {{alpha: {alpha}, bandwidth: {bandwidth}}}")
                continue
            lines += [f"  {kind}:", f"    alpha: {alpha}", f"    bandwidth: {bandwidth}",
                      "    processes:"]
            lines += [f"      {p}: {{alpha: {_g(a * 1e6)} us, "
                      f"bandwidth: {_g(cal.word_bytes / b / 1e6)} MB/s}}" for p, a, b in rows]
        skipped = sorted({(f.series.collective, f.series.p) for f in cal.fits}
                         - {(k, p) for k, p, _, _ in by_p})
        if skipped:
            lines.append("# no processes entry (its fit has α = 0 or β = 0, or the kind has no "
                         "fit of its own): " + ", ".join(f"{k} p={p}" for k, p in skipped))
    return "\n".join(lines) + "\n"


def loadable_profile(text: str, path: str) -> str:
    """``text``, a machine profile about to be written to ``path``, when gridcost can load it
    back; else a UsageError saying nothing was written.  --accept-implausible writes implausible
    fits, but never a profile outside the loader's ranges (docs/formats.md, "Limits and
    ranges"): the loader (costmodel.inputs.loaders.machine_from_text) is the one judge."""
    from costmodel.inputs.loaders import machine_from_text

    try:
        machine_from_text(text, path)
    except SpecError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise UsageError(f"--profile {path}: nothing written: the fitted profile would not load "
                         f"({reason})") from None
    return text


def per_process_fits(cal: Calibration) -> tuple[tuple[str, int, float, float], ...]:
    """(kind, p, α s, β s/word) per collective kind and group size p, for the ``processes``
    table of the profile's ``per_collective`` (docs/formats.md): the per-series fit α = a/m(p),
    β = b/w(p) — a joint fit when several series share (kind, p).  Left out: kinds without a
    ``per_collective`` fit of their own (the table needs the kind's pooled pair) and fits with
    α = 0 or β = 0 (the bounded fit found no latency or no bandwidth term: the pooled pair is
    the better guess).  In COLLECTIVES order, p ascending."""
    kinds = {kind for kind, _, _ in cal.per_collective}
    groups: dict[tuple[str, int], list[SeriesFit]] = {}
    for f in cal.fits:
        if f.series.collective in kinds:
            groups.setdefault((f.series.collective, f.series.p), []).append(f)
    out = []
    for (kind, p), fits in sorted(groups.items(), key=lambda g: (COLLECTIVES.index(g[0][0]),
                                                                 g[0][1])):
        if len(fits) == 1:
            alpha, beta = fits[0].alpha_s, fits[0].beta_s_per_word
        else:
            (alpha, beta), _ = _joint_fit([f.series for f in fits], cal.collectives)
        if alpha > 0 and beta > 0:
            out.append((kind, p, float(alpha), float(beta)))
    return tuple(out)


def _yaml_text(text: str) -> str:
    """A YAML double-quoted scalar of ``text`` on one line (YAML 1.1 §5.7 escapes): backslash
    and quote escaped, every character Python does not call printable — newlines, controls,
    YAML's other line breaks U+0085, U+2028, U+2029 — as \\xXX, \\uXXXX or \\UXXXXXXXX, so it
    stays inside the string."""
    def escape(ch: str) -> str:
        if ch in '\\"':
            return "\\" + ch
        if ch.isprintable():
            return ch
        code = ord(ch)
        return f"\\x{code:02X}" if code < 0x100 else (
            f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}")

    return '"' + "".join(escape(ch) for ch in text) + '"'


def _comment(text: str) -> str:
    """``text`` for the rest of one YAML comment line: control characters (a newline would end
    the comment and start a key) shown as escapes."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


# --------------------------------------------------------------------------- log parsers


_NCCL_COLLECTIVES = {"all_gather": "allgather", "all_reduce": "allreduce",
                     "sendrecv": "p2p"}
_NCCL_ROOT_HEADER = re.compile(r"^#\s+size\s+count\s+type\s+redop\s+root\b", re.MULTILINE)
_WORD_BYTES = {"float": 4, "half": 2, "bfloat16": 2, "double": 8, "int32": 4, "int": 4,
               "uint8": 1, "int8": 1, "char": 1, "int64": 8, "uint64": 8, "uint32": 4}


def detect_format(text: str) -> str:
    """'nccl-tests' or 'osu' from the log's header lines; '' when neither."""
    if re.search(r"^#\s+size\s+count\s+type", text, re.MULTILINE):
        return "nccl-tests"
    if re.search(r"^#\s*OSU MPI", text, re.MULTILINE) or re.search(
            r"^#\s*Size\s+(Avg\s+)?Latency", text, re.MULTILINE):
        return "osu"
    return ""


def _collective_from_name(text: str, names: dict[str, str]) -> str | None:
    lowered = text.lower()
    for key, value in names.items():
        if key in lowered:
            return value
    return None


def parse_nccl_tests(text: str, source: str, collective: str | None = None,
                     procs: int | None = None, word_bytes: int = 4) -> Series:
    """One nccl-tests run (all_gather_perf, all_reduce_perf, sendrecv_perf) → a Series.

    Columns ``size count type redop root time algbw busbw #wrong`` (out-of-place first; older
    versions lack ``root``); size in bytes — for all_gather the total gathered bytes, the model's
    n — and time in µs.  p is the number of ``#  Rank`` lines unless ``procs`` is given; the
    collective comes from ``collective``, a ``Collective test starting: …`` line or the file name.
    """
    found = collective or _collective_from_name(
        " ".join(re.findall(r"Collective test starting:\s*(\S+)", text)) or source,
        _NCCL_COLLECTIVES)
    if found is None:
        raise SpecError(source, "collective", "a log of all_gather_perf, all_reduce_perf or "
                        "sendrecv_perf (name the file so, or pass --collective)")
    ranks = len(re.findall(r"^#\s+Rank\s+\d+", text, re.MULTILINE))
    p = procs or ranks
    time_column = 5 if _NCCL_ROOT_HEADER.search(text) else 4  # older versions lack ``root``
    sizes, times = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#") or not line.strip():
            continue
        tokens = line.split()
        # a result row: size and count as integers, type and redop, [root], time, …
        if len(tokens) <= time_column or not (_is_count(tokens[0]) and _is_count(tokens[1])):
            continue
        dtype = tokens[2]
        size_b = _log_size(tokens[0], source, number)
        time_us = _log_time(tokens[time_column], source, number)
        if dtype in _WORD_BYTES and _WORD_BYTES[dtype] != word_bytes:
            raise SpecError(source, f"line {number}", f"data type of {word_bytes}-byte words "
                            "(--word-bytes)", dtype)
        if size_b == 0:
            continue
        sizes.append(size_b / word_bytes)
        times.append(time_us * 1e-6)
    if not sizes:
        raise SpecError(source, "", "nccl-tests result rows (size count type redop root time …)")
    if p < 2:
        raise SpecError(source, "ranks", "'#  Rank' lines of at least 2 ranks (or --procs)", p)
    return Series(found, p, np.asarray(sizes), np.asarray(times), word_bytes, source)


_OSU_COLLECTIVES = {"allgather": "allgather", "allreduce": "allreduce",
                    "latency test": "p2p", "osu_latency": "p2p"}

MAX_LOG_BYTES = 2**50
"""Largest message size read from a log (1 PiB): beyond it a row is an error, not a size."""


def _is_count(token: str) -> bool:
    """An unsigned decimal integer in ASCII digits (a log row's size or count)."""
    return token.isascii() and token.isdigit()


def _log_size(token: str, source: str, line: int) -> int:
    """A log row's message size in bytes (an integer ≤ :data:`MAX_LOG_BYTES`)."""
    if len(token) > 16 or int(token) > MAX_LOG_BYTES:
        raise SpecError(source, f"line {line}", "a message size of at most 2^50 bytes",
                        token[:20] + ("…" if len(token) > 20 else ""))
    return int(token)


LOG_TIME_RANGE_US = (1e-3, 1e10)
"""Times a log row may hold, µs: from 1 ns (less than one memory access) to 10⁴ s."""


def _log_time(token: str, source: str, line: int) -> float:
    """A log row's time in µs: any float syntax ('36.92', '3.6e1'), within
    :data:`LOG_TIME_RANGE_US`."""
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    low, high = LOG_TIME_RANGE_US
    if not low <= value <= high:
        raise SpecError(source, f"line {line}", "a time in µs from 0.001 (1 ns) to 1e10 "
                        "(10^4 s)", token)
    return value


def parse_osu(text: str, source: str, collective: str | None = None, procs: int | None = None,
              word_bytes: int = 4) -> Series:
    """One OSU micro-benchmark run (osu_allgather, osu_allreduce, osu_latency) → a Series.

    Rows ``Size  Avg Latency(us) …``; Size is bytes per process: for osu_allgather each
    process's contribution, so the model's n is p·Size; for osu_allreduce the vector; for
    osu_latency the message, whose latency is already one-way.  OSU does not print the number
    of processes: collectives need ``procs``; osu_latency is p = 2.
    """
    header = " ".join(re.findall(r"^#\s*OSU MPI[^\n]*", text, re.MULTILINE))
    found = collective or _collective_from_name(header or source, _OSU_COLLECTIVES) \
        or _collective_from_name(source, _OSU_COLLECTIVES)
    if found is None:
        raise SpecError(source, "collective", "a log of osu_allgather, osu_allreduce or "
                        "osu_latency (or pass --collective)")
    p = procs if procs is not None else (2 if found == "p2p" else 0)
    if p < 2:
        raise UsageError(f"{source}: OSU logs do not state the number of processes; "
                         "pass --procs")
    sizes, times = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        tokens = line.split()
        # a result row: the size in bytes, then the (average) latency in µs, …
        if len(tokens) < 2 or not _is_count(tokens[0]):
            continue
        size_b = _log_size(tokens[0], source, number)
        time_us = _log_time(tokens[1], source, number)
        if size_b == 0:
            continue
        total = size_b * p if found == "allgather" else size_b
        sizes.append(total / word_bytes)
        times.append(time_us * 1e-6)
    if not sizes:
        raise SpecError(source, "", "OSU result rows (Size  Avg Latency(us))")
    return Series(found, p, np.asarray(sizes), np.asarray(times), word_bytes, source)


def bench_series(data: dict[str, object], source: str,
                 summary: str = "mean") -> list[Series]:
    """The microbenchmark result of ``gridcost calibrate run`` (its ``--raw`` JSON) → Series.

    Each size's time is ``summary`` (:data:`STATISTICS`) of its repetitions (``samples``: the
    slowest rank's seconds per repetition); results written before repetitions were kept have
    only their medians (``seconds``), which are used as they are.
    """
    summarise = statistic(summary)
    word_bytes = data.get("word_bytes", 4)
    if isinstance(word_bytes, bool) or not isinstance(word_bytes, int) \
            or not 1 <= word_bytes <= 64:
        raise SpecError(source, "word_bytes", "bytes per word, an integer from 1 to 64",
                        word_bytes)
    out = []
    # the measurement's JSON: each entry's fields are checked below as they are read
    entries = cast(list[RawBenchSeriesRecord], data["series"])
    for i, s in enumerate(entries):
        samples = s.get("samples")
        seconds = ([summarise(x) for x in samples] if samples is not None else s["seconds"])
        words = np.asarray(s["words"], float)
        times = np.asarray(seconds, float)
        if words.ndim != 1 or not (np.isfinite(words).all() and (words > 0).all()
                                   and (words * word_bytes <= MAX_LOG_BYTES).all()):
            raise SpecError(source, f"series[{i}].words", "message sizes in words, positive "
                            "and at most 2^50 bytes", s["words"])
        low, high = (v * 1e-6 for v in LOG_TIME_RANGE_US)
        if times.shape != words.shape or not ((times >= low) & (times <= high)).all():
            raise SpecError(source, f"series[{i}].{'samples' if samples else 'seconds'}",
                            "one time per size, from 1 ns to 10^4 s", seconds)
        p = s["p"]
        if isinstance(p, bool) or not isinstance(p, int):
            raise SpecError(source, f"series[{i}].p", "an integer number of processes ≥ 2", p)
        out.append(Series(str(s["collective"]), p, words, times, word_bytes, source))
    return out


def series_from_json(text: str, source: str, summary: str = "mean") -> list[Series]:
    """A gridcost JSON → Series: the microbenchmarks of ``calibrate run --raw`` or the calls of
    the training steps of ``validate --raw`` (each call's time over the iterations, fitted per
    collective and group size: an in-step calibration, costmodel.measure.series.in_step_series)."""
    from costmodel.inputs.loaders import load_json

    statistic(summary)  # an unknown name is a usage error, not a malformed file
    try:
        data = load_json(text, source)
        if isinstance(data, dict) and "runs" in data:
            return in_step_series(data["runs"], source, summary)
        return bench_series(data, source, summary)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        raise SpecError(source, "series", "the JSON of 'gridcost calibrate run --raw' or "
                        "'gridcost validate --raw'") from None


def parse_logs(text: str, source: str, collective: str | None = None,
               procs: int | None = None, word_bytes: int = 4,
               summary: str = "mean") -> list[Series]:
    """A gridcost JSON (calibrate run --raw, validate --raw), nccl-tests or OSU log → its
    Series (``summary`` applies to the JSON's repetitions; the logs hold one average each)."""
    if text.lstrip().startswith("{"):
        return series_from_json(text, source, summary)
    return [parse_log(text, source, collective, procs, word_bytes)]


def parse_log(text: str, source: str, collective: str | None = None, procs: int | None = None,
              word_bytes: int = 4) -> Series:
    """A nccl-tests or OSU log (detected from its header) → a Series."""
    kind = detect_format(text)
    if kind == "nccl-tests":
        return parse_nccl_tests(text, source, collective, procs, word_bytes)
    if kind == "osu":
        return parse_osu(text, source, collective, procs, word_bytes)
    raise SpecError(source, "", "an nccl-tests log ('#  size  count  type …' header) or an OSU "
                    "log ('# Size  Avg Latency(us)' header)")


# --------------------------------------------------------------------------- records


def fit_records(cal: Calibration) -> list[SeriesFitRecord]:
    """One JSON-ready dict per series fit (SI units in the keys)."""
    out: list[SeriesFitRecord] = []
    for f in cal.fits:
        joint = cal.predict(f.series)
        out.append({
            "collective": f.series.collective, "p": f.series.p, "points": len(f.series.words),
            "a_s": f.a_s, "b_s_per_word": f.b_s_per_word, "alpha_s": f.alpha_s,
            "beta_s_per_word": f.beta_s_per_word,
            "max_abs_residual": float(np.max(np.abs(f.relative_residuals))),
            "median_abs_residual": float(np.median(np.abs(f.relative_residuals))),
            "joint_max_abs_residual": float(np.max(np.abs(joint - f.series.seconds)
                                                   / f.series.seconds)),
            "source": f.series.source,
        })
    return out


def points_records(cal: Calibration) -> list[PointRecord]:
    """Every measured point with its per-series and joint prediction."""
    out: list[PointRecord] = []
    for f in cal.fits:
        s = f.series
        joint = cal.predict(s)
        for n, t, own, both in zip(s.words, s.seconds, f.predict(s.words), joint):
            out.append({"collective": s.collective, "p": s.p, "words": float(n),
                        "bytes": float(n) * s.word_bytes, "measured_s": float(t),
                        "series_fit_s": float(own), "joint_fit_s": float(both)})
    return out


def fits_table(cal: Calibration, title: str) -> Table:
    """The fits as a report Table (units in the headers) with the joint α, β in the notes; a
    series without a bandwidth term (β = 0) shows no bandwidth."""
    rows: list[list[object]] = []
    for r in fit_records(cal):
        beta = float(r["beta_s_per_word"])
        rows.append([COLLECTIVE_LABELS[r["collective"]], r["p"], r["points"],
                     float(r["a_s"]) * 1e6, float(r["b_s_per_word"]) * 1e9,
                     float(r["alpha_s"]) * 1e6, beta * 1e9,
                     # a flat series fits b = 0 (the fit is bounded at 0): no bandwidth term
                     cal.word_bytes / beta / 1e6 if beta > 0 else None,
                     float(r["median_abs_residual"]) * 100,
                     float(r["max_abs_residual"]) * 100,
                     float(r["joint_max_abs_residual"]) * 100])
    headers = ["collective", "p", "points", "a [µs]", "b [ns/word]", "α [µs]", "β [ns/word]",
               "bandwidth [MB/s]", "median abs residual [%]", "max abs residual [%]",
               "joint fit max abs residual [%]"]
    worst = float(np.max(np.abs(cal.relative_residuals))) * 100
    notes = [f"joint fit ({cal.collectives} collectives, {cal.word_bytes}-byte words): "
             f"α = {cal.alpha_s * 1e6:.4g} µs, β = {cal.beta_s_per_word * 1e9:.4g} ns/word, "
             f"bandwidth = {cal.bandwidth_Bps / 1e6:.4g} MB/s; worst residual {worst:.1f} %",
             "a, b: t(n) = a + b·n per series; α = a/m(p), β = b/w(p) with the collective's "
             "rate (all-gather m = ⌈log2 p⌉, w = (p−1)/p; paper all-reduce twice that; "
             "point-to-point m = w = 1)"]
    notes += [f"{COLLECTIVE_LABELS[kind]} fit over all its p (profile per_collective): "
              f"α = {a_k * 1e6:.4g} µs, β = {b_k * 1e9:.4g} ns/word, "
              f"bandwidth = {cal.word_bytes / b_k / 1e6:.4g} MB/s"
              for kind, a_k, b_k in cal.per_collective]
    return Table(headers, rows, title, notes)


def idle_probe_of(text: str) -> IdleRecord | None:
    """The idle-arrival probe of a ``calibrate run --raw`` JSON text, or None (another format,
    or a measurement without the probe)."""
    from costmodel.inputs.loaders import load_json

    if not text.lstrip().startswith("{"):
        return None
    try:
        idle = load_json(text, "").get("idle")
    except (ValueError, AttributeError, SpecError):
        return None
    if not (isinstance(idle, dict) and "back_to_back" in idle):
        return None
    return cast(IdleRecord, idle)  # the probe's JSON; idle_note reads it with float()


def idle_note(idle: IdleRecord) -> tuple[str, float]:
    """A one-line reading of the idle-arrival probe (costmodel.measure.bench.idle_probe) and
    the ratio of the medians, after idle ÷ back to back.  Medians judge (a tail of slow
    repetitions of both kinds would swamp means); the means are printed too."""
    back = [float(t) for t in idle["back_to_back"]]
    after = [float(t) for t in idle["after_idle"]]
    ratio = statistics.median(after) / statistics.median(back)
    gap_ms = float(idle["gap_s"]) * 1e3
    verdict = ("idle CPUs wake slowly here: a training step, whose ranks reach each "
               "collective at different times, pays more than the microbenchmarks measure"
               if ratio > 1.5 else "no slow wake-up from idle")
    return (f"host check: a {idle['words']}-word all-reduce on 2 processes takes "
            f"{statistics.median(back) * 1e3:.3g} ms back to back and "
            f"{statistics.median(after) * 1e3:.3g} ms when the ranks arrive {gap_ms:.3g} ms "
            f"apart (medians; means {statistics.fmean(back) * 1e3:.3g} and "
            f"{statistics.fmean(after) * 1e3:.3g} ms; ×{ratio:.2f}): {verdict}", ratio)


def calibration_record(cal: Calibration) -> CalibrationRecord:
    """JSON-ready: joint α, β, bandwidth, the per-series fits and every point."""
    return {"alpha_s": cal.alpha_s, "beta_s_per_word": cal.beta_s_per_word,
            "bandwidth_Bps": cal.bandwidth_Bps, "word_bytes": cal.word_bytes,
            "collectives": cal.collectives,
            "max_abs_residual": float(np.max(np.abs(cal.relative_residuals))),
            "per_collective": {kind: {"alpha_s": a_k, "beta_s_per_word": b_k,
                                      "bandwidth_Bps": cal.word_bytes / b_k}
                               for kind, a_k, b_k in cal.per_collective},
            "fits": fit_records(cal), "points": points_records(cal)}
