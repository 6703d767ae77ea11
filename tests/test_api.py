"""costmodel.api: each function's ``to_dict()`` is its command's ``--format json`` output.

The CLI is run in-process (click's CliRunner); no provenance field is excluded: the `--format
json` outputs of optimize, layers, sweep, explain and timeline carry no argv.  The `report`
provenance block is compared too: ``result.provenance(command)`` equals the ``provenance`` key
of `gridcost report ... --format json`.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from cli_helpers import run_json
from matplotlib.figure import Figure

import costmodel
from costmodel import api
from costmodel.errors import GridcostError
from costmodel.inputs.loaders import load_machine, load_network
from costmodel.records import (
    ExplainLayerRecord,
    ExplainLineRecord,
    ExplainRecord,
    LayersRecord,
    OptimumRecord,
    PerLayerRecord,
    PlanSweepRecord,
    SweepRow,
)


def _cli_args(options: dict[str, Any]) -> list[str]:
    names = {"P": "--P", "batch": "--batch", "plan": "--plan", "overlap": "--overlap",
             "pr": "--pr", "machine": "--machine", "per": "--per", "bucket": "--bucket",
             "per_process_batch": "--per-process-batch", "collectives": "--collectives",
             "mapping": "--mapping", "optimizer": "--optimizer"}
    args = []
    for key, value in options.items():
        if key == "memory_check":
            args.append("--memory-check" if value else "--no-memory-check")
        elif key == "layer_names":
            for name in value:
                args += ["--layer", name]
        else:
            args += [names[key], str(value)]
    return args


OPTIMIZE = [
    {"P": 512, "plan": "fc-model"},
    {"P": 64, "plan": "all", "overlap": "batch"},
    {"P": 256, "plan": "model-batch", "overlap": "backward", "bucket": "horovod"},
    {"P": 64, "plan": "per-layer"},
    {"P": 128, "plan": "all", "machine": "a100-ib-nodes"},
    {"P": 64, "plan": "per-layer", "machine": "a100-ib-nodes", "mapping": "pc-inside"},
    {"P": 64, "plan": "all", "memory_check": True, "optimizer": "adam", "per": "iteration"},
]
NETS = ["alexnet", "vgg16", "resnet50"]


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("options", OPTIMIZE, ids=lambda o: "-".join(map(str, o.values())))
def test_optimize_to_dict_is_the_json_output(net: str, options: dict[str, Any]) -> None:
    if net != "alexnet" and options["plan"] in ("per-layer", "all") and options["P"] > 64:
        pytest.skip("kept short: the per-layer plan of the larger nets runs in the CLI tests")
    result = costmodel.optimize(net, **options)
    assert result.to_dict() == run_json("optimize", "--net", net, *_cli_args(options))


LAYERS = [
    {"P": 512, "pr": 16, "plan": "fc-model"},
    {"P": 64, "pr": 4, "overlap": "backward"},
    {"P": 128, "pr": 2, "plan": "domain-batch", "overlap": "batch", "per": "iteration"},
    {"P": 64, "pr": 8, "machine": "a100-ib-nodes", "mapping": "pr-inside"},
]


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("options", LAYERS, ids=lambda o: "-".join(map(str, o.values())))
def test_layers_to_dict_is_the_json_output(net: str, options: dict[str, Any]) -> None:
    result = costmodel.layers(net, **options)
    assert result.to_dict() == run_json("layers", "--net", net, *_cli_args(options))


SWEEP = [
    {"P": "8,32,128,512", "plan": "fc-model"},
    {"P": "16,64", "plan": "all", "overlap": "batch"},
    {"P": "64..256:x2", "per_process_batch": 4, "overlap": "backward"},
]


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("options", SWEEP, ids=lambda o: "-".join(map(str, o.values())))
def test_sweep_to_dict_is_the_json_output(net: str, options: dict[str, Any]) -> None:
    result = costmodel.sweep(net, **options)
    assert result.to_dict() == run_json("sweep", "--net", net, *_cli_args(options))


EXPLAIN = [
    ("alexnet", {"P": 512, "pr": 32, "plan": "fc-model", "layer_names": ("fc6",)}),
    ("vgg16", {"P": 64, "pr": 4, "overlap": "backward"}),
    ("resnet50", {"P": 128, "pr": 2, "plan": "domain-batch", "overlap": "batch"}),
    ("vgg16", {"P": 64, "pr": 16, "plan": "fc-model", "machine": "a100-ib-nodes",
               "mapping": "pc-inside", "layer_names": ("fc6", "conv1_1")}),
    ("alexnet", {"P": 32, "pr": 4, "plan": "domain-batch", "machine": "a100-ib-nodes",
                 "overlap": "backward", "layer_names": ("conv2",)}),
]


@pytest.mark.parametrize(("net", "options"), EXPLAIN)
def test_explain_to_dict_is_the_json_output(net: str, options: dict[str, Any]) -> None:
    result = costmodel.explain(net, **options)
    assert result.to_dict() == run_json("explain", "--net", net, *_cli_args(options))
    assert "formula" not in result.text() or result.text()  # text renders
    assert result.text("markdown").startswith("#") or "|" in result.text("markdown")


TIMELINE = [
    ("resnet50", {"P": 64, "pr": 1, "overlap": "backward"}),
    ("alexnet", {"P": 64, "plan": "per-layer", "overlap": "backward"}),
    ("alexnet", {"P": 64, "plan": "per-layer", "machine": "a100-ib-nodes"}),
    ("vgg16", {"P": 64}),
    ("alexnet", {"P": 32, "pr": 4, "plan": "fc-model", "overlap": "batch"}),
]


@pytest.mark.parametrize(("net", "options"), TIMELINE)
def test_timeline_to_dict_is_the_json_output(net: str, options: dict[str, Any]) -> None:
    result = costmodel.timeline(net, **options)
    assert result.to_dict() == run_json("timeline", "--net", net, *_cli_args(options))


@pytest.mark.parametrize(("command", "function", "options"), [
    ("grids", costmodel.optimize, {"P": 512, "plan": "fc-model"}),
    ("layers", costmodel.layers, {"P": 512, "pr": 16, "plan": "fc-model",
                                  "machine": "a100-ib-nodes"}),
    ("sweep", costmodel.sweep, {"P": "8,32", "plan": "all", "overlap": "backward"}),
])
def test_provenance_is_the_report_block(command: str, function: Any,
                                        options: dict[str, Any]) -> None:
    result = function("alexnet", **options)
    report = run_json("report", command, "--net", "alexnet", *_cli_args(options))
    assert result.provenance(f"gridcost report {command}") == report["provenance"]
    assert result.to_dict() == report["result"]


def test_spec_objects_are_inputs_like_names() -> None:
    net, machine = load_network("alexnet"), load_machine("cori-knl")
    by_spec = costmodel.optimize(net, machine, P=512, plan="fc-model")
    by_name = costmodel.optimize("alexnet", "cori-knl", P="512", plan="fc-model")
    assert by_spec.to_dict() == by_name.to_dict()
    assert by_spec.provenance("x")["inputs"] == {
        "network": {"name": "alexnet", "fingerprint": net.fingerprint},
        "machine": {"name": "cori-knl"}}


def test_errors_are_the_cli_messages() -> None:
    with pytest.raises(GridcostError, match=r"^--P: expected a positive integer, got '0'$"):
        costmodel.optimize("alexnet", P=0)
    with pytest.raises(GridcostError, match="--plan all is not available for `layers`"):
        costmodel.layers("alexnet", P=64, pr=4, plan="all")
    with pytest.raises(GridcostError, match="--pr: expected a divisor of P=64, got 3"):
        costmodel.explain("alexnet", P=64, pr=3)


def test_records_match_their_typed_shapes() -> None:
    """Every key a record has is declared in its TypedDict, and every required key is there."""
    def check(record: dict[str, Any], shape: Any) -> None:
        keys = set(record)
        assert keys <= shape.__required_keys__ | shape.__optional_keys__, \
            keys - (shape.__required_keys__ | shape.__optional_keys__)
        assert shape.__required_keys__ <= keys, shape.__required_keys__ - keys

    for options in OPTIMIZE:
        result = costmodel.optimize("alexnet", **options)
        for record in result.plans():
            check(dict(record), PerLayerRecord if record["plan"] == "per-layer"
                  else OptimumRecord)
    for options in LAYERS:
        check(dict(costmodel.layers("vgg16", **options).record), LayersRecord)
    for options in SWEEP:
        for record in costmodel.sweep("alexnet", **options).plan_records():
            check(dict(record), PlanSweepRecord)
            for row in record["rows"]:
                check(dict(row), SweepRow)
    for net, options in EXPLAIN:
        explained = costmodel.explain(net, **options).record
        check(dict(explained), ExplainRecord)
        lines = [*explained["settings"], explained["compute"], *explained["sums"],
                 explained["total"], *explained.get("schedule", [])]
        for layer in explained["layers"]:
            check(dict(layer), ExplainLayerRecord)
            lines += layer["terms"]
        for line in lines:
            check(dict(line), ExplainLineRecord)


def test_plan_all_includes_the_per_layer_plan_on_levels() -> None:
    """A machine with levels no longer leaves the per-layer plan out of `plan="all"`."""
    result = costmodel.optimize("alexnet", "a100-ib-nodes", P=64, plan="all")
    per_layer = result.plans()[-1]
    assert per_layer["plan"] == "per-layer" and per_layer["best"] is not None
    assert per_layer["best"]["mapping"] in ("pr-inside", "pc-inside")
    assert "plan per-layer: " in repr(result) and ", mapping pc-inside" in repr(result)


def test_reprs_are_short_and_name_the_best_grid() -> None:
    text = repr(costmodel.optimize("alexnet", P=512, plan="fc-model"))
    assert text.splitlines()[1].strip() == ("alexnet on cori-knl: P=512, B=2048, plan "
                                            "fc-model: best grid 32×16, 26.74 s/epoch (comm "
                                            "4.377 s/epoch)")
    compared = repr(costmodel.optimize("alexnet", P=64, plan="all"))
    assert len(compared.splitlines()) == 7 and "plan per-layer:" in compared
    assert "best 16×8" in repr(costmodel.sweep("alexnet", P="8,32,128", plan="fc-model"))
    assert "most in fc6" in repr(costmodel.layers("alexnet", P=512, pr=16, plan="fc-model"))
    assert "s/iteration" in repr(costmodel.explain("alexnet", P=512, pr=32, plan="fc-model"))
    assert " ms, " in repr(costmodel.timeline("resnet50", P=64, pr=1, overlap="backward"))
    for text in (compared,):
        assert len(text.splitlines()) < 12


def _labelled(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_xlabel() or ax.get_ylabel()]
    assert axes
    assert any(ax.get_xlabel() for ax in axes)  # panels may share the bottom one's x label
    for ax in axes:  # the Gantt chart names its lanes on the y axis
        assert ax.get_ylabel() or any(t.get_text() for t in ax.get_yticklabels())


def test_plots_return_labelled_figures() -> None:
    _labelled(costmodel.optimize("alexnet", P=512, plan="fc-model").plot())
    _labelled(costmodel.optimize("alexnet", P=64, plan="all").plot())
    _labelled(costmodel.layers("vgg16", P=64, pr=4).plot())
    _labelled(costmodel.sweep("alexnet", P="8..512:x4", plan="all").plot())
    _labelled(costmodel.sweep("alexnet", P="8..512:x4", per_process_batch=4).plot())
    _labelled(costmodel.timeline("resnet50", P=64, pr=1, overlap="backward").plot())
    with pytest.raises(GridcostError, match="per-layer plan has no grid bars"):
        costmodel.optimize("alexnet", P=64, plan="per-layer").plot()


def test_plot_draws_on_a_given_axes() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert costmodel.sweep("alexnet", P="8,32", plan="fc-model").plot(ax) is fig
    assert ax.get_xlabel()


def test_results_are_frozen() -> None:
    import dataclasses

    result = costmodel.layers("alexnet", P=64, pr=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.settings = {}  # type: ignore[misc]


def test_the_package_exports_the_api_lazily() -> None:
    assert costmodel.optimize is api.optimize
    assert costmodel.import_network is api.import_network
    assert {"optimize", "layers", "sweep", "explain", "timeline"} <= set(dir(costmodel))
    with pytest.raises(AttributeError):
        costmodel.no_such_function  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                    reason="needs torch and torchvision (pip install '.[import]')")
def test_import_network_yaml_is_the_command_output() -> None:
    from cli_helpers import run

    result = costmodel.import_network("torchvision:alexnet")
    assert result.yaml == run("import", "torchvision:alexnet")
    assert result.to_dict()["weighted_layers"] == len(result.network.layers)
    assert "torchvision:alexnet" in repr(result)


def test_api_names_survive_importing_every_module() -> None:
    """A submodule called like an API function would replace it on the package once imported
    (`costmodel.explain` was one: the module is costmodel.output.explanation)."""
    import pkgutil

    for info in pkgutil.iter_modules(costmodel.__path__):
        if info.name not in ("__main__",):
            importlib.import_module(f"costmodel.{info.name}")
    for name in ("optimize", "layers", "sweep", "explain", "timeline", "import_network",
                 "calibrate", "validate"):
        assert getattr(costmodel, name) is getattr(api, name), name


def test_import_costmodel_loads_neither_the_api_nor_numpy() -> None:
    import subprocess
    import sys

    code = ("import costmodel, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'click', 'yaml', 'matplotlib') or m.startswith('costmodel.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"


DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(("files", "options"), [
    (["nccl-tests_all_reduce_perf.txt", "nccl-tests_all_gather_perf.txt"], {"name": "nccl8"}),
    (["osu_allreduce.txt", "osu_latency.txt"], {"procs": 64, "collectives": "ring"}),
])
def test_calibrate_to_dict_is_the_json_output(files: list[str], options: dict[str, Any]) -> None:
    paths = [str(DATA / "logs" / f) for f in files]
    result = costmodel.calibrate(paths, **options)
    args = [f"--{k}={v}" for k, v in options.items()]
    assert result.to_dict() == run_json("calibrate", "import", *paths, *args)
    assert "series fitted" in repr(result) and "bandwidth" in repr(result)
    assert "alpha:" in result.profile_yaml
    _labelled(result.plot())


@pytest.mark.parametrize(("machine", "options"), [
    ("cori-knl", {}),
    ("a100-ib", {"plan": "fc-model", "statistic": "median"}),
])
def test_validate_to_dict_is_the_json_output(machine: str, options: dict[str, Any]) -> None:
    raw = str(DATA / "validate_raw_small.json")
    result = costmodel.validate(machine, raw, **options)
    args = [f"--{k}={v}" for k, v in options.items()]
    assert result.to_dict() == run_json("validate", "--machine", machine, "--from-raw", raw,
                                        *args)
    assert result.ok and "runs; numerics and volumes ok" in repr(result)
    _labelled(result.plot())
