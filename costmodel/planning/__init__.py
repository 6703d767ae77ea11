"""Stage 3, planning: cost arrays → decisions.

:mod:`search` (the best grid, sweeps over P, scaling limits), :mod:`perlayer` (the best split
per layer, redistribution charged) and :mod:`iteration` (one iteration of a chosen grid as a
schedule of events).
"""
