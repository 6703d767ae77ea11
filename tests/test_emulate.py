"""The emulated cluster (costmodel.measure.emulate): the spec, the prerequisites, and — where this
host lets us create network namespaces — that setup and teardown leave nothing behind, on
success, on an error, on SIGTERM, on SIGINT and when a worker is killed; that two emulations at
once do not collide; that the leftovers of a dead emulation are reaped; and a short emulated
validation (2 nodes × 2 processes, both mappings).  Mechanics and exit codes only, no timings.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import unprivileged
from cli_helpers import fail

from costmodel.errors import UsageError
from costmodel.measure import emulate
from costmodel.measure.emulate import Emulation, EmulationSpec, parse_emulation
from costmodel.measure.launch import FOLDER_PREFIX, reap_stale_folders

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the spec


def test_spec_parses_nodes_ppn_and_rate() -> None:
    spec = parse_emulation("nodes=4, ppn=2, link=200 Mbit/s")
    assert (spec.nodes, spec.ppn, spec.processes) == (4, 2, 8)
    assert spec.rate_Bps == pytest.approx(25e6)
    assert spec.rate_text == "200 Mbit/s"
    assert parse_emulation(" ppn=1,link=1 Gbit/s ,nodes=2").rate_Bps == pytest.approx(125e6)


@pytest.mark.parametrize("text, message", [
    ("nodes=4, ppn=2", "--emulate: missing link: expected 'nodes=N, ppn=K, link=RATE', e.g. "
                       "'nodes=4, ppn=2, link=200 Mbit/s', got 'nodes=4, ppn=2'"),
    ("nodes=4, ppn=2, link=1 Gbit/s, x=1", "--emulate: expected 'nodes=N, ppn=K, link=RATE', "
     "e.g. 'nodes=4, ppn=2, link=200 Mbit/s', got 'nodes=4, ppn=2, link=1 Gbit/s, x=1'"),
    ("nodes=9, ppn=2, link=1 Gbit/s", "--emulate: nodes: expected an integer from 2 to 8, "
                                       "got '9'"),
    ("nodes=1, ppn=2, link=1 Gbit/s", "--emulate: nodes: expected an integer from 2 to 8, "
                                       "got '1'"),
    ("nodes=2, ppn=0, link=1 Gbit/s", "--emulate: ppn: expected an integer from 1 to 8, "
                                       "got '0'"),
    ("nodes=2, ppn=2, link=fast", "--emulate: link: expected a rate such as '200 Mbit/s', "
                                  "got 'fast'"),
    ("nodes=2, ppn=2, link=100 Gbit/s", "--emulate: link: expected a rate from 1 Mbit/s to "
                                        "10 Gbit/s, got '100 Gbit/s'"),
    ("nodes=2, ppn=2, link=100 kbit/s", "--emulate: link: expected a rate from 1 Mbit/s to "
                                        "10 Gbit/s, got '100 kbit/s'"),
])
def test_bad_spec_is_one_line(text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_emulation(text)
    assert str(err.value) == message


def test_cli_refuses_a_bad_spec_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(capsys, "calibrate", "run", "--emulate", "nodes=99, ppn=2, link=1 Gbit/s")
    assert line == "gridcost: --emulate: nodes: expected an integer from 2 to 8, got '99'"
    line = fail(capsys, "validate", "--machine", "a100-ib-nodes", "--emulate",
                "nodes=2, ppn=2, link=10 Gbit/s")
    assert line.startswith("gridcost: --machine: expected a profile with levels whose node "
                           "holds ppn=2 processes")


@pytest.mark.parametrize("tool, euid, message", [
    ("tc", 0, "--emulate: needs the 'tc' command (iproute2), not found on PATH"),
    ("ip", 1000, "--emulate: needs the 'ip' command (iproute2), not found on PATH"),
    ("unshare", 0, "--emulate: needs the 'unshare' command (util-linux), not found on PATH"),
    ("nsenter", 1000, "--emulate: needs the 'nsenter' command (util-linux), not found on PATH"),
])
def test_missing_commands_are_named(monkeypatch: pytest.MonkeyPatch, tool: str, euid: int,
                                    message: str) -> None:
    monkeypatch.setattr(emulate.shutil, "which", lambda name: None if name == tool else "/x")
    monkeypatch.setattr(emulate.os, "geteuid", lambda: euid)
    monkeypatch.setattr(emulate, "userns_refusal", lambda: None)
    monkeypatch.setattr(emulate, "check_pieces", lambda mode: None)
    with pytest.raises(UsageError) as err:
        emulate.check_prerequisites()
    assert str(err.value) == message


def test_root_builds_as_root_and_any_other_user_in_a_user_namespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Root never asks about user namespaces; another user gets userns mode where the kernel
    allows it; the kernel pieces are probed in the mode's throwaway namespace either way."""
    probed: list[str] = []

    def refusal() -> str | None:
        raise AssertionError("root must not probe user namespaces")

    monkeypatch.setattr(emulate.shutil, "which", lambda name: "/x")
    monkeypatch.setattr(emulate, "check_pieces", probed.append)
    monkeypatch.setattr(emulate.os, "geteuid", lambda: 0)
    monkeypatch.setattr(emulate, "userns_refusal", refusal)
    assert emulate.check_prerequisites() == "root"
    monkeypatch.setattr(emulate.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(emulate, "userns_refusal", lambda: None)
    assert emulate.check_prerequisites() == "userns"
    assert probed == ["root", "userns"]
    monkeypatch.setattr(emulate, "userns_refusal", lambda: "user.max_user_namespaces = 0")
    with pytest.raises(UsageError) as err:
        emulate.check_prerequisites()
    assert str(err.value) == ("--emulate: needs root or unprivileged user namespaces "
                              "(user.max_user_namespaces = 0)")
    assert probed == ["root", "userns"]  # refused before any probe


DENIED = "echo 'unshare: unshare failed: Operation not permitted' >&2; exit 1"


@pytest.mark.parametrize("sysctls, probe_fails, refusal", [
    ({"unprivileged_userns_clone": "0", "max_user_namespaces": "100"}, False,
     "kernel.unprivileged_userns_clone = 0"),
    ({"unprivileged_userns_clone": "1", "max_user_namespaces": "0"}, False,
     "user.max_user_namespaces = 0"),
    ({"max_user_namespaces": "0"}, False, "user.max_user_namespaces = 0"),
    ({"max_user_namespaces": "100"}, True, "unshare --user --map-root-user --net --mount "
     "failed: unshare: unshare failed: Operation not permitted"),
    ({"max_user_namespaces": "100", "apparmor_restrict_unprivileged_userns": "1"}, True,
     "kernel.apparmor_restrict_unprivileged_userns = 1"),
    ({"max_user_namespaces": "100", "apparmor_restrict_unprivileged_userns": "1"}, False, None),
    ({"unprivileged_userns_clone": "1", "max_user_namespaces": "100"}, False, None),
])
def test_user_namespace_refusals_are_named(monkeypatch: pytest.MonkeyPatch,
                                           sysctls: dict[str, str], probe_fails: bool,
                                           refusal: str | None) -> None:
    """The switch that forbids user namespaces is named; where none does, the probe decides,
    and its own words (or AppArmor's switch) name the refusal."""
    probes: list[list[str]] = []
    real = emulate._command

    def command(argv: list[str], what: str = "") -> str:
        probes.append(argv)
        return real(["sh", "-c", DENIED if probe_fails else "true"], what)

    monkeypatch.setattr(emulate, "_read_sysctl", lambda path: sysctls.get(Path(path).name))
    monkeypatch.setattr(emulate, "_command", command)
    assert emulate.userns_refusal() == refusal
    switched_off = "0" in (sysctls.get("unprivileged_userns_clone"),
                           sysctls["max_user_namespaces"])
    assert probes == ([] if switched_off else [emulate.USERNS_PROBE])


@pytest.mark.parametrize("mode, scratch", [
    ("root", ["unshare", "--net", "--"]),
    ("userns", ["unshare", "--user", "--map-root-user", "--net", "--"]),
])
def test_kernel_pieces_are_probed_in_a_throwaway_namespace(
        monkeypatch: pytest.MonkeyPatch, mode: str, scratch: list[str]) -> None:
    run: list[tuple[list[str], str]] = []
    monkeypatch.setattr(emulate, "_command", lambda argv, what="": run.append((argv, what)))
    emulate.check_pieces(mode)
    assert [argv[:len(scratch)] for argv, _ in run] == [scratch] * 3
    assert [(argv[len(scratch):][:2], argv[-1]) for argv, _ in run] == [
        (["ip", "link"], "bridge"), (["ip", "link"], "gridcost-v1"), (["tc", "qdisc"], "200ms")]
    assert [what for _, what in run] == ["ip link add type bridge (the kernel's bridge module)",
                                         "ip link add type veth (the kernel's veth module)",
                                         "tc qdisc add … tbf (the kernel's sch_tbf)"]


def test_placement_blocks_and_deals() -> None:
    cluster = Emulation(EmulationSpec(4, 2, 25e6))
    assert [cluster.node_of(r, 8) for r in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [cluster.node_of(r, 8, "cyclic") for r in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [cluster.node_of(r, 4) for r in range(4)] == [0, 0, 1, 1]


# --------------------------------------------------------------------------- namespaces


def _netns_reason() -> str | None:
    """Why namespaces cannot be tested here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "the 'ip' and 'tc' commands (iproute2) are not installed"
    if os.geteuid() != 0:
        return "root mode's namespaces need root (the unprivileged mode has tests of its own)"
    name = f"gridcost-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        return f"'ip netns add' is not permitted: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return None


REASON = _netns_reason()
needs_netns = pytest.mark.skipif(REASON is not None, reason=REASON or "")
SPEC = EmulationSpec(2, 2, 125e6, "nodes=2, ppn=2, link=1 Gbit/s")


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                          check=True).stdout


def _nothing_left(tag: str, pids: list[int] = ()) -> None:  # type: ignore[assignment]
    left = emulate.leftovers(tag)
    assert left == {"namespaces": [], "links": []}, left
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in \
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:1], pid


@needs_netns
def test_setup_builds_the_cluster_and_teardown_leaves_nothing() -> None:
    links_before = _links()
    with Emulation(SPEC) as cluster:
        tag = cluster.tag
        assert sorted(emulate.leftovers(tag)["namespaces"]) == [
            f"{tag}-br", f"{tag}-n0", f"{tag}-n1"]
        inside = subprocess.run(cluster.command(2, 4, ["ip", "-o", "addr", "show", "eth0"]),
                                capture_output=True, text=True, check=True).stdout
        assert "198.18.0.2/24" in inside
        qdiscs = subprocess.run(["ip", "netns", "exec", cluster.bridge_namespace, "tc",
                                 "qdisc"], capture_output=True, text=True, check=True).stdout
        assert qdiscs.count("tbf") == 2 and "rate 1Gbit" in qdiscs
        sleeper = subprocess.Popen(cluster.command(0, 4, ["sleep", "60"]))
        time.sleep(0.2)
    sleeper.wait(timeout=5)  # killed by the teardown
    _nothing_left(tag, [sleeper.pid])
    assert _links() == links_before


@needs_netns
def test_teardown_on_an_error() -> None:
    with pytest.raises(RuntimeError), Emulation(SPEC) as cluster:
        tag = cluster.tag
        sleeper = subprocess.Popen(cluster.command(1, 4, ["sleep", "60"]))
        raise RuntimeError("boom")
    sleeper.wait(timeout=5)
    _nothing_left(tag, [sleeper.pid])


@needs_netns
@pytest.mark.parametrize("piece, named", [
    ("bridge", "ip link add type bridge (the kernel's bridge module)"),
    ("veth", "ip link add type veth (the kernel's veth module)"),
    ("tbf", "tc qdisc add … tbf (the kernel's sch_tbf)"),
])
def test_a_missing_kernel_piece_is_named_and_nothing_is_left(
        monkeypatch: pytest.MonkeyPatch, piece: str, named: str) -> None:
    real = emulate._command

    def without(argv: list[str], what: str = "") -> str:
        return real(["false"] if piece in argv else argv, what)

    monkeypatch.setattr(emulate, "_command", without)
    cluster = Emulation(SPEC)
    with pytest.raises(UsageError) as err, cluster:
        pass
    assert str(err.value) == f"--emulate: {named} failed: exit code 1"
    _nothing_left(cluster.tag)


@needs_netns
def test_two_emulations_at_once_do_not_collide() -> None:
    with Emulation(SPEC) as first, Emulation(SPEC) as second:
        assert first.tag != second.tag
        assert len(emulate.leftovers(first.tag)["namespaces"]) == 3
        assert len(emulate.leftovers(second.tag)["namespaces"]) == 3
        # the same address on each, each in its own isolated namespaces
        for cluster in (first, second):
            subprocess.run(cluster.command(0, 4, ["ip", "link", "show", "eth0"]), check=True,
                           capture_output=True)
    _nothing_left(first.tag)
    _nothing_left(second.tag)


@needs_netns
def test_leftovers_of_a_dead_emulation_are_reaped() -> None:
    dead = 4_194_999  # above Linux's pid_max: never a running process
    name = f"gridcost-{dead}-0-n0"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        with Emulation(SPEC) as cluster:
            assert name not in emulate.namespaces()
            assert len(emulate.leftovers(cluster.tag)["namespaces"]) == 3
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    _nothing_left(f"gridcost-{dead}-")


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "costmodel.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_workers(proc: subprocess.Popen[str], count: int) -> list[int]:
    """Pids of the processes inside the emulation of ``proc`` once ``count`` run."""
    tag = f"gridcost-{proc.pid}-"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        pids = [int(p) for n in emulate.leftovers(tag)["namespaces"]
                for p in subprocess.run(["ip", "netns", "pids", n], capture_output=True,
                                        text=True, check=False).stdout.split()]
        if len(pids) >= count:
            return pids
        time.sleep(0.1)
    raise AssertionError("the workers did not start")


CALIBRATE = ("calibrate", "run", "--emulate", "nodes=2, ppn=2, link=1 Gbit/s",
             "--max-size", "64 KiB", "--reps", "200", "--warmup", "1")


@needs_netns
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_teardown_on_a_signal(signum: int, code: int) -> None:
    pytest.importorskip("torch", reason="the workers need torch")
    proc = _start(*CALIBRATE)
    pids = _wait_for_workers(proc, 4)
    os.kill(proc.pid, signum)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err == (f"gridcost: interrupted ({signal.Signals(signum).name}): the emulated "
                   "cluster and its processes were removed\n")
    _nothing_left(f"gridcost-{proc.pid}-", pids)


@needs_netns
def test_teardown_when_a_worker_is_killed() -> None:
    pytest.importorskip("torch", reason="the workers need torch")
    proc = _start(*CALIBRATE)
    pids = _wait_for_workers(proc, 4)
    os.kill(pids[-1], signal.SIGKILL)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.startswith("gridcost: worker rank ") and "failed (exit code" in err, err
    assert len(err.splitlines()) == 1
    _nothing_left(f"gridcost-{proc.pid}-", pids)


# --------------------------------------------------------------------------- unprivileged

SCENARIOS = ROOT / "tests" / "emulate_scenarios.py"


class User:
    """Runs commands as an unprivileged user (tests/unprivileged.py) from the repository."""

    def __init__(self) -> None:
        self.home = unprivileged.writable_directory()
        self.stash = Path(tempfile.mkdtemp(prefix="gridcost-stash-"))
        self.serial = 0

    def start(self, argv: list[str], refuse_user_namespaces: bool = False,
              empty_run: bool = False) -> subprocess.Popen[str]:
        self.serial += 1
        stash = self.stash / str(self.serial)
        stash.mkdir()
        return unprivileged.start(argv, stash, self.home, refuse_user_namespaces, empty_run,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def scenario(self, name: str, empty_run: bool = False) -> Any:
        proc = self.start([sys.executable, str(SCENARIOS), name], empty_run=empty_run)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return json.loads(out)

    def gridcost(self, *args: str, refuse_user_namespaces: bool = False
                 ) -> subprocess.Popen[str]:
        return self.start([sys.executable, "-m", "costmodel.cli", *args],
                          refuse_user_namespaces)

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.stash, ignore_errors=True)


def _userns_reason() -> str | None:
    """Why unprivileged emulations cannot be tested here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    for tool in ("ip", "tc", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"the '{tool}' command is not installed"
    why = unprivileged.reason()
    if why is not None:
        return why
    user = User()
    try:
        proc = user.start([sys.executable, "-c", "from costmodel.measure.emulate import "
                           "check_prerequisites; print(check_prerequisites())"])
        out, err = proc.communicate(timeout=60)
    finally:
        user.remove()
    if out.strip() != "userns":
        return f"an unprivileged user cannot emulate here: {err.strip() or out.strip()}"
    return None


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    """The unprivileged user; skips, with the reason, where unprivileged emulation is not
    possible (decided once, when the first test that needs it runs)."""
    reason = _userns_reason()
    if reason is not None:
        pytest.skip(reason)
    runner = User()
    yield runner
    runner.remove()


def _gone(seen: dict[str, Any]) -> None:
    """Nothing of one emulation is left, seen from here (root sees every process)."""
    assert seen["left_in_user_namespace"] == [] and seen["left_in_node_namespaces"] == []
    assert emulate.namespace_members("user", seen["user_namespace"]) == []
    for link in seen["sleeper_net"]:
        assert emulate.namespace_members("net", link) == []
    assert seen["sleeper_codes"] == [-signal.SIGKILL] * 2
    assert emulate.leftovers(seen["tag"]) == {"namespaces": [], "links": []}


def test_unprivileged_setup_builds_the_cluster_and_teardown_leaves_nothing(user: User) -> None:
    links_before = _links()
    seen = user.scenario("build")
    tag = seen["tag"]
    assert seen["mode"] == "userns"
    assert seen["user_namespace"] != os.readlink("/proc/self/ns/user")
    assert seen["namespaces"] == [f"{tag}-br", f"{tag}-n0", f"{tag}-n1"]
    assert "inet 198.18.0.2/24" in seen["node1_eth0"]
    assert seen["bridge_qdiscs"].count("tbf") == 2 and "rate 1Gbit" in seen["bridge_qdiscs"]
    assert len(set(seen["sleeper_net"])) == 2  # one per node, neither the host's
    assert os.readlink("/proc/self/ns/net") not in seen["sleeper_net"]
    _gone(seen)
    assert _links() == links_before


def test_unprivileged_emulation_without_a_host_run_netns(user: User) -> None:
    """Where root never ran ``ip netns`` (no /run/netns, which only root may create), the
    holder mounts its tmpfs on /run instead, in its own mount namespace."""
    if os.geteuid() != 0:
        pytest.skip("hiding /run/netns needs root")
    seen = user.scenario("build", empty_run=True)
    tag = seen["tag"]
    assert seen["namespaces"] == [f"{tag}-br", f"{tag}-n0", f"{tag}-n1"]
    assert "inet 198.18.0.2/24" in seen["node1_eth0"]
    _gone(seen)


def test_a_holder_that_fails_is_one_line_and_leaves_nothing(user: User) -> None:
    seen = user.scenario("broken-holder")
    assert seen["error"] == ("--emulate: the user namespace could not be set up: mount tmpfs "
                             "on /run/netns: Operation not permitted")
    assert seen["holder_code"] == 1 and seen["user_namespace"] is None


def test_unprivileged_teardown_on_an_error(user: User) -> None:
    seen = user.scenario("error")
    assert seen["raised"] == "boom" and seen["mode"] == "userns"
    _gone(seen)


def test_two_unprivileged_emulations_at_once_do_not_collide(user: User) -> None:
    first, second = user.scenario("two")
    assert first["tag"] != second["tag"]
    assert first["user_namespace"] != second["user_namespace"]
    assert not set(first["sleeper_net"]) & set(second["sleeper_net"])
    for seen in (first, second):  # the same address on each, each in its own namespaces
        assert "inet 198.18.0.2/24" in seen["node1_eth0"]
        _gone(seen)


@pytest.mark.parametrize("piece, named", [
    ("bridge", "ip link add type bridge (the kernel's bridge module)"),
    ("veth", "ip link add type veth (the kernel's veth module)"),
    ("tbf", "tc qdisc add … tbf (the kernel's sch_tbf)"),
])
def test_unprivileged_missing_kernel_piece_is_named_before_anything_is_made(
        user: User, piece: str, named: str) -> None:
    seen = user.scenario(f"without-{piece}")
    assert seen == {"error": f"--emulate: {named} failed: exit code 1",
                    "user_namespace": None, "left_in_user_namespace": []}


def test_unprivileged_failed_build_leaves_nothing(user: User) -> None:
    seen = user.scenario("broken-tbf")
    assert seen["error"] == "--emulate: tc qdisc add … tbf (the kernel's sch_tbf) failed: " \
                            "exit code 1"
    assert seen["user_namespace"] and seen["left_in_user_namespace"] == []
    assert emulate.namespace_members("user", seen["user_namespace"]) == []


def test_refused_user_namespaces_are_one_line(user: User) -> None:
    """A user whose kernel refuses user namespaces (user.max_user_namespaces = 0 in a user
    namespace of the test's): one line naming it, exit 2."""
    if os.geteuid() != 0:
        pytest.skip("making a kernel that refuses user namespaces needs root")
    pytest.importorskip("torch", reason="without torch, calibrate run stops at that first")
    proc = user.gridcost("calibrate", "run", "--emulate", "nodes=2, ppn=2, link=1 Gbit/s",
                         refuse_user_namespaces=True)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err == ("gridcost: --emulate: needs root or unprivileged user namespaces "
                   "(user.max_user_namespaces = 0)\n")


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _user_workers(proc: subprocess.Popen[str], count: int) -> tuple[list[int], str]:
    """Pids of the workers of the unprivileged gridcost ``proc`` once ``count`` run, and
    their user namespace; checks that they run as the user, outside the host's namespaces,
    and that the host's ``ip netns`` shows nothing of them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _ppid(int(entry.name)) == proc.pid:
                with suppress(OSError):
                    if b"costmodel.measure.worker" in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
        if len(pids) >= count:
            link = os.readlink(f"/proc/{pids[0]}/ns/user")
            assert link != os.readlink("/proc/self/ns/user")
            status = Path(f"/proc/{pids[0]}/status").read_text()
            assert f"\nUid:\t{unprivileged.UID}\t" in status or os.geteuid() != 0, status
            assert emulate.leftovers(f"gridcost-{proc.pid}-")["namespaces"] == []
            return pids, link
        time.sleep(0.1)
    raise AssertionError("the workers did not start")


def _nothing_of(link: str, pids: list[int], wait_s: float = 0.0) -> None:
    """No process is left in the user namespace ``link`` (within ``wait_s``), the workers
    ``pids`` are gone (or zombies)."""
    deadline = time.monotonic() + wait_s
    while emulate.namespace_members("user", link) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulate.namespace_members("user", link) == []
    _nothing_left("gridcost-no-such-tag", pids)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_unprivileged_teardown_on_a_signal(user: User, signum: int, code: int) -> None:
    pytest.importorskip("torch", reason="the workers need torch")
    proc = user.gridcost(*CALIBRATE)
    pids, link = _user_workers(proc, 4)
    os.kill(proc.pid, signum)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err == (f"gridcost: interrupted ({signal.Signals(signum).name}): the emulated "
                   "cluster and its processes were removed\n")
    _nothing_of(link, pids)


def test_unprivileged_teardown_when_a_worker_is_killed(user: User) -> None:
    pytest.importorskip("torch", reason="the workers need torch")
    proc = user.gridcost(*CALIBRATE)
    pids, link = _user_workers(proc, 4)
    os.kill(pids[-1], signal.SIGKILL)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.startswith("gridcost: worker rank ") and "failed (exit code" in err, err
    assert len(err.splitlines()) == 1
    _nothing_of(link, pids)


def test_unprivileged_emulation_dies_with_a_killed_gridcost(user: User) -> None:
    """SIGKILL leaves gridcost no teardown: the holder and the workers die with it
    (PR_SET_PDEATHSIG), and the namespaces with them."""
    pytest.importorskip("torch", reason="the workers need torch")
    proc = user.gridcost(*CALIBRATE)
    pids, link = _user_workers(proc, 4)
    members = emulate.namespace_members("user", link)
    assert len(members) >= 5  # the holder and the workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    _nothing_of(link, pids, wait_s=10.0)
    # only its temporary folder is left, for the next measurement to remove
    folders = list(Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}{proc.pid}-*"))
    assert len(folders) == 1
    reap_stale_folders()
    assert not folders[0].exists()


# --------------------------------------------------------------------------- a short run

PROFILE = """version: 1
name: emulated-ci
alpha: 2 ms
bandwidth: 50 MB/s
flop_rate: 50 GFLOP/s
levels:
  - {name: node, processes: 2, alpha: 1 ms, bandwidth: 500 MB/s}
  - {name: network}
"""


@needs_netns
def test_short_emulated_validation(tmp_path: Path) -> None:
    """2 nodes × 2 processes at 1 Gbit/s, plan fc-model, every grid of P = 4 under both
    mappings: the numerics and the volumes pass, both mappings are measured and predicted
    (with a fixed profile: the time check is docs/validation.md's), nothing is left."""
    pytest.importorskip("torch", reason="the workers need torch")
    profile = tmp_path / "emu.yaml"
    profile.write_text(PROFILE, encoding="utf-8")
    proc = _start("validate", "--emulate", "nodes=2, ppn=2, link=1 Gbit/s", "--P", "4",
                  "--machine", str(profile), "--plan", "fc-model", "--iterations", "1",
                  "--warmup", "1", "--batch", "4", "--format", "json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    import json

    runs = json.loads(out)["runs"]
    assert sorted((r["pr"], r["pc"], r["mapping"]) for r in runs) == [
        (pr, 4 // pr, m) for pr in (1, 2, 4) for m in ("pc-inside", "pr-inside")]
    assert all(r["numerics"]["allclose"] and r["volumes_ok"] for r in runs)
    # 2×2: pc-inside keeps the fc layers' Pr pairs across nodes, pr-inside inside a node
    by = {(r["pr"], r["mapping"]): r for r in runs}
    assert by[(2, "pc-inside")]["predicted_s"]["model"] > by[(2, "pr-inside")]["predicted_s"][
        "model"]
    _nothing_left(f"gridcost-{proc.pid}-")


# --------------------------------------------------------------------------- docs/validation.md

DOCS = ROOT / "docs"
DATA = DOCS / "validation"
SWEEP = (100, 200, 400, 1600)


def _rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ") or
            line.startswith("- communication MAPE")]


def _on_page(row: str, shown: list[str]) -> bool:
    """The page shows ``row``: exactly, or its numbers at tests/golden.py's precision."""
    from golden import line_difference

    return row in shown or any(line_difference(row, line) is None for line in shown)


def _section() -> str:
    page = (DOCS / "validation.md").read_text(encoding="utf-8")
    start = page.index("## An emulated cluster")
    return page[start:page.index("\n## ", start + 1)]


def _validate(tmp_path: Path, raw: str, machines: list[str], fmt: str,
              collectives: str = "paper") -> str:
    from costmodel.cli import main

    out = tmp_path / f"{raw}.{collectives}.{fmt}"
    args = [a for m in machines for a in ("--machine", str(m))]
    assert main(["validate", *args, "--from-raw", str(DATA / raw), "--plan", "fc-model",
                 "--collectives", collectives, "--format", fmt, "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def _check_flat_ring_pricing(tmp_path: Path, shown: list[str]) -> None:
    """The flat-ring subsection: the ring profiles are `calibrate import --collectives ring` of
    the stored calibrations, and its ranking, MAPE line and comparison table are what
    `validate --collectives flat-ring` computes from them."""
    import json

    from costmodel import api
    from costmodel.inputs.loaders import load_machine, machine_from_text

    for P in (4, 8, 16):
        refit = api.calibrate([DATA / f"emu-cal-P{P}.json"], collectives="ring",
                              name=f"emulated-P{P}-200mbit-ring")
        stored = load_machine(str(DATA / f"emu-P{P}-ring.yaml"))
        fitted = machine_from_text(refit.profile_yaml, "refit")
        assert [x for lv in fitted.levels for x in (lv.alpha_s, lv.bandwidth_Bps)] == \
            pytest.approx([x for lv in stored.levels for x in (lv.alpha_s, lv.bandwidth_Bps)],
                          rel=1e-5)
    ring = [f"{P}={DATA / f'emu-P{P}-ring.yaml'}" for P in (4, 8, 16)]
    text = _validate(tmp_path, "emu-val-raw.json", ring, "markdown", "flat-ring")
    wanted = _rows(text[text.index("### 4. ranking"):])
    assert len(wanted) == 5  # the header, one row per P, the MAPE line
    for row in wanted:
        assert _on_page(row, shown), row
    flat = json.loads(_validate(tmp_path, "emu-val-raw.json", ring, "json", "flat-ring"))
    hier = json.loads(_validate(tmp_path, "emu-val-raw.json",
                                [f"{P}={DATA / f'emu-P{P}.yaml'}" for P in (4, 8, 16)], "json"))
    for a, b in zip(hier["runs"], flat["runs"]):
        row = (f"| {a['P']} | {a['pr']}×{a['pc']} {a['mapping']} | "
               f"{a['measured_comm_s'] * 1e3:,.1f} | {a['predicted_comm_s'] * 1e3:,.1f} | "
               f"{a['abs_pct_error']:.1f} | {b['predicted_comm_s'] * 1e3:,.1f} | "
               f"{b['abs_pct_error']:.1f} |")
        assert row in shown, row


def test_emulated_section_numbers_come_from_the_stored_measurements(tmp_path: Path) -> None:
    """Every row of the emulated section's calibration, time and ranking tables, its MAPE line
    and its rate sweep are what gridcost computes from docs/validation/emu-*."""
    import json

    from costmodel.measure import emulated
    from costmodel.measure.calibration import bench_series
    from costmodel.output.report import render

    shown = _rows(_section())
    text = _validate(tmp_path, "emu-val-raw.json",
                     [f"{P}={DATA / f'emu-P{P}.yaml'}" for P in (4, 8, 16)], "markdown")
    wanted = _rows(text[text.index("### 3. time"):])
    assert len(wanted) > 20
    for row in wanted:
        assert _on_page(row, shown), row
    calibrations = {f"emu-cal-P{P}.json": 200 for P in (4, 8, 16)}
    calibrations |= {f"emu-cal-P8-{rate}.json": rate for rate in SWEEP if rate != 200}
    for name, rate in calibrations.items():
        raw = json.loads((DATA / name).read_text(encoding="utf-8"))
        levels = emulated.fit_levels(bench_series(raw["node"], name),
                                     bench_series(raw["network"], name))
        table = emulated.levels_table(levels, 2, rate * 1e6 / 8, "")
        for row in _rows(render(table, None, "markdown")):  # type: ignore[arg-type]
            assert _on_page(row, shown), (name, row)
    _check_flat_ring_pricing(tmp_path, shown)
    for rate in SWEEP:
        raw, machine = ((f"emu-val-P8-{rate}.json", DATA / f"emu-P8-{rate}.yaml")
                        if rate != 200 else ("emu-val-raw.json", DATA / "emu-P8.yaml"))
        machines = ([f"{P}={DATA / f'emu-P{P}.yaml'}" for P in (4, 8, 16)] if rate == 200
                    else [str(machine)])
        analysis = json.loads(_validate(tmp_path, raw, machines, "json"))
        runs = [r for r in analysis["runs"] if r["P"] == 8]
        rank = next(r for r in analysis["summary"]["rankings"] if r["P"] == 8)
        mape = sum(r["abs_pct_error"] for r in runs) / len(runs)
        share = sum(r["measured_comm_s"] for r in runs) / sum(r["measured_s"]["step"]
                                                             for r in runs) * 100
        row = (f"| {rate} Mbit/s | {mape:.1f} % | {rank['kendall_tau']:.2f} | "
               f"{rank['predicted_best']} | {rank['measured_best']} | "
               f"{rank['regret_pct']:.1f} % | {share:.0f} % |")
        assert row in _section(), row


# --------------------------------------------------------------------------- calibrate import

def test_import_refits_a_stored_emulated_calibration(tmp_path: Path) -> None:
    """`calibrate import` of `calibrate run --emulate --raw`: the same levels the run wrote
    (docs/validation/emu-P4.yaml, 6 significant digits), no root, no torch."""
    from costmodel.cli import main
    from costmodel.inputs.loaders import load_machine

    out = tmp_path / "emu.yaml"
    assert main(["calibrate", "import", str(DATA / "emu-cal-P4.json"), "--emulate",
                 "nodes=2, ppn=2, link=200 Mbit/s", "--profile", str(out), "-o",
                 str(tmp_path / "table.txt")]) == 0
    refit, stored = load_machine(str(out)), load_machine(str(DATA / "emu-P4.yaml"))
    for new, old in zip(refit.levels, stored.levels):
        assert new.alpha_s == pytest.approx(old.alpha_s, rel=1e-5)
        assert new.bandwidth_Bps == pytest.approx(old.bandwidth_Bps, rel=1e-5)
    assert [lv.processes for lv in refit.levels] == [2, None]


def test_import_with_ring_forms_counts_more_latencies_per_collective() -> None:
    """Fitted with the ring's 2(p−1) latency terms per all-reduce instead of the paper's
    2⌈lg p⌉, the network level of P = 8 (groups of up to 4 nodes) gets a smaller α; the node
    level (groups of 2, where both count 2) is unchanged."""
    from costmodel import api

    raw = api.EmulatedRaw("emu-cal-P8.json",
                          json.loads((DATA / "emu-cal-P8.json").read_text(encoding="utf-8")))
    spec = "nodes=4, ppn=2, link=200 Mbit/s"
    paper = api.fit_emulated(raw, emulate=spec).record
    ring = api.fit_emulated(raw, emulate=spec, collectives="ring").record
    assert "levels" in paper and "levels" in ring
    assert ring["levels"][0]["alpha_s"] == pytest.approx(paper["levels"][0]["alpha_s"],
                                                         rel=1e-12)
    assert ring["levels"][1]["alpha_s"] < 0.9 * paper["levels"][1]["alpha_s"]


def test_import_of_emulated_raw_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    from costmodel.cli import main

    # a raw file written before `calibrate run --emulate` stored its emulation
    old = json.loads((DATA / "emu-cal-P8.json").read_text(encoding="utf-8"))
    del old["emulation"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    for args, message in [
            ([str(path)], f"gridcost: {path}: an emulated cluster's measurement without its "
                          "emulation; give --emulate 'nodes=N, ppn=K, link=RATE' as it was run"),
            ([str(DATA / "cal-P2.json"), "--emulate", "nodes=2, ppn=2, link=1 Gbit/s"],
             "gridcost: --emulate: only for the raw JSON of `calibrate run --emulate` (node and "
             "network series)"),
            ([str(path), "--emulate", "nodes=2, ppn=2"],
             "gridcost: --emulate: missing link: expected 'nodes=N, ppn=K, link=RATE'")]:
        assert main(["calibrate", "import", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(message), err
        assert "\n" not in err


def test_run_stores_its_emulation_and_fits_like_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """`calibrate run --emulate --raw` writes the emulation beside the series, so `calibrate
    import` of that file needs no --emulate; the run and the import fit the same levels.  The
    measurement is replaced by the stored one (no root, no torch)."""
    import costmodel.measure.emulate as emulate
    from costmodel import api
    from costmodel.measure import live

    stored = json.loads((DATA / "emu-cal-P4.json").read_text(encoding="utf-8"))
    monkeypatch.setattr(emulate, "calibration_runs",
                        lambda spec, args, timeout, progress: (stored["node"], stored["network"]))
    monkeypatch.setattr("costmodel.measure.require_torch", lambda: None)
    measured = live.calibration_run(max_size="16MiB", reps="5", warmup="1",
                                    emulate="nodes=2, ppn=2, link=200 Mbit/s")
    assert measured is not None
    raw = json.loads(measured.raw_json)
    assert raw["emulation"] == "nodes=2, ppn=2, link=200 Mbit/s"
    run = measured.fit()
    imported = api.fit_emulated(api.EmulatedRaw("raw", raw))
    assert run.record == imported.record
    assert run.profile_yaml == imported.profile_yaml
