"""The web app: the JSON API under /api/v1 (Authorization: Bearer TOKEN) and /healthz.

Flask, as the rest of the grader is Pallets (click, Jinja2): a WSGI app made by `create_app`, served by waitress
(`server.py`); werkzeug parses every request (multipart bodies, the size limit), nothing is parsed by hand.
Every error is JSON: {"error": "one line"}.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Callable

from flask import Flask, Response, g, jsonify, request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, NotFound

from grader.course import Assignment, Course
from grader.service.db import Database, Job, LimitOverride, Regrade, Release, User, now
from grader.service.queue import OverLimit, UploadRefused, accept_upload, limit_for, positions
from grader.service.regrades import (RegradeRefused, counts, decide, gradebook_csv, shown_to_student,
                                     start_regrade, summary)
from grader.service.users import authenticate

MAX_UPLOAD_BYTES = 10 * 2**20  # a submission is a few KiB; a notebook with outputs some MiB
API = "/api/v1"


class ApiError(HTTPException):
    """An error answered as {"error": description} with its status code."""

    def __init__(self, code: int, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.extra_headers = headers or {}


def create_app(database: Database, course: Course, *, wake: Callable[[], None] = lambda: None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, clock: Callable[[], datetime] = now) -> Flask:
    """The app over `database` and `course`; `wake` is told of each job queued (the scheduler); `clock` is the
    server's clock (a submission's time is when it was received)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the documented order of each reply
    assignments = {name: course.assignment(name) for name in course.names()}

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> Response:
        if exc.code == 413:
            description = f"the upload is larger than the limit of {max_upload_bytes // 1024} KiB"
        else:
            description = exc.description or exc.name
        response = jsonify(error=" ".join(str(description).split()))
        response.status_code = exc.code or 500
        for name, value in getattr(exc, "extra_headers", {}).items():
            response.headers[name] = value
        return response

    @app.teardown_request
    def _close(exc: BaseException | None) -> None:
        session = g.pop("session", None)
        if session is not None:
            session.close()

    def session() -> Session:
        return request_session(database)

    def user() -> User:
        """The caller, by their token; 401 without a valid one."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        found = authenticate(session(), token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if found is None:
            raise ApiError(401, "a valid token is needed: Authorization: Bearer TOKEN",
                           {"WWW-Authenticate": 'Bearer realm="grader"'})
        return found

    def staff() -> User:
        caller = user()
        if not caller.staff:
            raise ApiError(403, "this needs a staff token")
        return caller

    def assignment_named(name: str) -> Assignment:
        if name not in assignments:
            raise ApiError(404, f"no assignment {name!r} (known: {', '.join(assignments) or 'none'})")
        return assignments[name]

    def view(job: Job, caller: User, places: dict[int, int], with_report: bool) -> dict:
        data = {"id": job.id, "student": job.student, "assignment": job.assignment, "status": job.status,
                "position": places.get(job.id), "submitted_at": job.received_at.isoformat(),
                "started_at": job.started_at.isoformat() if job.started_at else None,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
                "attempt": job.attempt, "filename": job.filename, "score": job.score, "max_score": job.max_score,
                "regrade": job.regrade_id}
        report = json.loads(job.report) if job.report is not None and (with_report or not caller.staff) else None
        if report is not None:
            report["submission"]["source"] = job.filename  # not the server's path to it
            if not caller.staff:
                report = visible_report(report, assignments[job.assignment], clock(),
                                        released_groups(session(), job.assignment))
                data["score"], data["max_score"] = report["score"], report["max_score"]
        if with_report:
            data["report"] = report
        return data

    @app.get("/healthz")
    def healthz():
        queued = len(positions(session()))
        return {"status": "ok", "queued": queued}

    @app.post(f"{API}/assignments/<name>/submissions")
    def submit(name: str):
        caller = user()
        assignment = assignment_named(name)
        if request.mimetype != "multipart/form-data":
            raise ApiError(415, "send the submission as multipart/form-data, in a field named file")
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(422, "no file: send the submission in a multipart field named file")
        try:
            job, place = accept_upload(database, assignment, caller.id, upload.filename or "", upload.read(),
                                       clock())
        except OverLimit as exc:
            raise ApiError(429, exc.one_line(), {"Retry-After": str(exc.retry_after_s)}) from None
        except UploadRefused as exc:
            raise ApiError(exc.http_status, exc.one_line()) from None
        wake()
        response = jsonify(id=job.id, status=job.status, position=place)
        response.status_code = 202
        response.headers["Location"] = f"{API}/submissions/{job.id}"
        return response

    @app.get(f"{API}/submissions/<int:job_id>")
    def submission(job_id: int):
        caller = user()
        job = session().get(Job, job_id)
        if job is None or (not caller.staff and (job.student != caller.id or not shown_to_student(session(), job))):
            raise NotFound(f"no submission {job_id} of yours")  # another student's is as good as none
        return view(job, caller, positions(session()), with_report=True)

    @app.get(f"{API}/assignments/<name>/submissions")
    def submissions(name: str):
        caller = user()
        assignment_named(name)
        query = select(Job).where(Job.assignment == name).order_by(Job.id)
        student = request.args.get("student") if caller.staff else caller.id
        if student is not None:
            query = query.where(Job.student == student)
        if not caller.staff:
            query = query.where(counts())
        places = positions(session())
        return {"submissions": [view(job, caller, places, with_report=False) for job in session().scalars(query)]}

    @app.get(f"{API}/assignments/<name>/gradebook.csv")
    def gradebook(name: str):
        staff()
        assignment = assignment_named(name)
        return Response(gradebook_csv(session(), assignment), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}-gradebook.csv"'})

    @app.route(f"{API}/assignments/<name>/releases", methods=["GET", "POST"])
    def releases(name: str):
        """Staff release groups that `visibility` withholds (hidden, after_published): students then see them."""
        caller = staff()
        assignment = assignment_named(name)
        if request.method == "POST":
            body = request.get_json(silent=True)
            withheld = {g.name for g in assignment.groups if g.visibility in ("hidden", "after_published")}
            groups = body.get("groups") if isinstance(body, dict) else None
            if not (isinstance(groups, list) and groups and all(isinstance(g, str) and g in withheld for g in groups)):
                raise ApiError(422, f'send JSON {{"groups": [...]}} naming groups that visibility withholds '
                                    f'(of {name}: {", ".join(sorted(withheld)) or "none"})')
            with database.session.begin() as changing:
                released = released_groups(changing, name)
                changing.add_all(Release(assignment=name, group=g, released_by=caller.id, released_at=clock())
                                 for g in dict.fromkeys(groups) if g not in released)
        with database.reader() as fresh:
            return {"assignment": name, "released": sorted(released_groups(fresh, name))}

    @app.route(f"{API}/assignments/<name>/limits/<student>", methods=["GET", "PUT", "DELETE"])
    def student_limit(name: str, student: str):
        """Staff's own submission limit for one student (PUT {"per_hour", "burst"}; DELETE: back to the course's)."""
        staff()
        assignment = assignment_named(name)
        person = session().get(User, student)
        if person is None or person.staff:
            raise NotFound(f"no student {student!r}")
        if request.method != "GET":
            body = request.get_json(silent=True) if request.method == "PUT" else None
            if request.method == "PUT" and not (
                    isinstance(body, dict) and set(body) == {"per_hour", "burst"}
                    and isinstance(body["per_hour"], (int, float)) and not isinstance(body["per_hour"], bool)
                    and 0 < body["per_hour"] < 1e6 and isinstance(body["burst"], int)
                    and not isinstance(body["burst"], bool) and 1 <= body["burst"] <= 10_000):
                raise ApiError(422, 'send JSON {"per_hour": a number > 0, "burst": a whole number >= 1}')
            with database.session.begin() as changing:
                changing.execute(delete(LimitOverride).where(LimitOverride.student == student,
                                                             LimitOverride.assignment == name))
                if body is not None:
                    changing.add(LimitOverride(student=student, assignment=name, per_hour=float(body["per_hour"]),
                                               burst=body["burst"]))
        with database.reader() as fresh:
            limit = limit_for(fresh, assignment, student)
            override = fresh.get(LimitOverride, (student, name)) is not None
        return {"student": student, "assignment": name, "override": override,
                "per_hour": limit.per_hour if limit else None, "burst": limit.burst if limit else None}

    @app.post(f"{API}/assignments/<name>/regrades")
    def regrade(name: str):
        caller = staff()
        assignment_named(name)
        body = request.get_json(silent=True) if request.content_length else {}
        students = body.get("students") if isinstance(body, dict) else None
        if not isinstance(body, dict) or (students is not None and not (
                isinstance(students, list) and all(isinstance(s, str) for s in students))):
            raise ApiError(422, 'send nothing, or JSON {"students": ["id", ...]}')
        try:
            made = start_regrade(database, name, caller.id, students, clock(), assignments[name].counts == "best")
        except RegradeRefused as exc:
            raise ApiError(exc.http_status, exc.one_line()) from None
        wake()
        response = jsonify(summary_after(made))
        response.status_code = 201
        response.headers["Location"] = f"{API}/regrades/{made.id}"
        return response

    @app.get(f"{API}/regrades/<int:regrade_id>")
    def regrade_set(regrade_id: int):
        staff()
        return summary(session(), regrade_named(regrade_id))

    @app.post(f"{API}/regrades/<int:regrade_id>/<any(apply, discard):action>")
    def regrade_decision(regrade_id: int, action: str):
        staff()
        try:
            decided = decide(database, regrade_id, action == "apply", clock())
        except RegradeRefused as exc:
            raise ApiError(exc.http_status, exc.one_line()) from None
        if decided is None:
            raise NotFound(f"no regrade {regrade_id}")
        return summary_after(decided)

    def summary_after(regrade: Regrade) -> dict:
        """The set once changed: read in a transaction begun after the change (the request's began before)."""
        with database.reader() as fresh:
            return summary(fresh, regrade)

    def regrade_named(regrade_id: int) -> Regrade:
        found = session().get(Regrade, regrade_id)
        if found is None:
            raise NotFound(f"no regrade {regrade_id}")
        return found

    from grader.service.web import web_pages  # the pages for browsers (needs app.py's visible_report)
    app.register_blueprint(web_pages(database, assignments, wake=wake, clock=clock))
    return app


def request_session(database: Database) -> Session:
    """The request's reading session, for the API and the pages alike; create_app's teardown closes it."""
    if "session" not in g:
        g.session = database.reader()
    return g.session


def withheld_groups(assignment: Assignment, at: datetime, released: frozenset[str] = frozenset()) -> set[str]:
    """The groups a student does not see yet at `at`: `hidden` and `after_published` ones until staff release
    them (`released`), and `after_due_date` ones before the due date."""
    due = assignment.late.due
    return {group.name for group in assignment.groups
            if (group.visibility in ("hidden", "after_published") and group.name not in released)
            or (group.visibility == "after_due_date" and due is not None and at < due)}


def released_groups(session: Session, assignment: str) -> frozenset[str]:
    return frozenset(session.scalars(select(Release.group).where(Release.assignment == assignment)))


def visible_report(report: dict, assignment: Assignment, at: datetime,
                   released: frozenset[str] = frozenset()) -> dict:
    """The report as its student may see it at `at`: without the withheld groups and their tests, the score and
    maximum of what is left, no late penalty (it would tell the whole score), and `withheld` naming them."""
    hidden = withheld_groups(assignment, at, released)
    if not hidden:
        return report
    groups = [group for group in report["groups"] if group["name"] not in hidden]
    return {**report, "groups": groups, "tests": [t for t in report["tests"] if t["group"] not in hidden],
            "score": round(sum(group["score"] for group in groups), 6),
            "max_score": round(sum(group["max_score"] for group in groups), 6),
            "late": None, "withheld": sorted(hidden)}
