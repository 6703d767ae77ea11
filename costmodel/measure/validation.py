"""Compare a real Pr×Pc training step (costmodel.measure.training) with the model's prediction.

Three checks per plan × grid (docs/validation.md):

1. **numerics** — the distributed step's loss and every gradient shard equal a single-process
   step on the whole batch (torch.allclose, rtol 1e-4);
2. **volumes** — the words n handed to every collective (per call, the model's convention: an
   all-gather's total, an all-reduce's vector, one halo message) and the number of calls, per
   layer and term, against the model's count read off the engine's CostTable (words on the
   critical path ÷ the collective's words-per-word factor);
3. **time** — measured communication per iteration (mean — or median — over iterations of the
   slowest rank's sum of model, batch and domain collectives) against the engine's prediction
   with a calibrated machine profile: absolute percentage error, MAPE, Kendall τ of the grid
   ranking and the measured cost of choosing the predicted best grid; and, per call, the
   fastest and the median of its timed iterations against the profile's time for that one
   call (is the gap systematic, or a tail of slow iterations?); and every run predicted once
   more with α, β fitted to the calls of the other runs' steps (an in-step calibration,
   leave-one-run-out), to separate the error of the model's form from the error of calibrating
   on microbenchmarks.

No torch here: this module reads the JSON-ready result the workers return.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from costmodel.engine.collectives import algorithms
from costmodel.engine.cost import evaluate
from costmodel.engine.grids import Grids
from costmodel.engine.plans import plan as plan_named
from costmodel.errors import GridcostError, UsageError
from costmodel.inputs.specs import Machine, Network
from costmodel.measure.levelfit import LevelPrediction, level_in_step_predictions
from costmodel.measure.series import StepCall as StepCall
from costmodel.measure.series import calls_series as calls_series
from costmodel.measure.series import in_step_series as in_step_series
from costmodel.measure.series import statistic
from costmodel.measure.series import step_calls as step_calls
from costmodel.output.report import Table
from costmodel.records import (
    AnalysisRecord,
    CallRatioRecord,
    DdpRecord,
    NumericsRecord,
    ProfileRecord,
    RankingRecord,
    RawDdpRecord,
    RawRankRecord,
    RawValidationRecord,
    ValidationRecord,
    ValidationRunRecord,
    ValidationSummaryRecord,
    VolumeRecord,
)

PLANS = ("model-batch", "fc-model", "domain-batch")
"""Plans the validation step implements (beyond-batch is domain-batch with Pr = P/B)."""

NETWORK_FILE = "mini-alexnet.yaml"
MAX_PR = 8
"""Largest Pr the network's strips allow: conv2's 16 rows, pooled to 8, over Pr ≥ 1 rows."""

CHARGED = ("model", "batch", "domain")


def network_path() -> str:
    """Path of the bundled validation network (costmodel/measure/mini-alexnet.yaml)."""
    return str(resources.files("costmodel.measure").joinpath(NETWORK_FILE))


def load_validation_network() -> Network:
    from costmodel.inputs.loaders import load_network

    return load_network(network_path())


def valid_grids(P: int, batch: int) -> tuple[list[tuple[int, int]], list[str]]:
    """Grids (Pr, Pc) of P the step can run evenly, and why the others are skipped.

    Every split must divide: P | B (fc-model's pure-batch convolutions), Pr ∈ {1, 2, 4, 8}
    (16 classes, 32 and 64 filters, strips of 32 and 16 rows pooled by 2).
    """
    if batch % P:
        raise UsageError(f"--batch: expected a multiple of P={P} (every split must be even), "
                         f"got {batch}")
    grids, skipped = [], []
    for pr in range(1, P + 1):
        if P % pr:
            continue
        if pr & (pr - 1) or pr > MAX_PR:
            skipped.append(f"{pr}×{P // pr}: Pr must be 1, 2, 4 or 8 for mini-alexnet")
            continue
        grids.append((pr, P // pr))
    return grids, skipped


# --------------------------------------------------------------------------- volumes


@dataclass(frozen=True)
class VolumeRow:
    """One (layer, term, collective) of one grid: measured and model calls and words per call."""

    layer: str
    term: str
    op: str
    p: int
    calls: int
    model_calls: int
    words: tuple[int, ...]
    model_words: int
    algorithm_words: int
    status: str

    @property
    def ok(self) -> bool:
        """Measured equals the model exactly, or a named convention explains the difference
        and the measurement equals what the algorithm must move exactly."""
        if self.status == "exact":
            return True
        return self.words == (self.algorithm_words,) or (self.calls == 0
                                                         and self.algorithm_words == 0)


    def record(self) -> VolumeRecord:
        """JSON-ready (docs/json.md, 'validate': ``volumes``)."""
        return {"layer": self.layer, "term": self.term, "op": self.op, "p": self.p,
                "calls": self.calls, "model_calls": self.model_calls, "words": list(self.words),
                "model_words": self.model_words, "algorithm_words": self.algorithm_words,
                "status": self.status, "ok": self.ok}


@dataclass
class _Logged:
    """One (layer, term, op) as the ranks logged it: the most calls on one rank, the group
    size and every distinct word count."""

    calls: int
    p: int
    words: set[int] = field(default_factory=set)


def _rank_entries(ranks: Sequence[RawRankRecord]) -> dict[tuple[str, str, str], _Logged]:
    """Per (layer, term, op): max calls on one rank, the group size and the set of words."""
    out: dict[tuple[str, str, str], _Logged] = {}
    for rank in ranks:
        counts: dict[tuple[str, str, str], int] = {}
        for entry in rank["log"]:
            key = (entry["layer"], entry["term"], entry["op"])
            counts[key] = counts.get(key, 0) + 1
            slot = out.setdefault(key, _Logged(0, entry["p"]))
            slot.words.add(int(entry["words"]))
        for key, n in counts.items():
            out[key].calls = max(out[key].calls, n)
    return out


def volume_rows(network: Network, machine: Machine, plan_name: str, pr: int, pc: int,
                batch: int, ranks: Sequence[RawRankRecord],
                collectives: str = "paper") -> list[VolumeRow]:
    """Measured calls and words per call of every collective against the model's count.

    Model words per call come from the engine (CostTable.term words ÷ per-word factor of the
    collective on its group); halos split into forward (X rows) and backward (ΔY rows) by the
    layer's shapes, their sum checked against the engine.
    """
    algo = algorithms(collectives)
    chosen = plan_named(plan_name)
    # counts, not seconds: the flat profile's volumes (per-collective fits scale them)
    flat = dataclasses.replace(machine, per_collective=(), per_collective_processes=(),
                               levels=())
    table = evaluate(network, flat, Grids(np.array([pr]), np.array([pc]), np.array([batch])),
                     chosen, collectives=collectives, compute="none")
    layout = chosen.layout(table.grids, network)
    measured = _rank_entries(ranks)
    local = -(-batch // pc)
    rows: list[VolumeRow] = []
    P = pr * pc

    def add(layer: str, term: str, op: str, p: int, model_calls: int, model_words: int,
            algorithm_words: int, convention: str) -> None:
        got = measured.pop((layer, term, op), _Logged(0, p))
        words = tuple(sorted(got.words))
        exact = got.calls == model_calls and (model_calls == 0 or words == (model_words,))
        rows.append(VolumeRow(layer, term, op, p, got.calls, model_calls, words, model_words,
                              algorithm_words, "exact" if exact else convention))

    for j, layer in enumerate(network.layers):
        mode = int(layout.mode[0, j])
        lpr, lpc = int(layout.pr[0, j]), int(layout.pc[0, j])
        if mode == 0 and lpr > 1:  # model split: all-gather Y, all-reduce ΔX (Eq. 8)
            factor = float(algo.allgather_rate(np.asarray(float(lpr))).per_word
                           + algo.allreduce_rate(np.asarray(float(lpr))).per_word)
            n = round(float(table.term("model").words[0, j]) / factor)
            add(layer.name, "model", "all-gather", lpr, 1, n, n, "differs")
            needs_dx = j > 0
            dx = local * int(np.prod(layer.in_shape)) if needs_dx else 0
            add(layer.name, "model", "all-reduce ΔX", lpr, 1, n, dx,
                "paper charges d_i; ΔX has the input's size" if needs_dx
                else "paper charges it; the first layer needs no ΔX")
        if mode == 1 and lpr > 1:  # domain: one halo each way (Eq. 7)
            kh, kw = layer.halo_rows
            fwd = local * layer.in_shape[1] * layer.in_shape[2] * kh
            bwd = local * layer.out_shape[1] * layer.out_shape[2] * kw
            engine = float(table.term("domain").words[0, j])
            if abs(engine - (fwd + bwd)) > 1e-6 * max(engine, 1.0):
                raise AssertionError(f"halo words {fwd}+{bwd} ≠ engine {engine}")
            note = "model charges one message; interior strips send one to each neighbour"
            add(layer.name, "domain", "halo X", 2, 1, fwd, fwd, note)
            add(layer.name, "domain", "halo ΔY", 2, 1, bwd, bwd, note)
        group = lpc if mode == 0 else P
        if group > 1:
            factor = float(algo.allreduce_rate(np.asarray(float(group))).per_word)
            n = round(float(table.term("batch").words[0, j]) / factor)
            add(layer.name, "batch", "all-reduce", group, 1, n, n, "differs")
    for (layer_name, term, op), got in sorted(measured.items()):
        words = tuple(sorted(got.words))
        rows.append(VolumeRow(layer_name, term, op, got.p, got.calls, 0, words, 0,
                              words[0] if len(words) == 1 else -1,
                              "not charged by the paper's model"))
    return rows


# --------------------------------------------------------------------------- time


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's τ-b of two rankings (scipy.stats.kendalltau); None for fewer than 2 items."""
    if len(x) < 2:
        return None
    from scipy.stats import kendalltau  # type: ignore[import-untyped]

    tau = kendalltau(x, y)[0]  # .statistic only from scipy 1.10; [0] on every version
    return None if tau is None or not np.isfinite(tau) else float(tau)


def measured_times(ranks: Sequence[RawRankRecord], summary: str = "mean") -> dict[str, float]:
    """Per term (and 'charged', 'step', 'wait'): ``summary`` (mean or median) over iterations of
    the slowest rank, seconds."""
    summarise = statistic(summary)
    iterations = len(ranks[0]["iterations"])
    out: dict[str, list[float]] = {}
    for i in range(iterations):
        per_rank = [rank["iterations"][i] for rank in ranks]
        for term in (*CHARGED, "redistribution"):
            out.setdefault(term, []).append(max(r["comm_s"].get(term, 0.0) for r in per_rank))
        out.setdefault("charged", []).append(
            max(sum(r["comm_s"].get(t, 0.0) for t in CHARGED) for r in per_rank))
        out.setdefault("step", []).append(max(r["step_s"] for r in per_rank))
        out.setdefault("wait", []).append(max(r.get("wait_s", 0.0) for r in per_rank))
    return {k: summarise(v) for k, v in out.items()}


def call_ratios(ranks: Sequence[RawRankRecord], machine: Machine,
                collectives: str = "paper") -> tuple[list[float], list[float]]:
    """Per charged call of the step: (fastest, median) over the timed iterations of the slowest
    rank's seconds, each ÷ the profile's seconds for that one call (α·m(p) + β·w(p)·n with the
    kind's α, β; a halo message α + β·n).  Empty lists for records without per-call times.
    """
    from costmodel.engine.collectives import CollectiveCost
    from costmodel.engine.cost import machine_algorithms

    algo = machine_algorithms(machine, collectives)
    alpha, beta = machine.alpha_s, machine.beta_s_per_word
    fastest, median = [], []
    for call in step_calls(ranks):
        if call.term not in CHARGED:
            continue
        p, n = np.asarray(float(call.p)), np.asarray(float(call.words))
        if call.kind == "p2p":
            cost = algo.p2p(CollectiveCost(np.asarray(1.0), n))
        elif call.kind == "allgather":
            cost = algo.allgather(p, n)
        else:
            cost = algo.allreduce(p, n)
        predicted = float(cost.seconds(alpha, beta))
        if predicted > 0:
            fastest.append(min(call.seconds) / predicted)
            median.append(statistics.median(call.seconds) / predicted)
    return fastest, median


def analyse(result: RawValidationRecord, network: Network, machine: Machine,
            collectives: str = "paper", summary: str = "mean",
            in_step: bool = True) -> AnalysisRecord:
    """Records of every run (numerics, volumes, time) and the summary (MAPE, τ, regret).

    ``summary``: how the timed iterations become one time (mean or median, the same statistic
    ``calibrate`` should have used).  ``in_step``: also predict every run with α, β fitted to
    the calls of the *other* grids' steps (:func:`in_step_predictions`).
    """
    runs: list[ValidationRunRecord] = []
    batch = int(result["batch"])
    for run in result["runs"]:
        pr, pc, plan_name, ranks = int(run["pr"]), int(run["pc"]), run["plan"], run["ranks"]
        numerics: NumericsRecord = {
            "loss": ranks[0]["numerics"]["loss"],
            "reference_loss": ranks[0]["numerics"]["reference_loss"],
            "max_rel_grad_error": max(r["numerics"]["max_rel_grad_error"] for r in ranks),
            "allclose": all(r["numerics"]["allclose"] for r in ranks)
            and bool(np.isclose(ranks[0]["numerics"]["loss"],
                                ranks[0]["numerics"]["reference_loss"], rtol=1e-5)),
        }
        volumes = volume_rows(network, machine, plan_name, pr, pc, batch, ranks, collectives)
        mapping = run.get("mapping") if machine.hierarchical else None
        table = evaluate(network, machine,
                         Grids(np.array([pr]), np.array([pc]), np.array([batch])),
                         plan_named(plan_name), collectives=collectives, compute="none",
                         mapping=mapping or "best")
        predicted = {t: float(table.comm_s(t)[0]) for t in CHARGED}
        measured = measured_times(ranks, summary)
        pred_total = sum(predicted.values())
        fastest, median = call_ratios(ranks, machine, collectives)
        record: ValidationRunRecord = {
            "plan": plan_name, "P": pr * pc, "pr": pr, "pc": pc, "numerics": numerics,
            "volumes": [v.record() for v in volumes],
            "volumes_ok": all(v.ok for v in volumes),
            "volumes_exact": all(v.status == "exact" for v in volumes),
            "predicted_s": predicted, "measured_s": measured,
            "predicted_comm_s": pred_total, "measured_comm_s": measured["charged"],
            "abs_pct_error": abs(pred_total - measured["charged"]) / measured["charged"] * 100,
            "call_ratio_fastest": fastest, "call_ratio_median": median,
        }
        if "mapping" in run:
            record["mapping"] = run["mapping"]
        runs.append(record)
    if in_step:
        for analysed, fitted in zip(runs, in_step_predictions(result, network, machine,
                                                              collectives, summary)):
            if isinstance(fitted, LevelPrediction):  # a machine with levels: the fit per level
                if fitted.fit.why is not None:
                    analysed["in_step_note"] = fitted.fit.why
                else:
                    analysed["in_step_levels"] = [
                        [level.name, a, machine.word_bytes / b] for level, a, b
                        in zip(machine.levels, fitted.fit.alphas, fitted.fit.betas)]
                fitted = fitted.seconds
            analysed["in_step_predicted_s"] = fitted
            if fitted is not None:
                total = sum(fitted.values())
                analysed["in_step_predicted_comm_s"] = total
                analysed["in_step_abs_pct_error"] = (abs(total - analysed["measured_comm_s"])
                                                     / analysed["measured_comm_s"] * 100)
    return {"runs": runs, "summary": summarise(runs), "machine": machine.name,
            "statistic": summary,
            "alpha_s": machine.alpha_s, "bandwidth_Bps": machine.bandwidth_Bps,
            "per_collective": [list(k) for k in machine.per_collective],
            "per_collective_processes": [list(k) for k in machine.per_collective_processes],
            "collectives": collectives, "batch": batch, "backend": result.get("backend"),
            "network": network.name}


def analyse_per_P(result: RawValidationRecord, network: Network,
                  machines: dict[int | None, Machine], collectives: str = "paper",
                  summary: str = "mean", in_step: bool = True) -> ValidationRecord:
    """:func:`analyse` with a profile per process count: ``machines[P]`` for the runs of P,
    ``machines[None]`` for any P without its own.  A collective's cost on a shared node depends
    on how many processes share it, so ``calibrate run --procs …,P`` calibrates for jobs of P.
    The summary (MAPE, rankings) is over all runs; ``profiles`` lists each P's profile."""
    parts = []
    for P in sorted({int(r["pr"]) * int(r["pc"]) for r in result["runs"]}):
        machine = machines.get(P, machines.get(None))
        if machine is None:
            raise UsageError(f"--machine: no profile for P = {P} (give --machine {P}=FILE, or one "
                             "profile for every P)")
        measured = [r for r in result["runs"] if int(r["pr"]) * int(r["pc"]) == P]
        parts.append((P, analyse({**result, "runs": measured}, network, machine, collectives,
                                 summary, in_step)))
    runs = [run for _, part in parts for run in part["runs"]]
    profiles: list[ProfileRecord] = [
        {"P": P, "machine": part["machine"], "alpha_s": part["alpha_s"],
         "bandwidth_Bps": part["bandwidth_Bps"], "per_collective": part["per_collective"],
         "per_collective_processes": part["per_collective_processes"]} for P, part in parts]
    first = parts[0][1]
    record: ValidationRecord = {
        "runs": runs, "summary": summarise(runs), "profiles": profiles,
        "statistic": first["statistic"], "collectives": first["collectives"],
        "batch": first["batch"], "backend": first["backend"], "network": first["network"]}
    if len(parts) == 1:  # the top level names a profile only when one predicted every run
        record["machine"] = first["machine"]
        record["alpha_s"] = first["alpha_s"]
        record["bandwidth_Bps"] = first["bandwidth_Bps"]
        record["per_collective"] = first["per_collective"]
        record["per_collective_processes"] = first["per_collective_processes"]
    return record


def parse_validation_raw(text: str, source: str,
                         plans: Sequence[str] = PLANS) -> dict[str, object]:
    """The measurements ``gridcost validate --raw`` wrote (JSON text) → the result
    :func:`analyse` takes, keeping the runs of ``plans``.  A SpecError naming ``source`` when
    it is not such a file."""
    from costmodel.errors import SpecError
    from costmodel.inputs.loaders import load_json

    try:
        data = load_json(text, source)
        runs = [r for r in data["runs"] if r["plan"] in plans]
        for run in runs:
            int(run["pr"]), int(run["pc"]), run["ranks"][0]["iterations"]
        batch = int(data["batch"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise SpecError(source, "runs", "the JSON of 'gridcost validate --raw'") from None
    if not runs:
        raise SpecError(source, "runs", f"runs of plan {', '.join(plans)}")
    return dict(data, runs=runs, batch=batch)


def in_step_predictions(result: RawValidationRecord, network: Network, machine: Machine,
                        collectives: str = "paper",
                        summary: str = "mean"
                        ) -> list[dict[str, float] | LevelPrediction | None]:
    """Each run predicted with α, β fitted to the calls of the **other** runs of its P
    (leave-one-run-out cross-validation of an in-step calibration).

    The fit is calibrate's (:func:`costmodel.measure.calibration.calibrate`) on
    :func:`in_step_series` of those runs: the joint α, β, each kind's own pair and, per kind and
    group size, the pair of that series (``per_collective`` with ``processes``).  Only runs of the
    same P train it, because on a shared node a collective's cost depends on how many processes
    share the cores. The held-out run's own calls never enter its prediction.  None where the other
    runs do not determine a fit (no series with two distinct sizes, or no bandwidth term).

    On a machine with levels the fit is per level instead (α_l, β_l of every level jointly,
    each call split over the levels as the engine charges it:
    :func:`costmodel.measure.levelfit.level_in_step_predictions`); where the other runs do not
    determine it, the prediction is None and the fit says why.
    """
    from costmodel.measure.calibration import calibrate, calibrated_machine

    runs = result["runs"]
    batch = int(result["batch"])
    calls = [step_calls(run["ranks"]) for run in runs]  # once per run, not once per fold
    if machine.hierarchical:
        return list(level_in_step_predictions(runs, calls, network, machine, batch,
                                              collectives, summary))
    sizes = [int(run["pr"]) * int(run["pc"]) for run in runs]
    out: list[dict[str, float] | LevelPrediction | None] = []
    for j, run in enumerate(runs):
        train = [calls[i] for i in range(len(runs)) if i != j and sizes[i] == sizes[j]]
        series = calls_series(train, "in-step", summary)
        try:
            fitted = calibrated_machine(calibrate(series, collectives), machine,
                                        f"{machine.name} in-step")
        except GridcostError:  # no fit, or one no machine can hold (e.g. α = 0 with a kind's α)
            out.append(None)
            continue
        table = evaluate(network, fitted,
                         Grids(np.array([run["pr"]]), np.array([run["pc"]]), np.array([batch])),
                         plan_named(run["plan"]), collectives=collectives, compute="none")
        out.append({t: float(table.comm_s(t)[0]) for t in CHARGED})
    return out


def _mape(errors: Sequence[tuple[int, float | None]]) -> tuple[float | None, dict[int, float]]:
    """Mean of the errors (P, percent) that are there, and per P."""
    have = [(P, e) for P, e in errors if e is not None]
    by_P = {int(P): float(np.mean([e for p, e in have if p == P]))
            for P in sorted({p for p, _ in have})}
    return (float(np.mean([e for _, e in have])) if have else None), by_P


def _call_ratios_of(runs: Sequence[ValidationRunRecord], P: int) -> CallRatioRecord:
    """The median over the calls of the runs of ``P`` of measured ÷ the profile's time, for the
    fastest and the median iteration; a key only where some call was timed."""
    out: CallRatioRecord = {}
    fastest = [x for r in runs if r["P"] == P for x in r.get("call_ratio_fastest", [])]
    if fastest:
        out["fastest"] = float(np.median(fastest))
    median = [x for r in runs if r["P"] == P for x in r.get("call_ratio_median", [])]
    if median:
        out["median"] = float(np.median(median))
    return out


def summarise(runs: list[ValidationRunRecord]) -> ValidationSummaryRecord:
    """MAPE over all runs; per (P, plan): τ, predicted and measured best, regret."""
    groups: dict[tuple[int, str], list[ValidationRunRecord]] = {}
    for run in runs:
        groups.setdefault((run["P"], run["plan"]), []).append(run)
    rankings: list[RankingRecord] = []
    for (P, plan_name), members in sorted(groups.items()):
        pred = [m["predicted_comm_s"] for m in members]
        meas = [m["measured_comm_s"] for m in members]
        best_pred, best_meas = int(np.argmin(pred)), int(np.argmin(meas))
        for i, m in enumerate(members):
            m["predicted_best"] = i == best_pred
            m["measured_best"] = i == best_meas
        rankings.append({
            "P": P, "plan": plan_name, "grids": len(members),
            "kendall_tau": kendall_tau(pred, meas),
            "predicted_best": _grid(members[best_pred]),
            "measured_best": _grid(members[best_meas]),
            "same_best": best_pred == best_meas,
            "regret_pct": (meas[best_pred] / meas[best_meas] - 1.0) * 100,
        })
    taus = [r["kendall_tau"] for r in rankings if r["kendall_tau"] is not None]
    mape, mape_by_P = _mape([(r["P"], r["abs_pct_error"]) for r in runs])
    in_step_mape, in_step_by_P = _mape([(r["P"], r.get("in_step_abs_pct_error"))
                                        for r in runs])
    return {
        "numerics_ok": all(r["numerics"]["allclose"] for r in runs),
        "volumes_ok": all(r["volumes_ok"] for r in runs),
        "volumes_exact": all(r["volumes_exact"] for r in runs),
        "mape_pct": mape,
        "mape_pct_by_P": mape_by_P,
        "in_step_mape_pct": in_step_mape,
        "in_step_mape_pct_by_P": in_step_by_P,
        "call_ratio_by_P": {int(P): _call_ratios_of(runs, P)
                            for P in sorted({r["P"] for r in runs})},
        "mean_kendall_tau": float(np.mean(taus)) if taus else None,
        "same_best": sum(r["same_best"] for r in rankings),
        "rankings_count": len(rankings),
        "max_regret_pct": max((r["regret_pct"] for r in rankings), default=None),
        "rankings": rankings,
    }


# --------------------------------------------------------------------------- tables


def _grid(run: ValidationRunRecord) -> str:
    """'4×2', or '4×2 pc-inside' for a run measured under a given mapping."""
    mapping = f" {run['mapping']}" if run.get("mapping") else ""
    return f"{run['pr']}×{run['pc']}{mapping}"


def numerics_table(analysis: ValidationRecord) -> Table:
    rows = [[r["plan"], r["P"], _grid(r), r["numerics"]["loss"], r["numerics"]["reference_loss"],
             r["numerics"]["max_rel_grad_error"], r["numerics"]["allclose"]]
            for r in analysis["runs"]]
    return Table(["plan", "P", "grid", "loss (distributed)", "loss (one process)",
                  "max abs Δgrad / max abs grad", "allclose"], rows,
                 "1. numerics: distributed step vs one process on the whole batch")


def volumes_table(analysis: ValidationRecord) -> Table:
    rows = []
    for r in analysis["runs"]:
        for v in r["volumes"]:
            words = ",".join(str(w) for w in v["words"]) or "—"
            rows.append([r["plan"], _grid(r), v["layer"], v["term"], v["op"], v["p"],
                         v["calls"], v["model_calls"], words, v["model_words"],
                         v["algorithm_words"], v["status"]])
    return Table(["plan", "grid", "layer", "term", "collective", "group p", "calls",
                  "model calls", "words/call", "model words/call", "algorithm words/call",
                  "status"], rows,
                 "2. volumes: words handed to each collective vs the model's count",
                 ["calls: the most on any one rank; words in the model's convention (all-gather:"
                  " total gathered; all-reduce: the vector; halo: one message), 4-byte words",
                  "algorithm words/call: what the Pr×Pc algorithm must move, when the paper's "
                  "charge differs by a convention"])


def time_table(analysis: ValidationRecord) -> Table:
    rows = []
    for r in analysis["runs"]:
        m, p = r["measured_s"], r["predicted_s"]
        mark = ("P" if r.get("predicted_best") else "") + ("M" if r.get("measured_best") else "")
        in_step = r.get("in_step_predicted_comm_s")
        rows.append([r["plan"], r["P"], _grid(r), r["predicted_comm_s"] * 1e3,
                     r["measured_comm_s"] * 1e3, r["abs_pct_error"],
                     None if in_step is None else in_step * 1e3,
                     r.get("in_step_abs_pct_error"),
                     p["model"] * 1e3, m["model"] * 1e3, p["batch"] * 1e3, m["batch"] * 1e3,
                     p["domain"] * 1e3, m["domain"] * 1e3, m["redistribution"] * 1e3,
                     m["wait"] * 1e3, m["step"] * 1e3, mark or None])
    return Table(["plan", "P", "grid", "predicted comm [ms]", "measured comm [ms]",
                  "abs error [%]", "in-step predicted comm [ms]", "in-step abs error [%]",
                  "pred model [ms]", "meas model [ms]", "pred batch [ms]",
                  "meas batch [ms]", "pred domain [ms]", "meas domain [ms]",
                  "meas redistribution [ms]", "meas wait [ms]", "meas step [ms]", "best"], rows,
                 _time_title(analysis),
                 [f"measured: {analysis.get('statistic', 'median')} over iterations of the "
                  "slowest rank; comm = model + batch + domain (redistribution is not charged "
                  "by the model and not included); wait: the barriers before the collectives "
                  "(skew between ranks), not included",
                  "in-step: predicted with α, β fitted to the calls of the other runs of the "
                  "same P (leave-one-run-out; the run's own calls are not used)"
                  + ("; on a profile with levels, α and β of every level fitted jointly, each "
                     "call split over the levels as the model charges it"
                     if any(r.get("in_step_levels") or r.get("in_step_note")
                            for r in analysis["runs"]) else ""),
                  *(f"no in-step prediction for {r['plan']} {_grid(r)}: {r['in_step_note']}"
                    for r in analysis["runs"] if r.get("in_step_note")),
                  "best: P = predicted best grid of its (P, plan), M = measured best"])


def _profile_text(record: ProfileRecord, collectives: str) -> str:
    """A profile in one line: name, α, bandwidth, the per-kind and per-(kind, p) fits."""
    text = (f"{record['machine']} (α = {record['alpha_s'] * 1e6:.4g} µs, "
            f"bandwidth {record['bandwidth_Bps'] / 1e6:.4g} MB/s, {collectives} collectives")
    if record.get("per_collective"):
        text += ", per collective: " + ", ".join(
            f"{k} α = {float(a) * 1e6:.4g} µs, {float(bw) / 1e6:.4g} MB/s"
            for k, a, bw in record["per_collective"])
    if record.get("per_collective_processes"):
        text += "; per group size: " + ", ".join(
            f"{k} p={p} α = {float(a) * 1e6:.4g} µs, {float(bw) / 1e6:.4g} MB/s"
            for k, p, a, bw in record["per_collective_processes"])
    return text + ")"


def _time_title(analysis: ValidationRecord) -> str:
    profiles = analysis["profiles"]
    if len(profiles) == 1:
        return ("3. time per iteration with profile "
                + _profile_text(profiles[0], analysis["collectives"]))
    return "3. time per iteration with, per P, profile " + "; ".join(
        f"P = {p['P']}: " + _profile_text(p, analysis["collectives"]) for p in profiles)


def ranking_table(analysis: ValidationRecord) -> Table:
    s = analysis["summary"]
    rows = [[r["P"], r["plan"], r["grids"], r["kendall_tau"], r["predicted_best"],
             r["measured_best"], r["same_best"], r["regret_pct"]] for r in s["rankings"]]
    mape = s["mape_pct"]
    notes = [
        f"numerics: {'PASS' if s['numerics_ok'] else 'FAIL'}; volumes: "
        + ("PASS, all exact" if s["volumes_exact"] else
           "PASS (exact, or the algorithm's count exactly where a named convention of the "
           "paper differs)" if s["volumes_ok"] else "FAIL"),
        f"communication MAPE {mape:.1f} % (target ≤ 15 %; "
        + ", ".join(f"P = {P}: {v:.1f} %" for P, v in s.get("mape_pct_by_P", {}).items())
        + f"); predicted best = measured best in "
        f"{s['same_best']} of {s['rankings_count']}; worst regret "
        f"{s['max_regret_pct']:.1f} % (target ≤ 5 %); mean Kendall τ "
        + (f"{s['mean_kendall_tau']:.2f}" if s["mean_kendall_tau"] is not None else "—"),
    ]
    if s.get("in_step_mape_pct") is not None:
        notes.append(f"in-step calibration (leave-one-run-out): communication MAPE "
                     f"{s['in_step_mape_pct']:.1f} % ("
                     + ", ".join(f"P = {P}: {v:.1f} %"
                                 for P, v in s["in_step_mape_pct_by_P"].items()) + ")")
    calls = {P: v for P, v in s.get("call_ratio_by_P", {}).items() if v}
    if calls:
        notes.append("per call, measured ÷ the profile's time for that call (median over calls): "
                     + "; ".join(f"P = {P}: fastest iteration {v['fastest']:.2f}×, median "
                                 f"iteration {v['median']:.2f}×" for P, v in calls.items()))
    return Table(["P", "plan", "grids", "Kendall τ", "predicted best", "measured best",
                  "same", "regret [%]"], rows,
                 "4. ranking: do the predicted and the measured order of the grids agree?",
                 notes)


def tables(analysis: ValidationRecord) -> list[Table]:
    return [numerics_table(analysis), volumes_table(analysis), time_table(analysis),
            ranking_table(analysis)]


# --------------------------------------------------------------------------- DDP step


def _iteration_times(per_rank: Sequence[Sequence[float]], summary: str) -> float:
    """The summary over timed iterations of the slowest rank's time per iteration
    (``per_rank[r][i]``: rank r's seconds in iteration i)."""
    per_iteration = [max(times[i] for times in per_rank) for i in range(len(per_rank[0]))]
    return statistic(summary)(per_iteration)


def ddp_analysis(result: RawDdpRecord, network: Network, machine: Machine,
                 collectives: str = "paper", summary: str = "median") -> DdpRecord:
    """A DDP step (costmodel.measure.ddp) against overlap 'backward' (docs/schedule.md).

    The prediction takes the measured compute-only step (``no_sync``, every process computing
    at once) as the compute of the iteration, split over the layers by multiply-adds, and the
    profile's α, β for the all-reduces, with DDP's default buckets; it is also run once with
    each bucket's measured all-reduce time in place of α–β, to separate the schedule's error
    from the α–β model's.  ``overlap achieved``: (compute + all-reduce − DDP step) ÷ the
    smaller of the two — 100 % when the smaller hides completely, ≤ 0 when nothing does (on
    a host whose processes share the cores, the all-reduce competes with the compute).
    """
    from costmodel.engine.buckets import PRESETS
    from costmodel.engine.cost import machine_algorithms
    from costmodel.engine.plans import PLANS as ALL_PLANS
    from costmodel.engine.schedule import plan_steps, run

    ranks = result["ranks"]
    P, batch = int(result["world"]), int(result["batch"])
    compute = _iteration_times([r["compute_s"] for r in ranks], summary)
    step = _iteration_times([r["ddp_s"] for r in ranks], summary)
    # the bucket all-reduces of an iteration, one after the other: their sum
    reduce = _iteration_times([[sum(buckets) for buckets in r["allreduce_s"]] for r in ranks],
                              summary)
    per_bucket = [statistic(summary)([max(r["allreduce_s"][i][k] for r in ranks)
                                      for i in range(len(ranks[0]["allreduce_s"]))])
                  for k in range(len(ranks[0]["allreduce_s"][0]))]
    grids = Grids(np.array([1]), np.array([P]), np.array([batch]))
    bucket = PRESETS["ddp"]
    plan = ALL_PLANS["model-batch"]
    algo = machine_algorithms(machine, collectives)
    steps = plan_steps(network, machine, grids, plan, algo, np.array([compute]))
    names = tuple(layer.name for layer in network.layers)
    totals, events = run(steps, bucket, machine.word_bytes, record=0, layer_names=names)
    buckets = [e for e in events if e.lane == "gradient"]
    predicted_bytes = [e.words * machine.word_bytes for e in buckets]
    predicted_backward = float(totals.total_s[0])
    out: DdpRecord = {
        "P": P, "batch": batch, "backend": result.get("backend"), "statistic": summary,
        "compute_s": compute, "allreduce_s": reduce, "allreduce_bucket_s": per_bucket,
        "ddp_step_s": step, "ddp_bucket_bytes": ranks[0]["bucket_bytes"],
        "predicted_bucket_bytes": predicted_bytes,
        "predicted_allreduce_s": float(totals.gradient_s[0]),
        "predicted_none_s": float(totals.serial_s[0]),
        "predicted_batch_s": float(totals.bound_s[0]),
        "predicted_backward_s": predicted_backward,
        "measured_serial_s": compute + reduce,
        "overlap_achieved_pct": ((compute + reduce - step) / min(compute, reduce) * 100
                                 if min(compute, reduce) > 0 else None),
        "backward_error_pct": (predicted_backward - step) / step * 100,
    }
    if len(per_bucket) == len(buckets):
        index = {name: i for i, name in enumerate(names)}
        latency = np.zeros_like(steps.bucket_latency_s[:1])
        for e, seconds in zip(buckets, per_bucket):
            latency[0, index[e.layers[-1]]] = seconds
        measured = dataclasses.replace(steps, bucket_latency_s=latency,
                                       bucket_slope_s=np.zeros_like(latency))
        with_measured = run(measured, bucket, machine.word_bytes)[0]
        with_measured_s = float(with_measured.total_s[0])
        out["predicted_backward_measured_allreduce_s"] = with_measured_s
        out["backward_measured_allreduce_error_pct"] = (with_measured_s - step) / step * 100
    return out


def ddp_table(records: Sequence[DdpRecord], machine_name: str) -> Table:
    """The DDP comparison of :func:`ddp_analysis`, one row per P, in milliseconds."""
    rows: list[list[object]] = []
    for r in records:
        rows.append([r["P"], r["batch"], r["compute_s"] * 1e3, r["allreduce_s"] * 1e3,
                     r["ddp_step_s"] * 1e3, r["overlap_achieved_pct"],
                     r["predicted_none_s"] * 1e3, r["predicted_batch_s"] * 1e3,
                     r["predicted_backward_s"] * 1e3, r["backward_error_pct"],
                     r.get("predicted_backward_measured_allreduce_s", float("nan")) * 1e3,
                     r.get("backward_measured_allreduce_error_pct"),
                     " + ".join(str(b) for b in r["ddp_bucket_bytes"]),
                     " + ".join(f"{b:.0f}" for b in r["predicted_bucket_bytes"])])
    return Table(["P", "B", "compute [ms]", "all-reduce alone [ms]", "DDP step [ms]",
                  "overlap achieved [%]", "pred none [ms]", "pred batch [ms]",
                  "pred backward [ms]", "backward error [%]",
                  "pred backward, measured all-reduce [ms]", "error [%]",
                  "DDP buckets [bytes]", "gridcost buckets [bytes]"], rows,
                 f"5. a PyTorch DDP step (default buckets) vs overlap backward, profile "
                 f"{machine_name}",
                 ["compute: forward + backward under no_sync() with every process computing; "
                  "all-reduce alone: DDP's buckets all-reduced one after the other after the "
                  "step; DDP step: forward + backward with DDP's bucketed all-reduce "
                  f"({records[0]['statistic'] if records else 'median'} of the slowest rank)",
                  "pred: gridcost with the measured compute and the profile's α, β (none, "
                  "batch, backward), and backward with each bucket's measured all-reduce time",
                  "overlap achieved: (compute + all-reduce − DDP step) ÷ the smaller of the "
                  "two; on a host whose processes share the cores it can be ≤ 0"])
