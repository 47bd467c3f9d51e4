"""Attacks on `grader batch` and `grader grade` through the CLI, as a student (or a broken course) would make them.

Each runs the real command with a time limit; together they cover what is read from a submission (never what a
link points at, never a time of the student's own), that one submission never stops the batch while a broken
course stops it before anyone is graded, and what people open (pages, the gradebook, terminals).
"""
import csv
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"
FILES = ("engine.py", "nn.py", "train.py")
TIMEOUT = 240
SECRET = "TOP-SECRET-7f3a"


def grader(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The real CLI, bounded in time and (through the sandbox's own limits) in memory."""
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=cwd, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def alice(dest: Path, skip: tuple[str, ...] = ()) -> Path:
    dest.mkdir(parents=True)
    for name in FILES:
        if name not in skip:
            shutil.copy(SAMPLES / "alice_correct" / name, dest / name)
    return dest


def batch(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return grader("batch", str(folder), "--out-dir", str(out), "--jobs", "2", *extra)


def report(out: Path, student: str) -> dict:
    return json.loads((out / "students" / f"{student}.json").read_text(encoding="utf-8"))


def gradebook(out: Path) -> dict[str, dict]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def notebook_of(cells: list) -> dict:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    return notebook


def alice_cells() -> list:
    return [nbformat.v4.new_code_cell((SAMPLES / "alice_correct" / name).read_text(encoding="utf-8"),
                                      metadata={"tags": [Path(name).stem]}) for name in FILES]


# ------------------------------------------------------------------ 5. what is read, what is believed

@pytest.fixture(scope="module")
def linked_class(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Links everywhere a student (or a class folder) can put one."""
    base = tmp_path_factory.mktemp("links")
    secret = base / "secret.txt"
    secret.write_text(f"{SECRET}\n", encoding="utf-8")
    folder = base / "class"
    # engine.py -> the reference: used to earn full marks in ops and backprop.
    linker = alice(folder / "linker", skip=("engine.py",))
    (linker / "engine.py").symlink_to(ROOT / "reference" / "micrograd" / "engine.py")
    # nn.py -> a file the student may not read: used to put its content into the report.
    snoop = alice(folder / "snoop", skip=("nn.py",))
    (snoop / "nn.py").symlink_to(secret)
    # The submission folder itself is a link; and a folder whose only content is a linked subfolder.
    outside = alice(base / "outside")
    (folder / "dirlink").symlink_to(outside, target_is_directory=True)
    (folder / "sublink").mkdir()
    (folder / "sublink" / "work").symlink_to(outside, target_is_directory=True)
    # A notebook folder whose notebook is a link.
    nb = base / "real.ipynb"
    nbformat.write(notebook_of(alice_cells()), nb)
    (folder / "nblink").mkdir()
    (folder / "nblink" / "micrograd.ipynb").symlink_to(nb)
    # A zip whose engine.py entry is a symbolic link (what `zip --symlinks` stores).
    with zipfile.ZipFile(folder / "ziplink.zip", "w") as z:
        for name in ("nn.py", "train.py"):
            z.write(SAMPLES / "alice_correct" / name, name)
        info = zipfile.ZipInfo("engine.py")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, str(ROOT / "reference" / "micrograd" / "engine.py"))
    alice(folder / "honest")
    out = base / "out"
    return out, batch(folder, out)


def test_a_link_to_the_reference_earns_nothing_and_says_why(linked_class):
    out, result = linked_class
    assert result.returncode == 1, result.stderr  # some students have error reports
    linker = report(out, "linker")
    assert "engine.py" not in linker["submission"]["files"]
    assert {g["name"]: g["score"] for g in linker["groups"]}["ops"] == 0
    assert any("engine.py is a symbolic link; submit the file itself" in e["message"] for e in linker["errors"])
    assert report(out, "honest")["score"] == 100


def test_a_link_to_a_private_file_is_never_read(linked_class):
    out, _ = linked_class
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path
    assert any("nn.py is a symbolic link" in e["message"] for e in report(out, "snoop")["errors"])


def test_linked_folders_notebooks_and_zip_entries_are_not_followed(linked_class):
    out, _ = linked_class
    for student in ("dirlink", "sublink", "nblink"):
        mine = report(out, student)
        assert mine["status"] == "error" and "symbolic link" in mine["errors"][0]["message"], mine["errors"]
    ziplink = report(out, "ziplink")
    assert "engine.py" not in ziplink["submission"]["files"]
    assert any("engine.py is a symbolic link" in e["message"] for e in ziplink["errors"])


def test_a_students_own_time_is_never_believed(tmp_path):
    folder = tmp_path / "class"
    for student in ("early", "beside", "listed"):
        mine = alice(folder / student)
        (mine / "submission.json").write_text('{"submitted_at": "2026-12-01T00:00:00+08:00"}', encoding="utf-8")
    with zipfile.ZipFile(folder / "zipped.zip", "w") as z:
        for name in FILES:
            z.write(SAMPLES / "alice_correct" / name, name)
        z.writestr("submission.json", '{"submitted_at": "2026-12-01T00:00:00+08:00"}')
    (folder / "beside.submission.json").write_text('{"submitted_at": "2026-12-22T18:30:00+08:00"}', encoding="utf-8")
    (folder / "times.csv").write_text("student,submitted_at\nlisted,2026-12-23T09:00:00+08:00\n", encoding="utf-8")
    out = tmp_path / "out"
    result = batch(folder, out)
    assert result.returncode == 0, result.stderr
    assert report(out, "early")["late"]["submitted_at"] is None  # inside the folder: ignored
    assert report(out, "zipped")["late"]["submitted_at"] is None  # inside the zip: ignored
    assert report(out, "beside")["late"]["days_late"] == 2  # <student>.submission.json beside it
    assert report(out, "listed")["late"]["days_late"] == 3  # times.csv
    assert float(gradebook(out)["listed"]["final"]) == pytest.approx(70)


def test_a_bad_times_csv_row_is_one_line_naming_file_and_line(tmp_path):
    folder = tmp_path / "class"
    alice(folder / "alice")
    (folder / "times.csv").write_text("student,submitted_at\nalice,yesterday\n", encoding="utf-8")
    result = batch(folder, tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and f"{folder / 'times.csv'}:2:" in result.stderr
    assert not (tmp_path / "out" / "gradebook.csv").exists()


# ------------------------------------------------------------------ 6. one submission never stops the batch

def test_malformed_submissions_get_error_reports_and_everyone_else_is_graded(tmp_path):
    folder = tmp_path / "class"
    alice(folder / "alice")
    cells = alice_cells()
    cells[0].metadata["tags"] = 5  # nbformat reads it; code that iterates the tags did not
    cells.insert(0, nbformat.v4.new_code_cell("x = '\ud800'"))
    cells[0].metadata["tags"] = "engine"  # a string, not a list
    (folder / "tags.ipynb").write_text(json.dumps(notebook_of(cells)), encoding="utf-8")
    surrogate = notebook_of(alice_cells())
    surrogate.cells[1].source += "\n# \ud800 a lone surrogate\n"
    (folder / "surrogate.ipynb").write_text(json.dumps(surrogate), encoding="utf-8")
    alice(Path(os.fsdecode(os.fsencode(folder) + b"/bad\xffname")))  # a folder name that is not UTF-8
    (folder / "empty").mkdir()
    out = tmp_path / "out"
    result = batch(folder, out)
    assert result.returncode == 1, result.stderr
    assert "not graded (error reports): empty" in result.stderr and "Traceback" not in result.stderr
    rows = gradebook(out)
    assert set(rows) == {"alice", "tags", "surrogate", "bad%FFname", "empty"}
    assert rows["alice"]["status"] == "graded" and rows["empty"]["status"] == "problem"  # not the grader's
    assert report(out, "surrogate")["status"] == "graded"
    assert report(out, "bad%FFname")["score"] == 100
    assert (out / "index.html").is_file() and (out / "summary.json").is_file()


def test_a_grader_failure_on_one_submission_is_its_error_report(tmp_path, monkeypatch):
    """A report that fails validation (here: NaN forged into a score) and an exception in grading are that
    student's error report, in grader words; the others are graded and the class files written."""
    from concurrent.futures import ThreadPoolExecutor

    import grader.grading
    from grader.batch import run_batch
    from grader.course import find_course

    real = grader.grading.grade_submission

    def sabotaged(submission, assignment, **options):
        if submission.student == "crash":
            raise ValueError("a value the grader did not expect")
        report = real(submission, assignment, **options)
        if submission.student == "nan":
            report.score = float("nan")
        return report

    monkeypatch.setattr(grader.grading, "grade_submission", sabotaged)
    folder = tmp_path / "class"
    for student in ("alice", "crash", "nan"):
        alice(folder / student)
    out = tmp_path / "out"
    with ThreadPoolExecutor(1) as pool:
        result = run_batch(folder, find_course(ROOT).assignment("micrograd"), out, jobs=1, executor=pool)
    assert result.errored == ["crash", "nan"]
    assert result.reports["alice"]["score"] == 100
    crash = report(out, "crash")["errors"][0]["message"]
    assert crash.startswith("the grader could not grade this submission (ValueError: a value")
    assert "Traceback" not in crash
    assert "not a finite number" in report(out, "nan")["errors"][0]["message"]
    assert set(gradebook(out)) == {"alice", "crash", "nan"}


def test_a_broken_course_stops_the_batch_before_anyone_is_graded(tmp_path):
    course = tmp_path / "course"
    for part in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / part, course / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    ops = course / "autotests" / "micrograd" / "test_ops.py"
    ops.write_text(ops.read_text(encoding="utf-8") + "\ndef broken(:\n", encoding="utf-8")
    folder = tmp_path / "class"
    alice(folder / "alice")
    out = tmp_path / "out"
    result = batch(folder, out, "--course", str(course))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "hidden tests" in result.stderr
    assert "Traceback" not in result.stderr and "no one was graded" in result.stderr
    assert not (out / "gradebook.csv").exists() and not list(out.rglob("alice.*"))


# ------------------------------------------------------------------ 9. what people open

def test_gradebook_cells_are_not_formulas_and_ids_cannot_replace_class_files(tmp_path):
    folder = tmp_path / "class"
    for student in ("=HYPERLINK(1)", "+cmd", "@sum", "index", "gradebook", "summary"):
        alice(folder / student)
    out = tmp_path / "out"
    result = batch(folder, out)
    assert result.returncode == 0, result.stderr
    text = (out / "gradebook.csv").read_text(encoding="utf-8")
    rows = gradebook(out)
    assert {"'=HYPERLINK(1)", "'+cmd", "'@sum", "index"} <= set(rows)
    assert all(not line.startswith(("=", "+", "@", "-")) for line in text.splitlines())
    assert rows["index"]["total"] == "100.0" and rows["index"]["late_days"] == "0"  # numbers stay numbers
    assert 'id="histogram"' in (out / "index.html").read_text(encoding="utf-8")  # the dashboard, not a page
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["students"] == 6
    assert report(out, "summary")["student"] == "summary"
    assert 'href="students/index.html"' in (out / "index.html").read_text(encoding="utf-8")


def test_notebook_outputs_never_reach_the_feedback_page(tmp_path):
    cells = alice_cells()
    cells[0].outputs = [nbformat.from_dict(output) for output in (
        {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="},
         "metadata": {"image/png": {"width": '1" style="position:fixed;top:0" data-fake="100 / 100'}}},
        {"output_type": "stream", "name": "stdout", "text": "FAKE SCORE 100 / 100"})]
    cells[0].execution_count = 7
    folder = tmp_path / "class"
    folder.mkdir()
    nbformat.write(notebook_of(cells), folder / "nora.ipynb")
    out = tmp_path / "out"
    result = batch(folder, out)
    assert result.returncode == 0, result.stderr
    page = (out / "students" / "nora.html").read_text(encoding="utf-8")
    assert 'id="notebook"' in page and '<span class="nc">Value</span>' in page  # the code is shown
    assert "position:fixed" not in page and "FAKE SCORE" not in page and "data-fake" not in page
    assert "iVBORw0KGgo" not in page


def test_control_characters_and_bidi_marks_never_reach_a_terminal(tmp_path):
    folder = alice(tmp_path / "student")
    nn = folder / "nn.py"
    nn.write_text(nn.read_text(encoding="utf-8").replace(
        "class Module", "raise ValueError('\\x1b[2J\\x1b]0;pwned\\x07 \\u202eevil\\u2066 \\u200fx')\nclass Module", 1),
        encoding="utf-8")
    outputs = [grader("grade", str(folder), "--format", fmt).stdout for fmt in ("text", "markdown", "junit",
                                                                                 "gradescope")]
    outputs.append(grader("check", str(folder)).stdout)
    for output in outputs:
        assert "pwned" in output or "\\u001b" in output  # the message is there, escaped
        for char in ("\x1b", "\x07", "\u202e", "\u2066", "\u200f"):
            assert char not in output


# ------------------------------------------------------------------ 7. caps

def test_huge_feedback_is_capped_in_reports_and_pages(tmp_path):
    folder = tmp_path / "class"
    student = alice(folder / "loud")
    engine = student / "engine.py"
    # Every call of the student's tanh raises an exception whose type's name is 1 MiB long.
    engine.write_text(engine.read_text(encoding="utf-8").replace(
        "    def tanh(self):", "    def tanh(self):\n        raise type('E' * 2**20, (Exception,), {})('x' * 2**20)\n\n"
        "    def _unused_tanh(self):", 1), encoding="utf-8")
    out = tmp_path / "out"
    result = batch(folder, out)
    assert result.returncode == 0, result.stderr
    assert (out / "students" / "loud.json").stat().st_size < 300 * 1024
    assert (out / "students" / "loud.html").stat().st_size < 1024 * 1024
    assert (out / "index.html").stat().st_size < 1024 * 1024
    loud = report(out, "loud")
    failed = [t for t in loud["tests"] if t["status"] != "passed"]
    assert failed and all(len(t["feedback"]) <= 2100 for t in failed)
    assert any("EEEE" in t["feedback"] for t in failed)  # cut, not refused: the student still sees what raised
