"""Grading one submission end to end: right scores, pinpointing feedback, reproducible reports, the CLI."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.course import find_course
from grader.formats import validate_report
from grader.grading import grade_path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"
GROUPS = ("ops", "backprop", "nn", "training")


@pytest.fixture(scope="session")
def assignment():
    return find_course(ROOT).assignment("micrograd")


@pytest.fixture(scope="session")
def graded(assignment):
    """Reports of the reference and the samples, graded once per test session."""
    cache = {}

    def grade(name, lang="en"):
        if (name, lang) not in cache:
            path = ROOT / "reference" if name == "reference" else SAMPLES / name
            report = grade_path(path, assignment, lang=lang).to_dict()
            validate_report(report)
            cache[name, lang] = report
        return cache[name, lang]

    return grade


def group_scores(report):
    return {g["name"]: (g["score"], g["max_score"]) for g in report["groups"]}


def failing(report):
    return [t for t in report["tests"] if t["status"] != "passed"]


@pytest.mark.parametrize("name", ["reference", "alice_correct"])
def test_correct_code_gets_full_marks(graded, name):
    report = graded(name)
    assert report["score"] == report["max_score"] == 100, [t["feedback"] for t in failing(report)]
    assert report["errors"] == [] and report["status"] == "graded"


BUGS = [
    ("bob_tanh_bug", "ops", "Value.tanh", "tanh backward is wrong"),
    ("carol_overwrite_grad", "ops", "Value.__mul__", "replaces the gradient instead of adding"),
    ("dave_no_topo", "backprop", "Value.backward", "reversed()"),
    ("erin_bias_missing", "nn", "Neuron.parameters", "bias"),
    ("frank_no_zero_grad", "training", "train", "zero_grad"),
    ("notebook_student", "training", "train", "zero_grad"),
]


@pytest.mark.parametrize("name, group, function, words", BUGS)
def test_a_bug_loses_points_in_its_own_group_only(graded, name, group, function, words):
    report = graded(name)
    scores = group_scores(report)
    assert scores[group][0] < scores[group][1]
    for other in GROUPS:
        if other != group:
            assert scores[other][0] == scores[other][1], (other, [t["feedback"] for t in failing(report)])
    named = [t for t in failing(report) if t["function"] == function]
    assert named and any(words in t["feedback"] for t in named), [t["feedback"] for t in failing(report)]


def test_tanh_feedback_gives_a_concrete_case(graded):
    feedback = next(t["feedback"] for t in failing(graded("bob_tanh_bug")))
    assert feedback.startswith("tanh backward is wrong: for x = ")
    assert "expected x.grad = " in feedback and ", got x.grad = " in feedback


def test_feedback_in_chinese(graded):
    report = graded("bob_tanh_bug", "zh")
    assert report["lang"] == "zh"
    assert "tanh 的反向传播" in failing(report)[0]["feedback"]


def test_syntax_error_costs_only_its_file_and_is_reported_once(graded):
    report = graded("heidi_syntax_error")
    scores = group_scores(report)
    assert scores["nn"][0] == 0 and scores["ops"] == (40, 40) and scores["training"] == (20, 20)
    assert [e["id"] for e in report["errors"]] == ["syntax_error"]
    first, code, caret = report["errors"][0]["message"].splitlines()
    assert first.startswith("nn.py, line 45: SyntaxError") and code.strip() == "def __call__(self, x)"
    assert caret.index("^") == code.index(")")  # where Python points


def test_hostile_sample_loses_only_the_test_it_breaks(graded):
    report = graded("grace_hostile")
    broken = failing(report)
    assert {t["function"] for t in broken} == {"train"}
    assert {t["status"] for t in broken} == {"timeout"}
    assert report["score"] == pytest.approx(100 - sum(t["max_score"] for t in broken))


def test_same_submission_gives_the_same_report(assignment, graded):
    first = graded("bob_tanh_bug")
    again = grade_path(SAMPLES / "bob_tanh_bug", assignment).to_dict()

    def stable(report):
        report = json.loads(json.dumps(report))
        for key in ("started_at", "duration_s"):
            report.pop(key)
        for test in report["tests"]:
            test.pop("duration_s")
        return report

    assert stable(first) == stable(again)
    assert first["seed"] == again["seed"]


def test_report_records_the_isolation_layers(graded):
    isolation = graded("reference")["isolation"]
    assert "rlimit-memory" in isolation["layers"]


# ---------------------------------------------------------------------- the command line

def grader(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=kwargs.pop("cwd", ROOT), **kwargs)


def test_cli_grade_writes_a_valid_json_report_and_exits_0(tmp_path):
    out = tmp_path / "bob.json"
    result = grader("grade", str(SAMPLES / "bob_tanh_bug"), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert grader("validate", str(out)).returncode == 0
    assert json.loads(out.read_text())["student"] == "bob_tanh_bug"


def test_cli_fail_under_exits_1():
    result = grader("grade", str(SAMPLES / "bob_tanh_bug"), "--format", "json", "--fail-under", "99.5")
    assert result.returncode == 1
    assert json.loads(result.stdout)["score"] < 99.5


def test_cli_rejects_input_that_is_not_a_submission_with_exit_2(tmp_path):
    result = grader("grade", str(tmp_path))
    assert result.returncode == 2
    assert "Error:" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_gradescope_and_junit_formats(tmp_path):
    scope = grader("grade", str(SAMPLES / "erin_bias_missing"), "--format", "gradescope")
    results = json.loads(scope.stdout)
    assert {"score", "execution_time", "output", "tests"} <= set(results)
    assert all({"name", "score", "max_score", "status", "visibility"} <= set(t) for t in results["tests"])
    junit = grader("grade", str(SAMPLES / "erin_bias_missing"), "--format", "junit")
    root = ET.fromstring(junit.stdout)
    assert int(root.get("failures")) + int(root.get("errors")) >= 1


def test_cli_text_format_in_chinese():
    result = grader("grade", str(SAMPLES / "bob_tanh_bug"), "--format", "text", "--lang", "zh")
    assert result.returncode == 0 and "tanh 的反向传播" in result.stdout


def test_cli_works_from_any_folder_with_grader_course(tmp_path):
    env = {**os.environ, "GRADER_COURSE": str(ROOT)}
    result = grader("grade", str(SAMPLES / "alice_correct"), "--format", "json", cwd=tmp_path, env=env)
    assert json.loads(result.stdout)["score"] == 100


def test_cli_schema_prints_the_schema():
    schema = json.loads(grader("schema").stdout)
    assert schema["$schema"].endswith("2020-12/schema")


def test_broken_hidden_tests_are_an_error_not_a_report(tmp_path):
    import shutil

    for part in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "autotests" / "micrograd" / "test_broken.py").write_text("def test_x(:\n", encoding="utf-8")
    result = grader("grade", str(SAMPLES / "alice_correct"), "--course", str(tmp_path), "--format", "json")
    assert result.returncode == 2 and result.stdout == ""
    assert "the hidden tests did not run" in result.stderr and "Traceback" not in result.stderr


def test_a_plain_install_carries_the_course(tmp_path):
    """Not only an editable install: the wheel holds assignments/, reference/ and autotests/ under grader/_course."""
    import zipfile

    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("micrograd_grader-*.whl"))
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    for part in ("assignments/micrograd/assignment.toml", "reference/micrograd/engine.py",
                 "autotests/micrograd/test_ops.py"):
        assert (unpacked / "grader" / "_course" / part).is_file(), part
    found = subprocess.run([sys.executable, "-c", "from grader.course import find_course; print(find_course().root)"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(unpacked), "GRADER_COURSE": ""})
    assert found.stdout.strip() == str(unpacked / "grader" / "_course"), found.stderr


def test_a_renamed_class_is_named_in_the_report(tmp_path, assignment):
    for name in ("engine.py", "nn.py", "train.py"):
        text = (SAMPLES / "alice_correct" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("class Value:", "class Valu:"), encoding="utf-8")
    report = grade_path(tmp_path, assignment).to_dict()
    assert report["errors"][0] == {"id": "missing_names", "message": "engine.py defines no Value: the tests need "
                                   "these names (was something renamed?)"}
    scores = group_scores(report)
    assert scores["ops"][0] == 0 and scores["nn"] == (20, 20)  # nn.py is judged over the reference engine
