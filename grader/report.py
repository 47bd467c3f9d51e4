"""The score report: plain dataclasses that every later stage (formats, batch, gradebook) reads."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import overload

from grader import messages

SCHEMA_VERSION = "1"
# Student code decides much of what a report says (exception messages, printed values): every part is bounded, so
# that one student cannot make a report, a feedback page or the class dashboard of many megabytes.
MAX_TEXT = 2000  # characters of one message parameter, feedback text or error message
MAX_ITEMS = 20  # items of one list or object in a message's parameters
MAX_DEPTH = 6  # nesting of a message's parameters (a description inside a description: 4)
MAX_REPORT_BYTES = 256 * 1024  # the whole report as JSON; beyond it, feedback details are dropped (and it says so)
SHORT_TEXT = 200  # each feedback text, when the report is too large
OUTPUT_TEXT = 1900  # what a failing public check printed


def bounded_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text`, cut to `limit` characters with a marker that says how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def bounded(value: object, depth: int = 0) -> object:
    """A message parameter as a report can hold it: text and lists cut (bounded_text, MAX_ITEMS), NaN, infinities
    and integers beyond a float's range as text, anything else as its text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value if abs(value) <= 2 ** 53 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, str):
        return bounded_text(value)
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, (list, tuple)):
        items = [bounded(v, depth + 1) for v in value[:MAX_ITEMS]]
        return items + [f"… {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else items
    if isinstance(value, dict):
        kept = list(value.items())[:MAX_ITEMS]
        return {bounded_text(str(k), 100): bounded(v, depth + 1) for k, v in kept}
    return bounded_text(str(value))


@overload
def bounded_message(message: dict) -> dict: ...
@overload
def bounded_message(message: None) -> None: ...
@overload
def bounded_message(message: dict | None) -> dict | None: ...


def bounded_message(message: dict | None) -> dict | None:
    """A feedback message {"id", "params"} with every parameter bounded."""
    if message is None:
        return None
    return {"id": bounded_text(str(message.get("id")), 100), "params": bounded(dict(message.get("params") or {}))}


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class
    name: str  # the hidden test's name, e.g. "test_tanh_backward_matches_reference[0]"
    group: str
    score: float
    max_score: float
    status: str  # passed | failed | error | timeout
    feedback: str  # rendered in the report's language; "" when passed
    function: str | None  # the student function the test is about, e.g. "Value.tanh"
    duration_s: float
    message: dict | None = None  # {"id": ..., "params": {...}}: the feedback before rendering
    covers: str | None = None  # the student function whose points the test shares
    weight: float = 1.0  # the test's share of that function's points, relative to its other tests
    output: str | None = None  # what student code printed while this public test failed (grader check only)


@dataclass
class GroupScore:
    name: str
    title: str
    score: float
    max_score: float
    visibility: str
    title_zh: str | None = None  # the title in Chinese, which reports rendered in Chinese show


@dataclass
class Late:
    submitted_at: str | None  # ISO 8601, None when unknown
    due: str | None
    days_late: int
    penalty_percent: float
    final_score: float


@dataclass
class Report:
    grader_version: str
    assignment: dict  # {"name", "version"}
    student: str
    submission: dict  # {"sha256", "files", "kind", "source"}
    seed: int
    lang: str
    isolation: dict  # {"layers": [...], "warnings": [...]}
    started_at: str  # ISO 8601, UTC
    duration_s: float
    score: float
    max_score: float
    status: str  # "graded"; "error" when the submission could not be graded at all; "checked" by grader check
    groups: list[GroupScore] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # submission-level problems: {"id", "message"}
    late: Late | None = None
    schema_version: str = SCHEMA_VERSION
    # grader check's reports (status "checked"): what they count, which is never a grade
    progress: dict | None = None  # {"functions_done", "functions", "checks_passed", "checks"}

    def to_dict(self) -> dict:
        """The report as JSON data, at most MAX_REPORT_BYTES: beyond it each test's feedback is cut to SHORT_TEXT
        characters and its message parameters dropped, in report order, and an error entry says so."""
        data = asdict(self)
        if data["progress"] is None:
            del data["progress"]
        for test in data["tests"]:
            test["feedback"], test["message"] = bounded_text(test["feedback"]), bounded_message(test["message"])
            if test["output"] is None:
                del test["output"]  # only grader check's reports have it
            else:
                test["output"] = bounded_text(test["output"], OUTPUT_TEXT)
        errors = [{"id": bounded_text(str(e["id"]), 100), "message": bounded_text(str(e["message"]))}
                  for e in data["errors"][:MAX_ITEMS]]
        if len(data["errors"]) > MAX_ITEMS:
            more = messages.text("more_errors", self.lang, n=len(data["errors"]) - MAX_ITEMS)
            errors.append({"id": "more_errors", "message": more})
        data["errors"] = errors
        if len(json.dumps(data, default=str)) > MAX_REPORT_BYTES:  # \u escapes: at least its size in UTF-8
            for test in data["tests"]:
                test["feedback"] = bounded_text(test["feedback"], SHORT_TEXT)
                if test["message"] is not None:
                    test["message"]["params"] = {}
            data["errors"] = [{**e, "message": bounded_text(e["message"], SHORT_TEXT)} for e in data["errors"]]
            shortened = messages.text("report_shortened", self.lang, kib=MAX_REPORT_BYTES // 1024)
            data["errors"].append({"id": "report_shortened", "message": shortened})
        return data


def final_score(report: dict) -> float:
    """The score a report hands in: as adjusted by course staff, else after the late penalty, else as graded."""
    if report.get("adjustment"):
        return report["adjustment"]["final_score"]
    return report["late"]["final_score"] if report["late"] is not None else report["score"]
