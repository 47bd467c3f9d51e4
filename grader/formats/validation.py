"""Check a report: the JSON Schema (grader/schemas/report.schema.json) and what it cannot say (finite
numbers, date-times, scores that add up). Every problem is a one-line ReportError naming the field."""
from __future__ import annotations

import json
import math
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Callable

from grader.errors import GraderError

SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "report.schema.json"
TOLERANCE = 1e-6  # scores are float sums; this much rounding is not a mismatch


class ReportError(GraderError):
    """A report is missing, unreadable or inconsistent; the one-line message says where and what."""


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _is_datetime(value: object) -> bool:
    """RFC 3339 date-time with an offset. Checked here because jsonschema's own check silently
    accepts anything unless the optional rfc3339-validator package happens to be installed."""
    if not isinstance(value, str):
        return True
    match = _DATETIME.fullmatch(value)
    if match is None:
        return False
    offset = match.group(2)
    # fromisoformat checks the calendar and the offset's range; the fraction is left out
    # because Python 3.10 accepts only 3 or 6 digits there.
    try:
        datetime.fromisoformat(value[:19].upper() + ("+00:00" if offset in ("Z", "z") else offset))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def _validator():
    import jsonschema  # ~0.1 s to import: only commands that validate pay for it

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.FormatChecker(formats=())  # only the formats we check ourselves
    checker.checks("date-time")(_is_datetime)
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def _path(parts) -> str:
    """["tests", 3, "status"] -> "tests[3].status"; the report itself is "report"."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "report"


def _fail(parts, problem: str) -> ReportError:
    problem = problem.replace("\n", " ")
    if len(problem) > 300:  # a type error quotes the whole offending value
        problem = problem[:297] + "..."
    return ReportError(f"{_path(parts)}: {problem}")


@lru_cache(maxsize=1)
def _fast_validator() -> Callable[[dict], object]:
    """The same schema compiled to Python by fastjsonschema: ~0.04 s to import and build, against ~0.13 s for
    jsonschema, on every `grader grade`. jsonschema still words the error when a report is invalid."""
    import fastjsonschema

    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def validate_report(data: dict) -> None:
    """Raise ReportError unless `data` matches the schema and its scores add up."""
    import fastjsonschema

    try:
        _fast_validator()(data)
        late = data["late"] or {}
        valid = all(map(_is_datetime, [data["started_at"], late.get("submitted_at"), late.get("due")]))
    except fastjsonschema.JsonSchemaException:
        valid = False
    if not valid:
        from jsonschema.exceptions import best_match

        error = best_match(_validator().iter_errors(data))
        if error is not None:
            raise _fail(error.absolute_path, error.message)
    _check_finite(data, [])
    _check_sums(data)


def _check_finite(value, parts: list) -> None:
    # NaN passes every "minimum" and every sum comparison, and is not JSON.
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(parts, f"{value} is not a finite number")
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        _check_finite(child, [*parts, key])


def _check_sums(report: dict) -> None:
    def expect_equal(parts, actual: float, expected: float, what: str) -> None:
        if abs(actual - expected) > TOLERANCE:
            raise _fail(parts, f"{actual} is not {what} ({expected})")

    names = [g["name"] for g in report["groups"]]
    totals: dict[str, list[float]] = {}  # group -> [score, max_score, number of tests]
    for i, name in enumerate(names):
        if name in totals:
            raise _fail(["groups", i, "name"], f"{name!r} appears twice")
        totals[name] = [0.0, 0.0, 0]
    for i, test in enumerate(report["tests"]):
        if test["group"] not in totals:
            raise _fail(["tests", i, "group"], f"{test['group']!r} is not one of the groups {names}")
        if test["score"] > test["max_score"] + TOLERANCE:
            raise _fail(["tests", i, "score"], f"{test['score']} is more than its max_score {test['max_score']}")
        total = totals[test["group"]]
        total[0] += test["score"]
        total[1] += test["max_score"]
        total[2] += 1
    for i, group in enumerate(report["groups"]):
        score, max_score, count = totals[group["name"]]
        if count == 0 and report["status"] == "error":
            # Nothing ran: the group keeps its points as max_score (so the gradebook shows 0/max) and scores 0.
            expect_equal(["groups", i, "score"], group["score"], 0.0, "0 for a group with no tests")
            continue
        expect_equal(["groups", i, "score"], group["score"], score, "the sum of its tests' scores")
        expect_equal(["groups", i, "max_score"], group["max_score"], max_score, "the sum of its tests' max_score")
    expect_equal(["score"], report["score"], sum(g["score"] for g in report["groups"]), "the sum of the groups' scores")
    expect_equal(["max_score"], report["max_score"], sum(g["max_score"] for g in report["groups"]),
                 "the sum of the groups' max_score")
    late = report["late"]
    if late is not None and late["final_score"] > report["score"] + TOLERANCE:
        raise _fail(["late", "final_score"], f"{late['final_score']} is more than the score {report['score']}")
