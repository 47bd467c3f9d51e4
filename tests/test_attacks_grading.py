"""Attacks on the grade itself, through the real command line, each bounded like tests/test_hostile.py.

The attacker has read the grader: it knows the harness's frames and file descriptors, the request protocol,
and when the course engine runs. None of that may earn a point or put its text into a report.
"""
import json
import shutil
from pathlib import Path

import pytest

from tests.test_hostile import ALICE, ROOT, grade, lost, submission

pytestmark = pytest.mark.hostile
SKELETON = ROOT / "assignments" / "micrograd"

# Code an attacker runs inside the harness: the harness's own `serve` frame holds the protocol.
FIND_PROTOCOL = """
import sys as _sys, json as _json
def _serve_frame():
    frame = _sys._getframe()
    while frame is not None and frame.f_code.co_name != "serve":
        frame = frame.f_back
    return frame
"""


def group_scores(report: dict) -> dict[str, float]:
    return {g["name"]: g["score"] for g in report["groups"]}


def all_outputs(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False)


def test_the_untouched_skeleton_scores_nothing(tmp_path):
    folder = tmp_path / "skeleton"
    folder.mkdir()
    for name in ("engine.py", "nn.py", "train.py"):
        shutil.copy(SKELETON / name, folder / name)
    _, report = grade(folder)
    assert report["score"] == 0, group_scores(report)


def test_a_correct_nn_over_the_skeleton_engine_earns_nn_and_training_only(tmp_path):
    """The course engine judges nn.py and train.py apart from engine.py, without any solution in a sandbox."""
    folder = tmp_path / "nn_only"
    shutil.copytree(ALICE, folder)
    shutil.copy(SKELETON / "engine.py", folder / "engine.py")
    _, report = grade(folder)
    assert group_scores(report) == {"ops": 0, "backprop": 0, "nn": 20, "training": 20}


def test_a_backward_that_asks_the_grader_for_an_order_gets_nothing(tmp_path):
    """backward() made of the harness's graph enumeration and an order asked of the grader: refused."""
    stolen = FIND_PROTOCOL + """
def _stolen_backward(self):
    harness = _sys.modules["__main__"]
    nodes, edges = harness.graph_of(self)
    ask = _serve_frame().f_locals["ask"]
    order = ask("order", children=edges)["order"]
    self.grad = 1.0
    for i in order:
        nodes[i]._backward()
"""
    folder = submission(tmp_path, "engine.py", "    def backward(self):\n",
                        "    def backward(self):\n        return _stolen_backward(self)\n", prelude=stolen)
    _, report = grade(folder)
    assert group_scores(report)["backprop"] == 0
    assert group_scores(report)["ops"] == 40


@pytest.mark.parametrize("value", ['"x"', "NaN", "Infinity", "[1, 2]", "1e400"])
def test_a_forged_reply_is_the_students_wrong_answer(tmp_path, value):
    """tanh's _backward writes its own reply to the protocol and dies: a wrong answer, never a grader error."""
    forge = FIND_PROTOCOL + f"""
def _forge():
    import os
    replies = _serve_frame().f_locals["replies"]
    replies.write('{{"ok": true, "value": {{"data": 0.5, "grads": [{value}]}}, "output": ""}}\\n')
    replies.flush()
    os._exit(0)
"""
    folder = submission(tmp_path, "engine.py", "            self.grad += (1 - t**2) * out.grad\n",
                        "            _forge()\n", prelude=forge)
    result, report = grade(folder)
    assert "Value.tanh" in lost(report)
    assert not [t for t in report["tests"] if t["status"] == "error" and "grader failed" in (t["feedback"] or "")]
    tanh = [t["feedback"] for t in report["tests"] if t["function"] == "Value.tanh" and t["status"] != "passed"]
    assert any("grads[0]" in text for text in tanh), tanh


def test_a_trace_with_forged_labels_costs_only_the_wrong_operation(tmp_path):
    """A wrong tanh labelled as a power the reference cannot take of a negative number: pinpointing skips it."""
    folder = submission(tmp_path, "engine.py", "        out = Value(t, (self,), 'tanh')\n",
                        "        out = Value(t, (self,), '**0.5' if x < 0 else '**1e308')\n")
    text = (folder / "engine.py").read_text(encoding="utf-8").replace("(1 - t**2) * out.grad", "(1 - t) * out.grad")
    (folder / "engine.py").write_text(text, encoding="utf-8")
    _, report = grade(folder)
    assert "Value.tanh" in lost(report)
    assert not [t for t in report["tests"] if t["status"] == "error" and "grader failed" in (t["feedback"] or "")]
    assert group_scores(report)["backprop"] == 20


def test_huge_forged_replies_cost_the_grader_little(tmp_path):
    """Every graph reply forged as ~15 MB of trace entries: rejected by shape, with the grader's memory bounded."""
    forge = FIND_PROTOCOL + """
def _forge():
    import os
    entry = '{"op": "tanh", "data": 0.5, "grad": 1.0, "children": [{"data": 0.5, "before": 0.0, "after": 1.0}]}'
    trace = "[" + ",".join([entry] * 140_000) + "]"
    replies = _serve_frame().f_locals["replies"]
    replies.write('{"ok": true, "value": {"data": [0.5], "grads": [1.0], "trace": ' + trace + '}, "output": ""}\\n')
    replies.flush()
    os._exit(0)
"""
    folder = submission(tmp_path, "engine.py", "            self.grad += (1 - t**2) * out.grad\n",
                        "            _forge()\n", prelude=forge)
    import resource
    _, report = grade(folder)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 400 * 1024  # KiB: the largest grader run
    assert "Value.tanh" in lost(report)
    assert len(json.dumps(report)) < 256 * 1024


def test_nothing_textual_from_student_code_on_the_course_engine_reaches_a_report(tmp_path):
    """nn.py over the course engine raises with markers in every text field it controls: none is shown."""
    folder = tmp_path / "markers"
    # An engine bug, and nn.py that fails on the student's own engine too, so that its checks always run again
    # on the course engine: carol's overwrite alone fails Layer's check only for some orders of set(_prev).
    shutil.copytree(ROOT / "submissions" / "micrograd" / "carol_overwrite_grad", folder)
    attack = (
        "import engine\n"
        "_ON_COURSE_ENGINE = 'not written yet' in open(engine.__file__).read()\n"
        "def _leak():\n"
        "    if _ON_COURSE_ENGINE:\n"
        "        code = compile('def MARKERFUNC():\\n    raise MarkerError(\"MARKERMESSAGE\")\\n',\n"
        "                       '/tests/MARKERFILE.py', 'exec')\n"
        "        space = {'MarkerError': type('MARKERCLASS', (Exception,), {'__module__': 'builtins'})}\n"
        "        exec(code, space)\n"
        "        space['MARKERFUNC']()\n"
        "    raise ValueError('wrong on any engine')\n"
    )
    nn = folder / "nn.py"
    text = nn.read_text(encoding="utf-8")
    text = text.replace("    def __call__(self, x):\n", "    def __call__(self, x):\n        _leak()\n", 1)
    nn.write_text(attack + text, encoding="utf-8")
    result, report = grade(folder)
    failing = {t["covers"]: (t["name"], t["status"], t["feedback"]) for t in report["tests"] if t["status"] != "passed"}
    assert {"Layer.__call__", "MLP.__call__"} <= set(failing), failing  # the course engine ran their checks
    for fmt in ("json", "gradescope", "markdown", "junit", "text"):
        shown = result.stdout if fmt == "json" else _grade_as(folder, fmt)
        assert "MARKER" not in shown, fmt


def _grade_as(folder: Path, fmt: str) -> str:
    import subprocess
    import sys

    from tests.test_hostile import bounded

    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), "--format", fmt],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, preexec_fn=bounded)
    assert done.returncode == 0, done.stderr
    return done.stdout


# A sender in the course-engine sandbox and a receiver in the student's own: if the two ever ran at the same
# time, the student's engine would learn that a lock or a file exists and make every operation wrong.
LOCK_SENDER = """
import fcntl, os
import engine as _engine
def _send():
    if "not written yet" not in open(_engine.__file__).read():
        return  # only from the course engine's sandbox
    target = os.__file__
    fd = os.open(target, os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 4242)
    except OSError:
        pass
    for folder in ("/tmp", "/dev/shm", "/var/tmp", os.getcwd()):
        try:
            with open(os.path.join(folder, "covert-channel"), "w") as f:
                f.write("sent")
        except OSError:
            pass
    globals()["_KEEP"] = fd
"""
LOCK_RECEIVER = """
import fcntl, os, struct
def _received():
    fd = os.open(os.__file__, os.O_RDONLY)
    try:
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 4242, 1, 0)
        answer = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, probe))
        locked = answer[0] != fcntl.F_UNLCK
    except OSError:
        locked = False
    finally:
        os.close(fd)
    found = any(os.path.exists(os.path.join(d, "covert-channel"))
                for d in ("/tmp", "/dev/shm", "/var/tmp", os.getcwd()))
    return locked or found
"""


def test_the_course_engine_sandbox_and_the_students_never_share_a_channel(tmp_path):
    folder = tmp_path / "covert"
    shutil.copytree(ALICE, folder)
    engine = (folder / "engine.py").read_text(encoding="utf-8")
    engine = LOCK_RECEIVER + engine.replace(
        "        out = Value(t, (self,), 'tanh')\n",
        "        out = Value(t + (1.0 if _received() else 0.0), (self,), 'tanh')\n", 1)
    # a broken mul: nn tests fail on the student's engine and run again on the course engine
    engine = engine.replace("            self.grad += out.grad * other.data\n", "            self.grad += 0.0\n", 1)
    (folder / "engine.py").write_text(engine, encoding="utf-8")
    nn = (folder / "nn.py").read_text(encoding="utf-8")
    nn = LOCK_SENDER + "_send()\n" + nn  # runs at import, in whichever sandbox imports nn.py
    (folder / "nn.py").write_text(nn, encoding="utf-8")
    _, report = grade(folder)
    scores = group_scores(report)
    assert scores["nn"] == 20  # the nn tests ran on the course engine (the student's mul is broken) ...
    tanh = [t for t in report["tests"] if t["function"] == "Value.tanh"]
    assert tanh and all(t["status"] == "passed" for t in tanh), [t["feedback"] for t in tanh]  # ... and sent nothing
