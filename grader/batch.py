"""`grader batch`: grade a whole class in parallel, resumably, and write a gradebook, a summary and pages.

Layouts found in DIR (mixable): DIR/<student>/ (files or one notebook), DIR/<student>.zip,
DIR/<student>.ipynb, and Gradescope's export (submission_metadata.yml + one folder per submission).
"""
from __future__ import annotations

import csv
import io
import json
import statistics
import time
from concurrent.futures import Executor, Future, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from grader.course import Assignment
from grader.formats import ReportError, load_report, write_report_atomic, write_text_atomic
from grader.parallel import GradeTask, grade_task_with_page, worker_pool
from grader.sandbox import SandboxError
from grader.scoring import error_report
from grader.submission import SubmissionError, load_submission

GRADESCOPE_METADATA = "submission_metadata.yml"
SKIPPED_NAMES = {"README.md", "submission.json", GRADESCOPE_METADATA}


class BatchError(Exception):
    """The batch cannot start (clashing student ids, unreadable metadata); the message names the paths."""


@dataclass(frozen=True)
class Entry:
    student: str
    path: Path
    submitted_at: str | None = None  # from Gradescope's metadata; else submission.json is read with the files


def gradescope_entries(folder: Path) -> list[Entry]:
    """Gradescope's export: metadata keys are submission folders; the student id is the SID, else the email."""
    import yaml

    metadata_file = folder / GRADESCOPE_METADATA
    try:
        metadata = yaml.safe_load(metadata_file.read_text(encoding="utf-8")) or {}
        entries = []
        for key, info in metadata.items():
            info = info or {}
            first = (info.get(":submitters") or [{}])[0]  # Ruby symbols: YAML reads `:sid: '7'` as {":sid": "7"}
            student = str(first.get(":sid") or first.get(":email") or key)
            created = info.get(":created_at")
            path = folder / str(key)
            if path.resolve().parent != folder.resolve():
                raise ValueError(f"submission folder {key!r} is not inside {folder}")
            entries.append(Entry(student, path, iso_time(created) if created else None))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise BatchError(f"{metadata_file}: not Gradescope metadata ({str(exc).splitlines()[0]})") from None
    return entries


def iso_time(value) -> str:
    """Gradescope writes '2026-12-20 10:00:00.000000000 -08:00' (YAML may already make it a datetime)."""
    if isinstance(value, datetime):
        moment = value
    else:
        date, clock, *zone = str(value).split()
        clock = clock.split(".")[0]
        moment = datetime.fromisoformat(f"{date}T{clock}{zone[0] if zone else '+00:00'}")
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def discover(folder: Path) -> list[Entry]:
    """Every submission in `folder`, sorted by student id; two submissions claiming one id is an error."""
    if not folder.is_dir():
        raise BatchError(f"{folder}: not a folder")
    entries = gradescope_entries(folder) if (folder / GRADESCOPE_METADATA).is_file() else []
    taken = {e.path.name for e in entries}
    for path in sorted(folder.iterdir()):
        if path.name in taken or path.name.startswith((".", "_")) or path.name in SKIPPED_NAMES:
            continue
        if path.is_dir() or path.suffix in (".zip", ".ipynb"):
            entries.append(Entry(path.stem if path.is_file() else path.name, path))
    seen: dict[str, Path] = {}
    for entry in entries:
        if not usable_id(entry.student):
            raise BatchError(f"{entry.path}: student id {entry.student!r} cannot name a report file")
        if entry.student in seen:
            raise BatchError(f"student id {entry.student!r} is claimed by both {seen[entry.student]} and {entry.path}")
        seen[entry.student] = entry.path
    return sorted(entries, key=lambda e: e.student)


def usable_id(student: str) -> bool:
    """An id that is a plain file name: it names OUT/<id>.json and OUT/<id>.html."""
    return (0 < len(student) <= 100 and not student.startswith(".") and "/" not in student and "\\" not in student
            and student.isprintable())


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


Progress = Callable[[int, int, str], None]  # (done, total, student)


def run_batch(folder: Path, assignment: Assignment, out_dir: Path, *, jobs: int, resume: bool = False,
              lang: str = "en", only: list[str] | None = None, executor: Executor | None = None,
              progress: Progress | None = None) -> BatchResult:
    """Grade every submission in `folder` into `out_dir`; each report is written (atomically) as it arrives."""
    started = time.perf_counter()
    everyone = discover(folder)
    unknown = sorted(set(only or ()) - {e.student for e in everyone})
    if unknown:
        raise BatchError(f"{folder}: no submission for {', '.join(unknown)}")
    entries = [e for e in everyone if not only or e.student in only]
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp"):  # a killed run's half-written file (write_text_atomic's temporaries)
        stale.unlink(missing_ok=True)
    result = BatchResult()
    todo = []
    for entry in entries:
        if resume and up_to_date(entry, out_dir / f"{entry.student}.json", assignment, lang):
            result.skipped.append(entry.student)
            result.reports[entry.student] = load_report(out_dir / f"{entry.student}.json")
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
            report, page = task_report(future, entry, assignment, lang)
            write_report_atomic(report, out_dir / f"{entry.student}.json")
            write_text_atomic(out_dir / f"{entry.student}.html", page)
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
                class_reports[entry.student] = load_report(out_dir / f"{entry.student}.json")
            except ReportError:
                continue
    write_class_outputs(assignment, out_dir, class_reports, result.duration_s, lang)
    return result


def task_report(future: Future, entry: Entry, assignment: Assignment, lang: str) -> tuple[dict, str]:
    """The task's report and page; if the grading process itself died, an error report that says so."""
    from grader.pages import feedback_page

    try:
        return future.result()
    except SandboxError:
        raise  # the machine cannot sandbox anyone: stop, rather than give every student 0 points
    except (BrokenProcessPool, OSError, RuntimeError) as exc:
        reason = f"the grading process failed: {type(exc).__name__}: {exc}"
        report = error_report(assignment, entry.student, str(entry.path), reason, lang=lang,
                              started_at=datetime.now(timezone.utc), duration_s=0.0,
                              reason_id="grading_failed").to_dict()
        return report, feedback_page(report, None, lang)


# ---------------------------------------------------------------------- gradebook, summary, pages

def gradebook_csv(assignment: Assignment, reports: list[dict]) -> str:
    groups = [g.name for g in assignment.groups]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *groups, "total", "max", "status", "submitted_at", "late_days", "penalty_percent",
                     "final"])
    for report in reports:
        by_group = {g["name"]: g["score"] for g in report["groups"]}
        late = report["late"]
        writer.writerow([report["student"], *(round(by_group.get(g, 0.0), 2) for g in groups),
                         round(report["score"], 2), round(report["max_score"], 2), report["status"],
                         late["submitted_at"] or "unknown", late["days_late"], late["penalty_percent"],
                         round(late["final_score"], 2)])
    return out.getvalue()


def class_summary(assignment: Assignment, reports: list[dict], duration_s: float) -> dict:
    finals = [r["late"]["final_score"] for r in reports]
    tests: dict[str, list[bool]] = {}
    for report in reports:
        for test in report["tests"]:
            tests.setdefault(f"{test['group']}::{test['name']}", []).append(test["status"] == "passed")
    return {
        "assignment": {"name": assignment.name, "version": assignment.version},
        "students": len(reports),
        "errored": sorted(r["student"] for r in reports if r["status"] == "error"
                          or any(t["status"] in ("error", "timeout") for t in r["tests"])),
        "mean_final": round(statistics.mean(finals), 4) if finals else None,
        "median_final": round(statistics.median(finals), 4) if finals else None,
        "max_score": assignment.max_score,
        "pass_rates": {name: round(sum(ok) / len(ok), 4) for name, ok in sorted(tests.items())},
        "duration_s": round(duration_s, 3),
    }


def write_class_outputs(assignment: Assignment, out_dir: Path, by_student: dict[str, dict], duration_s: float,
                        lang: str) -> None:
    from grader.pages import dashboard

    reports = [by_student[s] for s in sorted(by_student)]
    write_text_atomic(out_dir / "gradebook.csv", gradebook_csv(assignment, reports))
    summary = class_summary(assignment, reports, duration_s)
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    links = {r["student"]: {"report": f"{r['student']}.json", "feedback": f"{r['student']}.html"} for r in reports}
    write_text_atomic(out_dir / "index.html", dashboard(reports, links, lang, title=assignment.title))
