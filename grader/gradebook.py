"""The class's grades as course staff hand them in: statuses, the roster, adjustments, the gradebook in the layouts
LMSs import, who failed which test, and the class outputs of `grader batch` (gradebook.csv, summary.json, the
dashboard and its failing-students pages). Everything here reads reports; nothing grades.

A row's status (the gradebook's `status` column, summary.json and the dashboard's cards agree):

- `graded`: graded; nothing wrong with the submission itself.
- `problem`: the student's own problem: not a submission at all (`not_a_submission`: an empty folder, a broken
  zip), a missing file, a module that does not import or never finishes importing, names the tests need that are
  missing. The score stands: whatever could be graded was.
- `error`: the grader could not grade it (`grading_failed`, `internal_error`): no score to hand in (the LMS
  layouts leave its cell empty); fix the cause and grade it again.
- `missing`: on the roster, no submission: 0.

Staff files: `roster.csv` (`grader batch --roster`, `grader gradebook --roster`): `id,name,email,sis_id,section`;
`adjustments.csv` beside the submissions: `student,extra_days,points,final,note`. Adjustments are applied when the
class outputs are written, to reports reused by `--resume` too: the report's `late` is computed again with the
due date moved by extra_days, its `adjustment` set (or removed, when its row is gone), its page made again.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from grader.course import Assignment, LatePolicy
from grader.errors import UnusableInput
from grader.formats import ReportError, load_report, write_report_atomic, write_text_atomic
from grader.report import final_score
from grader.scoring import late_penalty

STATUSES = ("graded", "problem", "error", "missing")
GRADER_ERRORS = frozenset({"grading_failed", "internal_error"})  # errors[].id: the grader's fault
STUDENT_PROBLEMS = frozenset({"not_a_submission", "missing_file", "symlink", "encoding_bad", "import_failed",
                              "import_timeout", "missing_names"})  # errors[].id: the student's own problem
ROSTER_COLUMNS = ("id", "name", "email", "sis_id", "section")
ADJUSTMENT_COLUMNS = ("student", "extra_days", "points", "final", "note")
ADJUSTMENTS_FILE = "adjustments.csv"  # beside the submissions
STUDENTS_DIR = "students"  # OUT_DIR/students/<id>.json and .html
FAILING_DIR = "failing"  # OUT_DIR/failing/<test-slug>.html
BINS = 10  # histogram bins over 0..max_score
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell that starts so (CSV injection)
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas's own export writes it; its importer skips this row


class GradebookError(UnusableInput):
    """A staff file (roster.csv, adjustments.csv), a reports folder or a query that cannot be used; the one-line
    message names the file and line."""


@dataclass(frozen=True)
class Person:
    """A roster row."""

    id: str
    name: str = ""
    email: str = ""
    sis_id: str = ""
    section: str = ""


@dataclass(frozen=True)
class Adjustment:
    """An adjustments.csv row: an extension, then points added (may be negative) or a fixed final score."""

    extra_days: float = 0.0
    points: float | None = None
    final: float | None = None
    note: str = ""

    def applied(self, score: float) -> float:
        return self.final if self.final is not None else max(0.0, score + (self.points or 0.0))


@dataclass(frozen=True)
class StaffFiles:
    roster: dict[str, Person] | None = None  # None: no roster given
    adjustments: dict[str, Adjustment] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class ClassInfo:
    """What every layout needs of the assignment."""

    name: str
    version: str
    max_score: float
    groups: tuple[str, ...]

    @classmethod
    def of(cls, assignment: Assignment) -> ClassInfo:
        return cls(assignment.name, assignment.version, assignment.max_score, tuple(g.name for g in assignment.groups))


@dataclass(frozen=True)
class Row:
    """One student of the gradebook: a report, or (on the roster, no submission) none."""

    student: str
    person: Person | None
    report: dict | None

    @property
    def status(self) -> str:
        return "missing" if self.report is None else report_status(self.report)

    @property
    def final(self) -> float | None:
        """The score to hand in; None when the grader could not grade the submission (nothing to hand in), unless
        course staff fixed a final score for it."""
        if self.report is None:
            return 0.0
        fixed = (self.report.get("adjustment") or {}).get("final") is not None
        return None if self.status == "error" and not fixed else round(final_score(self.report), 2)


def report_status(report: dict) -> str:
    """graded, problem or error (see the module's docstring)."""
    ids = {e["id"] for e in report["errors"]}
    if ids & GRADER_ERRORS:
        return "error"
    return "problem" if report["status"] == "error" or ids & STUDENT_PROBLEMS else "graded"


# ---------------------------------------------------------------------- staff files

def _staff_csv(path: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    """The rows of a staff CSV file whose header names some of `columns` (every one of `required`), each with its
    `file:line`; blank rows are skipped. A bad header or row is a GradebookError naming its line."""
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = [cell.strip() for cell in next(reader, [])]
            unknown = [h for h in header if h not in columns]
            missing = [c for c in required if c not in header]
            if unknown or missing or len(set(header)) != len(header):
                raise GradebookError(f"{path}:1: the header must be {','.join(columns)} (found "
                                     f"{','.join(header) or 'nothing'})")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise GradebookError(f"{where}: expected {len(header)} fields ({','.join(header)}), found "
                                         f"{len(row)}")
                rows.append((where, {h: cell.strip() for h, cell in zip(header, row)}))
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise GradebookError(f"{path}: not a readable CSV file ({exc})") from None
    return rows


def read_roster(path: Path, required: tuple[str, ...] = ROSTER_COLUMNS) -> dict[str, Person]:
    """roster.csv: `id,name,email,sis_id,section` (header required: every column, or those `required`); an empty
    or repeated id is an error."""
    people: dict[str, Person] = {}
    seen: set[str] = set()
    for where, row in _staff_csv(path, ROSTER_COLUMNS, required):
        if not row["id"]:
            raise GradebookError(f"{where}: the id is empty")
        if row["id"].casefold() in seen:
            raise GradebookError(f"{where}: student {row['id']!r} is on the roster twice")
        seen.add(row["id"].casefold())
        people[row["id"]] = Person(**row)
    return people


def _number(text: str, where: str, column: str, minimum: float | None = None) -> float | None:
    """A cell's number, None when empty; anything else (or below `minimum`) is a GradebookError."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise GradebookError(f"{where}: {column} must be a number{bound}, not {text!r}")
    return value


def read_adjustments(path: Path, submitted: set[str]) -> dict[str, Adjustment]:
    """adjustments.csv: `student,extra_days,points,final,note` (student and any of the others). Each row names a
    student with a submission, once, and gives points or final, not both."""
    adjustments: dict[str, Adjustment] = {}
    for where, row in _staff_csv(path, ADJUSTMENT_COLUMNS, ("student",)):
        student = row["student"]
        if student not in submitted:
            raise GradebookError(f"{where}: unknown student {student!r}: no submission has that id (an adjustment "
                                 "applies to a submission)")
        if student in adjustments:
            raise GradebookError(f"{where}: student {student!r} has a row already")
        points = _number(row.get("points", ""), where, "points")
        final = _number(row.get("final", ""), where, "final", minimum=0)
        if points is not None and final is not None:
            raise GradebookError(f"{where}: give points (added) or final (the final score), not both")
        extra_days = _number(row.get("extra_days", ""), where, "extra_days", minimum=0) or 0.0
        adjustments[student] = Adjustment(extra_days, points, final, row.get("note", ""))
    return adjustments


def read_staff_files(folder: Path, roster: Path | None, students: set[str]) -> StaffFiles:
    """The roster (if given) and FOLDER/adjustments.csv (if there), checked before anyone is graded."""
    adjustments = folder / ADJUSTMENTS_FILE
    return StaffFiles(read_roster(roster) if roster is not None else None,
                      read_adjustments(adjustments, students) if adjustments.is_file() else {})


# ---------------------------------------------------------------------- reports

def read_reports(folder: Path) -> dict[str, dict]:
    """Every report a batch wrote: FOLDER/students/*.json, each validated."""
    students = folder / STUDENTS_DIR
    if not students.is_dir():
        raise GradebookError(f"{folder}: no {STUDENTS_DIR}/ folder: not the --out-dir of `grader batch`")
    reports = {}
    for path in sorted(students.glob("*.json")):
        try:
            report = load_report(path)
        except ReportError as exc:
            raise GradebookError(str(exc)) from None
        if report["status"] == "checked":
            raise GradebookError(f"{path}: a `grader check` report (public checks), not a grade")
        reports[report["student"]] = report
    if not reports:
        raise GradebookError(f"{students}: no reports in it")
    names = {(r["assignment"]["name"], r["assignment"]["version"]) for r in reports.values()}
    if len(names) > 1:
        raise GradebookError(f"{students}: reports of several assignments ({', '.join(sorted(map(str, names)))})")
    return reports


def class_info(reports: dict[str, dict]) -> ClassInfo:
    """The assignment as the reports describe it: its name, version, points and groups (in report order)."""
    first = next(iter(reports.values()))
    groups = dict.fromkeys(g["name"] for r in reports.values() for g in r["groups"])
    return ClassInfo(first["assignment"]["name"], first["assignment"]["version"],
                     max(r["max_score"] for r in reports.values()), tuple(groups))


def adjusted(report: dict, policy: LatePolicy, adjustment: Adjustment | None) -> dict:
    """The report as the class outputs show it: the late penalty for this student's due date (moved by the
    extension), and the adjustment (none when its row is gone)."""
    late = report["late"]
    text = late["submitted_at"] if late else None
    submitted_at = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    new = {key: value for key, value in report.items() if key != "adjustment"}
    new["late"] = dataclasses.asdict(late_penalty(policy, submitted_at, report["score"],
                                                  adjustment.extra_days if adjustment else 0.0))
    if adjustment is not None:
        new["adjustment"] = {**dataclasses.asdict(adjustment),
                             "final_score": round(adjustment.applied(new["late"]["final_score"]), 6)}
    return new


def class_rows(reports: dict[str, dict], roster: dict[str, Person] | None) -> list[Row]:
    """A row per report and per roster student without one, by student id."""
    people = roster or {}
    return [Row(s, people.get(s), reports.get(s)) for s in sorted(set(reports) | set(people))]


def off_roster(reports: dict[str, dict], roster: dict[str, Person] | None) -> list[str]:
    """The students with a report who are not on the roster (none without a roster), said on standard error."""
    students = sorted(set(reports) - set(roster)) if roster is not None else []
    if students:
        print(f"grader: not on the roster: {', '.join(students)}", file=sys.stderr)
    return students


def utc(text: str | None) -> str:
    """An ISO 8601 time in UTC with `Z`, e.g. 2026-12-19T13:14:07Z; "" when unknown."""
    if not text:
        return ""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------- layouts

def csv_text(value: str) -> str:
    """A text cell a spreadsheet shows as text: one that starts like a formula gets a leading quote (OWASP)."""
    return "'" + value if value.startswith(CSV_FORMULA_START) else value


def _cell(value: object) -> object:
    return csv_text(value) if isinstance(value, str) else "" if value is None else value


def _detailed(info: ClassInfo, rows: list[Row]) -> list[list]:
    """The batch's gradebook.csv: every group, the late penalty, the adjustment and the status."""
    table: list[list] = [["student", "name", "email", "sis_id", "section", *info.groups, "total", "max", "status",
                          "submitted_at", "late_days", "penalty_percent", "extra_days", "adjustment_points",
                          "adjustment_final", "note", "final"]]
    for row in rows:
        person = row.person or Person(row.student)
        who = [row.student, person.name, person.email, person.sis_id, person.section]
        report = row.report
        if report is None:
            table.append([*who, *(0.0 for _ in info.groups), 0.0, info.max_score, row.status, "", 0, 0.0, 0.0, None,
                          None, "", row.final])
            continue
        by_group = {g["name"]: g["score"] for g in report["groups"]}
        late = report["late"] or {"submitted_at": None, "days_late": 0, "penalty_percent": 0.0}
        adjustment = report.get("adjustment") or {"extra_days": 0.0, "points": None, "final": None, "note": ""}
        table.append([*who, *(round(by_group.get(g, 0.0), 2) for g in info.groups), round(report["score"], 2),
                      round(report["max_score"], 2), row.status, utc(late["submitted_at"]), late["days_late"],
                      late["penalty_percent"], adjustment["extra_days"], adjustment["points"], adjustment["final"],
                      adjustment["note"], row.final])
    return table


def _canvas(info: ClassInfo, rows: list[Row]) -> list[list]:
    """Canvas's gradebook import: its export's first five columns, then the assignment's column, and the
    "Points Possible" row. Canvas matches students by SIS User ID or SIS Login ID (ID is Canvas's own number,
    unknown here: left empty). A column title ending in "(number)" would name an existing Canvas assignment by
    its id, so the column is the assignment's name: a new assignment, or the one of that name."""
    table: list[list] = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", info.name],
                         [CANVAS_POINTS_ROW, "", "", "", "", info.max_score]]
    for row in rows:
        person = row.person or Person(row.student)
        table.append([person.name or row.student, "", person.sis_id, row.student, person.section, row.final])
    return table


def _moodle(info: ClassInfo, rows: list[Row]) -> list[list]:
    """Moodle's CSV grade import: map "Email address" to the user's email or "ID number" to their ID number,
    and the assignment's column to its grade item."""
    table: list[list] = [["ID number", "Email address", "Full name", info.name]]
    for row in rows:
        person = row.person or Person(row.student)
        table.append([person.sis_id or row.student, person.email, person.name or row.student, row.final])
    return table


LAYOUTS: dict[str, Callable[[ClassInfo, list[Row]], list[list]]] = {
    "csv": _detailed, "canvas": _canvas, "moodle": _moodle}


def gradebook_text(layout: str, info: ClassInfo, rows: list[Row], excel: bool = False) -> str:
    """The gradebook in a layout; text cells neutralised (csv_text), numbers as numbers, an unknown grade empty;
    with `excel`, a UTF-8 byte order mark first (Excel then reads the names as UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line in LAYOUTS[layout](info, rows):
        writer.writerow([_cell(value) for value in line])
    return ("\ufeff" if excel else "") + out.getvalue()


# ---------------------------------------------------------------------- failing tests, summary

@dataclass(frozen=True)
class Failure:
    student: str
    test: str  # group::name
    status: str
    message: str  # the feedback's first line


def full_test_name(test: dict) -> str:
    """`group::name`, as summary.json's pass rates and --failing name a test."""
    return f"{test['group']}::{test['name']}"


def failing(reports: dict[str, dict], query: str) -> list[Failure]:
    """Who did not pass the tests that `query` names: a test name (with or without its parameters, e.g.
    test_tanh[0] or test_tanh), a `group::test` id, or a student function (a test's `function`, e.g. Value.tanh).
    A query that names no test of any report is a GradebookError."""
    found, failures = False, []
    for student in sorted(reports):
        for test in reports[student]["tests"]:
            if query not in (test["name"], test["name"].split("[")[0], full_test_name(test), test["function"]):
                continue
            found = True
            if test["status"] != "passed":
                lines = test["feedback"].strip().splitlines()
                failures.append(Failure(student, full_test_name(test), test["status"], lines[0] if lines else ""))
    if not found:
        raise GradebookError(f"no test or function {query!r} in the reports (a test name, group::test or a function "
                             "such as Value.tanh)")
    return failures


def failing_text(failures: list[Failure]) -> str:
    """Tab-separated, a header first; control characters shown as escapes (feedback quotes student output)."""
    from grader.formats import _printable

    lines = ["student\ttest\tstatus\tmessage"]
    lines += [_printable(f"{f.student}\t{f.test}\t{f.status}\t{f.message}") for f in failures]
    return "\n".join(lines) + "\n"


def score_bin(score: float, max_score: float) -> int:
    """Which of BINS bins over 0..max_score holds `score`; the last holds full marks too."""
    if max_score <= 0:
        return 0
    # 1e-9: a float sum a hair under a bin's lower edge (69.9999999 for 70) still belongs to that bin.
    return min(BINS - 1, max(0, int(score * BINS / max_score + 1e-9)))


def _stats(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "min": None, "max": None}
    return {"mean": round(statistics.mean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def class_summary(info: ClassInfo, rows: list[Row], duration_s: float,
                  not_on_roster: list[str] | None = None) -> dict:
    """summary.json. Score statistics are over the scores handed in (status graded or problem): a missing
    student's 0 and an ungraded submission are counted by status, not as scores."""
    scored = [r.report for r in rows if r.report is not None and r.final is not None]
    finals = [final_score(r) for r in scored]
    histogram = [0] * BINS
    for score in finals:
        histogram[score_bin(score, info.max_score)] += 1
    tests: dict[str, list[bool]] = {}
    for row in rows:
        for test in row.report["tests"] if row.report else ():
            tests.setdefault(full_test_name(test), []).append(test["status"] == "passed")
    by_status = {status: [r.student for r in rows if r.status == status] for status in STATUSES}
    return {
        "assignment": {"name": info.name, "version": info.version},
        "students": len(rows),
        "statuses": {status: len(students) for status, students in by_status.items()},
        "errors": by_status["error"],
        "problems": by_status["problem"],
        "missing": by_status["missing"],
        "not_on_roster": not_on_roster or [],
        "max_score": info.max_score,
        "mean_final": _stats(finals)["mean"],
        "median_final": round(statistics.median(finals), 4) if finals else None,
        "final": _stats(finals),
        "histogram": [{"from": round(info.max_score * i / BINS, 4), "to": round(info.max_score * (i + 1) / BINS, 4),
                       "count": count} for i, count in enumerate(histogram)],
        "groups": {name: _stats([g["score"] for r in scored for g in r["groups"] if g["name"] == name])
                   for name in info.groups},
        "pass_rates": {name: round(sum(ok) / len(ok), 4) for name, ok in sorted(tests.items())},
        "duration_s": round(duration_s, 3),
    }


def failing_slug(name: str) -> str:
    """A file name for a test's failing-students page: readable, and distinct for distinct names."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:60]
    return f"{readable}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


# ---------------------------------------------------------------------- the batch's class outputs

def student_files(out_dir: Path, student: str) -> tuple[Path, Path]:
    """Where a student's report and feedback page go."""
    return out_dir / STUDENTS_DIR / f"{student}.json", out_dir / STUDENTS_DIR / f"{student}.html"


def _rewrite(out_dir: Path, report: dict, assignment: Assignment) -> None:
    """Write a report changed by its adjustment, and its page again (with the code, if it is still the code
    that was graded)."""
    from grader.pages import feedback_page
    from grader.submission import SubmissionError, load_submission

    submission = None
    if report["status"] == "graded":
        try:
            submission = load_submission(report["submission"]["source"], assignment, report["student"])
        except (SubmissionError, OSError):
            pass
        if submission is not None and submission.sha256 != report["submission"]["sha256"]:
            submission = None
    report_path, page_path = student_files(out_dir, report["student"])
    write_report_atomic(report, report_path)
    write_text_atomic(page_path, feedback_page(report, submission, report["lang"]))


def write_class_outputs(assignment: Assignment, out_dir: Path, by_student: dict[str, dict], duration_s: float,
                        lang: str, staff: StaffFiles = StaffFiles(), similarity_link: str | None = None
                        ) -> dict[str, dict]:
    """Apply the adjustments (rewriting the reports and pages they change), then write gradebook.csv,
    summary.json, index.html (linking `similarity_link`, `grader batch --similarity`'s page, when given) and a
    page per test that someone failed. Returns the reports as adjusted."""
    from grader.pages import dashboard, failing_page

    reports = {}
    for student, report in by_student.items():
        reports[student] = adjusted(report, assignment.late, staff.adjustments.get(student))
        if reports[student] != report:
            _rewrite(out_dir, reports[student], assignment)
    info = ClassInfo.of(assignment)
    rows = class_rows(reports, staff.roster)
    not_on_roster = off_roster(reports, staff.roster)
    write_text_atomic(out_dir / "gradebook.csv", gradebook_text("csv", info, rows))
    summary = class_summary(info, rows, duration_s, not_on_roster)
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    ordered = [reports[s] for s in sorted(reports)]
    failing_links = {name: f"{FAILING_DIR}/{failing_slug(name)}.html"
                     for name in sorted({t["name"] for r in ordered for t in r["tests"] if t["status"] != "passed"})}
    (out_dir / FAILING_DIR).mkdir(exist_ok=True)
    for stale in set((out_dir / FAILING_DIR).glob("*.html")) - {out_dir / href for href in failing_links.values()}:
        stale.unlink()
    for name, href in failing_links.items():
        write_text_atomic(out_dir / href, failing_page(name, failing(reports, name), lang, f"../{STUDENTS_DIR}/"))
    links = {r["student"]: {"report": f"{STUDENTS_DIR}/{r['student']}.json",
                            "feedback": f"{STUDENTS_DIR}/{r['student']}.html"} for r in ordered}
    write_text_atomic(out_dir / "index.html", dashboard(ordered, links, lang, title=assignment.title,
                                                       failing_links=failing_links, similarity_link=similarity_link))
    return reports
