"""The installed course is invisible to student code in every install layout.

A "probe" submission walks the whole filesystem it can see, looking for the course (reference/, autotests/,
grader/_course, solution regions); if it finds a reference engine.py it execs it and uses its Value. Graded
where the grader is installed (1) editable (this checkout), (2) into a world-readable venv made from
/usr/bin/python3, (3) into the system's site-packages (root's `/usr/bin/python3 -m pip install
--break-system-packages`, i.e. /usr/local/lib/python3.11/dist-packages on Debian: the grader only, its
dependencies in a separate --target folder on PYTHONPATH; uninstalled afterwards, so the machine's Python is left
as it was) and (4) by the Gradescope bundle's setup.sh, it must score 0 in `ops`
(its own engine does not import) and say that its walk ended without finding anything.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

import grader.sandbox.probe
from grader.course import Limits
from grader.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "submissions" / "micrograd" / "alice_correct"
SYSTEM_PYTHON = Path("/usr/bin/python3")
TIMEOUT = 600
needs_system_python = pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 to install into")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="installs into /opt and /usr/local need root")

# Prepended to alice's (correct) engine.py. Bounded: 1.2 s and 200,000 entries, well within the load call's limit.
PROBE = r'''
import os as _os, time as _time
WALK_ROOT = "/"
_OWN = _os.path.dirname(_os.path.abspath(globals().get("__file__", "/nonexistent/x")))  # the probe's own files
_MARK = "### BEGIN " + "SOLUTION"  # not spelled out here: this file must not look like a reference


def _course_files(top):
    """(files of the course seen, a reference engine's source or None, entries walked, walk complete)."""
    started, walked, found, engine = _time.monotonic(), 0, [], None
    for folder, subfolders, files in _os.walk(top):
        subfolders[:] = [s for s in subfolders if _os.path.join(folder, s) not in ("/proc", "/sys", "/dev", _OWN)]
        walked += len(files) + len(subfolders)
        if walked > 200_000 or _time.monotonic() - started > 1.2:
            return found, engine, walked, False
        for name in files:
            path = _os.path.join(folder, name)
            suspicious = any(part in path for part in ("_course", "autotests", "reference", "grader"))
            if suspicious and ("_course" in path or "autotests" in path or "/reference/" in path):
                found.append(path)
            if name.endswith(".py") and (suspicious or name in ("engine.py", "nn.py", "train.py")):
                try:
                    with open(path, encoding="utf-8", errors="replace") as f:
                        text = f.read(1 << 20)
                except OSError:
                    continue
                if _MARK in text or ("autotests" in path and "def test_" in text):
                    found.append(path)
                    if name == "engine.py" and "class Value" in text:
                        engine = text
    return found, engine, walked, True


_found, _engine, _walked, _complete = _course_files(WALK_ROOT)
if _engine is not None:
    exec(_engine, globals())  # the reference's Value: full marks in ops, if the sandbox let us see it
else:
    raise ImportError(f"probe: walked {_walked} entries, complete={_complete}, course files: {sorted(_found)[:5]}")
'''


def probe_submission(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("nn.py", "train.py"):
        shutil.copy(ALICE / name, folder / name)
    (folder / "engine.py").write_text(PROBE + "\n" + (ALICE / "engine.py").read_text(encoding="utf-8"))
    return folder


def clean_env(**extra: str) -> dict[str, str]:
    """A user's environment: no GRADER_COURSE, no PYTHONPATH into this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_COURSE", "PYTHONPATH", "PYTHONHOME",
                                                             "VIRTUAL_ENV", "GRADER_SANDBOX", "GRADER_BWRAP")}
    env.update(PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    assert proc.returncode == 0, f"{command}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc


def assert_probe_saw_nothing(report: dict) -> None:
    ops = [t for t in report["tests"] if t["group"] == "ops"]
    assert ops and all(t["score"] == 0 for t in ops), [t["feedback"] for t in ops if t["score"]]
    feedback = " ".join(t["feedback"] or "" for t in ops)
    assert "complete=True, course files: []" in feedback, feedback[:2000]
    assert "bubblewrap" in report["isolation"]["layers"]


def grade_with(command: list[str], probe: Path, cwd: Path, env: dict[str, str]) -> dict:
    proc = run(command + ["grade", str(probe), "--format", "json"], cwd=cwd, env=env)
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """This checkout's wheel (it carries the course in grader/_course), built once per session."""
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)])
    (built,) = out.glob("micrograd_grader-*.whl")
    with zipfile.ZipFile(built) as archive:
        assert "grader/_course/reference/micrograd/engine.py" in archive.namelist()
    return built


@pytest.fixture
def world_readable(request) -> Path:
    """A world-readable folder under /opt, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="grader-test-", dir="/opt"))
    folder.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    return folder


def test_probe_finds_the_course_where_it_can_see_it():
    """The probe is a real spy: let it walk this checkout on the host and it finds the reference."""
    scope: dict = {}
    exec(PROBE.split("_found, _engine")[0], scope)
    found, engine, _, complete = scope["_course_files"](str(ROOT / "reference"))
    assert complete and engine is not None and any(p.endswith("reference/micrograd/engine.py") for p in found)


@pytest.mark.slow
def test_editable_install(tmp_path):
    probe = probe_submission(tmp_path / "probe")
    report = grade_with([sys.executable, "-m", "grader"], probe, ROOT, clean_env())
    assert_probe_saw_nothing(report)


@needs_system_python
@needs_root
@pytest.mark.slow
def test_world_readable_venv_made_from_the_system_python(wheel, world_readable, tmp_path):
    venv = world_readable / "venv"
    run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], env=clean_env())
    installed = (venv / "lib" / "python3.11" / "site-packages" / "grader" / "_course" / "reference" / "micrograd"
                 / "engine.py")
    assert list(venv.glob("lib/python3*/site-packages/grader/_course/reference/micrograd/engine.py")), installed
    report = grade_with([str(venv / "bin" / "grader")], probe_submission(tmp_path / "probe"), tmp_path, clean_env())
    assert_probe_saw_nothing(report)


@needs_system_python
@needs_root
@pytest.mark.slow
def test_system_site_packages(wheel, world_readable, tmp_path):
    deps = world_readable / "deps"
    run([str(SYSTEM_PYTHON), "-m", "pip", "install", "-q", "--target", str(deps), str(wheel)], env=clean_env())
    for own in [deps / "grader", *deps.glob("micrograd_grader-*.dist-info")]:
        shutil.rmtree(own)  # the grader itself goes where the system's packages are
    env = clean_env(PYTHONPATH=str(deps))
    system_pip = [str(SYSTEM_PYTHON), "-m", "pip", "--disable-pip-version-check"]
    try:
        run(system_pip + ["install", "-q", "--no-deps", "--break-system-packages", str(wheel)], env=env, cwd=tmp_path)
        where = run([str(SYSTEM_PYTHON), "-c", "import grader; print(grader.__file__)"], env=env, cwd=tmp_path)
        package = Path(where.stdout.strip()).parent
        assert str(package).startswith("/usr/local/lib/")
        assert (package / "_course/reference/micrograd/engine.py").is_file()
        report = grade_with([str(SYSTEM_PYTHON), "-m", "grader"], probe_submission(tmp_path / "probe"), tmp_path,
                            env)
    finally:
        subprocess.run(system_pip + ["uninstall", "-q", "-y", "--break-system-packages", "micrograd-grader"],
                       capture_output=True, timeout=TIMEOUT, env=env, cwd=tmp_path)
    assert_probe_saw_nothing(report)


@needs_system_python
@needs_root
@pytest.mark.slow
def test_gradescope_bundle(world_readable, tmp_path):
    bundle = tmp_path / "autograder.zip"
    run([sys.executable, "-m", "grader", "export", "gradescope", "--assignment", "micrograd", "--out", str(bundle)],
        cwd=ROOT, env=clean_env())
    root = world_readable / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, root / "source"))
            if (info.external_attr >> 16) & 0o777:
                path.chmod((info.external_attr >> 16) & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    env = clean_env(AUTOGRADER_ROOT=str(root), GRADER_SKIP_APT="1", PATH=f"/usr/bin:{os.environ['PATH']}")
    run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env)
    assert list(root.glob("grader-venv/lib/python3*/site-packages/grader/_course/reference/micrograd/engine.py"))
    probe_submission(root / "submission")
    run([str(root / "run_autograder")], cwd=tmp_path, env=env)
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    ops = [t for t in results["tests"] if t["tags"] == ["ops"]]
    assert ops and all(t["score"] == 0 for t in ops)
    assert "complete=True, course files: []" in " ".join(t["output"] for t in ops)


# ------------------------------------------------------------------------- the sandbox's whole file tree

WALK = r'''
import os
found = []
for folder, subfolders, files in os.walk("/"):
    subfolders[:] = [s for s in subfolders if os.path.join(folder, s) not in ("/proc", "/sys", "/dev")]
    for name in files:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                text = f.read(4 << 20).decode("utf-8", "replace")
        except OSError:
            continue
        found.append([path, sorted(line for line in SECRET if line in text)])
'''


def solution_lines() -> set[str]:
    """Lines of each assignment's solution regions (reference/NAME/*.py), stripped, that occur nowhere outside
    them in that assignment's own files."""
    found: set[str] = set()
    for folder in (ROOT / "reference").iterdir():
        inside: set[str] = set()
        outside: set[str] = set()
        for path in folder.glob("*.py"):
            region = False
            for line in path.read_text(encoding="utf-8").splitlines():
                if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                    region = "BEGIN" in line
                    continue
                (inside if region else outside).add(line.strip())
        found |= {line for line in inside - outside if len(line) >= 12}
    return found


@pytest.mark.slow
def test_inside_the_sandbox_nothing_but_the_standard_library_is_visible(tmp_path):
    harness = tmp_path / "harness.py"
    harness.write_text("import json, sys\nSECRET = json.loads(sys.argv[3])\n"
                       "exec(open('/code/walk.py').read())\nprint(json.dumps(found))\n")
    secret = sorted(solution_lines())
    assert secret
    limits = Limits(call_timeout_s=60, total_timeout_s=120, memory_mb=1024, processes=4, output_bytes=1 << 20,
                    file_size_bytes=1 << 20)
    with Sandbox({"walk.py": WALK}, limits, harness=harness, slot=901, mode="bwrap",
                 harness_args=(json.dumps(secret),)) as box:
        box.start()
        assert box._proc is not None and box._proc.stdout is not None
        os.set_blocking(box._proc.stdout.fileno(), True)
        found = json.loads(box._proc.stdout.read())  # the harness prints once and exits
        python = grader.sandbox.probe._interpreter(box._uid)
    paths = [path for path, _ in found]
    assert len(paths) > 100 and any(p.endswith("/os.py") for p in paths)
    # short generic lines ("while stack:") occur in the standard library too; a course file holds many of them
    assert [(path, lines) for path, lines in found if len(lines) >= 3 or any(len(line) >= 30 for line in lines)] == []
    for path in paths:
        assert not path.startswith(("/usr/local", "/opt", "/root", "/work", "/home", str(ROOT))), path
        assert "site-packages" not in path and "dist-packages" not in path, path
        assert "/grader/" not in path and "_course" not in path and "autotests" not in path, path
        allowed = (python.executable, "/etc/ld.so.cache", "/code/", "/harness/", *(f + "/" for f in python.folders),
                   *(link for link, _ in python.links))
        assert path.startswith(allowed), path


def test_the_wheel_carries_the_templates_static_files_and_texts(wheel):
    """Pages, the Gradescope scripts and the READMEs are rendered from grader/templates/ and grader/static/, in
    the words of grader/messages.toml."""
    package = ROOT / "grader"
    wanted = {p.relative_to(ROOT).as_posix() for folder in ("templates", "static")
              for p in (package / folder).rglob("*") if p.is_file()} | {"grader/messages.toml"}
    assert {"grader/templates/base.html.j2", "grader/static/sort.js", "grader/templates/export/setup.sh.j2"} <= wanted
    with zipfile.ZipFile(wheel) as archive:
        assert wanted <= set(archive.namelist())
