"""Stage 3 of the pipeline: run the harness on student code in an isolated child process and talk to it.

The strongest isolation this machine offers is used and reported in `Sandbox.isolation`:

* bubblewrap (Linux, user namespaces): PID/network/IPC/UTS/cgroup namespaces, no capabilities, a read-only
  minimal filesystem (the host's /usr plus the code and harness), a private size-capped /tmp;
* always: rlimits (memory, CPU, processes, file size, core, open files), a new session, a clean environment;
* as root: the child drops to a dedicated unprivileged uid (61000 + slot) before bwrap starts, because bwrap
  started by root keeps its capabilities and RLIMIT_NPROC means nothing for root.

Without bubblewrap (macOS, user namespaces blocked, or GRADER_SANDBOX=rlimits) only the second group (and the
uid drop) applies and `isolation["warnings"]` says what is missing.

Killing: under bwrap the harness is PID 1 of its own PID namespace, so SIGKILL to it kills everything inside and
bwrap exits only once the namespace is empty. Without bwrap the child's session (process group) is killed. As
root, a helper running as the slot uid then sends kill(-1, SIGKILL), which reaches exactly that uid's processes
(setsid escapees, fork bombs). Replies are read from a pipe with a deadline, never until EOF, so a grandchild
holding the pipe cannot hang the grader; stderr goes to an unlinked temporary file, never a pipe.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import pwd
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Callable, NoReturn

from grader.course import Limits

HARNESS = Path(__file__).with_name("harness.py")  # the script every sandbox runs
UID_BASE = 61000  # slot n runs as uid/gid UID_BASE + n when the grader is root
MAX_SLOTS = 1000
LOCK_DIR = "/run/lock"
MAX_REPLY_BYTES = 16 << 20
TOO_LONG = f"reply longer than {MAX_REPLY_BYTES >> 20} MiB"
STDERR_TAIL_LINES = 20
OPEN_FILES = 256
CPU_GRACE_S = 2  # RLIMIT_CPU = total budget rounded up + this; the wall-clock budget normally ends things first
BWRAP_OVERHEAD_PROCESSES = 1  # bwrap itself counts against RLIMIT_NPROC
MIN_TMP_BYTES = 16 << 20
EXIT_GRACE_S = 1.0  # after EOF on the reply pipe: how long the child may take to exit by itself
KILL_WAIT_S = 5.0
FALLBACK_PYTHON = "/usr/bin/python3"
CLEAN_PATH = "/usr/bin:/bin"
RLIMIT_LAYERS = (
    (resource.RLIMIT_AS, "rlimit-memory"),
    (resource.RLIMIT_CPU, "rlimit-cpu"),
    (resource.RLIMIT_NPROC, "rlimit-processes"),
    (resource.RLIMIT_FSIZE, "rlimit-file-size"),
)
MODES = ("auto", "bwrap", "rlimits")  # GRADER_SANDBOX / mode=: auto = bwrap if it works, else rlimits


class SandboxError(RuntimeError):
    """The sandbox cannot be set up on this machine; the message says why and what to do."""


@dataclass
class CallResult:
    """How one call ended: "ok" (value = the reply's value), "error" (error = the reply's error dict), "timeout"
    or "crashed" (detail = a short reason written by the grader, never by the child)."""

    status: str  # "ok" | "error" | "timeout" | "crashed"
    value: object = None
    error: dict | None = None
    detail: str = ""


class _Timeout(Exception):
    pass


class _Crash(Exception):
    pass


# --------------------------------------------------------------------------------------------- probes (cached)

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


_interpreters: dict[int | None, tuple[str, tuple[str, ...]]] = {}


def _interpreter(uid: int | None) -> tuple[str, tuple[str, ...]]:
    """The Python the sandbox runs, and the folders outside /usr it needs (bound read-only under bwrap).

    sys.executable when the sandbox uid can run it and read its standard library, else /usr/bin/python3."""
    if uid in _interpreters:
        return _interpreters[uid]
    stdlib = os.path.dirname(os.__file__)
    candidates = [(sys.executable, stdlib, (sys.prefix, sys.base_prefix)), (FALLBACK_PYTHON, None, ())]
    for exe, lib, homes in candidates:
        if not exe or not os.path.isfile(exe):
            continue
        if uid is not None and not (
            _reachable(exe, uid, uid, 5) and (lib is None or _reachable(lib, uid, uid, 5))
        ):
            continue
        binds = tuple(sorted({h for h in homes if not (h + "/").startswith("/usr/")}))
        _interpreters[uid] = (exe, binds)
        return exe, binds
    who = f"uid {uid}" if uid is not None else "this user"
    raise SandboxError(
        f"no Python usable by {who}: {sys.executable} is not readable by it and {FALLBACK_PYTHON} does not exist;"
        " install a system Python 3 (e.g. apt-get install python3) or run the grader from a world-readable Python"
    )


@dataclass(frozen=True)
class _BwrapProbe:
    path: str | None  # None: bubblewrap is not usable
    reason: str = ""  # why not
    has_size: bool = False  # --size for tmpfs (bubblewrap >= 0.7)
    has_disable_userns: bool = False  # bubblewrap >= 0.8


_bwrap_probes: dict[bool, _BwrapProbe] = {}


def _probe_bwrap(uid: int | None, python: str, binds: tuple[str, ...]) -> _BwrapProbe:
    """Find bwrap and run `python -c pass` in the same sandbox the real children get (once per process)."""
    key = uid is not None
    if key in _bwrap_probes:
        return _bwrap_probes[key]
    path = shutil.which("bwrap")
    if sys.platform != "linux" or path is None:
        probe = _BwrapProbe(None, "bubblewrap is not installed" if sys.platform == "linux" else "not on Linux")
    else:
        probe = _cached_probe(path, uid, python, binds) or _try_bwrap(path, uid, python, binds)
        if probe.path:
            _remember_probe(probe, uid, python, binds)
    _bwrap_probes[key] = probe
    return probe


def _probe_key(path: str, uid: int | None, python: str, binds: tuple[str, ...]) -> list:
    """What a successful probe depends on: the same bwrap, interpreter and binds, since the last boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        return [path, os.stat(path).st_mtime_ns, python, list(binds), uid is not None, boot]
    except OSError:
        return []


def _probe_cache(uid: int | None) -> Path | None:
    # Only as root: the cache lives in the root-only slot folder, where no sandboxed uid can forge it.
    return _state_folder() / f"bwrap-probe-{uid is not None:d}.json" if os.geteuid() == 0 else None


def _cached_probe(path: str, uid: int | None, python: str, binds: tuple[str, ...]) -> _BwrapProbe | None:
    """A probe that worked before on this boot: saves two process starts (~50 ms) per grader process."""
    cache = _probe_cache(uid)
    try:
        saved = json.loads(cache.read_text()) if cache else None
    except (OSError, ValueError):
        return None
    if not saved or saved.get("key") != _probe_key(path, uid, python, binds):
        return None
    return _BwrapProbe(path, "", bool(saved["has_size"]), bool(saved["has_disable_userns"]))


def _remember_probe(probe: _BwrapProbe, uid: int | None, python: str, binds: tuple[str, ...]) -> None:
    cache = _probe_cache(uid)
    key = _probe_key(probe.path, uid, python, binds)
    if cache and key:
        fresh = cache.with_suffix(f".{os.getpid()}")
        fresh.write_text(json.dumps({"key": key, "has_size": probe.has_size,
                                     "has_disable_userns": probe.has_disable_userns}))
        os.replace(fresh, cache)


def _try_bwrap(path: str, uid: int | None, python: str, binds: tuple[str, ...]) -> _BwrapProbe:
    try:
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10).stdout
        found = _BwrapProbe(path, "", "--size" in usage, "--disable-userns" in usage)
        args = _bwrap_args(found, python, binds, None, None, MIN_TMP_BYTES) + [python, "-I", "-S", "-c", "pass"]
        run = subprocess.run(
            args, capture_output=True, text=True, timeout=10, env={"PATH": CLEAN_PATH}, cwd="/",
            start_new_session=True, **_uid_kwargs(uid),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return _BwrapProbe(None, f"bubblewrap could not be run: {exc}")
    if run.returncode != 0:
        said = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        return _BwrapProbe(None, f"bubblewrap does not work here ({said}); user namespaces may be disabled")
    return found


def _uid_kwargs(uid: int | None) -> dict:
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def _bwrap_args(
    probe: _BwrapProbe, python: str, binds: tuple[str, ...], code: str | None, harness: str | None, tmp_bytes: int
) -> list[str]:
    """bwrap's command line up to (not including) the command; code/harness None for the probe."""
    # --as-pid-1: Python is the namespace's init, so bwrap waits for it itself and its exit empties the namespace
    # (bwrap's own init would be left a zombie for the host's init to reap, holding an RLIMIT_NPROC slot)
    args = [probe.path, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--as-pid-1"]
    if probe.has_disable_userns:
        args += ["--disable-userns"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):  # merged /usr: keep the symlink
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    for host in ("/etc/alternatives", "/etc/ld.so.cache", *binds):  # alternatives/ld.so.cache: native libraries
        args += ["--ro-bind-try", host, host]
    # a fresh /dev is a writable tmpfs without a size cap: make it read-only (device nodes stay usable)
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    if probe.has_size:
        args += ["--size", str(tmp_bytes)]
    args += ["--tmpfs", "/tmp"]
    if code is not None:
        args += ["--ro-bind", code, "/code", "--ro-bind", harness, "/harness/harness.py"]
    # the root is a writable tmpfs without a size cap too
    args += ["--remount-ro", "/", "--chdir", "/tmp"]
    return args


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


# ----------------------------------------------------------------------------------------------------- sandbox

class Sandbox:
    """One isolated child running the harness on one submission's files; see the module docstring."""

    def __init__(
        self, files: dict[str, str], limits: Limits, *, harness: Path = HARNESS, slot: int = 0,
        mode: str | None = None
    ) -> None:
        mode = mode or os.environ.get("GRADER_SANDBOX") or "auto"
        if mode not in MODES:
            raise SandboxError(f"unknown sandbox mode {mode!r} (GRADER_SANDBOX): use one of {', '.join(MODES)}")
        self.limits = limits
        self._uid: int | None = None
        self._release_slot: Callable[[], object] = lambda: None
        if os.geteuid() == 0:
            slot, lock = _lease_slot(slot)
            # released by close(), or when a sandbox that failed to set up is dropped
            self._release_slot = weakref.finalize(self, os.close, lock)
            self._uid = UID_BASE + slot
            _check_uid_unused(self._uid)
        self._python, binds = _interpreter(self._uid)
        self._bwrap = _BwrapProbe(None, f"GRADER_SANDBOX={mode}")
        if mode != "rlimits":
            self._bwrap = _probe_bwrap(self._uid, self._python, binds)
            if self._bwrap.path is None and mode == "bwrap":
                raise SandboxError(f"GRADER_SANDBOX=bwrap but {self._bwrap.reason}")
        self._proc: subprocess.Popen | None = None
        self._info_fd: int | None = None  # bwrap --info-fd: tells the host pid of the harness (the namespace's PID 1)
        self._stderr: IO[bytes] | None = None
        self._buffer = bytearray()
        self._used = 0.0
        self._closed = False
        self._base = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        # a forgotten close() still removes the student's files, at garbage collection or exit at the latest
        self._remove_folder = weakref.finalize(self, shutil.rmtree, str(self._base), ignore_errors=True)
        try:
            self._code = self._base / "code"
            self._harness = self._base / "harness.py"
            self._work = self._base / "work"  # cwd without bwrap (with bwrap: the private /tmp)
            self._prepare_files(files, Path(harness))
            nproc, nproc_warning = self._process_limit()
        except BaseException:
            self._remove_folder()
            raise
        self._rlimits = _rlimits(limits, nproc)
        tmp_bytes = max(4 * limits.file_size_bytes, MIN_TMP_BYTES)
        if self._bwrap.path:
            self._command = _bwrap_args(self._bwrap, self._python, binds, str(self._code), str(self._harness),
                                        tmp_bytes)
            self._env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": "/tmp"}
        else:
            self._command = []
            self._env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": str(self._work), "TMPDIR": str(self._work)}
        self.isolation = self._describe_isolation(nproc_warning)

    # ---- setup

    def _prepare_files(self, files: dict[str, str], harness: Path) -> None:
        """Write CODE_DIR and the harness; as root make them readable, not writable, by the slot uid only."""
        self._code.mkdir()
        for rel, text in files.items():
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
                raise ValueError(f"unsafe file path in submission: {rel!r}")
            target = self._code.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        shutil.copyfile(harness, self._harness)
        if self._uid is None:
            return
        os.chown(self._base, 0, self._uid)
        os.chmod(self._base, 0o710)
        for folder, _dirs, names in os.walk(self._code):
            os.chown(folder, 0, self._uid)
            os.chmod(folder, 0o750)
            for name in names:
                os.chown(os.path.join(folder, name), 0, self._uid)
                os.chmod(os.path.join(folder, name), 0o640)
        os.chown(self._harness, 0, self._uid)
        os.chmod(self._harness, 0o640)
        if not _reachable(str(self._harness), self._uid, self._uid, 4):
            raise SandboxError(
                f"uid {self._uid} cannot reach the temporary folder {self._base}: point TMPDIR at a folder whose"
                " parents are world-traversable (e.g. /tmp)"
            )

    def _process_limit(self) -> tuple[int, str]:
        """RLIMIT_NPROC for the child, and a warning when that limit is shared with the grader's own uid."""
        extra = BWRAP_OVERHEAD_PROCESSES if self._bwrap.path else 0
        if self._uid is not None:
            return self.limits.processes + extra, ""
        uid = os.getuid()
        processes = _processes_of(uid)
        if processes is None:
            return 0, "rlimit-processes: not applied (cannot count the processes of this uid to set it fairly)"
        running = len(processes)
        return self.limits.processes + extra + running, (
            f"rlimit-processes: shared with the grader's uid {uid}, so set to processes + the {running} it"
            " already runs; run the grader as root to give each sandbox its own uid"
        )

    def _describe_isolation(self, nproc_warning: str) -> dict:
        layers: list[str] = []
        warnings: list[str] = []
        if self._bwrap.path:
            layers += ["bubblewrap", "pid-namespace", "no-network", "read-only-filesystem", "private-tmp"]
            if not self._bwrap.has_size:
                warnings.append(f"private-tmp: no size cap (bubblewrap {self._bwrap.path} lacks --size)")
            if not self._bwrap.has_disable_userns:
                warnings.append("bubblewrap lacks --disable-userns: sandboxed code may create user namespaces")
        else:
            warnings += [
                f"bubblewrap: not used ({self._bwrap.reason})",
                "pid-namespace: none; processes are killed by session"
                + (" and by uid" if self._uid is not None else ", so ones that call setsid() can escape"),
                "no-network: none; sandboxed code can open network connections",
                "read-only-filesystem: none; every file readable by the sandbox uid is visible (make the course's"
                " reference and hidden tests unreadable to others: chmod -R o-rwx)",
                "private-tmp: none; a private working folder is the cwd/HOME/TMPDIR but /tmp is shared"
                " and there is no size cap beyond RLIMIT_FSIZE per file",
            ]
        if self._uid is not None:
            layers += ["no-capabilities", "unprivileged-uid"]
        else:
            layers.append("no-capabilities")
            warnings.append(f"unprivileged-uid: the sandbox runs as the grader's own uid {os.getuid()} (the grader"
                            " is not root, so it cannot switch to a dedicated uid)")
        applied = {which for which, _ in self._rlimits}
        layers += [name for which, name in RLIMIT_LAYERS if which in applied]
        if resource.RLIMIT_AS not in applied:
            warnings.append("rlimit-memory: not applied (macOS does not enforce RLIMIT_AS)")
        if nproc_warning:
            warnings.append(nproc_warning)
        layers += ["new-session", "clean-environment"]
        return {"layers": layers, "warnings": warnings}

    # ---- public API

    def call(self, cmd: str, args: dict, timeout: float | None = None,
             meanwhile: Callable[[], object] | None = None) -> CallResult:
        """Send one request and wait (at most timeout, capped by the budget left) for its one-line reply.

        `meanwhile` runs in this process once the request is on its way, while the child computes (the
        grader computes the reference's answer there); its time counts towards the timeout."""
        if self._closed:
            raise RuntimeError("call() on a closed Sandbox")
        total = self.limits.total_timeout_s
        left = total - self._used
        if left <= 0:
            return CallResult("timeout", detail=f"submission time limit ({total:g} s) used up")
        wanted = self.limits.call_timeout_s if timeout is None else timeout
        limit = min(wanted, left)
        request = (json.dumps({"cmd": cmd, "args": args}) + "\n").encode()
        started = time.monotonic()
        try:
            return self._exchange(request, started + limit, meanwhile)
        except _Timeout:
            self._shutdown(grace=0)
            if limit < wanted:
                return CallResult("timeout", detail=f"submission time limit ({total:g} s) used up")
            return CallResult("timeout", detail=f"no reply within {limit:g} s")
        except _Crash as crash:
            return CallResult("crashed", detail=str(crash))
        finally:
            self._used += time.monotonic() - started

    @property
    def time_left(self) -> float:
        """Seconds left of the submission's total time budget (limits.total_timeout_s)."""
        return self.limits.total_timeout_s - self._used

    def start(self) -> None:
        """Start the child now rather than at the first call, so that it boots while the caller does other work."""
        if self._proc is None and not self._closed:
            self._start()

    def close(self) -> None:
        """Kill everything the sandbox started and remove its temporary folder; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._shutdown(grace=0)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._remove_folder()
        self._release_slot()  # frees the slot's uid for the next sandbox, of any grader process

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def last_stderr(self) -> str:
        """The last lines the current (or last) child wrote to stderr: a debugging aid, written by student code."""
        if self._stderr is None:
            return ""
        fd = self._stderr.fileno()
        size = os.fstat(fd).st_size
        tail = os.pread(fd, 64 << 10, max(0, size - (64 << 10)))
        return "\n".join(tail.decode("utf-8", "replace").splitlines()[-STDERR_TAIL_LINES:])

    # ---- the child

    def _exchange(self, request: bytes, deadline: float, meanwhile: Callable[[], object] | None) -> CallResult:
        if self._proc is None:
            self._start()
        else:
            self._check_idle()
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        in_fd, out_fd = self._proc.stdin.fileno(), self._proc.stdout.fileno()
        pending = memoryview(request)
        if meanwhile is not None:
            try:  # a request fits the pipe's buffer: it is usually all written here, before `meanwhile`
                pending = pending[os.write(in_fd, pending):]
            except (BlockingIOError, BrokenPipeError):
                pass
            meanwhile()
        with selectors.DefaultSelector() as selector:
            if pending:
                selector.register(in_fd, selectors.EVENT_WRITE)
            selector.register(out_fd, selectors.EVENT_READ)
            scanned = 0
            while (end := self._buffer.find(b"\n", scanned)) < 0:
                scanned = len(self._buffer)
                if scanned > MAX_REPLY_BYTES:
                    self._crash(0, TOO_LONG)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout
                for key, _ in selector.select(remaining):
                    if key.fd == in_fd:
                        try:
                            pending = pending[os.write(in_fd, pending):]
                        except BrokenPipeError:  # the child is gone: EOF on its stdout will say how
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(in_fd)
                    else:
                        chunk = os.read(out_fd, 1 << 20)
                        if not chunk:
                            reason = "closed its output without replying"
                            self._crash(EXIT_GRACE_S, reason, exit_says_it_all=True)
                        self._buffer += chunk
        if end > MAX_REPLY_BYTES:
            self._crash(0, TOO_LONG)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]  # anything left over is unrequested output: _check_idle() catches it
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):
            self._crash(0, "reply was not valid JSON")
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            self._crash(0, "reply was not a JSON object with a boolean 'ok'")
        if reply["ok"]:
            return CallResult("ok", value=reply.get("value"))
        if not isinstance(reply.get("error"), dict):
            self._crash(0, "error reply without an 'error' object")
        return CallResult("error", error=reply["error"])

    def _check_idle(self) -> None:
        """Between calls the child must be silent; output or EOF now means it misbehaved or died."""
        assert self._proc is not None and self._proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout.fileno(), selectors.EVENT_READ)
            readable = bool(selector.select(0))
        if self._buffer or readable:
            if not self._buffer and not os.read(self._proc.stdout.fileno(), 1):
                self._crash(EXIT_GRACE_S, "the child exited between calls")
            self._crash(0, "the child wrote output nobody asked for between calls")

    def _crash(self, grace: float, reason: str, *, exit_says_it_all: bool = False) -> NoReturn:
        """Stop the child and raise _Crash(detail); how the child exited, if it did so by itself, is added."""
        exited = self._shutdown(grace)
        if not exited:
            raise _Crash(reason)
        raise _Crash(exited if exit_says_it_all else f"{reason}: {exited}")

    def _start(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
        # stderr goes to an unlinked file, never a pipe that must be drained; RLIMIT_FSIZE caps it
        self._stderr = tempfile.TemporaryFile(dir=self._base)
        pass_fds: tuple[int, ...] = ()
        if self._bwrap.path:
            self._info_fd, info_w = os.pipe()
            pass_fds = (info_w,)
            command = self._command + ["--info-fd", str(info_w), "--", self._python, "-I", "-S",
                                       "/harness/harness.py", "/code",
                                       str(self.limits.output_bytes)]
            cwd = "/"  # bwrap starts as the slot uid: it needs a cwd that uid can enter
        else:
            self._reset_work()
            command = [self._python, "-I", "-S", str(self._harness), str(self._code), str(self.limits.output_bytes)]
            cwd = str(self._work)
        try:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=cwd,
                env=self._env, pass_fds=pass_fds, start_new_session=True, preexec_fn=self._apply_rlimits,
                **_uid_kwargs(self._uid),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            if self._info_fd is not None:
                os.close(self._info_fd)
                self._info_fd = None
            raise SandboxError(f"cannot start the sandbox ({command[0]}): {exc}") from exc
        finally:
            for fd in pass_fds:
                os.close(fd)
        self._buffer.clear()
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)

    def _apply_rlimits(self) -> None:
        """Runs in the child between fork and exec (after the uid drop), so it does nothing but setrlimit."""
        for which, limit in self._rlimits:
            resource.setrlimit(which, limit)

    def _reset_work(self) -> None:
        """Without bwrap the working folder is the child's private /tmp: empty it for every new child."""
        shutil.rmtree(self._work, ignore_errors=True)
        self._work.mkdir(mode=0o700)
        if self._uid is not None:
            os.chown(self._work, self._uid, self._uid)

    def _shutdown(self, grace: float) -> str:
        """Let the child exit by itself for up to `grace` seconds, then kill everything it started.

        Returns how it ended if it ended by itself ("exited with code 3", ...), else ""."""
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        ended = _reap(proc, grace)
        stopped = ended is not None
        if not stopped and self._info_fd is not None and self._kill_sandbox_init(proc.pid):
            stopped = _reap(proc, KILL_WAIT_S) is not None  # bwrap exits once its namespace is empty
        if not stopped or not self._bwrap.path:
            try:  # the session's process group: without a PID namespace this is how children are reached
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if not stopped:
                _reap(proc, KILL_WAIT_S)
        if self._uid is not None:  # whatever escaped the group (setsid) or the namespace
            _kill_all_of_uid(self._uid)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        if self._info_fd is not None:
            os.close(self._info_fd)
            self._info_fd = None
        self._buffer.clear()
        return "" if ended is None else self._describe_exit(*ended)

    def _kill_sandbox_init(self, bwrap_pid: int) -> bool:
        """SIGKILL the namespace's PID 1 (the harness), whose host pid bwrap wrote to --info-fd after clone().

        With it dies everything in the namespace. False if it could not be killed this way."""
        assert self._info_fd is not None
        data = b""
        deadline = time.monotonic() + EXIT_GRACE_S
        with selectors.DefaultSelector() as selector:
            selector.register(self._info_fd, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0 and selector.select(remaining):
                chunk = os.read(self._info_fd, 4096)
                if not chunk:
                    return False  # bwrap died before clone(): there is no namespace
                data += chunk
                try:
                    init = int(json.loads(data)["child-pid"])
                    break
                except (ValueError, KeyError, TypeError):
                    continue
            else:
                return False
        # pin the process, then make sure it is still bwrap's child (bwrap is unreaped, so its pid is ours)
        try:
            pidfd = os.pidfd_open(init)
        except OSError:  # gone already, or a kernel before 5.3 (then --die-with-parent does it, a bit later)
            return False
        try:
            with open(f"/proc/{init}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
            if parent != bwrap_pid:
                return False
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            return True
        except (OSError, IndexError, ValueError):
            return False
        finally:
            os.close(pidfd)

    def _describe_exit(self, status: int, maxrss_kib: int) -> str:
        code = os.waitstatus_to_exitcode(status)
        if self._bwrap.path and 128 < code < 128 + 65:  # bwrap reports a signal death as 128 + signal
            code = -(code - 128)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            text = f"the process was killed by {name}"
            if -code == signal.SIGXCPU:
                text += " (CPU time limit)"
        else:
            text = f"exited with code {code}"
        if maxrss_kib * 1024 >= (self.limits.memory_mb << 20) // 2:
            text += f"; memory limit ({self.limits.memory_mb} MiB) exceeded?"
        return text


def _rlimits(limits: Limits, nproc: int) -> list[tuple[int, tuple[int, int]]]:
    """(resource, (soft, hard)) for the child, never above the hard limits this process already has."""
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


def _reap(proc: subprocess.Popen, timeout: float) -> tuple[int, int] | None:
    """Wait up to timeout for the child; (wait status, max RSS in KiB incl. reaped descendants) or None."""
    deadline = time.monotonic() + timeout
    pause = 0.0005
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits for it again
            maxrss = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
            return status, maxrss
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _state_folder() -> Path:
    """Root's folder for slot locks and the probe cache, shared by every grader process on the machine."""
    folder = Path(LOCK_DIR if os.path.isdir(LOCK_DIR) else tempfile.gettempdir()) / "micrograd-grader"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _lease_slot(preferred: int) -> tuple[int, int]:
    """The first free slot from `preferred` on, held by an flock until the sandbox closes.

    Slots must be unique on the whole machine, not just in one grader process: closing a sandbox kills every
    process of its uid, which would kill another grader's sandbox of the same slot (two TAs, CI and a batch)."""
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
    try:
        account = pwd.getpwuid(uid).pw_name
    except KeyError:
        return
    raise SandboxError(f"uid {uid} (sandbox slot) belongs to the account {account!r}; use another slot")
