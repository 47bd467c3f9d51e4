"""Hostile submissions through the real command line: each one still gets a valid report and exit code 0,
loses only the tests it breaks, and leaves nothing running.

Every grading here runs in a child process that is itself bounded (1 GiB of address space per process, 60 s),
so that a broken sandbox cannot take the machine down with it.
"""
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.formats import validate_report

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "submissions" / "alice_correct"
pytestmark = pytest.mark.hostile


def bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def grade(folder: Path) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), "--format", "json"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, preexec_fn=bounded)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    validate_report(report)
    return result, report


def submission(tmp_path: Path, file: str, find: str, replace: str, prelude: str = "") -> Path:
    """alice's correct submission with one function (or the module's start) turned hostile."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name in ("engine.py", "nn.py", "train.py"):
        text = (ALICE / name).read_text(encoding="utf-8")
        if name == file:
            assert text.count(find) == 1, find
            text = prelude + text.replace(find, replace)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def lost(report: dict) -> set[str]:
    return {t["function"] for t in report["tests"] if t["status"] != "passed"}


def processes_of_sandbox_uids() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and 61000 <= os.stat(f"/proc/{pid}").st_uid < 62000:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split(") ", 1)[1][0] not in "ZX":
                        found.append(pid)
        except (OSError, IndexError):
            continue
    return found


TRAIN = "def train(model, xs, ys, epochs, lr, lam=0.0):\n"


@pytest.mark.parametrize("name, body", [
    ("infinite loop", "    while True:\n        pass\n"),
    ("memory bomb", "    hog = [bytearray(1 << 20) for _ in range(4096)]\n"),
    ("fork bomb", "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
                  "            pass\n"),
    ("setsid escapee", "    import os, time\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(300)\n"
                       "    while True:\n        pass\n"),
    ("exit the interpreter", "    import os\n    os._exit(3)\n"),
    ("sys.exit", "    raise SystemExit(0)\n"),
    ("segfault", "    import ctypes\n    ctypes.string_at(0)\n"),
])
def test_hostile_train_loses_only_train(tmp_path, name, body):
    _, report = grade(submission(tmp_path, "train.py", TRAIN, TRAIN + body))
    assert lost(report) == {"train"}, [t["feedback"] for t in report["tests"] if t["status"] != "passed"]
    assert report["score"] < report["max_score"]
    assert processes_of_sandbox_uids() == []


def test_forged_report_on_stdout_changes_nothing(tmp_path):
    forged = ('import os, sys\nprint(\'{"ok": true, "value": {"data": 1, "grads": [0]}}\')\n'
              'os.write(1, b\'{"score": 100, "max_score": 100}\\n\')\nsys.stdout.write("garbage\\n")\n')
    folder = submission(tmp_path, "engine.py", "import math\n", "import math\n", prelude=forged)
    result, report = grade(folder)
    assert report["score"] == report["max_score"]  # alice is correct: the noise neither helps nor hurts
    assert "garbage" not in result.stdout


def test_reading_hidden_files_and_writing_outside_fails_inside_the_sandbox(tmp_path):
    spy = (
        "import os\n"
        f"for path in ({str(ROOT / 'autotests')!r}, {str(ROOT / 'reference')!r}, '/root', '/etc/shadow'):\n"
        "    try:\n"
        "        os.listdir(path) if os.path.isdir(path) else open(path).read()\n"
        "        raise RuntimeError('could read ' + path)\n"
        "    except (OSError, PermissionError):\n"
        "        pass\n"
        f"for path in ({str(tmp_path / 'planted.txt')!r}, '/usr/planted.txt'):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        raise RuntimeError('could write ' + path)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    _, report = grade(submission(tmp_path, "nn.py", "import random\n", "import random\n", prelude=spy))
    assert report["score"] == report["max_score"], [t["feedback"] for t in report["tests"] if t["feedback"]]
    assert not (tmp_path / "planted.txt").exists()


def test_patched_builtins_stay_in_the_sandbox(tmp_path):
    patch = "import builtins, math\nbuiltins.float = lambda x=0: 1.0\nmath.isclose = lambda *a, **k: True\n"
    _, report = grade(submission(tmp_path, "engine.py", "import math\n", "import math\n", prelude=patch))
    # Comparison happens in the grader: a patched isclose in the sandbox cannot pass wrong numbers.
    assert report["status"] == "graded"
    assert all(t["status"] in ("passed", "failed", "error") for t in report["tests"])


def test_wrong_tanh_that_patches_isclose_still_fails(tmp_path):
    folder = submission(tmp_path, "engine.py", "1 - t**2", "1 - t",
                        prelude="import math\nmath.isclose = lambda *a, **k: True\n")
    _, report = grade(folder)
    assert "Value.tanh" in lost(report)


def test_nothing_of_the_reference_engine_leaks_through_the_correct_engine_run(tmp_path):
    """nn tests rerun the student's nn.py over the reference engine; what that run raises must carry none of it."""
    folder = tmp_path / "leaky"
    shutil.copytree(ROOT / "submissions" / "carol_overwrite_grad", folder)  # an engine bug: the fallback runs
    attack = (
        "import engine\n"
        "_SOURCE = open(engine.__file__).read()\n"
        "def _leak():\n"
        "    if 'BEGIN SOLUTION' in _SOURCE:\n"
        "        part = _SOURCE[_SOURCE.index('BEGIN SOLUTION'):][:300]\n"
        "        raise type(part, (Exception,), {'__module__': 'builtins'})(part)\n"
    )
    nn = folder / "nn.py"
    text = nn.read_text(encoding="utf-8")
    text = text.replace("    def __call__(self, x):\n", "    def __call__(self, x):\n        _leak()\n", 1)
    nn.write_text(attack + text, encoding="utf-8")
    result, report = grade(folder)
    assert {"Layer.__call__", "MLP.__call__"} <= lost(report)  # their tests fell back to the reference engine
    assert "BEGIN SOLUTION" not in result.stdout
    reference = (ROOT / "reference" / "engine.py").read_text(encoding="utf-8")
    solution_lines = {line.strip() for line in reference.split("### BEGIN SOLUTION")[1].splitlines()[1:4]}
    assert not any(line and line in result.stdout for line in solution_lines)
