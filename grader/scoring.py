"""Stage 5 of the pipeline: test outcomes + the assignment's groups and late policy -> a Report."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from grader import __version__
from grader.compare import describe_where
from grader.course import Assignment, LatePolicy
from grader.messages import render
from grader.report import GroupScore, Late, Report, TestResult, bounded_message
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


def group_scores(assignment: Assignment, outcomes: list[Outcome],
                 lang: str) -> tuple[list[GroupScore], list[TestResult]]:
    """Each group's points are shared among its tests by weight; a test scores all of its share or nothing."""
    groups, tests = [], []
    for group in assignment.groups:
        mine = [o for o in outcomes if o.group == group.name]
        total_weight = sum(o.weight for o in mine)
        score = 0.0
        for o in mine:
            share = group.points * o.weight / total_weight
            earned = share if o.status == "passed" else 0.0
            score += earned
            message = bounded_message(o.message)  # student values in it: text cut, NaN as text
            text = render(message, lang, assignment.messages) if message else ""
            tests.append(TestResult(o.name, group.name, earned, share, o.status, text, o.function, o.duration_s,
                                    message))
        # With no tests (or none run) a group still counts towards the maximum.
        groups.append(GroupScore(group.name, group.title, round(score, 6), group.points, group.visibility))
    return groups, tests


def submission_errors(submission: Submission, run: RunResult | None, lang: str) -> list[dict]:
    errors = [{"id": p["id"], "message": render(p, lang)} for p in submission.problems]
    for module, error in (run.import_errors if run else {}).items():
        where = describe_where(error.get("traceback", []))
        if error["type"] == "missing":
            message = {"id": "missing_names", "params": {"file": f"{module}.py", "names": ", ".join(error["missing"])}}
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
        assignment={"name": assignment.name, "version": assignment.version},
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


def submission_summary(submission: Submission) -> dict:
    return {"sha256": submission.sha256, "files": sorted(submission.files), "kind": submission.kind,
            "source": submission.source}


def error_report(assignment: Assignment, student: str, source: str, reason: str, *, lang: str,
                 started_at: datetime, duration_s: float, reason_id: str = "not_a_submission") -> Report:
    """A report for input that could not be graded at all: 0 points, the reason, and still a valid report."""
    groups = [GroupScore(g.name, g.title, 0.0, g.points, g.visibility) for g in assignment.groups]
    return Report(
        grader_version=__version__,
        assignment={"name": assignment.name, "version": assignment.version},
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
