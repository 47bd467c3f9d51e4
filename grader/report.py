"""The score report: plain dataclasses that every later stage (formats, batch, gradebook) reads."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = "1"


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


@dataclass
class GroupScore:
    name: str
    title: str
    score: float
    max_score: float
    visibility: str


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
    status: str  # "graded", or "error" when the submission could not be graded at all
    groups: list[GroupScore] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # submission-level problems: {"id", "message"}
    late: Late | None = None
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)
