"""The JSON shapes of gridcost's commands (docs/json.md), as TypedDicts for mypy.

The builders in :mod:`costmodel.output.report`, :mod:`costmodel.engine.schedule`,
:mod:`costmodel.measure.validation`, :mod:`costmodel.measure.calibration` and
:mod:`costmodel.measure.published` assemble these dicts; :mod:`costmodel.api` hands them out typed.
Each record is a TypedDict of the keys always present and a ``total=False`` subclass adding the keys
that appear only under an option or on some entries; nested records are TypedDicts too, down to the
leaves, so ``tests/test_records.py`` can check every level of real output against them.  (The
`explain` record is typed in :mod:`costmodel.output.explanation`.)
"""

from __future__ import annotations

from typing import TypeAlias, TypedDict, Union

JSON: TypeAlias = Union[bool, int, float, str, list["JSON"], dict[str, "JSON"], None]  # noqa: UP007
"""Any JSON value, as :func:`json.loads` returns it."""
JSONObject = dict[str, JSON]


# --------------------------------------------------------------------------- shared pieces


class BucketRecord(TypedDict):
    """*bucket* (overlap ``backward``, docs/json.md): the gradient bucketing."""

    name: str
    cap_bytes: float
    first_cap_bytes: float
    rule: str
    source: str


class ScheduleRecord(TypedDict):
    """*schedule* of one grid (overlap ``backward``), seconds in the record's unit."""

    exposed_comm_s: float
    blocking_comm_s: float
    wait_s: float
    tail_s: float
    gradient_comm_s: float
    hidden_gradient_s: float
    buckets: int


class MappingRecord(TypedDict):
    """The mapping keys of a grid on a machine with levels (docs/hierarchy.md)."""

    mapping: str
    mapping_why: str
    mapping_total_s: dict[str, float | None]
    comm_s_by_level: dict[str, float]


class LevelRecord(TypedDict):
    """One level of a machine with levels, innermost first."""

    name: str
    processes: int | None
    alpha_s: float
    bandwidth_Bps: float


class AlphaBandwidthRecord(TypedDict):
    """An (α, bandwidth) pair: seconds, bytes/s."""

    alpha_s: float
    bandwidth_Bps: float


class PerCollectiveFitRecord(TypedDict, total=False):
    """One collective kind's fits (``per_collective``): its pooled pair, and pairs per group
    size (``processes``, keyed by p as text) when the profile gives them."""

    alpha_s: float
    bandwidth_Bps: float
    processes: dict[str, AlphaBandwidthRecord]


PerCollectiveRecord: TypeAlias = dict[str, PerCollectiveFitRecord]
"""``per_collective`` of `layers` and `machines`: {kind: fits}."""


# --------------------------------------------------------------------------- optimize


class _GridRecordKeys(TypedDict):
    """The keys of :class:`GridRecord` that are always present."""

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


class GridRecord(_GridRecordKeys, total=False):
    """One Pr×Pc factorization of `optimize` (``grids[]``)."""

    reason: str
    memory_bytes: float
    mapping: str
    mapping_why: str
    mapping_total_s: dict[str, float | None]
    comm_s_by_level: dict[str, float]
    schedule: ScheduleRecord


class BestGridRecord(GridRecord):
    """``best`` of `optimize`: a copy of its *grid* with two more speedups."""

    comm_speedup_vs_pure_batch: float | None
    speedup_vs_pure_model: float | None


class BaselineRecord(TypedDict):
    """*baseline* (``pure_batch``, ``pure_model``): the plan's own 1×P or P×1 grid."""

    pr: int
    pc: int
    layout: str
    feasible: bool
    total_s: float | None
    reason: str | None


class SweptRecord(TypedDict):
    """One swept P of *limits*: its best grid, time and efficiency."""

    P: int
    pr: int
    pc: int
    total_s: float | None
    efficiency: float | None


class LimitsRecord(TypedDict):
    """*limits* (``scaling_limit``): the plan's scaling limits at this B (docs/model.md §8)."""

    feasibility_limit_P: int
    feasibility_limit_because: str
    best_time_stops_improving_P: int | None
    efficiency_threshold: float
    efficiency_reference_P: int | None
    efficiency_below_threshold_P: int | None
    swept: list[SweptRecord]


class _GridMemoryRecordKeys(TypedDict):
    """The keys of :class:`GridMemoryRecord` that are always present."""

    pr: int
    pc: int
    total_bytes: float
    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    buffer_bytes: float


class GridMemoryRecord(_GridMemoryRecordKeys, total=False):
    """*grid memory*: bytes per process of one grid by component (docs/memory.md)."""

    fits: bool
    largest_per_process_batch: int


class GridShapeRecord(TypedDict):
    """A grid as ``{"pr", "pc"}``."""

    pr: int
    pc: int


class MemoryRecord(TypedDict):
    """*memory* of `optimize` (``--memory-check``)."""

    capacity_bytes: float
    optimizer_bytes_per_param: float
    word_bytes: int
    best: GridMemoryRecord | None
    pure_batch: GridMemoryRecord
    smallest_fitting_P: int | None
    smallest_fitting_grid: GridShapeRecord | None
    smallest_fitting_searched_up_to_P: int | None


class AlgorithmsRecord(TypedDict):
    """``collective_algorithms`` and γ: present only when not the paper's."""

    collective_algorithms: dict[str, str]
    gamma_s_per_word: float


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
    best: BestGridRecord | None
    pure_batch: BaselineRecord
    pure_model: BaselineRecord
    scaling_limit: LimitsRecord | None


class OptimumRecord(_OptimumRecordKeys, total=False):
    """`gridcost optimize --plan PLAN --format json` for one fixed plan.  (``scaling_limit``
    is None only from a library search run without limits; every command has it.)"""

    memory: MemoryRecord
    error: str
    reason: str
    collective_algorithms: dict[str, str]
    gamma_s_per_word: float
    levels: list[LevelRecord]
    mapping: str
    bucket: BucketRecord


class LayerChoiceRecord(TypedDict):
    """*layer choice* of the per-layer plan: one weighted layer's layout."""

    layer: str
    kind: str
    split: str
    pr: int
    pc: int
    uneven: bool
    model_comm_s: float | None
    batch_comm_s: float | None
    domain_comm_s: float | None
    comm_s: float | None
    redistribution_in_s: float | None
    redistribution_in_words: float
    redistribution_in_messages: float
    redistribution_in: str | None


class _PerLayerBestRecordKeys(TypedDict):
    """The keys of :class:`PerLayerBestRecord` that are always present."""

    compute_s: float | None
    model_comm_s: float | None
    batch_comm_s: float | None
    domain_comm_s: float | None
    redistribution_s: float | None
    comm_s: float | None
    total_s: float | None
    layout_changes: int
    speedup_vs_pure_batch: float | None
    speedup_vs_best_fixed_charged: float | None
    speedup_vs_best_fixed_uncharged: float | None


class PerLayerBestRecord(_PerLayerBestRecordKeys, total=False):
    """``best`` of the per-layer plan: the totals of the chosen layouts."""

    mapping: str | None
    """Machines with levels: the mapping of the whole run."""
    mapping_total_s: dict[str, float | None]
    """Machines with levels: the optimum under each mapping."""


class PerLayerPureBatchRecord(TypedDict):
    """``pure_batch`` of the per-layer plan: 1×P, every layer batch-split."""

    pr: int
    pc: int
    feasible: bool
    total_s: float | None


class _FixedPlanRecordKeys(TypedDict):
    """The keys of :class:`FixedPlanRecord` that are always present."""

    plan: str
    pr: int | None
    pc: int | None
    total_s: float | None
    charged_pr: int | None
    charged_pc: int | None
    charged_total_s: float | None
    charged_redistribution_s: float | None


class FixedPlanRecord(_FixedPlanRecordKeys, total=False):
    """One fixed plan in ``fixed_plans``: its best grid uncharged and charged."""

    mapping: str | None
    """Machines with levels: the mapping of its best grid uncharged …"""
    charged_mapping: str | None
    """… and charged."""


class _BestFixedRecordKeys(TypedDict):
    """The keys of :class:`BestFixedRecord` that are always present."""

    plan: str
    pr: int | None
    pc: int | None
    total_s: float | None


class BestFixedRecord(_BestFixedRecordKeys, total=False):
    """``best_fixed_uncharged`` / ``best_fixed_charged``: the cheapest fixed plan."""

    mapping: str | None
    """Machines with levels: the mapping of that plan's grid."""


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
    layers: list[LayerChoiceRecord]
    best: PerLayerBestRecord | None
    pure_batch: PerLayerPureBatchRecord
    fixed_plans: list[FixedPlanRecord]
    best_fixed_uncharged: BestFixedRecord
    best_fixed_charged: BestFixedRecord


class PerLayerRecord(_PerLayerRecordKeys, total=False):
    """`gridcost optimize --plan per-layer --format json` (docs/json.md, "per-layer")."""

    error: str
    reason: str | None
    levels: list[LevelRecord]
    """Machines with levels (docs/perlayer.md §7)."""
    mapping: str
    """Machines with levels: the --mapping setting."""


class PlansRecord(TypedDict):
    """`gridcost optimize --plan all --format json`: every fixed plan, and the per-layer plan
    where it joins (None where it is left out: memory check, machine with levels)."""

    plans: list[OptimumRecord]
    per_layer: PerLayerRecord | None


OptimizeRecord: TypeAlias = OptimumRecord | PerLayerRecord | PlansRecord
"""What `optimize` prints as JSON, by --plan: one plan, per-layer, or all."""


# --------------------------------------------------------------------------- layers


class _LayerRecordKeys(TypedDict):
    """The keys of :class:`LayerRecord` that are always present."""

    layer: str
    kind: str
    split: str
    pr: int
    pc: int
    params: int
    activations: int
    model_words: float
    model_messages: float
    model_comm_s: float
    batch_words: float
    batch_messages: float
    batch_comm_s: float
    domain_words: float
    domain_messages: float
    domain_comm_s: float
    comm_s: float
    collectives: str
    model_allgather_algorithm: str | None
    model_allreduce_algorithm: str | None
    batch_allreduce_algorithm: str | None
    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    buffer_bytes: float


class LayerRecord(_LayerRecordKeys, total=False):
    """*layer* of `layers`: one weighted layer on the grid."""

    model_comm_s_by_level: dict[str, float]
    batch_comm_s_by_level: dict[str, float]
    domain_comm_s_by_level: dict[str, float]


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
    layers: list[LayerRecord]
    collectives: str


class LayersRecord(_LayersRecordKeys, total=False):
    """`gridcost layers --format json`: the per-layer breakdown of one grid."""

    levels: list[str]
    mapping: str
    mapping_why: str
    mapping_total_s: dict[str, float | None]
    comm_s_by_level: dict[str, float]
    overlap: str
    bucket: BucketRecord
    total_s: float
    schedule: ScheduleRecord
    per_collective: PerCollectiveRecord


# --------------------------------------------------------------------------- sweep


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
    bucket: BucketRecord


class SweepsRecord(TypedDict):
    """`gridcost sweep --plan all --format json`: one sweep per plan."""

    sweeps: list[PlanSweepRecord]


SweepRecord: TypeAlias = PlanSweepRecord | SweepsRecord
"""What `sweep` prints as JSON, by --plan: one plan or all."""


# --------------------------------------------------------------------------- explain


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
    levels: list[LevelRecord]
    mapping: str
    mapping_setting: str
    mapping_why_per_iteration: str
    mapping_why_per_epoch: str
    mapping_total_s_per_iteration: dict[str, float]
    mapping_strides: dict[str, int]


# --------------------------------------------------------------------------- report


class InputRecord(TypedDict, total=False):
    """One input of a report's provenance: the file given and the SHA-256 of its text (an
    import SOURCE: the source and the SHA-256 of the imported YAML); a spec object given to
    :mod:`costmodel.api` instead: its ``name`` (a network also its ``fingerprint``)."""

    file: str
    sha256: str
    name: str
    fingerprint: str


class ProvenanceRecord(TypedDict):
    """The ``provenance`` block of `gridcost report … --format json`."""

    gridcost_version: str
    command: str
    inputs: dict[str, InputRecord]
    settings: JSONObject


# --------------------------------------------------------------------------- timeline


class EventRecord(TypedDict):
    """One event of `timeline` (seconds per iteration)."""

    lane: str
    start_s: float
    end_s: float
    duration_s: float
    what: str
    layers: list[str]
    words: float
    group: str
    exposed_s: float


class TimelineRecord(ScheduleRecord):
    """`gridcost timeline --format json`: one iteration of one grid, with the *schedule* keys."""

    net: str
    machine: str
    P: int
    pr: int
    pc: int
    batch: int
    plan: str
    overlap: str
    bucket: BucketRecord
    feasible: bool
    reason: str | None
    compute_model: str
    unit: str
    total_s: float
    compute_s: float
    forward_end_s: float
    note: str | None
    events: list[EventRecord]


# --------------------------------------------------------------------------- validate


class RawNumericsRecord(TypedDict):
    """``numerics`` of one rank of a measured training step (costmodel.measure.training)."""

    loss: float
    reference_loss: float
    max_rel_grad_error: float
    allclose: bool


class _RawCallRecordKeys(TypedDict):
    """The keys of :class:`RawCallRecord` that are always present."""

    layer: str
    term: str
    op: str
    p: int
    words: int


class RawCallRecord(_RawCallRecordKeys, total=False):
    """One collective call a rank logged: where it is, its group size and its words (and the
    seconds of its last iteration)."""

    seconds: float


class _RawIterationRecordKeys(TypedDict):
    """The keys of :class:`RawIterationRecord` that are always present."""

    step_s: float
    comm_s: dict[str, float]


class RawIterationRecord(_RawIterationRecordKeys, total=False):
    """One timed iteration of one rank: the step, the seconds per term, the barrier waits and
    (measurements since per-call timing) the seconds of every logged call."""

    wait_s: float
    call_s: list[float]


class RawRankRecord(TypedDict):
    """One rank of a measured training step."""

    numerics: RawNumericsRecord
    log: list[RawCallRecord]
    iterations: list[RawIterationRecord]


class _RawRunRecordKeys(TypedDict):
    """The keys of :class:`RawRunRecord` that are always present."""

    plan: str
    pr: int
    pc: int
    ranks: list[RawRankRecord]


class RawRunRecord(_RawRunRecordKeys, total=False):
    """One measured plan × grid (`validate --raw`, ``runs[]``)."""

    mapping: str


class _RawDdpRankRecordKeys(TypedDict):
    """The keys of :class:`RawDdpRankRecord` that are always present."""

    compute_s: list[float]
    ddp_s: list[float]
    allreduce_s: list[list[float]]
    bucket_bytes: list[int]


class RawDdpRankRecord(_RawDdpRankRecordKeys, total=False):
    """One rank of a measured DDP step (costmodel.measure.ddp): seconds per timed iteration;
    ``allreduce_s`` per iteration one time per bucket."""

    gradient_bytes: int


class _RawDdpRecordKeys(TypedDict):
    """The keys of :class:`RawDdpRecord` that are always present."""

    ranks: list[RawDdpRankRecord]
    world: int
    batch: int


class RawDdpRecord(_RawDdpRecordKeys, total=False):
    """One measured DDP world (`validate --ddp --raw`, ``ddp[]``)."""

    backend: str
    torch: str
    threads: int


class _RawValidationRecordKeys(TypedDict):
    """The keys of :class:`RawValidationRecord` that are always present."""

    runs: list[RawRunRecord]
    batch: int


class RawValidationRecord(_RawValidationRecordKeys, total=False):
    """What `gridcost validate --raw` writes: the measurements :mod:`costmodel.measure.validation`
    reads (the input of `validate --from-raw`)."""

    backend: str
    world: int
    torch: str
    ddp: list[RawDdpRecord]
    emulate: JSON


class NumericsRecord(TypedDict):
    """``numerics`` of a validation run: the distributed step against one process."""

    loss: float
    reference_loss: float
    max_rel_grad_error: float
    allclose: bool


class VolumeRecord(TypedDict):
    """One (layer, term, collective) of ``volumes``: measured and model calls and words."""

    layer: str
    term: str
    op: str
    p: int
    calls: int
    model_calls: int
    words: list[int]
    model_words: int
    algorithm_words: int
    status: str
    ok: bool


class _ValidationRunRecordKeys(TypedDict):
    """The keys of :class:`ValidationRunRecord` that are always present."""

    plan: str
    P: int
    pr: int
    pc: int
    numerics: NumericsRecord
    volumes: list[VolumeRecord]
    volumes_ok: bool
    volumes_exact: bool
    predicted_s: dict[str, float]
    measured_s: dict[str, float]
    predicted_comm_s: float
    measured_comm_s: float
    abs_pct_error: float
    call_ratio_fastest: list[float]
    call_ratio_median: list[float]


class ValidationRunRecord(_ValidationRunRecordKeys, total=False):
    """A run of `validate`: one plan × grid.  ``predicted_best``/``measured_best`` are set by
    the summary (always, in a command's record); the in-step keys with the in-step fit."""

    mapping: str
    predicted_best: bool
    measured_best: bool
    in_step_predicted_s: dict[str, float] | None
    in_step_predicted_comm_s: float
    in_step_abs_pct_error: float
    in_step_note: str
    in_step_levels: list[list[str | float]]


class RankingRecord(TypedDict):
    """One (P, plan) of ``summary.rankings``: do the predicted and measured orders agree?"""

    P: int
    plan: str
    grids: int
    kendall_tau: float | None
    predicted_best: str
    measured_best: str
    same_best: bool
    regret_pct: float


class CallRatioRecord(TypedDict, total=False):
    """Measured ÷ the profile's time per call (median over calls), by iteration statistic;
    a key only where some call was timed."""

    fastest: float
    median: float


class ValidationSummaryRecord(TypedDict):
    """``summary`` of `validate`."""

    numerics_ok: bool
    volumes_ok: bool
    volumes_exact: bool
    mape_pct: float | None
    mape_pct_by_P: dict[int, float]
    in_step_mape_pct: float | None
    in_step_mape_pct_by_P: dict[int, float]
    call_ratio_by_P: dict[int, CallRatioRecord]
    mean_kendall_tau: float | None
    same_best: int
    rankings_count: int
    max_regret_pct: float | None
    rankings: list[RankingRecord]


class ProfileRecord(TypedDict):
    """The machine profile that predicted the runs of one P (``profiles[]``);
    ``per_collective``: [kind, α s, bandwidth B/s]; ``per_collective_processes``:
    [kind, p, α s, bandwidth B/s]."""

    P: int
    machine: str
    alpha_s: float
    bandwidth_Bps: float
    per_collective: list[list[str | float]]
    per_collective_processes: list[list[str | int | float]]


class AnalysisRecord(TypedDict):
    """The analysis of the runs of one profile (:func:`costmodel.measure.validation.analyse`)."""

    runs: list[ValidationRunRecord]
    summary: ValidationSummaryRecord
    machine: str
    statistic: str
    alpha_s: float
    bandwidth_Bps: float
    per_collective: list[list[str | float]]
    per_collective_processes: list[list[str | int | float]]
    collectives: str
    batch: int
    backend: str | None
    network: str


class _DdpRecordKeys(TypedDict):
    """The keys of :class:`DdpRecord` that are always present."""

    P: int
    batch: int
    backend: str | None
    statistic: str
    compute_s: float
    allreduce_s: float
    allreduce_bucket_s: list[float]
    ddp_step_s: float
    ddp_bucket_bytes: list[int]
    predicted_bucket_bytes: list[float]
    predicted_allreduce_s: float
    predicted_none_s: float
    predicted_batch_s: float
    predicted_backward_s: float
    measured_serial_s: float
    overlap_achieved_pct: float | None
    backward_error_pct: float


class DdpRecord(_DdpRecordKeys, total=False):
    """One P of ``ddp`` (`validate --ddp`): a DDP step against overlap ``backward``; the
    measured-all-reduce prediction where every bucket was timed."""

    predicted_backward_measured_allreduce_s: float
    backward_measured_allreduce_error_pct: float


class _ValidationRecordKeys(TypedDict):
    """The keys of :class:`ValidationRecord` that are always present."""

    runs: list[ValidationRunRecord]
    summary: ValidationSummaryRecord
    profiles: list[ProfileRecord]
    statistic: str
    collectives: str
    batch: int
    backend: str | None
    network: str


class ValidationRecord(_ValidationRecordKeys, total=False):
    """`gridcost validate --format json`: the profile keys at the top level only when one
    profile predicted every run; ``ddp`` only with ``--ddp``."""

    machine: str
    alpha_s: float
    bandwidth_Bps: float
    per_collective: list[list[str | float]]
    per_collective_processes: list[list[str | int | float]]
    ddp: list[DdpRecord]


# --------------------------------------------------------------------------- published


class SourceRecord(TypedDict):
    """One source of the published runs."""

    title: str
    address: str


class IterationTimesRecord(TypedDict):
    """A mode's predicted iteration, seconds: at the reference P0 and at P."""

    reference: float
    at_P: float


class PublishedRunRecord(TypedDict):
    """One run of `gridcost published`."""

    id: str
    source: str
    where: str
    network: str
    machine: str
    framework: str
    bucket: str
    batch_per_gpu: int
    processes: int
    reference_processes: int
    throughput_img_s: float | None
    single_gpu_throughput_img_s: float
    single_gpu_origin: str
    measured_efficiency: float
    predicted_efficiency: dict[str, float]
    error_pp: dict[str, float]
    across_nodes: bool
    beyond_backward_s: float
    iteration_s: dict[str, IterationTimesRecord]


class ModeErrorsRecord(TypedDict):
    """The errors of one overlap mode over all runs, percentage points."""

    mean_abs: float
    median_abs: float
    max_abs: float
    mean_signed: float


class PublishedRecord(TypedDict):
    """`gridcost published --format json`."""

    runs_file: str
    sources: dict[str, SourceRecord]
    runs: list[PublishedRunRecord]
    errors_pp: dict[str, ModeErrorsRecord]


# --------------------------------------------------------------------------- calibrate


class KindFitRecord(TypedDict):
    """One collective kind's fit over all its p (``per_collective``)."""

    alpha_s: float
    beta_s_per_word: float
    bandwidth_Bps: float


class SeriesFitRecord(TypedDict):
    """One series fit (``fits[]``), SI units in the keys."""

    collective: str
    p: int
    points: int
    a_s: float
    b_s_per_word: float
    alpha_s: float
    beta_s_per_word: float
    max_abs_residual: float
    median_abs_residual: float
    joint_max_abs_residual: float
    source: str


class PointRecord(TypedDict):
    """One measured point (``points[]``) with its per-series and joint fit."""

    collective: str
    p: int
    words: float
    bytes: float
    measured_s: float
    series_fit_s: float
    joint_fit_s: float


class _IdleRecordKeys(TypedDict):
    """The keys of :class:`IdleRecord` the probe writes."""

    gap_s: float
    words: int
    p: int
    back_to_back: list[float]
    after_idle: list[float]


class IdleRecord(_IdleRecordKeys, total=False):
    """The host check of `calibrate run` (costmodel.measure.bench.idle_probe): a small
    all-reduce's seconds per repetition back to back and with the ranks arriving ``gap_s``
    apart; ``median_ratio`` (after idle ÷ back to back) added to the calibration record."""

    median_ratio: float


class OversubscribedRecord(TypedDict):
    """``oversubscribed`` of `calibrate run`: more processes than cores."""

    processes: int
    cores: int
    counted_by: str


class RawBenchSeriesRecord(TypedDict, total=False):
    """One series of `calibrate run --raw` (costmodel.measure.bench): a collective on p
    processes, its sizes in words and, per size, the slowest rank's seconds per repetition
    (``samples``; older results: only their medians, ``seconds``)."""

    collective: str
    p: int
    words: list[float]
    samples: list[list[float]]
    seconds: list[float]


class LevelFitRecord(TypedDict):
    """One level of an emulated cluster's calibration (``levels[]``, node first)."""

    name: str
    alpha_s: float
    bandwidth_Bps: float
    series: list[str]


class _EmulatedCalibrationRecordKeys(TypedDict):
    """The keys of :class:`EmulatedCalibrationRecord` that are always present."""

    levels: list[LevelFitRecord]
    ppn: int
    link_rate_Bps: float
    network_per_node_Bps: float


class EmulatedCalibrationRecord(_EmulatedCalibrationRecordKeys, total=False):
    """`gridcost calibrate run --emulate … --format json`: the fit of each level, the link's
    rate and the network bandwidth one node moved; ``warnings`` always added, ``profile`` with
    ``--profile``."""

    warnings: list[str]
    profile: str


class _CalibrationRecordKeys(TypedDict):
    """The keys of :class:`CalibrationRecord` that are always present."""

    alpha_s: float
    beta_s_per_word: float
    bandwidth_Bps: float
    word_bytes: int
    collectives: str
    max_abs_residual: float
    per_collective: dict[str, KindFitRecord]
    fits: list[SeriesFitRecord]
    points: list[PointRecord]


class CalibrationRecord(_CalibrationRecordKeys, total=False):
    """`gridcost calibrate run|import --format json`.  ``warnings`` is added by every command;
    ``calibrate run`` adds ``notes`` and, where found, ``idle`` and ``oversubscribed``;
    ``profile`` with ``--profile``."""

    warnings: list[str]
    notes: list[str]
    idle: IdleRecord
    oversubscribed: OversubscribedRecord
    profile: str
