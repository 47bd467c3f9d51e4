"""The Sandbox: one isolated child process running the harness on one submission's files, its lifecycle
(start, stop, close, killing everything it started) and the exchange of requests, questions and replies."""
from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Mapping, NoReturn

from grader.answers import Refused
from grader.course import Limits
from grader.replies import Shape
from grader.sandbox.cgroups import CGROUP_OVERHEAD_PROCESSES, _Cgroup, _cgroup_homes
from grader.sandbox.child import (
    MIN_TMP_BYTES,
    RLIMIT_LAYERS,
    TMP_INODES,
    _bwrap_args,
    _ChildSetup,
    _rlimits,
    _tmpfs_mounter,
)
from grader.sandbox.common import CLEAN_PATH, KILL_WAIT_S, UID_BASE, WINDOWS, SandboxError, _is_root, _reachable
from grader.sandbox.pipes import _SelectPipes, _ThreadPipes, child_pipes
from grader.sandbox.probe import _bwrap_for, _interpreter, _mode
from grader.sandbox.protocol import (MAX_QUESTIONS, MAX_REPLY_BYTES, TOO_LONG, CallResult, _typed_reply,
                                     timed_out)
from grader.sandbox.slots import _check_uid_unused, _kill_all_of_uid, _lease_slot, _processes_of, _slot_base

HARNESS = Path(__file__).parent.parent / "harness.py"  # grader/harness.py: the script every sandbox runs
STDERR_TAIL_LINES = 20
BWRAP_OVERHEAD_PROCESSES = 1  # bwrap itself counts against RLIMIT_NPROC
EXIT_GRACE_S = 1.0  # after EOF on the reply pipe: how long the child may take to exit by itself


_open_sandboxes: weakref.WeakSet[Sandbox] = weakref.WeakSet()  # this process's, until closed: close_all_sandboxes


def close_all_sandboxes() -> None:
    """Kill what every sandbox of this process started and remove their files, now: what a batch worker told to
    stop does before it exits, from a signal handler that may have interrupted anything, a close() included."""
    for box in list(_open_sandboxes):
        box._abort()


class _Timeout(Exception):
    pass


class _Crash(Exception):
    pass


class Sandbox:
    """One isolated child running the harness on one submission's files; see the module docstring."""

    def __init__(
        self, files: dict[str, str], limits: Limits, *, harness: Path = HARNESS, slot: int = 0,
        mode: str | None = None, harness_args: tuple[str, ...] = (), harness_files: Mapping[str, Path] | None = None
    ) -> None:
        mode = _mode(mode)
        self.limits = limits
        self._harness_args = list(harness_args)  # after CODE_DIR OUTPUT_LIMIT on the harness's command line
        self._uid: int | None = None
        self._release_slot: Callable[[], object] = lambda: None
        if _is_root():
            slot, lock = _lease_slot(slot + _slot_base())
            # released by close(), or when a sandbox that failed to set up is dropped
            self._release_slot = weakref.finalize(self, os.close, lock)
            self._uid = UID_BASE + slot
            _check_uid_unused(self._uid)
        self.slot = slot  # as root: the slot leased (uid UID_BASE + slot, cgroup micrograd-grader-SLOT)
        python = _interpreter(self._uid)
        self._python = python.executable
        self._bwrap = _bwrap_for(mode, self._uid, python)
        if self._bwrap.path is None and mode == "bwrap":
            raise SandboxError(f"GRADER_SANDBOX=bwrap but {self._bwrap.reason}")
        self._proc: subprocess.Popen | None = None
        self._pipes: _SelectPipes | _ThreadPipes | None = None
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
            self._harness = self._base / "harness"  # the harness script and harness_files: /harness in the sandbox
            self._work = self._base / "work"  # cwd without bwrap (with bwrap: the private /tmp)
            self._prepare_files(files, {"harness.py": Path(harness), **(harness_files or {})})
            nproc, nproc_warning = self._process_limit()
        except BaseException:
            self._remove_folder()
            raise
        self._rlimits = _rlimits(limits, nproc)
        tmp_bytes = max(4 * limits.file_size_bytes, MIN_TMP_BYTES)
        mount = None
        if self._bwrap.path:
            tmp_mount = None
            if self._bwrap.tmp_mount and self._uid is not None:
                tmp_mount = str(self._base / "tmp")  # the child mounts its own inode-capped tmpfs here
                os.mkdir(tmp_mount)
                mount = _tmpfs_mounter(tmp_mount, tmp_bytes, TMP_INODES, self._uid)
            self._command = _bwrap_args(self._bwrap, python, str(self._code), str(self._harness), tmp_bytes,
                                        tmp_mount)
            self._env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": "/tmp"}
        else:
            self._command = []
            self._env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": str(self._work), "TMPDIR": str(self._work)}
            if WINDOWS:  # Python does not start there without SYSTEMROOT; TEMP is its TMPDIR
                self._env.update(SYSTEMROOT=os.environ.get("SYSTEMROOT", r"C:\Windows"), TEMP=str(self._work),
                                 TMP=str(self._work))
        self._cgroup: _Cgroup | None = None
        if self._uid is not None and (homes := _cgroup_homes()):
            try:
                self._cgroup = _Cgroup(homes, f"micrograd-grader-{slot}", limits.memory_mb << 20,
                                       nproc + CGROUP_OVERHEAD_PROCESSES)
            except OSError as exc:
                self._remove_folder()
                raise SandboxError(f"cannot set up the sandbox's cgroup: {exc}") from exc
        # removed by close(), or at garbage collection or exit at the latest (before the slot is released)
        self._remove_cgroup = weakref.finalize(self, self._cgroup.remove) if self._cgroup else lambda: None
        self._setup = _ChildSetup(self._uid, self._cgroup.joins if self._cgroup else (), mount, self._rlimits)
        self._oom_kills = 0  # the cgroup's count when the current child started
        self.isolation = self._describe_isolation(nproc_warning)
        _open_sandboxes.add(self)

    # ---- setup

    def _prepare_files(self, files: dict[str, str], harness: Mapping[str, Path]) -> None:
        """Write CODE_DIR and the harness folder; as root make them readable, not writable, by the slot uid only."""
        self._code.mkdir()
        for rel, text in files.items():
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
                raise ValueError(f"unsafe file path in submission: {rel!r}")
            target = self._code.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        self._harness.mkdir()
        for name, source in harness.items():
            shutil.copyfile(source, self._harness / name)
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
        os.chmod(self._harness, 0o750)
        for name in harness:
            os.chown(self._harness / name, 0, self._uid)
            os.chmod(self._harness / name, 0o640)
        if not _reachable(str(self._harness / "harness.py"), self._uid, self._uid, 4):
            raise SandboxError(
                f"uid {self._uid} cannot reach the temporary folder {self._base}: point TMPDIR at a folder whose"
                " parents are world-traversable (e.g. /tmp)"
            )

    def _process_limit(self) -> tuple[int, str]:
        """RLIMIT_NPROC for the child, and a warning when that limit is shared with the grader's own uid."""
        extra = BWRAP_OVERHEAD_PROCESSES if self._bwrap.path else 0
        if WINDOWS:  # no rlimits there: the isolation's warnings say so
            return 0, ""
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
            killed = ("one by one (Windows has no process groups), so the ones it starts itself can outlive it"
                      if WINDOWS else "by session"
                      + (" and by uid" if self._uid is not None else ", so ones that call setsid() can escape"))
            warnings += [
                f"bubblewrap: not used ({self._bwrap.reason})",
                f"pid-namespace: none; processes are killed {killed}",
                "no-network: none; sandboxed code can open network connections",
                "read-only-filesystem: none; every file readable by the sandbox uid is visible (make the course's"
                " reference and hidden tests unreadable to others: chmod -R o-rwx)",
                "private-tmp: none; a private working folder is the cwd/HOME/TMPDIR but /tmp is shared"
                " and there is no size cap beyond RLIMIT_FSIZE per file",
            ]
        if self._uid is not None:
            layers += ["no-capabilities", "unprivileged-uid"]
        elif WINDOWS:
            warnings.append("unprivileged-uid: the sandbox runs as the grader's own user")
        else:
            layers.append("no-capabilities")
            warnings.append(f"unprivileged-uid: the sandbox runs as the grader's own uid {os.getuid()} (the grader"
                            " is not root, so it cannot switch to a dedicated uid)")
        if self._cgroup is not None:
            layers += self._cgroup.layers
        elif not WINDOWS:
            warnings.append("cgroup-memory, cgroup-pids: none (they need root and writable memory and pids cgroups);"
                            " memory and processes are limited per process, not for the sandbox as a whole")
        if self._setup.mount is not None:
            layers.append("tmpfs-inodes")
        elif self._bwrap.path:
            warnings.append("tmpfs-inodes: none; the private /tmp has no cap on its number of files (it needs a"
                            " grader running as root), so its inodes can take much kernel memory")
        applied = {which for which, _ in self._rlimits}
        layers += [name for which, name in RLIMIT_LAYERS if which in applied]
        if WINDOWS:
            warnings.append("rlimits: none on Windows; no memory, CPU, process or file size limit, only the time limit")
        elif "rlimit-memory" not in layers:
            warnings.append("rlimit-memory: not applied (macOS does not enforce RLIMIT_AS)")
        if nproc_warning:
            warnings.append(nproc_warning)
        layers += ["clean-environment"] if WINDOWS else ["new-session", "clean-environment"]
        return {"layers": layers, "warnings": warnings}

    # ---- public API

    def call(self, cmd: str, args: dict, *, shape: Shape, timeout: float | None = None,
             meanwhile: Callable[[], object] | None = None,
             answer: Callable[[dict], dict] | None = None) -> CallResult:
        """Send one request and wait (at most timeout, capped by the budget left) for its one-line reply.

        The reply's value is checked against `shape` (grader/replies.py) before it is returned. `meanwhile` runs
        in this process once the request is on its way, while the child computes (the grader computes the
        reference's answer there); its time counts towards the timeout. `answer` answers the questions the child
        may ask before it replies (grader/answers.py); without it every one is refused."""
        if self._closed:
            raise RuntimeError("call() on a closed Sandbox")
        total = self.limits.total_timeout_s
        left = total - self._used
        if left <= 0:
            return timed_out("timeout.budget", total)
        wanted = self.limits.call_timeout_s if timeout is None else timeout
        limit = min(wanted, left)
        request = (json.dumps({"cmd": cmd, "args": args}) + "\n").encode()
        started = time.monotonic()
        try:
            return self._exchange(request, started + limit, meanwhile, shape, answer)
        except _Timeout:
            self._shutdown(grace=0)
            if limit < wanted:
                return timed_out("timeout.budget", total)
            return timed_out("timeout.call", limit)
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

    def stop(self) -> None:
        """Kill the child and everything it started (its private /tmp goes with it); the next call starts afresh."""
        if not self._closed:
            self._shutdown(grace=0)

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
        self._remove_cgroup()
        self._release_slot()  # frees the slot's uid for the next sandbox, of any grader process
        _open_sandboxes.discard(self)  # only now: close_all_sandboxes finishes a close() it interrupts

    def _abort(self) -> None:
        """What close() does, in a form that may interrupt anything (close() itself) and be interrupted: every
        step can run twice. The slot is released when the process exits."""
        self._shutdown(grace=0)  # nothing if a close() or stop() it interrupted has begun it: the sweeps below
        if self._cgroup is not None:
            self._cgroup.remove()
        if self._uid is not None:
            _kill_all_of_uid(self._uid)
        shutil.rmtree(self._base, ignore_errors=True)

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

    def _exchange(self, request: bytes, deadline: float, meanwhile: Callable[[], object] | None, shape: Shape,
                  answer: Callable[[dict], dict] | None) -> CallResult:
        if self._proc is None:
            self._start()
        else:
            self._check_idle()
        asked = 0
        while True:
            line = self._next_line(request, deadline, meanwhile)
            request, meanwhile = b"", None
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                self._crash(0, "reply was not valid JSON")
            if not (isinstance(message, dict) and "ask" in message):
                return _typed_reply(message, shape, self.limits.output_bytes)
            asked += 1
            if asked > MAX_QUESTIONS:
                self._crash(0, f"asked the grader more than {MAX_QUESTIONS} questions in one call")
            try:
                if answer is None:
                    raise Refused("this request may not ask the grader anything")
                said = answer(message)
            except Refused as refused:
                said = {"refused": str(refused)}
            request = (json.dumps(said) + "\n").encode()

    def _next_line(self, request: bytes, deadline: float, meanwhile: Callable[[], object] | None) -> bytes:
        """Write `request` (may be empty) and read the child's next line, within the deadline."""
        assert self._pipes is not None
        self._pipes.send(request)  # a request fits the pipe's buffer: it is usually all written here
        if meanwhile is not None:
            meanwhile()
        scanned = 0
        while (end := self._buffer.find(b"\n", scanned)) < 0:
            scanned = len(self._buffer)
            if scanned > MAX_REPLY_BYTES:
                self._crash(0, TOO_LONG)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            chunk = self._pipes.receive(remaining)
            if chunk == b"":
                self._crash(EXIT_GRACE_S, "closed its output without replying", exit_says_it_all=True)
            self._buffer += chunk or b""
        if end > MAX_REPLY_BYTES:
            self._crash(0, TOO_LONG)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]  # anything left over is unrequested output: _check_idle() catches it
        return line

    def _check_idle(self) -> None:
        """Between calls the child must be silent; output or EOF now means it misbehaved or died."""
        assert self._pipes is not None
        chunk = None if self._buffer else self._pipes.receive(0)
        if chunk == b"":
            self._crash(EXIT_GRACE_S, "the child exited between calls")
        if self._buffer or chunk:
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
        self._oom_kills = self._cgroup.oom_kills() if self._cgroup else 0
        pass_fds: tuple[int, ...] = ()
        if self._bwrap.path:
            self._info_fd, info_w = os.pipe()
            pass_fds = (info_w,)
            command = self._command + ["--info-fd", str(info_w), "--", self._python, "-I", "-S",
                                       "/harness/harness.py", "/code",
                                       str(self.limits.output_bytes), *self._harness_args]
            cwd = "/"  # bwrap starts as the slot uid: it needs a cwd that uid can enter
        else:
            self._reset_work()
            command = [self._python, "-I", "-S", str(self._harness / "harness.py"), str(self._code),
                       str(self.limits.output_bytes),
                       *self._harness_args]
            cwd = str(self._work)
        try:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=cwd,
                env=self._env, pass_fds=pass_fds, start_new_session=not WINDOWS,
                preexec_fn=None if WINDOWS else self._setup,  # Windows: no fork, so nothing runs before exec
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
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._pipes = child_pipes(self._proc.stdin, self._proc.stdout)

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
        if WINDOWS:
            if not stopped:  # no process groups: the child alone
                proc.kill()
        elif not stopped or not self._bwrap.path:
            try:  # the session's process group: without a PID namespace this is how children are reached
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not stopped:
            _reap(proc, KILL_WAIT_S)
        if self._cgroup is not None:  # whatever escaped the group (setsid) or the namespace, whatever its uid
            self._cgroup.kill()
        if self._uid is not None:  # the same, by uid: also what might have left the cgroup
            _kill_all_of_uid(self._uid)
        if self._pipes is not None:
            self._pipes.close()
            self._pipes = None
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

    def _describe_exit(self, code: int, maxrss_kib: int) -> str:
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
        if self._cgroup is not None and self._cgroup.oom_kills() > self._oom_kills:
            text += f"; memory limit ({self.limits.memory_mb} MiB for all its processes) exceeded"
        elif maxrss_kib * 1024 >= (self.limits.memory_mb << 20) // 2:
            text += f"; memory limit ({self.limits.memory_mb} MiB) exceeded?"
        return text


def isolation_line(isolation: dict, lang: str = "en") -> str:
    """What isolated student code, in one line (`grader check` says it; the report's `isolation` has the rest)."""
    from grader.messages import text

    layers = isolation["layers"]
    if "bubblewrap" in layers:
        return text("isolation.bubblewrap", lang)
    limits = text("isolation.time_and_memory" if "rlimit-memory" in layers else "isolation.time", lang)
    unused = next((w for w in isolation["warnings"] if w.startswith("bubblewrap: ")), "bubblewrap: not used")
    return text("isolation.plain", lang, limits=limits, unused=unused)


def _reap(proc: subprocess.Popen, timeout: float) -> tuple[int, int] | None:
    """Wait up to timeout for the child; (exit code, max RSS in KiB incl. reaped descendants) or None."""
    if WINDOWS:  # no wait4: the memory it used is not known
        try:
            return proc.wait(timeout), 0
        except subprocess.TimeoutExpired:
            return None
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
            return proc.returncode, maxrss
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
