"""What running tests produces, before scoring: plain data shared by grading (hidden tests) and checking (public)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What one hidden test decided."""

    name: str
    group: str | None  # None for a test whose function is in no group: it is not scored
    weight: float
    covers: str | None  # the student function whose points the test shares (its `covers` marker)
    function: str | None  # the function its feedback is about (the covered one unless it names another)
    status: str  # passed | failed | error | timeout
    message: dict | None  # {"id", "params"}; None when passed
    duration_s: float
    output: str = ""  # what student code printed while a failing public test ran (grader check only)


@dataclass
class RunResult:
    outcomes: list[Outcome]
    import_errors: dict[str, dict]  # module -> the exception its import raised (see harness.describe_exception)
    isolation: dict
    internal_errors: list[str] = field(default_factory=list)  # bugs of the grader itself, never the student's
