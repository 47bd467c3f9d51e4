"""The gradebook a TA hands in: statuses, roster, adjustments, LMS layouts, who failed what, the class summary.
Mostly on hand-made reports (valid by the schema); one batch end to end through the CLI."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from grader import gradebook as book
from grader.course import LatePolicy
from grader.formats import validate_report
from grader.gradebook import Adjustment, ClassInfo, GradebookError, Person

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"
INFO = ClassInfo("micrograd", "1", 100.0, ("ops", "nn"))
POLICY = LatePolicy(datetime.fromisoformat("2026-12-20T23:59:00+08:00"), 10.0, 5, "zero")


def report(student: str, ops: float = 60.0, *, status: str = "graded", errors=(),
           submitted_at: str | None = None, tanh: str = "passed") -> dict:
    """A valid report: ops (60 points: a tanh test, an add test) and nn (40, passed), with its late penalty."""
    nn = 40.0
    tests = [{"name": "test_tanh[0]", "group": "ops", "score": ops / 2 if tanh == "passed" else 0.0,
              "max_score": 30.0, "status": tanh, "feedback": "" if tanh == "passed" else "tanh's gradient is off\nmore",
              "function": "Value.tanh", "duration_s": 0.01, "message": None},
             {"name": "test_add", "group": "ops", "score": ops - (ops / 2 if tanh == "passed" else 0.0),
              "max_score": 30.0, "status": "passed", "feedback": "", "function": "Value.__add__", "duration_s": 0.01,
              "message": None},
             {"name": "test_mlp", "group": "nn", "score": nn, "max_score": 40.0, "status": "passed", "feedback": "",
              "function": "MLP.__call__", "duration_s": 0.01, "message": None}] if status == "graded" else []
    score = ops + nn if status == "graded" else 0.0
    data = {
        "schema_version": "1", "grader_version": "0.1.0", "assignment": {"name": "micrograd", "version": "1"},
        "student": student, "submission": {"sha256": "ab" * 32, "files": [], "kind": "folder", "source": student},
        "seed": 1, "lang": "en", "isolation": {"layers": [], "warnings": []},
        "started_at": "2026-12-21T10:15:00+00:00", "duration_s": 1.0, "score": score, "max_score": 100.0,
        "status": status,
        "groups": [{"name": "ops", "title": "ops", "score": ops if status == "graded" else 0.0, "max_score": 60.0,
                    "visibility": "visible"},
                   {"name": "nn", "title": "nn", "score": nn if status == "graded" else 0.0, "max_score": 40.0,
                    "visibility": "visible"}],
        "tests": tests, "errors": [{"id": e, "message": f"{e} happened"} for e in errors],
        "late": {"submitted_at": submitted_at, "due": POLICY.due.isoformat(), "days_late": 0, "penalty_percent": 0.0,
                 "final_score": score},
    }
    data = book.adjusted(data, POLICY, None)  # the late penalty as grading computes it
    validate_report(data)
    return data


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


# ---------------------------------------------------------------------- statuses

def test_statuses_tell_the_graders_errors_from_the_students_problems():
    reports = {"alice": report("alice"), "bob": report("bob", errors=["import_failed"]),
               "carol": report("carol", status="error", errors=["not_a_submission"]),
               "dave": report("dave", status="error", errors=["grading_failed"])}
    rows = book.class_rows(reports, {"erin": Person("erin", "Erin E")})
    assert {r.student: (r.status, r.final) for r in rows} == {
        "alice": ("graded", 100.0), "bob": ("problem", 100.0), "carol": ("problem", 0.0), "dave": ("error", None),
        "erin": ("missing", 0.0)}


# ---------------------------------------------------------------------- roster and adjustments

def test_roster_rows_and_one_line_errors(tmp_path):
    good = write(tmp_path / "roster.csv", "id,name,email,sis_id,section\nalice,\"Liddell, Alice\",a@x.edu,S1,L01\n\n")
    assert book.read_roster(good) == {"alice": Person("alice", "Liddell, Alice", "a@x.edu", "S1", "L01")}
    bad = {"name,email\nalice,a@x\n": ":1: the header must be id,name,email,sis_id,section",
           "id,name,email,sis_id,section\nalice,A,a@x,1\n": ":2: expected 5 fields",
           "id,name,email,sis_id,section\n,A,a@x,1,L\n": ":2: the id is empty",
           "id,name,email,sis_id,section\nalice,A,,,\nALICE,B,,,\n": ":3: student 'ALICE' is on the roster twice"}
    for text, words in bad.items():
        with pytest.raises(GradebookError, match=f"roster.csv{words}"):
            book.read_roster(write(tmp_path / "roster.csv", text))


def test_adjustments_rows_and_one_line_errors(tmp_path):
    path = write(tmp_path / "adjustments.csv", "student,extra_days,points,final,note\nalice,2,,,\"flu, doctor's "
                                               "note\"\nbob,,-5,,copied\ncarol,,,70,regrade\n")
    assert book.read_adjustments(path, {"alice", "bob", "carol"}) == {
        "alice": Adjustment(2.0, None, None, "flu, doctor's note"), "bob": Adjustment(0.0, -5.0, None, "copied"),
        "carol": Adjustment(0.0, None, 70.0, "regrade")}
    assert book.read_adjustments(write(tmp_path / "adjustments.csv", "student,points\nalice,3\n"), {"alice"}) == {
        "alice": Adjustment(points=3.0)}
    bad = {"student,points\nzed,1\n": ":2: unknown student 'zed'",
           "student,points\nalice,ten\n": ":2: points must be a number, not 'ten'",
           "student,extra_days\nalice,-1\n": ":2: extra_days must be a number >= 0, not '-1'",
           "student,points,final\nalice,1,50\n": ":2: give points .* or final .*, not both",
           "student,points\nalice,1\nalice,2\n": ":3: student 'alice' has a row already",
           "student,bonus\nalice,1\n": ":1: the header must be student,extra_days,points,final,note"}
    for text, words in bad.items():
        with pytest.raises(GradebookError, match=f"adjustments.csv{words}"):
            book.read_adjustments(write(tmp_path / "adjustments.csv", text), {"alice"})


def test_an_adjustment_moves_the_due_date_then_adds_points_and_goes_away_with_its_row():
    three_days_late = report("alice", submitted_at="2026-12-23T20:00:00+08:00")
    assert three_days_late["late"]["days_late"] == 3 and three_days_late["late"]["final_score"] == 70
    extended = book.adjusted(three_days_late, POLICY, Adjustment(extra_days=2, points=-5, note="flu"))
    validate_report(extended)
    assert extended["late"]["days_late"] == 1 and extended["late"]["final_score"] == 90
    assert extended["adjustment"] == {"extra_days": 2, "points": -5, "final": None, "note": "flu", "final_score": 85}
    assert book.Row("alice", None, extended).final == 85
    fixed = book.adjusted(extended, POLICY, Adjustment(final=55))
    assert fixed["adjustment"]["final_score"] == 55 and fixed["late"]["days_late"] == 3
    assert book.adjusted(fixed, POLICY, None) == three_days_late  # the row was deleted: as graded again


def test_the_feedback_page_shows_the_adjustment_and_its_note_escaped():
    from grader.pages import feedback_page

    page = feedback_page(book.adjusted(report("alice"), POLICY, Adjustment(points=-5, note="<b>copied</b>")), None)
    assert "points: -5" in page and "&lt;b&gt;copied&lt;/b&gt;" in page and "<b>copied" not in page


def test_a_final_fixed_by_staff_is_handed_in_even_when_grading_failed():
    failed = report("dave", status="error", errors=["grading_failed"])
    assert book.Row("dave", None, failed).final is None
    assert book.Row("dave", None, book.adjusted(failed, POLICY, Adjustment(final=60))).final == 60


# ---------------------------------------------------------------------- layouts

CLASS = {"alice": report("alice", submitted_at="2026-12-20T10:00:00+08:00"),
         "bob": report("bob", 30, tanh="failed"),
         "dave": report("dave", status="error", errors=["grading_failed"])}
ROSTER = {"alice": Person("alice", "Liddell, Alice", "alice@x.edu", "S1", "L01"),
          "bob": Person("bob", "=HYPERLINK(\"http://evil\")", "bob@x.edu", "", "L02"),
          "erin": Person("erin", "Erin E", "erin@x.edu", "S5", "L01")}


def test_canvas_layout_has_the_points_possible_row_and_leaves_an_ungraded_cell_empty():
    rows = rows_of(book.gradebook_text("canvas", INFO, book.class_rows(CLASS, ROSTER)))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "micrograd"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "100.0"]
    assert rows[2:] == [["Liddell, Alice", "", "S1", "alice", "L01", "100.0"],
                        ["'=HYPERLINK(\"http://evil\")", "", "", "bob", "L02", "70.0"],  # a formula stays text
                        ["dave", "", "", "dave", "", ""],  # the grader failed: nothing to hand in
                        ["Erin E", "", "S5", "erin", "L01", "0.0"]]  # on the roster, no submission


def test_moodle_layout_and_excel_bom():
    text = book.gradebook_text("moodle", INFO, book.class_rows(CLASS, ROSTER), excel=True)
    assert text.startswith("\ufeffID number,Email address,Full name,micrograd\n")
    assert rows_of(text)[1] == ["S1", "alice@x.edu", "Liddell, Alice", "100.0"]


def test_detailed_layout_has_times_in_utc_and_unknown_times_empty():
    rows = list(csv.DictReader(io.StringIO(book.gradebook_text("csv", INFO, book.class_rows(CLASS, ROSTER)))))
    by_student = {r["student"]: r for r in rows}
    assert by_student["alice"]["submitted_at"] == "2026-12-20T02:00:00Z" and by_student["bob"]["submitted_at"] == ""
    assert by_student["alice"]["email"] == "alice@x.edu" and by_student["erin"]["status"] == "missing"
    assert [by_student[s]["status"] for s in ("alice", "bob", "dave")] == ["graded", "graded", "error"]
    assert float(by_student["bob"]["ops"]) == 30 and by_student["bob"]["final"] == "70.0"


# ---------------------------------------------------------------------- failing, summary

@pytest.mark.parametrize("query", ["test_tanh[0]", "test_tanh", "ops::test_tanh[0]", "Value.tanh"])
def test_failing_by_test_id_or_function(query):
    assert book.failing(CLASS, query) == [book.Failure("bob", "ops::test_tanh[0]", "failed", "tanh's gradient is off")]


def test_failing_names_an_unknown_test_in_one_line():
    with pytest.raises(GradebookError, match="no test or function 'Value.tan'"):
        book.failing(CLASS, "Value.tan")


def test_summary_statuses_group_statistics_and_histogram():
    summary = book.class_summary(INFO, book.class_rows(CLASS, ROSTER), 1.0, ["zed"])
    assert summary["statuses"] == {"graded": 2, "problem": 0, "error": 1, "missing": 1}
    assert (summary["errors"], summary["missing"], summary["not_on_roster"]) == (["dave"], ["erin"], ["zed"])
    assert summary["groups"] == {"ops": {"mean": 45.0, "min": 30.0, "max": 60.0},
                                 "nn": {"mean": 40.0, "min": 40.0, "max": 40.0}}
    assert [b["count"] for b in summary["histogram"]] == [0, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert summary["histogram"][7] == {"from": 70.0, "to": 80.0, "count": 1} and summary["mean_final"] == 85.0


# ---------------------------------------------------------------------- end to end

def copy_sample(sample: str, dest: Path) -> None:
    shutil.copytree(SAMPLES / sample, dest)


def grader(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_batch_with_a_roster_adjustments_and_a_group_then_gradebook_layouts(tmp_path):
    folder = tmp_path / "class"
    copy_sample("alice_correct", folder / "alice")
    copy_sample("bob_tanh_bug", folder / "bob")
    copy_sample("alice_correct", folder / "submission_7")
    write(folder / "submission_metadata.yml", "submission_7:\n  :submitters:\n  - :sid: 'g1'\n  - :sid: 'g2'\n"
                                              "  :created_at: 2026-12-22 18:30:00.000000000 +08:00\n")
    write(folder / "adjustments.csv", "student,extra_days,points,final,note\ng1,2,,,illness\n")
    roster = write(tmp_path / "roster.csv", "id,name,email,sis_id,section\nalice,Alice,alice@x.edu,S1,L01\n"
                                            "g1,Gina,g1@x.edu,S3,L01\ng2,Gus,g2@x.edu,S4,L02\nzoe,Zoe,z@x.edu,S9,L02\n")
    out = tmp_path / "out"
    run = grader("batch", str(folder), "--out-dir", str(out), "--roster", str(roster), "--jobs", "2")
    assert run.returncode == 0, run.stderr
    assert "not on the roster: bob" in run.stderr
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert {s: (r["status"], r["final"]) for s, r in rows.items()} == {
        "alice": ("graded", "100.0"), "bob": ("graded", rows["bob"]["final"]), "g1": ("graded", "100.0"),
        "g2": ("graded", "80.0"), "zoe": ("missing", "0.0")}  # g2: 2 days late; g1 has 2 more days
    assert rows["g1"]["note"] == "illness" and rows["g1"]["late_days"] == "0" and rows["g2"]["late_days"] == "2"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["not_on_roster"] == ["bob"] and summary["missing"] == ["zoe"]
    assert "illness" in (out / "students" / "g1.html").read_text(encoding="utf-8")
    index = (out / "index.html").read_text(encoding="utf-8")
    failing_pages = list((out / "failing").glob("*.html"))
    assert failing_pages and all(f'href="failing/{p.name}"' in index for p in failing_pages)
    assert any('data-student="bob"' in p.read_text(encoding="utf-8") for p in failing_pages)

    canvas = grader("gradebook", str(out), "--format", "canvas", "--roster", str(roster))
    assert canvas.returncode == 0, canvas.stderr
    assert rows_of(canvas.stdout)[1][0] == "    Points Possible" and ["Zoe", "", "S9", "zoe", "L02", "0.0"] in \
        rows_of(canvas.stdout)
    same = grader("gradebook", str(out), "--format", "csv", "--roster", str(roster))
    assert same.stdout == (out / "gradebook.csv").read_text(encoding="utf-8")
    failing = grader("gradebook", str(out), "--failing", "Value.tanh")
    assert failing.returncode == 0 and failing.stdout.startswith("student\ttest\tstatus\tmessage\n")
    assert {line.split("\t")[0] for line in failing.stdout.splitlines()[1:]} == {"bob"}

    # An edited adjustments.csv reaches the reused reports and pages (--resume regrades nobody).
    write(folder / "adjustments.csv", "student,points,note\ng2,5,bonus\n")
    again = grader("batch", str(folder), "--out-dir", str(out), "--roster", str(roster), "--resume")
    assert again.returncode == 0 and "graded 0, up to date 4" in again.stdout, again.stderr
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert (rows["g1"]["final"], rows["g1"]["note"], rows["g2"]["final"]) == ("80.0", "", "85.0")
    g1 = json.loads((out / "students" / "g1.json").read_text(encoding="utf-8"))
    assert "adjustment" not in g1 and g1["late"]["days_late"] == 2
    assert "illness" not in (out / "students" / "g1.html").read_text(encoding="utf-8")


def test_cli_gradebook_bad_inputs_are_one_line(tmp_path):
    out = tmp_path / "out"
    (out / "students").mkdir(parents=True)
    write(out / "students" / "alice.json", json.dumps(report("alice")))
    for args, words in ((["--roster", str(write(tmp_path / "r.csv", "id,name\n"))], "r.csv:1: the header must be"),
                        (["--failing", "nothing"], "no test or function 'nothing'"),
                        ([], None)):
        run = grader("gradebook", str(out), *args)
        if words is None:
            assert run.returncode == 0 and run.stdout.startswith("student,name,email,sis_id,section,ops,nn,total")
            continue
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and words in run.stderr, run.stderr
    write(out / "students" / "broken.json", "{}")
    run = grader("gradebook", str(out))
    assert run.returncode == 2 and "broken.json" in run.stderr and run.stderr.count("\n") == 1
