"""Stage 5 of the pipeline: test outcomes + the assignment's groups and late policy -> a Report."""
from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from grader import __version__
from grader.compare import describe_where
from grader.course import Assignment, LatePolicy
from grader.messages import render
from grader.report import GroupScore, Late, Report, TestResult, bounded_message, bounded_text
from grader.results import Outcome, RunResult
from grader.submission import Submission


def late_penalty(policy: LatePolicy, submitted_at: datetime | None, score: float, extra_days: float = 0.0) -> Late:
    """Percent per started day late. More than max_days late: 0 with after_max_days "zero", else ("cap") the
    penalty of max_days. No time known: no penalty, and it says so. `extra_days` (a student's extension, from
    adjustments.csv) moves the due date for this student."""
    due = policy.due + timedelta(days=extra_days) if policy.due else None
    if due is None or submitted_at is None:
        return Late(submitted_at.isoformat() if submitted_at else None, due.isoformat() if due else None, 0, 0.0,
                    score)
    days = max(0, math.ceil((submitted_at - due).total_seconds() / 86400))
    if policy.max_days is not None and days > policy.max_days and policy.after_max_days == "zero":
        penalty = 100.0
    else:  # "cap": the days past max_days cost nothing more
        counted = days if policy.max_days is None else min(days, policy.max_days)
        penalty = min(100.0, counted * policy.percent_per_day)
    return Late(submitted_at.isoformat(), due.isoformat(), days, penalty, round(score * (1 - penalty / 100), 6))


def test_shares(assignment: Assignment, outcomes: list[Outcome]) -> list[float]:
    """Each test's points: its covered function's points shared among that function's tests by weight (a test
    of weight 0, or of a function without points, gets 0)."""
    points = assignment.function_points()
    weights: dict[str, float] = {}
    for o in outcomes:
        if o.covers in points:
            weights[o.covers] = weights.get(o.covers, 0.0) + o.weight
    return [points[o.covers] * o.weight / weights[o.covers] if o.covers in points and o.weight else 0.0
            for o in outcomes]


def group_scores(assignment: Assignment, outcomes: list[Outcome],
                 lang: str) -> tuple[list[GroupScore], list[TestResult]]:
    """A test scores all of its share or nothing; a group's score is the sum over its tests."""
    scores = {g.name: 0.0 for g in assignment.groups}
    tests = []
    for o, share in zip(outcomes, test_shares(assignment, outcomes)):
        if o.group not in scores:
            continue  # a public test of a function no group scores
        earned = share if o.status == "passed" else 0.0
        scores[o.group] += earned
        message = bounded_message(o.message)  # student values in it: text cut, NaN as text
        text = render(message, lang, assignment.messages) if message else ""
        tests.append(TestResult(o.name, o.group, earned, share, o.status, text, o.function, o.duration_s,
                                message, o.covers, o.weight, o.output or None))
    # With no tests (or none run) a group still counts towards the maximum.
    groups = [GroupScore(g.name, g.title, round(scores[g.name], 6), g.points, g.visibility, g.title_zh)
              for g in assignment.groups]
    return groups, tests


def submission_errors(submission: Submission, run: RunResult | None, lang: str) -> list[dict]:
    errors = [{"id": p["id"], "message": render(p, lang)} for p in submission.problems]
    for module, error in (run.import_errors if run else {}).items():
        where = describe_where(error.get("traceback", []))
        if error["type"] == "missing":
            message = {"id": "missing_names", "params": {"file": f"{module}.py", "names": ", ".join(error["missing"])}}
        elif error.get("traceback") and "column" in error["traceback"][-1]:  # a SyntaxError: show the caret
            frame = error["traceback"][-1]
            message = {"id": "syntax_error", "params": {
                "file": frame["file"], "line": frame["line"], "type": error["type"],
                "detail": error.get("message", ""), "code": frame["code"],
                "caret": " " * max(0, frame["column"] - 1) + "^"}}
        else:
            timed_out = error["type"] in ("timeout", "crashed")
            message = {"id": "import_timeout" if timed_out else "import_failed",
                       "params": {"file": f"{module}.py", "type": error["type"], "detail": error.get("message", ""),
                                  "where": where}}
        errors.append({"id": message["id"], "message": render(bounded_message(message), lang)})
    return errors


def build_report(assignment: Assignment, submission: Submission, run: RunResult, *, seed: int, lang: str,
                 started_at: datetime, duration_s: float) -> Report:
    groups, tests = group_scores(assignment, run.outcomes, lang)
    score = round(sum(g.score for g in groups), 6)
    return Report(
        grader_version=__version__,
        assignment=assignment_stamp(assignment),
        student=submission.student,
        submission=submission_summary(submission),
        seed=seed,
        lang=lang,
        isolation={"layers": list(run.isolation.get("layers", [])),
                   "warnings": list(run.isolation.get("warnings", []))},
        started_at=started_at.astimezone(timezone.utc).isoformat(),
        duration_s=round(duration_s, 4),
        score=score,
        max_score=sum(g.max_score for g in groups),
        status="graded",
        groups=groups,
        tests=tests,
        errors=submission_errors(submission, run, lang),
        late=late_penalty(assignment.late, submission.submitted_at, score),
    )


def assignment_stamp(assignment: Assignment) -> dict:
    """What a report was made with: `grader batch --resume` compares it with the course of the day."""
    return {"name": assignment.name, "version": assignment.version, "tests": assignment.tests_fingerprint,
            "scoring": assignment.scoring_fingerprint}


def stored_outcomes(report: dict) -> list[Outcome]:
    """The outcomes a report keeps, to score them again under other points. A report made before tests kept
    their function and weight has none to give (KeyError)."""
    return [Outcome(t["name"], t["group"], t["weight"], t["covers"], t["function"], t["status"], t["message"],
                    t["duration_s"]) for t in report["tests"]]


def rescore(assignment: Assignment, report: dict, submitted_at: datetime | None) -> dict:
    """A graded report scored again from its stored outcomes under the assignment's points and late policy of
    today (each test's group follows its function's points); no student code runs."""
    outcomes = stored_outcomes(report)
    for o in outcomes:
        o.group = (assignment.group_of_function(o.covers) if o.covers else None) or o.group
    groups, tests = group_scores(assignment, outcomes, report["lang"])
    score = round(sum(g.score for g in groups), 6)
    return {**report, "assignment": assignment_stamp(assignment), "score": score,
            "max_score": sum(g.max_score for g in groups),
            "groups": [asdict(g) for g in groups],
            "tests": [{**{k: v for k, v in asdict(t).items() if k != "output"}, "feedback": bounded_text(t.feedback)}
                      for t in tests],  # a graded report's tests have no printed output
            "late": asdict(late_penalty(assignment.late, submitted_at, score))}


def submission_summary(submission: Submission) -> dict:
    return {"sha256": submission.sha256, "files": sorted(submission.files), "kind": submission.kind,
            "source": submission.source}


def error_report(assignment: Assignment, student: str, source: str, reason: str, *, lang: str,
                 started_at: datetime, duration_s: float, reason_id: str = "not_a_submission") -> Report:
    """A report for input that could not be graded at all: 0 points, the reason, and still a valid report."""
    groups = [GroupScore(g.name, g.title, 0.0, g.points, g.visibility, g.title_zh) for g in assignment.groups]
    return Report(
        grader_version=__version__,
        assignment=assignment_stamp(assignment),
        student=student,
        submission={"sha256": "0" * 64, "files": [], "kind": "unknown", "source": source},
        seed=0,
        lang=lang,
        isolation={"layers": [], "warnings": []},
        started_at=started_at.astimezone(timezone.utc).isoformat(),
        duration_s=round(duration_s, 4),
        score=0.0,
        max_score=sum(g.points for g in assignment.groups),
        status="error",
        groups=groups,
        tests=[],
        errors=[{"id": reason_id, "message": reason}],
        late=late_penalty(assignment.late, None, 0.0),
    )
