"""The service's web pages, for people with a browser: students sign in with their token, upload, watch their
queue position, read their feedback and history and see how many submissions they have left; staff see the class
dashboard, each student's history and download the gradebook.

A Flask blueprint beside the JSON API (`create_app` registers it). Sign-in keeps the user in Flask's signed
session cookie (the key is made once with `secrets` and kept in the data folder, so a restart signs no one out);
every form is protected by Flask-WTF's CSRFProtect (checked here for the pages only: the API takes bearer tokens,
which a browser never sends by itself). The pages are the grader's Jinja2 templates (grader/templates/service/,
autoescaped, every value made printable), with the Content-Security-Policy of the batch's pages, which allows
forms to post to this server only; the feedback page and the dashboard are grader/pages.py's own.
"""
from __future__ import annotations

import hmac
import json
import math
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from flask import Blueprint, Response, current_app, g, redirect, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFProtect, generate_csrf  # type: ignore[import-untyped]
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, HTTPException, NotFound

from grader.course import Assignment
from grader.pages import _css, _sort_script, dashboard, feedback_page
from grader.rendering import html_environment
from grader.service.db import Bucket, Database, Job, Regrade, User, now
from grader.service.queue import (OverLimit, UploadRefused, _refilled, accept_upload, limit_for, positions,
                                  upload_kinds)
from grader.service.regrades import (RegradeRefused, counts, current_results, decide, gradebook_csv,
                                     shown_to_student, start_regrade, summary)
from grader.service.users import authenticate, roster_of
from grader.submission import SubmissionError, load_submission

SECRET_FILE = "web-secret.key"  # in the data folder: the key that signs the session cookies
REFRESH_S = 2  # a page showing a submission queued or grading reloads itself this often
# As grader/templates/base.html.j2, but forms may post to this server; sent as a header too, with what only a
# header can say (no framing by other sites).
POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; base-uri 'none'; "
          "form-action 'self'")
HEADER_POLICY = POLICY + "; frame-ancestors 'none'"
LANGS = ("en", "zh")


def secret_key(data_dir: Path) -> str:
    """The data folder's key for signing session cookies, made once (readable by the server's user only)."""
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32))
        out.flush()
        os.fsync(out.fileno())
    return path.read_text(encoding="ascii").strip()


@dataclass(frozen=True)
class Allowance:
    """How many submissions a student has left now, when the next one comes, and the limit itself."""

    left: int
    burst: int
    per_hour: float
    next_at: datetime | None  # when one more is allowed (None: the bucket is full)


def allowance(db: Session, assignment: Assignment, student: str, at: datetime) -> Allowance | None:
    """The student's token bucket for `assignment` as `take_submission` will see it at `at` (None: no limit)."""
    limit = limit_for(db, assignment, student)
    if limit is None:
        return None
    bucket = db.get(Bucket, (student, assignment.name))
    tokens = float(limit.burst) if bucket is None else _refilled(bucket, limit, at)
    if tokens >= limit.burst:
        return Allowance(limit.burst, limit.burst, limit.per_hour, None)
    wait_s = math.ceil(round((math.floor(tokens) + 1 - tokens) * 3600 / limit.per_hour, 6))
    return Allowance(math.floor(tokens), limit.burst, limit.per_hour, at + timedelta(seconds=wait_s))


DASHBOARD_REFRESH_S = 10  # how often a staff's open dashboard shows the newly graded


def web_pages(database: Database, assignments: dict[str, Assignment], *, wake: Callable[[], None],
              clock: Callable[[], datetime] = now) -> Blueprint:
    """The pages' blueprint. Registering it sets the app's SECRET_KEY (from the data folder) and CSRF protection."""
    from grader.service.app import released_groups, request_session, visible_report  # app.py registers it

    pages = Blueprint("web", __name__)
    csrf = CSRFProtect()

    @pages.record_once
    def _setup(state: BlueprintSetupState) -> None:
        app = state.app
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = secret_key(database.data_dir)
        app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked below, for the pages; the API has bearer tokens
        app.config["WTF_CSRF_TIME_LIMIT"] = None  # valid as long as the session (signed out: a new one)
        app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
        csrf.init_app(app)

    @pages.before_request
    def _protect() -> None:
        if request.method == "POST":
            csrf.protect()  # a CSRFError (400) without the session's token in the form

    @pages.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", HEADER_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")  # a student's pages are theirs only
        return response

    @pages.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> tuple[str, int]:
        if exc.code == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
            description = f"the upload is larger than the limit of {limit // 1024} KiB"
        else:
            description = " ".join(str(exc.description or exc.name).split())
        return render("service/error.html.j2", f"{exc.code} {exc.name}", code=exc.code, message=description), \
            exc.code or 500

    def db() -> Session:
        return request_session(database)

    def signed_in() -> User | None:
        """The user of the session cookie, while their token is the one they signed in with."""
        user_id, key = session.get("user"), session.get("key")
        if not isinstance(user_id, str) or not isinstance(key, str):
            return None
        user = db().get(User, user_id)
        return user if user is not None and hmac.compare_digest(user.token_sha256, key) else None

    def lang() -> str:
        return request.accept_languages.best_match(LANGS) or "en"

    def render(template: str, title: str, refresh: int | None = None, **values: object) -> str:
        user = g.get("web_user")
        return html_environment().get_template(template).render(
            title=title, policy=POLICY, refresh=refresh, css=Markup(_css("base.css", "dashboard.css")), user=user,
            csrf_token=generate_csrf() if user is not None else "", **values)

    def need_user(staff: bool = False) -> User:
        user = signed_in()
        if user is None:
            raise _SignIn()
        if staff and not user.staff:
            raise Forbidden("this page is for course staff")
        g.web_user = user
        return user

    @pages.errorhandler(_SignIn)
    def _to_sign_in(exc: _SignIn):
        return redirect(url_for("web.sign_in"))

    def assignment_named(name: str) -> Assignment:
        if name not in assignments:
            raise NotFound(f"no assignment {name!r}")
        return assignments[name]

    def student_view(student: str, message: str = "", status: int = 200):
        at = clock()
        places = positions(db())
        jobs = list(db().scalars(select(Job).where(Job.student == student, counts()).order_by(Job.id.desc())))
        sections = []
        for name, assignment in assignments.items():
            mine = [job for job in jobs if job.assignment == name]
            visible = {job.id: visible_scores(job, assignment, at) for job in mine}
            sections.append({"assignment": assignment, "jobs": mine, "scores": visible,
                             "allowance": allowance(db(), assignment, student, at),
                             "accept": ",".join(upload_kinds(assignment))})
        waiting = any(job.status in ("queued", "grading") for job in jobs)
        return render("service/student.html.j2", "Your submissions", refresh=REFRESH_S if waiting else None,
                      sections=sections, places=places, message=message, now=at), status

    def visible_scores(job: Job, assignment: Assignment, at: datetime) -> tuple[float, float] | None:
        if job.report is None:
            return None
        report = visible_report(json.loads(job.report), assignment, at, released_groups(db(), assignment.name))
        return report["score"], report["max_score"]

    @pages.get("/")
    def home():
        user = signed_in()
        if user is None:
            return redirect(url_for("web.sign_in"))
        return redirect(url_for("web.staff_home" if user.staff else "web.student_home"))

    @pages.route("/signin", methods=["GET", "POST"])
    def sign_in():
        message = ""
        if request.method == "POST":
            user = authenticate(db(), request.form.get("token", "").strip())
            if user is not None:
                session.clear()  # a new session: a new CSRF token too
                session["user"], session["key"] = user.id, user.token_sha256
                return redirect(url_for("web.staff_home" if user.staff else "web.student_home"))
            message = "That token is not valid. Use the one your course staff gave you."
        return render("service/signin.html.j2", "Sign in", message=message,
                      signin_csrf=generate_csrf()), 401 if message else 200

    @pages.post("/signout")
    def sign_out():
        session.clear()
        return redirect(url_for("web.sign_in"))

    @pages.get("/me")
    def student_home():
        user = need_user()
        return student_view(user.id)

    @pages.post("/assignments/<name>/upload")
    def upload(name: str):
        user = need_user()
        assignment = assignment_named(name)
        file = request.files.get("file")
        if file is None or not file.filename:
            return student_view(user.id, "Choose a file to upload first.", 422)
        try:
            job, _ = accept_upload(database, assignment, user.id, file.filename, file.read(), clock())
        except OverLimit as exc:
            return student_view(user.id, exc.one_line(), 429)
        except UploadRefused as exc:
            return student_view(user.id, exc.one_line(), exc.http_status)
        wake()
        return redirect(url_for("web.submission", job_id=job.id), 303)

    @pages.get("/submissions/<int:job_id>")
    def submission(job_id: int):
        user = need_user()
        job = db().get(Job, job_id)
        mine = job is not None and job.student == user.id and shown_to_student(db(), job)
        if job is None or not (mine or user.staff):
            raise NotFound(f"no submission {job_id} of yours")  # another student's is as good as none
        assignment = assignments.get(job.assignment)
        if job.report is None or assignment is None:
            place = positions(db()).get(job.id)
            return render("service/waiting.html.j2", f"Submission {job.id}",
                          refresh=REFRESH_S if job.status in ("queued", "grading") else None, job=job, place=place)
        report = json.loads(job.report)
        report["submission"]["source"] = job.filename  # not the server's path to it
        if not user.staff:
            report = visible_report(report, assignment, clock(), released_groups(db(), assignment.name))
        try:
            files = load_submission(database.data_dir / job.upload, assignment, job.student, job.received_at)
        except (SubmissionError, OSError):
            files = None
        page = feedback_page(report, files, lang())
        # the page carries its own policy (no forms, no script); the header says the same
        return Response(page, mimetype="text/html", headers={"Content-Security-Policy": _PAGE_POLICY})

    @pages.get("/staff")
    def staff_home():
        need_user(staff=True)
        roster = roster_of(db())
        submitted = dict(db().execute(select(Job.student, func.count(Job.id)).group_by(Job.student)).all())
        queued = len(positions(db()))
        return render("service/staff.html.j2", "Course staff", assignments=list(assignments), roster=roster,
                      counts=submitted, queued=queued)

    @pages.get("/staff/assignments/<name>")
    def class_dashboard(name: str):
        need_user(staff=True)
        current = current_results(db(), name, assignment_named(name).counts == "best")
        reports = [json.loads(job.report) for job in current.values() if job.report is not None]
        links = {student: {"feedback": url_for("web.submission", job_id=job.id)} for student, job in current.items()}
        page = dashboard(reports, links, lang(), title=f"{name} · class dashboard")
        # the page's own policy, which allows its sorting script by hash; the header says the same
        policy = _PAGE_POLICY.replace("script-src 'none'", f"script-src 'sha256-{_sort_script()[1]}'")
        # live: the browser loads it again while the class is being graded (the Refresh header needs no script)
        return Response(page, mimetype="text/html", headers={"Content-Security-Policy": policy,
                                                             "Refresh": str(DASHBOARD_REFRESH_S)})

    @pages.get("/staff/assignments/<name>/gradebook.csv")
    def gradebook(name: str):
        need_user(staff=True)
        assignment = assignment_named(name)
        return Response(gradebook_csv(db(), assignment), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}-gradebook.csv"'})

    @pages.get("/staff/assignments/<name>/regrades")
    def regrade_sets(name: str, message: str = "", status: int = 200):
        need_user(staff=True)
        assignment_named(name)
        sets = [summary(db(), found) for found in db().scalars(
            select(Regrade).where(Regrade.assignment == name).order_by(Regrade.id.desc()))]
        return render("service/regrades.html.j2", f"{name} · regrade sets", name=name, sets=sets,
                      message=message), status

    @pages.post("/staff/assignments/<name>/regrades")
    def start_regrade_set(name: str):
        user = need_user(staff=True)
        assignment = assignment_named(name)
        try:
            made = start_regrade(database, name, user.id, None, clock(), assignment.counts == "best")
        except RegradeRefused as exc:
            return regrade_sets(name, exc.one_line(), exc.http_status)
        wake()
        return redirect(url_for("web.regrade_set", regrade_id=made.id), 303)

    @pages.get("/staff/regrades/<int:regrade_id>")
    def regrade_set(regrade_id: int, message: str = "", status: int = 200):
        need_user(staff=True)
        found = db().get(Regrade, regrade_id)
        if found is None:
            raise NotFound(f"no regrade {regrade_id}")
        refresh = REFRESH_S if found.status == "open" else None
        shown = summary(db(), found)
        if refresh and shown["done"] == shown["total"]:
            refresh = None  # done: staff decide, nothing moves any more
        return render("service/regrade.html.j2", f"Regrade set {regrade_id}", refresh=refresh, set=shown,
                      message=message), status

    @pages.post("/staff/regrades/<int:regrade_id>/<any(apply, discard):action>")
    def decide_regrade_set(regrade_id: int, action: str):
        need_user(staff=True)
        try:
            decided = decide(database, regrade_id, action == "apply", clock())
        except RegradeRefused as exc:
            db().expire_all()
            return regrade_set(regrade_id, exc.one_line(), exc.http_status)
        if decided is None:
            raise NotFound(f"no regrade {regrade_id}")
        return redirect(url_for("web.regrade_set", regrade_id=regrade_id), 303)

    @pages.get("/staff/students/<student>")
    def history(student: str):
        need_user(staff=True)
        person = db().get(User, student)
        if person is None or person.staff:
            raise NotFound(f"no student {student!r}")
        jobs = list(db().scalars(select(Job).where(Job.student == student).order_by(Job.id.desc())))
        at = clock()
        return render("service/history.html.j2", f"{student} · history", person=person, jobs=jobs,
                      places=positions(db()), allowances={name: allowance(db(), a, student, at)
                                                          for name, a in assignments.items()})

    return pages


# the feedback page's own policy (grader/templates/base.html.j2, without its script)
_PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'none'")


class _SignIn(HTTPException):
    """Not signed in: the page answers with a redirect to the sign-in form."""

    code = 401


