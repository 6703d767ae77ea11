"""Fuzzing the command line (docs/cli.md, "Limits"): random option values and ranges for
`optimize`, `layers`, `sweep` and `explain`.  Every outcome is exit 0 with output and nothing on
stderr, or exit 2 with exactly one stderr line and nothing on stdout; never a traceback.

In-process through `costmodel.cli.main` (the console script's entry point), derandomized so
the examples are the same on every run.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from costmodel.cli import main

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

NETS = ["alexnet", "vgg16", "resnet50"]
PLANS = ["model-batch", "fc-model", "domain-batch", "beyond-batch", "per-layer", "all",
         "fc-modle", ""]

huge = st.sampled_from([2**40, 2**40 + 1, 2**62, 2**63, 2**64, 10**30, 999999999989,
                        963761198400, 720720, 0, -1, -(2**63)])
number = st.one_of(st.integers(min_value=1, max_value=4096), st.integers(min_value=-5,
                                                                         max_value=2**45), huge)
texts = st.sampled_from(["", " ", "1e17", "2.5", "0x10", "+8", "٣", "8 ", "nan", "inf", "-0",
                         "1_000", "9" * 40, "8,16", "1..4", "abc"])
integer_text = st.one_of(number.map(str), texts)
mostly_valid = st.one_of(st.integers(min_value=1, max_value=4096).map(str),
                         st.integers(min_value=1, max_value=2**20).map(str), integer_text)


@st.composite
def process_list(draw: st.DrawFn) -> str:
    """A --P value of `sweep`: lists, ranges of few values anywhere up to 2^41, geometric
    ranges, ranges beyond the sweep-size limit, and malformed text."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return ",".join(str(draw(number)) for _ in range(draw(st.integers(1, 4))))
    if kind == 1:
        low = draw(st.integers(min_value=1, max_value=2**41))
        return f"{low}..{low + draw(st.integers(min_value=-2, max_value=300))}"
    if kind == 2:
        low = draw(st.integers(min_value=-1, max_value=2**41))
        return f"{low}..{draw(number)}:x{draw(st.integers(min_value=-1, max_value=2**20))}"
    if kind == 3:
        return f"1..{draw(st.integers(min_value=2**18 + 1, max_value=2**70))}"
    return draw(texts)


def check_outcome(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """Exit 0 with output and an empty stderr, or exit 2 with one stderr line."""
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Warning" not in err, (args, err)
    if code == 0:
        assert out and err == "", (args, err)
        return
    assert code == 2, (args, code, err)
    assert out == "", (args, out)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gridcost: "), (args, err)


common = st.fixed_dictionaries({
    "--net": st.sampled_from(NETS),
    "--batch": st.one_of(st.sampled_from(["2048", "512", "1", "65536"]), mostly_valid),
}, optional={
    "--overlap": st.sampled_from(["none", "batch", "backward", "sideways"]),
    "--per": st.sampled_from(["iteration", "epoch"]),
    "--collectives": st.sampled_from(["paper", "ring", "auto", "nope", "allgather=ring"]),
    "--compute": st.sampled_from(["auto", "table", "flops", "none"]),
    "--optimizer": st.one_of(st.sampled_from(["sgd", "adam", "momentum", "1e308", "-1", "nan",
                                              "12", "1024", "1025"]), integer_text),
    "--bucket-size": st.sampled_from(["0", "25MiB", "1e300", "inf", "9" * 40, "2000000GiB",
                                      "-1", "1 KB"]),
})


def flatten(options: dict[str, str]) -> list[str]:
    return [part for key, value in options.items() for part in (key, value)]


@FUZZ
@example(options={"--net": "alexnet", "--batch": "2048"}, processes=str(2**64),
         plan="model-batch", efficiency="0.5")
@example(options={"--net": "alexnet", "--batch": "2048"}, processes=str(2**62),
         plan="model-batch", efficiency="0.5")
@example(options={"--net": "alexnet", "--batch": str(2**63)}, processes="4",
         plan="model-batch", efficiency="0.5")
@example(options={"--net": "alexnet", "--batch": "2048", "--optimizer": "1e308"},
         processes="4", plan="model-batch", efficiency="0.5")
@example(options={"--net": "alexnet", "--batch": "2048"}, processes="999999999989",
         plan="all", efficiency="0.5")
@given(options=common, processes=mostly_valid, plan=st.sampled_from(PLANS),
       efficiency=st.sampled_from(["0.5", "0.5", "0.9", "1", "0", "nan", "2", "x"]))
def test_optimize(capsys: pytest.CaptureFixture[str], options: dict[str, str], processes: str,
                  plan: str, efficiency: str) -> None:
    check_outcome(capsys, ["optimize", *flatten(options), "--P", processes, "--plan", plan,
                           "--efficiency", efficiency])


@FUZZ
@example(options={"--net": "alexnet", "--batch": "2048"}, processes=str(2**63), pr="1",
         plan="model-batch")
@given(options=common, processes=mostly_valid, pr=st.one_of(st.sampled_from(["1", "2", "4"]),
                                                            integer_text),
       plan=st.sampled_from(PLANS))
def test_layers(capsys: pytest.CaptureFixture[str], options: dict[str, str], processes: str,
                pr: str, plan: str) -> None:
    check_outcome(capsys, ["layers", *flatten(options), "--P", processes, "--pr", pr,
                           "--plan", plan])


@FUZZ
@example(options={"--net": "alexnet", "--batch": "2048"}, processes="1..1000000000",
         plan="model-batch", weak=None)
@example(options={"--net": "alexnet", "--batch": "2048"}, processes="1..100000000",
         plan="model-batch", weak=None)
@given(options=common, processes=process_list(), plan=st.sampled_from(PLANS),
       weak=st.one_of(st.none(), integer_text))
def test_sweep(capsys: pytest.CaptureFixture[str], options: dict[str, str], processes: str,
               plan: str, weak: str | None) -> None:
    extra = [] if weak is None else ["--per-process-batch", weak]
    check_outcome(capsys, ["sweep", *flatten(options), "--P", processes, "--plan", plan,
                           *extra])


@FUZZ
@given(options=common, processes=mostly_valid, pr=st.one_of(st.sampled_from(["1", "2", "4"]),
                                                            integer_text),
       plan=st.sampled_from(PLANS),
       layer=st.lists(st.sampled_from(["conv1", "fc6", "fc8", "nope", ""]), max_size=2))
def test_explain(capsys: pytest.CaptureFixture[str], options: dict[str, str], processes: str,
                 pr: str, plan: str, layer: list[str]) -> None:
    options.pop("--optimizer", None)  # explain has no memory check
    check_outcome(capsys, ["explain", *flatten(options), "--P", processes, "--pr", pr,
                           "--plan", plan, *[p for name in layer for p in ("--layer", name)]])


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@example(options={"--net": "vgg16", "--batch": "2048", "--overlap": "backward"},
         processes="64", pr="8", plan="fc-model", mapping="pc-inside")
@example(options={"--net": "alexnet", "--batch": "100", "--collectives": "ring"},
         processes="96", pr="3", plan="domain-batch", mapping="best")
@example(options={"--net": "alexnet", "--batch": "2048", "--collectives": "auto"},
         processes="64", pr="8", plan="fc-model", mapping="best")
@given(options=common, processes=mostly_valid, pr=st.one_of(st.sampled_from(["1", "2", "8"]),
                                                            integer_text),
       plan=st.sampled_from(PLANS),
       mapping=st.sampled_from(["best", "pr-inside", "pc-inside", "inside", ""]))
def test_explain_on_levels(capsys: pytest.CaptureFixture[str], options: dict[str, str],
                           processes: str, pr: str, plan: str, mapping: str) -> None:
    options.pop("--optimizer", None)  # explain has no memory check
    check_outcome(capsys, ["explain", *flatten(options), "--machine", "a100-ib-nodes",
                           "--P", processes, "--pr", pr, "--plan", plan, "--mapping", mapping,
                           "--layer", "fc6"])
