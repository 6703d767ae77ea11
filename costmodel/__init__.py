"""gridcost: the α–β cost of integrated model, batch and domain parallelism.

The Python API is one function per command — :func:`optimize`, :func:`layers`, :func:`sweep`,
:func:`explain`, :func:`timeline`, :func:`import_network`, and the measurement ones
:func:`calibrate` (fit benchmark logs) and :func:`validate` (re-analyse measured steps) — each
returning a frozen, typed result (:mod:`costmodel.api`, docs/api.md).  They are loaded on first
use, so ``import costmodel`` stays light.

Below them the pipeline, one subpackage per stage, data flowing one way:

- :mod:`costmodel.inputs` — YAML (or a PyTorch/ONNX model) → validated, immutable specs
  (``specs``, ``loaders``, ``importers``);
- :mod:`costmodel.engine` — specs → numpy cost arrays over grid × layer (``grids``,
  ``collectives``, ``hierarchy``, ``plans``, ``memory``, ``buckets``, ``layerarrays``, ``cost``,
  ``schedule``);
- :mod:`costmodel.planning` — cost arrays → the best grid and sweeps (``search``), the best
  split per layer (``perlayer``), one iteration's events (``iteration``);
- :mod:`costmodel.output` — results → tables and JSON (``report``), figures (``plot``),
  formulas (``explanation``), the paper's reproduction (``reproduce``);
- :mod:`costmodel.cli` — parses options, calls the API, renders, maps errors to exit codes.

Beside it, :mod:`costmodel.measure`: measuring real runs on torch.distributed (``launch``,
``worker``, ``bench``, ``training``, ``ddp``, ``emulate``), fitting and checking the model against
them (``calibration``, ``series``, ``emulated``, ``validation``, ``live``) and against published
runs (``published``).  Shared by all: ``errors``, ``limits``, ``units``, ``progress`` and the
JSON records' types, ``records``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from costmodel.api import (
        calibrate,
        explain,
        import_network,
        layers,
        optimize,
        sweep,
        timeline,
        validate,
    )

__all__ = ["__version__", "calibrate", "explain", "import_network", "layers", "optimize",
           "sweep", "timeline", "validate"]

_API = {"calibrate", "explain", "import_network", "layers", "optimize", "sweep", "timeline",
        "validate"}


def __getattr__(name: str) -> object:
    """The API functions of :mod:`costmodel.api`, imported on first use."""
    if name in _API:
        from costmodel import api

        return getattr(api, name)
    raise AttributeError(f"module 'costmodel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
