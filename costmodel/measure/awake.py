"""Keep one CPU busy at the lowest priority while gridcost measures (``--keep-awake``).

``python -m costmodel.measure.awake``: a busy loop under Linux's SCHED_IDLE policy.  Any other
runnable thread preempts it at once, so it takes no time from the measurement; what it does is
keep its CPU from going idle.  On machines whose idle CPUs wake slowly — virtual CPUs that halt
into the hypervisor, deep C-states — a rank that waits for a slower one sleeps, and waking it
costs milliseconds that are neither α nor β (``calibrate run``'s host check measures this).
HPC nodes avoid it with ``idle=poll`` or /dev/cpu_dma_latency; this is the unprivileged,
per-measurement equivalent.  gridcost starts one per CPU and ends them with the workers.
"""

from __future__ import annotations

import os
import sys

from costmodel.measure.worker import _die_with_parent


def main() -> int:
    _die_with_parent()
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    while True:
        pass


if __name__ == "__main__":
    sys.exit(main())
