"""`grader batch`: grade a whole class in parallel, resumably, and write a gradebook, a summary and pages.

Layouts found in DIR (mixable): DIR/<student>/ (files or one notebook), DIR/<student>.zip,
DIR/<student>.ipynb, and Gradescope's export (submission_metadata.yml + one folder per submission).
Submission times come from the collection layer only, never from a student's own files: Gradescope's metadata,
DIR/times.csv (`student,submitted_at`), or DIR/<student>.submission.json beside the submission.

OUT_DIR gets gradebook.csv, summary.json, index.html, and OUT_DIR/students/<student>.json and .html: a student id
can never name (and so replace) a class file.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
import time
from concurrent.futures import Executor, Future, as_completed
from concurrent.futures.process import BrokenProcessPool
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import grader.testing
from grader.course import Assignment
from grader.errors import UnusableInput
from grader.formats import ReportError, load_report, write_report_atomic, write_text_atomic
from grader.gradebook import STUDENTS_DIR, read_staff_files, student_files, write_class_outputs
from grader.parallel import GradeTask, grade_task_with_page, worker_pool
from grader.runner import GradingError
from grader.sandbox import SandboxError, check_isolation
from grader.scoring import error_report
from grader.submission import SubmissionError, aware, load_submission, parse_time, read_stamp, stamp_path

GRADESCOPE_METADATA = "submission_metadata.yml"
TIMES_FILE = "times.csv"


class BatchError(UnusableInput):
    """The batch cannot start or must stop for everyone (clashing student ids, unreadable metadata or times, a
    broken course); the one-line message names the paths."""


@dataclass(frozen=True)
class Entry:
    student: str
    path: Path
    submitted_at: str | None = None  # from Gradescope's metadata or times.csv; else <student>.submission.json


def gradescope_entries(folder: Path, zone: tzinfo | None = None) -> list[Entry]:
    """Gradescope's export: metadata keys are submission folders; each submitter's id is the SID, else the email.
    A group submission (several `:submitters:`) is an entry per member: each gets the grade and a report."""
    import yaml

    metadata_file = folder / GRADESCOPE_METADATA
    try:
        text = metadata_file.read_text(encoding="utf-8")
        metadata = yaml.safe_load(text) or {}
        entries = []
        for key, info in metadata.items():
            info = info or {}
            created = info.get(":created_at")
            path = folder / str(key)
            if path.resolve().parent != folder.resolve():
                raise ValueError(f"submission folder {key!r} is not inside {folder}")
            where = f"{metadata_file}:{_metadata_line(text, key)}"
            submitted_at = iso_time(created, where, zone) if created else None
            for member in info.get(":submitters") or [{}]:  # Ruby symbols: YAML reads `:sid: '7'` as {":sid": "7"}
                student = student_id(str(member.get(":sid") or member.get(":email") or key))
                entries.append(Entry(student, path, submitted_at))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise BatchError(f"{metadata_file}: not Gradescope metadata ({str(exc).splitlines()[0]})") from None
    except SubmissionError as exc:  # a time without a zone
        raise BatchError(str(exc)) from None
    return entries


def _metadata_line(text: str, key: object) -> int:
    """The line of submission `key`'s `:created_at:` in Gradescope's metadata (else of the key itself)."""
    import yaml

    root = yaml.compose(text)
    for key_node, value_node in root.value if isinstance(root, yaml.MappingNode) else ():
        if key_node.value == str(key):
            for field_node, field_value in value_node.value if isinstance(value_node, yaml.MappingNode) else ():
                if field_node.value == ":created_at":
                    return field_value.start_mark.line + 1
            return key_node.start_mark.line + 1
    return 1


def iso_time(value: object, where: str, zone: tzinfo | None = None) -> str:
    """Gradescope writes '2026-12-20 10:00:00.000000000 -08:00' (YAML may already make it a datetime); a time
    without a zone is read in `zone`, else it is an error naming `where`."""
    if isinstance(value, datetime):
        moment = value
    else:
        date, clock, *offset = str(value).split()
        moment = datetime.fromisoformat(f"{date}T{clock.split('.')[0]}{offset[0] if offset else ''}")
    return aware(moment, str(value), where, zone).isoformat()


def discover(folder: Path, zone: tzinfo | None = None) -> list[Entry]:
    """Every submission in `folder`, sorted by student id, with its time (a time without a zone is read in `zone`,
    else it stops the batch); two submissions claiming one id (or ids that differ only in case, one file on some
    systems) is an error."""
    if not folder.is_dir():
        raise BatchError(f"{folder}: not a folder")
    entries = gradescope_entries(folder, zone) if (folder / GRADESCOPE_METADATA).is_file() else []
    taken = {e.path.name for e in entries}
    for path in sorted(folder.iterdir()):
        if path.name in taken or path.name.startswith((".", "_")):
            continue
        if path.is_dir() or path.suffix in (".zip", ".ipynb"):  # a link too: grading it says it is one
            entries.append(Entry(student_id(path.name if path.is_dir() else path.stem), path))
    seen: dict[str, Path] = {}
    for entry in entries:
        if entry.student.casefold() in seen:
            raise BatchError(f"student id {entry.student!r} is claimed by both {seen[entry.student.casefold()]} "
                             f"and {entry.path}")
        seen[entry.student.casefold()] = entry.path
    times = read_times(folder / TIMES_FILE, entries, zone)
    try:  # every time before anyone is graded: a bad one stops the batch, not one student
        for entry in entries:
            stamp = read_stamp(entry.path, zone) if entry.submitted_at is None else None
            if stamp is not None:
                times[entry.student] = stamp.isoformat()
    except SubmissionError as exc:
        raise BatchError(str(exc)) from None
    return sorted((dataclasses.replace(e, submitted_at=times[e.student]) if e.student in times else e
                   for e in entries), key=lambda e: e.student)


def read_times(path: Path, entries: list[Entry], zone: tzinfo | None = None) -> dict[str, str]:
    """times.csv: `student,submitted_at` rows (ISO 8601 with a zone, else read in `zone`) written by course staff;
    {} without one.
    A row that is not that, or names no submission, or a time given twice, is a BatchError naming its line."""
    if not path.is_file():
        return {}
    by_student = {e.student: e for e in entries}
    times: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = csv.reader(file)
            for row in rows:
                where = f"{path}:{rows.line_num}"
                if rows.line_num == 1 and row == ["student", "submitted_at"] or not row:
                    continue
                if len(row) != 2:
                    raise BatchError(f"{where}: expected `student,submitted_at`, found {len(row)} field(s)")
                student, value = (cell.strip() for cell in row)
                entry = by_student.get(student)
                if entry is None:
                    raise BatchError(f"{where}: no submission for student {student!r}")
                if student in times or entry.submitted_at or stamp_path(entry.path).exists():
                    raise BatchError(f"{where}: the time of {student!r} is given twice (times.csv, Gradescope's "
                                     f"metadata or {stamp_path(entry.path).name})")
                try:
                    times[student] = parse_time(value, where, zone).isoformat()
                except SubmissionError as exc:
                    raise BatchError(str(exc)) from None
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise BatchError(f"{path}: not a readable CSV file ({exc})") from None
    return times


def student_id(name: str) -> str:
    """`name` when it can name a report file: printable, no slash, not hidden, at most 100 characters. Else a
    percent-encoded form (a folder name that is not UTF-8, a control character in a Gradescope SID), shortened
    with a digest: one odd name never stops the batch."""
    if 0 < len(name) <= 100 and not name.startswith(".") and "/" not in name and "\\" not in name \
            and name.isprintable():
        return name
    try:
        raw = os.fsencode(name)  # a file name's own bytes
    except UnicodeEncodeError:  # a lone surrogate from elsewhere (Gradescope's YAML)
        raw = name.encode("utf-8", "surrogatepass")
    escaped = quote(raw, safe="").replace(".", "%2E", 1) if name.startswith(".") else quote(raw, safe="")
    if not escaped or len(escaped) > 100:
        escaped = escaped[:60] + "~" + hashlib.sha256(raw).hexdigest()[:16]
    return escaped


def up_to_date(entry: Entry, report_path: Path, assignment: Assignment, lang: str) -> bool:
    """--resume: the report exists, validates, and was made from the same code for the same assignment version."""
    try:
        report = load_report(report_path)
        if report["status"] != "graded" or report["lang"] != lang or report["assignment"] != {
                "name": assignment.name, "version": assignment.version}:
            return False
        return load_submission(entry.path, assignment, entry.student).sha256 == report["submission"]["sha256"]
    except (ReportError, SubmissionError, OSError):
        return False


@dataclass
class BatchResult:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # up to date (--resume)
    reports: dict[str, dict] = field(default_factory=dict)  # every student's report, graded or reused
    duration_s: float = 0.0

    @property
    def errored(self) -> list[str]:
        """The students of this run whose submission could not be graded at all (an error report)."""
        return sorted(s for s, r in self.reports.items() if r["status"] == "error")


Progress = Callable[[int, int, str], None]  # (done, total, student)


def run_batch(folder: Path, assignment: Assignment, out_dir: Path, *, jobs: int, resume: bool = False,
              lang: str = "en", only: list[str] | None = None, executor: Executor | None = None,
              progress: Progress | None = None, allow_weak_sandbox: bool = False,
              zone: tzinfo | None = None, roster: Path | None = None) -> BatchResult:
    """Grade every submission in `folder` into `out_dir`; each report is written (atomically) as it arrives.
    Without filesystem isolation (bubblewrap) nobody is graded (WeakSandboxError) unless allow_weak_sandbox.

    Whatever one submission does, it gets a report (an error report if need be) and the others are graded.
    A broken course or sandbox stops the batch with a BatchError or SandboxError: no one is blamed for it.
    The roster (`roster`) and FOLDER/adjustments.csv are read before anyone is graded (grader/gradebook.py)."""
    started = time.perf_counter()
    everyone = discover(folder, zone)
    unknown = sorted(set(only or ()) - {e.student for e in everyone})
    if unknown:
        raise BatchError(f"{folder}: no submission for {', '.join(unknown)}")
    entries = [e for e in everyone if not only or e.student in only]
    staff = read_staff_files(folder, roster, {e.student for e in everyone})
    check_hidden_tests(assignment)
    check_isolation(allow_weak_sandbox)
    (out_dir / STUDENTS_DIR).mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob(".*.tmp"), *(out_dir / STUDENTS_DIR).glob(".*.tmp")]:  # a killed run's temporaries
        stale.unlink(missing_ok=True)
    result = BatchResult()
    todo = []
    for entry in entries:
        report_path = student_files(out_dir, entry.student)[0]
        if resume and up_to_date(entry, report_path, assignment, lang):
            result.skipped.append(entry.student)
            result.reports[entry.student] = load_report(report_path)
        else:
            todo.append(entry)
    course_root = str(assignment.course.root)
    tasks = {e.student: GradeTask(e.student, course_root, assignment.name, str(e.path), None, e.submitted_at, lang)
             for e in todo}
    pool = executor or worker_pool(max(1, min(jobs, len(tasks))))
    try:
        futures: dict[Future, Entry] = {pool.submit(grade_task_with_page, tasks[e.student]): e for e in todo}
        for done, future in enumerate(as_completed(futures), start=1):
            entry = futures[future]
            report = write_student(out_dir, entry, *task_report(future, entry, assignment, lang), assignment, lang)
            result.graded.append(entry.student)
            result.reports[entry.student] = report
            if progress:
                progress(done, len(futures), entry.student)
    finally:
        if executor is None:
            pool.shutdown(wait=True, cancel_futures=True)
    result.duration_s = time.perf_counter() - started
    class_reports = dict(result.reports)
    for entry in everyone:  # with --only, the class pages still show everyone already graded
        if entry.student not in class_reports:
            try:
                class_reports[entry.student] = load_report(student_files(out_dir, entry.student)[0])
            except ReportError:
                continue
    write_class_outputs(assignment, out_dir, class_reports, result.duration_s, lang, staff)
    return result


class _CollectionErrors:
    """A pytest plugin that keeps the first line of each collection error."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            last = str(report.longrepr).strip().splitlines()[-1:] or ["?"]
            self.errors.append(f"{report.nodeid or 'autotests'}: {last[0]}")


def check_hidden_tests(assignment: Assignment) -> None:
    """Collect the hidden tests once before anyone is graded (~0.2 s): a course whose tests do not import would
    otherwise give every student an error report, as if it were their fault."""
    import pytest

    from grader.runner import PYTEST_ARGS

    from grader.runner import forget_other_hidden_tests

    autotests = assignment.autotests_dir.resolve()
    forget_other_hidden_tests(autotests)
    plugin = _CollectionErrors()
    code = pytest.main([str(autotests), "-c", str(autotests / "pytest.ini"), "--rootdir", str(autotests),
                        "--collect-only", *PYTEST_ARGS], plugins=[plugin, grader.testing])
    if code != pytest.ExitCode.OK:
        name = code.name if isinstance(code, pytest.ExitCode) else f"exit code {code}"
        why = plugin.errors[0] if plugin.errors else name
        raise BatchError(f"the hidden tests in {autotests} do not run ({why}): fix the course; no one was graded")


def task_report(future: Future, entry: Entry, assignment: Assignment, lang: str) -> tuple[dict, str]:
    """The task's report and page; if the grading process itself died, an error report that says so."""
    try:
        return future.result()
    except SandboxError:
        raise  # the machine cannot sandbox anyone: stop, rather than give every student 0 points
    except GradingError as exc:  # the course, not the student: stop, and blame no one
        raise BatchError(f"the batch stopped at {entry.student}: {exc}") from None
    except (BrokenProcessPool, OSError, RuntimeError) as exc:
        return failure(assignment, entry, f"the grading process failed: {type(exc).__name__}: {exc}", lang)


def failure(assignment: Assignment, entry: Entry, reason: str, lang: str) -> tuple[dict, str]:
    """An error report and its page for a submission the grader could not grade; the reason is logged too."""
    from grader.pages import feedback_page

    print(f"grader: {entry.student}: {reason}", file=sys.stderr)
    report = error_report(assignment, entry.student, str(entry.path), reason, lang=lang,
                          started_at=datetime.now(timezone.utc), duration_s=0.0, reason_id="grading_failed").to_dict()
    return report, feedback_page(report, None, lang)


def write_student(out_dir: Path, entry: Entry, report: dict, page: str, assignment: Assignment, lang: str) -> dict:
    """Write the student's report and page; one that cannot be written (invalid, or a write error) is replaced by
    an error report that says why. Returns the report the gradebook shows."""
    report_path, page_path = student_files(out_dir, entry.student)
    try:
        write_report_atomic(report, report_path)
        write_text_atomic(page_path, page)
        return report
    except (ReportError, OSError, UnicodeError) as exc:
        report, page = failure(assignment, entry, f"its report could not be written: {exc}", lang)
    try:
        write_report_atomic(report, report_path)
        write_text_atomic(page_path, page)
    except OSError as exc:  # the gradebook still shows the error
        print(f"grader: {entry.student}: cannot write {report_path}: {exc}", file=sys.stderr)
    return report
