"""The JSON shapes of `optimize`, `layers` and `sweep` (docs/json.md), as TypedDicts for mypy.

The builders in :mod:`costmodel.report` assemble these dicts; :mod:`costmodel.api` hands
them out typed.  Each record is a TypedDict of the keys always present and a ``total=False``
subclass adding the keys that appear only under an option; nested entries whose shape
docs/json.md lists field by field but that are not typed here yet are :data:`JSONObject`.
"""

from __future__ import annotations

from typing import TypeAlias, TypedDict, Union

JSON: TypeAlias = Union[bool, int, float, str, list["JSON"], dict[str, "JSON"], None]  # noqa: UP007
"""Any JSON value, as :func:`json.loads` returns it."""
JSONObject = dict[str, JSON]


class GridRecord(TypedDict):
    """One Pr×Pc factorization of `optimize` (``grids[]``; ``best`` adds two speedups)."""

    pr: int
    pc: int
    feasible: bool
    uneven: bool
    compute_s: float | None
    model_comm_s: float | None
    batch_comm_s: float | None
    domain_comm_s: float | None
    comm_s: float | None
    total_s: float | None
    speedup_vs_pure_batch: float | None


class _OptimumRecordKeys(TypedDict):
    """The keys of :class:`OptimumRecord` that are always present."""

    gridcost_version: str
    net: str
    network_fingerprint: str
    machine: str
    P: int
    batch: int
    plan: str
    overlap: str
    collectives: str
    compute_model: str
    compute_outside_table: bool
    redistribution_charged: bool
    unit: str
    iterations_per_epoch: float
    grids: list[GridRecord]
    best: JSONObject | None
    pure_batch: JSONObject
    pure_model: JSONObject
    scaling_limit: JSONObject


class OptimumRecord(_OptimumRecordKeys, total=False):
    """`gridcost optimize --plan PLAN --format json` for one fixed plan."""

    memory: JSONObject
    error: str
    reason: str
    collective_algorithms: dict[str, str]
    gamma_s_per_word: float
    levels: JSON
    mapping: JSON
    bucket: JSONObject


class _PerLayerRecordKeys(TypedDict):
    """The keys of :class:`PerLayerRecord` that are always present."""

    gridcost_version: str
    net: str
    machine: str
    P: int
    batch: int
    plan: str
    overlap: str
    collectives: str | None
    compute_model: str
    compute_outside_table: bool
    redistribution_charged: bool
    unit: str
    iterations_per_epoch: float
    layouts: int
    method: str
    exact: bool
    lower_bound_s: float | None
    layers: list[JSONObject]
    best: JSONObject | None
    pure_batch: JSONObject
    fixed_plans: list[JSONObject]
    best_fixed_uncharged: JSONObject
    best_fixed_charged: JSONObject


class PerLayerRecord(_PerLayerRecordKeys, total=False):
    """`gridcost optimize --plan per-layer --format json` (docs/json.md, "per-layer")."""

    error: str
    reason: str
    levels: JSON
    mapping: JSON


class PlansRecord(TypedDict):
    """`gridcost optimize --plan all --format json`: every fixed plan, and the per-layer plan
    where it joins (None where it is left out: memory check, too many layouts)."""

    plans: list[OptimumRecord]
    per_layer: PerLayerRecord | None


OptimizeRecord: TypeAlias = OptimumRecord | PerLayerRecord | PlansRecord
"""What `optimize` prints as JSON, by --plan: one plan, per-layer, or all."""


class _LayersRecordKeys(TypedDict):
    """The keys of :class:`LayersRecord` that are always present."""

    net: str
    machine: str
    P: int
    batch: int
    pr: int
    pc: int
    plan: str
    unit: str
    feasible: bool
    reason: str | None
    layers: list[JSONObject]
    collectives: str


class LayersRecord(_LayersRecordKeys, total=False):
    """`gridcost layers --format json`: the per-layer breakdown of one grid."""

    levels: list[str]
    mapping: JSON
    mapping_why: str
    mapping_total_s: dict[str, float | None]
    comm_s_by_level: dict[str, float]
    overlap: str
    bucket: JSONObject
    total_s: float
    schedule: JSONObject
    per_collective: JSON


class _SweepRowKeys(TypedDict):
    """The keys of :class:`SweepRow` that are always present."""

    P: int
    batch: int
    feasible: bool
    pr: int | None
    pc: int | None
    grids: int
    compute_s: float | None
    model_comm_s: float | None
    batch_comm_s: float | None
    domain_comm_s: float | None
    total_s: float | None
    pure_batch_total_s: float | None
    speedup_vs_pure_batch: float | None
    efficiency: float | None


class SweepRow(_SweepRowKeys, total=False):
    """One P of a sweep (``rows[]``)."""

    mapping: str | None


class _PlanSweepRecordKeys(TypedDict):
    """The keys of :class:`PlanSweepRecord` that are always present."""

    gridcost_version: str
    net: str
    machine: str
    plan: str
    unit: str
    scaling: str
    efficiency_threshold: float
    efficiency_reference_P: int | None
    rows: list[SweepRow]
    largest_feasible_P: int | None
    feasibility_limit_P: int | None
    feasibility_limit_because: str | None
    best_time_stops_improving_P: int | None
    efficiency_below_threshold_P: int | None


class PlanSweepRecord(_PlanSweepRecordKeys, total=False):
    """`gridcost sweep --plan PLAN --format json` for one plan."""

    collectives: str
    bucket: JSONObject


class SweepsRecord(TypedDict):
    """`gridcost sweep --plan all --format json`: one sweep per plan."""

    sweeps: list[PlanSweepRecord]


SweepRecord: TypeAlias = PlanSweepRecord | SweepsRecord
"""What `sweep` prints as JSON, by --plan: one plan or all."""


class ExplainBinding(TypedDict):
    """One symbol of an explained line and its value, as text (``bindings[]``)."""

    symbol: str
    value: str


class _ExplainLineRecordKeys(TypedDict):
    """The keys of :class:`ExplainLineRecord` that are always present."""

    label: str
    term: str
    formula: str
    bindings: list[ExplainBinding]
    substituted: str
    seconds_per_iteration: float
    seconds_per_epoch: float
    messages_per_iteration: float | None
    words_per_iteration: float | None
    note: str | None


class ExplainLineRecord(_ExplainLineRecordKeys, total=False):
    """One line of `gridcost explain --format json`: a term, a setting, a sum or the total."""

    level: str
    """Machines with levels: the level whose α, β the line charges."""


class _ExplainLayerRecordKeys(TypedDict):
    """The keys of :class:`ExplainLayerRecord` that are always present."""

    layer: str
    kind: str
    split: str
    pr: int
    pc: int
    terms: list[ExplainLineRecord]


class ExplainLayerRecord(_ExplainLayerRecordKeys, total=False):
    """One weighted layer of `gridcost explain --format json` (``layers[]``)."""

    routes: list[str]
    """Machines with levels: per group, its placement and where each phase runs."""


class ExplainLevelRecord(TypedDict):
    """One level of the machine (``levels[]``, innermost first)."""

    name: str
    processes: int | None
    alpha_s: float
    bandwidth_Bps: float


class _ExplainRecordKeys(TypedDict):
    """The keys of :class:`ExplainRecord` that are always present."""

    net: str
    machine: str
    P: int
    pr: int
    pc: int
    batch: int
    plan: str
    overlap: str
    collectives: str
    compute_model: str
    feasible: bool
    reason: str | None
    uneven: bool
    iterations_per_epoch: float
    settings: list[ExplainLineRecord]
    layers: list[ExplainLayerRecord]
    compute: ExplainLineRecord
    sums: list[ExplainLineRecord]
    total: ExplainLineRecord
    redistribution_charged: bool


class ExplainRecord(_ExplainRecordKeys, total=False):
    """`gridcost explain --format json` (docs/json.md, "explain")."""

    schedule: list[ExplainLineRecord]
    levels: list[ExplainLevelRecord]
    mapping: str
    mapping_setting: str
    mapping_why_per_iteration: str
    mapping_why_per_epoch: str
    mapping_total_s_per_iteration: dict[str, float]
    mapping_strides: dict[str, int]
