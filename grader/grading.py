"""The whole pipeline for one submission: course -> submission -> sandbox + hidden tests -> score -> Report."""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from grader.course import Assignment
from grader.replies import load_reply
from grader.report import Report
from grader.sandbox import Sandbox
from grader.scoring import build_report
from grader.submission import Submission, load_submission


def default_seed(submission: Submission) -> int:
    """Reproducible by default: the same code gets the same random inputs, and so the same report."""
    return int(submission.sha256[:8], 16)


def open_sandbox(assignment: Assignment, files: dict[str, str], *, slot: int = 0,
                 variant: str | None = None) -> Sandbox:
    """A sandbox for one submission's files and the assignment's harness. The assignment's given files are the
    course's own copies whatever the submission holds, and a variant replaces the student files it names with
    the course's public copies (assignment.toml)."""
    replaced = assignment.given + (assignment.variants[variant] if variant else ())
    course_files = {name: (assignment.folder / name).read_text(encoding="utf-8") for name in replaced}
    return Sandbox({**files, **course_files}, assignment.limits, slot=slot,
                   harness_files={"commands.py": assignment.harness},
                   harness_args=(",".join(assignment.files), *([variant] if variant else [])))


def import_problems(assignment: Assignment, sandbox: Sandbox) -> dict[str, dict]:
    """Import each student module in turn; one that raises or never finishes is reported by name."""
    problems: dict[str, dict] = {}
    modules = [Path(f).stem for f in assignment.files if f.endswith(".py")]
    for name in modules:
        if sandbox.time_left <= 0:
            break  # the tests used the submission's time: nothing can be said about its imports
        required = {module: list(names) for module, names in assignment.contract.items()}
        loaded = sandbox.call("load", {"names": [name], "required": required}, shape=load_reply(modules))
        if loaded.status == "ok":
            assert isinstance(loaded.value, dict)  # the "load" reply's shape is a map of module names
            problems.update(loaded.value)
        elif loaded.status == "error":
            assert loaded.error is not None  # set whenever the status is "error"
            problems[name] = loaded.error
        else:
            # a timeout's reason is a message, worded in the report's language
            problems[name] = {"type": loaded.status, "message": loaded.reason or loaded.detail, "traceback": []}
    return problems


def grade_submission(submission: Submission, assignment: Assignment, *, lang: str = "en", seed: int | None = None,
                     slot: int = 0, probe: tuple[str, ...] | None = None) -> Report:
    """The report of the hidden tests on `submission` (a `probe` runs only some of them: see run_hidden_tests)."""
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    seed = default_seed(submission) if seed is None else seed
    # The student's sandbox boots while pytest and the reference are imported (~0.15 s), not after.
    sandbox = open_sandbox(assignment, submission.files, slot=2 * slot)
    try:
        sandbox.start()
        from grader.runner import run_hidden_tests
    except BaseException:
        sandbox.close()
        raise
    run = run_hidden_tests(assignment, submission.files, sandbox, seed=seed, slot=slot, probe=probe)
    report = build_report(assignment, submission, run, seed=seed, lang=lang, started_at=started_at,
                          duration_s=time.perf_counter() - started)
    for problem in run.internal_errors:  # the grader's own bugs: never silent, never the student's fault
        print(f"grader: internal error: {problem}", file=sys.stderr)
        report.errors.append({"id": "internal_error", "message": problem})
    return report


def grade_path(path: str | Path, assignment: Assignment, *, student: str | None = None, **options) -> Report:
    """Grade a folder, .zip or .ipynb; raises SubmissionError when it is not a submission at all."""
    return grade_submission(load_submission(path, assignment, student), assignment, **options)
