"""Calibration without torch: parsing nccl-tests and OSU logs, the α–β fits, the profile YAML,
and `gridcost calibrate import` end to end (tests/data/logs holds synthetic real-format logs;
their generating values are in tests/data/logs/README.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from costmodel.cli import cli, main
from costmodel.errors import SpecError, UsageError
from costmodel.inputs.loaders import load_machine
from costmodel.measure.calibration import (
    Series,
    calibrate,
    detect_format,
    fit_series,
    parse_log,
    parse_logs,
    parse_nccl_tests,
    parse_osu,
    profile_yaml,
    rate_of,
)

LOGS = Path(__file__).resolve().parent / "data" / "logs"

# (file, collective, p, α µs, bandwidth GB/s) the synthetic logs were generated with
GENERATED = [
    ("nccl-tests_all_reduce_perf.txt", "allreduce", 8, 6.0, 22.0),
    ("nccl-tests_all_gather_perf.txt", "allgather", 8, 5.5, 21.0),
    ("osu_allreduce.txt", "allreduce", 4, 3.1, 9.0),
    ("osu_allgather.txt", "allgather", 4, 2.9, 9.5),
    ("osu_latency.txt", "p2p", 2, 1.6, 11.0),
]


def read(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def exact_series(collective: str, p: int, alpha: float, beta: float,
                 collectives: str = "paper") -> Series:
    words = 4.0 ** np.arange(0, 12)
    rate = rate_of(collective, p, collectives)
    seconds = alpha * float(rate.messages) + beta * float(rate.per_word) * words
    return Series(collective, p, words, seconds)


# --------------------------------------------------------------------------- parsing


def test_formats_are_detected() -> None:
    assert detect_format(read("nccl-tests_all_reduce_perf.txt")) == "nccl-tests"
    assert detect_format(read("osu_allgather.txt")) == "osu"
    assert detect_format(read("osu_latency.txt")) == "osu"
    assert detect_format("hello\n") == ""


def test_nccl_all_reduce_rows_ranks_and_sizes() -> None:
    s = parse_nccl_tests(read("nccl-tests_all_reduce_perf.txt"), "x.txt")
    assert (s.collective, s.p) == ("allreduce", 8)
    assert s.words[0] == 2  # 8 bytes = two float32 words
    assert s.words[-1] == 16 * 2**20 / 4
    assert s.seconds[0] == pytest.approx(36.92e-6)  # the out-of-place column, µs → s
    assert len(s.words) == 8


def test_nccl_all_gather_size_is_the_total_gathered() -> None:
    s = parse_nccl_tests(read("nccl-tests_all_gather_perf.txt"), "x.txt")
    assert s.collective == "allgather"
    # first row: size 64 B, count 2 floats per rank on 8 ranks -> n = 16 words in total
    assert s.words[0] == 16


def test_nccl_collective_from_the_file_name_and_override() -> None:
    text = "\n".join(line for line in read("nccl-tests_all_reduce_perf.txt").splitlines()
                     if "Collective test starting" not in line)
    assert parse_nccl_tests(text, "logs/all_reduce_perf.out").collective == "allreduce"
    assert parse_nccl_tests(text, "run.log", collective="allgather").collective == "allgather"
    with pytest.raises(SpecError, match=r"run\.log: collective: expected a log of all_gather_perf"):
        parse_nccl_tests(text, "run.log")


def test_nccl_rows_without_root_column_older_versions() -> None:
    text = ("#  Rank  0 Pid 1 on a device 0\n#  Rank  1 Pid 2 on b device 0\n"
            "#       size         count      type   redop     time   algbw   busbw  error\n"
            "        1024           256     float     sum    20.00    0.05    0.05  0e+00\n"
            "     1048576        262144     float     sum   120.00    8.74    8.74  0e+00\n")
    s = parse_nccl_tests(text, "all_reduce_perf.log")
    assert s.p == 2
    assert list(s.words) == [256, 262144]
    assert list(s.seconds) == pytest.approx([20e-6, 120e-6])


def test_nccl_word_size_must_match_the_data_type() -> None:
    with pytest.raises(SpecError, match=r"line 17: expected data type of 2-byte words"):
        parse_nccl_tests(read("nccl-tests_all_reduce_perf.txt"), "x.txt", word_bytes=2)


def test_osu_allgather_size_is_per_process() -> None:
    s = parse_osu(read("osu_allgather.txt"), "osu_allgather.txt", procs=4)
    assert (s.collective, s.p) == ("allgather", 4)
    assert s.words[0] == 4 * 4 / 4  # 4 bytes from each of 4 processes, in 4-byte words
    assert s.seconds[0] == pytest.approx(5.91e-6)


def test_osu_collectives_need_procs_latency_does_not() -> None:
    with pytest.raises(UsageError, match="OSU logs do not state the number of processes"):
        parse_osu(read("osu_allreduce.txt"), "osu_allreduce.txt")
    s = parse_osu(read("osu_latency.txt"), "osu_latency.txt")
    assert (s.collective, s.p, s.words[0]) == ("p2p", 2, 1)


def test_unknown_log_names_what_was_expected() -> None:
    with pytest.raises(SpecError, match=r"^notes.txt: expected an nccl-tests log"):
        parse_log("just text\n", "notes.txt")


def test_header_without_rows_is_an_error() -> None:
    with pytest.raises(SpecError, match="expected OSU result rows"):
        parse_osu("# OSU MPI Allreduce Latency Test v7.3\n# Size  Avg Latency(us)\n", "a",
                  procs=4)


def test_raw_json_round_trip() -> None:
    raw = {"word_bytes": 4, "series": [{"collective": "allreduce", "p": 3, "words": [1, 1024],
                                        "seconds": [1e-4, 2e-4]}]}
    [s] = parse_logs(json.dumps(raw), "raw.json")
    assert (s.collective, s.p, list(s.words)) == ("allreduce", 3, [1, 1024])
    with pytest.raises(SpecError, match=r"raw\.json: series: expected the JSON of"):
        parse_logs('{"x": 1}', "raw.json")


def test_raw_json_repetitions_are_summarised_by_the_statistic() -> None:
    raw = {"word_bytes": 4, "series": [{
        "collective": "allgather", "p": 2, "words": [2, 64],
        "seconds": [2e-4, 3e-4],                       # the medians, as written
        "samples": [[1e-4, 2e-4, 6e-4], [3e-4, 3e-4, 9e-4]]}]}
    text = json.dumps(raw)
    [mean] = parse_logs(text, "raw.json")
    [median] = parse_logs(text, "raw.json", summary="median")
    assert list(mean.seconds) == pytest.approx([3e-4, 5e-4], rel=1e-12)
    assert list(median.seconds) == pytest.approx([2e-4, 3e-4], rel=1e-12)
    with pytest.raises(UsageError, match="statistic: expected one of mean, median, got 'max'"):
        parse_logs(text, "raw.json", summary="max")


def test_calibrate_import_statistic_option(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    raw = {"word_bytes": 4, "series": [{
        "collective": "allreduce", "p": 2, "words": [1, 1024, 65536],
        "seconds": [1e-4, 2e-4, 3e-3],
        "samples": [[1e-4, 1e-4, 4e-4], [2e-4, 2e-4, 5e-4], [3e-3, 3e-3, 6e-3]]}]}
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(raw))
    alphas = {}
    for summary in ("mean", "median"):
        out = tmp_path / f"{summary}.json"
        # three sizes, one in the bandwidth regime: a toy series, accepted explicitly
        assert main(["calibrate", "import", str(path), "--statistic", summary, "--format",
                     "json", "-o", str(out), "--accept-implausible"]) == 0
        alphas[summary] = json.loads(out.read_text())["alpha_s"]
    assert alphas["mean"] > alphas["median"]
    assert main(["calibrate", "import", str(path), "--statistic", "max"]) == 2
    assert "--statistic" in capsys.readouterr().err


# --------------------------------------------------------------------------- fitting


@pytest.mark.parametrize(("collective", "p"), [("allgather", 2), ("allgather", 3),
                                               ("allgather", 8), ("allreduce", 4),
                                               ("allreduce", 5), ("p2p", 2)])
def test_fit_recovers_alpha_beta_of_exact_data(collective: str, p: int) -> None:
    fit = fit_series(exact_series(collective, p, 20e-6, 1e-9))
    assert fit.alpha_s == pytest.approx(20e-6, rel=1e-6)
    assert fit.beta_s_per_word == pytest.approx(1e-9, rel=1e-6)
    assert np.max(np.abs(fit.relative_residuals)) < 1e-6


def test_mapping_follows_the_cost_formula() -> None:
    # all-gather on p = 5 (paper): a = α·⌈log2 5⌉ = 3α, b = β·4/5
    fit = fit_series(exact_series("allgather", 5, 10e-6, 2e-9))
    assert fit.a_s == pytest.approx(30e-6, rel=1e-6)
    assert fit.b_s_per_word == pytest.approx(1.6e-9, rel=1e-6)
    # ring all-gather: a = (p − 1)·α
    ring = fit_series(exact_series("allgather", 5, 10e-6, 2e-9, "ring"), "ring")
    assert ring.a_s == pytest.approx(40e-6, rel=1e-6)
    assert ring.alpha_s == pytest.approx(10e-6, rel=1e-6)


def test_robust_fit_shrugs_off_one_outlier() -> None:
    s = exact_series("allreduce", 4, 20e-6, 1e-9)
    seconds = s.seconds.copy()
    seconds[5] *= 5.0
    fit = fit_series(Series("allreduce", 4, s.words, seconds))
    assert fit.alpha_s == pytest.approx(20e-6, rel=0.05)
    assert fit.beta_s_per_word == pytest.approx(1e-9, rel=0.05)


def test_joint_fit_of_consistent_series_is_exact() -> None:
    series = [exact_series("allgather", 4, 15e-6, 3e-9), exact_series("allreduce", 4, 15e-6, 3e-9),
              exact_series("p2p", 2, 15e-6, 3e-9)]
    cal = calibrate(series)
    assert cal.alpha_s == pytest.approx(15e-6, rel=1e-6)
    assert cal.beta_s_per_word == pytest.approx(3e-9, rel=1e-6)
    assert cal.bandwidth_Bps == pytest.approx(4 / 3e-9, rel=1e-6)


@pytest.mark.parametrize(("name", "collective", "p", "alpha_us", "bw_gbs"), GENERATED)
def test_sample_logs_give_back_their_generating_values(name: str, collective: str, p: int,
                                                       alpha_us: float, bw_gbs: float) -> None:
    s = parse_log(read(name), name, procs=p if name.startswith("osu_all") else None)
    assert (s.collective, s.p) == (collective, p)
    fit = fit_series(s)
    assert fit.alpha_s * 1e6 == pytest.approx(alpha_us, rel=0.06)
    assert 4 / fit.beta_s_per_word / 1e9 == pytest.approx(bw_gbs, rel=0.06)
    assert np.max(np.abs(fit.relative_residuals)) < 0.06  # the logs carry ±4 % noise


def test_series_need_two_points_and_two_processes() -> None:
    with pytest.raises(UsageError, match="at least two"):
        Series("allreduce", 2, np.array([1.0]), np.array([1.0]))
    with pytest.raises(UsageError, match="at least 2 processes"):
        Series("allreduce", 1, np.array([1.0, 2.0]), np.array([1.0, 2.0]))


# --------------------------------------------------------------------------- profile


def test_profile_loads_and_keeps_the_fit(tmp_path: Path) -> None:
    cal = calibrate([exact_series("allreduce", 4, 25e-6, 2e-9),
                     exact_series("allgather", 4, 25e-6, 2e-9)])
    path = tmp_path / "host.yaml"
    path.write_text(profile_yaml(cal, "host", 5e10, 'a "quoted" host', ["measured here"]),
                    encoding="utf-8")
    machine = load_machine(str(path))
    assert machine.name == "host"
    assert machine.alpha_s == pytest.approx(25e-6, rel=1e-5)
    assert machine.beta_s_per_word == pytest.approx(2e-9, rel=1e-5)
    assert machine.word_bytes == 4
    assert machine.flop_rate == pytest.approx(5e10, rel=1e-5)
    assert machine.description == 'a "quoted" host'


def test_profile_without_flop_rate_says_it_is_a_placeholder() -> None:
    cal = calibrate([exact_series("allreduce", 4, 25e-6, 2e-9)])
    text = profile_yaml(cal, "x", None, "d")
    assert "NOT measured" in text
    assert "flop_rate: 1000 GFLOP/s" in text


# --------------------------------------------------------------------------- CLI


def test_calibrate_import_writes_a_profile_optimize_accepts(tmp_path: Path) -> None:
    profile, plot = tmp_path / "nccl.yaml", tmp_path / "fit.png"
    runner = CliRunner()
    result = runner.invoke(cli, ["calibrate", "import", str(LOGS / "nccl-tests_all_reduce_perf.txt"),
                                 str(LOGS / "nccl-tests_all_gather_perf.txt"), "--name", "nccl8",
                                 "--profile", str(profile), "--plot", str(plot),
                                 "--flop-rate", "100 TFLOP/s"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "all-reduce  8" in result.stdout and "all-gather  8" in result.stdout
    assert f"wrote machine profile {profile}" in result.stdout
    assert plot.stat().st_size > 10_000
    machine = load_machine(str(profile))
    assert machine.alpha_s * 1e6 == pytest.approx(5.75, rel=0.06)
    assert machine.bandwidth_Bps / 1e9 == pytest.approx(21.5, rel=0.06)
    assert machine.flop_rate == 100e12
    done = runner.invoke(cli, ["optimize", "--net", "alexnet", "--P", "64", "--machine",
                               str(profile), "--plan", "fc-model"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "alexnet on nccl8" in done.stdout


def test_calibrate_import_json_has_fits_and_points() -> None:
    result = CliRunner().invoke(cli, ["calibrate", "import", str(LOGS / "osu_latency.txt"),
                                      str(LOGS / "osu_allreduce.txt"), "--procs", "4",
                                      "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert {f["collective"] for f in record["fits"]} == {"p2p", "allreduce"}
    assert len(record["points"]) == 22
    assert math.isfinite(record["alpha_s"]) and record["bandwidth_Bps"] > 0


def test_calibrate_import_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    bad = tmp_path / "bad.log"
    bad.write_text("nothing here\n", encoding="utf-8")
    for args, message in [
        ([str(bad)], f"gridcost: {bad}: expected an nccl-tests log"),
        ([str(LOGS / "osu_allreduce.txt")], "OSU logs do not state the number of processes"),
        ([str(tmp_path / "missing.log")], "missing.log: expected a readable text log"),
        ([str(LOGS / "osu_latency.txt"), "--procs", "0"], "--procs: expected a positive integer"),
        ([str(LOGS / "osu_latency.txt"), "--plot", "x.gif"], "--plot: expected a file name"),
        ([str(LOGS / "osu_latency.txt"), "--flop-rate", "fast"], "--flop-rate: expected"),
    ]:
        assert main(["calibrate", "import", *args]) == 2
        _, err = capsys.readouterr()
        assert len(err.splitlines()) == 1 and message in err, err


def test_idle_note_judges_by_medians() -> None:
    from costmodel.measure.calibration import idle_note

    slow = {"gap_s": 0.002, "words": 64, "back_to_back": [4e-4, 5e-4, 6e-4, 9e-3],
            "after_idle": [3e-3, 4e-3, 4e-3, 5e-3]}
    text, ratio = idle_note(slow)
    assert ratio == pytest.approx(4e-3 / 5.5e-4)
    assert text.startswith("host check: a 64-word all-reduce on 2 processes takes 0.55 ms back "
                           "to back and 4 ms when the ranks arrive 2 ms apart (medians; means "
                           "2.62 and 4 ms; ×7.27): idle CPUs wake slowly here")
    # one huge back-to-back outlier moves the mean, not the verdict
    fine = dict(slow, after_idle=[5e-4, 5e-4, 6e-4, 6e-4])
    text, ratio = idle_note(fine)
    assert ratio == pytest.approx(1.0) and text.endswith("no slow wake-up from idle")


def test_calibrate_import_prints_the_host_check_of_a_run(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    raw = {"word_bytes": 4, "series": [{"collective": "allreduce", "p": 2,
                                        "words": [1, 1024, 65536],
                                        "seconds": [1e-4, 2e-4, 3e-3]}],
           "idle": {"gap_s": 0.002, "words": 64, "p": 2, "back_to_back": [5e-4, 5e-4, 6e-4],
                    "after_idle": [4e-3, 4e-3, 5e-3]}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(raw))
    assert main(["calibrate", "import", str(path), "--accept-implausible"]) == 0
    out = capsys.readouterr().out
    assert "run.json: host check: a 64-word all-reduce on 2 processes takes 0.5 ms" in out
    del raw["idle"]
    path.write_text(json.dumps(raw))
    assert main(["calibrate", "import", str(path), "--accept-implausible"]) == 0
    assert "host check" not in capsys.readouterr().out


def test_a_flat_series_has_no_bandwidth_in_the_table() -> None:
    """Small messages only can time flat, and the bounded fit can end at b = 0: the table says
    '—' for that series' bandwidth instead of dividing by zero."""
    import dataclasses

    from costmodel.measure.calibration import calibrate, fits_table
    from costmodel.output.report import render

    cal = calibrate([exact_series("allgather", 2, 4e-4, 2e-9),
                     exact_series("allreduce", 2, 2e-4, 3e-9)])
    flat = dataclasses.replace(cal.fits[0], b_s_per_word=0.0)
    cal = dataclasses.replace(cal, fits=(flat, cal.fits[1]))
    [row_flat, row_sloped] = fits_table(cal, "t").rows
    assert row_flat[6] == 0 and row_flat[7] is None
    assert row_sloped[7] == pytest.approx(4 / 3e-9 / 1e6, rel=1e-6)
    assert "—" in render(fits_table(cal, "t"), None, "table")
