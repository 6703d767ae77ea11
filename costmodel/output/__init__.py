"""Stage 4, output: results → what people read.

:mod:`report` (tables in text, Markdown, LaTeX, CSV, and the JSON records), :mod:`plot`
(figures; the only module that imports matplotlib), :mod:`explanation` (the formula behind
every figure) and :mod:`reproduce` (the paper's figures and claims).
"""
