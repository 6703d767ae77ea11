"""gridcost: the α–β cost of integrated model, batch and domain parallelism.

The Python API is one function per command — :func:`optimize`, :func:`layers`, :func:`sweep`,
:func:`explain`, :func:`timeline`, :func:`import_network`, and the measurement ones
:func:`calibrate` (fit benchmark logs) and :func:`validate` (re-analyse measured steps) — each
returning a frozen, typed result
(:mod:`costmodel.api`, docs/api.md).  They are loaded on first use, so ``import costmodel`` stays
light.  Below them the pipeline: :mod:`costmodel.loaders` (YAML → specs), :mod:`costmodel.cost`
(grid × layer cost arrays), :mod:`costmodel.search` (best grid, sweeps, scaling limits),
:mod:`costmodel.report` (tables and JSON), :mod:`costmodel.plot` (figures).
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
