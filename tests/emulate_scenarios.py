"""Emulations that tests/test_emulate.py runs in a process of their own, as an unprivileged user
(tests/unprivileged.py): ``python tests/emulate_scenarios.py NAME``.  Each prints one JSON
object — what it saw inside the cluster, and which processes of its user namespaces were still
there after the teardown — and exits 0; a UsageError is printed as ``{"error": message}``.

- ``build``: a 2 × 2 cluster; the namespaces, node 1's address, the qdiscs; a sleeper in each
  node's namespace, killed by the teardown.
- ``error``: a RuntimeError inside the ``with`` block, a sleeper running.
- ``two``: two emulations at once, each with a sleeper.
- ``without-bridge``, ``without-veth``, ``without-tbf``: that piece's commands fail (so the
  up-front probe does, before anything is built);
- ``broken-tbf``: only the build's tbf commands fail, after the holder and the namespaces
  were made;
- ``broken-holder``: the holder fails to mount its tmpfs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from costmodel.errors import UsageError
from costmodel.measure import emulate
from costmodel.measure.emulate import Emulation, EmulationSpec

SPEC = EmulationSpec(2, 2, 125e6, "nodes=2, ppn=2, link=1 Gbit/s")


def _out(cluster: Emulation, argv: list[str]) -> str:
    return subprocess.run(cluster.inside(argv), capture_output=True, text=True,
                          check=True).stdout


def _sleepers(cluster: Emulation) -> list[subprocess.Popen[bytes]]:
    """A sleeper in each node's network namespace, once both run there."""
    sleepers = [subprocess.Popen(cluster.command(rank, 4, ["sleep", "60"])) for rank in (0, 2)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            not _out(cluster, ["ip", "netns", "pids", cluster.node_namespace(node)]).split()
            for node in (0, 1)):
        time.sleep(0.05)
    return sleepers


def _seen(cluster: Emulation, sleepers: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    """The cluster as seen from inside, and the namespaces the sleepers are in."""
    return {
        "mode": cluster.mode,
        "tag": cluster.tag,
        "user_namespace": cluster.user_namespace,
        "holder": cluster.holder.pid if cluster.holder else None,
        "namespaces": sorted(_out(cluster, ["ip", "netns", "list"]).split()),
        "node1_eth0": _out(cluster, ["ip", "-n", cluster.node_namespace(1), "-o", "addr",
                                     "show", "eth0"]),
        "bridge_qdiscs": _out(cluster, ["ip", "netns", "exec", cluster.bridge_namespace, "tc",
                                        "qdisc"]),
        "sleepers": [s.pid for s in sleepers],
        "sleeper_net": [str(Path(f"/proc/{s.pid}/ns/net").readlink()) for s in sleepers],
    }


def _after(seen: dict[str, Any], sleepers: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    """What was left once the teardown ran: the sleepers' fate, the namespace members."""
    seen["sleeper_codes"] = [s.wait(timeout=10) for s in sleepers]
    seen["left_in_user_namespace"] = emulate.namespace_members("user", seen["user_namespace"])
    seen["left_in_node_namespaces"] = [p for link in seen["sleeper_net"]
                                       for p in emulate.namespace_members("net", link)]
    return seen


def build() -> Any:
    with Emulation(SPEC) as cluster:
        sleepers = _sleepers(cluster)
        seen = _seen(cluster, sleepers)
    return _after(seen, sleepers)


def error() -> Any:
    try:
        with Emulation(SPEC) as cluster:
            sleepers = _sleepers(cluster)
            seen = _seen(cluster, sleepers)
            raise RuntimeError("boom")
    except RuntimeError as exc:
        seen["raised"] = str(exc)
    return _after(seen, sleepers)


def two() -> Any:
    with Emulation(SPEC) as first, Emulation(SPEC) as second:
        sleepers = [_sleepers(first), _sleepers(second)]
        seen = [_seen(first, sleepers[0]), _seen(second, sleepers[1])]
    return [_after(s, p) for s, p in zip(seen, sleepers)]


def without(piece: str, only_in_build: bool = False) -> Any:
    """``piece``'s commands fail: all of them, or only the build's (run through nsenter)."""
    real = emulate._command

    def failing(argv: list[str], what: str = "") -> str:
        broken = piece in argv and (argv[0] == "nsenter" or not only_in_build)
        return real(["false"] if broken else argv, what)

    emulate._command = failing  # type: ignore[assignment]
    cluster = Emulation(SPEC)
    try:
        with cluster:
            return {"built": True}
    except UsageError as exc:
        left = (emulate.namespace_members("user", cluster.user_namespace)
                if cluster.user_namespace else [])
        return {"error": str(exc), "user_namespace": cluster.user_namespace,
                "left_in_user_namespace": left}


def broken_holder() -> Any:
    """A holder that exits as the real one does when its mount is refused."""
    emulate.HOLDER = ("import sys; sys.exit('mount tmpfs on /run/netns: Operation not "
                      "permitted')")
    cluster = Emulation(SPEC)
    holders: list[subprocess.Popen[bytes] | None] = []
    start = cluster._start_holder

    def recorded() -> None:
        try:
            start()
        finally:
            holders.append(cluster.holder)

    cluster._start_holder = recorded  # type: ignore[method-assign]
    try:
        with cluster:
            return {"built": True}
    except UsageError as exc:
        holder = holders[0]
        return {"error": str(exc), "holder_code": holder.returncode if holder else None,
                "user_namespace": cluster.user_namespace}


def main(name: str) -> int:
    scenarios = {"build": build, "error": error, "two": two,
                 "broken-tbf": lambda: without("tbf", only_in_build=True),
                 "broken-holder": broken_holder,
                 **{f"without-{p}": (lambda p=p: without(p)) for p in ("bridge", "veth", "tbf")}}
    try:
        result = scenarios[name]()
    except UsageError as exc:
        result = {"error": str(exc)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
