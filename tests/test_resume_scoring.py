"""`grader batch --resume` notices every change that affects scores: points and the late policy are a rescore
from the stored outcomes (no student code runs), hidden tests are a regrade; and the points are per function."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.batch import BatchError, run_batch
from grader.course import find_course

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"


def course_copy(folder: Path) -> Path:
    for part in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


def edit_settings(course: Path, old: str, new: str) -> None:
    """Edit reference/micrograd/assignment.toml and its generated copy alike (as `grader generate` would)."""
    for path in (course / "reference" / "micrograd" / "assignment.toml",
                 course / "assignments" / "micrograd" / "assignment.toml"):
        text = path.read_text(encoding="utf-8")
        assert old in text, (path, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def graded(tmp_path):
    """A course copy and a class of two (alice correct, bob with a tanh bug) graded once."""
    course = course_copy(tmp_path / "course")
    folder = tmp_path / "class"
    for student, sample in (("alice", "alice_correct"), ("bob", "bob_tanh_bug")):
        shutil.copytree(SAMPLES / sample, folder / student)
    out = tmp_path / "out"
    first = run_batch(folder, find_course(course).assignment("micrograd"), out, jobs=1)
    assert first.graded == ["alice", "bob"] and first.reports["bob"]["score"] == 95
    return course, folder, out, first


def test_a_bug_costs_its_functions_points_only(graded):
    *_, first = graded
    bob = first.reports["bob"]
    assert {g["name"]: g["score"] for g in bob["groups"]} == {"ops": 35, "backprop": 20, "nn": 20, "training": 20}
    failing = {t["covers"] for t in bob["tests"] if t["status"] != "passed" and t["max_score"] > 0}
    assert failing == {"Value.tanh"}
    tanh = [t for t in bob["tests"] if t["covers"] == "Value.tanh"]
    assert sum(t["max_score"] for t in tanh) == pytest.approx(5)


def test_a_change_of_points_is_a_rescore_that_runs_no_student_code(graded):
    course, folder, out, first = graded
    edit_settings(course, '"Value.tanh" = 5', '"Value.tanh" = 10')
    again = run_batch(folder, find_course(course).assignment("micrograd"), out, jobs=1, resume=True)
    assert again.graded == [] and again.rescored == ["alice", "bob"] and again.skipped == []
    alice, bob = again.reports["alice"], again.reports["bob"]
    assert (alice["score"], alice["max_score"]) == (105, 105)
    assert (bob["score"], bob["max_score"]) == (95, 105)  # the tanh bug now costs its 10 points
    assert bob["started_at"] == first.reports["bob"]["started_at"]  # the stored outcomes, not a new run
    assert [(g["score"], g["max_score"]) for g in bob["groups"] if g["name"] == "ops"] == [(35, 45)]
    assert "95.0,105.0" in (out / "gradebook.csv").read_text().splitlines()[2]  # the gradebook is rewritten
    # the next resume finds everything up to date
    assert run_batch(folder, find_course(course).assignment("micrograd"), out, jobs=1, resume=True).skipped == [
        "alice", "bob"]


def test_a_change_of_the_late_policy_is_a_rescore(graded):
    course, folder, out, _ = graded
    (folder / "times.csv").write_text("student,submitted_at\nbob,2026-12-22T10:00:00+08:00\n", encoding="utf-8")
    late = run_batch(folder, find_course(course).assignment("micrograd"), out, jobs=1, resume=True)
    assert late.rescored == ["bob"] and late.reports["bob"]["late"]["final_score"] == pytest.approx(95 * 0.8)
    edit_settings(course, "percent_per_day = 10", "percent_per_day = 5")
    cheaper = run_batch(folder, find_course(course).assignment("micrograd"), out, jobs=1, resume=True)
    assert cheaper.rescored == ["alice", "bob"] and cheaper.graded == []
    assert cheaper.reports["bob"]["late"]["final_score"] == pytest.approx(95 * 0.9)


def test_a_change_of_the_hidden_tests_is_a_regrade(graded):
    course, folder, out, _ = graded
    test_file = course / "autotests" / "micrograd" / "test_ops.py"
    test_file.write_text(test_file.read_text(encoding="utf-8") + "\n# a fix of the tests\n", encoding="utf-8")
    again = run_batch(folder, find_course(course).assignment("micrograd"), out, jobs=1, resume=True)
    assert again.graded == ["alice", "bob"] and again.rescored == []


def test_points_for_a_function_no_hidden_test_covers_stop_the_batch_before_grading(graded, tmp_path):
    course, folder, _, _ = graded
    edit_settings(course, '"train" = 5', '"train" = 5\n"evaluate" = 3')
    with pytest.raises(BatchError, match="evaluate has points in assignment.toml but no hidden test covers it"):
        run_batch(folder, find_course(course).assignment("micrograd"), tmp_path / "fresh", jobs=1)
    assert not (tmp_path / "fresh" / "gradebook.csv").exists()


def test_a_changed_given_function_is_named_and_costs_only_the_function_it_builds_on(tmp_path):
    submission = tmp_path / "given"
    shutil.copytree(SAMPLES / "alice_correct", submission)
    engine = submission / "engine.py"
    text = engine.read_text(encoding="utf-8")
    assert "return self + (-other)" in text
    engine.write_text(text.replace("return self + (-other)", "return self + other"), encoding="utf-8")
    report = run_batch(tmp_path, find_course(ROOT).assignment("micrograd"), tmp_path / "out", jobs=1,
                       only=["given"]).reports["given"]
    failing = [t for t in report["tests"] if t["status"] != "passed" and t["max_score"] > 0]
    assert failing and all(t["function"] == "Value.__sub__" and t["covers"] == "Value.__add__" for t in failing)
    assert "Value.__sub__ is given code, but your engine.py changes it" in failing[0]["feedback"]
    assert 100 - report["score"] <= 5  # at most the points of Value.__add__
