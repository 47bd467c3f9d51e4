"""Sandbox slots (as root): a dedicated uid per slot, leased machine-wide with flock, and killing by uid.

Closing a sandbox kills every process of its uid, so a slot is never shared by two grader processes; the
sweep forks a helper that switches to the uid and sends kill(-1, SIGKILL), which reaches exactly its processes."""
from __future__ import annotations

import os
import signal
import sys
import time

from grader.sandbox.common import KILL_WAIT_S, SandboxError, _state_folder

MAX_SLOTS = 1000


def _processes_of(uid: int) -> list[tuple[int, bytes, int]] | None:
    """(pid, state, parent pid) of uid's processes from /proc (Linux); None where there is no /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    found = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            found.append((int(name), fields[0], int(fields[1])))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _kill_all_of_uid(uid: int) -> None:
    """As root: SIGKILL every process of uid and wait (bounded) until none is left, zombies included.

    A forked helper switches to uid, so kill(-1) reaches exactly that uid's processes (no pid-reuse races).
    Zombies still count against RLIMIT_NPROC, so the next child of this slot waits for them to be reaped:
    by the host's init, or by us when orphans were reparented to the grader (grader as PID 1, subreaper)."""
    found = _processes_of(uid)
    if found is not None and all(state in b"ZX" for _, state, _ in found):
        pass  # nothing alive: only a live process can start another, so there is nothing to kill (no fork)
    elif (pid := os.fork()) == 0:  # only system calls and /proc reads here: the grader may have threads
        code = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            deadline = time.monotonic() + KILL_WAIT_S
            while time.monotonic() < deadline:
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    code = 0
                    break
                others = _processes_of(uid) or ()
                if sys.platform == "linux" and all(state in b"ZX" or p == os.getpid() for p, state, _ in others):
                    code = 0
                    break
                time.sleep(0.002)
        finally:
            os._exit(code)
    else:
        os.waitpid(pid, 0)
    deadline = time.monotonic() + KILL_WAIT_S
    while (left := _processes_of(uid)) and time.monotonic() < deadline:
        for zombie, _, parent in left:
            if parent == os.getpid():
                try:
                    os.waitpid(zombie, os.WNOHANG)
                except ChildProcessError:
                    pass
        time.sleep(0.01)


def _slot_base() -> int:
    """GRADER_SLOT_BASE, added to every slot: graders (or test runs) on one machine can keep to their own range."""
    try:
        return int(os.environ.get("GRADER_SLOT_BASE") or 0)
    except ValueError:
        raise SandboxError("GRADER_SLOT_BASE must be a whole number") from None


def _lease_slot(preferred: int) -> tuple[int, int]:
    """The first free slot from `preferred` on, held by an flock until the sandbox closes.

    Slots must be unique on the whole machine, not just in one grader process: closing a sandbox kills every
    process of its uid, which would kill another grader's sandbox of the same slot (two TAs, CI and a batch)."""
    import fcntl  # Unix only, like slots: `grader check` also runs on Windows

    folder = _state_folder()
    for slot in range(preferred, preferred + MAX_SLOTS):
        fd = os.open(folder / f"{slot % MAX_SLOTS}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot % MAX_SLOTS, fd
        except BlockingIOError:
            os.close(fd)
    raise SandboxError(f"all {MAX_SLOTS} sandbox slots are in use (locks in {folder})")


def _check_uid_unused(uid: int) -> None:
    """The slot uid must not belong to an account: killing 'all of its processes' would hit that account."""
    import pwd  # Unix only, like slots: `grader check` also runs on Windows

    try:
        account = pwd.getpwuid(uid).pw_name
    except KeyError:
        return
    raise SandboxError(f"uid {uid} (sandbox slot) belongs to the account {account!r}; use another slot")
