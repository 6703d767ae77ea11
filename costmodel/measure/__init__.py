"""Beside the pipeline: measurement — real runs on torch.distributed, and the model checked
against them.

Running (``gridcost calibrate run``, ``gridcost validate``; the ``measure`` extra, ``pip install
'.[measure]'``): :mod:`launch` starts and always cleans up the local worker processes (or runs
in-process under ``torchrun``), :mod:`emulate` builds an emulated cluster in network namespaces;
:mod:`worker` (the process entry point), :mod:`bench`, :mod:`training` and :mod:`ddp` import
torch.  Analysing (no torch): :mod:`calibration` and :mod:`series` fit α, β, :mod:`emulated`
fits the levels of an emulated cluster, :mod:`validation` sets measured steps against the
engine, :mod:`live` orchestrates a measurement for the API, :mod:`published` checks published
runs.  This ``__init__`` imports no torch.
"""

from __future__ import annotations

import importlib.util

from costmodel.errors import UsageError


def require_torch() -> None:
    """Raise a UsageError naming the extra to install when torch is not importable."""
    if importlib.util.find_spec("torch") is None:
        raise UsageError("this command needs torch: pip install 'gridcost[measure]' "
                         "(or pip install torch)")
