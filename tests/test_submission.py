"""Normalising submissions: folders, zips, notebooks, and every kind of bad input gets a one-line error."""
import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.course import find_course
from grader.submission import SubmissionError, load_submission

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "submissions" / "micrograd" / "alice_correct"
FILES = ("engine.py", "nn.py", "train.py")


@pytest.fixture(scope="module")
def assignment():
    return find_course(ROOT).assignment("micrograd")


def test_folder_submission_reads_the_three_files(assignment):
    submission = load_submission(ALICE, assignment)
    assert sorted(submission.files) == sorted(FILES)
    assert submission.kind == "folder" and submission.student == "alice_correct"
    assert submission.files["engine.py"] == (ALICE / "engine.py").read_text(encoding="utf-8")
    assert submission.submitted_at is None  # a time comes from beside a submission, never from inside it


def test_zip_of_a_folder_hashes_like_the_folder(assignment, tmp_path):
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in FILES:
            z.write(ALICE / name, f"alice_correct/{name}")
    zipped = load_submission(archive, assignment)
    assert zipped.kind == "zip" and zipped.student == "alice"
    assert zipped.sha256 == load_submission(ALICE, assignment).sha256


def test_zip_with_parent_paths_is_refused(assignment, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../engine.py", "x = 1\n")
    with pytest.raises(SubmissionError, match="points outside the archive"):
        load_submission(archive, assignment)


def test_corrupt_zip_is_a_one_line_error(assignment, tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SubmissionError, match="not a readable zip") as error:
        load_submission(archive, assignment)
    assert "\n" not in str(error.value)


def test_zip_bomb_is_refused(assignment, tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("engine.py", "#" * (25 * 1024 * 1024))
    with pytest.raises(SubmissionError, match="MiB when unpacked"):
        load_submission(archive, assignment)


def test_tagged_notebook_cells_become_files(assignment):
    notebook = ROOT / "submissions" / "micrograd" / "notebook_student" / "micrograd.ipynb"
    submission = load_submission(notebook, assignment)
    assert sorted(submission.files) == sorted(FILES)
    assert not any("%%writefile" in text for text in submission.files.values())
    assert submission.notebook is not None and submission.kind == "notebook"


def test_folder_with_one_notebook_is_a_notebook_submission(assignment):
    submission = load_submission(ROOT / "submissions" / "micrograd" / "notebook_student", assignment)
    assert submission.kind == "notebook" and submission.student == "notebook_student"


def test_untagged_notebook_uses_cells_whose_first_line_names_the_file(assignment, tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# My work")]
    for name in FILES:
        header = "%%writefile " + name if name != "nn.py" else "# nn.py"
        body = (ALICE / name).read_text(encoding="utf-8")
        notebook.cells.append(nbformat.v4.new_code_cell(header + "\n" + body + "\n!pip list"))
    path = tmp_path / "untagged.ipynb"
    nbformat.write(notebook, path)
    submission = load_submission(path, assignment)
    assert sorted(submission.files) == sorted(FILES)
    assert "# !pip list" in submission.files["nn.py"]  # shell escapes are commented out, line numbers kept


def test_corrupt_notebook_is_a_one_line_error(assignment, tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(SubmissionError, match="not a readable Jupyter notebook") as error:
        load_submission(path, assignment)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_file_is_reported_and_the_rest_kept(assignment, tmp_path):
    (tmp_path / "engine.py").write_text((ALICE / "engine.py").read_text(encoding="utf-8"), encoding="utf-8")
    submission = load_submission(tmp_path, assignment)
    assert list(submission.files) == ["engine.py"]
    assert {"id": "missing_file", "params": {"file": "nn.py"}} in submission.problems


def test_empty_folder_is_not_a_submission(assignment, tmp_path):
    with pytest.raises(SubmissionError, match="none of engine.py, nn.py, train.py"):
        load_submission(tmp_path, assignment)


def test_missing_path_and_wrong_kind_are_one_line_errors(assignment, tmp_path):
    with pytest.raises(SubmissionError, match="no such file or folder"):
        load_submission(tmp_path / "nope", assignment)
    other = tmp_path / "engine.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(SubmissionError, match="expected a folder, a .zip or a .ipynb"):
        load_submission(other, assignment)


def test_gbk_source_is_read_and_reported(assignment, tmp_path):
    for name in FILES:
        text = (ALICE / name).read_text(encoding="utf-8")
        if name == "train.py":
            text = "# 训练函数\n" + text
        (tmp_path / name).write_bytes(text.encode("gbk") if name == "train.py" else text.encode("utf-8"))
    submission = load_submission(tmp_path, assignment)
    assert submission.files["train.py"].startswith("# 训练函数")
    assert submission.problems[0]["id"] == "encoding_gbk"


def test_bytes_that_are_no_text_are_reported_with_their_offset(assignment, tmp_path):
    for name in FILES:
        (tmp_path / name).write_bytes((ALICE / name).read_bytes())
    (tmp_path / "nn.py").write_bytes(b"x = 1\n\xff\xfe\xfa\x80 = 2\n")
    submission = load_submission(tmp_path, assignment)
    problem = next(p for p in submission.problems if p["id"] == "encoding_bad")
    assert problem["params"]["offset"] == 6 and problem["params"]["byte"] == "0xff"


def test_bad_stamp_beside_the_submission_names_the_file(assignment, tmp_path):
    folder = tmp_path / "alice"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes((ALICE / name).read_bytes())
    (tmp_path / "alice.submission.json").write_text(json.dumps({"submitted_at": "yesterday"}), encoding="utf-8")
    with pytest.raises(SubmissionError, match="alice.submission.json"):
        load_submission(folder, assignment)
