"""Scalar reference ("slow twin") of the per-layer costs of cost-model.md §3–§7.

Written straight from /work/shared/cost-model.md with ``math`` only — no numpy and nothing from
``costmodel`` beyond reading the fields of its spec dataclasses — so that the vectorized kernel
of ``costmodel.cost.evaluate`` can be compared against it on random inputs.

Every cost is returned as (messages, words): the coefficient of α (latency terms) and of β
(words on the critical path), so seconds = α·messages + β·words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from costmodel.specs import Layer, Machine, Network

MODEL, DOMAIN = "model", "domain"

# Feasibility codes (cost-model.md §6), in the order a reason is reported.
OK, NO_SAMPLES, MODEL_TOO_WIDE, STRIP_TOO_THIN = 0, 1, 2, 3


def lg(p: int) -> int:
    """The paper's lg p = ⌈log2 p⌉ (§3); lg 1 = 0."""
    return math.ceil(math.log2(p))


def allgather(p: int, n: float) -> tuple[float, float]:
    """Bruck all-gather of n words on p processes: α·lg p + β·(p−1)/p·n (§3)."""
    if p == 1:
        return 0.0, 0.0
    return float(lg(p)), (p - 1) / p * n


def allreduce(p: int, n: float) -> tuple[float, float]:
    """The paper's all-reduce: 2·(α·lg p + β·(p−1)/p·n) (§3)."""
    messages, words = allgather(p, n)
    return 2.0 * messages, 2.0 * words


def allgather_ring(p: int, n: float) -> tuple[float, float]:
    """Ring all-gather: (p−1)·α + β·(p−1)/p·n."""
    return float(p - 1), (p - 1) / p * n


def allreduce_ring(p: int, n: float) -> tuple[float, float]:
    """Ring all-reduce: 2(p−1)·α + 2·β·(p−1)/p·n."""
    return 2.0 * (p - 1), 2.0 * (p - 1) / p * n


def halo(words: float) -> tuple[float, float]:
    """One halo message: α + β·words (Eq. 7)."""
    return 1.0, float(words)


COLLECTIVES = {"paper": (allgather, allreduce), "ring": (allgather_ring, allreduce_ring)}


@dataclass(frozen=True)
class LayerCost:
    """The three terms of one layer on one (mode, Pr, Pc) at global batch B, per iteration."""

    model_messages: float
    model_words: float
    batch_messages: float
    batch_words: float
    domain_messages: float
    domain_words: float
    model_s: float
    batch_s: float
    domain_s: float
    code: int
    uneven: bool


def layer_cost(layer: Layer, mode: str, pr: int, pc: int, batch: int, alpha: float,
               beta: float, collectives: str = "paper") -> LayerCost:
    """Cost of ``layer`` split by ``mode`` ('model' or 'domain') over Pr, batch over Pc (§4, §6).

    The slowest process decides (§6): it holds ⌈B/Pc⌉ samples and ⌈split/Pr⌉ of the split
    dimension, so its weight shard is ⌈split/Pr⌉/split·|W_i|.
    """
    gather, reduce = COLLECTIVES[collectives]
    b = math.ceil(batch / pc)
    params = layer.weight_params + layer.norm_params
    x_h, x_w, x_c = layer.in_shape
    y_h, y_w, y_c = layer.out_shape
    d = y_h * y_w * y_c
    split = y_c
    k_h, k_w = layer.kernel
    halo_h, halo_w = k_h // 2, k_w // 2

    if mode == MODEL:
        # Eq. 8: forward all-gather + backward ΔX all-reduce of ⌈B/Pc⌉·d_i words in each Pr
        # group; weight-gradient all-reduce of the shard in each Pc group.
        fm, fw = gather(pr, b * d)
        bm, bw = reduce(pr, b * d)
        model = (fm + bm, fw + bw)
        shard = math.ceil(split / pr) / split * params
        weights = reduce(pc, shard)
        domain = (0.0, 0.0)
    elif mode == DOMAIN:
        # Eqs. 7, 9: halos of ⌊k_h/2⌋ input rows forward and ⌊k_w/2⌋ output rows backward, once
        # each, only when the image is split; all of W_i all-reduced over all P = Pr·Pc.
        msgs, words = 0.0, 0.0
        if pr > 1 and halo_h > 0:
            m, w = halo(b * x_w * x_c * halo_h)
            msgs, words = msgs + m, words + w
        if pr > 1 and halo_w > 0:
            m, w = halo(b * y_w * y_c * halo_w)
            msgs, words = msgs + m, words + w
        model = (0.0, 0.0)
        weights = reduce(pr * pc, params)
        domain = (msgs, words)
    else:
        raise ValueError(mode)

    if pc > batch:
        code = NO_SAMPLES
    elif mode == MODEL and pr > split:
        code = MODEL_TOO_WIDE
    elif mode == DOMAIN and pr > 1 and x_h / pr < max(1, halo_h):
        # Pr = 1 cuts no strips and exchanges no halo (§4), so an unsplit image is never "too
        # thin", whatever its kernel.
        code = STRIP_TOO_THIN
    else:
        code = OK
    divided = split if mode == MODEL else x_h
    uneven = batch % pc != 0 or divided % pr != 0

    def seconds(term: tuple[float, float]) -> float:
        return alpha * term[0] + beta * term[1]

    return LayerCost(model[0], model[1], weights[0], weights[1], domain[0], domain[1],
                     seconds(model), seconds(weights), seconds(domain), code, uneven)


def largest_divisor_at_most(p: int, limit: int) -> int:
    """The largest divisor of p that is ≤ limit, by brute force."""
    return max(d for d in range(1, p + 1) if p % d == 0 and d <= limit)


def plan_split(plan: str, layer: Layer, pr: int, pc: int, batch: int) -> tuple[str, int, int]:
    """(mode, Pr, Pc) that ``layer`` uses on grid Pr×Pc under ``plan`` (cost-model.md §5)."""
    if layer.kind == "fc" or plan == "model-batch":
        return MODEL, pr, pc
    if plan == "fc-model":
        return MODEL, 1, pr * pc
    if plan == "domain-batch":
        return DOMAIN, pr, pc
    if plan == "beyond-batch":
        share = largest_divisor_at_most(pr * pc, batch)
        return DOMAIN, pr * pc // share, share
    raise ValueError(plan)


def epoch_time(local_batch: tuple[int, ...], epoch_s: tuple[float, ...], b: float) -> float:
    """T(b): linear interpolation in log b – log T; the end segment's slope outside (§7)."""
    xs = [math.log(v) for v in local_batch]
    ys = [math.log(v) for v in epoch_s]
    x = math.log(b)
    if x <= xs[0]:
        i = 0
    elif x >= xs[-1]:
        i = len(xs) - 2
    else:
        i = max(j for j in range(len(xs) - 1) if xs[j] <= x)
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    return math.exp(ys[i] + slope * (x - xs[i]))


def compute_s(network: Network, machine: Machine, P: int, batch: int, model: str) -> float:
    """Compute seconds per iteration (§7): 'table' T(b)/P·B/N, 'flops', or 'none'."""
    if model == "none":
        return 0.0
    if model == "table":
        table = machine.table()
        assert table is not None
        b = max(1.0, batch / P)
        return (epoch_time(table.local_batch, table.epoch_s, b) / P * batch
                / network.dataset_samples)
    macs = 0
    for layer in network.layers:
        if layer.kind == "fc":
            macs += math.prod(layer.in_shape) * layer.out_shape[2]
        else:
            macs += (math.prod(layer.out_shape) * (layer.in_shape[2] // layer.groups)
                     * layer.kernel[0] * layer.kernel[1])
    return batch * 6 * macs / (P * machine.flop_rate)


@dataclass(frozen=True)
class GridCost:
    """One grid of one plan: per-layer costs and the totals per iteration."""

    layers: tuple[LayerCost, ...]
    compute_s: float
    model_s: float
    batch_s: float
    domain_s: float
    total_s: float
    feasible: bool
    uneven: bool


def grid_cost(network: Network, machine: Machine, plan: str, pr: int, pc: int, batch: int,
              overlap: str = "none", compute: str = "none",
              collectives: str = "paper") -> GridCost:
    """Cost of ``plan`` on grid Pr×Pc at batch B, summed over layers (§4–§7)."""
    alpha, beta = machine.alpha_s, machine.word_bytes / machine.bandwidth_Bps
    costs = tuple(layer_cost(layer, *plan_split(plan, layer, pr, pc, batch), batch, alpha, beta,
                             collectives)
                  for layer in network.layers)
    model = sum(c.model_s for c in costs)
    weights = sum(c.batch_s for c in costs)
    domain = sum(c.domain_s for c in costs)
    comp = compute_s(network, machine, pr * pc, batch, compute)
    if overlap == "batch":
        total = max(comp, weights) + model + domain
    else:
        total = comp + model + weights + domain
    return GridCost(costs, comp, model, weights, domain, total,
                    all(c.code == OK for c in costs), any(c.uneven for c in costs))
