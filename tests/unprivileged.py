"""Run a command as a real unprivileged user from tests that may themselves run as root.

As root, :func:`command` wraps ``argv`` so that it runs as uid and gid :data:`UID` (``nobody``),
with no supplementary groups and no capabilities (``setpriv``), in a private mount namespace
(``unshare --mount --propagation private``, gone with the command) in which every directory
closed to other users on the way to this Python, its packages and the repository (such as a
``/root`` of mode 0700 holding the interpreter) is replaced by a tmpfs that shows only the
entries on that way: the user can run gridcost, and sees nothing else of the closed directory.
Nothing is changed on the host.  As any other user, ``argv`` runs unchanged.

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
from pathlib import Path

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


def command(argv: list[str], stash_root: Path) -> list[str]:
    """``argv`` as run by :data:`UID` (module docstring); ``stash_root``: an empty directory
    for the tmpfs mount points (only mounted on inside the private mount namespace)."""
    if os.geteuid() != 0:
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
    steps.append(f'exec setpriv --reuid={UID} --regid={UID} --clear-groups -- "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
            "; ".join(steps), "sh", *argv]


def environment(home: Path) -> dict[str, str]:
    """The environment of the unprivileged command: this one, HOME at ``home``."""
    return dict(os.environ, HOME=str(home), PYTHONDONTWRITEBYTECODE="1")


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
