"""The decisions the CLI used to make, now library calls a Python user makes too.

- ``api.count_of`` and ``api.positive_int``: one digit parser for counts given as text;
- ``CalibrationResult.profile_for`` (costmodel.measure.calibration.loadable_profile): no caller writes a
  profile gridcost could not load back; ``written_to`` names the file in table and record;
- ``api.curves`` and ``api.scaling``: the figures' titles and what they draw;
- ``api.network_catalogue``, ``machine_catalogue``, ``published``, ``ImportResult.summary``;
- ``costmodel.measure.live``: the options of calibrate run and validate, checked before any process
  starts, and the message sizes measured.

Each is checked against a value worked out by hand; the CLI's outputs themselves are pinned by
the golden and CLI tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel import api
from costmodel.errors import UsageError
from costmodel.inputs.loaders import bundled_names, machine_from_text
from costmodel.limits import MAX_REPETITIONS, Limit
from costmodel.measure import live
from costmodel.measure.calibration import Series, rate_of

WORDS = 4.0 ** np.arange(0, 12)


def _series(collective: str, p: int, alpha: float, beta: float) -> Series:
    rate = rate_of(collective, p)
    seconds = alpha * float(rate.messages) + beta * float(rate.per_word) * WORDS
    return Series(collective, p, np.asarray(WORDS, float), seconds)


# ----------------------------------------------------------------------- counts


def test_count_of_reads_digits_from_a_minimum() -> None:
    assert api.count_of("0", "--warmup", MAX_REPETITIONS) == 0
    assert api.count_of(" 12 ", "--warmup", MAX_REPETITIONS) == 12
    assert api.count_of(3, "--warmup", MAX_REPETITIONS, minimum=3) == 3
    for bad in ("-1", "1x", "1.0", "1e3", "", "٣"):
        with pytest.raises(UsageError, match=r"^--warmup: expected an integer ≥ 0, got "):
            api.count_of(bad, "--warmup", MAX_REPETITIONS)
    with pytest.raises(UsageError, match=r"^--n: expected an integer ≥ 2, got '1'$"):
        api.count_of("1", "--n", MAX_REPETITIONS, minimum=2)
    with pytest.raises(UsageError, match=r"^--n: "):
        api.count_of("11", "--n", Limit(10, "ten at most"))


@given(st.integers(min_value=0, max_value=10**6))
def test_count_of_and_positive_int_read_the_same_digits(n: int) -> None:
    largest = Limit(10**6, "a test bound")
    assert api.count_of(str(n), "--n", largest) == n
    if n >= 1:
        assert api.positive_int(f" {n}", "--n", largest) == api.count_of(str(n), "--n",
                                                                          largest, minimum=1)
    else:
        with pytest.raises(UsageError, match="expected a positive integer"):
            api.positive_int(str(n), "--n", largest)


# ----------------------------------------------------------------------- calibration profiles


def test_a_profile_that_would_not_load_is_refused_by_the_library() -> None:
    # 4 B per 1e-18 s = 4e18 B/s: implausible (accepted here) and beyond the loader's 1 PB/s
    beyond = api.fit_series([_series("p2p", 2, 200e-6, 1e-18)], name="beyond",
                            description="test", accept_implausible=True)
    with pytest.raises(UsageError, match=r"^--profile p\.yaml: nothing written: the fitted "
                                         r"profile would not load \(bandwidth: expected a "
                                         r"bandwidth from 1 kB/s to 1 PB/s"):
        beyond.profile_for("p.yaml")
    good = api.fit_series([_series("allgather", 2, 50e-6, 1e-9),
                           _series("allreduce", 2, 50e-6, 1e-9), _series("p2p", 2, 50e-6, 1e-9)],
                          name="good", description="test")
    assert good.profile_for("p.yaml") == good.profile_yaml
    assert machine_from_text(good.profile_yaml, "p.yaml").name == "good"


def test_written_to_names_the_profile_in_record_and_notes() -> None:
    good = api.fit_series([_series("p2p", 2, 50e-6, 1e-9)], name="good", description="test")
    written = good.written_to("out/p.yaml")
    assert written.record["profile"] == "out/p.yaml" and "profile" not in good.record
    assert list(written.table.notes) == [*good.table.notes, "wrote machine profile out/p.yaml "
                                         "(use: --machine out/p.yaml)"]
    assert written.table.rows == good.table.rows and written.has_plot


# ----------------------------------------------------------------------- figures


def test_curves_are_titled_by_network_machine_plan_and_what() -> None:
    result = api.curves("alexnet", P="128,512", batch=2048, plan="fc-model", what="total")
    assert result.title == "alexnet on cori-knl, plan fc-model: total time against Pr"
    assert [o.P for o in result.optima] == [128, 512]


def test_scaling_is_titled_by_its_batch_and_has_limits_only_when_strong() -> None:
    strong = api.scaling("alexnet", P="8,32", batch=512, plan="all")
    assert strong.title == "alexnet on cori-knl, B=512: best time against P"
    assert strong.limits is not None and set(strong.limits) == {n for n, _ in strong.sweeps}
    assert len(strong.sweeps) == 4  # plan 'all': the four fixed plans
    weak = api.scaling("alexnet", P="8,32", per_process_batch=4, plan="fc-model")
    assert weak.title == "alexnet on cori-knl, B = 4·P: best time against P"
    assert weak.limits is None
    assert [int(b) for b in dict(weak.sweeps)["fc-model"].batch] == [32, 128]


# ----------------------------------------------------------------------- catalogues


def test_the_catalogues_have_one_row_and_record_per_bundled_file() -> None:
    nets = api.network_catalogue()
    assert [r["name"] for r in nets.record] == [row[0] for row in nets.tables[0].rows]
    assert len(nets.record) == len(bundled_names("networks"))
    alexnet = next(r for r in nets.record if r["name"] == "alexnet")
    assert alexnet["params"] == 60_965_224  # the grouped AlexNet of the paper
    assert alexnet["conv_layers"] == 5 and alexnet["fc_layers"] == 3
    machines = api.machine_catalogue()
    assert len(machines.record) == len(bundled_names("machines"))
    assert len(machines.tables[0].headers) == len(machines.tables[0].rows[0]) == 11


def test_published_has_the_runs_and_the_errors_tables() -> None:
    result = api.published()
    assert len(result.tables) == 2
    assert len(result.record["runs"]) == len(result.tables[0].rows)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- live measurements


def test_message_sizes_grow_by_the_factor_up_to_the_largest() -> None:
    assert live.message_sizes(4, 64, 4) == [4, 16, 64]
    assert live.message_sizes(4, 63, 4) == [4, 16]
    assert live.message_sizes(8, 8, 2) == [8]


def test_the_options_of_a_measurement_are_read_by_the_library() -> None:
    assert live.message_bytes("64 MiB", "--max-size") == 64 * 2**20
    assert live.idle_gap_s("0 ms") == 0.0 and live.idle_gap_s("2 ms") == pytest.approx(2e-3)
    assert live.check_timeout(30.0) == 30.0
    with pytest.raises(UsageError, match=r"^--timeout: expected seconds in \(0, "):
        live.check_timeout(0.0)
    with pytest.raises(UsageError, match=r"^--max-size: expected a size from 1 B to "):
        live.message_bytes("1 TiB", "--max-size")
    with pytest.raises(UsageError, match=r"^--machine: two profiles for P = 2$"):
        live.machines_per_P(("2=cori-knl", "2=a100-ib"))
    machines = live.machines_per_P(("cori-knl", "4=a100-ib"))
    assert machines[None].name == "cori-knl" and machines[4].name == "a100-ib"


@pytest.mark.parametrize(("options", "message"), [
    ({"warmup": "-1"}, "--warmup: expected an integer ≥ 0, got '-1'"),
    ({"factor": "1"}, "--factor must be ≥ 2 and --max-size ≥ --min-size"),
    ({"min_size": "1 MiB", "max_size": "1 KiB"}, "--factor must be ≥ 2 and --max-size ≥ "
                                                 "--min-size"),
    ({"name": "two\nlines"}, "--name: expected a printable, non-empty name, got 'two\\nlines'"),
    ({"procs": "1..2"}, "--procs: expected process counts ≥ 2, got '1..2'"),
])
def test_calibration_run_refuses_bad_options_before_measuring(options: dict[str, str],
                                                              message: str) -> None:
    pytest.importorskip("torch")
    with pytest.raises(UsageError) as caught:
        live.calibration_run(**options)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_validation_run_from_raw_keeps_the_measurements_apart_from_the_analysis() -> None:
    from pathlib import Path

    raw = Path(__file__).resolve().parent / "data" / "validate_raw_small.json"
    measured = live.validation_run(("cori-knl",), from_raw=str(raw))
    assert measured is not None and measured.raw_json.endswith("\n")
    result = measured.result()
    assert result.record["runs"] and result.tables
