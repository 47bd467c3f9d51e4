"""How a sandbox child is started: bwrap's command line (the whitelisted file tree), the setup between fork and
exec (cgroup, private /tmp mount, uid drop, rlimits) and the rlimits themselves."""
from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
from typing import TYPE_CHECKING, Callable, Iterable

from grader.course import Limits
from grader.sandbox.common import die_with_parent

if TYPE_CHECKING:  # only in annotations: probe.py imports this module
    from grader.sandbox.probe import _BwrapProbe, _Python


OPEN_FILES = 256
CPU_GRACE_S = 2  # RLIMIT_CPU = total budget rounded up + this; the wall-clock budget normally ends things first
MIN_TMP_BYTES = 16 << 20
TMP_INODES = 8192  # files (and folders) in the private /tmp, as root; 200,000 empty files cost ~200 MiB of kernel
if sys.platform == "win32":  # no rlimits: a plain child process there, only the time limit holds
    RLIMIT_LAYERS: tuple[tuple[int, str], ...] = ()
else:
    import resource

    RLIMIT_LAYERS = (
        (resource.RLIMIT_AS, "rlimit-memory"),
        (resource.RLIMIT_CPU, "rlimit-cpu"),
        (resource.RLIMIT_NPROC, "rlimit-processes"),
        (resource.RLIMIT_FSIZE, "rlimit-file-size"),
    )


def _bwrap_args(probe: _BwrapProbe, python: _Python, code: str | None, harness: str | None, tmp_bytes: int,
                tmp_mount: str | None) -> list[str]:
    """bwrap's command line up to (not including) the command; code/harness None for the probe.

    The file tree is a whitelist: the interpreter, the standard library without any site-packages, the shared
    libraries, the code and the harness; tmp_mount: a folder mounted as the private /tmp (else bwrap's tmpfs)."""
    assert probe.path is not None
    # --as-pid-1: Python is the namespace's init, so bwrap waits for it itself and its exit empties the namespace
    # (bwrap's own init would be left a zombie for the host's init to reap, holding an RLIMIT_NPROC slot)
    args = [probe.path, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--as-pid-1"]
    if probe.has_disable_userns:
        args += ["--disable-userns"]
    for link, target in python.links:
        args += ["--symlink", target, link]
    args += ["--ro-bind", python.executable, python.executable]
    for folder in python.folders:
        args += ["--ro-bind", folder, folder]
    for folder in python.masks:
        args += ["--tmpfs", folder, "--remount-ro", folder]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    # a fresh /dev is a writable tmpfs without a size cap: make it read-only (device nodes stay usable)
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    if tmp_mount is not None:
        args += ["--bind", tmp_mount, "/tmp"]
    else:
        args += ["--size", str(tmp_bytes)] if probe.has_size else []
        args += ["--tmpfs", "/tmp"]
    if code is not None and harness is not None:
        args += ["--ro-bind", code, "/code", "--ro-bind", harness, "/harness"]
    # the root is a writable tmpfs without a size cap too
    args += ["--remount-ro", "/", "--chdir", "/tmp"]
    return args


class _ChildSetup:
    """preexec_fn of a sandbox child, run between fork and exec while it is still the grader's user: join the
    sandbox's cgroups, mount its private /tmp (root), drop to the slot uid, die with the process that starts it,
    set the rlimits. Joining before the uid drop and the exec means no instruction of student code ever runs
    outside the cgroups."""

    def __init__(self, uid: int | None, cgroup_joins: tuple[str, ...], mount: Callable[[], None] | None,
                 rlimits: Iterable[tuple[int, tuple[int, int]]]) -> None:
        self.uid, self.cgroup_joins, self.mount, self.rlimits = uid, cgroup_joins, mount, list(rlimits)
        self.parent = os.getpid()  # the process that starts the child: a sandbox stays in its process

    def __call__(self) -> None:  # only system calls: the grader may have threads
        for join in self.cgroup_joins:
            fd = os.open(join, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        if self.mount is not None:
            self.mount()
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        # a grader killed with SIGKILL closes no sandbox: bwrap's --die-with-parent then ends the sandbox, and
        # this ends a child without bwrap (set after the uid drop, which clears it)
        die_with_parent(signal.SIGKILL, self.parent)
        for which, limit in self.rlimits:
            resource.setrlimit(which, limit)


CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x20000, 2, 4, 0x4000, 1 << 18


def _tmpfs_mounter(target: str, size: int, inodes: int, uid: int) -> Callable[[], None]:
    """For a child about to exec, as root: a mount namespace of its own in which `target` is a new tmpfs capped
    at `size` bytes and `inodes` files, owned by uid. It is gone with the child's last process: every child
    gets an empty one, and nothing is ever mounted on the host."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it
    where, options = target.encode(), f"size={size},nr_inodes={inodes},mode=0700,uid={uid},gid={uid}".encode()

    def mount() -> None:
        if (libc.unshare(CLONE_NEWNS) or libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
                or libc.mount(b"tmpfs", where, b"tmpfs", MS_NOSUID | MS_NODEV, options)):
            error = ctypes.get_errno()
            raise OSError(error, f"cannot mount the private /tmp: {os.strerror(error)}")

    return mount


def _rlimits(limits: Limits, nproc: int) -> list[tuple[int, tuple[int, int]]]:
    """(resource, (soft, hard)) for the child, never above the hard limits this process already has."""
    if sys.platform == "win32":
        return []
    wanted = [] if sys.platform == "darwin" else [(resource.RLIMIT_AS, limits.memory_mb << 20)]  # see warnings
    wanted += [
        (resource.RLIMIT_CPU, math.ceil(limits.total_timeout_s) + CPU_GRACE_S),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, OPEN_FILES),
    ]
    if nproc:
        wanted.append((resource.RLIMIT_NPROC, nproc))
    result = []
    for which, value in wanted:
        _, hard = resource.getrlimit(which)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # RLIMIT_CPU: SIGXCPU (reported) at the soft limit, SIGKILL a second later
        new_hard = soft + 1 if which == resource.RLIMIT_CPU else soft
        if hard != resource.RLIM_INFINITY:
            new_hard = min(new_hard, hard)
        result.append((which, (soft, new_hard)))
    return result
