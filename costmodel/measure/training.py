"""Real training iterations of a small AlexNet-shaped network with the integrated Pr×Pc algorithm.

The algorithm of docs/model.md §4 on torch.distributed, rank = c·Pr + r (r the position along Pr,
c along Pc; the Pr group of c is the ranks c·Pr … c·Pr + Pr − 1, the Pc group of r every Pr-th:
the ``pr-inside`` mapping of docs/hierarchy.md; with ``pc-inside`` rank = r·Pc + c instead):

- a **model-split** layer (fc layers; conv layers in plan ``model-batch``) holds 1/Pr of its
  filters/units and the B/Pc samples of its column: the input is replicated in the Pr group; the
  layer computes its slice of the outputs and **all-gathers** them within the Pr group (forward);
  backward, the partial ΔX of the slices is **all-reduced** within the Pr group; the weight
  gradients of the shard are **all-reduced within the Pc group**;
- a **domain-split** conv layer (plan ``domain-batch``) holds all of W_i and a strip of H/Pr rows
  of its column's samples: forward it receives ⌊k/2⌋ rows of X from each neighbour (**halo**),
  backward ⌊k/2⌋ rows of ΔY, and its weight gradients are all-reduced over all P;
- a **pure-batch** conv layer (plan ``fc-model``) holds B/P samples and all-reduces its weight
  gradients over all P;
- between the conv and the fc layers the activations are **redistributed** to the fc layout by
  an all-gather in the Pr group (along the batch for fc-model, along the height for
  domain-batch) — the paper does not charge it; it is measured and reported separately.

Every communication call goes through :class:`Comm`, which records the layer, the term (model,
batch, domain, redistribution), the collective, the group size p, the words n it was handed (the
model's convention: an all-gather's total, an all-reduce's vector, one halo message) and the
seconds it took.  Weight gradients of a layer (weights and bias) are all-reduced as one buffer.

Communication buffers (the all-gather's receive slices, the halo send and receive rows, the ΔX
and weight-gradient buffers) are allocated on the first iteration and reused by every later one,
as a training loop does; the first (warm-up) iterations, which allocate them, are not timed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from costmodel.progress import report, worker_progress

ARCH: tuple[tuple[Any, ...], ...] = (
    ("conv", "conv1", 3, 32, 5),
    ("relu",), ("pool",),
    ("conv", "conv2", 32, 64, 3),
    ("relu",), ("pool",),
    ("flatten",),
    ("fc", "fc1", 64 * 8 * 8, 1024), ("relu",),
    ("fc", "fc2", 1024, 1024), ("relu",),
    ("fc", "fc3", 1024, 16),
)
"""The torch twin of costmodel/measure/mini-alexnet.yaml: (kind, name, in, out, kernel)."""

INPUT_SHAPE = (3, 32, 32)
CLASSES = 16
PLANS = ("model-batch", "fc-model", "domain-batch")
CONV_RULE = {"model-batch": "model", "fc-model": "batch", "domain-batch": "domain"}


def reference_parameters(seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The full weights and biases of every weighted layer, the same on every rank."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for op in ARCH:
        if op[0] == "conv":
            _, name, cin, cout, k = op
            fan_in = cin * k * k
            w = torch.randn(cout, cin, k, k, generator=gen) * (2.0 / fan_in) ** 0.5
        elif op[0] == "fc":
            _, name, cin, cout = op
            fan_in = cin
            w = torch.randn(cout, cin, generator=gen) * (2.0 / fan_in) ** 0.5
        else:
            continue
        b = torch.randn(cout, generator=gen) * 0.01
        params[name] = (w, b)
    return params


def make_batch(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic global mini-batch: images (B, 3, 32, 32) and labels (B,)."""
    gen = torch.Generator().manual_seed(seed + 1)
    return (torch.randn(batch, *INPUT_SHAPE, generator=gen),
            torch.randint(0, CLASSES, (batch,), generator=gen))


def reference_step(params: dict[str, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor,
                   y: torch.Tensor) -> tuple[float, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """One single-process step: the mean cross-entropy over B and the gradients of every layer."""
    leaves = {n: (w.clone().requires_grad_(), b.clone().requires_grad_())
              for n, (w, b) in params.items()}
    h = x
    for op in ARCH:
        if op[0] == "conv":
            w, b = leaves[op[1]]
            h = F.conv2d(h, w, b, padding=op[4] // 2)
        elif op[0] == "fc":
            w, b = leaves[op[1]]
            h = F.linear(h, w, b)
        elif op[0] == "relu":
            h = F.relu(h)
        elif op[0] == "pool":
            h = F.max_pool2d(h, 2)
        else:
            h = h.flatten(1)
    loss = F.cross_entropy(h, y, reduction="sum") / x.shape[0]
    loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
    grads = {n: (w.grad, b.grad) for n, (w, b) in leaves.items()}
    return float(loss), grads  # type: ignore[return-value]


# --------------------------------------------------------------------------- instrumented comm


@dataclass
class Comm:
    """Every communication of one rank: (layer, term, collective, p, words n, seconds).

    With ``sync`` (the default) each collective is preceded by a barrier of its group, whose
    time is kept apart (``wait_s``): the seconds of a collective then measure the collective,
    as the microbenchmarks of calibrate do, not the skew with which ranks reach it.
    """

    device: torch.device
    sync: bool = True
    log: list[dict[str, Any]] = field(default_factory=list)
    wait_s: float = 0.0
    buffers: dict[tuple[Any, ...], torch.Tensor] = field(default_factory=dict)

    def buffer(self, key: tuple[Any, ...], like: torch.Tensor) -> torch.Tensor:
        """A preallocated tensor of ``like``'s shape and dtype for ``key`` (zeros when new),
        the same one on every iteration that passes the same ``buffers``."""
        held = self.buffers.get(key)
        if held is None or held.shape != like.shape or held.dtype != like.dtype:
            held = torch.zeros_like(like, memory_format=torch.contiguous_format)
            self.buffers[key] = held
        return held

    def _barrier(self, group: Any) -> None:
        if self.sync:
            start = time.perf_counter()
            dist.barrier(group=group)
            self.wait_s += time.perf_counter() - start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _record(self, layer: str, term: str, op: str, p: int, words: int, start: float) -> None:
        self._sync()
        self.log.append({"layer": layer, "term": term, "op": op, "p": p, "words": words,
                         "seconds": time.perf_counter() - start})

    def all_gather(self, x: torch.Tensor, group: Any, p: int, dim: int, layer: str,
                   term: str) -> torch.Tensor:
        """Concatenate the p slices of the group along ``dim``; n = p·numel(x)."""
        self._barrier(group)
        start = time.perf_counter()
        x = x.contiguous()
        parts = [self.buffer((layer, term, "all-gather", i), x) for i in range(p)]
        dist.all_gather(parts, x, group=group)
        out = torch.cat(parts, dim=dim)
        self._record(layer, term, "all-gather", p, p * x.numel(), start)
        return out

    def all_reduce(self, x: torch.Tensor, group: Any, p: int, layer: str, term: str,
                   op: str = "all-reduce") -> torch.Tensor:
        """Sum ``x`` over the group (in place); n = numel(x)."""
        self._barrier(group)
        start = time.perf_counter()
        dist.all_reduce(x, group=group)
        self._record(layer, term, op, p, x.numel(), start)
        return x

    def halo(self, top: torch.Tensor, bottom: torch.Tensor, up: int | None, down: int | None,
             group: Any, layer: str, op: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Send ``top`` rows to rank ``up`` and ``bottom`` to ``down``; receive theirs.

        Returns (rows from up, rows from down), zeros at the image's border.  Each message is
        logged with n = its words (one halo of the model per neighbour).  ``group`` is the
        strip's Pr group (for the barrier).
        """
        self._barrier(group)
        start = time.perf_counter()
        # receive buffers stay zero where there is no neighbour (the image's border)
        from_up = self.buffer((layer, op, "from up"), bottom)
        from_down = self.buffer((layer, op, "from down"), top)
        requests = []
        if up is not None:
            send_up = self.buffer((layer, op, "to up"), top).copy_(top)
            requests += [dist.isend(send_up, up), dist.irecv(from_up, up)]
        if down is not None:
            send_down = self.buffer((layer, op, "to down"), bottom).copy_(bottom)
            requests += [dist.isend(send_down, down), dist.irecv(from_down, down)]
        for request in requests:
            if request is not None:
                request.wait()
        self._sync()
        elapsed = time.perf_counter() - start
        neighbours = (up is not None) + (down is not None)
        for _ in range(neighbours):
            self.log.append({"layer": layer, "term": "domain", "op": op, "p": 2,
                             "words": top.numel(), "seconds": elapsed / neighbours})
        return from_up, from_down


class _GatherOutputs(torch.autograd.Function):
    """Forward: all-gather the slices along ``dim``; backward: keep this rank's slice."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, comm: Comm, group: Any, p: int, index: int,
                dim: int, layer: str, term: str) -> torch.Tensor:
        ctx.meta = (p, index, dim)
        return comm.all_gather(x, group, p, dim, layer, term)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        p, index, dim = ctx.meta
        return (grad.chunk(p, dim)[index].contiguous(),) + (None,) * 7


class _ReduceInputGrad(torch.autograd.Function):
    """Forward: identity; backward: all-reduce ΔX within the Pr group (model split)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, comm: Comm, group: Any, p: int,
                layer: str) -> torch.Tensor:
        ctx.meta = (comm, group, p, layer)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        comm, group, p, layer = ctx.meta
        dx = comm.buffer((layer, "model", "all-reduce ΔX"), grad).copy_(grad)
        return (comm.all_reduce(dx, group, p, layer, "model", "all-reduce ΔX"),
                None, None, None, None)


class _DomainConv(torch.autograd.Function):
    """A stride-1 'same' conv on a strip of rows, with halos (Eqs. 7, 9).

    Forward: ⌊k/2⌋ rows of X from each neighbour, conv without height padding.  Backward:
    ⌊k/2⌋ rows of ΔY from each neighbour, ΔX = conv_transpose of the extended ΔY (padding 2h);
    ΔW and Δb from the local extended X and ΔY.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, comm: Comm,
                up: int | None, down: int | None, group: Any, layer: str) -> torch.Tensor:
        h = w.shape[2] // 2
        pad_w = w.shape[3] // 2
        from_up, from_down = comm.halo(x[:, :, :h], x[:, :, -h:], up, down, group, layer,
                                       "halo X")
        xp = torch.cat([from_up, x, from_down], dim=2)
        ctx.save_for_backward(xp, w)
        ctx.meta = (comm, up, down, group, layer, h, pad_w)
        return F.conv2d(xp, w, b, padding=(0, pad_w))

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:
        xp, w = ctx.saved_tensors
        comm, up, down, group, layer, h, pad_w = ctx.meta
        dy = dy.contiguous()
        from_up, from_down = comm.halo(dy[:, :, :h], dy[:, :, -h:], up, down, group, layer,
                                       "halo ΔY")
        dyp = torch.cat([from_up, dy, from_down], dim=2)
        dx = F.conv_transpose2d(dyp, w, padding=(2 * h, pad_w))
        dw = torch.nn.grad.conv2d_weight(  # type: ignore[attr-defined]
            xp, w.shape, dy, padding=(0, pad_w))
        db = dy.sum(dim=(0, 2, 3))
        return dx, dw, db, None, None, None, None, None


# --------------------------------------------------------------------------- one grid


@dataclass
class Layout:
    """This rank's place in the Pr × Pc grid and its process groups."""

    pr: int
    pc: int
    r: int
    c: int
    row_group: Any  # the Pr group of column c (model split, halos, redistribution)
    col_group: Any  # the Pc group of row r (weight gradients of a model split)
    world: Any
    mapping: str = "pr-inside"

    def rank_of(self, r: int, c: int) -> int:
        """The rank of grid position (r, c): r + Pr·c with the Pr groups contiguous
        ('pr-inside'), c + Pc·r with the Pc groups contiguous ('pc-inside')."""
        return rank_at(self.pr, self.pc, r, c, self.mapping)


def rank_at(pr: int, pc: int, r: int, c: int, mapping: str) -> int:
    """Rank of grid position (r, c) under ``mapping`` (docs/hierarchy.md)."""
    return c + pc * r if mapping == "pc-inside" else r + pr * c


def make_layouts(grids: list[tuple[int, int]],
                 mappings: tuple[str, ...] = ("pr-inside",)) -> list[Layout]:
    """Groups for every grid and mapping of the grid on the ranks, created in the same order
    on every rank (torch requires it)."""
    rank, size = dist.get_rank(), dist.get_world_size()
    layouts = []
    for mapping in mappings:
        for pr, pc in grids:
            row_groups = [dist.new_group(sorted(rank_at(pr, pc, i, c, mapping)
                                                for i in range(pr))) for c in range(pc)]
            col_groups = [dist.new_group(sorted(rank_at(pr, pc, r, j, mapping)
                                                for j in range(pc))) for r in range(pr)]
            if mapping == "pc-inside":
                r, c = rank // pc, rank % pc
            else:
                r, c = rank % pr, rank // pr
            layouts.append(Layout(pr, pc, r, c, row_groups[c], col_groups[r], None, mapping))
    assert all(lay.pr * lay.pc == size for lay in layouts)
    return layouts


def local_parameters(params: dict[str, tuple[torch.Tensor, torch.Tensor]], plan: str,
                     lay: Layout) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """This rank's share: 1/Pr of the filters/units of model-split layers, else everything."""
    local = {}
    for op in ARCH:
        if op[0] not in ("conv", "fc"):
            continue
        w, b = params[op[1]]
        if op[0] == "fc" or CONV_RULE[plan] == "model":
            rows = w.shape[0] // lay.pr
            w, b = w[lay.r * rows:(lay.r + 1) * rows], b[lay.r * rows:(lay.r + 1) * rows]
        local[op[1]] = (w.clone().requires_grad_(), b.clone().requires_grad_())
    return local


def local_input(x: torch.Tensor, y: torch.Tensor, plan: str,
                lay: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's input (per the conv layers' split) and its column's labels (fc layers)."""
    batch = x.shape[0]
    per_col = batch // lay.pc
    labels = y[lay.c * per_col:(lay.c + 1) * per_col]
    rule = CONV_RULE[plan]
    if rule == "batch":
        per_rank = batch // (lay.pr * lay.pc)
        rank = lay.c * lay.pr + lay.r
        return x[rank * per_rank:(rank + 1) * per_rank], labels
    mine = x[lay.c * per_col:(lay.c + 1) * per_col]
    if rule == "domain":
        rows = mine.shape[2] // lay.pr
        mine = mine[:, :, lay.r * rows:(lay.r + 1) * rows]
    return mine.contiguous(), labels


def forward(local: dict[str, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, plan: str,
            lay: Layout, comm: Comm) -> torch.Tensor:
    """The logits of this rank's column, (B/Pc, classes), replicated in the Pr group."""
    rule = CONV_RULE[plan]
    up = lay.rank_of(lay.r - 1, lay.c) if lay.r > 0 else None
    down = lay.rank_of(lay.r + 1, lay.c) if lay.r < lay.pr - 1 else None
    h = x
    for op in ARCH:
        kind = op[0]
        if kind in ("conv", "fc") and (kind == "fc" or rule == "model"):
            w, b = local[op[1]]
            if lay.pr > 1 and h.requires_grad:
                h = _ReduceInputGrad.apply(h, comm, lay.row_group, lay.pr, op[1])  # type: ignore[no-untyped-call,unused-ignore]
            h = F.conv2d(h, w, b, padding=op[4] // 2) if kind == "conv" else F.linear(h, w, b)
            if lay.pr > 1:
                h = _GatherOutputs.apply(  # type: ignore[no-untyped-call,unused-ignore]
                    h, comm, lay.row_group, lay.pr, lay.r, 1, op[1], "model")
        elif kind == "conv":
            w, b = local[op[1]]
            if rule == "domain" and lay.pr > 1:
                h = _DomainConv.apply(h, w, b, comm, up, down, lay.row_group, op[1])  # type: ignore[no-untyped-call,unused-ignore]
            else:
                h = F.conv2d(h, w, b, padding=op[4] // 2)
        elif kind == "relu":
            h = F.relu(h)
        elif kind == "pool":
            h = F.max_pool2d(h, 2)
        else:  # flatten: redistribute the conv output to the fc layout first
            if rule != "model" and lay.pr > 1:
                dim = 0 if rule == "batch" else 2
                h = _GatherOutputs.apply(  # type: ignore[no-untyped-call,unused-ignore]
                    h, comm, lay.row_group, lay.pr, lay.r, dim, "conv→fc", "redistribution")
            h = h.flatten(1)
    return h


def reduce_gradients(local: dict[str, tuple[torch.Tensor, torch.Tensor]], plan: str,
                     lay: Layout, comm: Comm) -> None:
    """Sum each layer's weight gradients (one buffer: weights and bias) over its batch group."""
    size = lay.pr * lay.pc
    for op in ARCH:
        if op[0] not in ("conv", "fc"):
            continue
        w, b = local[op[1]]
        model_split = op[0] == "fc" or CONV_RULE[plan] == "model"
        group, p = (lay.col_group, lay.pc) if model_split else (None, size)
        if p == 1:
            continue
        assert w.grad is not None and b.grad is not None
        flat = comm.buffers.get((op[1], "batch"))
        if flat is None:
            flat = torch.empty(w.numel() + b.numel(), dtype=w.dtype, device=w.device)
            comm.buffers[(op[1], "batch")] = flat
        torch.cat([w.grad.reshape(-1), b.grad.reshape(-1)], out=flat)
        comm.all_reduce(flat, group, p, op[1], "batch")
        w.grad.copy_(flat[:w.numel()].view_as(w))
        b.grad.copy_(flat[w.numel():].view_as(b))


def _max_error(local: dict[str, tuple[torch.Tensor, torch.Tensor]],
               reference: dict[str, tuple[torch.Tensor, torch.Tensor]], plan: str,
               lay: Layout) -> tuple[float, bool]:
    """Largest |distributed − reference| / max|reference| over this rank's gradients; allclose."""
    worst, close = 0.0, True
    for op in ARCH:
        if op[0] not in ("conv", "fc"):
            continue
        for mine, full in zip(local[op[1]], reference[op[1]]):
            assert mine.grad is not None
            ref = full
            if op[0] == "fc" or CONV_RULE[plan] == "model":
                rows = full.shape[0] // lay.pr
                ref = full[lay.r * rows:(lay.r + 1) * rows]
            scale = float(ref.abs().max()) or 1.0
            worst = max(worst, float((mine.grad - ref).abs().max()) / scale)
            close &= bool(torch.allclose(mine.grad, ref, rtol=1e-4, atol=1e-5 * scale))
    return worst, close


def run_grid(plan: str, lay: Layout, args: dict[str, Any], device: torch.device,
             params: dict[str, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor,
             y: torch.Tensor, reference: tuple[float, dict[str, Any]]) -> dict[str, Any]:
    """Warm-up and timed iterations of one plan on one grid; this rank's record."""
    local = local_parameters(params, plan, lay)
    xs, ys = local_input(x, y, plan, lay)
    xs, ys = xs.to(device), ys.to(device)
    local = {n: (w.detach().to(device).requires_grad_(), b.detach().to(device).requires_grad_())
             for n, (w, b) in local.items()}
    batch = x.shape[0]
    record: dict[str, Any] = {"iterations": []}
    buffers: dict[tuple[Any, ...], torch.Tensor] = {}  # reused by every iteration
    for it in range(int(args["warmup"]) + int(args["iterations"])):
        comm = Comm(device, sync=bool(args.get("sync", True)), buffers=buffers)
        for w, b in local.values():
            w.grad, b.grad = None, None
        start = time.perf_counter()
        logits = forward(local, xs, plan, lay, comm)
        loss = F.cross_entropy(logits, ys, reduction="sum") / batch
        loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
        reduce_gradients(local, plan, lay, comm)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        step = time.perf_counter() - start
        if it == 0:
            total = loss.detach().clone().reshape(1)
            if lay.pc > 1:  # bookkeeping, not part of the algorithm: not logged
                dist.all_reduce(total, group=lay.col_group)
            error, close = _max_error(local, reference[1], plan, lay)
            record["numerics"] = {"loss": float(total), "reference_loss": reference[0],
                                  "max_rel_grad_error": error, "allclose": close}
            record["log"] = comm.log
        with torch.no_grad():
            for w, b in local.values():
                assert w.grad is not None and b.grad is not None
                w -= float(args["lr"]) * w.grad
                b -= float(args["lr"]) * b.grad
        if it >= int(args["warmup"]):
            per_term: dict[str, float] = {}
            for entry in comm.log:
                per_term[entry["term"]] = per_term.get(entry["term"], 0.0) + entry["seconds"]
            record["iterations"].append({"step_s": step, "comm_s": per_term,
                                         "wait_s": comm.wait_s,
                                         # seconds of each call, in the order of ``log``
                                         "call_s": [e["seconds"] for e in comm.log]})
    return record


def run_validation(args: dict[str, Any], device: torch.device) -> dict[str, Any] | None:
    """Every plan × grid of ``args``; rank 0 returns the records of all ranks.

    ``args``: batch, plans, grids ([[pr, pc], …]), warmup, iterations, lr, seed.
    """
    batch, seed = int(args["batch"]), int(args["seed"])
    grids = [(int(pr), int(pc)) for pr, pc in args["grids"]]
    mappings = tuple(args.get("mappings", ("pr-inside",)))
    layouts = make_layouts(grids, mappings)
    params = reference_parameters(seed)
    x, y = make_batch(batch, seed)
    reference = reference_step(params, x, y)
    runs: list[dict[str, Any]] = []
    progress = worker_progress(dist.get_rank())
    total = len(args["plans"]) * len(layouts)
    for plan in args["plans"]:
        for lay in layouts:
            report(progress, len(runs), total, f"validating {plan} {lay.pr}×{lay.pc} "
                   f"{lay.mapping}")
            dist.barrier()
            mine = run_grid(plan, lay, args, device, params, x, y, reference)
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, mine)
            runs.append({"plan": plan, "pr": lay.pr, "pc": lay.pc, "ranks": everyone}
                        | ({"mapping": lay.mapping} if "mappings" in args else {}))
    report(progress, len(runs), total, "validating")
    return {"runs": runs, "backend": str(dist.get_backend()), "world": dist.get_world_size(),
            "torch": torch.__version__, "batch": batch}
