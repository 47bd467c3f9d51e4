"""The service's web pages (grader/service/web.py) through Flask's test client: signing in with a token, uploading
through the form, the queue position and the submissions left, the feedback page, staff's pages and gradebook,
CSRF refusals, another student's submission, and hostile text escaped. The browser test is test_web_browser.py."""
# ruff: noqa: F811  (test_service's fixtures are imported by name, and the tests take them as arguments)
import html
import io
import re
import stat

from grader.service.app import create_app
from grader.service.db import User
from grader.service.queue import claim_next
from grader.service.web import SECRET_FILE
from tests.test_service import (Api, api, bob_report, course, database, db_url, finish, jobs,  # noqa: F401
                                stored_uploads, strict_course, zipped)

HOSTILE = "<img src=x onerror=alert(1)>"


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, token):
    form = client.get("/signin")
    assert form.status_code == 200
    return client.post("/signin", data={"token": token, "csrf_token": csrf_of(form.text)})


def signed_in(api, user):
    client = api.app.test_client()
    reply = sign_in(client, api.tokens[user])
    assert reply.status_code == 302, reply.text
    return client


def upload(client, data, filename="work.zip", assignment="micrograd"):
    token = csrf_of(client.get("/me").text)
    return client.post(f"/assignments/{assignment}/upload", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), filename)})


def grade_next(database, report):
    job = claim_next(database)
    finish(database, job, {**report, "student": job.student})


def test_a_student_signs_in_with_their_token_and_out_again(api, database, course):
    client = api.app.test_client()
    assert client.get("/").headers["Location"] == "/signin"
    assert client.get("/me").headers["Location"] == "/signin"  # every page needs signing in
    wrong = sign_in(client, "not-a-token")
    assert wrong.status_code == 401 and "That token is not valid" in wrong.text
    right = sign_in(client, api.tokens["bob"])
    assert right.status_code == 302 and right.headers["Location"] == "/me"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and api.tokens["bob"] not in cookie
    me = client.get("/me")
    assert me.status_code == 200 and '<strong id="signed-in">bob</strong>' in me.text
    assert "form-action 'self'" in me.headers["Content-Security-Policy"]
    assert "script-src 'none'" in me.headers["Content-Security-Policy"]
    assert me.headers["Cache-Control"] == "no-store"
    out = client.post("/signout", data={"csrf_token": csrf_of(me.text)})
    assert out.status_code == 302
    assert client.get("/me").headers["Location"] == "/signin"
    key = database.data_dir / SECRET_FILE  # made once, the server's user's only; a new app keeps it
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert create_app(database, course).secret_key == api.app.secret_key == key.read_text()


def test_forms_without_the_sessions_csrf_token_are_refused(api, database):
    client = api.app.test_client()
    refused = client.post("/signin", data={"token": api.tokens["bob"]})
    assert refused.status_code == 400 and "CSRF token is missing" in refused.text
    assert client.get("/me").status_code == 302  # not signed in
    bob = signed_in(api, "bob")
    no_token = bob.post("/assignments/micrograd/upload", content_type="multipart/form-data",
                        data={"file": (io.BytesIO(zipped("bob_tanh_bug")), "bob.zip")})
    assert no_token.status_code == 400 and "CSRF" in no_token.text
    other = csrf_of(signed_in(api, "alice").get("/me").text)  # a token of another session
    forged = bob.post("/assignments/micrograd/upload", content_type="multipart/form-data",
                      data={"csrf_token": other, "file": (io.BytesIO(zipped("bob_tanh_bug")), "bob.zip")})
    assert forged.status_code == 400 and "CSRF" in forged.text
    assert bob.post("/signout").status_code == 400
    assert jobs(database) == [] and stored_uploads(database) == []
    assert bob.get("/me").status_code == 200  # still signed in
    # the API takes bearer tokens, no CSRF token
    assert api.upload("bob", zipped("bob_tanh_bug")).status_code == 202


def test_a_student_uploads_watches_the_queue_and_reads_the_feedback(api, database, bob_report):
    bob = signed_in(api, "bob")
    assert "<strong>6</strong> of 6 submissions left" in bob.get("/me").text
    api.upload("alice", zipped("alice_correct"))  # ahead of bob in the queue
    reply = upload(bob, zipped("bob_tanh_bug"), "bob.zip")
    assert reply.status_code == 303 and reply.headers["Location"] == "/submissions/2"
    waiting = bob.get("/submissions/2")
    assert waiting.status_code == 200 and '<span id="status">queued</span>' in waiting.text
    assert "Position <strong>2</strong> in the queue" in waiting.text
    assert '<meta http-equiv="refresh" content="2">' in waiting.text
    me = bob.get("/me").text
    assert "position 2 in the queue" in me and '<meta http-equiv="refresh"' in me
    assert "<strong>5</strong> of 6 submissions left; one more at " in me
    grade_next(database, bob_report)  # alice's
    assert "Position <strong>1</strong> in the queue" in bob.get("/submissions/2").text
    grade_next(database, bob_report)
    page = bob.get("/submissions/2")
    assert page.status_code == 200 and "tanh backward is wrong" in page.text
    assert "<pre" in page.text and "def tanh" in page.text  # the feedback page with bob's code
    assert "form-action 'none'" in page.headers["Content-Security-Policy"]
    me = bob.get("/me").text
    assert '<meta http-equiv="refresh"' not in me and "95 / 100" in me
    assert '<a href="/submissions/2">feedback</a>' in me


def test_another_students_submission_is_not_found(api, database, bob_report):
    api.upload("bob", zipped("bob_tanh_bug"))
    grade_next(database, bob_report)
    alice = signed_in(api, "alice")
    assert alice.get("/submissions/1").status_code == 404
    assert alice.get("/submissions/99").status_code == 404
    assert "bob" not in alice.get("/me").text.replace('id="signed-in">alice', "")
    assert alice.get("/staff").status_code == 403
    assert alice.get("/staff/assignments/micrograd/gradebook.csv").status_code == 403
    assert alice.get("/staff/students/bob").status_code == 403


def test_what_is_not_a_submission_and_the_limit_are_said_on_the_page(database, strict_course):
    api = Api(database, strict_course)
    bob = signed_in(api, "bob")
    broken = upload(bob, b"not a zip", "bob.zip")
    assert broken.status_code == 422 and 'id="message"' in broken.text and "bob.zip" in broken.text
    for _ in range(2):
        assert upload(bob, zipped("bob_tanh_bug")).status_code == 303
    over = upload(bob, zipped("bob_tanh_bug"))
    assert over.status_code == 429 and "the next one is allowed in 1800 s" in over.text
    assert "<strong>0</strong> of 2 submissions left; the next one is allowed at " in over.text
    assert len(jobs(database)) == 2


def test_a_student_does_not_see_hidden_groups_on_the_page_and_staff_do(database, strict_course, bob_report):
    api = Api(database, strict_course)
    bob = signed_in(api, "bob")
    upload(bob, zipped("bob_tanh_bug"))
    grade_next(database, bob_report)
    mine = bob.get("/submissions/1").text
    staff = signed_in(api, "ta").get("/submissions/1").text
    assert "test_train" not in mine and "test_train" in staff
    assert "tanh backward is wrong" in mine


def test_hostile_file_names_and_student_ids_are_escaped(api, database, bob_report):
    with database.session.begin() as session:
        session.add(User(id=HOSTILE, name=HOSTILE, email="x@example.org", staff=False, token_sha256="0" * 64))
    bob = signed_in(api, "bob")
    assert upload(bob, zipped("bob_tanh_bug"), HOSTILE + ".zip").status_code == 303
    grade_next(database, bob_report)
    ta = signed_in(api, "ta")
    pages = [bob.get("/me").text, ta.get("/staff").text, ta.get("/staff/students/bob").text,
             ta.get(f"/staff/students/{HOSTILE}").text, ta.get("/staff/assignments/micrograd").text,
             bob.get(f"/assignments/{HOSTILE}/upload").text, ta.get(f"/staff/assignments/{HOSTILE}").text]
    for page in pages:
        assert "<img" not in page
    assert html.escape(HOSTILE) + ".zip" in pages[0] and html.escape(HOSTILE) in pages[1]
    assert "/staff/students/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E" in pages[1]


def test_staff_see_the_dashboard_histories_and_download_the_gradebook(api, database, bob_report):
    api.upload("bob", zipped("bob_tanh_bug"), "bob.zip")
    grade_next(database, bob_report)
    api.upload("bob", zipped("bob_tanh_bug"), "again.zip")  # queued
    ta = signed_in(api, "ta")
    assert ta.get("/").headers["Location"] == "/staff"
    home = ta.get("/staff")
    assert home.status_code == 200 and "1 submission(s) in the queue" in home.text
    assert '<a href="/staff/students/bob">history</a>' in home.text
    board = ta.get("/staff/assignments/micrograd")
    assert board.status_code == 200 and "micrograd · class dashboard" in board.text
    assert board.headers["Refresh"] == "10"  # live: it shows the newly graded without a script
    assert 'href="/submissions/1" class="feedback-link"' in board.text
    script_hash = re.search(r"script-src ('sha256-[^']+')", board.text).group(1)  # the page's own policy
    assert f"script-src {script_hash};" in board.headers["Content-Security-Policy"]
    history = ta.get("/staff/students/bob").text
    assert "again.zip" in history and "bob.zip" in history and "position 1 in the queue" in history
    assert "<strong>4</strong> of 6 submissions left" in history
    csv_page = ta.get("/staff/assignments/micrograd/gradebook.csv")
    assert csv_page.status_code == 200 and csv_page.mimetype == "text/csv"
    assert csv_page.text == api.get("ta", "/api/v1/assignments/micrograd/gradebook.csv").text
    assert "\nbob," in csv_page.text
    assert ta.get("/staff/students/nobody").status_code == 404
    assert ta.get("/staff/assignments/nothing").status_code == 404


def test_the_api_still_answers_json_and_pages_answer_html(api):
    assert api.get(None, "/api/v1/submissions/1").json == {
        "error": "a valid token is needed: Authorization: Bearer TOKEN"}
    bob = signed_in(api, "bob")
    missing = bob.get("/submissions/5")
    assert missing.status_code == 404 and missing.mimetype == "text/html" and "no submission 5 of yours" in missing.text


def test_an_upload_over_the_size_limit_is_refused_on_a_page(database, course):
    api = Api(database, course, max_upload_bytes=4096)
    bob = signed_in(api, "bob")
    refused = upload(bob, zipped("bob_tanh_bug") + b"\0" * 8192)
    assert refused.status_code == 413 and refused.mimetype == "text/html"
    assert "the upload is larger than the limit of 4 KiB" in refused.text
    assert jobs(database) == [] and stored_uploads(database) == []


def test_a_regrade_reaches_the_students_pages_only_once_applied(api, database, bob_report):
    api.upload("bob", zipped("bob_tanh_bug"))
    grade_next(database, bob_report)
    assert api.client.post("/api/v1/assignments/micrograd/regrades", headers=api.headers("ta")).status_code == 201
    grade_next(database, {**bob_report, "score": 100.0})  # the regrade's job: 2
    bob = signed_in(api, "bob")
    assert bob.get("/submissions/2").status_code == 404 and 'href="/submissions/2"' not in bob.get("/me").text
    ta = signed_in(api, "ta")
    assert ta.get("/submissions/2").status_code == 200  # staff see it, beside the old one
    assert api.client.post("/api/v1/regrades/1/apply", headers=api.headers("ta")).status_code == 200
    assert bob.get("/submissions/2").status_code == 200 and 'href="/submissions/2"' in bob.get("/me").text
    assert 'href="/submissions/1"' in bob.get("/me").text  # the old result stays in the history


def test_staff_start_compare_and_apply_a_regrade_set_in_the_pages(api, database, bob_report):
    api.upload("bob", zipped("bob_tanh_bug"))
    grade_next(database, bob_report)
    ta = signed_in(api, "ta")
    assert 'href="/staff/assignments/micrograd/regrades"' in ta.get("/staff").text
    sets = ta.get("/staff/assignments/micrograd/regrades")
    assert sets.status_code == 200 and "No regrade set yet." in sets.text
    assert ta.post("/staff/assignments/micrograd/regrades").status_code == 400  # no CSRF token
    started = ta.post("/staff/assignments/micrograd/regrades", data={"csrf_token": csrf_of(sets.text)})
    assert started.status_code == 303 and started.headers["Location"] == "/staff/regrades/1"
    waiting = ta.get("/staff/regrades/1")
    assert "0 of 1 graded" in waiting.text and '<meta http-equiv="refresh"' in waiting.text
    early = ta.post("/staff/regrades/1/apply", data={"csrf_token": csrf_of(waiting.text)})
    assert early.status_code == 409 and "is not done" in early.text
    fixed = {**bob_report, "score": 100.0, "tests": [{**t, "status": "passed"} for t in bob_report["tests"]]}
    grade_next(database, fixed)
    done = ta.get("/staff/regrades/1")
    row = re.search(r'<table id="regrade">.*</table>', done.text, re.S).group(0)
    assert ">95<" in row and ">100<" in row and "failed → passed" in row and "refresh" not in done.text
    applied = ta.post("/staff/regrades/1/apply", data={"csrf_token": csrf_of(done.text)})
    assert applied.status_code == 303
    assert "regrade set 1: applied" in ta.get("/staff/regrades/1").text
    assert api.get("bob", "/api/v1/assignments/micrograd/submissions").json["submissions"][-1]["score"] == 100.0
    assert signed_in(api, "bob").get("/staff/regrades/1").status_code == 403
