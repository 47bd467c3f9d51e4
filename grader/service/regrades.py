"""Regrade sets (like DOMjudge's rejudging): staff regrade each student's current result with the course as it is
now, into jobs of the set's own at REGRADE priority (after every upload, in the fair order); the old results are
never written over. Staff compare old and new side by side, then apply the set (its graded results become the
students' current ones) or discard it.

A student's current result is their last one by submission time: among their uploads' results and the graded
jobs of applied sets, the latest `received_at` (a regrade job keeps its upload's), then the latest job. So a set
applied after the student uploaded again never hides the newer upload.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session, defer

from grader.course import Assignment
from grader.errors import UnusableInput
from grader.gradebook import ClassInfo, class_rows, gradebook_text
from grader.service.db import REGRADE, Database, Job, Regrade
from grader.service.users import roster_of


class RegradeRefused(UnusableInput):
    """A regrade set that cannot be started (422), or applied or discarded now (409); the message is one line."""

    def __init__(self, message: str, http_status: int = 422) -> None:
        super().__init__(message)
        self.http_status = http_status


def counts() -> ColumnElement[bool]:
    """Jobs whose result may be a student's: uploads, and the graded jobs of applied sets."""
    applied = select(Regrade.id).where(Regrade.status == "applied")
    return or_(Job.regrade_id.is_(None), (Job.status == "graded") & Job.regrade_id.in_(applied))


def shown_to_student(session: Session, job: Job) -> bool:
    """Whether a job's result is its student's (as `counts()` says of a query): an upload, or the graded regrade
    of an applied set."""
    if job.regrade_id is None:
        return True
    regrade = session.get(Regrade, job.regrade_id)
    return job.status == "graded" and regrade is not None and regrade.status == "applied"


def current_results(session: Session, assignment: str, best: bool = False) -> dict[str, Job]:
    """Each student's current result for `assignment` (students without one are absent): the latest, or with
    `best` (`[submissions] counts = "best"`) the highest score, the latest of equal ones."""
    query = (select(Job).options(defer(Job.page)).where(Job.assignment == assignment, Job.report.is_not(None),
                                                        counts())
             .order_by(Job.received_at, Job.id))
    current: dict[str, Job] = {}
    for job in session.scalars(query):
        kept = current.get(job.student)
        if kept is None or not best or (job.score or 0.0) >= (kept.score or 0.0):
            current[job.student] = job
    return current


def gradebook_csv(session: Session, assignment: Assignment) -> str:
    """`grader batch`'s gradebook.csv over each student's current result (the API's and the staff pages')."""
    best = assignment.counts == "best"
    reports = {student: json.loads(job.report)
               for student, job in current_results(session, assignment.name, best).items() if job.report is not None}
    return gradebook_text("csv", ClassInfo.of(assignment), class_rows(reports, roster_of(session)))


def start_regrade(database: Database, assignment: str, staff: str | None, students: Iterable[str] | None,
                  at: datetime, best: bool = False) -> Regrade:
    """A set that regrades the current result of each student (or of those listed), committed with its jobs."""
    with database.session.begin() as session:
        current = current_results(session, assignment, best)
        if students is not None:
            wanted = list(dict.fromkeys(students))
            missing = [s for s in wanted if s not in current]
            if missing:
                raise RegradeRefused(f"no graded submission of {', '.join(missing)} for {assignment}")
            current = {s: current[s] for s in wanted}
        if not current:
            raise RegradeRefused(f"no graded submissions of {assignment} to regrade")
        regrade = Regrade(assignment=assignment, created_by=staff, created_at=at, status="open")
        session.add(regrade)
        session.flush()
        session.add_all(Job(student=old.student, assignment=assignment, priority=REGRADE, status="queued",
                            upload=old.upload, filename=old.filename, received_at=old.received_at,
                            regrade_id=regrade.id, regrade_of=old.id) for old in current.values())
        return regrade


def decide(database: Database, regrade_id: int, apply: bool, at: datetime) -> Regrade | None:
    """Apply the set (once all its jobs are done) or discard it (its jobs still queued are dropped, never graded);
    None when there is no such set."""
    with database.session.begin() as session:
        regrade = session.get(Regrade, regrade_id, with_for_update=True)
        if regrade is None:
            return None
        if regrade.status != "open":
            raise RegradeRefused(f"regrade {regrade_id} is {regrade.status} already", 409)
        if apply:
            statuses = list(session.scalars(select(Job.status).where(Job.regrade_id == regrade_id)))
            done = sum(status in ("graded", "error") for status in statuses)
            if done < len(statuses):
                raise RegradeRefused(f"regrade {regrade_id} is not done ({done} of {len(statuses)} graded): apply it "
                                     "when it is", 409)
        else:
            session.execute(delete(Job).where(Job.regrade_id == regrade_id, Job.status == "queued"))
        regrade.status, regrade.decided_at = ("applied" if apply else "discarded"), at
        return regrade


def summary(session: Session, regrade: Regrade) -> dict:
    """The set as staff see it: how far it is, and each student's old and new score side by side, with the tests
    whose status changed."""
    new_jobs = list(session.scalars(select(Job).options(defer(Job.page)).where(Job.regrade_id == regrade.id)
                                    .order_by(Job.student)))
    old_ids = [job.regrade_of for job in new_jobs]
    old_jobs = {job.id: job for job in session.scalars(select(Job).options(defer(Job.page))
                                                       .where(Job.id.in_(old_ids)))}
    students = []
    for new in new_jobs:
        assert new.regrade_of is not None  # a set's job regrades one
        old = old_jobs[new.regrade_of]
        students.append({"student": new.student, "submission": old.id, "job": new.id, "status": new.status,
                         "old_score": old.score, "new_score": new.score, "old_max_score": old.max_score,
                         "new_max_score": new.max_score, "changed_tests": changed_tests(old.report, new.report)})
    done = sum(job.status in ("graded", "error") for job in new_jobs)
    return {"id": regrade.id, "assignment": regrade.assignment, "status": regrade.status,
            "created_by": regrade.created_by, "created_at": regrade.created_at.isoformat(),
            "decided_at": regrade.decided_at.isoformat() if regrade.decided_at else None,
            "total": len(new_jobs), "done": done, "errors": sum(job.status == "error" for job in new_jobs),
            "changed": sum(s["status"] == "graded" and s["new_score"] != s["old_score"] for s in students),
            "students": students}


def changed_tests(old_report: str | None, new_report: str | None) -> list[dict]:
    """The tests whose status differs between two reports (a test only in one has status None in the other)."""
    if old_report is None or new_report is None:
        return []
    old = {test["name"]: test["status"] for test in json.loads(old_report)["tests"]}
    new = {test["name"]: test["status"] for test in json.loads(new_report)["tests"]}
    return [{"test": name, "old": old.get(name), "new": new.get(name)}
            for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]


def summary_lines(regrade: dict) -> list[str]:
    """A set's summary as text: one line for the set, then one per student (old and new score side by side)."""
    lines = [f"regrade {regrade['id']} of {regrade['assignment']}: {regrade['status']}, {regrade['done']} of "
             f"{regrade['total']} done ({regrade['errors']} errors, {regrade['changed']} scores changed)"]
    width = max(len(s["student"]) for s in regrade["students"]) if regrade["students"] else 0
    for s in regrade["students"]:
        new = f"{s['new_score']:g}" if s["status"] == "graded" else s["status"]
        lines.append(f"  {s['student']:<{width}}  {s['old_score']:g} -> {new}"
                     + (f"  ({len(s['changed_tests'])} tests changed)" if s["changed_tests"] else ""))
    return lines
