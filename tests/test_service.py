"""The grading service (`grader serve`): the JSON API through Flask's test client on a real database, the queue's
rules (fair order, exactly once, submission limits), users, and `grader serve` itself as a process: an upload
graded end to end, and a server killed with SIGKILL while grading that grades everything once after a restart.

Every test runs on SQLite; with GRADER_TEST_DB_URL (e.g. postgresql+psycopg://grader:grader@127.0.0.1/grader_test)
each runs on that PostgreSQL database too (its tables are dropped first).
"""
import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from grader.cli import main
from grader.course import find_course
from grader.parallel import worker_pool
from grader.formats import validate_report
from grader.service.app import create_app
from grader.service.db import REGRADE, Base, Database, Job, User, now
from grader.service.regrades import current_results, gradebook_csv
from grader.service.queue import (Scheduler, UploadRefused, accept_upload, claim_next, fair_order, record,
                                  remove_unacknowledged, requeue_interrupted)
from grader.service.users import add_staff, import_roster, token_hash

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"
DB_URL = os.environ.get("GRADER_TEST_DB_URL")


def zipped(sample: str, extra: dict[str, str] | None = None) -> bytes:
    """A sample submission as a zip, as a student uploads it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted((SAMPLES / sample).glob("*.py")):
            archive.write(path, path.name)
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return out.getvalue()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """None (SQLite in the data folder), or the PostgreSQL database of GRADER_TEST_DB_URL, emptied."""
    if request.param == "sqlite":
        return None
    if not DB_URL:
        pytest.skip("GRADER_TEST_DB_URL is not set (a PostgreSQL database for the service's tests)")
    engine = create_engine(DB_URL)
    Base.metadata.drop_all(engine)
    engine.dispose()
    return DB_URL


@pytest.fixture
def database(tmp_path, db_url):
    database = Database(tmp_path / "data", db_url)
    yield database
    database.close()


@pytest.fixture(scope="module")
def course():
    return find_course(ROOT)


@pytest.fixture(scope="module")
def strict_course(tmp_path_factory):
    """The course with micrograd's limit at 2 uploads at once and 2 per hour, and its training group hidden."""
    root = tmp_path_factory.mktemp("course")
    for part in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for settings in (root / "assignments" / "micrograd" / "assignment.toml",
                     root / "reference" / "micrograd" / "assignment.toml"):
        text = settings.read_text(encoding="utf-8")
        text = re.sub(r"per_hour = \d+\nburst = \d+", "per_hour = 2\nburst = 2", text)
        text = re.sub(r'(\[groups\.training\]\n(?:.*\n)*?)visibility = "visible"', r'\1visibility = "hidden"', text,
                      count=1)
        assert 'visibility = "hidden"' in text
        settings.write_text(text, encoding="utf-8")
    return find_course(root)


class Api:
    """Flask's test client, with a clock the test moves and tokens by user."""

    def __init__(self, database, course, **options):
        self.database = database
        self.time = now()
        self.woken = 0
        self.app = create_app(database, course, clock=lambda: self.time, wake=self.wake, **options)
        self.client = self.app.test_client()
        with open_roster(database) as roster:
            self.tokens = dict(import_roster(database, roster)[0])
        self.tokens["ta"] = add_staff(database, "ta")

    def wake(self):
        self.woken += 1

    def headers(self, user):
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}

    def upload(self, user, data, filename="work.zip", assignment="micrograd"):
        return self.client.post(f"/api/v1/assignments/{assignment}/submissions", headers=self.headers(user),
                                data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")

    def get(self, user, path):
        return self.client.get(path, headers=self.headers(user))


class open_roster:
    """A roster of three students in a temporary file."""

    def __init__(self, database):
        self.path = database.data_dir.parent / f"roster-{uuid.uuid4().hex}.csv"

    def __enter__(self):
        self.path.write_text("id,name,email\nbob,Bob,bob@example.org\nalice,Alice,alice@example.org\n"
                             "carol,Carol,carol@example.org\n", encoding="utf-8")
        return self.path

    def __exit__(self, *exc):
        self.path.unlink()


@pytest.fixture
def api(database, course):
    return Api(database, course)


def stored_uploads(database):
    return sorted(p.relative_to(database.data_dir) for p in (database.data_dir / "uploads").rglob("*"))


def jobs(database):
    with database.reader() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def finish(database, job, report):
    """What the scheduler does when `job` (claimed) is graded."""
    assert record(database, job, report, "<html></html>", find_course(ROOT).assignment(job.assignment))


@pytest.fixture(scope="module")
def bob_report(course):
    """A real report of bob's submission (tanh's backward is wrong)."""
    from grader.grading import grade_path

    return grade_path(SAMPLES / "bob_tanh_bug", course.assignment("micrograd"), student="bob").to_dict()


# ------------------------------------------------------------------ uploads

def test_an_upload_is_acknowledged_once_it_and_its_job_are_committed(api, database):
    reply = api.upload("bob", zipped("bob_tanh_bug"), "bob.zip")
    assert reply.status_code == 202, reply.json
    assert reply.json == {"id": 1, "status": "queued", "position": 1}
    assert reply.headers["Location"] == "/api/v1/submissions/1" and api.woken == 1
    [job] = jobs(database)
    assert (job.student, job.assignment, job.status, job.attempt, job.filename) == ("bob", "micrograd", "queued", 0,
                                                                                     "bob.zip")
    assert job.received_at == api.time and job.started_at is None and job.report is None
    stored = database.data_dir / job.upload
    assert stored.read_bytes() == zipped("bob_tanh_bug") and stored.is_relative_to(database.data_dir)
    got = api.get("bob", "/api/v1/submissions/1").json
    assert got == {"id": 1, "student": "bob", "assignment": "micrograd", "status": "queued", "position": 1,
                   "submitted_at": api.time.isoformat(), "started_at": None, "finished_at": None, "attempt": 0,
                   "filename": "bob.zip", "score": None, "max_score": None, "regrade": None, "report": None}
    assert api.get(None, "/healthz").json == {"status": "ok", "queued": 1}


def test_assignment_toml_sets_the_submission_limit(course):
    from grader.course import SubmissionLimit

    assert course.assignment("micrograd").submissions == SubmissionLimit(per_hour=12.0, burst=6)
    assert course.assignment("micrograd-classify").submissions is None  # no limit


def test_a_notebook_is_a_submission_too(api):
    notebook = ROOT / "submissions" / "micrograd" / "notebook_student"
    data = next(notebook.glob("*.ipynb")).read_bytes()
    assert api.upload("bob", data, "micrograd.ipynb").status_code == 202


def test_a_single_py_file_is_a_submission_of_a_one_file_assignment(tmp_path, database):
    from test_toy_assignment import FILES

    for rel, text in FILES.items():
        (tmp_path / "toy" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "toy" / rel).write_text(text.lstrip("\n"), encoding="utf-8")
    api = Api(database, find_course(tmp_path / "toy"))
    reply = api.upload("bob", b"def square(x):\n    return x * x\n", "my_square.py", assignment="toy")
    assert reply.status_code == 202, reply.json
    [job] = jobs(database)
    assert (database.data_dir / job.upload / "square.py").read_text() == "def square(x):\n    return x * x\n"
    assert api.upload("bob", b"x", "square.txt", assignment="toy").json == {
        "error": "square.txt: expected a .zip, a .ipynb or a .py file"}


def test_uploads_no_job_names_are_removed_at_the_start(api, database):
    api.upload("bob", zipped("bob_tanh_bug"))
    (database.data_dir / "uploads" / "0123abcd").mkdir()  # stored, then the server died before the commit
    (database.data_dir / "uploads" / "0123abcd" / "submission.zip").write_bytes(b"x")
    assert remove_unacknowledged(database) == 1
    assert stored_uploads(database) == [Path(jobs(database)[0].upload).parent, Path(jobs(database)[0].upload)]


def test_tokens_are_needed_stored_hashed_and_each_student_sees_their_own_only(api, database):
    assert api.upload(None, zipped("bob_tanh_bug")).status_code == 401
    for header in ("Bearer nonsense", f"Basic {api.tokens['bob']}", "Bearer", ""):
        reply = api.client.get("/api/v1/assignments/micrograd/submissions", headers={"Authorization": header})
        assert reply.status_code == 401 and reply.json == {"error": "a valid token is needed: Authorization: "
                                                                    "Bearer TOKEN"}
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    with database.reader() as session:
        users = {u.id: u for u in session.scalars(select(User))}
    assert set(users) == {"bob", "alice", "carol", "ta"} and users["ta"].staff and not users["bob"].staff
    for user, token in api.tokens.items():  # only the hash is kept
        assert users[user].token_sha256 == hashlib.sha256(token.encode()).hexdigest() != token
        assert len(token) >= 40
    assert api.upload("bob", zipped("bob_tanh_bug")).status_code == 202
    assert api.upload("alice", zipped("alice_correct")).status_code == 202
    assert api.get("alice", "/api/v1/submissions/1").status_code == 404  # bob's: as good as none
    assert api.get("alice", "/api/v1/submissions/1").json == {"error": "no submission 1 of yours"}
    assert api.get("bob", "/api/v1/submissions/1").status_code == 200
    assert api.get("bob", "/api/v1/submissions/99").status_code == 404
    own = api.get("alice", "/api/v1/assignments/micrograd/submissions?student=bob").json["submissions"]
    assert [s["student"] for s in own] == ["alice"]  # a student's filter is themselves
    everyone = api.get("ta", "/api/v1/assignments/micrograd/submissions").json["submissions"]
    assert [(s["id"], s["student"], s["position"]) for s in everyone] == [(1, "bob", 1), (2, "alice", 2)]
    assert [s["id"] for s in api.get("ta", "/api/v1/assignments/micrograd/submissions?student=alice")
            .json["submissions"]] == [2]
    assert api.get("ta", "/api/v1/submissions/1").json["student"] == "bob"
    assert api.get("bob", "/api/v1/assignments/micrograd/gradebook.csv").status_code == 403
    assert api.get("bob", "/api/v1/assignments/nope/submissions").json == {
        "error": "no assignment 'nope' (known: micrograd, micrograd-classify)"}


def bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("engine.py", b"#" * (21 * 2**20))
    return out.getvalue()


def traversal() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../engine.py", "x = 1\n")
    return out.getvalue()


@pytest.mark.parametrize("filename, data, status, error", [
    ("bob.zip", b"not a zip", 422, "bob.zip: not a readable zip file (File is not a zip file)"),
    ("bob.zip", traversal(), 422, "bob.zip: entry '../../engine.py' points outside the archive"),
    ("bob.zip", bomb(), 422, "bob.zip: more than 20 MiB when unpacked"),
    ("../bob.zip", zipped("bob_tanh_bug"), 422,
     "'../bob.zip': the file name must be a plain name such as micrograd.zip, without a folder"),
    ("engine.py", b"x = 1\n", 422, "engine.py: expected a .zip or a .ipynb file"),
    ("notes.zip", zipped("bob_tanh_bug", {"notes.txt": "hi"}).replace(b"engine.py", b"engine.px")
     .replace(b"nn.py", b"nn.px").replace(b"train.py", b"train.px"), 422,
     "notes.zip: none of engine.py, nn.py, train.py and no single notebook found; it holds nothing"),
])
def test_what_is_not_a_submission_is_refused_in_one_line_and_nothing_is_stored(api, database, filename, data,
                                                                                status, error):
    reply = api.upload("bob", data, filename)
    assert (reply.status_code, reply.json) == (status, {"error": error})
    assert stored_uploads(database) == [] and jobs(database) == [] and api.woken == 0


def test_a_file_name_with_a_windows_folder_is_refused(database, course):
    # Called directly: how a backslash in a multipart file name reaches the app depends on Werkzeug's version
    # (3.1.9 reads it as a quoted-string escape and drops it; a browser may send it as it is).
    with pytest.raises(UploadRefused, match=r"^'\.\.\\\\bob\.zip': the file name must be a plain name such as "
                                           r"micrograd\.zip, without a folder$"):
        accept_upload(database, course.assignment("micrograd"), "bob", "..\\bob.zip", zipped("bob_tanh_bug"), now())
    assert stored_uploads(database) == [] and jobs(database) == []


def test_requests_that_are_not_uploads_are_refused_in_one_line(database, course):
    api = Api(database, course, max_upload_bytes=4096)
    reply = api.upload("bob", zipped("alice_correct") + b"\0" * 4096)
    assert (reply.status_code, reply.json) == (413, {"error": "the upload is larger than the limit of 4 KiB"})
    reply = api.client.post("/api/v1/assignments/micrograd/submissions", headers=api.headers("bob"),
                            data=zipped("bob_tanh_bug"), content_type="application/zip")
    assert (reply.status_code, reply.json) == (415, {"error": "send the submission as multipart/form-data, in a "
                                                              "field named file"})
    reply = api.client.post("/api/v1/assignments/micrograd/submissions", headers=api.headers("bob"),
                            data={"other": (io.BytesIO(b"x"), "a.zip")}, content_type="multipart/form-data")
    assert (reply.status_code, reply.json) == (422, {"error": "no file: send the submission in a multipart field "
                                                              "named file"})
    assert api.client.get("/api/v1/nothing").json == {"error": "The requested URL was not found on the server. If "
                                                               "you entered the URL manually please check your "
                                                               "spelling and try again."}
    assert stored_uploads(database) == [] and jobs(database) == []


# ------------------------------------------------------------------ the queue

def test_the_fair_order_takes_each_students_first_job_before_anyones_second_and_uploads_before_regrades():
    #          id, student, priority, status
    queue = [(1, "ann", 0, "grading"), (2, "ann", 0, "queued"), (3, "ann", 0, "queued"), (4, "ann", 0, "queued"),
             (5, "ben", 0, "queued"), (6, "cat", 1, "queued"), (7, "ben", 0, "queued"), (8, "dan", 0, "queued")]
    assert fair_order(queue) == [5, 8, 2, 7, 3, 4, 6]


def test_positions_follow_the_fair_order_and_a_regrade_waits_for_uploads(api, database):
    for _ in range(3):
        assert api.upload("bob", zipped("bob_tanh_bug")).status_code == 202
    reply = api.upload("alice", zipped("alice_correct"))
    assert reply.json["position"] == 2  # before bob's second and third
    with database.session.begin() as session:
        session.add(Job(student="carol", assignment="micrograd", priority=REGRADE, upload="x", filename="x.zip"))
    places = {s["id"]: s["position"] for s in api.get("ta", "/api/v1/assignments/micrograd/submissions")
              .json["submissions"]}
    assert places == {1: 1, 2: 3, 3: 4, 4: 2, 5: 5}
    claimed = claim_next(database)
    assert (claimed.id, claimed.status, claimed.attempt) == (1, "grading", 1) and claimed.started_at is not None
    assert api.get("bob", "/api/v1/submissions/2").json["position"] == 2  # alice's first still goes first


def test_a_job_is_graded_exactly_once_even_when_its_server_was_killed(api, database, bob_report):
    api.upload("bob", zipped("bob_tanh_bug"))
    first = claim_next(database)
    assert claim_next(database) is None  # one job, and it is taken
    assert requeue_interrupted(database) == 1  # the server was killed: the next one starts it again
    again = claim_next(database)
    assert (again.id, again.attempt) == (first.id, 2)
    assert not record(database, first, bob_report, "", find_course(ROOT).assignment("micrograd"))  # a stale attempt
    finish(database, again, bob_report)
    assert not record(database, again, bob_report, "", find_course(ROOT).assignment("micrograd"))  # recorded once
    assert requeue_interrupted(database) == 0
    [job] = jobs(database)
    assert (job.status, job.attempt, job.score, job.max_score) == ("graded", 2, 95.0, 100.0)
    got = api.get("bob", f"/api/v1/submissions/{job.id}").json
    assert (got["status"], got["position"], got["score"]) == ("graded", None, 95.0)
    assert got["report"]["submission"]["source"] == "work.zip"  # not the server's path


def test_the_submission_limit_is_a_token_bucket_and_a_grader_error_gives_one_back(database, strict_course,
                                                                                  bob_report):
    api = Api(database, strict_course)
    assert [api.upload("bob", zipped("bob_tanh_bug")).status_code for _ in range(2)] == [202, 202]
    over = api.upload("bob", zipped("bob_tanh_bug"))
    assert over.status_code == 429 and over.headers["Retry-After"] == "1800"
    assert over.json == {"error": "over the limit of 2 submissions at once and 2 per hour for micrograd: the next one "
                                  "is allowed in 1800 s"}
    assert api.upload("alice", zipped("alice_correct")).status_code == 202  # per student
    api.time += timedelta(minutes=20)
    assert api.upload("bob", zipped("bob_tanh_bug")).headers["Retry-After"] == "600"
    api.time += timedelta(minutes=10)
    assert api.upload("bob", zipped("bob_tanh_bug")).status_code == 202
    assert api.upload("bob", zipped("bob_tanh_bug")).status_code == 429
    job = claim_next(database)
    assert job.student == "bob"
    failed = {**bob_report, "status": "error", "errors": [{"id": "grading_failed", "message": "the grader failed"}]}
    finish(database, job, failed)  # the grader's fault: the attempt is given back
    assert jobs(database)[0].status == "error"
    assert api.upload("bob", zipped("bob_tanh_bug")).status_code == 202
    assert api.upload("bob", zipped("bob_tanh_bug")).status_code == 429
    assert len(stored_uploads(database)) == 2 * len(jobs(database))  # a folder and its file per job, no more


def test_a_student_does_not_see_hidden_groups_and_staff_do(database, strict_course, bob_report):
    api = Api(database, strict_course)
    api.upload("bob", zipped("bob_tanh_bug"))
    finish(database, claim_next(database), bob_report)
    mine = api.get("bob", "/api/v1/submissions/1").json
    assert [g["name"] for g in mine["report"]["groups"]] == ["ops", "backprop", "nn"]
    assert mine["report"]["withheld"] == ["training"] and mine["report"]["late"] is None
    assert not [t for t in mine["report"]["tests"] if t["group"] == "training"]
    assert mine["score"] == mine["report"]["score"] == 75.0 and mine["max_score"] == 80.0
    validate_report(mine["report"])  # what a student gets is a report like any other (its own sums included)
    assert api.get("bob", "/api/v1/assignments/micrograd/submissions").json["submissions"][0]["score"] == 75.0
    staff = api.get("ta", "/api/v1/submissions/1").json
    assert staff["score"] == 95.0 and len(staff["report"]["groups"]) == 4 and "withheld" not in staff["report"]


def test_staff_override_a_students_limit_and_put_it_back(database, strict_course):
    api = Api(database, strict_course)
    path = "/api/v1/assignments/micrograd/limits/bob"
    assert api.client.put(path, headers=api.headers("bob"), json={"per_hour": 9, "burst": 9}).status_code == 403
    assert api.get("ta", path).json == {"student": "bob", "assignment": "micrograd", "override": False,
                                        "per_hour": 2.0, "burst": 2}
    for bad in ({"per_hour": 0, "burst": 3}, {"per_hour": 5, "burst": 1.5}, {"burst": 3}, [], {"per_hour": True,
                                                                                               "burst": 2}):
        reply = api.client.put(path, headers=api.headers("ta"), json=bad)
        assert reply.status_code == 422 and reply.json["error"].startswith('send JSON {"per_hour"')
    assert api.client.put("/api/v1/assignments/micrograd/limits/ta", headers=api.headers("ta"),
                          json={"per_hour": 1, "burst": 1}).status_code == 404  # staff have no limit to set
    reply = api.client.put(path, headers=api.headers("ta"), json={"per_hour": 1, "burst": 4})
    assert reply.json == {"student": "bob", "assignment": "micrograd", "override": True, "per_hour": 1.0, "burst": 4}
    assert [api.upload("bob", zipped("bob_tanh_bug")).status_code for _ in range(5)] == [202] * 4 + [429]
    assert [api.upload("alice", zipped("bob_tanh_bug")).status_code for _ in range(3)] == [202, 202, 429]
    assert api.client.delete(path, headers=api.headers("ta")).json["override"] is False
    api.time += timedelta(hours=1)  # back to the course's limit: 2 at once, 2 per hour
    assert [api.upload("bob", zipped("bob_tanh_bug")).status_code for _ in range(2)] == [202, 202]
    assert api.upload("bob", zipped("bob_tanh_bug")).headers["Retry-After"] == "1800"


def test_staff_release_a_hidden_group_to_the_students(database, strict_course, bob_report):
    api = Api(database, strict_course)
    api.upload("bob", zipped("bob_tanh_bug"))
    finish(database, claim_next(database), bob_report)
    assert api.get("bob", "/api/v1/submissions/1").json["report"]["withheld"] == ["training"]
    path = "/api/v1/assignments/micrograd/releases"
    assert api.client.post(path, headers=api.headers("bob"), json={"groups": ["training"]}).status_code == 403
    refused = api.client.post(path, headers=api.headers("ta"), json={"groups": ["ops"]})
    assert refused.status_code == 422 and refused.json["error"].endswith("(of micrograd: training)")
    assert api.get("ta", path).json == {"assignment": "micrograd", "released": []}
    released = api.client.post(path, headers=api.headers("ta"), json={"groups": ["training", "training"]})
    assert released.json == {"assignment": "micrograd", "released": ["training"]}
    assert api.client.post(path, headers=api.headers("ta"), json={"groups": ["training"]}).status_code == 200
    mine = api.get("bob", "/api/v1/submissions/1").json
    assert "withheld" not in mine["report"] and mine["score"] == 95.0 and len(mine["report"]["groups"]) == 4


def test_the_gradebook_takes_the_best_submission_when_assignment_toml_says_so(database, course, bob_report):
    from dataclasses import replace

    best = replace(course.assignment("micrograd"), counts="best")
    api = Api(database, course)
    for sample, score in (("alice_correct", 100.0), ("bob_tanh_bug", 95.0)):  # the better one first
        api.upload("bob", zipped(sample))
        finish(database, claim_next(database), {**bob_report, "score": score})
    with database.reader() as session:
        assert current_results(session, "micrograd")["bob"].id == 2  # latest
        assert current_results(session, "micrograd", best=True)["bob"].id == 1
        rows = list(csv.DictReader(io.StringIO(gradebook_csv(session, best))))
    assert [(r["student"], r["total"]) for r in rows if r["student"] == "bob"] == [("bob", "100.0")]
    assert course.assignment("micrograd").counts == "latest"  # the default


def test_the_gradebook_has_each_students_latest_graded_submission_with_the_late_policy_at_upload(api, database,
                                                                                                   bob_report):
    alice = {**bob_report, "student": "alice"}
    api.upload("bob", zipped("bob_tanh_bug"))
    api.upload("alice", zipped("alice_correct"))
    api.upload("bob", zipped("bob_tanh_bug"))  # queued: not in the gradebook yet
    finish(database, claim_next(database), bob_report)
    finish(database, claim_next(database), alice)
    reply = api.get("ta", "/api/v1/assignments/micrograd/gradebook.csv")
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    assert reply.headers["Content-Disposition"] == 'attachment; filename="micrograd-gradebook.csv"'
    rows = {row["student"]: row for row in csv.DictReader(io.StringIO(reply.text))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert (rows["bob"]["name"], rows["bob"]["email"], rows["bob"]["total"], rows["bob"]["status"]) == (
        "Bob", "bob@example.org", "95.0", "graded")
    assert rows["carol"]["status"] == "missing"


# ------------------------------------------------------------------ grading, users, the command

def wait_for(condition, timeout=60.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s")


def test_the_scheduler_grades_an_upload_with_the_batchs_workers_and_the_servers_clock(database, course):
    api = Api(database, course)
    scheduler = Scheduler(database, course, 1, make_pool=worker_pool)
    scheduler.start()
    try:
        forged = json.dumps({"submitted_at": "2020-01-01T00:00:00+00:00"})
        reply = api.upload("bob", zipped("bob_tanh_bug", {"work.submission.json": forged,
                                                          "submission.submission.json": forged}))
        scheduler.wake()
        got = wait_for(lambda: (s := api.get("bob", f"/api/v1/submissions/{reply.json['id']}").json)["status"]
                       in ("graded", "error") and s)
    finally:
        scheduler.stop()
    assert got["status"] == "graded" and got["score"] == 95.0 and got["attempt"] == 1
    assert got["report"]["late"]["submitted_at"] == api.time.isoformat()  # the server's clock, not the upload's
    tanh = [t for t in got["report"]["tests"] if t["function"] == "Value.tanh" and t["status"] == "failed"]
    assert tanh and "tanh backward is wrong" in tanh[0]["feedback"]
    [job] = jobs(database)
    assert job.started_at <= job.finished_at and "<html" in job.page


def test_users_import_prints_tokens_once_and_add_staff_prints_one(tmp_path, db_url):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\nbob,Bob,bob@example.org\nalice,Alice,alice@example.org\n", encoding="utf-8")
    data = tmp_path / "data"
    db = ["--db", db_url] if db_url else []
    runner = CliRunner()
    result = runner.invoke(main, ["users", "import", "--data", str(data), *db, str(roster)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["student", "token"] and [r[0] for r in rows[1:]] == ["bob", "alice"]
    roster.write_text("id,name,email\nbob,Robert,bob@example.org\ncarol,Carol,carol@example.org\n", encoding="utf-8")
    again = runner.invoke(main, ["users", "import", "--data", str(data), *db, str(roster)])
    assert [r[0] for r in csv.reader(io.StringIO(again.stdout))] == ["student", "carol"]
    assert "kept the tokens of 1 students who have an account: bob" in again.stderr
    staff = runner.invoke(main, ["users", "add-staff", "--data", str(data), *db, "ta"])
    assert staff.exit_code == 0 and len(staff.stdout.strip()) >= 40
    twice = runner.invoke(main, ["users", "add-staff", "--data", str(data), *db, "ta"])
    assert twice.exit_code == 2 and twice.stderr == "Error: 'ta' has an account already\n"
    database = Database(data, db_url)
    with database.reader() as session:
        users = {u.id: (u.name, u.staff, u.token_sha256) for u in session.scalars(select(User))}
    database.close()
    assert users["bob"] == ("Robert", False, token_hash(rows[1][1]))
    assert users["ta"] == ("ta", True, token_hash(staff.stdout.strip()))
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\nx,X\n", encoding="utf-8")
    result = runner.invoke(main, ["users", "import", "--data", str(data), *db, str(bad)])
    assert result.exit_code == 2 and "bad.csv:1: the header must be" in result.stderr


class Server:
    """`grader serve` as a process, on a free port."""

    def __init__(self, data: Path, db_url: str | None, jobs: int = 2, scheduler: str | None = None):
        command = [sys.executable, "-m", "grader", "serve", "--data", str(data), "--port", "0", "--jobs", str(jobs)]
        command += ["--scheduler", scheduler] if scheduler else []
        self.process = subprocess.Popen(command + (["--db", db_url] if db_url else []), cwd=ROOT,
                                        stderr=subprocess.PIPE, text=True)
        line = self.process.stderr.readline()
        match = re.search(r"serving (http://\S+)", line)
        assert match, line + self.process.stderr.read()
        self.url = match.group(1)
        self.line = line

    def request(self, path, token, body=None, headers=None):
        request = urllib.request.Request(self.url + path, data=body, headers={
            "Authorization": f"Bearer {token}", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def upload(self, token, data, filename="work.zip"):
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/zip\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return self.request("/api/v1/assignments/micrograd/submissions", token, body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self.process.stderr.close()


def users(data: Path, db_url: str | None, roster: list[str]) -> dict[str, str]:
    (data.parent / "roster.csv").write_text("id,name,email\n" + "".join(f"{s},{s},{s}@example.org\n" for s in roster),
                                            encoding="utf-8")
    db = ["--db", db_url] if db_url else []
    result = subprocess.run([sys.executable, "-m", "grader", "users", "import", "--data", str(data), *db,
                             str(data.parent / "roster.csv")], cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(list(csv.reader(io.StringIO(result.stdout)))[1:])


@pytest.mark.slow
def test_grader_serve_grades_an_upload_end_to_end(tmp_path, db_url):
    data = tmp_path / "data"
    tokens = users(data, db_url, ["bob"])
    server = Server(data, db_url)
    try:
        assert server.request("/healthz", "") == (200, {"status": "ok", "queued": 0})
        started = time.monotonic()
        status, reply = server.upload(tokens["bob"], zipped("bob_tanh_bug"), "bob_tanh_bug.zip")
        accepted = time.monotonic() - started
        assert (status, reply["status"]) == (202, "queued"), reply
        got = wait_for(lambda: (s := server.request(f"/api/v1/submissions/{reply['id']}", tokens["bob"])[1])
                       ["status"] == "graded" and s, every=0.05)
        graded = time.monotonic() - started
    finally:
        server.stop()
    assert server.process.returncode == 0  # SIGTERM is how a service is stopped: not a failure
    tanh = [t["feedback"] for t in got["report"]["tests"] if t["function"] == "Value.tanh" and t["status"] != "passed"]
    assert tanh and tanh[0].startswith("tanh backward is wrong")
    print(f"accepted in {accepted * 1000:.0f} ms, graded in {graded:.2f} s")


@pytest.fixture(params=["local", "dask"])
def workers(request):
    """Where the service grades: its own worker processes, or a Dask cluster's (`--scheduler`)."""
    if request.param == "local":
        yield None
    else:
        cluster = request.getfixturevalue("dask_cluster")
        yield cluster.address


@pytest.mark.slow
def test_a_server_killed_while_grading_grades_every_acknowledged_upload_once_after_a_restart(tmp_path, db_url,
                                                                                            workers):
    data = tmp_path / "data"
    students = ["ann", "ben", "cat", "dan", "eve"]
    tokens = users(data, db_url, students)
    server = Server(data, db_url, jobs=2, scheduler=workers)
    acknowledged = []
    samples = ["bob_tanh_bug", "alice_correct", "carol_overwrite_grad", "dave_no_topo", "erin_bias_missing"]
    for round_ in range(6):  # 30 uploads: the course's limit lets each student make 6 at once
        for student, sample in zip(students, samples):
            status, reply = server.upload(tokens[student], zipped(sample, {"round.txt": str(round_)}))
            assert status == 202, reply
            acknowledged.append((reply["id"], student, sample))
    database = Database(data, db_url)
    try:
        wait_for(lambda: [j for j in jobs(database) if j.status == "grading"], every=0.01)
        server.stop(signal.SIGKILL)
        left = {j.id: j.status for j in jobs(database)}
        assert "grading" in left.values() and "queued" in left.values()
        server = Server(data, db_url, jobs=2, scheduler=workers)
        assert re.search(r"[1-9]\d* interrupted submissions queued again", server.line)
        wait_for(lambda: all(j.status in ("graded", "error") for j in jobs(database)), timeout=120)
        server.stop()
        done = jobs(database)
    finally:
        database.close()
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)
    assert [(j.id, j.student) for j in done] == [(i, s) for i, s, _ in acknowledged]  # none lost, none added
    assert {j.status for j in done} == {"graded"}
    for job, (_, _, sample) in zip(done, acknowledged):
        report = json.loads(job.report)
        assert report["student"] == job.student and report["score"] == job.score
        assert (job.score == 100) == (sample == "alice_correct")
        assert job.attempt == (2 if left[job.id] == "grading" else 1)
        assert job.started_at <= job.finished_at
        assert ("cluster" in report) == (workers is not None)  # graded where the server was told to
    assert len(list((data / "uploads").iterdir())) == len(acknowledged)


def test_without_flask_the_commands_say_how_to_repair_the_installation(tmp_path):
    code = ("import sys; sys.modules['flask'] = None; from grader.cli import main; "
            f"main(['users', 'add-staff', '--data', {str(tmp_path / 'data')!r}, 'ta'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == ("Error: the grading service needs flask, which installs with the grader: "
                             "pip install micrograd-grader\n")
    assert not (tmp_path / "data").exists()


def test_a_port_already_taken_is_one_line_and_exit_2(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "grader", "serve", "--data", str(tmp_path / "data"), "--port",
                                 str(port)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.endswith(f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n")
    assert "Traceback" not in result.stderr
