"""Submission times: a time without a zone is the collection's problem, never a student's 0 (no grading here)."""
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from grader.batch import BatchError, discover

ROOT = Path(__file__).resolve().parents[1]


def class_folder(tmp_path: Path, *students: str) -> Path:
    for student in students:
        (tmp_path / student).mkdir(parents=True)
        (tmp_path / student / "engine.py").write_text("x = 1\n", encoding="utf-8")
    return tmp_path


def test_a_stamp_without_a_zone_stops_the_batch_naming_the_file(tmp_path):
    folder = class_folder(tmp_path, "alice")
    (folder / "alice.submission.json").write_text('{"submitted_at": "2026-12-19T21:14:07"}', encoding="utf-8")
    with pytest.raises(BatchError, match=r"alice\.submission\.json: submitted_at: '2026-12-19T21:14:07' has no "
                                         r"time zone.*--timezone"):
        discover(folder)
    entry, = discover(folder, ZoneInfo("Asia/Shanghai"))
    assert entry.submitted_at == "2026-12-19T21:14:07+08:00"


def test_times_csv_without_a_zone_names_its_line(tmp_path):
    folder = class_folder(tmp_path, "alice", "bob")
    (folder / "times.csv").write_text("student,submitted_at\nalice,2026-12-19T21:14:07Z\nbob,2026-12-19 10:00\n",
                                      encoding="utf-8")
    with pytest.raises(BatchError, match=r"times\.csv:3: '2026-12-19 10:00' has no time zone"):
        discover(folder)
    times = {e.student: e.submitted_at for e in discover(folder, ZoneInfo("UTC"))}
    assert times == {"alice": "2026-12-19T21:14:07+00:00", "bob": "2026-12-19T10:00:00+00:00"}


GROUP = """submission_1:
  :submitters:
  - :name: Erin
    :sid: 's1'
  - :name: Finn
    :email: finn@example.edu
  :created_at: 2026-12-22 18:30:00.000000000{zone}
"""


def test_gradescope_metadata_without_a_zone_names_its_line(tmp_path):
    folder = class_folder(tmp_path, "submission_1")
    (folder / "submission_metadata.yml").write_text(GROUP.format(zone=""), encoding="utf-8")
    with pytest.raises(BatchError, match=r"submission_metadata\.yml:7: .* has no time zone"):
        discover(folder)


def test_every_member_of_a_gradescope_group_gets_an_entry(tmp_path):
    folder = class_folder(tmp_path, "submission_1")
    (folder / "submission_metadata.yml").write_text(GROUP.format(zone=" -08:00"), encoding="utf-8")
    entries = discover(folder)
    assert [(e.student, e.path.name, e.submitted_at) for e in entries] == [
        ("finn@example.edu", "submission_1", "2026-12-22T18:30:00-08:00"),
        ("s1", "submission_1", "2026-12-22T18:30:00-08:00")]


def test_a_group_member_who_also_submitted_alone_is_a_clash(tmp_path):
    folder = class_folder(tmp_path, "submission_1", "s1")
    (folder / "submission_metadata.yml").write_text(GROUP.format(zone="Z"), encoding="utf-8")
    with pytest.raises(BatchError, match="claimed by both"):
        discover(folder)


def test_cli_batch_stops_before_grading_on_a_naive_time_or_a_bad_zone(tmp_path):
    folder = class_folder(tmp_path / "class", "alice")
    (folder / "alice.submission.json").write_text('{"submitted_at": "2026-12-19T21:14:07"}', encoding="utf-8")
    for extra, words in (([], "has no time zone"), (["--timezone", "Mars/Base"], "not a time zone name")):
        run = subprocess.run([sys.executable, "-m", "grader", "batch", str(folder), "--out-dir", str(tmp_path / "out"),
                              "--assignment", "micrograd", *extra], capture_output=True, text=True, timeout=60,
                             cwd=ROOT)
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and words in run.stderr, run.stderr
        assert not (tmp_path / "out" / "students").exists() or not list((tmp_path / "out" / "students").iterdir())
