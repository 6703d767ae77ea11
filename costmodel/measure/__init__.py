"""Measurements on real processes with torch.distributed: microbenchmarks and a Pr×Pc step.

Imported only by ``gridcost calibrate run`` and ``gridcost validate`` (install the ``measure``
extra: ``pip install '.[measure]'``).  This ``__init__`` imports no torch: :mod:`launch` starts
and always cleans up the local worker processes (or runs in-process under ``torchrun``);
:mod:`worker` (the process entry point), :mod:`bench` and :mod:`training` import torch.
"""

from __future__ import annotations

import importlib.util

from costmodel.errors import UsageError


def require_torch() -> None:
    """Raise a UsageError naming the extra to install when torch is not importable."""
    if importlib.util.find_spec("torch") is None:
        raise UsageError("this command needs torch: pip install 'gridcost[measure]' "
                         "(or pip install torch)")
