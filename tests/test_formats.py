"""grader/formats/: the report schema and sums, atomic writes, and each renderer."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import formats
from grader.formats import (
    FORMATS,
    ReportError,
    load_report,
    render,
    render_gradescope,
    render_json,
    render_junit,
    render_markdown,
    render_text,
    validate_report,
    write_report_atomic,
    write_text_atomic,
)
import grader.report as model  # not "from ... import TestResult": pytest would try to collect it
from grader.report import GroupScore, Late, Report

ROOT = Path(__file__).resolve().parent.parent

GROUPS = {  # name -> (title, visibility)
    "ops": ("Gradients of each operation (_backward)", "visible"),
    "backprop": ("backward(): topological order, seed, accumulation", "visible"),
    "nn": ("Neuron, Layer, MLP", "after_due_date"),
    "training": ("Loss, regularisation, gradient descent, training loop", "hidden"),
}
WEIRD = "grad is 2.0 <expected> 3.0 & \x00 \x1b[31mred\x1b[0m | *bold* $x$"
# (name, group, status, score, max_score, feedback)
TESTS = [
    ("test_add_backward[0]", "ops", "passed", 10, 10, ""),
    ("test_mul_backward[0]", "ops", "failed", 0, 10, f"Value.__mul__: {WEIRD}\nsecond line of feedback"),
    ("test_tanh_backward[0]", "ops", "passed", 10, 10, ""),
    ("test_pow_backward[0]", "ops", "error", 0, 10, "Value.__pow__ raised ZeroDivisionError: division by zero"),
    ("test_topological_order", "backprop", "passed", 10, 10, ""),
    ("test_grad_accumulates", "backprop", "timeout", 0, 10, "Value.backward did not return within 5 s"),
    ("test_mlp_shapes", "nn", "passed", 10, 10, ""),
    ("test_neuron_output", "nn", "failed", 0, 10, "Neuron.__call__ 的输出为 0.3，期望 0.5"),
    ("test_loss_decreases", "training", "passed", 10, 10, ""),
    ("test_sgd_step", "training", "failed", 5, 10, "步长不对：参数变化了 0.2，期望 0.1"),
]


def make_report(tests=TESTS, status: str = "graded", late: Late | None = None, lang: str = "zh") -> dict:
    """A realistic report built from the dataclasses, with group and total sums that add up."""
    results = [
        model.TestResult(name, group, float(score), float(max_score), st, feedback,
                   function=feedback.split(":")[0] if ":" in feedback else None, duration_s=0.012,
                   message=None if st == "passed" else {"id": f"{st}.generic", "params": {"detail": feedback}})
        for name, group, st, score, max_score, feedback in tests
    ]
    groups = [
        GroupScore(name, title,
                   sum(r.score for r in results if r.group == name),
                   sum(r.max_score for r in results if r.group == name), visibility)
        for name, (title, visibility) in GROUPS.items()
    ]
    return Report(
        grader_version="0.1.0",
        assignment={"name": "micrograd", "version": "1"},
        student="张三 <zhang@example.edu>",
        submission={"sha256": "ab" * 32, "files": ["engine.py", "nn.py", "train.py"], "kind": "folder",
                    "source": "submissions/zhang"},
        seed=1234,
        lang=lang,
        isolation={"layers": ["rlimits", "namespaces"], "warnings": ["seccomp unavailable: falling back to rlimits"]},
        started_at="2026-12-21T10:15:00+00:00",
        duration_s=3.6,
        score=sum(g.score for g in groups),
        max_score=sum(g.max_score for g in groups),
        status=status,
        groups=groups,
        tests=results,
        errors=[{"id": "extra_file", "message": "提交中有多余的文件 notes.txt <ignored> & \x07"}],
        late=late,
    ).to_dict()


@pytest.fixture
def report() -> dict:
    return make_report()


def not_passed(report: dict) -> list[dict]:
    return [t for t in report["tests"] if t["status"] != "passed"]


# --- validation ------------------------------------------------------------------------------------------

def test_good_report_is_valid(report):
    assert report["score"] == 55 and report["max_score"] == 100
    validate_report(report)


def test_late_report_and_english_report_are_valid():
    late = Late("2026-12-22T08:00:00Z", "2026-12-20T23:59:00+08:00", 2, 20.0, 44.0)
    validate_report(make_report(late=late, lang="en"))


def _set(path: str, value):
    def corrupt(d):
        *parents, last = path.split(".")
        for key in parents:
            d = d[int(key)] if key.isdigit() else d[key]
        d[int(last) if last.isdigit() else last] = value
    return corrupt


def _shift_scores(test_index: int, delta: float):
    """Change one test's score and the sums above it, so only the test itself is wrong."""
    def corrupt(d):
        test = d["tests"][test_index]
        test["score"] += delta
        next(g for g in d["groups"] if g["name"] == test["group"])["score"] += delta
        d["score"] += delta
    return corrupt


CORRUPTIONS = {
    "missing key": (lambda d: d["tests"][0].pop("status"), "tests[0]: 'status' is a required property"),
    "missing top-level key": (lambda d: d.pop("seed"), "report: 'seed' is a required property"),
    "bad status": (_set("tests.3.status", "ok"), "tests[3].status: 'ok' is not one of ['passed'"),
    "bad report status": (_set("status", "done"), "status: 'done' is not one of ['graded', 'error', 'checked']"),
    "score above max": (_shift_scores(0, 1.0), "tests[0].score: 11.0 is more than its max_score 10.0"),
    "negative score": (_set("tests.1.score", -1.0), "tests[1].score: -1.0 is less than the minimum of 0"),
    "group sum": (lambda d: (d["groups"][1].update(score=15.0), d.update(score=60.0)),
                  "groups[1].score: 15.0 is not the sum of its tests' scores (10.0)"),
    "group max sum": (lambda d: (d["groups"][2].update(max_score=25.0), d.update(max_score=105.0)),
                      "groups[2].max_score: 25.0 is not the sum of its tests' max_score (20.0)"),
    "report sum": (_set("score", 56.0), "score: 56.0 is not the sum of the groups' scores (55.0)"),
    "report max": (_set("max_score", 90.0), "max_score: 90.0 is not the sum of the groups' max_score (100.0)"),
    "unknown group": (_set("tests.4.group", "autograd"), "tests[4].group: 'autograd' is not one of the groups"),
    "duplicate group": (_set("groups.1.name", "ops"), "groups[1].name: 'ops' appears twice"),
    "bad sha": (_set("submission.sha256", "AB" * 32), "submission.sha256: 'ABAB"),
    "short sha": (_set("submission.sha256", "abc"), "submission.sha256: 'abc' does not match '^[0-9a-f]{64}$'"),
    "extra key in test": (_set("tests.2.extra", 1), "tests[2]: Additional properties are not allowed ('extra'"),
    "extra key in group": (_set("groups.0.points", 40), "groups[0]: Additional properties are not allowed"),
    "extra key in report": (_set("comment", "hi"), "report: Additional properties are not allowed ('comment'"),
    "bad visibility": (_set("groups.0.visibility", "public"), "groups[0].visibility: 'public' is not one of"),
    "bad lang": (_set("lang", "fr"), "lang: 'fr' is not one of ['en', 'zh']"),
    "bad schema version": (_set("schema_version", "2"), "schema_version: '1' was expected"),
    "not a date": (_set("started_at", "yesterday"), "started_at: 'yesterday' is not a 'date-time'"),
    "impossible date": (_set("started_at", "2026-02-30T10:00:00Z"), "started_at: '2026-02-30T10:00:00Z' is not a"),
    "date without offset": (_set("started_at", "2026-12-21T10:15:00"), "started_at:"),
    "date only": (_set("started_at", "2026-12-21"), "started_at:"),
    "nan": (_set("tests.0.duration_s", float("nan")), "tests[0].duration_s: nan is not a finite number"),
    "bool as number": (_set("score", True), "score: True is not of type 'number'"),
    "bad message": (_set("tests.1.message", {"id": "x"}), "tests[1].message: 'params' is a required property"),
    "late above score": (_set("late", {"submitted_at": None, "due": None, "days_late": 1, "penalty_percent": 10,
                                       "final_score": 60.0}), "late.final_score: 60.0 is more than the score 55.0"),
    "bad late days": (_set("late", {"submitted_at": None, "due": None, "days_late": -1, "penalty_percent": 10,
                                    "final_score": 50.0}), "late.days_late: -1 is less than the minimum of 0"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupt_report_is_rejected_with_its_path(report, name):
    corrupt, expected = CORRUPTIONS[name]
    corrupt(report)
    with pytest.raises(ReportError) as info:
        validate_report(report)
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_not_an_object_is_rejected():
    with pytest.raises(ReportError, match=r"^report: \[\] is not of type 'object'"):
        validate_report([])


@pytest.mark.parametrize("stamp", ["2026-12-21T10:15:00Z", "2026-12-21t10:15:00z", "2026-12-21T10:15:00.5+08:00",
                                   "2026-12-21T10:15:00.123456789-05:30"])
def test_rfc3339_date_times_are_accepted(report, stamp):
    report["started_at"] = stamp
    validate_report(report)


def test_tolerance_allows_float_rounding():
    tests = [("test_a", "ops", "passed", 0.1, 0.1, ""), ("test_b", "ops", "passed", 0.2, 0.2, "")]
    data = make_report(tests=tests)
    data["groups"][0]["score"] = data["groups"][0]["max_score"] = 0.3  # 0.1 + 0.2 != 0.3 in floats
    data["score"] = data["max_score"] = 0.3
    validate_report(data)


def test_error_report_keeps_group_points_with_no_tests():
    data = make_report(tests=[], status="error")
    for group, points in zip(data["groups"], (40.0, 20.0, 20.0, 20.0)):
        group["max_score"] = points
    data["max_score"] = 100.0
    validate_report(data)
    data["status"] = "graded"  # a graded report must account for every point with a test
    with pytest.raises(ReportError, match=r"^groups\[0\]\.max_score"):
        validate_report(data)


def test_importing_formats_does_not_import_jsonschema():
    code = "import sys, grader.formats; assert 'jsonschema' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_schema_file_is_a_valid_2020_12_schema():
    schema = json.loads(formats.SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert formats._validator() is formats._validator()  # compiled once


# --- files -----------------------------------------------------------------------------------------------

def test_load_report_round_trips(tmp_path, report):
    path = tmp_path / "report.json"
    write_report_atomic(report, path)
    assert load_report(path) == report
    assert load_report(str(path)) == report


def test_load_report_names_the_file(tmp_path, report):
    missing = tmp_path / "missing.json"
    with pytest.raises(ReportError, match=f"^{missing}: no such file"):
        load_report(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"score": 1,', encoding="utf-8")
    with pytest.raises(ReportError, match=f"^{broken}: not valid JSON: .* line 1 column"):
        load_report(broken)
    wrong = tmp_path / "wrong.json"
    report["tests"][3]["status"] = "ok"
    wrong.write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(ReportError, match=rf"^{wrong}: tests\[3\]\.status: 'ok' is not one of"):
        load_report(wrong)


def test_atomic_write_leaves_only_the_file(tmp_path, report):
    path = tmp_path / "report.json"
    write_report_atomic(report, path)
    write_report_atomic(report, path)  # replacing works too
    assert os.listdir(tmp_path) == ["report.json"]
    assert path.read_text(encoding="utf-8") == render_json(report)


def test_failed_replace_keeps_the_old_file(tmp_path, report, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old contents", encoding="utf-8")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report_atomic(report, path)
    assert path.read_text(encoding="utf-8") == "old contents"
    assert os.listdir(tmp_path) == ["report.json"]


def test_invalid_report_is_never_written(tmp_path, report):
    path = tmp_path / "report.json"
    path.write_text("old contents", encoding="utf-8")
    report["score"] = 99.0
    with pytest.raises(ReportError):
        write_report_atomic(report, path)
    assert path.read_text(encoding="utf-8") == "old contents"
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_text_atomic_honours_the_umask(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "out.txt", "héllo\n")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "out.txt").read_bytes() == "héllo\n".encode("utf-8")


def test_lone_surrogate_from_student_code_survives_a_write(tmp_path, report):
    # json.loads("\"\\ud800\"") is how a harness reply can carry one into feedback.
    report["tests"][1]["feedback"] = "bad \ud800 text"
    path = tmp_path / "report.json"
    write_report_atomic(report, path)
    assert load_report(path)["tests"][1]["feedback"] == "bad \ud800 text"
    for fmt in FORMATS:
        render(report, fmt, "en").encode("utf-8")


# --- renderers -------------------------------------------------------------------------------------------

def test_json_is_pretty_and_keeps_chinese(report):
    text = render_json(report)
    assert text.endswith("}\n") and '\n  "grader_version": "0.1.0",' in text
    assert "期望" in text and "\\u" not in text.replace("\\u0000", "").replace("\\u001b", "").replace("\\u0007", "")
    assert json.loads(text) == report


GRADESCOPE_TOP = {"score": (int, float), "execution_time": int, "output": str, "output_format": str,
                  "visibility": str, "stdout_visibility": str, "tests": list}
GRADESCOPE_TEST = {"name": str, "name_format": str, "number": str, "score": (int, float), "max_score": (int, float),
                   "status": str, "output": str, "output_format": str, "tags": list, "visibility": str}
GRADESCOPE_FORMATS = {"text", "html", "simple_format", "md", "ansi"}
GRADESCOPE_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def test_gradescope_has_the_documented_fields(report):
    results = json.loads(render_gradescope(report, "zh"))
    assert set(results) == set(GRADESCOPE_TOP)
    for key, kind in GRADESCOPE_TOP.items():
        assert isinstance(results[key], kind), key
    assert results["score"] == 55
    assert results["output_format"] in GRADESCOPE_FORMATS
    assert {results["visibility"], results["stdout_visibility"]} <= GRADESCOPE_VISIBILITY
    assert len(results["tests"]) == len(report["tests"])
    for test in results["tests"]:
        assert set(test) == set(GRADESCOPE_TEST)
        for key, kind in GRADESCOPE_TEST.items():
            assert isinstance(test[key], kind), key
        assert test["status"] in ("passed", "failed")
        assert test["output_format"] in GRADESCOPE_FORMATS and test["name_format"] in GRADESCOPE_FORMATS
        assert test["score"] <= test["max_score"]


def test_gradescope_numbers_visibility_and_status_per_group(report):
    results = json.loads(render_gradescope(report))
    by_name = {t["name"]: t for t in results["tests"]}
    assert [t["number"] for t in results["tests"]] == ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "3.1", "3.2",
                                                       "4.1", "4.2"]
    for test in report["tests"]:
        out = by_name[test["name"]]
        assert out["visibility"] == GROUPS[test["group"]][1]
        assert out["tags"] == [test["group"]]
        assert out["status"] == ("passed" if test["status"] == "passed" else "failed")
    assert by_name["test_grad_accumulates"]["output"].startswith("[timed out] Value.backward")
    assert "\x00" not in json.dumps(results) and "\x1b" not in json.dumps(results)


def test_gradescope_summary_hides_what_the_tests_hide(report):
    summary = json.loads(render_gradescope(report))["output"]
    assert "Gradients of each operation" in summary  # visible group
    assert "Neuron, Layer, MLP" not in summary and "training loop" not in summary  # after_due_date / hidden
    assert "55 / 100" not in summary  # the total would reveal the hidden groups
    assert "notes.txt" in summary  # submission errors
    for group in report["groups"]:
        group["visibility"] = "visible"
    assert "Score: 55 / 100" in json.loads(render_gradescope(report))["output"]


def test_gradescope_score_carries_the_late_penalty():
    data = make_report(late=Late("2026-12-22T08:00:00Z", "2026-12-20T23:59:00+08:00", 2, 20.0, 44.0))
    results = json.loads(render_gradescope(data))
    assert results["score"] == 44.0
    assert sum(t["score"] for t in results["tests"]) == 55
    assert "Late: 2 day(s), -20%\n" in results["output"] + "\n"  # no final score while groups are hidden
    for group in data["groups"]:
        group["visibility"] = "visible"
    assert "Late: 2 day(s), -20% → 44" in json.loads(render_gradescope(data))["output"]


def test_junit_parses_and_counts(report):
    root = ET.fromstring(render_junit(report, "zh").encode("utf-8"))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["ops", "backprop", "nn", "training", "submission"]
    assert root.get("tests") == str(len(report["tests"]) + len(report["errors"]))
    assert root.get("failures") == "3"
    assert root.get("errors") == "3"  # an error, a timeout, a submission error
    assert (suites["ops"].get("tests"), suites["ops"].get("failures"), suites["ops"].get("errors")) == ("4", "1", "1")
    properties = {p.get("name"): p.get("value") for p in suites["training"].find("properties")}
    assert properties["score"] == "15" and properties["max_score"] == "20"
    timeout = suites["backprop"].find("testcase[@name='test_grad_accumulates']/error")
    assert timeout.get("type") == "timeout"
    failure = suites["ops"].find("testcase[@name='test_mul_backward[0]']/failure")
    # Control characters are shown as escapes, as in every text format (XML could not hold them anyway).
    assert failure.get("message") == r"Value.__mul__: grad is 2.0 <expected> 3.0 & \x00 \x1b[31mred\x1b[0m | *bold* $x$"
    assert failure.text.endswith("second line of feedback")
    case = suites["ops"].find("testcase")
    assert case.get("classname") == "micrograd.ops" and float(case.get("time")) >= 0


def test_junit_of_an_ungradable_submission_is_not_green():
    data = make_report(tests=[], status="error")
    root = ET.fromstring(render_junit(data))
    assert root.get("tests") == "1" and root.get("errors") == "1"


def test_text_shows_every_problem(report):
    text = render_text(report, "en")
    assert text.startswith("Assignment  micrograd v1\nStudent     张三 <zhang@example.edu>\nScore       55 / 100\n")
    for test in not_passed(report):
        first_line = test["feedback"].splitlines()[0].split("\x00")[0]
        assert first_line in text
    assert "second line of feedback" in text
    assert "✓ test_add_backward[0]" in text and "✗ test_mul_backward[0]" in text
    assert "! test_pow_backward[0]" in text and "⏱ test_grad_accumulates" in text
    assert "ops: Gradients of each operation (_backward)" in text
    assert "Submission errors" in text and "Isolation warnings" in text and "seccomp unavailable" in text
    # Student-made control characters are shown, never sent to the terminal.
    assert "\x1b" not in text and "\x00" not in text and "\\x1b[31mred" in text


def test_text_in_chinese_and_in_colour(report):
    text = render_text(report, "zh")
    assert "得分" in text and "作业" in text and "未通过" in text and "超时" in text and "提交问题" in text
    coloured = render_text(report, "en", color=True)
    assert "\x1b[32m✓\x1b[0m" in coloured and "\x1b[31m✗\x1b[0m" in coloured


def test_text_of_a_late_and_ungraded_report():
    data = make_report(tests=[], status="error", late=Late("2026-12-22T08:00:00Z", None, 2, 20.0, 0.0))
    text = render_text(data, "en")
    assert "not graded" in text and "Late" in text and "2 day(s), -20% → 0" in text


def test_markdown_has_tables(report):
    text = render_markdown(report, "en")
    lines = text.splitlines()
    assert "| Group | Score | Max |" in lines and "| --- | ---: | ---: |" in lines
    assert "| ops: Gradients of each operation (\\_backward) | 20 | 40 |" in lines
    assert "| **Total** | **55** | **100** |" in lines
    rows = [line for line in lines if line.startswith("| test\\_")]
    assert len(rows) == len(not_passed(report))
    mul = next(row for row in rows if row.startswith("| test\\_mul"))
    # The pipe, markup and HTML in the feedback stay inside the cell, as text.
    assert mul.count(" | ") == 4 and "\\|" in mul and "\\<expected\\>" in mul and "&amp;" in mul
    assert "<br>second line of feedback" in mul and "\\$x\\$" in mul
    assert "\x1b" not in text
    assert "| 测试 | 分组 | 状态 | 得分 | 反馈 |" in render_markdown(report, "zh")


@pytest.mark.parametrize("fmt", FORMATS)
def test_render_dispatches(report, fmt):
    assert render(report, fmt, "zh") == {"text": render_text, "json": render_json, "gradescope": render_gradescope,
                                         "junit": render_junit, "markdown": render_markdown}[fmt](report, "zh")


def test_render_rejects_unknown_format_and_language(report):
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        render(report, "csv", "en")
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        render(report, "text", "fr")


def test_reports_are_not_modified_by_rendering(report):
    before = copy.deepcopy(report)
    for fmt in FORMATS:
        render(report, fmt, "en")
    assert report == before
