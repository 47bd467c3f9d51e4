"""grader/pages.py: feedback pages (feedback beside the code it is about, escaped, offline) and the dashboard."""
from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

import grader.report as model  # not "from ... import TestResult": pytest would try to collect it
from grader.course import find_course
from grader.formats import validate_report
from grader.pages import dashboard, feedback_page
from grader.report import GroupScore, Late, Report
from grader.submission import Submission, load_submission

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "<script>alert(1)</script>"
GROUPS = {"ops": "Gradients of each operation", "backprop": "backward()", "nn": "Neuron, Layer, MLP",
          "training": "Loss and training"}
TANH_FEEDBACK = "tanh backward is wrong: for [0.5] and upstream gradient 1.0 expected 0.7864, got 0.5379"
# (name, group, status, function, feedback, message id)
TESTS = [
    ("test_add_backward_matches_reference", "ops", "passed", "Value.__add__", "", None),
    ("test_tanh_backward_matches_reference", "ops", "failed", "Value.tanh", TANH_FEEDBACK, "op_backward_wrong"),
    ("test_backward_on_a_diamond", "backprop", "passed", "Value.backward", "", None),
    ("test_neuron_parameters_are_weights_then_bias", "nn", "failed", "Neuron.parameters",
     "Neuron.parameters() has 3 values, expected 4: the bias of each neuron is missing?", "parameters_count"),
    ("test_mse_loss_value_and_gradients_match_reference", "training", "passed", "mse_loss", "", None),
    ("test_train_loss_trajectory_matches_reference[0.0]", "training", "timeout", "train",
     "train did not finish: no result within 5 s (an infinite loop?)", "timeout"),
]
# Anything that would load from the network: an attribute of any element but a plain link (<a>) pointing at
# http(s): or //, a CSS url() or an @import.
EXTERNAL = re.compile(r"""<(?!a\b)[a-z]+\b[^>]*\s(?:src|href|srcset|data|poster|xlink:href)\s*=\s*["']?\s*"""
                      r"""(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""", re.IGNORECASE)


def make_report(student: str = "bob", tests=TESTS, status: str = "graded", errors=(), late: Late | None = None) -> dict:
    """A valid report built from the dataclasses: 10 points per test, groups and total summed. A report with
    status "error" has no tests, 0 points, and the groups' points as for everyone else (60 in all)."""
    results = [model.TestResult(name, group, 10.0 if st == "passed" else 0.0, 10.0, st, feedback, function, 0.01,
                                {"id": mid, "params": {}} if mid else None)
               for name, group, st, function, feedback, mid in tests]
    counted = [(t[1], 10.0) for t in TESTS] if status == "error" else [(r.group, r.max_score) for r in results]
    groups = [GroupScore(name, title, sum(r.score for r in results if r.group == name),
                         sum(points for group, points in counted if group == name), "visible")
              for name, title in GROUPS.items()]
    report = Report(
        grader_version="0.1.0", assignment={"name": "micrograd", "version": "1"}, student=student,
        submission={"sha256": "ab" * 32, "files": ["engine.py", "nn.py", "train.py"], "kind": "folder",
                    "source": f"submissions/{student}"},
        seed=1, lang="en", isolation={"layers": [], "warnings": []}, started_at="2026-12-21T10:15:00+00:00",
        duration_s=1.0, score=sum(g.score for g in groups), max_score=sum(g.max_score for g in groups),
        status=status, groups=groups, tests=results, errors=list(errors), late=late,
    ).to_dict()
    validate_report(report)
    return report


@pytest.fixture(scope="module")
def assignment():
    return find_course(ROOT).assignment("micrograd")


@pytest.fixture(scope="module")
def bob(assignment) -> Submission:
    return load_submission(ROOT / "submissions" / "micrograd" / "bob_tanh_bug", assignment)


@pytest.fixture(scope="module")
def notebook(assignment) -> Submission:
    return load_submission(ROOT / "submissions" / "micrograd" / "notebook_student" / "micrograd.ipynb", assignment)


def section(page: str, element_id: str) -> str:
    """The HTML of the <section> with this id (sections do not nest)."""
    match = re.search(rf'<section id="{element_id}"[^>]*>(.*?)</section>', page, re.DOTALL)
    assert match, f"no section {element_id}"
    return match.group(1)


def test_file_page_puts_the_feedback_right_after_the_function(bob):
    page = feedback_page(make_report(), bob)
    tanh = page.index("def tanh(self):")
    feedback = page.index('id="test-test_tanh_backward_matches_reference"')
    assert tanh < feedback < page.index("def sigmoid(self):")  # the method after tanh in bob's engine.py
    # Every line of the method comes before the feedback, and the feedback text itself is there.
    last_line = len(bob.files["engine.py"][: bob.files["engine.py"].index("def sigmoid")].rstrip().splitlines())
    assert page.index(f'<span class="ln">{last_line}</span>') < feedback
    assert html.escape(TANH_FEEDBACK) in page[feedback:page.index("def sigmoid(self):")]
    # Methods land in their own file, functions at top level too; nothing is left for the general section.
    assert page.index('id="file-nn.py"') < page.index('id="test-test_neuron_parameters_are_weights_then_bias"')
    assert page.index("def mse_loss(") < page.index('id="test-test_mse_loss_value_and_gradients_match_reference"')
    assert 'id="general"' not in page


def test_file_page_header_scores_late_penalty_and_errors(bob):
    late = Late("2026-12-22T08:00:00Z", "2026-12-20T23:59:00+08:00", 2, 20.0, 24.0)
    report = make_report(late=late, errors=[{"id": "encoding_gbk", "message": "nn.py was GBK"}])
    page = feedback_page(report, bob)
    summary = section(page, "groups")
    assert "Score" in page and "30</span> <span class=\"of\">/ 60" in page
    assert "Gradients of each operation" in summary and "10 / 20" in summary
    assert "2 day(s), -20% → 24" in page and "Final score" in page
    assert "nn.py was GBK" in section(page, "errors")
    # The not-passed list links to each failing test's feedback.
    assert 'href="#test-test_tanh_backward_matches_reference"' in section(page, "not-passed")


def test_unknown_functions_go_to_the_general_section(bob):
    tests = [("test_something_else", "ops", "failed", "Gadget.frobnicate", "no such thing", None),
             ("test_no_function", "ops", "failed", None, "about nothing in particular", None),
             # The method is missing: its class is the next best place.
             ("test_missing_method", "ops", "failed", "Value.arctan", "write arctan", None)]
    page = feedback_page(make_report(tests=tests), bob)
    general = section(page, "general")
    assert "no such thing" in general and "about nothing in particular" in general
    assert "write arctan" not in general
    assert page.index("class Value:") < page.index("write arctan") < page.index('id="file-nn.py"')


def test_a_file_that_does_not_parse_still_shows_and_its_tests_go_to_general():
    files = {"engine.py": "class Value:\n    def tanh(self)\n        return 1\n"}
    page = feedback_page(make_report(), Submission("eve", files, "folder", "eve"))
    assert "def tanh(self)" in page and TANH_FEEDBACK.split(":")[0] in section(page, "general")


def test_page_without_submission_lists_every_test():
    report = make_report(status="error", tests=[], errors=[{"id": "not_a_submission", "message": "empty zip"}])
    page = feedback_page(report, None)
    assert "not graded" in page and "empty zip" in page


def test_notebook_page_puts_feedback_beneath_the_tagged_cell(notebook):
    page = feedback_page(make_report(), notebook)
    engine, nn, train = (page.index(f"celltag_{tag}") for tag in ("engine", "nn", "train"))
    tanh = page.index('id="test-test_tanh_backward_matches_reference"')
    neuron = page.index('id="test-test_neuron_parameters_are_weights_then_bias"')
    mse = page.index('id="test-test_mse_loss_value_and_gradients_match_reference"')
    # Beneath the cell: after its code, before the next cell.
    assert engine < page.index('<span class="nf">tanh</span>', engine) < tanh < nn  # after `def tanh`
    assert nn < neuron < train < mse
    assert 'id="general"' not in page
    # nbconvert rendered the notebook: its Markdown is HTML, its code highlighted.
    assert "<h2" in page and 'class="highlight' in page


def test_notebook_page_is_sanitized_and_offline(notebook):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "id": "evil-md",
         "source": f'# Notes\n\n{SCRIPT}\n<img src="https://evil.example/x.png"> <iframe src="//evil.example"></iframe>'
                   '<a href="https://docs.python.org">docs</a>'},
        {"cell_type": "code", "metadata": {"grader_feedback_html": SCRIPT}, "id": "evil-code", "execution_count": 1,
         "source": "print(1)", "outputs": [
             {"output_type": "display_data", "metadata": {},
              "data": {"text/html": f'<b>bold</b>{SCRIPT}<link rel="stylesheet" href="https://cdn.example/x.css">',
                       "text/plain": "x"}},
             {"output_type": "display_data", "metadata": {}, "data": {"application/javascript": "alert(2)"}}]},
    ]
    student = dict(notebook.notebook, cells=[*cells, *notebook.notebook["cells"]])
    page = feedback_page(make_report(), replace(notebook, notebook=student))
    assert SCRIPT not in page and "alert(2)" not in page
    assert "<script" not in page.lower()
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert 'href="https://docs.python.org"' in page  # Markdown formatting and plain links stay
    assert "<b>bold</b>" not in page  # outputs never reach the page: only the code was graded
    assert "Content-Security-Policy" in page and "script-src 'none'" in page
    assert len(page) < 300_000  # body-only template: no 300 kB of JupyterLab CSS


def test_a_notebook_nbconvert_rejects_is_shown_as_its_files(notebook):
    student = json.loads(json.dumps(notebook.notebook))
    student["cells"][0]["metadata"] = None  # nbformat read it; nbconvert's validation does not accept it
    page = feedback_page(make_report(), replace(notebook, notebook=student))
    assert 'id="notebook"' not in page and 'id="file-engine.py"' in page
    assert page.index("def tanh(self):") < page.index('id="test-test_tanh_backward_matches_reference"')


def test_feedback_and_code_are_escaped(bob):
    tests = [("test_tanh_backward_matches_reference", "ops", "failed", "Value.tanh", f"got {SCRIPT}", None),
             ("test_other", "ops", "failed", None, f"general {SCRIPT}\x1b[31m", None)]
    files = {**bob.files, "train.py": f'"""{SCRIPT}"""\n' + bob.files["train.py"]}
    report = make_report(student=f"bob{SCRIPT}", tests=tests, errors=[{"id": "x", "message": SCRIPT}])
    page = feedback_page(report, replace(bob, files=files))
    assert SCRIPT not in page and "<script" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # name, title, 2 feedbacks, error, code
    assert "\x1b" not in page and "\\x1b[31m" in page
    assert not EXTERNAL.search(page)


def test_chinese_labels(bob):
    page = feedback_page(make_report(), bob, lang="zh")
    assert "得分" in page and '<html lang="zh-CN">' in page
    assert "得分" in dashboard([make_report()], {}, lang="zh")


# --- dashboard ------------------------------------------------------------------------------------------

def class_reports() -> list[dict]:
    """Three students: alice passes all, bob has the tanh bug (other numbers), carol's grading errored."""
    alice = make_report("alice", [(n, g, "passed", f, "", None) for n, g, _, f, _, _ in TESTS])
    bob_tests = [(n, g, s, f, fb.replace("0.5379", "0.1234"), mid) if n.startswith("test_tanh") else
                 (n, g, "passed", f, "", None) for n, g, s, f, fb, mid in TESTS]
    bob = make_report("bob", bob_tests, late=Late("2026-12-22T08:00:00Z", "2026-12-20T23:59:00+08:00", 1, 10.0, 45.0))
    carol = make_report("carol", status="error", tests=[],
                        errors=[{"id": "not_a_submission", "message": "carol.zip: not a readable zip file"}])
    dave = make_report("dave")  # the timeout: errored too
    return [alice, bob, carol, dave]


LINKS = {s: {"report": f"{s}.json", "feedback": f"{s}.html"} for s in ("alice", "bob", "carol", "dave")}


def test_dashboard_statistics_and_histogram():
    page = dashboard(class_reports(), LINKS)
    # Final scores out of 60: alice 60, bob 50 - 10 % = 45, carol 0, dave 30. Bins of 6 points; 60 is in the last.
    counts = [int(c) for c in re.findall(r'class="bin" data-bin="\d" data-count="(\d+)"', page)]
    assert counts == [1, 0, 0, 0, 0, 1, 0, 1, 0, 1]
    cards = re.findall(r'<div class="label">([^<]+)</div><div class="value">([^<]+)<', page)
    # carol's zip is not a submission: her problem, not the grader's; dave's timeout is a test's verdict
    assert dict(cards) == {"Students": "4", "Mean": "33.75", "Median": "37.5", "Grading errors": "0",
                           "Student problems": "1", "Late": "1"}
    students = section(page, "students")
    assert re.search(r'data-student="bob".*?−10%.*?<strong>45</strong>', students, re.DOTALL)


def test_dashboard_lists_errored_students_and_frequent_feedback():
    page = dashboard(class_reports(), LINKS)
    errored = section(page, "errored")
    assert "carol" in errored and "not a readable zip file" in errored
    assert "dave" in errored and "an infinite loop" in errored
    assert "alice" not in errored and "bob" not in errored
    rates = section(page, "pass-rates")
    order = re.findall(r'<tr data-test="([^"]+)"', rates)
    assert order[0] == "test_tanh_backward_matches_reference"  # 1 of 3 passed (carol ran nothing): lowest
    assert 'data-sort="1">1 / 3<' in rates
    common = section(page, "common-feedback")
    # bob's and dave's tanh feedback differ only in the numbers: one message, counted twice, one example.
    row = re.search(r'data-test="test_tanh_backward_matches_reference">.*?<td class="num">(\d+)</td>', common)
    assert row.group(1) == "2"
    assert common.count("tanh backward is wrong") == 1


def test_dashboard_links_are_relative_and_encoded():
    reports = [make_report("x#1 javascript:alert(1)"), make_report("zoë")]
    links = {"x#1 javascript:alert(1)": {"report": "x#1 javascript:alert(1).json"}, "zoë": {"feedback": "zoë.html"}}
    hrefs = re.findall(r'href="([^"]*)"', section(dashboard(reports, links), "students"))
    assert sorted(hrefs) == ["x%231%20javascript%3Aalert%281%29.json", "zo%C3%AB.html"]


def test_dashboard_escapes_student_text_and_is_offline():
    report = make_report(f"mallory{SCRIPT}", tests=[("t", "ops", "failed", None, SCRIPT, None)])
    page = dashboard([report], {})
    assert SCRIPT not in page and page.count("<script") == 1  # only the sorting script, allowed by its hash
    assert "script-src 'sha256-" in page
    assert not EXTERNAL.search(page)


def test_empty_class():
    page = dashboard([], {})
    assert 'id="histogram"' in page and 'id="students"' in page


# --- in a real browser ----------------------------------------------------------------------------------

def chromium_dom(page: Path) -> str:
    """The DOM after Chromium loaded the page and ran its script, flags as in scripts/dashboard_screenshot.py.
    The console goes to stderr: a script or load the page's Content-Security-Policy refused shows there."""
    spec = importlib.util.spec_from_file_location("dashboard_screenshot", ROOT / "scripts" / "dashboard_screenshot.py")
    screenshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshot)
    with tempfile.TemporaryDirectory(prefix="grader-test-chromium-") as profile:
        command = screenshot.chromium_command(CHROMIUM, profile) + [
            "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Content Security Policy" not in done.stderr, done.stderr[-2000:]  # e.g. the sorting script's hash
    return done.stdout


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (/usr/bin/chromium) to load the dashboard")
def test_dashboard_in_headless_chromium(tmp_path):
    reports = class_reports()
    for report in reports:
        (tmp_path / f"{report['student']}.json").write_text(json.dumps(report), encoding="utf-8")
    index = tmp_path / "index.html"
    index.write_text(dashboard(reports, LINKS), encoding="utf-8")
    dom = chromium_dom(index)
    assert len(re.findall(r'<rect class="bar-rect"', dom)) == 10
    assert 'data-test="test_tanh_backward_matches_reference"' in section(dom, "pass-rates")
    assert re.search(r'<section id="errored">.*<tr data-student="carol">.*not a readable zip file', dom, re.DOTALL)
    students = section(dom, "students")
    for student in LINKS:
        assert f'href="{student}.html"' in students and f'href="{student}.json"' in students


def test_file_page_marks_the_line_python_cannot_parse(assignment):
    heidi = load_submission(ROOT / "submissions" / "micrograd" / "heidi_syntax_error", assignment)
    page = feedback_page(make_report("heidi"), heidi)
    marked = re.findall(r'<span class="bad-line" title="([^"]*)"><span class="ln">(\d+)</span>([^<]*)</span>', page)
    assert marked == [("SyntaxError: expected &#39;:&#39;", "45", "    def __call__(self, x)")]
