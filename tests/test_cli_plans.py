"""--plan on every command: what each accepts, and one line that says why and what to use when a
command does not take a plan (costmodel.engine.plans.choose_plans)."""

from __future__ import annotations

import pytest
from cli_helpers import fail, run, run_json

from costmodel.engine.plans import PLANS, choose_plans
from costmodel.errors import UnknownName, UsageError

PER_LAYER_REFUSED = [
    (("layers", "--net", "alexnet", "--P", "8", "--pr", "2"), "layers",
     "which costs the layers of the one Pr×Pc grid --pr names"),
    (("report", "layers", "--net", "alexnet", "--P", "8", "--pr", "2"), "report layers",
     "which costs the layers of the one Pr×Pc grid --pr names"),
    (("explain", "--net", "alexnet", "--P", "8", "--pr", "2"), "explain",
     "which derives the costs of the one Pr×Pc grid --pr names"),
    (("sweep", "--net", "alexnet", "--P", "1..8"), "sweep",
     "which reports the best Pr×Pc grid of a plan for each P"),
    (("plot", "grid", "--net", "alexnet", "--P", "8", "-o", "x.png"), "plot grid",
     "which draws the costs of every Pr×Pc grid of one plan"),
    (("plot", "scaling", "--net", "alexnet", "--P", "1..8", "-o", "x.png"), "plot scaling",
     "which draws the best Pr×Pc grid of a plan for each P"),
]


@pytest.mark.parametrize(("args", "command", "what"), PER_LAYER_REFUSED,
                         ids=[c for _, c, _ in PER_LAYER_REFUSED])
def test_per_layer_is_refused_with_the_reason_and_the_alternative(
        capsys: pytest.CaptureFixture[str], args: tuple[str, ...], command: str,
        what: str) -> None:
    line = fail(capsys, *args, "--plan", "per-layer")
    assert line == (f"gridcost: --plan per-layer is not available for `{command}`, {what}: "
                    "per-layer gives each layer its own split and grid; use `gridcost optimize "
                    "--plan per-layer` (each layer's choice at one P) or a fixed plan here "
                    "(model-batch, fc-model, domain-batch, beyond-batch)")
    assert "unknown plan" not in line


def test_all_is_refused_where_one_plan_is_costed(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "layers", "--net", "alexnet", "--P", "8", "--pr", "2", "--plan", "all")
    assert line.startswith("gridcost: --plan all is not available for `layers`, which costs ")
    assert line.endswith("compare plans with `gridcost optimize --plan all` or `gridcost sweep "
                         "--plan all`")


@pytest.mark.parametrize(("args", "typo", "suggestion", "known"), [
    (("optimize", "--net", "alexnet", "--P", "8"), "per-layr", "'per-layer'",
     "all, beyond-batch, domain-batch, fc-model, model-batch, per-layer"),
    (("sweep", "--net", "alexnet", "--P", "8"), "al", "'all'",
     "all, beyond-batch, domain-batch, fc-model, model-batch"),
    (("layers", "--net", "alexnet", "--P", "8", "--pr", "2"), "fc-modl", "'fc-model'",
     "beyond-batch, domain-batch, fc-model, model-batch"),
])
def test_a_typo_suggests_among_what_the_command_accepts(
        capsys: pytest.CaptureFixture[str], args: tuple[str, ...], typo: str, suggestion: str,
        known: str) -> None:
    line = fail(capsys, *args, "--plan", typo)
    assert line == f"gridcost: unknown plan {typo!r}; did you mean {suggestion}? (known: {known})"


def test_choose_plans() -> None:
    assert choose_plans("fc-model", "layers", all_allowed=False) == [PLANS["fc-model"]]
    assert choose_plans("all", "sweep", all_allowed=True) == list(PLANS.values())
    assert choose_plans("per-layer", "optimize", True, per_layer_allowed=True) == []
    fixed = ("model-batch", "fc-model", "domain-batch")
    assert [p.name for p in choose_plans("all", "validate", True, fixed=fixed)] == list(fixed)
    with pytest.raises(UsageError, match=r"^--plan beyond-batch is not available for `validate`"):
        choose_plans("beyond-batch", "validate", True, fixed=fixed)
    with pytest.raises(UnknownName) as info:
        choose_plans("x", "validate", True, fixed=fixed)
    assert info.value.known == ["all", "domain-batch", "fc-model", "model-batch"]


def test_per_layer_is_offered_on_a_machine_with_levels() -> None:
    """`optimize` and `timeline` take --plan per-layer on a profile with levels (it used to be
    refused there), each naming the one mapping of the run (docs/perlayer.md §7)."""
    args = ("--net", "alexnet", "--machine", "a100-ib-nodes", "--P", "64", "--plan", "per-layer")
    assert run("optimize", *args).splitlines()[0].endswith(", mapping pc-inside")
    note = run_json("timeline", *args)["note"]
    assert note.endswith("; mapping pc-inside for every layer")


def test_mapping_with_per_layer_on_a_flat_machine_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "optimize", "--net", "alexnet", "--P", "64", "--plan", "per-layer",
                "--mapping", "pc-inside")
    assert line.startswith("gridcost: mapping 'pc-inside': machine 'cori-knl' has no levels")
