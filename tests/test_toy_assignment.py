"""A third assignment, made in a temporary folder, graded end to end: the grader needs no change for a new one.

The toy assignment has one student function, `square(x)`, a harness command that runs it, and one hidden test
written with the public API of `grader.testing`.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FILES = {
    "assignments/toy/assignment.toml": """
[assignment]
name = "toy"
title = "Squares"
version = "1"
files = ["square.py"]

[contract]
square = ["square"]

[groups.square]
title = "square(x)"
functions = { square = 10 }

[limits]
call_timeout_s = 2.0
total_timeout_s = 20.0
memory_mb = 256
processes = 4
output_kb = 16
file_size_kb = 64
""",
    "assignments/toy/harness.py": '''
"""The toy assignment's harness commands (standard library only, no solution logic)."""
from grader_harness import number


def cmd_square(session, x):
    return {"value": number(session.module("square").square(x), "square(x)")}
''',
    "assignments/toy/messages.toml": """
[square_wrong]
en = "square({x}) is {got}, expected {expected}"
zh = "square({x}) 的结果为 {got}，应为 {expected}"
""",
    "reference/toy/square.py": "def square(x):\n    return x * x\n",
    "autotests/toy/pytest.ini": "[pytest]\npython_files = test_*.py\n",
    "autotests/toy/conftest.py": '''
import pytest

from grader.testing import NUMBER, Record


@pytest.fixture(scope="session")
def reply_shapes():
    return {"square": Record({"value": NUMBER})}
''',
    "autotests/toy/test_square.py": '''
import pytest

from grader.testing import Feedback, close

pytestmark = pytest.mark.group("square")


@pytest.mark.covers("square")
@pytest.mark.parametrize("x", [0.0, 1.5, -3.0, 4.0])
def test_square_matches_reference(student, reference, x):
    got, want = student.call_beside(reference, "square", x=x)
    if not close(got["value"], want["value"]):
        raise Feedback("square_wrong", function="square", x=x, expected=want["value"], got=got["value"])
''',
}


@pytest.fixture
def toy_course(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text.lstrip("\n"), encoding="utf-8")
    return tmp_path


def grade(course: Path, body: str, tmp_path: Path, lang: str = "en") -> dict:
    submission = tmp_path / "submission"
    submission.mkdir(exist_ok=True)
    (submission / "square.py").write_text(f"def square(x):\n    {body}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--course", str(course),
                           "--format", "json", "--lang", lang], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_correct_toy_submission_gets_full_marks(toy_course, tmp_path):
    report = grade(toy_course, "return x ** 2", tmp_path)
    assert report["assignment"]["name"] == "toy"
    assert report["score"] == report["max_score"] == 10


def test_a_wrong_toy_submission_loses_points_with_the_assignments_own_message(toy_course, tmp_path):
    report = grade(toy_course, "return 2 * x", tmp_path, lang="zh")
    assert report["score"] == 2.5  # right for x = 0 only: one of four tests
    feedback = [t["feedback"] for t in report["tests"] if t["status"] != "passed"]
    assert any("square(1.5) 的结果为 3，应为 2.25" in text for text in feedback), feedback

