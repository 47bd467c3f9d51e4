"""Regrade sets of the grading service: staff regrade each student's current result into jobs of the set's own
(after every upload), compare old and new scores side by side, and apply or discard them; the old results stay.
Through Flask's test client on a real database (SQLite, and PostgreSQL with GRADER_TEST_DB_URL, as test_service)."""
import copy
import csv
import io
import subprocess
import sys

import pytest
from click.testing import CliRunner
from test_service import (ROOT, Api, Server, api, bob_report, course, database, db_url, finish,  # noqa: F401
                          jobs, strict_course, users, wait_for, zipped)

from grader.cli import main
from grader.service.db import REGRADE, UPLOAD
from grader.service.queue import claim_next, record


@pytest.fixture
def fixed_report(bob_report):  # noqa: F811 - a fixture of test_service
    """bob's report once the course counts his tanh as right: every test passes."""
    report = copy.deepcopy(bob_report)
    for test in report["tests"]:
        test["status"], test["score"], test["feedback"] = "passed", test["max_score"], ""
    for group in report["groups"]:
        group["score"] = group["max_score"]
    report["score"] = report["max_score"]
    return report


def failed(report):
    return {**report, "status": "error", "errors": [{"id": "grading_failed", "message": "the grader failed"}]}


def gradebook(api):  # noqa: F811
    reply = api.get("ta", "/api/v1/assignments/micrograd/gradebook.csv")
    return {row["student"]: (row["total"], row["status"]) for row in csv.DictReader(io.StringIO(reply.text))}


def start(api, body=None):  # noqa: F811
    return api.client.post("/api/v1/assignments/micrograd/regrades", headers=api.headers("ta"), json=body)


def graded_class(api, database, bob_report):  # noqa: F811
    """bob (95) and alice (95 too, the same report) graded; carol has no submission."""
    api.upload("bob", zipped("bob_tanh_bug"))
    api.upload("alice", zipped("bob_tanh_bug"))
    finish(database, claim_next(database), bob_report)
    finish(database, claim_next(database), {**bob_report, "student": "alice"})


def test_a_regrade_set_keeps_the_old_results_beside_the_new_until_staff_apply_it(api, database, bob_report,  # noqa: F811
                                                                                   fixed_report):
    graded_class(api, database, bob_report)
    assert api.client.post("/api/v1/assignments/micrograd/regrades", headers=api.headers("bob")).status_code == 403
    assert api.client.post("/api/v1/assignments/micrograd/regrades").status_code == 401
    reply = start(api)
    assert reply.status_code == 201 and reply.headers["Location"] == "/api/v1/regrades/1" and api.woken == 3
    assert {k: reply.json[k] for k in ("id", "assignment", "status", "created_by", "total", "done", "changed")} == {
        "id": 1, "assignment": "micrograd", "status": "open", "created_by": "ta", "total": 2, "done": 0, "changed": 0}
    old_bob, old_alice, new_bob, new_alice = jobs(database)
    assert (new_bob.priority, new_bob.regrade_id, new_bob.regrade_of, new_bob.status) == (REGRADE, 1, 1, "queued")
    assert (new_bob.upload, new_bob.received_at) == (old_bob.upload, old_bob.received_at)  # the same submission
    api.upload("carol", zipped("alice_correct"))
    assert claim_next(database).student == "carol"  # an upload goes before the regrade
    assert api.client.post("/api/v1/regrades/1/apply", headers=api.headers("ta")).json == {
        "error": "regrade 1 is not done (0 of 2 graded): apply it when it is"}
    bob_job, alice_job = claim_next(database), claim_next(database)
    finish(database, bob_job, fixed_report)
    finish(database, alice_job, failed({**bob_report, "student": "alice"}))

    got = api.get("ta", "/api/v1/regrades/1").json
    assert (got["done"], got["errors"], got["changed"]) == (2, 1, 1)
    alice, bob = got["students"]
    assert (bob["student"], bob["submission"], bob["job"], bob["status"]) == ("bob", old_bob.id, new_bob.id, "graded")
    assert (bob["old_score"], bob["new_score"], bob["old_max_score"], bob["new_max_score"]) == (95.0, 100.0, 100.0,
                                                                                                100.0)
    assert bob["changed_tests"] and {(t["old"], t["new"]) for t in bob["changed_tests"]} == {("failed", "passed")}
    assert (alice["status"], alice["old_score"]) == ("error", 95.0)
    assert api.get("bob", "/api/v1/submissions/3").status_code == 404  # not the student's result until applied
    assert [s["id"] for s in api.get("bob", "/api/v1/assignments/micrograd/submissions").json["submissions"]] == [1]
    assert gradebook(api)["bob"] == ("95.0", "graded")

    assert api.client.post("/api/v1/regrades/1/apply", headers=api.headers("bob")).status_code == 403
    applied = api.client.post("/api/v1/regrades/1/apply", headers=api.headers("ta"))
    assert applied.status_code == 200 and applied.json["status"] == "applied" and applied.json["decided_at"]
    assert gradebook(api) == {"bob": ("100.0", "graded"), "alice": ("95.0", "graded"),  # an error is not applied
                              "carol": ("0.0", "missing")}  # grading still
    mine = api.get("bob", "/api/v1/assignments/micrograd/submissions").json["submissions"]
    assert [(s["id"], s["score"], s["regrade"]) for s in mine] == [(1, 95.0, None), (3, 100.0, 1)]  # history kept
    assert api.get("alice", "/api/v1/submissions/4").status_code == 404
    assert api.client.post("/api/v1/regrades/1/discard", headers=api.headers("ta")).json == {
        "error": "regrade 1 is applied already"}
    assert api.get("ta", "/api/v1/regrades/2").json == {"error": "no regrade 2"}


def test_a_newer_upload_stays_current_when_an_older_regrade_is_applied(api, database, bob_report,  # noqa: F811
                                                                       fixed_report):
    graded_class(api, database, bob_report)
    start(api, {"students": ["bob"]})
    api.upload("bob", zipped("bob_tanh_bug"))
    finish(database, claim_next(database), {**bob_report, "score": 80.0})  # the upload first
    finish(database, claim_next(database), fixed_report)
    api.client.post("/api/v1/regrades/1/apply", headers=api.headers("ta"))
    assert gradebook(api)["bob"] == ("80.0", "graded")


def test_a_discarded_set_drops_its_waiting_jobs_and_changes_nothing(api, database, bob_report,  # noqa: F811
                                                                    fixed_report):
    graded_class(api, database, bob_report)
    assert start(api, {"students": ["alice", "bob", "alice"]}).json["total"] == 2
    grading = claim_next(database)
    reply = api.client.post("/api/v1/regrades/1/discard", headers=api.headers("ta"))
    assert reply.status_code == 200 and reply.json["status"] == "discarded" and reply.json["total"] == 1
    finish(database, grading, fixed_report)  # graded after all: kept, never current
    assert [(j.id, j.status) for j in jobs(database)] == [(1, "graded"), (2, "graded"), (grading.id, "graded")]
    assert gradebook(api)["bob"] == gradebook(api)["alice"] == ("95.0", "graded")
    assert api.client.post("/api/v1/regrades/1/apply", headers=api.headers("ta")).status_code == 409


def test_a_regrade_needs_students_with_a_graded_submission(api, database, bob_report):  # noqa: F811
    assert start(api).json == {"error": "no graded submissions of micrograd to regrade"}
    graded_class(api, database, bob_report)
    assert start(api, {"students": ["carol", "zed"]}).json == {"error": "no graded submission of carol, zed for "
                                                                         "micrograd"}
    bad = api.client.post("/api/v1/assignments/micrograd/regrades", headers=api.headers("ta"), data="[1]",
                          content_type="application/json")
    assert (bad.status_code, bad.json) == (422, {"error": 'send nothing, or JSON {"students": ["id", ...]}'})
    assert api.client.post("/api/v1/assignments/nope/regrades", headers=api.headers("ta")).status_code == 404
    assert [j.priority for j in jobs(database)] == [UPLOAD, UPLOAD]  # nothing queued by a refused set


def test_a_regrade_that_errors_does_not_touch_the_submission_limit(database, strict_course, bob_report):  # noqa: F811
    limited = Api(database, strict_course)
    for _ in range(2):
        limited.upload("bob", zipped("bob_tanh_bug"))
        finish(database, claim_next(database), bob_report)
    start(limited)
    job = claim_next(database)
    assert job.priority == REGRADE
    assert record(database, job, failed(bob_report), "", strict_course.assignment("micrograd"))
    assert limited.upload("bob", zipped("bob_tanh_bug")).status_code == 429  # no submission given back


def test_grader_regrade_starts_shows_and_decides_a_set_on_the_servers_database(api, database, bob_report,  # noqa: F811
                                                                                fixed_report, db_url):  # noqa: F811
    graded_class(api, database, bob_report)
    command = ["regrade", "--data", str(database.data_dir), *(["--db", db_url] if db_url else []), "--assignment",
               "micrograd"]
    runner = CliRunner()
    started = runner.invoke(main, [*command, "--student", "bob"])
    assert started.exit_code == 0, started.output
    assert started.stdout == ("regrade 1 of micrograd: open, 0 of 1 done (0 errors, 0 scores changed)\n"
                              "  bob  95 -> queued\n")
    finish(database, claim_next(database), fixed_report)
    shown = runner.invoke(main, [*command, "--show", "1"]).stdout
    assert shown.startswith("regrade 1 of micrograd: open, 1 of 1 done (0 errors, 1 scores changed)\n"
                            "  bob  95 -> 100  (")
    assert runner.invoke(main, [*command, "--apply", "1"]).stdout.startswith("regrade 1 of micrograd: applied")
    assert gradebook(api)["bob"] == ("100.0", "graded")
    again = runner.invoke(main, [*command, "--discard", "1"])
    assert (again.exit_code, again.stderr) == (2, "Error: regrade 1 is applied already\n")
    assert runner.invoke(main, [*command, "--show", "2"]).stderr == "Error: no regrade 2 of micrograd\n"
    assert runner.invoke(main, [*command, "--show", "1", "--apply", "1"]).exit_code == 2


@pytest.mark.slow
def test_grader_serve_grades_a_regrade_set_after_the_uploads(tmp_path):
    data = tmp_path / "data"
    tokens = users(data, None, ["bob"])
    staff = subprocess.run([sys.executable, "-m", "grader", "users", "add-staff", "--data", str(data), "ta"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    server = Server(data, None, jobs=1)
    try:
        status, reply = server.upload(tokens["bob"], zipped("bob_tanh_bug"))
        assert status == 202, reply
        wait_for(lambda: server.request(f"/api/v1/submissions/{reply['id']}", tokens["bob"])[1]["status"] == "graded")
        status, made = server.request("/api/v1/assignments/micrograd/regrades", staff, b"")
        assert (status, made["total"], made["done"]) == (201, 1, 0), made
        done = wait_for(lambda: (s := server.request("/api/v1/regrades/1", staff)[1])["done"] == 1 and s)
        status, applied = server.request("/api/v1/regrades/1/apply", staff, b"")
    finally:
        server.stop()
    [bob] = done["students"]
    assert (bob["status"], bob["old_score"], bob["new_score"], bob["changed_tests"]) == ("graded", 95.0, 95.0, [])
    assert (status, applied["status"]) == (200, "applied")
