"""Data-parallel training steps with PyTorch's own DistributedDataParallel (``validate --ddp``).

The validation network (costmodel/measure/mini-alexnet.yaml, built in torch from
:data:`costmodel.measure.training.ARCH`) is wrapped in ``DistributedDataParallel`` with its
default bucketing (``bucket_cap_mb`` 25 MiB, first bucket 1 MiB), each process holding B/P
samples, and three things are timed per iteration (forward + backward; the optimizer update is
not part of gridcost's iteration):

* ``compute_s``: a step under ``no_sync()`` — the same forward and backward on every process at
  once, no gradient all-reduce: the compute as the CPUs are shared on this host;
* ``ddp_s``: a normal DDP step — the backward returns only when every bucket's all-reduce has
  finished, so this is the iteration of docs/schedule.md;
* ``allreduce_s``: after the step, each of DDP's buckets all-reduced alone (a buffer of the
  bucket's size, one after the other): the gradient communication with nothing to overlap.

The steps are interleaved (compute-only, DDP, all-reduce) and each starts after a barrier.
The record of every rank goes to rank 0.  Imports torch: loaded only by the worker.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from costmodel.measure.training import ARCH, make_batch, reference_parameters


def build_model(seed: int) -> nn.Sequential:
    """The validation network as an ``nn.Sequential`` with the reference weights of ``seed``."""
    params = reference_parameters(seed)
    modules: list[nn.Module] = []
    for op in ARCH:
        if op[0] == "conv":
            _, name, cin, cout, k = op
            conv = nn.Conv2d(cin, cout, k, padding=k // 2)
            with torch.no_grad():
                conv.weight.copy_(params[name][0])
                conv.bias.copy_(params[name][1])  # type: ignore[union-attr]
            modules.append(conv)
        elif op[0] == "fc":
            _, name, cin, cout = op
            fc = nn.Linear(cin, cout)
            with torch.no_grad():
                fc.weight.copy_(params[name][0])
                fc.bias.copy_(params[name][1])
            modules.append(fc)
        elif op[0] == "relu":
            modules.append(nn.ReLU())
        elif op[0] == "pool":
            modules.append(nn.MaxPool2d(2))
        else:
            modules.append(nn.Flatten())
    return nn.Sequential(*modules)


def _bucket_bytes(model: Any, total_bytes: int) -> list[int]:
    """DDP's bucket sizes in bytes (its logging data: the buckets rebuilt in ready order after
    the first step, else the initial ones), in reduction order; the whole gradient as one
    bucket when torch does not say."""
    data = model._get_ddp_logging_data()
    text = str(data.get("rebuilt_bucket_sizes", data.get("bucket_sizes", "")))
    sizes = [int(part) for part in text.replace(" ", "").split(",") if part.isdigit()]
    return sizes or [total_bytes]


def run_ddp(args: dict[str, Any], device: torch.device) -> dict[str, Any] | None:
    """Warm-up and timed DDP steps (module docstring); rank 0 returns every rank's record.

    ``args``: batch (global B, a multiple of the world size), warmup, iterations, seed.
    """
    from torch.nn.parallel import DistributedDataParallel

    world, rank = dist.get_world_size(), dist.get_rank()
    batch, seed = int(args["batch"]), int(args["seed"])
    local = batch // world
    x, y = make_batch(batch, seed)
    xs = x[rank * local:(rank + 1) * local].to(device)
    ys = y[rank * local:(rank + 1) * local].to(device)
    model = DistributedDataParallel(build_model(seed).to(device))
    params = [p for p in model.parameters() if p.requires_grad]
    total_bytes = sum(p.numel() * p.element_size() for p in params)

    def step(sync: bool) -> float:
        for p in params:
            p.grad = None
        dist.barrier()
        start = time.perf_counter()
        with nullcontext() if sync else model.no_sync():
            loss = F.cross_entropy(model(xs), ys, reduction="sum") / batch
            loss.backward()  # type: ignore[no-untyped-call]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    record: dict[str, Any] = {"compute_s": [], "ddp_s": [], "allreduce_s": []}
    buffers: list[torch.Tensor] = []
    for it in range(int(args["warmup"]) + int(args["iterations"])):
        compute = step(sync=False)
        ddp = step(sync=True)
        if it == int(args["warmup"]) or not buffers:
            # DDP rebuilds its buckets in ready order in the second step's forward
            buffers = [torch.zeros(max(1, size // 4), device=device)
                       for size in _bucket_bytes(model, total_bytes)]
        dist.barrier()
        reduce_times = []
        for buffer in buffers:
            start = time.perf_counter()
            dist.all_reduce(buffer)
            reduce_times.append(time.perf_counter() - start)
        if it >= int(args["warmup"]):
            record["compute_s"].append(compute)
            record["ddp_s"].append(ddp)
            record["allreduce_s"].append(reduce_times)
    record["bucket_bytes"] = _bucket_bytes(model, total_bytes)
    record["gradient_bytes"] = total_bytes
    everyone: list[Any] = [None] * world
    dist.all_gather_object(everyone, record)
    if rank != 0:
        return None
    return {"ranks": everyone, "world": world, "batch": batch, "backend":
            str(dist.get_backend()), "torch": torch.__version__,
            "threads": torch.get_num_threads()}
