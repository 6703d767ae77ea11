"""Scalar reference ("slow twin") of the per-layer costs of docs/model.md §3–§7.

Written straight from docs/model.md with ``math`` only — no numpy and nothing from
``costmodel`` beyond reading the fields of its spec dataclasses — so that the vectorized kernel
of ``costmodel.engine.cost.evaluate`` can be compared against it on random inputs.

Every collective is returned as (messages, words, reduced): the coefficient of α (latency
terms), of β (words on the critical path) and of γ (words reduced on the critical path), so
seconds = α·messages + β·words + γ·reduced.  The named algorithms and their non-power-of-two
conventions follow docs/collectives.md, written as steps rather than closed forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from costmodel.inputs.specs import Layer, Machine, Network

MODEL, DOMAIN = "model", "domain"

# Feasibility codes (docs/model.md §6), in the order a reason is reported.
OK, NO_SAMPLES, MODEL_TOO_WIDE, STRIP_TOO_THIN = 0, 1, 2, 3


def lg(p: int) -> int:
    """The paper's lg p = ⌈log2 p⌉ (§3); lg 1 = 0."""
    return math.ceil(math.log2(p))


def floor_lg(p: int) -> int:
    """⌊log2 p⌋, by integer arithmetic."""
    return p.bit_length() - 1


# Every collective below returns (messages, words, reduced): the coefficients of α, β and γ.
# Written as steps from docs/collectives.md; non-powers of two use MPICH's fold: p' = 2^⌊lg p⌋
# processes run the algorithm, the p − p' others hand in their data before and get the result
# after.
Cost3 = tuple[float, float, float]


def allgather(p: int, n: float) -> Cost3:
    """Bruck all-gather of n words on p processes: α·lg p + β·(p−1)/p·n (§3)."""
    if p == 1:
        return 0.0, 0.0, 0.0
    return float(lg(p)), (p - 1) / p * n, 0.0


def allreduce(p: int, n: float) -> Cost3:
    """The paper's all-reduce: 2·(α·lg p + β·(p−1)/p·n), no γ (§3)."""
    messages, words, _ = allgather(p, n)
    return 2.0 * messages, 2.0 * words, 0.0


def allgather_ring(p: int, n: float) -> Cost3:
    """Ring all-gather: p−1 steps of n/p words."""
    return float(p - 1), (p - 1) * (n / p), 0.0


def allreduce_ring(p: int, n: float) -> Cost3:
    """Ring all-reduce: ring reduce-scatter (p−1 steps of n/p words, each reduced), then ring
    all-gather (p−1 steps of n/p words)."""
    block = n / p
    return 2.0 * (p - 1), 2 * (p - 1) * block, (p - 1) * block


def allgather_recursive_doubling(p: int, n: float) -> Cost3:
    """Recursive doubling: step k exchanges 2^k of the p' blocks; fold when p ≠ p'."""
    p2 = 1 << floor_lg(p)
    messages, words = 0.0, 0.0
    for k in range(floor_lg(p)):
        messages += 1
        words += (2 ** k) * (n / p2)
    if p != p2:
        messages += 2
        words += n / p + (p - 1) / p * n
    return messages, words, 0.0


def allgather_binomial(p: int, n: float) -> Cost3:
    """Binomial gather ((p−1)/p·n into the root in ⌈lg p⌉ steps), then binomial broadcast."""
    if p == 1:
        return 0.0, 0.0, 0.0
    return 2.0 * lg(p), (p - 1) / p * n + lg(p) * n, 0.0


def allreduce_recursive_doubling(p: int, n: float) -> Cost3:
    """Recursive doubling: ⌊lg p⌋ exchanges of all n words, each reduced; fold when p ≠ p'."""
    steps = floor_lg(p)
    messages, words, reduced = float(steps), float(steps) * n, float(steps) * n
    if p != 1 << steps:
        messages, words, reduced = messages + 2, words + 2 * n, reduced + n
    return messages, words, reduced


def allreduce_rabenseifner(p: int, n: float) -> Cost3:
    """Recursive halving (step k: n/2^(k+1) words sent and reduced), then recursive doubling
    back; fold when p ≠ p'."""
    steps = floor_lg(p)
    messages, words, reduced = 0.0, 0.0, 0.0
    for k in range(steps):
        half = n / 2 ** (k + 1)
        messages += 2
        words += 2 * half
        reduced += half
    if p != 1 << steps:
        messages, words, reduced = messages + 2, words + 2 * n, reduced + n
    return messages, words, reduced


def allreduce_binomial(p: int, n: float) -> Cost3:
    """Binomial reduce (⌈lg p⌉ steps of n words, each reduced) then binomial broadcast."""
    steps = lg(p) if p > 1 else 0
    return 2.0 * steps, 2.0 * steps * n, float(steps) * n


ALLGATHER = {"paper": allgather, "bruck": allgather, "recursive-doubling":
             allgather_recursive_doubling, "ring": allgather_ring, "binomial": allgather_binomial}
ALLREDUCE = {"paper": allreduce, "rabenseifner": allreduce_rabenseifner,
             "recursive-doubling": allreduce_recursive_doubling, "ring": allreduce_ring,
             "binomial": allreduce_binomial}
AUTO_ORDER = {"allgather": ["bruck", "recursive-doubling", "ring", "binomial"],
              "allreduce": ["rabenseifner", "recursive-doubling", "ring", "binomial"]}


def select(collectives: str) -> dict[str, str]:
    """'NAME' or 'allgather=A,allreduce=B' → {kind: name}; a single name missing for a kind
    falls back to Bruck (all-gather) or the paper's (all-reduce)."""
    if "=" in collectives:
        chosen = {"allgather": "paper", "allreduce": "paper"}
        for part in collectives.split(","):
            kind, name = part.split("=")
            chosen[kind] = name
        return chosen
    table = {"allgather": ALLGATHER, "allreduce": ALLREDUCE}
    fallback = {"allgather": "bruck", "allreduce": "paper"}
    return {kind: collectives if collectives in table[kind] or collectives == "auto"
            else fallback[kind] for kind in table}


def collective(kind: str, name: str, p: int, n: float, alpha: float, beta: float,
               gamma: float) -> tuple[Cost3, str]:
    """Cost of one collective and the algorithm used ('auto': the cheapest, first on ties)."""
    table = ALLGATHER if kind == "allgather" else ALLREDUCE
    if name != "auto":
        return table[name](p, n), name
    best: tuple[float, Cost3, str] | None = None
    for candidate in AUTO_ORDER[kind]:
        cost = table[candidate](p, n)
        seconds = alpha * cost[0] + beta * cost[1] + gamma * cost[2]
        if best is None or seconds < best[0]:
            best = (seconds, cost, candidate)
    assert best is not None
    return best[1], best[2]


def halo(words: float) -> Cost3:
    """One halo message: α + β·words (Eq. 7)."""
    return 1.0, float(words), 0.0


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
    algorithms: tuple[str | None, str | None, str | None] = (None, None, None)
    """(model all-gather, model all-reduce, weight all-reduce) algorithm; None: not run."""


def layer_cost(layer: Layer, mode: str, pr: int, pc: int, batch: int, alpha: float,
               beta: float, collectives: str = "paper", gamma: float = 0.0) -> LayerCost:
    """Cost of ``layer`` split by ``mode`` ('model' or 'domain') over Pr, batch over Pc (§4, §6).

    The slowest process decides (§6): it holds ⌈B/Pc⌉ samples and ⌈split/Pr⌉ of the split
    dimension, so its weight shard is ⌈split/Pr⌉/split·|W_i|.
    """
    chosen = select(collectives)
    used: dict[str, str] = {}

    def gather(p: int, n: float) -> Cost3:
        cost, used["gather"] = collective("allgather", chosen["allgather"], p, n, alpha, beta,
                                          gamma)
        return cost

    def reduce(p: int, n: float, key: str = "reduce") -> Cost3:
        cost, used[key] = collective("allreduce", chosen["allreduce"], p, n, alpha, beta, gamma)
        return cost
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
        fm, fw, fr = gather(pr, b * d)
        bm, bw, br = reduce(pr, b * d)
        model = (fm + bm, fw + bw, fr + br)
        shard = math.ceil(split / pr) / split * params
        weights = reduce(pc, shard, "weights")
        domain = (0.0, 0.0, 0.0)
    elif mode == DOMAIN:
        # Eqs. 7, 9: halos of ⌊k_h/2⌋ input rows forward and ⌊k_w/2⌋ output rows backward, once
        # each, only when the image is split; all of W_i all-reduced over all P = Pr·Pc.
        msgs, words = 0.0, 0.0
        if pr > 1 and halo_h > 0:
            m, w, _ = halo(b * x_w * x_c * halo_h)
            msgs, words = msgs + m, words + w
        if pr > 1 and halo_w > 0:
            m, w, _ = halo(b * y_w * y_c * halo_w)
            msgs, words = msgs + m, words + w
        model = (0.0, 0.0, 0.0)
        weights = reduce(pr * pc, params, "weights")
        domain = (msgs, words, 0.0)
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

    def seconds(term: Cost3) -> float:
        return alpha * term[0] + beta * term[1] + gamma * term[2]

    model_runs = mode == MODEL and pr > 1
    weights_p = pc if mode == MODEL else pr * pc
    algos = (used.get("gather") if model_runs else None, used.get("reduce") if model_runs else None,
             used.get("weights") if weights_p > 1 else None)
    return LayerCost(model[0], model[1], weights[0], weights[1], domain[0], domain[1],
                     seconds(model), seconds(weights), seconds(domain), code, uneven, algos)


def largest_divisor_at_most(p: int, limit: int) -> int:
    """The largest divisor of p that is ≤ limit, by brute force."""
    return max(d for d in range(1, p + 1) if p % d == 0 and d <= limit)


def plan_split(plan: str, layer: Layer, pr: int, pc: int, batch: int) -> tuple[str, int, int]:
    """(mode, Pr, Pc) that ``layer`` uses on grid Pr×Pc under ``plan`` (docs/model.md §5)."""
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
    gamma = machine.gamma_s_per_word
    costs = tuple(layer_cost(layer, *plan_split(plan, layer, pr, pc, batch), batch, alpha, beta,
                             collectives, gamma)
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
