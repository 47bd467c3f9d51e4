"""`grader check`: the public tests, run on a student's work through the same sandbox and feedback as grading.

The public tests (assignments/<name>/tests/) are plain Python that students can also run with pytest. Here
they are listed from their source (nothing of the student's is imported in this process), run one by one in
the sandbox, and turned into a Report whose groups count passed public tests.
"""
from __future__ import annotations

import ast
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from grader.compare import failure_feedback
from grader.course import Assignment
from grader.formats import _printable
from grader.report import Report
from grader.replies import PUBLIC_TEST
from grader.results import Outcome, RunResult
from grader.grading import open_sandbox
from grader.messages import text
from grader.sandbox import Sandbox
from grader.scoring import build_report
from grader.submission import Submission


@dataclass(frozen=True)
class PublicTest:
    module: str
    name: str
    covers: str


def list_public_tests(folder: Path) -> list[PublicTest]:
    """`test_*` functions and their @covers("...") names, read from the source without importing it."""
    found = []
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                covers = next((d.args[0].value for d in node.decorator_list if isinstance(d, ast.Call)
                               and getattr(d.func, "id", "") == "covers" and d.args
                               and isinstance(d.args[0], ast.Constant) and isinstance(d.args[0].value, str)),
                              node.name)
                found.append(PublicTest(path.stem, node.name, covers))
    return found


def run_public_test(sandbox: Sandbox, test: PublicTest, group: str | None) -> Outcome:
    started = time.perf_counter()
    result = sandbox.call("public_test", {"folder": "tests", "module": test.module, "name": test.name},
                          shape=PUBLIC_TEST)
    status, message = "passed", None
    reply = result.value
    if result.status != "ok":  # the test module or the student's code raised, hung or crashed
        failure = failure_feedback(result, test.covers)
        status, message = failure.status, failure.message
    elif not isinstance(reply, dict):
        raise AssertionError("an \"ok\" public_test reply is a record")  # its shape was checked by the sandbox
    elif reply["status"] == "todo":
        status, message = "failed", {"id": "not_implemented", "params": {"function": test.covers}}
    elif reply["status"] == "failed":
        status = "failed"
        feedback = reply["feedback"]  # set by test code running beside the student's: checked, not trusted
        if not (isinstance(feedback, dict) and feedback.get("id") == "public.mismatch"
                and isinstance(feedback.get("params"), dict)):
            feedback = {"id": "public.failed", "params": {"text": reply["text"]}}
        message = {"id": feedback["id"], "params": {k: str(v) for k, v in feedback["params"].items()}}
        if message["id"] == "public.mismatch" and not message["params"].get("inputs"):
            message["id"] = "public.mismatch_no_inputs"  # a check of a built object: no "for <inputs>"
    return Outcome(test.name, group, 1.0, test.covers, test.covers, status, message,
                   round(time.perf_counter() - started, 6))


def check_submission(submission: Submission, assignment: Assignment, *, lang: str = "en",
                     only: str | None = None) -> Report:
    """Run the public tests on a submission; each function's points are its number of public tests."""
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    folder = assignment.folder / "tests"
    group_of = {t: assignment.group_of_function(t.covers) for t in list_public_tests(folder)}
    tests = [t for t in group_of if only is None or group_of[t] == only]
    files = dict(submission.files)
    files.update({f"tests/{p.name}": p.read_text(encoding="utf-8") for p in folder.glob("*.py")})
    with open_sandbox(assignment, files) as sandbox:
        outcomes = [run_public_test(sandbox, t, group_of[t]) for t in tests]
        isolation = sandbox.isolation
    counts = Counter(o.covers for o in outcomes)
    groups = tuple(replace(g, functions=tuple((f, float(counts[f])) for f, _ in g.functions if counts[f]))
                   for g in assignment.groups if only is None or g.name == only)
    counted = replace(assignment, groups=groups)
    return build_report(counted, submission, RunResult(outcomes, {}, isolation), seed=0, lang=lang,
                        started_at=started_at, duration_s=time.perf_counter() - started)


def function_progress(report: dict) -> list[tuple[str, str, str]]:
    """(function, state, first feedback) in the order the public tests name them."""
    rank = {"done": 0, "todo": 1, "wrong": 2}  # a function is as bad as its worst public test
    states: dict[str, tuple[str, str]] = {}
    for test in report["tests"]:
        function = test["function"]
        state = "done" if test["status"] == "passed" else (
            "todo" if (test["message"] or {}).get("id") == "not_implemented" else "wrong")
        previous = states.get(function)
        if previous is None or rank[state] > rank[previous[0]]:
            states[function] = (state, test["feedback"])
    return [(f, s, fb) for f, (s, fb) in states.items()]


def render_check_text(report: dict, lang: str = "en", color: bool = False) -> str:
    """One line per student function, its feedback when wrong, and a progress line; what came from student code
    has its control characters and bidi marks shown as escapes."""
    marks = {"done": ("✓", "32"), "wrong": ("✗", "31"), "todo": ("·", "33")}
    lines = []
    progress = function_progress(report)
    for function, state, feedback in progress:
        mark, code = marks[state]
        mark = f"\033[{code}m{mark}\033[0m" if color else mark
        label = text(f"check.{state}", lang)
        lines.append(f"{mark} {_printable(function):<18} {label}")
        if state == "wrong":
            lines.append(f"    {_printable(feedback)}")
    for error in report["errors"]:
        lines.append(f"! {_printable(error['message'])}")
    done = sum(state == "done" for _, state, _ in progress)
    lines += ["", text("check.progress", lang, done=done, total=len(progress))]
    return "\n".join(lines) + "\n"


def all_passed(report: dict) -> bool:
    return all(t["status"] == "passed" for t in report["tests"]) and not report["errors"]

