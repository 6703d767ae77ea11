"""gridcost: the α–β cost of integrated model, batch and domain parallelism.

The library API mirrors the pipeline: :mod:`costmodel.loaders` (YAML → specs),
:mod:`costmodel.cost` (grid × layer cost arrays), :mod:`costmodel.search` (best grid, sweeps,
scaling limits), :mod:`costmodel.report` (tables and JSON).
"""

__version__ = "0.1.0"
