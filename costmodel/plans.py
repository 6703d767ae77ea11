"""Plans: which split and which grid each weighted layer uses (cost-model.md §5).

A plan maps the swept grids (G,) and the network's layers (L,) to a :class:`Layout`: per grid
and layer the split mode and the group sizes (Pr, Pc) that layer actually uses.  Pure batch is
the model mode with Pr = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.errors import UnknownName
from costmodel.grids import Grids
from costmodel.specs import Network

MODEL, DOMAIN = 0, 1
"""Split modes: MODEL divides filters/units over Pr (Pr = 1 is pure batch); DOMAIN the height."""

MODE_NAMES = {MODEL: "model", DOMAIN: "domain"}


@dataclass(frozen=True)
class Layout:
    """Per grid × layer split: ``mode``, ``pr``, ``pc`` all of shape (G, L)."""

    mode: np.ndarray
    pr: np.ndarray
    pc: np.ndarray


@dataclass(frozen=True)
class Plan:
    """A named rule assigning a split to conv and fc layers."""

    name: str
    conv: str
    fc: str
    paper: str

    def layout(self, grids: Grids, network: Network) -> Layout:
        """The (G, L) layout of this plan on ``grids``."""
        is_conv = np.array([layer.kind == "conv" for layer in network.layers])[None, :]
        pr = grids.pr[:, None]
        pc = grids.pc[:, None]
        p = grids.p[:, None]
        shape = (len(grids), len(network.layers))
        if self.conv == "grid-model":
            conv_mode, conv_pr, conv_pc = MODEL, pr, pc
        elif self.conv == "pure-batch":
            conv_mode, conv_pr, conv_pc = MODEL, np.ones_like(p), p
        elif self.conv == "grid-domain":
            conv_mode, conv_pr, conv_pc = DOMAIN, pr, pc
        else:  # beyond-batch: batch on the largest divisor of P not above B, domain on the rest
            batch_share = largest_divisor_at_most(grids.p, grids.batch)[:, None]
            conv_mode, conv_pr, conv_pc = DOMAIN, p // batch_share, batch_share
        mode = np.where(is_conv, conv_mode, MODEL)
        return Layout(
            mode=np.broadcast_to(mode, shape).astype(np.int8),
            pr=np.broadcast_to(np.where(is_conv, conv_pr, pr), shape).astype(np.int64),
            pc=np.broadcast_to(np.where(is_conv, conv_pc, pc), shape).astype(np.int64),
        )


def largest_divisor_at_most(p: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """For each P, its largest divisor d ≤ limit (P itself when P ≤ limit), shape of ``p``.

    Vectorized over the distinct (P, limit) pairs; used by `beyond-batch` to give the batch
    min(P, B) processes and the domain split the remaining factor P/B.
    """
    p = np.asarray(p, dtype=np.int64)
    limit = np.broadcast_to(np.asarray(limit, dtype=np.int64), p.shape)
    out = np.minimum(p, limit).copy()
    todo = p % out != 0
    while todo.any():
        out[todo] -= 1
        todo = p % out != 0
    return out


PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        Plan("model-batch", "grid-model", "grid-model", "Eq. 8, Fig. 6"),
        Plan("fc-model", "pure-batch", "grid-model", "Figs. 7, 8, 9"),
        Plan("domain-batch", "grid-domain", "grid-model", "Eq. 9"),
        Plan("beyond-batch", "beyond-batch", "grid-model", "Fig. 10"),
    )
}


def plan(name: str) -> Plan:
    """The plan called ``name``."""
    try:
        return PLANS[name]
    except KeyError:
        raise UnknownName("plan", name, PLANS) from None
