"""What `gridcost calibrate` refuses to write (docs/cli.md, "calibrate"): physically implausible
fits, oversubscribed hosts named, and `calibrate import`'s reading of numbers, names and files.
Synthetic series, no torch; one short real run when torch is installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.cli import main
from costmodel.errors import SpecError, UsageError
from costmodel.inputs.loaders import load_machine
from costmodel.measure import launch
from costmodel.measure.calibration import (
    MAX_BANDWIDTH_BPS,
    Series,
    _yaml_text,
    calibrate,
    implausibilities,
    parse_logs,
    parse_nccl_tests,
    parse_osu,
    profile_yaml,
    rate_of,
)

LOGS = Path(__file__).resolve().parent / "data" / "logs"
WORDS = 4.0 ** np.arange(0, 12)  # 4 B … 16 MiB of 4-byte words


def _series(collective: str, p: int, alpha: float, beta: float,
            words: np.ndarray = WORDS, noise: np.ndarray | None = None) -> Series:
    rate = rate_of(collective, p)
    seconds = alpha * float(rate.messages) + beta * float(rate.per_word) * words
    if noise is not None:
        seconds = seconds * noise
    return Series(collective, p, np.asarray(words, float), seconds)


GOOD = [_series("allgather", 2, 50e-6, 1e-9), _series("allreduce", 2, 50e-6, 1e-9),
        _series("p2p", 2, 50e-6, 1e-9)]


# ----------------------------------------------------------------------- the checks


def test_a_clean_measurement_is_plausible() -> None:
    assert implausibilities(calibrate(GOOD), GOOD) == []


def test_bandwidth_beyond_any_link() -> None:
    # 4 B per 1e-18 s = 4e18 B/s: what a 1 MiB run that never left the latency regime fits
    series = [_series("p2p", 2, 200e-6, 1e-18)]
    problems = implausibilities(calibrate(series), series)
    assert any("beyond any real link (> 10 TB/s)" in p for p in problems), problems
    assert MAX_BANDWIDTH_BPS == 10e12


def test_too_few_sizes_in_the_bandwidth_regime() -> None:
    # crossover α/β = 1e5 words: only the 262,144- and 1M-word sizes are past it … with sizes
    # up to 65,536 words there are none
    small = WORDS[WORDS <= 65536]
    series = [_series("p2p", 2, 100e-6, 1e-9, small)]
    problems = implausibilities(calibrate(series), series)
    assert any("0 size(s) where bandwidth outweighs latency (at least 2 needed; the "
               "crossover is ~391 KiB)" in p for p in problems), problems
    enough = [_series("p2p", 2, 100e-6, 1e-9)]
    assert implausibilities(calibrate(enough), enough) == []


def test_no_latency_term() -> None:
    series = [_series("p2p", 2, 0.0, 1e-9), _series("allreduce", 2, 0.0, 1e-9)]
    problems = implausibilities(calibrate(series), series)
    assert any(p.startswith("joint fit: no latency term (α = ") and p.endswith("below 1 ns)") for p in problems), problems


def test_a_poor_fit() -> None:
    rng = np.random.default_rng(7)
    noise = np.exp(rng.normal(0.0, 1.5, WORDS.size))  # typical point off by a factor of ~2.7
    series = [_series("p2p", 2, 50e-6, 1e-9, noise=noise)]
    problems = implausibilities(calibrate(series), series)
    assert any("poor fit, median residual" in p and "(> 50 %)" in p for p in problems), problems


def _raw(path: Path, series: list[Series], word_bytes: int = 4) -> Path:
    raw = {"word_bytes": word_bytes, "series": [
        {"collective": s.collective, "p": s.p, "words": s.words.tolist(),
         "seconds": s.seconds.tolist()} for s in series]}
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_an_implausible_fit_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _raw(tmp_path / "raw.json", [_series("p2p", 2, 200e-6, 1e-18)])
    profile = tmp_path / "p.yaml"
    assert main(["calibrate", "import", str(raw), "--profile", str(profile)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("gridcost: implausible fit, nothing written: joint fit: bandwidth ")
    assert "--accept-implausible" in err
    assert not profile.exists()


def test_accepted_implausible_fits_carry_warnings(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # 1e-14 s per 4-byte word: 400 TB/s, beyond any real link but inside the loader's range
    raw = _raw(tmp_path / "raw.json", [_series("p2p", 2, 200e-6, 1e-14)])
    profile, record_path = tmp_path / "p.yaml", tmp_path / "r.json"
    assert main(["calibrate", "import", str(raw), "--profile", str(profile),
                 "--accept-implausible"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: implausible fit, written because of --accept-implausible: joint fit: " \
           "bandwidth" in out
    text = profile.read_text(encoding="utf-8")
    assert "# WARNING (written with --accept-implausible): joint fit: bandwidth" in text
    load_machine(str(profile))  # implausible, but inside the loader's ranges: it loads
    # beyond the loader's ranges (4e18 B/s) nothing is written, even when asked
    beyond = _raw(tmp_path / "beyond.json", [_series("p2p", 2, 200e-6, 1e-18)])
    profile.unlink()
    assert main(["calibrate", "import", str(beyond), "--profile", str(profile),
                 "--accept-implausible"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and not profile.exists()
    assert err.startswith(f"gridcost: --profile {profile}: nothing written: the fitted profile "
                          "would not load (bandwidth: expected a bandwidth from 1 kB/s to 1 PB/s")
    raw = beyond
    assert main(["calibrate", "import", str(raw), "--accept-implausible", "--format", "json",
                 "-o", str(record_path)]) == 0
    warnings = json.loads(record_path.read_text())["warnings"]
    assert warnings and warnings[0].startswith("joint fit: bandwidth")
    # a plausible fit has none
    good = _raw(tmp_path / "good.json", GOOD)
    assert main(["calibrate", "import", str(good), "--format", "json", "-o",
                 str(record_path)]) == 0
    assert json.loads(record_path.read_text())["warnings"] == []


# ----------------------------------------------------------------------- oversubscription


def test_oversubscription_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "available_cores", lambda: (2, "os.sched_getaffinity"))
    assert launch.oversubscription(2) is None
    crowded = launch.oversubscription(8)
    assert crowded is not None
    assert crowded.text == ("oversubscribed: 8 processes on 2 available cores "
                            "(os.sched_getaffinity): ranks wait for a core, so the times "
                            "measure the scheduler as much as the link")


def test_available_cores_follow_the_affinity_mask() -> None:
    cores, how = launch.available_cores()
    assert cores >= 1 and how in ("os.sched_getaffinity", "os.cpu_count")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_a_short_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    # two processes, small sizes: whatever this host's noise gives, the run writes a profile only
    # with the warnings the checks find in its own measurements, and names the (here: pretended)
    # oversubscription
    monkeypatch.setattr(launch, "available_cores", lambda: (1, "os.sched_getaffinity"))
    raw, profile, record = tmp_path / "raw.json", tmp_path / "p.yaml", tmp_path / "r.json"
    code = main(["calibrate", "run", "--procs", "2", "--max-size", "64 KiB", "--reps", "2",
                 "--warmup", "1", "--idle-gap", "0", "--raw", str(raw), "--profile",
                 str(profile), "--accept-implausible", "--format", "json", "-o", str(record)])
    if code == 2:  # this host's noise fitted a value no profile may hold: refused, not written
        err = capsys.readouterr().err
        assert "nothing written: the fitted profile would not load" in err, err
        assert len(err.splitlines()) == 1 and not profile.exists()
        return
    assert code == 0, capsys.readouterr().err
    result = json.loads(record.read_text())
    assert result["oversubscribed"] == {"processes": 2, "cores": 1,
                                        "counted_by": "os.sched_getaffinity"}
    series = parse_logs(raw.read_text(), str(raw))
    expected = implausibilities(calibrate(series), series)
    assert result["warnings"] == expected
    text = profile.read_text()
    assert "# oversubscribed: 2 processes on 1 available cores" in text
    assert text.count("# WARNING (written with --accept-implausible)") == len(expected)
    load_machine(str(profile))
    # the same measurements without the flag: refused exactly when the checks find something
    assert main(["calibrate", "import", str(raw)]) == (2 if expected else 0)


# ----------------------------------------------------------------------- calibrate import


OSU = "# OSU MPI Latency Test v7.3\n# Size          Latency (us)\n"


@pytest.mark.parametrize(("token", "seconds"), [("3.6e1", 36e-6), ("36", 36e-6),
                                                ("3.6E+01", 36e-6), (".36e2", 36e-6)])
def test_osu_times_in_any_float_syntax(token: str, seconds: float) -> None:
    s = parse_osu(OSU + f"4 1.5\n16 {token}\n", "osu_latency.txt")
    assert s.seconds[1] == pytest.approx(seconds, rel=1e-12)


def test_nccl_times_in_any_float_syntax() -> None:
    text = (LOGS / "nccl-tests_all_reduce_perf.txt").read_text().replace(
        "     36.15    0.00", "   3.615e1    0.00")
    s = parse_nccl_tests(text, "all_reduce.txt")
    assert s.seconds[1] == pytest.approx(36.15e-6, rel=1e-12)


@pytest.mark.parametrize("token", ["-2.5", "0", "nan", "inf", "1e-300", "1e300", "x"])
def test_bad_osu_times_name_the_file_and_line(token: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_osu(OSU + f"4 1.5\n16 {token}\n", "osu_latency.txt")
    assert str(info.value) == (f"osu_latency.txt: line 4: expected a time in µs from 0.001 "
                               f"(1 ns) to 1e10 (10^4 s), got '{token}'")


def test_a_negative_nccl_time_names_the_line() -> None:
    text = (LOGS / "nccl-tests_all_reduce_perf.txt").read_text().replace(
        "     36.15    0.00", "    -36.15    0.00")
    with pytest.raises(SpecError, match=r"^all_reduce.txt: line 18: expected a time in µs"):
        parse_nccl_tests(text, "all_reduce.txt")


def test_a_huge_size_is_an_error_not_a_traceback() -> None:
    with pytest.raises(SpecError, match="line 4: expected a message size of at most 2\\^50"):
        parse_osu(OSU + "4 1.5\n" + "9" * 400 + " 1.6\n", "osu_latency.txt")


def test_a_control_character_in_the_name_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["calibrate", "import", str(LOGS / "osu_latency.txt"), "--name",
                 "evil\nbandwidth: 1 B/s"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == ("gridcost: --name: expected a printable, non-empty name, got "
                   "'evil\\nbandwidth: 1 B/s'\n")


def test_a_file_name_with_a_newline_stays_in_its_comment(tmp_path: Path) -> None:
    log = tmp_path / "osu_latency\nbandwidth: 1 B-s.txt"
    log.write_text((LOGS / "osu_latency.txt").read_text())
    profile = tmp_path / "p.yaml"
    assert main(["calibrate", "import", str(log), "--profile", str(profile)]) == 0
    data = yaml.safe_load(profile.read_text())
    assert data["bandwidth"] != "1 B/s"
    assert "# Fitted to: osu_latency\\nbandwidth: 1 B-s.txt" in profile.read_text()
    assert load_machine(str(profile)).bandwidth_Bps > 1e9


@pytest.mark.parametrize("name", ['a "quoted" name', "back\\slash", "tab\there", "ünï cödé"])
def test_names_round_trip_through_the_profile(name: str) -> None:
    text = profile_yaml(calibrate(GOOD), name, 1e12, f"described: {name}", [f"made {name}"])
    data = yaml.safe_load(text)
    assert data["name"] == name and data["description"] == f"described: {name}"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_any_text_round_trips_as_a_yaml_scalar(text: str) -> None:
    written = _yaml_text(text)
    assert "\n" not in written and "\r" not in written
    assert yaml.safe_load(f"name: {written}\nnext: 1\n") == {"name": text, "next": 1}


@pytest.mark.parametrize("word_bytes", [0, -4, True, 2.5, "4", 1000])
def test_raw_word_bytes_must_be_a_word_size(tmp_path: Path, word_bytes: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"word_bytes": word_bytes, "series": [
        {"collective": "p2p", "p": 2, "words": WORDS.tolist(),
         "seconds": GOOD[2].seconds.tolist()}]}))
    assert main(["calibrate", "import", str(raw)]) == 2
    err = capsys.readouterr().err
    assert err == (f"gridcost: {raw}: word_bytes: expected bytes per word, an integer from 1 "
                   f"to 64, got {word_bytes!r}\n")


def test_raw_negative_times_and_sizes_are_refused(tmp_path: Path) -> None:
    entry = {"collective": "p2p", "p": 2, "words": [1, 4, 16], "seconds": [1e-5, -1e-5, 2e-5]}
    with pytest.raises(SpecError, match=r"series\[0\]\.seconds: expected one time per size"):
        parse_logs(json.dumps({"word_bytes": 4, "series": [entry]}), "raw.json")
    entry = {"collective": "p2p", "p": 2, "words": [1, -4, 16], "seconds": [1e-5, 1e-5, 2e-5]}
    with pytest.raises(SpecError, match=r"series\[0\]\.words: expected message sizes"):
        parse_logs(json.dumps({"word_bytes": 4, "series": [entry]}), "raw.json")


def test_series_word_bytes_is_checked() -> None:
    with pytest.raises(UsageError, match="positive number of bytes per word, got 0"):
        Series("p2p", 2, WORDS, GOOD[2].seconds, 0)


def test_lapack_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    # infinite sizes once made LAPACK print "On entry to DLASCL parameter number 4 had an
    # illegal value" straight to the terminal, then a LinAlgError traceback
    series = Series("p2p", 2, np.array([1.0, 1e308, np.inf]), np.array([1e-6, 2e-6, 3e-6]))
    with pytest.raises(UsageError, match="did not converge to finite values"):
        calibrate([series])
    out, err = capfd.readouterr()
    assert out == "" and err == ""
