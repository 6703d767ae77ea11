"""Entry point of one measurement process: ``python -m costmodel.measure.worker TASK ARGS OUT``.

Joins the process group through env:// (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE — set by
gridcost's launcher or by torchrun), uses NCCL when CUDA GPUs are present and gloo otherwise,
runs the task and, on rank 0, writes its JSON result to OUT.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

TASKS = ("bench", "validate", "ddp")


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the launching gridcost process dies."""
    parent = os.environ.get("GRIDCOST_PARENT_PID")
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(1)


def backend_and_device() -> tuple[str, Any]:
    """('nccl', cuda:LOCAL_RANK) when CUDA and NCCL are available, else ('gloo', cpu)."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available() and dist.is_nccl_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return "nccl", torch.device("cuda", local)
    return "gloo", torch.device("cpu")


def run_task(task: str, args: dict[str, Any]) -> Any:
    """Initialise torch.distributed (env://), run ``task`` and tear down; rank 0's result."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(int(args.get("threads", 1)))
    backend, device = backend_and_device()
    dist.init_process_group(backend, init_method="env://",
                            timeout=timedelta(seconds=float(args.get("timeout_s", 600))))
    try:
        if task == "bench":
            from costmodel.measure.bench import run_bench

            result: dict[str, Any] | None = run_bench(args, device)
        elif task == "validate":
            from costmodel.measure.training import run_validation

            result = run_validation(args, device)
        elif task == "ddp":
            from costmodel.measure.ddp import run_ddp

            result = run_ddp(args, device)
        else:
            raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return result if int(os.environ["RANK"]) == 0 else None


def main(argv: list[str]) -> int:
    _die_with_parent()
    task, args_path, out_path = argv
    args = json.loads(Path(args_path).read_text(encoding="utf-8"))
    result = run_task(task, args)
    if result is not None:
        tmp = Path(out_path + ".tmp")
        tmp.write_text(json.dumps(result), encoding="utf-8")
        tmp.replace(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
