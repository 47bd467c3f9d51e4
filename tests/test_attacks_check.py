"""Attacks on `grader check` through the real command line, bounded like tests/test_hostile.py.

A public test runs beside the student's code, so what it reports (an AssertionError's `feedback`, what the code
printed) is the student's to forge: it is typed and bounded in the sandbox's reply, and shown with its control
characters escaped, never as a traceback."""
import json
import shutil
import subprocess
import sys

import pytest

from tests.test_hostile import ALICE, ROOT, bounded, grader_env

pytestmark = pytest.mark.hostile

# Neuron.__call__ fails with feedback of the attacker's making, after printing a flood with terminal escapes.
FORGED = '''
class _Forged(AssertionError):
    def __init__(self, feedback):
        super().__init__("forged")
        self.feedback = feedback

def _attack(case):
    print("\\x1b[2J\\x1b]0;owned\\x07\\u202eline " * 50_000)
    feedback = {
        "many keys": {"id": "check_mismatch", "params": {f"k{i}": "v" * 10_000 for i in range(10_000)}},
        "bad keys": {"id": "check_mismatch", "params": {"not an identifier": 1, "what": "x"}},
        "deep": {"id": "check_mismatch", "params": {"what": {"id": "check_mismatch", "params": {
            "what": {"id": "check_mismatch", "params": {"what": "\\x1b[31mred"}}}}}},
        "format": {"id": "check.progress", "params": {"functions_done": "{0.__class__}", "checks": float("nan")}},
        "grader's words": {"id": "internal_error", "params": {}},
        "not a dict": {"id": 7, "params": [1, 2]},
    }[case]
    raise _Forged(feedback)
'''


@pytest.mark.parametrize("case", ["many keys", "bad keys", "deep", "format", "grader's words", "not a dict"])
def test_forged_feedback_and_a_flood_of_output_stay_one_function_and_bounded(tmp_path, case):
    folder = tmp_path / "forger"
    shutil.copytree(ALICE, folder)
    nn = folder / "nn.py"
    text = nn.read_text(encoding="utf-8").replace("    def __call__(self, x):\n",
                                                  f"    def __call__(self, x):\n        _attack({case!r})\n", 1)
    nn.write_text(FORGED + text, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "grader", "check", str(folder)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, preexec_fn=bounded, env=grader_env())
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stdout) < 64 * 1024  # a flood and 100 MB of forged text make a screenful
    assert not any(c in done.stdout for c in "\x1b\x07\u202e")  # escaped, never sent to the terminal
    wrong = [line for line in done.stdout.splitlines() if line.startswith("✗")]
    assert wrong and all(line.split()[1] in ("Neuron.__call__",) for line in wrong), done.stdout
    report = json.loads(subprocess.run([sys.executable, "-m", "grader", "check", str(folder), "--format", "json"],
                                       capture_output=True, text=True, timeout=120, cwd=ROOT, preexec_fn=bounded,
                                       env=grader_env()).stdout)
    assert report["status"] == "checked" and len(json.dumps(report)) < 256 * 1024


def test_a_forged_syntax_error_gets_a_bounded_escaped_caret(tmp_path):
    """A module that raises SyntaxError itself chooses its text, line and offset: the caret line stays bounded and
    escaped in `grader check`, and grading still costs only that file's tests."""
    folder = tmp_path / "forger"
    shutil.copytree(ALICE, folder)
    nn = folder / "nn.py"
    forged = 'raise SyntaxError("\\x1b[2Jforged", ("nn.py", 7, 10**9, "\\u202e" + "x" * 10**6 + "\\n", 7, 10**9))\n'
    nn.write_text(forged + nn.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "grader", "check", str(folder)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, preexec_fn=bounded, env=grader_env())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stdout.startswith("! nn.py, line 7: SyntaxError: \\x1b[2Jforged\n")
    assert max(len(line) for line in done.stdout.splitlines()) < 400 and "\x1b" not in done.stdout
    graded = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), "--format", "json"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, preexec_fn=bounded,
                            env=grader_env())
    report = json.loads(graded.stdout)
    assert [e["id"] for e in report["errors"]] == ["syntax_error"]
    assert {g["name"]: g["score"] for g in report["groups"]} == {"ops": 40, "backprop": 20, "nn": 0, "training": 20}
