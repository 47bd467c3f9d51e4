"""Batch grading: every layout, every kind of bad input, a gradebook that matches the reports, resuming."""
import csv
import json
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.batch import BatchError, discover, run_batch
from grader.course import find_course
from grader.formats import load_report

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"


@pytest.fixture(scope="module")
def assignment():
    return find_course(ROOT).assignment("micrograd")


def copy_sample(sample: str, dest: Path, mark: str = "") -> Path:
    shutil.copytree(SAMPLES / sample, dest)
    for source in dest.glob("*.py"):  # a distinct hash per copy, as real students have
        source.write_text(source.read_text(encoding="utf-8") + f"# {mark or dest.name}\n", encoding="utf-8")
    return dest


def zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w") as z:
        for path in folder.iterdir():
            z.write(path, f"{folder.name}/{path.name}")


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory) -> Path:
    """Every layout at once: folders, a zip, a notebook, a Gradescope export; plus malformed input."""
    folder = tmp_path_factory.mktemp("class")
    copy_sample("alice_correct", folder / "alice")
    copy_sample("bob_tanh_bug", folder / "bob")
    zip_folder(copy_sample("carol_overwrite_grad", folder / "carol_src"), folder / "carol.zip")
    shutil.rmtree(folder / "carol_src")
    shutil.copy(SAMPLES / "notebook_student" / "micrograd.ipynb", folder / "nora.ipynb")
    mallory = copy_sample("alice_correct", folder / "mallory")  # hostile: train.py kills its interpreter on import
    train = mallory / "train.py"
    train.write_text('import os\nprint(\'{"score": 100}\')\nos._exit(3)\n' + train.read_text(), encoding="utf-8")
    (folder / "empty").mkdir()
    (folder / "corrupt.zip").write_bytes(b"PK\x03\x04 broken")
    with zipfile.ZipFile(folder / "slip.zip", "w") as z:
        z.writestr("../engine.py", "x = 1\n")
    gradescope = folder / "submission_1001"
    copy_sample("erin_bias_missing", gradescope)
    (folder / "submission_metadata.yml").write_text(
        "submission_1001:\n"
        "  :submitters:\n"
        "  - :name: Erin\n"
        "    :sid: 's1001'\n"
        "    :email: erin@example.edu\n"
        "  :created_at: 2026-12-22 18:30:00.000000000 +08:00\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def batch_result(mixed_class, assignment, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return run_batch(mixed_class, assignment, out, jobs=2), out


def test_every_layout_is_found_with_its_student_id(mixed_class):
    ids = [e.student for e in discover(mixed_class)]
    assert ids == sorted(["alice", "bob", "carol", "nora", "mallory", "empty", "corrupt", "slip", "s1001"])


def test_every_submission_gets_a_valid_report(batch_result):
    result, out = batch_result
    for student in result.reports:
        report = load_report(out / "students" / f"{student}.json")
        assert report["student"] == student
        assert (out / "students" / f"{student}.html").is_file()
    statuses = {s: r["status"] for s, r in result.reports.items()}
    assert statuses == {"alice": "graded", "bob": "graded", "carol": "graded", "nora": "graded", "s1001": "graded",
                        "mallory": "graded", "empty": "error", "corrupt": "error", "slip": "error"}
    mallory = result.reports["mallory"]
    assert {g["name"]: g["score"] for g in mallory["groups"]}["training"] == 0
    assert mallory["score"] == 80 and [e["id"] for e in mallory["errors"]] == ["import_timeout"]
    assert "points outside the archive" in result.reports["slip"]["errors"][0]["message"]
    assert result.reports["alice"]["score"] == 100
    assert result.reports["bob"]["score"] < 100


def test_gradebook_totals_equal_the_reports(batch_result):
    result, out = batch_result
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(result.reports)
    for student, report in result.reports.items():
        row = rows[student]
        assert float(row["total"]) == pytest.approx(report["score"], abs=0.01)
        assert float(row["final"]) == pytest.approx(report["late"]["final_score"], abs=0.01)
        for group in report["groups"]:
            assert float(row[group["name"]]) == pytest.approx(group["score"], abs=0.01)


def test_late_penalty_from_gradescope_metadata_and_unknown_times(batch_result):
    result, out = batch_result
    erin = result.reports["s1001"]["late"]
    assert erin["days_late"] == 2 and erin["penalty_percent"] == 20
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert rows["bob"]["submitted_at"] == "" and rows["bob"]["penalty_percent"] == "0.0"  # unknown: empty
    assert rows["s1001"]["submitted_at"] == "2026-12-22T10:30:00Z"  # in UTC


def test_summary_and_dashboard_are_written(batch_result):
    result, out = batch_result
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["students"] == len(result.reports)
    assert summary["problems"] == ["corrupt", "empty", "mallory", "slip"] and summary["errors"] == []
    assert summary["statuses"] == {"graded": 5, "problem": 4, "error": 0, "missing": 0}
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        assert {row["student"]: row["status"] for row in csv.DictReader(f)}["empty"] == "problem"
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="histogram"' in page and 'href="students/alice.html"' in page


def test_two_submissions_claiming_one_id_is_an_error(tmp_path):
    copy_sample("alice_correct", tmp_path / "alice")
    zip_folder(SAMPLES / "bob_tanh_bug", tmp_path / "alice.zip")
    with pytest.raises(BatchError, match="claimed by both"):
        discover(tmp_path)


def test_resume_after_a_kill_grades_only_what_is_missing(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    samples = ["alice_correct", "bob_tanh_bug", "dave_no_topo", "frank_no_zero_grad"]
    for i in range(12):
        copy_sample(samples[i % len(samples)], folder / f"student{i:02d}")
    command = [sys.executable, "-m", "grader", "batch", str(folder), "--jobs", "2"]

    whole = subprocess.run(command + ["--out-dir", str(tmp_path / "whole")], capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    run = subprocess.Popen(command + ["--out-dir", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list(out.glob("students/student*.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    import os

    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    left = sorted(out.glob("students/student*.json"))
    assert 4 <= len(left) < 12
    for path in left:
        load_report(path)  # only complete, valid reports are left behind (a temporary file at most)

    resumed = subprocess.run(command + ["--out-dir", str(out), "--resume"], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert f"graded {12 - len(left)}, up to date {len(left)}" in resumed.stdout
    assert not [p for p in out.rglob(".*")]  # the killed run's temporaries are gone
    assert (out / "gradebook.csv").read_text() == (tmp_path / "whole" / "gradebook.csv").read_text()


def test_resume_regrades_a_changed_submission(tmp_path, assignment):
    folder = tmp_path / "class"
    copy_sample("alice_correct", folder / "alice")
    out = tmp_path / "out"
    run_batch(folder, assignment, out, jobs=1)
    assert run_batch(folder, assignment, out, jobs=1, resume=True).skipped == ["alice"]
    engine = folder / "alice" / "engine.py"
    engine.write_text(engine.read_text().replace("1 - t**2", "1 - t"), encoding="utf-8")
    again = run_batch(folder, assignment, out, jobs=1, resume=True)
    assert again.graded == ["alice"] and again.reports["alice"]["score"] < 100


def test_cli_batch_on_a_folder_that_does_not_exist_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "grader", "batch", str(tmp_path / "nope")], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
