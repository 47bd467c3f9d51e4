"""`grader check` on the students' own machines: Windows and macOS, simulated here (Unix-only modules and os
functions missing, sys.platform patched, so no bubblewrap), run end to end; and the student grader's commands."""
from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader.export import export_student

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"
SKELETON = ROOT / "assignments" / "micrograd"
PLATFORMS = ["win32", "darwin"]

# Run as `python -c SIMULATE PLATFORM ARGS...`: the grader as it starts on that platform. Modules that choose
# their platform's code when imported (subprocess, click) are imported first, as the host's: they are not the
# grader's. Windows lacks the Unix-only modules and os functions; macOS has them, but no bubblewrap.
SIMULATE = r"""
import os, sys
import click, subprocess
platform, *args = sys.argv[1:]
if platform == "win32":
    for name in ("fcntl", "pwd", "resource", "termios", "grp"):
        sys.modules[name] = None  # import fails
    for name in ("geteuid", "getuid", "getgid", "setuid", "setgid", "setgroups", "setsid", "getpgid", "killpg",
                 "fork", "wait4", "pread"):
        delattr(os, name)
sys.platform = platform
from grader.cli import main
main(args, prog_name="grader")
"""


def bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def simulated(platform: str, *args: str, encoding: str = "utf-8", **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_")}
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", SIMULATE, platform, *args], capture_output=True, text=True,
                          encoding=encoding, timeout=120, cwd=ROOT, env=environment, preexec_fn=bounded)


def function_lines(stdout: str) -> dict[str, str]:
    """{function: its state} from check's text output."""
    return {m[1]: m[2] for m in re.finditer(r"^[✓✗·] (\S+) +(.+)$", stdout, re.M)}


def assert_plain_process(result: subprocess.CompletedProcess) -> None:
    """No traceback, and one line saying which isolation student code had."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("isolation:")]
    assert lines == ["isolation: a plain child process with a time limit; bubblewrap: not used (not on Linux)"], \
        result.stderr


@pytest.mark.parametrize("platform", PLATFORMS)
def test_check_runs_the_samples_in_a_plain_child_process(platform):
    result = simulated(platform, "check", str(SAMPLES / "alice_correct"))
    assert_plain_process(result)
    assert result.returncode == 0, result.stdout + result.stderr
    states = function_lines(result.stdout)
    assert len(states) == 21 and set(states.values()) == {"done"}
    assert "21 of 21 functions done" in result.stdout

    result = simulated(platform, "check", str(SAMPLES / "bob_tanh_bug"))
    assert_plain_process(result)
    assert result.returncode == 1
    states = function_lines(result.stdout)
    assert states.pop("Value.tanh") == "wrong" and set(states.values()) == {"done"}

    result = simulated(platform, "check", str(SKELETON))
    assert_plain_process(result)
    assert result.returncode == 1
    assert set(function_lines(result.stdout).values()) == {"not written yet"} and "0 of 21" in result.stdout


def test_check_on_windows_says_what_its_isolation_lacks_and_grading_refuses_it():
    result = simulated("win32", "check", str(SAMPLES / "alice_correct"), "--format", "json")
    assert result.returncode == 0, result.stderr
    isolation = json.loads(result.stdout)["isolation"]
    assert isolation["layers"] == ["clean-environment"]
    warnings = " ".join(isolation["warnings"])
    assert "rlimits: none on Windows" in warnings and "killed one by one" in warnings
    result = simulated("win32", "grade", str(SAMPLES / "alice_correct"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--allow-weak-sandbox" in result.stderr


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_hang_is_stopped_by_the_time_limit_and_its_process_killed(platform, tmp_path):
    folder = tmp_path / "hang"
    shutil.copytree(SAMPLES / "alice_correct", folder)
    with tempfile.TemporaryDirectory() as shared:  # as root on macOS, student code runs as a slot uid
        os.chmod(shared, 0o777)
        hung = hang_in_tanh(platform, folder, Path(shared) / "pids")
    for pid in hung:  # killed, and reaped
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] in "ZX"


def hang_in_tanh(platform: str, folder: Path, pids: Path) -> list[int]:
    """Check `folder` with an endless loop in Value.tanh that writes its pid to `pids`: those pids."""
    engine = (folder / "engine.py").read_text(encoding="utf-8")
    head, _, rest = engine.partition("    def tanh(self):\n")
    hang = (f"    def tanh(self):\n        open({str(pids)!r}, 'a').write(str(__import__('os').getpid()) + '\\n')\n"
            "        while True:\n            pass\n")
    (folder / "engine.py").write_text(head + hang + rest, encoding="utf-8")
    started = time.monotonic()
    result = simulated(platform, "check", str(folder), "--only", "ops")
    assert time.monotonic() - started < 30
    assert_plain_process(result)
    assert result.returncode == 1
    states = function_lines(result.stdout)
    assert states.pop("Value.tanh") == "wrong" and set(states.values()) == {"done"}
    assert "did not finish" in result.stdout and "no reply within 2 s" in result.stdout
    hung = [int(pid) for pid in pids.read_text().split()]
    assert hung
    return hung


def test_chinese_and_marks_on_a_console_that_cannot_show_them():
    result = simulated("win32", "check", str(SKELETON), "--lang", "zh", encoding="cp1252",
                       PYTHONIOENCODING="cp1252")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.search(r"^· Value\.tanh +\?{4}$", result.stdout, re.M), result.stdout  # 尚未实现, replaced
    result = simulated("win32", "check", str(SAMPLES / "alice_correct"), encoding="cp1252",
                       PYTHONIOENCODING="cp1252")
    assert result.returncode == 0 and "? Value.tanh" in result.stdout, result.stderr  # ✓, replaced


# ---------------------------------------------------------------- the student grader's commands

STAFF_COMMANDS = ("grade", "batch", "gradebook", "generate", "selftest", "export")


@pytest.fixture(scope="module")
def student_grader(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The exported student grader, run as its README installs it (grader-src/ on the path), from the assignment."""
    out = export_student(tmp_path_factory.mktemp("kit") / "kit", name="micrograd")
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_COURSE", "PYTHONPATH")}
    env.update(PYTHONPATH=str(out / "grader-src"), PYTHONDONTWRITEBYTECODE="1")
    return out / "micrograd", env


def kit_grader(kit: tuple[Path, dict[str, str]], *args: str) -> subprocess.CompletedProcess:
    folder, env = kit
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=120,
                          cwd=folder, env=env)


def test_the_student_grader_lists_only_what_students_can_use(student_grader):
    result = kit_grader(student_grader, "--help")
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"^  (\w+)", result.stdout.partition("Commands:")[2], re.M)
    assert commands == ["check", "schema", "submit", "validate"]
    assert "grade submissions" not in result.stdout
    for command in commands:
        result = kit_grader(student_grader, command, "--help")
        assert result.returncode == 0 and "Usage: " in result.stdout, result.stderr
    for command in STAFF_COMMANDS:  # absent: one line, no traceback
        result = kit_grader(student_grader, command, "--help")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"Error: `grader {command}` is for course staff")
    result = kit_grader(student_grader, "check")
    assert result.returncode == 1 and "0 of 21 functions done" in result.stdout, result.stderr
