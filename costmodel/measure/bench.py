"""Microbenchmarks of all-gather, all-reduce and one point-to-point message (torch.distributed).

Sizes are n words of 4 bytes (float32) in the model's convention (docs/model.md §3): the total
words an all-gather gathers (each of p processes contributes n/p), the vector an all-reduce
reduces, the one message a point-to-point send carries.  Each size is run ``warmup`` times
unmeasured, then ``reps`` times; a repetition starts after a barrier, its time is the slowest
rank's, and the series keeps every repetition and their median.  By default the world is tiled
with disjoint groups of p that measure at the same time, as the groups of a Pr×Pc grid
communicate at the same time (:func:`run_bench`).  Point-to-point is a **halo-style exchange**
between ranks 0 and 1 (and 2 and 3, …): each posts ``isend`` of its n words and ``irecv`` of
the other's and waits for both — the pattern of `gridcost validate`'s domain halos, and one
halo message of the model (α + β·n, Eq. 7).  (A blocking ping-pong's half round trip measured a
different, faster pattern than the halos it is used to predict.)  Buffers are allocated once per
size and reused across warm-ups and repetitions, as a training loop with preallocated buffers
does.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.distributed as dist

from costmodel.progress import report, worker_progress

WORD_BYTES = 4


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _slowest(times: list[float], group: Any, device: torch.device) -> list[float]:
    """Per repetition, the largest time over the group's ranks."""
    tensor = torch.tensor(times, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=group)
    return [float(t) for t in tensor.cpu()]


def _time_collective(op: Any, group: Any, reps: int, warmup: int, device: torch.device,
                     before: Any = None) -> list[float]:
    """The slowest rank's seconds of ``op`` in each of ``reps`` repetitions, each after a
    barrier (and after ``before()``, untimed, when given)."""
    for _ in range(warmup):
        op()
    _sync(device)
    times = []
    for _ in range(reps):
        if before is not None:
            before()
        dist.barrier(group=group)
        start = time.perf_counter()
        op()
        _sync(device)
        times.append(time.perf_counter() - start)
    return _slowest(times, group, device)


def _exchange(words: int, reps: int, warmup: int, device: torch.device,
              group: Any) -> list[float]:
    """Seconds of each of ``reps`` halo-style exchanges of ``words`` words between the ranks of
    each pair (isend + irecv each way, concurrently), the slowest rank of ``group``'s."""
    peer = dist.get_rank() ^ 1  # 0↔1, 2↔3, …: every pair of a tiled world at once
    send = torch.ones(words, dtype=torch.float32, device=device)
    receive = torch.empty(words, dtype=torch.float32, device=device)

    def op() -> None:
        requests = [dist.isend(send, peer), dist.irecv(receive, peer)]
        for request in requests:
            if request is not None:
                request.wait()

    return _time_collective(op, group, reps, warmup, device)


IDLE_WORDS = 64
"""Size of the idle-arrival probe's all-reduce: small, so that its time is latency."""


def idle_probe(group: Any, gap_s: float, reps: int, warmup: int,
               device: torch.device) -> dict[str, Any]:
    """A host check on ranks 0 and 1: a small all-reduce timed back to back, and timed when
    the ranks reach it ``gap_s`` apart — rank r sleeps r·gap_s before the barrier, so rank 0
    waits idle, as the first rank to finish its compute does in a training step.  On a
    machine whose idle cores wake slowly (virtual CPUs that halt, deep C-states) the second is
    much slower: that time is not in the α the back-to-back microbenchmarks measure, but a
    training step pays it.  Returns every repetition of both (seconds, slowest rank)."""
    rank = dist.get_rank()
    vector = torch.ones(IDLE_WORDS, dtype=torch.float32, device=device)

    def op() -> None:
        dist.all_reduce(vector, group=group)

    back_to_back = _time_collective(op, group, reps, warmup, device)
    after_idle = _time_collective(op, group, reps, warmup, device,
                                  before=lambda: time.sleep(gap_s * rank))
    return {"gap_s": gap_s, "words": IDLE_WORDS, "p": 2, "back_to_back": back_to_back,
            "after_idle": after_idle}


def flop_rate(device: torch.device, size: int = 384, reps: int = 5) -> float:
    """Sustained FLOP/s of one process on a float32 matrix product (2·size³ per product)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def run_bench(args: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Measure every collective on each p of ``args['procs']`` (≤ world size) and each size.

    ``args``: procs (list of p), sizes_bytes (list), reps, warmup, collectives (list),
    idle_gap_s (optional: run :func:`idle_probe` with that gap; 0 or absent: not), concurrent
    (default True).  Concurrent: the world is tiled with ⌊world/p⌋ disjoint groups of p ranks
    that all run the collective at the same time — as the Pc groups of Pr ranks of a Pr×Pc
    grid do, sharing the node's cores, memory and network — each repetition starts after a
    barrier of all of them and its time is the slowest rank's of all.  Not concurrent: only the
    first p ranks, the others idle.  Every rank calls this; groups are made in the same order
    everywhere; ranks outside the groups wait at the barrier.  Returns {series: [...],
    flop_rate, backend, world, idle (the probe's result or None), concurrent}; each series
    keeps every repetition (``samples``: the slowest rank's seconds), their medians
    (``seconds``) and the number of groups that measured at once (``groups``).
    """
    world, rank = dist.get_world_size(), dist.get_rank()
    reps, warmup = int(args["reps"]), int(args["warmup"])
    wanted = list(args["collectives"])
    series: list[dict[str, Any]] = []
    rate = 0.0
    if rank == 0:
        rate = flop_rate(device)
    dist.barrier()
    idle = None
    gap_s = float(args.get("idle_gap_s", 0.0))
    if gap_s > 0 and world >= 2:
        pair = dist.new_group([0, 1])
        if rank < 2:
            idle = idle_probe(pair, gap_s, reps, warmup, device)
        dist.barrier()
    concurrent = bool(args.get("concurrent", True))
    progress = worker_progress(rank)
    units = [(p, c) for p in args["procs"] if p <= world for c in ("allgather", "allreduce", "p2p")
             if c in wanted and (c != "p2p" or p == 2)]
    total, done = len(units) * len(args["sizes_bytes"]), 0
    for p in args["procs"]:
        if p > world:
            continue
        tiles = world // p if concurrent else 1
        groups = [dist.new_group(list(range(t * p, (t + 1) * p))) for t in range(tiles)]
        sync = groups[0] if tiles == 1 else dist.new_group(list(range(tiles * p)))
        if rank < tiles * p:
            group = groups[rank // p]
            for collective in ("allgather", "allreduce", "p2p"):
                if collective not in wanted or (collective == "p2p" and p != 2):
                    continue
                words_done, seconds, samples = [], [], []
                for size in args["sizes_bytes"]:
                    words = max(1, int(size) // WORD_BYTES)
                    if collective == "allgather":
                        chunk = max(1, round(words / p))
                        local = torch.ones(chunk, dtype=torch.float32, device=device)
                        out = [torch.empty_like(local) for _ in range(p)]

                        def op(out: list[torch.Tensor] = out, local: torch.Tensor = local,
                               group: Any = group) -> None:
                            dist.all_gather(out, local, group=group)

                        n = chunk * p
                        t = _time_collective(op, sync, reps, warmup, device)
                    elif collective == "allreduce":
                        vector = torch.ones(words, dtype=torch.float32, device=device)

                        def op2(vector: torch.Tensor = vector, group: Any = group) -> None:
                            dist.all_reduce(vector, group=group)

                        n = words
                        t = _time_collective(op2, sync, reps, warmup, device)
                    else:
                        n = words
                        t = _exchange(words, reps, warmup, device, sync)
                    words_done.append(n)
                    seconds.append(statistics.median(t))
                    samples.append(t)
                    done += 1
                    report(progress, done, total, f"calibrating {collective}, p={p}")
                series.append({"collective": collective, "p": p, "words": words_done,
                               "seconds": seconds, "samples": samples, "groups": tiles})
        dist.barrier()
    backend = dist.get_backend()
    return {"series": series, "flop_rate": rate, "backend": str(backend), "world": world,
            "word_bytes": WORD_BYTES, "torch": torch.__version__, "reps": reps,
            "warmup": warmup, "idle": idle, "concurrent": concurrent}
