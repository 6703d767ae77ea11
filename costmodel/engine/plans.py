"""Plans: which split and which grid each weighted layer uses (docs/model.md §5).

A plan maps the swept grids (G,) and the network's layers (L,) to a :class:`Layout`: per grid
and layer the split mode and the group sizes (Pr, Pc) that layer actually uses.  Pure batch is
the model mode with Pr = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.engine.grids import Grids
from costmodel.engine.grids import largest_divisor_at_most as largest_divisor_at_most  # re-exported
from costmodel.errors import UnknownName, UsageError
from costmodel.inputs.specs import Network

MODEL, DOMAIN = 0, 1
"""Split modes: MODEL divides filters/units over Pr (Pr = 1 is pure batch); DOMAIN the height."""

MODE_NAMES = {MODEL: "model", DOMAIN: "domain"}


@dataclass(frozen=True)
class Layout:
    """Per grid × layer split: ``mode``, ``pr``, ``pc`` all of shape (G, L) (read-only views)."""

    mode: np.ndarray
    pr: np.ndarray
    pc: np.ndarray


@dataclass(frozen=True)
class LayerGroup:
    """Layers that share one split on every grid: their indices (Lg,), the mode, and the group
    sizes ``pr`` and ``pc`` of shape (G, 1)."""

    index: np.ndarray
    mode: int
    pr: np.ndarray
    pc: np.ndarray


@dataclass(frozen=True)
class Plan:
    """A named rule assigning a split to conv and fc layers."""

    name: str
    conv: str
    fc: str
    paper: str

    def layout(self, grids: Grids, network: Network) -> Layout:
        """The (G, L) layout of this plan on ``grids`` for the layers of ``network``."""
        return self.layout_for(grids, np.array([layer.kind == "conv" for layer in network.layers]))

    def layout_for(self, grids: Grids, is_conv: np.ndarray) -> Layout:
        """The (G, L) layout for layers given only by ``is_conv`` (L,): True for conv layers."""
        shape = (len(grids), np.asarray(is_conv).size)
        mode = np.empty(shape, dtype=np.int8)
        pr = np.empty(shape, dtype=np.int64)
        pc = np.empty(shape, dtype=np.int64)
        for group in self.groups(grids, is_conv):
            mode[:, group.index] = group.mode
            pr[:, group.index] = group.pr
            pc[:, group.index] = group.pc
        return Layout(mode, pr, pc)

    def groups(self, grids: Grids, is_conv: np.ndarray) -> list[LayerGroup]:
        """The conv layers and the fc layers as (at most) two groups, each with one split."""
        is_conv = np.asarray(is_conv, dtype=bool).ravel()
        pr, pc, p = grids.pr[:, None], grids.pc[:, None], grids.p[:, None]
        groups = []
        for rule, members in ((self.conv, is_conv), (self.fc, ~is_conv)):
            index = np.flatnonzero(members)
            if index.size == 0:
                continue
            if rule == "grid-model":
                groups.append(LayerGroup(index, MODEL, pr, pc))
            elif rule == "pure-batch":
                groups.append(LayerGroup(index, MODEL, np.ones_like(p), p))
            elif rule == "grid-domain":
                groups.append(LayerGroup(index, DOMAIN, pr, pc))
            else:  # beyond-batch: batch on the largest divisor of P ≤ B, domain on the rest
                batch_share = largest_divisor_at_most(grids.p, grids.batch)[:, None]
                groups.append(LayerGroup(index, DOMAIN, p // batch_share, batch_share))
        return groups


def _split_text(mode: int, pr: int, pc: int) -> str:
    """How one layer group is split on a grid: 'batch-split over 8', 'model-split over 8',
    'domain-split over 4 × batch-split over 2'."""
    axis = "model" if mode == MODEL else "domain"
    if pr == 1:
        return f"batch-split over {pc}"
    if pc == 1:
        return f"{axis}-split over {pr}"
    return f"{axis}-split over {pr} × batch-split over {pc}"


def describe_grid(plan: Plan, grids: Grids, network: Network) -> str:
    """What the first grid of ``grids`` does to each kind of layer under ``plan``: 'every layer
    model-split over 8' or 'conv layers domain-split over 8, fc layers model-split over 8'.

    Names the baselines of `optimize` (docs/cli.md, "Baselines"): the plan's own 1×P ("pure
    batch") and P×1 ("pure model") grids, which split a layer the way the plan does.
    """
    is_conv = np.array([layer.kind == "conv" for layer in network.layers])
    parts = []
    for group in plan.groups(grids.take(slice(0, 1)), is_conv):
        kind = "conv" if is_conv[group.index[0]] else "fc"
        parts.append((kind, _split_text(group.mode, int(group.pr[0, 0]), int(group.pc[0, 0]))))
    if len({text for _, text in parts}) == 1:
        return f"every layer {parts[0][1]}"
    return ", ".join(f"{kind} layers {text}" for kind, text in parts)


PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        Plan("model-batch", "grid-model", "grid-model", "Eq. 8, Fig. 6"),
        Plan("fc-model", "pure-batch", "grid-model", "Figs. 7, 8, 9"),
        Plan("domain-batch", "grid-domain", "grid-model", "Eq. 9"),
        Plan("beyond-batch", "beyond-batch", "grid-model", "Fig. 10"),
    )
}


def plan(name: str) -> Plan:
    """The plan called ``name``."""
    try:
        return PLANS[name]
    except KeyError:
        raise UnknownName("plan", name, PLANS) from None


PER_LAYER = "per-layer"
"""Each weighted layer its own split and grid, redistribution charged (docs/perlayer.md): only
`optimize` (and `report grids`) offer it."""

ALL = "all"
"""Every fixed plan, compared."""

_ONE_GRID = {
    "layers": "which costs the layers of the one Pr×Pc grid --pr names",
    "report layers": "which costs the layers of the one Pr×Pc grid --pr names",
    "explain": "which derives the costs of the one Pr×Pc grid --pr names",
    "sweep": "which reports the best Pr×Pc grid of a plan for each P",
    "report sweep": "which reports the best Pr×Pc grid of a plan for each P",
    "plot grid": "which draws the costs of every Pr×Pc grid of one plan",
    "plot curve": "which draws the costs against Pr of one plan",
    "plot layers": "which draws the costs per layer of every Pr×Pc grid of one plan",
    "plot scaling": "which draws the best Pr×Pc grid of a plan for each P",
    "validate": "which runs Pr×Pc grids of the fixed plans on real processes",
}


def choose_plans(name: str, command: str, all_allowed: bool, per_layer_allowed: bool = False,
                 fixed: tuple[str, ...] = tuple(PLANS)) -> list[Plan]:
    """The plans ``--plan name`` selects for ``command``, which runs the ``fixed`` plans: one
    plan; all of ``fixed`` for 'all' (where the command compares plans); [] for 'per-layer'
    where the command offers it (the caller runs it).  Otherwise a one-line error: 'per-layer',
    'all' or a plan the command does not run say why and what to use instead; any other name
    is unknown, with suggestions among the names the command accepts."""
    if name in fixed:
        return [PLANS[name]]
    if name == ALL and all_allowed:
        return [PLANS[n] for n in fixed]
    if name == PER_LAYER and per_layer_allowed:
        return []
    what = _ONE_GRID.get(command, "which costs Pr×Pc grids of one plan")
    if name == PER_LAYER:
        raise UsageError(f"--plan per-layer is not available for `{command}`, {what}: "
                         "per-layer gives each layer its own split and grid; use `gridcost "
                         "optimize --plan per-layer` (each layer's choice at one P) or a fixed "
                         f"plan here ({', '.join(fixed)})")
    if name == ALL:
        raise UsageError(f"--plan all is not available for `{command}`, {what}; name one of "
                         f"{', '.join(fixed)}, or compare plans with `gridcost optimize --plan "
                         "all` or `gridcost sweep --plan all`")
    if name in PLANS:
        raise UsageError(f"--plan {name} is not available for `{command}`, {what}; use one of "
                         f"{', '.join(fixed)}" + (" or 'all'" if all_allowed else ""))
    known = [*fixed, *([PER_LAYER] if per_layer_allowed else []), *([ALL] if all_allowed else [])]
    raise UnknownName("plan", name, known)
