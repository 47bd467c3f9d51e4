"""One error base class: every GraderError reaching the CLI is `Error: <one line>` and its class's exit code."""
from __future__ import annotations

import importlib
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import grader
import grader.errors
from grader.cli import main
from grader.errors import EXIT_FAILED, EXIT_UNUSABLE, GraderError

ROOT = Path(__file__).resolve().parent.parent
ALICE = ROOT / "submissions" / "micrograd" / "alice_correct"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def all_grader_errors() -> list[type[GraderError]]:
    for module in pkgutil.walk_packages(grader.__path__, "grader."):
        if not module.name.startswith(("grader._course", "grader.__main__")):
            importlib.import_module(module.name)
    found, todo = [], [GraderError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_of_the_grader_is_a_grader_error_with_a_documented_exit_code():
    errors = {cls.__name__: cls for cls in all_grader_errors()}
    for name in ("CourseError", "SubmissionError", "SandboxError", "WeakSandboxError", "GradingError", "ExportError",
                 "MutationError", "SelftestError", "GenerateError", "BatchError", "ReportError", "InputError"):
        assert name in errors, name
    doc = grader.errors.__doc__ or ""
    for name, cls in errors.items():
        assert cls.exit_code in (EXIT_FAILED, EXIT_UNUSABLE), name
        if name not in ("GraderError", "UnusableInput"):
            line = next(line for line in doc.split("\n- ") if f"`{name}`" in line)  # documented once, in its code
            assert line.startswith(f"{cls.exit_code}:"), (name, line)
    # No other exception class of the grader is meant for a person: those left are internal signals.
    for module in [m for m in vars(grader).values() if type(m) is type(grader)]:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == module.__name__:
                assert issubclass(value, GraderError) or value.__name__ in INTERNAL, value


INTERNAL = {"Feedback", "WrongType", "Refused", "BadReply", "_Timeout", "_Crash", "WorkerLost"}


def test_the_readme_documents_the_exit_codes():
    rows = {line.split("|")[1].strip(): line for line in README.splitlines() if re.match(r"\| [0-2] \|", line)}
    assert sorted(rows) == ["0", "1", "2"]
    assert "a sandbox this machine cannot set up" in rows["1"] and "a broken course" in rows["2"]


def course_copy(folder: Path) -> Path:
    for part in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def one_line_error(args: list[str], code: int, words: str) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, (args, result.output, result.exception)
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, (args, result.output)
    assert words in result.output and "Traceback" not in result.output, (args, result.output)
    return result.output


@pytest.fixture(scope="module")
def bad_course(tmp_path_factory) -> Path:
    """A course whose assignment.toml (student material and reference alike) has a malformed setting."""
    course = course_copy(tmp_path_factory.mktemp("bad"))
    for toml in (course / "assignments/micrograd/assignment.toml", course / "reference/micrograd/assignment.toml"):
        edit(toml, "memory_mb = 512", "memory_mb = -1")
    return course


@pytest.mark.parametrize("command", [
    ["grade", str(ALICE)], ["check", str(ALICE)], ["batch", str(ROOT / "submissions" / "micrograd")], ["selftest"],
    ["generate"],
    ["generate", "--check"], ["export", "student", "--out", "NEW"], ["export", "gradescope", "--out", "NEW.zip"]])
def test_a_bad_course_is_exit_2_in_one_line_in_every_command(bad_course, tmp_path, command):
    command = [str(tmp_path / a) if a.startswith("NEW") else a for a in command]
    out = one_line_error([*command, "--course", str(bad_course), "--assignment", "micrograd"], EXIT_UNUSABLE,
                         "limits.memory_mb")
    assert "assignment.toml" in out


def test_a_reference_that_cannot_be_mutated_stops_selftest_in_one_line(tmp_path):
    course = course_copy(tmp_path)
    for toml in (course / "assignments/micrograd/assignment.toml", course / "reference/micrograd/assignment.toml"):
        edit(toml, '"train" = 5\n', "")
    out = one_line_error(["selftest", "--course", str(course), "--assignment", "micrograd"], EXIT_UNUSABLE,
                         "no group of assignment.toml lists")
    assert re.search(r"train\.py:\d+:", out), out


def test_hidden_tests_that_do_not_run_are_a_broken_course_in_grade_and_batch(tmp_path):
    # In a process of its own: pytest, which runs the hidden tests, has already imported the course's autotests here.
    course = course_copy(tmp_path / "course")
    (course / "autotests" / "micrograd" / "test_broken.py").write_text("def test_x(:\n", encoding="utf-8")
    folder = tmp_path / "class"
    shutil.copytree(ALICE, folder / "alice")
    for args, words in ((["grade", str(ALICE), "--format", "json"], "the hidden tests did not run"),
                        (["batch", str(folder), "--out-dir", str(tmp_path / "out")], "no one was graded")):
        done = subprocess.run([sys.executable, "-m", "grader", *args, "--course", str(course)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == EXIT_UNUSABLE and done.stdout == "", (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], (args, done.stderr)


def test_input_errors_are_exit_2_and_failures_exit_1(tmp_path):
    one_line_error(["grade", str(tmp_path)], EXIT_UNUSABLE, "Error: ")  # not a submission
    one_line_error(["grade", str(ALICE), "--out", str(tmp_path / "no" / "r.json")], EXIT_UNUSABLE, "does not exist")
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    one_line_error(["validate", str(tmp_path / "bad.json")], EXIT_FAILED, "bad.json")


def test_a_sandbox_that_cannot_be_set_up_is_exit_1_and_a_refused_weak_one_exit_2(monkeypatch):
    import grader.sandbox
    from grader.sandbox import SandboxError, WeakSandboxError

    def broken(allow_weak_sandbox: bool) -> str:
        raise SandboxError("no usable Python for the sandbox\n(second line)")

    monkeypatch.setattr(grader.sandbox, "check_isolation", broken)
    out = one_line_error(["grade", str(ALICE)], EXIT_FAILED, "no usable Python for the sandbox (second line)")
    assert out.count("Error") == 1

    def weak(allow_weak_sandbox: bool) -> str:
        raise WeakSandboxError("no filesystem isolation")

    monkeypatch.setattr(grader.sandbox, "check_isolation", weak)
    one_line_error(["grade", str(ALICE)], EXIT_UNUSABLE, "no filesystem isolation")


def test_click_usage_errors_stay_clicks():
    result = CliRunner().invoke(main, ["grade", "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.output
