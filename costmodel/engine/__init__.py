"""Stage 2, the engine: specs → numpy cost arrays over grid × layer.

:mod:`grids` (every Pr × Pc), :mod:`collectives` (α–β–γ algorithms), :mod:`hierarchy` (levels
and the mapping onto nodes), :mod:`plans` (which layers split how), :mod:`memory`,
:mod:`buckets` (gradient bucketing), :mod:`layerarrays` (a network's layers as arrays),
:mod:`cost` (one plan's cost on every grid) and :mod:`schedule` (the iteration as a schedule
under overlap 'backward').
"""
