"""The sandbox's own cgroup (as root): memory (kernel memory and swap included) and processes limits for all
of a sandbox's processes together, and a kill-all that nothing started inside can escape (cgroup v1
hierarchies or a delegated v2 folder)."""
from __future__ import annotations

import os
import signal
import time

from grader.sandbox.common import KILL_WAIT_S, _inside

CGROUP_OVERHEAD_PROCESSES = 2  # pids.max also counts threads (as RLIMIT_NPROC does) and the child before exec


_cgroup_parents: dict[str, str] | None = None


def _cgroup_homes() -> dict[str, str]:
    """{"memory": folder, "pids": folder}: where this process (root) can make the sandboxes' cgroups, inside its
    own ones (so that limits set on the grader still hold): cgroup v1 hierarchies, or one v2 folder that
    delegates both controllers. Empty when neither controller is usable (then rlimits only, warned about)."""
    global _cgroup_parents
    if _cgroup_parents is not None:
        return _cgroup_parents
    found: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            own = {controllers: path for _, controllers, path in (line.rstrip("\n").split(":", 2) for line in f)}
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
    except (OSError, ValueError):
        own, mounts = {}, []
    for fields in mounts:
        tail = fields[fields.index("-") + 1:]
        root, point, fstype, options = fields[3], fields[4], tail[0], set(tail[2].split(","))
        for controllers, path in own.items():
            wanted = set(controllers.split(",")) & {"memory", "pids"}
            v1 = fstype == "cgroup" and bool(wanted) and set(controllers.split(",")) <= options
            if not (v1 or (fstype == "cgroup2" and controllers == "")) or not _inside(path, [root]):
                continue
            folder = point + path[len(root.rstrip("/")):]
            if not os.access(folder, os.W_OK):
                continue
            if v1:
                found.update(dict.fromkeys(wanted, folder))
            elif {"memory", "pids"} <= set(_read(os.path.join(folder, "cgroup.subtree_control")).split()):
                found.setdefault("memory", folder)
                found.setdefault("pids", folder)
    _cgroup_parents = found if os.geteuid() == 0 else {}
    return _cgroup_parents


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _write(path: str, value: object) -> None:
    with open(path, "w") as f:
        f.write(str(value))


class _Cgroup:
    """As root: a sandbox's own cgroup (one folder per hierarchy), made for its slot and reused by its children:
    memory (with swap and kernel memory: tmpfs files, inodes) and processes limits on all of them together,
    and a kill-all that nothing started inside can escape."""

    def __init__(self, homes: dict[str, str], name: str, memory_bytes: int, processes: int) -> None:
        self.memory = os.path.join(homes["memory"], name) if "memory" in homes else None
        self.pids = os.path.join(homes["pids"], name) if "pids" in homes else None
        self.folders = tuple(dict.fromkeys(f for f in (self.memory, self.pids) if f))
        self.procs = tuple(os.path.join(folder, "cgroup.procs") for folder in self.folders)
        for folder in self.folders:
            os.makedirs(folder, exist_ok=True)  # left over by a grader that was killed: reused
        self.kill()
        self.v2 = os.path.exists(os.path.join(self.folders[0], "cgroup.controllers"))
        # what a new child writes "0" (itself) to: on v1 `tasks`, which moves its one thread (it has just
        # forked) without the kernel's global lock that cgroup.procs takes (~8 ms per child here)
        self.joins = self.procs if self.v2 else tuple(os.path.join(f, "tasks") for f in self.folders)
        if self.memory and self.v2:
            _write(os.path.join(self.memory, "memory.max"), memory_bytes)
            if os.path.exists(os.path.join(self.memory, "memory.swap.max")):
                _write(os.path.join(self.memory, "memory.swap.max"), 0)
        elif self.memory:
            limits = [os.path.join(self.memory, f"memory.{kind}limit_in_bytes") for kind in ("", "memsw.")]
            limits = [path for path in limits if os.path.exists(path)]
            try:  # memory+swap may never be below memory: which one first depends on growing or shrinking
                for path in limits:
                    _write(path, memory_bytes)
            except OSError:
                for path in reversed(limits):
                    _write(path, memory_bytes)
            kmem = os.path.join(self.memory, "memory.kmem.limit_in_bytes")
            if os.path.exists(kmem):
                try:
                    _write(kmem, memory_bytes)
                except OSError:
                    pass  # newer kernels refuse it: kernel memory is counted in memory.limit_in_bytes anyway
        if self.pids:
            _write(os.path.join(self.pids, "pids.max"), processes)

    @property
    def layers(self) -> list[str]:
        return ["cgroup-memory"] * bool(self.memory) + ["cgroup-pids"] * bool(self.pids)

    def members(self) -> set[int]:
        return {int(pid) for procs in self.procs for pid in _read(procs).split()}

    def kill(self) -> None:
        """SIGKILL every process in the cgroup until none is left (bounded). Each pid is pinned with a pidfd
        and signalled only if it is still a member afterwards: a pid reused outside is never hit."""
        folder = self.folders[0]
        if os.path.exists(os.path.join(folder, "cgroup.kill")):
            _write(os.path.join(folder, "cgroup.kill"), 1)
        deadline = time.monotonic() + KILL_WAIT_S
        while (pids := self.members()) and time.monotonic() < deadline:
            pinned = {}
            for pid in pids:
                try:
                    pinned[pid] = os.pidfd_open(pid)
                except OSError:
                    continue
            still = self.members()
            for pid, pidfd in pinned.items():
                try:
                    if pid in still:
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                except OSError:
                    pass
                finally:
                    os.close(pidfd)
            time.sleep(0.002)

    def oom_kills(self) -> int:
        """How many processes the kernel killed for exceeding the memory limit, so far."""
        if not self.memory:
            return 0
        text = _read(os.path.join(self.memory, "memory.events" if self.v2 else "memory.oom_control"))
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", 0))

    def remove(self) -> None:
        self.kill()
        for folder in self.folders:
            try:
                os.rmdir(folder)
            except OSError:
                pass  # still busy (a process in the kernel's hands): the next sandbox of the slot reuses it
