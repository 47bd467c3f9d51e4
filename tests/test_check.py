"""`grader check`: the public tests through the sandbox, function by function, in English and Chinese."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKELETON = ROOT / "assignments" / "micrograd"


def check(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "grader", "check", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.fixture
def workspace(tmp_path):
    """A student's folder: the skeleton, as handed out."""
    folder = tmp_path / "micrograd"
    shutil.copytree(SKELETON, folder, ignore=shutil.ignore_patterns("template", "__pycache__"))
    return folder


def test_untouched_skeleton_lists_every_function_as_not_written(workspace):
    result = check(cwd=workspace)
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line[:1] and line[0] in "·-"]
    assert len(lines) == 21 and all(line.endswith("not written yet") for line in lines), result.stdout
    # a function that needs one not written yet is not blamed: "not checked: it depends on X, which is not written yet"
    assert sum("depends on" in line for line in lines) == 6  # Layer, MLP: __call__, parameters; mse_loss; train
    assert "0 of 21 functions done, 0 of 35 public checks passed" in result.stdout


def test_progress_counts_the_functions_that_pass(workspace):
    for name in ("engine.py",):
        shutil.copy(ROOT / "reference" / "micrograd" / name, workspace / name)
    result = check(cwd=workspace)
    assert "9 of 21 functions done" in result.stdout  # the eight operations and backward()
    assert result.returncode == 1


def test_a_wrong_gradient_is_named_with_a_concrete_case():
    result = check(str(ROOT / "submissions" / "micrograd" / "bob_tanh_bug"))
    assert result.returncode == 1
    wrong = [line for line in result.stdout.splitlines() if "Value.tanh" in line]
    assert wrong and "wrong" in wrong[0]
    assert "tanh backward" in result.stdout and "expected" in result.stdout
    assert "20 of 21 functions done" in result.stdout


def test_a_correct_submission_passes_with_exit_0():
    result = check(str(ROOT / "submissions" / "micrograd" / "alice_correct"))
    assert result.returncode == 0, result.stdout
    assert "21 of 21 functions done" in result.stdout


def test_chinese_feedback(workspace):
    result = check("--lang", "zh", cwd=workspace)
    assert "尚未实现" in result.stdout and "已完成 0/21 个函数" in result.stdout


def test_a_notebook_is_checked_like_files():
    result = check(str(ROOT / "submissions" / "micrograd" / "notebook_student" / "micrograd.ipynb"))
    assert result.returncode == 1
    assert "train" in result.stdout and "20 of 21 functions done" in result.stdout


def test_only_one_group(workspace):
    result = check("--only", "nn", cwd=workspace)
    assert "Neuron.__call__" in result.stdout and "Value.tanh" not in result.stdout


def test_junit_output_for_ci(workspace, tmp_path):
    import xml.etree.ElementTree as ET

    out = tmp_path / "check.xml"
    result = check("--format", "junit", "--out", str(out), cwd=workspace)
    assert result.returncode == 1
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    assert int(root.get("tests")) == 35 and int(root.get("failures")) + int(root.get("errors")) == 35


def test_a_syntax_error_is_shown_once_with_file_line_and_caret(workspace):
    shutil.copy(ROOT / "reference" / "micrograd" / "engine.py", workspace / "engine.py")
    (workspace / "engine.py").write_text((workspace / "engine.py").read_text(encoding="utf-8").replace(
        "    def relu(self):", "    def relu(self)", 1), encoding="utf-8")
    result = check(cwd=workspace)
    assert result.returncode == 1
    assert result.stdout.count("SyntaxError") == 1, result.stdout  # engine.py stops nn.py and train.py too
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "SyntaxError" in line)
    assert lines[at].startswith("! engine.py, line ") and lines[at + 1].strip() == "def relu(self)"
    assert lines[at + 2].index("^") == lines[at + 1].index(")")  # where Python puts it, as Python shows it
    checked = [line for line in lines if line[:1] and line[0] in "✓✗·-"]
    assert len(checked) == 21 and all("engine.py does not import" in line for line in checked)


def test_folder_without_a_submission_is_exit_2(tmp_path):
    result = check(cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_every_format_counts_functions_done_and_public_checks_passed_never_a_grade(tmp_path):
    folder = ROOT / "submissions" / "micrograd" / "frank_no_zero_grad"
    text = check(str(folder), cwd=ROOT).stdout
    assert "20 of 21 functions done, 33 of 35 public checks passed (not a grade" in text
    report = json.loads(check(str(folder), "--format", "json", cwd=ROOT).stdout)
    assert report["status"] == "checked" and report["score"] == 33 and report["max_score"] == 35
    assert report["progress"] == {"functions_done": 20, "functions": 21, "checks_passed": 33, "checks": 35}
    markdown = check(str(folder), "--format", "markdown", cwd=ROOT).stdout
    assert markdown.splitlines()[0].endswith("20 of 21 functions done, 33 of 35 public checks passed (not a grade: "
                                             "the hidden tests check more)")
    assert "| Group | Public checks passed | Public checks |" in markdown
    junit = check(str(folder), "--format", "junit", cwd=ROOT).stdout
    assert 'name="micrograd: public checks"' in junit and 'tests="35"' in junit
    # a check report is no grade: a gradebook refuses it
    students = tmp_path / "reports" / "students"
    students.mkdir(parents=True)
    (students / "frank.json").write_text(json.dumps(report), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "grader", "gradebook", str(tmp_path / "reports")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "a `grader check` report (public checks), not a grade" in done.stderr
