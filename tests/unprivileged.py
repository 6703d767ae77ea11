"""Run a command as a real unprivileged user from tests that may themselves run as root.

As root, :func:`command` wraps ``argv`` so that it runs as uid and gid :data:`UID` (``nobody``),
with no supplementary groups and no capabilities (``setpriv``), in a private mount namespace
(``unshare --mount --propagation private``, gone with the command) in which every directory
closed to other users on the way to this Python, its packages and the repository (such as a
``/root`` of mode 0700 holding the interpreter) is replaced by a tmpfs that shows only the
entries on that way: the user can run gridcost, and sees nothing else of the closed directory.
Nothing is changed on the host.  As any other user, ``argv`` runs unchanged.

:func:`start` with ``refuse_user_namespaces`` runs it, in addition, inside a user namespace of
its own (uids and gids 0–65535 mapped to themselves) whose ``user.max_user_namespaces`` is 0: a
kernel that refuses the user any user namespace, as gridcost sees it.

``python tests/unprivileged.py CMD ARGS…`` runs one command that way (docs/validation.md).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

UID = 65534
ROOT = Path(__file__).resolve().parent.parent


def needed_paths() -> list[Path]:
    """What the unprivileged user must reach: this Python, its prefixes, the repository."""
    return [Path(p).resolve() for p in (sys.executable, sys.prefix, sys.base_prefix, ROOT)]


def closed_directories(paths: list[Path]) -> dict[Path, set[str]]:
    """Each directory on the way to ``paths`` that others cannot search (no o+x), with the
    entries of it that lead on; a UsageError-free ValueError when a second one lies deeper on
    the same way (one tmpfs cannot open both)."""
    closed: dict[Path, set[str]] = {}
    for path in paths:
        found = None
        for parent, child in zip(path.parents[::-1][1:], path.parts[2:]):
            if not parent.stat().st_mode & stat.S_IXOTH:
                if found is not None:
                    raise ValueError(f"{found} and {parent} on the way to {path} are both "
                                     "closed to other users")
                found = parent
                closed.setdefault(parent, set()).add(child)
    return closed


REFUSING = ("exec unshare --user -- sh -c 'read _ && exec \"$@\" </dev/null' sh sh -c "
            "'echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"' sh ")
"""Shell words that run the rest in a new user namespace, once :func:`start` has written its
maps and a line on stdin (the maps must be there before the exec that gives root its
capabilities in it), with user.max_user_namespaces = 0."""


def command(argv: list[str], stash_root: Path, refuse_user_namespaces: bool = False,
            empty_run: bool = False) -> list[str]:
    """``argv`` as run by :data:`UID` (module docstring); ``stash_root``: an empty directory
    for the tmpfs mount points (only mounted on inside the private mount namespace).
    ``empty_run``: an empty /run, as on a host where ``ip netns`` never ran as root (no
    /run/netns)."""
    if os.geteuid() != 0:
        if refuse_user_namespaces or empty_run:
            raise ValueError("refusing user namespaces or emptying /run needs root")
        return list(argv)
    steps = []
    for number, (directory, children) in enumerate(sorted(closed_directories(
            needed_paths()).items())):
        stash = stash_root / f"open{number}"
        stash.mkdir()
        steps.append(f"mount -t tmpfs -o mode=0755 gridcost-test {shlex.quote(str(stash))}")
        for child in sorted(children):
            source, target = directory / child, stash / child
            make = "mkdir" if source.is_dir() else "touch"
            steps += [f"{make} {shlex.quote(str(target))}",
                      f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}"]
        steps.append(f"mount --rbind {shlex.quote(str(stash))} {shlex.quote(str(directory))}")
    if empty_run:
        steps.append("mount -t tmpfs -o mode=0755 gridcost-test /run")
    steps.append((REFUSING if refuse_user_namespaces else "exec ")
                 + f'setpriv --reuid={UID} --regid={UID} --clear-groups -- "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
            "; ".join(steps), "sh", *argv]


def environment(home: Path) -> dict[str, str]:
    """The environment of the unprivileged command: this one, HOME at ``home``."""
    return dict(os.environ, HOME=str(home), PYTHONDONTWRITEBYTECODE="1")


def start(argv: list[str], stash_root: Path, home: Path,
          refuse_user_namespaces: bool = False, empty_run: bool = False,
          **popen: Any) -> subprocess.Popen[str]:
    """Start ``argv`` as :data:`UID` (:func:`command`), text mode; its pid is the command's
    own (every wrapper execs).  With ``refuse_user_namespaces`` (root only), write the user
    namespace's maps, then let it go on."""
    proc = subprocess.Popen(command(argv, stash_root, refuse_user_namespaces, empty_run),
                            env=environment(home), text=True,
                            stdin=subprocess.PIPE if refuse_user_namespaces else None, **popen)
    if refuse_user_namespaces:
        assert proc.stdin is not None
        ours = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 30
        while os.readlink(f"/proc/{proc.pid}/ns/user") == ours:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no user namespace was made: {proc.communicate()}")
            time.sleep(0.01)
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{proc.pid}/{name}").write_text("0 0 65536\n", encoding="ascii")
        proc.stdin.write("go\n")
        proc.stdin.close()
        proc.stdin = None  # communicate() must not flush it
    return proc


def writable_directory() -> Path:
    """A new directory under the temporary folder that :data:`UID` owns (remove it after)."""
    folder = Path(tempfile.mkdtemp(prefix="gridcost-unprivileged-"))
    if os.geteuid() == 0:
        os.chown(folder, UID, UID)
    return folder


def reason() -> str | None:
    """Why commands cannot be run as an unprivileged user here, or None."""
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    if os.geteuid() == 0:
        for tool in ("setpriv", "unshare", "mount"):
            if shutil.which(tool) is None:
                return f"running as uid {UID} needs the '{tool}' command (util-linux)"
        try:
            closed_directories(needed_paths())
        except (ValueError, OSError) as exc:
            return f"this Python cannot be opened to uid {UID}: {exc}"
    home = writable_directory()
    stash = Path(tempfile.mkdtemp(prefix="gridcost-stash-"))
    try:
        done = subprocess.run(command([sys.executable, "-c", "import costmodel"], stash),
                              cwd=ROOT, env=environment(home), capture_output=True, text=True,
                              timeout=60, check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(stash, ignore_errors=True)
    if done.returncode:
        said = (done.stderr or done.stdout).strip().splitlines()
        return (f"uid {UID} cannot run this Python and gridcost: "
                f"{said[-1] if said else done.returncode}")
    return None


def main(argv: list[str]) -> int:
    """Run ``argv`` as :data:`UID` in the current directory; its exit code."""
    home = writable_directory()
    stash = Path(tempfile.mkdtemp(prefix="gridcost-stash-"))
    try:
        return subprocess.run(command(argv, stash), env=environment(home),
                              check=False).returncode
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(stash, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
