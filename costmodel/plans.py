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
        """The (G, L) layout of this plan on ``grids`` for the layers of ``network``."""
        return self.layout_for(grids, np.array([layer.kind == "conv" for layer in network.layers]))

    def layout_for(self, grids: Grids, is_conv: np.ndarray) -> Layout:
        """The (G, L) layout for layers given only by ``is_conv`` (L,): True for conv layers."""
        is_conv = np.asarray(is_conv, dtype=bool).reshape(1, -1)
        pr = grids.pr[:, None]
        pc = grids.pc[:, None]
        p = grids.p[:, None]
        shape = (len(grids), is_conv.shape[1])
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

    Used by `beyond-batch` to give the batch min(P, B) processes and the domain split the
    remaining factor P/B.  Works on the distinct (P, limit) pairs, trying the divisor pairs
    (d, P/d) for d ≤ √P: O(√max P) vector steps.
    """
    p = np.asarray(p, dtype=np.int64)
    limit = np.broadcast_to(np.asarray(limit, dtype=np.int64), p.shape)
    pairs, inverse = np.unique(np.stack([p.ravel(), limit.ravel()]), axis=1, return_inverse=True)
    values, caps = pairs[0], pairs[1]
    best = np.ones_like(values)
    for d in range(1, int(np.sqrt(values.max())) + 1):
        divides = values % d == 0
        best = np.where(divides & (d <= caps), np.maximum(best, d), best)
        other = values // d
        best = np.where(divides & (other <= caps), np.maximum(best, other), best)
    return best[inverse.ravel()].reshape(p.shape)


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
