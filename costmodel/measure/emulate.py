"""An emulated multi-node cluster on one host: network namespaces, veth pairs, a bridge, tbf.

``--emulate "nodes=N, ppn=K, link=RATE"`` (docs/validation.md, "An emulated cluster"): one
network namespace per node, each with one interface ``eth0`` (198.18.0.(i+1)/24, the
benchmarking range of RFC 2544) that is one end of a veth pair; the other ends are joined by a
bridge that lives in a namespace of its own.  Both ends of every pair have a token-bucket
qdisc (``tc ... tbf rate RATE``) on their egress, so each node sends and receives at most RATE
(a full-duplex NIC of RATE).  The K processes of node i run inside its namespace
(``ip netns exec``): between themselves they talk over the kernel's local route (loopback),
to other nodes through the shaped link.  Nothing is created in the host's own namespace, so
nothing can reach or disturb the host's network, and two emulations never share a name: the
namespaces are ``gridcost-<pid>-<serial>-n<i>`` and ``gridcost-<pid>-<serial>-br``.

Teardown always runs (:class:`Emulation` is a context manager): on success, on an error, when a
worker dies, on Ctrl-C (exit 130) and on SIGTERM (exit 143) — every process inside the
namespaces is killed, then the namespaces are deleted, which destroys their veths, bridge and
qdiscs with them.  A gridcost killed with SIGKILL cannot clean up; the next emulation removes
the namespaces of gridcost processes that no longer run (:func:`reap`).

Two modes, chosen by :func:`check_prerequisites`:

- **root** (``os.geteuid() == 0``): the namespaces are made in the host's ``/run/netns`` as
  above (CAP_NET_ADMIN and CAP_SYS_ADMIN for ``ip netns``).
- **userns** (any other user, where the kernel lets it create user namespaces): a *holder*
  process is started in a new user namespace (the user mapped to root in it), with a mount
  namespace of its own (a private tmpfs on ``/run/netns``, so ``ip netns`` names live in it
  alone) and an empty network namespace of its own; it holds CAP_NET_ADMIN and CAP_SYS_ADMIN
  over whatever is created in that user namespace and nothing else.  Every ``ip``, ``tc`` and
  worker is run inside it through ``nsenter --target HOLDER --user --mount --net``; the
  cluster is built exactly as in root mode.  Teardown SIGKILLs every process of that user
  namespace (the holder among them), and the kernel frees the namespaces, their links and
  qdiscs with their last process.  The holder and the workers die with gridcost
  (``PR_SET_PDEATHSIG``), so even a gridcost killed with SIGKILL leaves no process or
  namespace behind, and the host's ``ip netns list`` never shows an unprivileged emulation.

Needs ``ip`` and ``tc`` (iproute2), ``unshare`` (and ``nsenter`` in userns mode, util-linux),
and the kernel's veth, bridge and tbf support, each probed up front in a throwaway network
namespace (``unshare --net``); each missing piece is reported in one line.  No propagation
delay is emulated (``netem`` is not assumed), only rate.  Standard library only.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from costmodel.errors import GridcostError, MeasureError, UsageError
from costmodel.progress import PROGRESS_FILE_VARIABLE, Progress

MAX_NODES = 8
MAX_PPN = 8
MIN_RATE_BPS = 1e6 / 8
"""1 Mbit/s: below it a 64 MiB message takes minutes."""
MAX_RATE_BPS = 10e9 / 8
"""10 Gbit/s: above it the host's CPUs, not the shaping, set the rate."""
PREFIX = "gridcost-"
NAME = re.compile(r"^gridcost-(\d+)-(\d+)-(n\d+|br)$")
SUBNET = "198.18.0"
"""Node i is 198.18.0.(i+1)/24: RFC 2544's benchmarking range 198.18.0.0/15, only ever
configured inside namespaces gridcost created."""
INTERFACE = "eth0"
BURST_S = 0.002
"""tbf bucket: 2 ms of traffic at the rate (at least 16 KiB), so a message is shaped as a
stream, not let through in one burst."""
QUEUE_S = 0.2
"""tbf 'latency': the longest a packet may wait in the bucket's queue before it is dropped."""

_serial = itertools.count()


class Interrupted(GridcostError):
    """SIGINT or SIGTERM during an emulation: the cluster was torn down; exit 128 + signal."""

    def __init__(self, signum: int) -> None:
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"interrupted ({name}): the emulated cluster and its processes were "
                         "removed")


@dataclass(frozen=True)
class EmulationSpec:
    """N nodes of K processes each, every node's link shaped to ``rate_Bps`` bytes/s."""

    nodes: int
    ppn: int
    rate_Bps: float
    text: str = ""

    @property
    def processes(self) -> int:
        return self.nodes * self.ppn

    @property
    def rate_text(self) -> str:
        return f"{self.rate_Bps * 8 / 1e6:.4g} Mbit/s"


def parse_emulation(text: str, option: str = "--emulate") -> EmulationSpec:
    """``"nodes=N, ppn=K, link=RATE"`` → EmulationSpec; a UsageError naming the bad part."""
    from costmodel.units import parse_quantity

    expected = "'nodes=N, ppn=K, link=RATE', e.g. 'nodes=4, ppn=2, link=200 Mbit/s'"
    fields: dict[str, str] = {}
    for part in str(text).split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("nodes", "ppn", "link") or key in fields:
            raise UsageError(f"{option}: expected {expected}, got {text!r}")
        fields[key] = value.strip()
    if set(fields) != {"nodes", "ppn", "link"}:
        missing = ", ".join(k for k in ("nodes", "ppn", "link") if k not in fields)
        raise UsageError(f"{option}: missing {missing}: expected {expected}, got {text!r}")
    counts = {}
    for key, top in (("nodes", MAX_NODES), ("ppn", MAX_PPN)):
        value = fields[key]
        low = 2 if key == "nodes" else 1
        if not value.isdigit() or not low <= int(value) <= top:
            raise UsageError(f"{option}: {key}: expected an integer from {low} to {top}, "
                             f"got {value!r}")
        counts[key] = int(value)
    try:
        rate = parse_quantity(fields["link"], "bandwidth", "", f"{option}: link")
    except GridcostError:
        raise UsageError(f"{option}: link: expected a rate such as '200 Mbit/s', got "
                         f"{fields['link']!r}") from None
    if not MIN_RATE_BPS <= rate <= MAX_RATE_BPS:
        raise UsageError(f"{option}: link: expected a rate from 1 Mbit/s to 10 Gbit/s, got "
                         f"{fields['link']!r}")
    return EmulationSpec(counts["nodes"], counts["ppn"], rate, str(text))


# --------------------------------------------------------------------------- commands


def _ip(*args: str, what: str = "") -> str:
    """Run ``ip ARGS``; a UsageError naming ``what`` (or the command) when it fails."""
    return _command(["ip", *args], what)


def _command(argv: list[str], what: str = "") -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--emulate: {what or ' '.join(argv)}: {exc}") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise UsageError(f"--emulate: {what or ' '.join(argv)} failed: "
                         f"{message[-1] if message else f'exit code {done.returncode}'}")
    return done.stdout


ROOT_MODE = "root"
USERNS_MODE = "userns"
UNPRIVILEGED_USERNS_CLONE = "/proc/sys/kernel/unprivileged_userns_clone"
"""Debian's and older Ubuntu's switch: 0 forbids user namespaces to unprivileged users."""
MAX_USER_NAMESPACES = "/proc/sys/user/max_user_namespaces"
"""The number of user namespaces a user may hold: 0 forbids them."""
APPARMOR_RESTRICT_USERNS = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
"""Ubuntu 23.10+: 1 lets an unconfined process create a user namespace without capabilities."""
USERNS_PROBE = ["unshare", "--user", "--map-root-user", "--net", "--mount", "true"]
SCRATCH = {ROOT_MODE: ["unshare", "--net", "--"],
           USERNS_MODE: ["unshare", "--user", "--map-root-user", "--net", "--"]}
"""Prefix that runs a command in a throwaway network namespace, gone when the command ends."""
PIECES = (
    (["ip", "link", "add", "gridcost-br", "type", "bridge"],
     "ip link add type bridge (the kernel's bridge module)"),
    (["ip", "link", "add", "gridcost-v0", "type", "veth", "peer", "name", "gridcost-v1"],
     "ip link add type veth (the kernel's veth module)"),
    (["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "16384",
      "latency", "200ms"], "tc qdisc add … tbf (the kernel's sch_tbf)"),
)
"""The kernel pieces an emulation needs, each with the words that name it when it fails (the
same words as the build's own steps)."""


def _read_sysctl(path: str) -> str | None:
    """The stripped content of ``path`` (a /proc/sys file), None where it does not exist."""
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return None


def userns_refusal() -> str | None:
    """Why this kernel refuses an unprivileged user namespace with network and mount
    namespaces of its own, or None when it allows one: the switches that forbid it
    (``kernel.unprivileged_userns_clone = 0``, ``user.max_user_namespaces = 0``), else what
    ``unshare --user --map-root-user --net --mount true`` says when it fails (naming
    ``kernel.apparmor_restrict_unprivileged_userns = 1`` where that is set)."""
    if _read_sysctl(UNPRIVILEGED_USERNS_CLONE) == "0":
        return "kernel.unprivileged_userns_clone = 0"
    if _read_sysctl(MAX_USER_NAMESPACES) == "0":
        return "user.max_user_namespaces = 0"
    try:
        _command(USERNS_PROBE, " ".join(USERNS_PROBE[:-1]))
    except UsageError as exc:
        if _read_sysctl(APPARMOR_RESTRICT_USERNS) == "1":
            return "kernel.apparmor_restrict_unprivileged_userns = 1"
        return str(exc).removeprefix("--emulate: ")
    return None


def check_pieces(mode: str) -> None:
    """UsageError naming the first kernel piece (bridge, veth, tbf) that a throwaway network
    namespace of ``mode`` cannot create; nothing is left either way."""
    for argv, what in PIECES:
        _command([*SCRATCH[mode], *argv], what)


def check_prerequisites() -> str:
    """The mode an emulation runs in, 'root' or 'userns' (module docstring), after checking
    every piece it needs; a UsageError naming the first missing one: Linux, ``ip``, ``tc``,
    ``unshare``, root or unprivileged user namespaces, ``nsenter`` (userns), the kernel's
    bridge, veth and tbf."""
    if not sys.platform.startswith("linux"):
        raise UsageError("--emulate: needs Linux network namespaces (this is "
                         f"{sys.platform})")
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            raise UsageError(f"--emulate: needs the '{tool}' command ({package}), not found "
                             "on PATH")
    mode = ROOT_MODE
    if os.geteuid() != 0:
        refusal = userns_refusal()
        if refusal is not None:
            raise UsageError(f"--emulate: needs root or unprivileged user namespaces "
                             f"({refusal})")
        if shutil.which("nsenter") is None:
            raise UsageError("--emulate: needs the 'nsenter' command (util-linux), not found "
                             "on PATH")
        mode = USERNS_MODE
    check_pieces(mode)
    return mode


def namespaces() -> list[str]:
    """Names of the network namespaces ``ip netns list`` shows."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(namespace: str) -> None:
    """SIGKILL every process of ``namespace`` and wait until they are gone (≤ 5 s)."""
    deadline = time.monotonic() + 5.0
    while True:
        try:
            pids = [int(p) for p in _ip("netns", "pids", namespace).split()]
        except UsageError:
            return
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _delete(namespace: str) -> None:
    _kill_inside(namespace)
    with suppress(UsageError):
        _ip("netns", "del", namespace)


def reap() -> list[str]:
    """Remove the namespaces of emulations whose gridcost process no longer runs (killed with
    SIGKILL, a crashed host); returns their names.  A pid reused by another process keeps
    its leftovers until that process ends."""
    removed = []
    for name in namespaces():
        match = NAME.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            _delete(name)
            removed.append(name)
    return removed


def namespace_members(kind: str, link: str) -> list[int]:
    """Pids of the live processes whose ``/proc/PID/ns/KIND`` is ``link`` (e.g.
    'user:[4026532177]'), among those this process may inspect (its own user's, or all for
    root).  Zombies are not counted: they have left their network and mount namespaces (a
    zombie's credentials still name its user namespace until its parent reaps it)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):
                if (os.readlink(entry / "ns" / kind) == link and (entry / "stat").read_text(
                        encoding="ascii", errors="replace").rsplit(")", 1)[1].split()[0]
                        not in ("Z", "X")):
                    members.append(int(entry.name))
    return members


HOLDER = """
import ctypes, os, signal, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with gridcost
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
target = "/run/netns" if os.path.isdir("/run/netns") else "/run"
if libc.mount(b"gridcost", target.encode(), b"tmpfs", 0, b"mode=0755") != 0:
    sys.exit("mount tmpfs on " + target + ": " + os.strerror(ctypes.get_errno()))
os.makedirs("/run/netns", exist_ok=True)
print("ready", flush=True)
sys.stdin.buffer.read()
"""
"""The holder of an unprivileged emulation, run by ``unshare --user --map-root-user --net
--mount --propagation private``: it dies with gridcost (``PR_SET_PDEATHSIG``, or its stdin
closing), mounts a tmpfs of its mount namespace's own on /run/netns (on /run where the host has
no /run/netns: a user without root cannot create it), says 'ready' and waits."""
HOLDER_START_S = 30.0


def _end_all(link: str | None, holder: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process of the user namespace ``link`` and the holder, until none is left
    (≤ 5 s), and reap the holder: the kernel then frees the namespaces."""
    deadline = time.monotonic() + 5.0
    while True:
        members = namespace_members("user", link) if link else []
        for pid in members:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if holder.poll() is None:
            with suppress(ProcessLookupError):
                holder.kill()
        if not members or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    holder.wait()
    for stream in (holder.stdin, holder.stdout, holder.stderr):
        if stream is not None:
            stream.close()


# --------------------------------------------------------------------------- the cluster


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` for the duration (main thread only)."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Emulation:
    """The emulated cluster of ``spec`` while the ``with`` block runs (module docstring)."""

    def __init__(self, spec: EmulationSpec) -> None:
        self.spec = spec
        self.tag = f"{PREFIX}{os.getpid()}-{next(_serial)}"
        self.created: list[str] = []
        self._signals: Any = None
        self._runs = 0
        self.mode = ROOT_MODE
        self.holder: subprocess.Popen[bytes] | None = None
        """userns mode: the process that holds the user, mount and network namespaces."""
        self.user_namespace: str | None = None
        """userns mode: the holder's user namespace, as ``/proc/PID/ns/user`` names it."""

    @property
    def bridge_namespace(self) -> str:
        return f"{self.tag}-br"

    def node_namespace(self, node: int) -> str:
        return f"{self.tag}-n{node}"

    @staticmethod
    def address(node: int) -> str:
        return f"{SUBNET}.{node + 1}"

    def __enter__(self) -> Emulation:
        self.mode = check_prerequisites()
        self._signals = _signals_raise()
        self._signals.__enter__()
        try:
            if self.mode == USERNS_MODE:
                self._start_holder()
            else:
                reap()
            self._build()
        except BaseException:
            self.teardown()
            self._signals.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self.teardown()
        finally:
            self._signals.__exit__(None, None, None)

    def _start_holder(self) -> None:
        """Start the holder of userns mode (:data:`HOLDER`) and wait until it is ready."""
        import select

        argv = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--propagation",
                "private", "--", sys.executable, "-c", HOLDER, str(os.getpid())]
        self.holder = holder = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        assert holder.stdout is not None and holder.stderr is not None
        ready, _, _ = select.select([holder.stdout], [], [], HOLDER_START_S)
        line = holder.stdout.readline() if ready else b""
        if line != b"ready\n":
            with suppress(ProcessLookupError):
                holder.kill()
            holder.wait()
            said = holder.stderr.read().decode(errors="replace").strip().splitlines()
            raise UsageError("--emulate: the user namespace could not be set up: "
                             f"{said[-1] if said else f'exit code {holder.returncode}'}")
        self.user_namespace = os.readlink(f"/proc/{holder.pid}/ns/user")

    def inside(self, argv: list[str]) -> list[str]:
        """``argv`` as run with the emulation's privileges: unchanged in root mode, through
        ``nsenter`` into the holder's user, mount and network namespaces in userns mode
        (nsenter execs, so the command stays a child of the caller; entering a mount
        namespace moves to its root, so ``--wd`` keeps the caller's working directory)."""
        if self.holder is None:
            return argv
        return ["nsenter", f"--target={self.holder.pid}", "--user", "--mount", "--net",
                "--preserve-credentials", f"--wd={os.getcwd()}", "--", *argv]

    def _ip(self, *args: str, what: str = "") -> str:
        return _command(self.inside(["ip", *args]), what or " ".join(["ip", *args]))

    def _add_namespace(self, name: str) -> None:
        self._ip("netns", "add", name, what="ip netns add (network namespaces)")
        self.created.append(name)
        self._ip("-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        spec, bridge = self.spec, self.bridge_namespace
        self._add_namespace(bridge)
        self._ip("-n", bridge, "link", "add", "br0", "type", "bridge",
                 what="ip link add type bridge (the kernel's bridge module)")
        self._ip("-n", bridge, "link", "set", "br0", "up")
        burst = max(16 * 1024, int(spec.rate_Bps * BURST_S))
        shaping = ["root", "tbf", "rate", f"{int(spec.rate_Bps * 8)}bit", "burst",
                   str(burst), "latency", f"{int(QUEUE_S * 1000)}ms"]
        for node in range(spec.nodes):
            inside = self.node_namespace(node)
            self._add_namespace(inside)
            port = f"p{node}"
            self._ip("-n", bridge, "link", "add", port, "type", "veth", "peer", "name",
                     INTERFACE, "netns", inside,
                     what="ip link add type veth (the kernel's veth module)")
            self._ip("-n", bridge, "link", "set", port, "master", "br0")
            self._ip("-n", bridge, "link", "set", port, "up")
            self._ip("-n", inside, "addr", "add", f"{self.address(node)}/24", "dev", INTERFACE)
            self._ip("-n", inside, "link", "set", INTERFACE, "up")
            for namespace, device in ((inside, INTERFACE), (bridge, port)):
                _command(self.inside(["ip", "netns", "exec", namespace, "tc", "qdisc", "add",
                                      "dev", device, *shaping]),
                         "tc qdisc add … tbf (the kernel's sch_tbf)")

    def teardown(self) -> None:
        """Kill every process inside the namespaces, then delete them (links, bridge and
        qdiscs go with them); in userns mode kill every process of the user namespace, the
        holder with them, and the kernel frees the rest.  Safe to call twice."""
        if self.holder is not None:
            _end_all(self.user_namespace, self.holder)
            self.holder = None
            self.created.clear()
        while self.created:
            _delete(self.created.pop())

    # ------------------------------------------------------------------ processes

    def node_of(self, rank: int, processes: int, placement: str = "block") -> int:
        """Node of ``rank`` among ``processes`` ranks: 'block' fills node 0 first (K
        consecutive ranks per node), 'cyclic' deals ranks to nodes in turn."""
        if placement == "cyclic":
            return rank % -(-processes // self.spec.ppn)
        return rank // self.spec.ppn

    def command(self, rank: int, processes: int, argv: list[str],
                placement: str = "block") -> list[str]:
        """``argv`` run inside the namespace of ``rank``'s node."""
        node = self.node_of(rank, processes, placement)
        return self.inside(["ip", "netns", "exec", self.node_namespace(node), *argv])

    def run(self, task: str, args: dict[str, Any], processes: int, timeout_s: float,
            placement: str = "block", progress: Progress | None = None) -> Any:
        """Run ``task`` (costmodel.measure.worker) on ``processes`` ranks placed on the nodes
        by ``placement``; rank 0's result.  ``processes`` must fill whole nodes, at most all
        of them.  Every worker is ended whatever happens (costmodel.measure.launch)."""
        from costmodel.measure.launch import (
            FOLDER_PREFIX,
            _tail,
            _terminate,
            _wait,
            reap_stale_folders,
        )

        spec = self.spec
        if processes % spec.ppn or processes > spec.processes or processes < 2:
            raise UsageError(f"--emulate: {processes} processes do not fill whole nodes of "
                             f"{spec.ppn} (at most {spec.processes})")
        procs: list[subprocess.Popen[bytes]] = []
        logs: list[IO[str]] = []
        reap_stale_folders()  # those of a gridcost killed with SIGKILL
        with tempfile.TemporaryDirectory(prefix=f"{FOLDER_PREFIX}{os.getpid()}-") as tmp:
            folder = Path(tmp)
            args_path, result_path = folder / "args.json", folder / "result.json"
            args_path.write_text(json.dumps(args), encoding="utf-8")
            port = 29500 + self._runs % 1000
            self._runs += 1
            master = self.address(self.node_of(0, processes, placement))
            try:
                for rank in range(processes):
                    env = dict(os.environ, MASTER_ADDR=master, MASTER_PORT=str(port),
                               RANK=str(rank), WORLD_SIZE=str(processes),
                               LOCAL_RANK=str(rank % spec.ppn), LOCAL_WORLD_SIZE=str(spec.ppn),
                               GLOO_SOCKET_IFNAME=INTERFACE, OMP_NUM_THREADS="1",
                               GRIDCOST_PARENT_PID=str(os.getpid()))
                    if progress is not None:
                        env[PROGRESS_FILE_VARIABLE] = str(folder / "progress")
                    log: IO[str] = open(  # noqa: SIM115
                        folder / f"rank{rank}.log", "w", encoding="utf-8")
                    logs.append(log)
                    argv = [sys.executable, "-m", "costmodel.measure.worker", task,
                            str(args_path), str(result_path)]
                    procs.append(subprocess.Popen(
                        self.command(rank, processes, argv, placement), env=env,
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True))
                _wait(procs, folder, timeout_s, progress)
            finally:
                _terminate(procs)
                for log in logs:
                    log.close()
            try:
                return json.loads(result_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise MeasureError(f"rank 0 wrote no result: {_tail(folder / 'rank0.log')}") \
                    from None


def leftovers(tag: str) -> dict[str, list[str]]:
    """What of emulation ``tag`` (or every emulation, tag 'gridcost-') still exists: its
    namespaces and the host's links whose name mentions it (none are ever made there)."""
    links = [line for line in _ip("-o", "link").splitlines() if tag in line]
    return {"namespaces": [n for n in namespaces() if n.startswith(tag)], "links": links}


# --------------------------------------------------------------------------- jobs


def node_procs(spec: EmulationSpec) -> list[int]:
    """Group sizes measured inside a node: every p ≥ 2 that divides the processes per node
    (consecutive ranks then tile the nodes)."""
    return [p for p in range(2, spec.ppn + 1) if spec.ppn % p == 0]


def network_procs(spec: EmulationSpec) -> list[int]:
    """Group sizes measured across nodes: 2 (the point-to-point pairs) and N, one process
    per node (ranks dealt to the nodes in turn)."""
    return sorted({2, spec.nodes})


NETWORK_MESSAGE_S = 1.0
"""Largest message across nodes: what a process sends in about this long at its share of the
link (RATE / K), so a slow link does not take minutes per size."""


def network_sizes(spec: EmulationSpec, sizes: list[int]) -> list[int]:
    """The sizes of ``sizes`` measured across nodes: up to :data:`NETWORK_MESSAGE_S` of the
    per-process rate, and at least the three smallest."""
    limit = spec.rate_Bps / spec.ppn * NETWORK_MESSAGE_S
    kept = [s for s in sizes if s <= limit]
    return kept if len(kept) >= 3 else sizes[:3]


def calibration_runs(spec: EmulationSpec, args: dict[str, Any], timeout_s: float,
                     progress: Progress | None = None) -> tuple[Any, Any]:
    """The microbenchmarks (costmodel.measure.bench) of both levels on one emulated cluster of
    all N·K processes: inside the nodes (ranks in blocks of K per node, groups of p | K
    consecutive ranks, every node measuring at once) and across them (ranks dealt in turn,
    so a group of p consecutive ranks has one member per node; the K rails of every node
    share its link at once, as the K processes of a node do in a job).  Returns the two raw
    results (node, network); the node one is None when K = 1."""
    with Emulation(spec) as cluster:
        inside = None
        if node_procs(spec):
            inside = cluster.run("bench", dict(args, procs=node_procs(spec)), spec.processes,
                                 timeout_s, "block", progress)
        across = cluster.run("bench", dict(args, procs=network_procs(spec), idle_gap_s=0.0,
                                           sizes_bytes=network_sizes(spec, args["sizes_bytes"])),
                             spec.processes, timeout_s, "cyclic", progress)
    return inside, across


def validation_runs(spec: EmulationSpec, processes: list[int], args: dict[str, Any],
                    timeout_s: float, progress: Progress | None = None) -> dict[str, Any]:
    """The validation steps (costmodel.measure.training) for every P of ``processes`` on the
    first P/K nodes of one emulated cluster, every grid of ``args['grids_by_P']`` under both
    mappings; the merged result of rank 0 of each P."""
    for P in processes:
        if P % spec.ppn or P // spec.ppn > spec.nodes or P // spec.ppn < 1:
            raise UsageError(f"--P: expected multiples of ppn={spec.ppn} up to "
                             f"{spec.processes} (nodes={spec.nodes}), got {P}")
    merged: dict[str, Any] = {"runs": []}
    grids_by_P = args.pop("grids_by_P")
    with Emulation(spec) as cluster:
        for P in processes:
            job = dict(args, grids=grids_by_P[P], mappings=["pr-inside", "pc-inside"])
            result = cluster.run("validate", job, P, timeout_s, "block", progress)
            merged["runs"] += result["runs"]
            merged.update(backend=result["backend"], batch=result["batch"])
    merged["emulate"] = {"nodes": spec.nodes, "ppn": spec.ppn, "rate_Bps": spec.rate_Bps,
                         "text": spec.text}
    return merged
