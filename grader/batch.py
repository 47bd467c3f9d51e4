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
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import quote

from grader.course import Assignment
from grader.errors import UnusableInput
from grader.formats import ReportError, load_report, write_report_atomic, write_text_atomic
from grader.gradebook import STUDENTS_DIR, read_staff_files, student_files, write_class_outputs
from grader.parallel import GradeTask, grade_task_with_page, worker_pool
from grader.runner import GradingError, pytest_on_hidden_tests, scoring_problems
from grader.sandbox import SandboxError, check_isolation
from grader.scoring import error_report, rescore, stored_outcomes
from grader.submission import Submission, SubmissionError, aware, load_submission, parse_time, read_stamp, stamp_path

if TYPE_CHECKING:
    from grader.similarity import SimilarityResult

GRADESCOPE_METADATA = "submission_metadata.yml"
TIMES_FILE = "times.csv"
# How often the batch looks at its submissions in flight (and at a stop request: a signal handler only sets a
# flag, since raising out of concurrent.futures.wait could leave a future's lock held), and after how long the
# progress names the one in flight longest.
TICK_S = 0.25
SLOW_S = 5.0


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


@dataclass(frozen=True)
class ResumePlan:
    """--resume: what to do with a student's stored report."""

    action: str  # "reuse" | "rescore" | "grade"
    report: dict | None = None
    submission: Submission | None = None


def resume_plan(entry: Entry, report_path: Path, assignment: Assignment, lang: str) -> ResumePlan:
    """Reuse a report of this submission made with today's hidden tests and points; rescore one when only the
    points, the late policy or the submission time changed (its stored outcomes are scored again, no student
    code runs); grade anything else."""
    try:
        report = load_report(report_path)
        made_with = report["assignment"]
        if report["status"] != "graded" or report["lang"] != lang or made_with.get("name") != assignment.name \
                or made_with.get("tests") != assignment.tests_fingerprint:
            return ResumePlan("grade")
        submitted_at = datetime.fromisoformat(entry.submitted_at) if entry.submitted_at else None
        submission = load_submission(entry.path, assignment, entry.student, submitted_at)
        if submission.sha256 != report["submission"]["sha256"]:
            return ResumePlan("grade")
        when = submission.submitted_at.isoformat() if submission.submitted_at else None
        if made_with.get("scoring") == assignment.scoring_fingerprint and report["late"]["submitted_at"] == when:
            return ResumePlan("reuse", report)
        stored_outcomes(report)  # a report that cannot be rescored (KeyError) is graded again
        return ResumePlan("rescore", report, submission)
    except (ReportError, SubmissionError, OSError, KeyError, ValueError):
        return ResumePlan("grade")


@dataclass
class BatchResult:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # up to date (--resume)
    rescored: list[str] = field(default_factory=list)  # scored again from stored outcomes (--resume)
    reports: dict[str, dict] = field(default_factory=dict)  # every student's report, graded or reused
    duration_s: float = 0.0
    not_graded: list[str] = field(default_factory=list)  # left without a report by a stop (Stop.request)
    similarity: SimilarityResult | None = None  # with run_batch(similarity=True)

    @property
    def errored(self) -> list[str]:
        """The students of this run whose submission could not be graded at all (an error report)."""
        return sorted(s for s, r in self.reports.items() if r["status"] == "error")


@dataclass(frozen=True)
class Waiting:
    """For the progress when no submission has finished for a while: the one in flight longest."""

    student: str
    seconds: float


Progress = Callable[[int, int, "str | Waiting"], None]  # (done, total, the student just graded or Waiting)


class Stop:
    """A request to stop a running batch, made from anywhere (a signal handler: the CLI's Ctrl-C): the batch
    keeps the reports it has, stops the submissions in flight (those of its own worker pool: it terminates
    the pool, whose workers kill their sandboxes), gives the rest no report and writes the class files."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True


def run_batch(folder: Path, assignment: Assignment, out_dir: Path, *, jobs: int, resume: bool = False,
              lang: str = "en", only: list[str] | None = None, executor: Executor | None = None,
              progress: Progress | None = None, allow_weak_sandbox: bool = False,
              stop: Stop | None = None, zone: tzinfo | None = None, roster: Path | None = None,
              similarity: bool = False) -> BatchResult:
    """Grade every submission in `folder` into `out_dir`; each report is written (atomically) as it arrives.
    Without filesystem isolation (bubblewrap) nobody is graded (WeakSandboxError) unless allow_weak_sandbox.

    Whatever one submission does, it gets a report (an error report if need be) and the others are graded.
    A broken course or sandbox stops the batch with a BatchError or SandboxError: no one is blamed for it.
    `stop` ends the batch early (within about TICK_S, plus the workers' TERMINATE_GRACE_S at most): the class
    files are written for the reports there are, and BatchResult.not_graded lists the students without one.
    The roster (`roster`) and FOLDER/adjustments.csv are read before anyone is graded (grader/gradebook.py).
    With `similarity`, `grader similarity` runs on the folder at the end (unless stopped) and the dashboard links
    its page (out_dir/similarity.html, out_dir/similarity.json)."""
    started = time.perf_counter()
    everyone = discover(folder, zone)
    unknown = sorted(set(only or ()) - {e.student for e in everyone})
    if unknown:
        raise BatchError(f"{folder}: no submission for {', '.join(unknown)}")
    entries = [e for e in everyone if not only or e.student in only]
    staff = read_staff_files(folder, roster, {e.student for e in everyone})
    check_hidden_tests(assignment)
    if not _on_cluster(executor):  # a cluster's workers check their own sandboxes
        check_isolation(allow_weak_sandbox)
    (out_dir / STUDENTS_DIR).mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob(".*.tmp"), *(out_dir / STUDENTS_DIR).glob(".*.tmp")]:  # a killed run's temporaries
        stale.unlink(missing_ok=True)
    result = BatchResult()
    todo = []
    for entry in entries:
        plan = resume_plan(entry, student_files(out_dir, entry.student)[0], assignment, lang) if resume \
            else ResumePlan("grade")
        if plan.action == "reuse":
            assert plan.report is not None  # a reuse plan carries the report
            result.skipped.append(entry.student)
            result.reports[entry.student] = plan.report
        elif plan.action == "rescore":
            result.rescored.append(entry.student)
            result.reports[entry.student] = rescore_student(out_dir, entry, plan, assignment, lang)
        else:
            todo.append(entry)
    course_root = str(assignment.course.root)
    tasks = {e.student: GradeTask(e.student, course_root, assignment.name, str(e.path), None, e.submitted_at, lang)
             for e in todo}
    stop = stop or Stop()

    def grade_with(pool: Executor) -> None:
        futures = {pool.submit(grade_task_with_page, tasks[e.student]): e for e in todo}
        for future, entry in _results(futures, stop, progress):
            report = write_student(out_dir, entry, *task_report(future, entry, assignment, lang), assignment, lang)
            result.graded.append(entry.student)
            result.reports[entry.student] = report

    if todo and not stop.requested:
        if executor is not None:
            grade_with(executor)  # its owner shuts it down
        else:
            with worker_pool(max(1, min(jobs, len(tasks)))) as pool:  # an error terminates it (WorkerPool)
                grade_with(pool)
                if stop.requested:
                    pool.terminate()  # nothing in flight is waited for: the workers kill their sandboxes and exit
    result.not_graded = sorted(e.student for e in todo if e.student not in result.reports)
    result.duration_s = time.perf_counter() - started
    class_reports = dict(result.reports)
    for entry in everyone:  # with --only, the class pages still show everyone already graded
        if entry.student not in class_reports:
            try:
                class_reports[entry.student] = load_report(student_files(out_dir, entry.student)[0])
            except ReportError:
                continue
    similarity_link = None
    if similarity and not stop.requested:
        from grader.similarity import compare_class, write_outputs

        result.similarity = compare_class(folder, assignment)
        write_outputs(result.similarity, out_dir / "similarity.html", out_dir / "similarity.json")
        similarity_link = "similarity.html"
    write_class_outputs(assignment, out_dir, class_reports, result.duration_s, lang, staff,
                        similarity_link=similarity_link)
    return result


def _on_cluster(executor: Executor | None) -> bool:
    if executor is None:
        return False
    from grader.cluster import ClusterExecutor  # not in the student grader, which has no batch

    return isinstance(executor, ClusterExecutor)


def _results(futures: dict[Future, Entry], stop: Stop, progress: Progress | None) -> Iterator[tuple[Future, Entry]]:
    """The futures as they finish, until all have or a stop is requested (then those not started are cancelled
    and the rest left). The progress hears of each one finished (once the caller has written its report) and,
    every TICK_S while none finishes, of the one in flight longest once that is SLOW_S or more."""
    order = {future: number for number, future in enumerate(futures)}
    pending = list(futures)
    since: dict[Future, float] = {}  # when each future in flight started, as far as can be seen from here
    finished = 0
    while pending and not stop.requested:
        done = wait(pending, TICK_S, FIRST_COMPLETED).done
        now = time.monotonic()
        first_done = min((order[f] for f in done), default=len(order))
        pending = [f for f in pending if f not in done]
        for future in pending:
            # a pool starts a task as an earlier one ends: the tasks it queues ahead count as running already
            if future.running() and (future not in since or order[future] > first_done):
                since[future] = now
        for future in sorted(done, key=order.__getitem__):
            yield future, futures[future]
            finished += 1
            if progress:
                progress(finished, len(futures), futures[future].student)
        if not done and progress and not stop.requested and (slowest := _slowest(pending, since, now)):
            progress(finished, len(futures), Waiting(futures[slowest].student, now - since[slowest]))
    for future in pending:
        future.cancel()


def _slowest(pending: list[Future], since: dict[Future, float], now: float) -> Future | None:
    """The future in flight longest, if that is SLOW_S or more."""
    running = [f for f in pending if f in since]
    slowest = min(running, key=since.__getitem__, default=None)
    return slowest if slowest is not None and now - since[slowest] >= SLOW_S else None


class _CollectionErrors:
    """A pytest plugin that keeps the first line of each collection error, and what makes the tests disagree
    with assignment.toml's points."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment
        self.errors: list[str] = []

    def pytest_collection_modifyitems(self, items: list) -> None:
        self.errors += scoring_problems(self.assignment, items)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            last = str(report.longrepr).strip().splitlines()[-1:] or ["?"]
            self.errors.append(f"{report.nodeid or 'autotests'}: {last[0]}")


def check_hidden_tests(assignment: Assignment) -> None:
    """Collect the hidden tests once before anyone is graded (~0.2 s): a course whose tests do not import would
    otherwise give every student an error report, as if it were their fault."""
    import pytest

    plugin = _CollectionErrors(assignment)
    code = pytest_on_hidden_tests(assignment, plugin, "--collect-only")
    if code != pytest.ExitCode.OK or plugin.errors:
        name = code.name if isinstance(code, pytest.ExitCode) else f"exit code {code}"
        why = plugin.errors[0] if plugin.errors else name
        raise BatchError(f"the hidden tests in {assignment.autotests_dir.resolve()} do not run ({why}): fix the "
                         "course; no one was graded")


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


def rescore_student(out_dir: Path, entry: Entry, plan: ResumePlan, assignment: Assignment, lang: str) -> dict:
    """--resume after a change of points, late policy or time: the stored report scored again, and its page."""
    from grader.pages import feedback_page

    assert plan.report is not None and plan.submission is not None  # a rescore plan carries both
    report = rescore(assignment, plan.report, plan.submission.submitted_at)
    return write_student(out_dir, entry, report, feedback_page(report, plan.submission, lang), assignment, lang)


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
