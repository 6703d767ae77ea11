"""The TypedDicts of costmodel/records.py match what the commands emit, at every level.

For each command's JSON (``to_dict()``, which tests/test_api.py checks equals the CLI's
``--format json``) on a few inputs — options that add keys (memory check, levels, overlap
backward, per-collective fits, infeasible plans) included — :func:`mismatches` walks the value
against its declared type: every TypedDict's keys must include its ``__required_keys__`` and lie
within ``__required_keys__ | __optional_keys__``, recursively through lists, dicts and unions;
leaves must be of their declared JSON type (an int where a float is declared is fine).  A last
test checks that these inputs reach every TypedDict of the module, so a new nested record
cannot go unchecked.
"""

from __future__ import annotations

import functools
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

import costmodel
from costmodel import api, records
from costmodel.inputs.loaders import load_machine
from costmodel.measure.published import evaluate_runs, load_runs
from costmodel.measure.published import record as published_record
from costmodel.measure.validation import analyse, ddp_analysis, load_validation_network

DATA = Path(__file__).parent / "data"
LOGS = DATA / "logs"
RAW = DATA / "validate_raw_small.json"

PER_COLLECTIVE_MACHINE = """\
version: 1
name: fitted
alpha: 2 us
bandwidth: 10 GB/s
flop_rate: 10 TFLOP/s
per_collective:
  allgather: {alpha: 3 us, bandwidth: 8 GB/s}
  allreduce: {alpha: 5 us, bandwidth: 7 GB/s, processes: {2: {alpha: 4 us, bandwidth: 9 GB/s}}}
"""

SEEN: set[str] = set()
"""Names of the TypedDicts some checked value was matched against (for the coverage test)."""


def _typed_dicts() -> dict[str, type]:
    """The public TypedDicts of costmodel.records, by name."""
    return {name: value for name, value in vars(records).items()
            if typing.is_typeddict(value) and not name.startswith("_")}


@functools.cache
def _hints(shape: type) -> dict[str, Any]:
    return typing.get_type_hints(shape)


def _leaf_ok(value: object, hint: object) -> bool:
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    raise AssertionError(f"the checker does not know the type {hint!r}")


def mismatches(value: object, hint: object, path: str = "$") -> list[str]:
    """Where ``value`` departs from the type ``hint`` (empty: it matches)."""
    if hint == records.JSON or hint == records.JSONObject or isinstance(hint, typing.ForwardRef):
        return []  # declared as any JSON
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        tried = [mismatches(value, option, path) for option in typing.get_args(hint)]
        return [] if any(not found for found in tried) else min(tried, key=len)
    if isinstance(hint, type) and typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({hint.__name__}), got {value!r:.60}"]
        keys = set(value)
        allowed = hint.__required_keys__ | hint.__optional_keys__
        found = [f"{path}: {hint.__name__} lacks required key {k!r}"
                 for k in sorted(hint.__required_keys__ - keys)]
        found += [f"{path}: {hint.__name__} does not declare key {k!r}"
                  for k in sorted(keys - allowed)]
        hints = _hints(hint)
        for key in sorted(keys & allowed):
            found += mismatches(value[key], hints[key], f"{path}.{key}")
        if not found:
            SEEN.add(hint.__name__)
        return found
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r:.60}"]
        [item] = typing.get_args(hint)
        return [m for i, v in enumerate(value) for m in mismatches(v, item, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r:.60}"]
        _, item = typing.get_args(hint)
        return [m for k, v in value.items() for m in mismatches(v, item, f"{path}[{k!r}]")]
    return [] if _leaf_ok(value, hint) else [f"{path}: expected {hint!r}, got {value!r:.60}"]


def check(value: object, hint: object) -> None:
    found = mismatches(value, hint)
    assert not found, "\n".join(found[:20])


# --------------------------------------------------------------------------- the checker


def test_the_checker_finds_missing_unknown_and_mistyped_keys() -> None:
    good = {"name": "ddp", "cap_bytes": 26214400.0, "first_cap_bytes": 1048576,
            "rule": "reach", "source": "PyTorch"}
    assert mismatches(good, records.BucketRecord) == []
    assert mismatches({k: v for k, v in good.items() if k != "rule"}, records.BucketRecord) == [
        "$: BucketRecord lacks required key 'rule'"]
    assert mismatches({**good, "extra": 1}, records.BucketRecord) == [
        "$: BucketRecord does not declare key 'extra'"]
    assert mismatches({**good, "cap_bytes": "big"}, records.BucketRecord) == [
        "$.cap_bytes: expected <class 'float'>, got 'big'"]
    # optional keys may be there or not; nested records are walked
    row = {"P": 8, "batch": 64, "feasible": False, "pr": None, "pc": None, "grids": 4,
           "compute_s": None, "model_comm_s": None, "batch_comm_s": None,
           "domain_comm_s": None, "total_s": None, "pure_batch_total_s": None,
           "speedup_vs_pure_batch": None, "efficiency": None}
    assert mismatches(row, records.SweepRow) == []
    assert mismatches({**row, "mapping": None}, records.SweepRow) == []
    sweeps = {"sweeps": [{"rows": [{**row, "grids": True}]}]}
    found = mismatches(sweeps, records.SweepsRecord)
    assert "$.sweeps[0]: PlanSweepRecord lacks required key 'net'" in found
    assert "$.sweeps[0].rows[0].grids: expected <class 'int'>, got True" in found
    # a union matches when one of its members does
    assert mismatches(None, records.BestGridRecord | None) == []
    assert mismatches(sweeps["sweeps"][0]["rows"][0], records.SweepRow | None) != []


# --------------------------------------------------------------------------- commands

OPTIMIZE: list[dict[str, Any]] = [
    {"P": 512, "plan": "fc-model"},
    {"P": 64, "plan": "all", "overlap": "batch", "collectives": "ring"},
    {"P": 64, "plan": "fc-model", "collectives": "auto"},
    {"P": 256, "plan": "model-batch", "overlap": "backward", "bucket": "horovod"},
    {"P": 64, "plan": "all", "machine": "a100-ib-nodes", "overlap": "backward"},
    {"P": 64, "plan": "all", "memory_check": True, "optimizer": "adam", "per": "iteration"},
    # fc-model has no feasible grid (P > B); per-layer joins
    {"P": 256, "batch": 128, "plan": "all"},
]


@pytest.mark.parametrize("options", OPTIMIZE, ids=lambda o: "-".join(map(str, o.values())))
def test_optimize_records_match(options: dict[str, Any]) -> None:
    check(costmodel.optimize("alexnet", **options).to_dict(), records.OptimizeRecord)


def test_plans_without_a_feasible_grid_or_layout_match() -> None:
    # P = 2048 > B = 4 × conv1's widest split (Pr ≤ 96 filters, ≤ 45 strips): nothing fits
    record = costmodel.optimize("alexnet", P=2048, batch=4, plan="all").to_dict()
    assert record["per_layer"]["best"] is None and "error" in record["per_layer"]
    assert all(plan["best"] is None and "error" in plan for plan in record["plans"])
    check(record, records.OptimizeRecord)


LAYERS: list[tuple[str, dict[str, Any]]] = [
    ("vgg16", {"P": 512, "pr": 16, "plan": "fc-model"}),
    ("alexnet", {"P": 64, "pr": 4, "machine": "a100-ib-nodes", "overlap": "backward",
                 "memory_check": True}),
    ("alexnet", {"P": 4096, "pr": 64, "batch": 512, "plan": "fc-model"}),  # infeasible
]


@pytest.mark.parametrize(("net", "options"), LAYERS, ids=lambda o: str(o))
def test_layers_records_match(net: str, options: dict[str, Any]) -> None:
    check(costmodel.layers(net, **options).to_dict(), records.LayersRecord)


def test_layers_on_a_machine_with_per_collective_fits_matches(tmp_path: Path) -> None:
    machine = tmp_path / "fitted.yaml"
    machine.write_text(PER_COLLECTIVE_MACHINE)
    record = costmodel.layers("alexnet", machine=str(machine), P=8, pr=2).to_dict()
    assert set(record["per_collective"]) == {"allgather", "allreduce"}
    check(record, records.LayersRecord)


SWEEP: list[dict[str, Any]] = [
    {"P": "8,64,512", "plan": "all", "collectives": "ring"},
    {"P": "8,64", "per_process_batch": 32, "machine": "a100-ib-nodes"},
    {"P": "16,64", "overlap": "backward", "bucket": "ddp"},
]


@pytest.mark.parametrize("options", SWEEP, ids=lambda o: "-".join(map(str, o.values())))
def test_sweep_records_match(options: dict[str, Any]) -> None:
    check(costmodel.sweep("alexnet", **options).to_dict(), records.SweepRecord)


@pytest.mark.parametrize("options", [
    {"P": 64, "pr": 1, "overlap": "backward"},
    {"P": 64, "pr": 4, "plan": "fc-model", "overlap": "batch", "machine": "a100-ib-nodes"},
    {"P": 64, "plan": "per-layer", "overlap": "backward"},
], ids=lambda o: "-".join(map(str, o.values())))
def test_timeline_records_match(options: dict[str, Any]) -> None:
    check(costmodel.timeline("alexnet", **options).to_dict(), records.TimelineRecord)


EXPLAIN: list[tuple[str, dict[str, Any]]] = [
    ("alexnet", {"P": 64, "pr": 4, "plan": "fc-model"}),
    ("alexnet", {"P": 64, "pr": 4, "machine": "a100-ib-nodes"}),
    ("alexnet", {"P": 64, "pr": 1, "overlap": "backward"}),
    ("alexnet", {"P": 4096, "pr": 64, "batch": 512, "plan": "fc-model"}),  # infeasible
]


@pytest.mark.parametrize(("net", "options"), EXPLAIN, ids=lambda o: str(o))
def test_explain_records_match(net: str, options: dict[str, Any]) -> None:
    # the explain record's TypedDicts belong to costmodel/output/explanation.py's owner: checked here
    # once they are declared in costmodel.records
    shape = getattr(records, "ExplainRecord", None)
    if shape is None:
        pytest.skip("the explain record is not declared in costmodel.records")
    check(costmodel.explain(net, **options).to_dict(), shape)


def test_report_provenance_matches() -> None:
    result = costmodel.optimize("alexnet", P=64, plan="fc-model")
    provenance = json.loads(json.dumps(result.provenance("gridcost report grids")))
    assert set(provenance["inputs"]["network"]) == {"file", "sha256"}
    check(provenance, records.ProvenanceRecord)
    from_objects = costmodel.optimize(result.optima[0].table.network, P=64,
                                      plan="fc-model").provenance("gridcost report grids")
    check(json.loads(json.dumps(from_objects)), records.ProvenanceRecord)


# --------------------------------------------------------------------------- measurements


def test_validate_record_and_its_raw_input_match(tmp_path: Path) -> None:
    raw = json.loads(RAW.read_text())
    check(raw, records.RawValidationRecord)
    per_P = api.validate({2: "cori-knl", 4: "a100-ib"}, RAW).to_dict()
    assert "machine" not in per_P and len(per_P["profiles"]) == 2
    check(per_P, records.ValidationRecord)
    # the runs of one P: the profile's keys at the top level too
    one_P = tmp_path / "raw.json"
    one_P.write_text(json.dumps({**raw, "runs": [r for r in raw["runs"]
                                                 if r["pr"] * r["pc"] == 4]}))
    one = api.validate("cori-knl", one_P, plan="fc-model").to_dict()
    assert "machine" in one
    check(one, records.ValidationRecord)
    analysis = analyse(json.loads(one_P.read_text()), load_validation_network(),
                       load_machine("cori-knl"))
    check(json.loads(json.dumps(analysis)), records.AnalysisRecord)


def test_ddp_record_and_its_raw_input_match() -> None:
    rank = {"compute_s": [0.2] * 3, "ddp_s": [0.25] * 3, "allreduce_s": [[0.01, 0.04]] * 3,
            "bucket_bytes": [25_000_000, 10_000_000], "gradient_bytes": 35_000_000}
    raw = {"ranks": [rank, rank], "world": 2, "batch": 64, "backend": "gloo"}
    check(raw, records.RawDdpRecord)
    record = ddp_analysis(raw, load_validation_network(),
                          load_machine("cori-knl"))
    check(json.loads(json.dumps(record)), records.DdpRecord)


def test_calibrate_record_matches() -> None:
    result = api.calibrate([LOGS / "nccl-tests_all_reduce_perf.txt",
                            LOGS / "nccl-tests_all_gather_perf.txt"], procs=8,
                           accept_implausible=True)
    check(result.to_dict(), records.CalibrationRecord)
    idle = {"gap_s": 0.005, "words": 1024, "p": 2, "back_to_back": [1e-4, 2e-4],
            "after_idle": [3e-4, 5e-4], "median_ratio": 2.67}
    check(idle, records.IdleRecord)


def test_emulated_calibration_record_matches(tmp_path: Path) -> None:
    """The record of `calibrate run --emulate`, rebuilt from a stored measurement: typed, and
    its result prints, refuses a plot in one line and names the profile it was written to."""
    from costmodel.api import CalibrationResult
    from costmodel.errors import UsageError
    from costmodel.measure import emulated
    from costmodel.measure.calibration import bench_series

    stored = Path(__file__).parent.parent / "docs" / "validation" / "emu-cal-P4.json"
    raw = json.loads(stored.read_text())
    levels = emulated.fit_levels(bench_series(raw["node"], "emu"),
                                 bench_series(raw["network"], "emu"))
    record = emulated.record(levels, 2, 25e6)
    record["warnings"] = []
    result = CalibrationResult(record=record, table=emulated.levels_table(levels, 2, 25e6, ""),
                               profile_yaml="", warnings=(), has_plot=False)
    written = result.written_to(str(tmp_path / "emu.yaml"))
    check(written.to_dict(), records.EmulatedCalibrationRecord)
    assert written.record["profile"] == str(tmp_path / "emu.yaml")
    assert "profile" not in result.record
    assert repr(result).splitlines()[1].startswith("  node α ")
    assert repr(result).splitlines()[2] == "  2 levels fitted"
    with pytest.raises(UsageError, match=r"^plot: an emulated cluster's calibration"):
        result.plot()


def test_published_record_matches() -> None:
    runs = load_runs(None)
    check(json.loads(json.dumps(published_record(runs, evaluate_runs(runs)))),
          records.PublishedRecord)


# --------------------------------------------------------------------------- coverage

NOT_REACHED_HERE = {
    "RawBenchSeriesRecord": "what `calibrate run --raw` writes; needs torch and processes",
    "OversubscribedRecord": "only when `calibrate run` starts more processes than cores",
    # helpers' returns spread into other records, whose keys are checked
    "AlgorithmsRecord": "its keys are OptimumRecord's collective_algorithms, gamma_s_per_word",
    "MappingRecord": "its keys are GridRecord's and LayersRecord's mapping keys",
}


def test_every_typed_dict_was_checked_against_real_output(request: pytest.FixtureRequest
                                                           ) -> None:
    """Run last (file order): the tests above matched at least one value to every TypedDict."""
    here = [item for item in request.session.items
            if getattr(item, "module", None) is sys.modules[__name__]]
    defined = {name for name in globals() if name.startswith("test_")}
    selected = {getattr(item, "originalname", item.name) for item in here}
    if defined - selected or here[-1] is not request.node:
        pytest.skip("run with the whole file, in order: the other tests fill SEEN")
    missing = set(_typed_dicts()) - SEEN - set(NOT_REACHED_HERE)
    assert not missing, f"never matched against output: {sorted(missing)}"
