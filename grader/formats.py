"""Last stage of the pipeline: check a report (schema + sums), store it safely, render it for people and tools.

Renderers take the dict from `Report.to_dict()` and expect it valid (`validate_report` first); they never
trust the text inside it: feedback carries what student code printed or raised.
"""
from __future__ import annotations

import json
import math
import os
import re
import unicodedata
import xml.etree.ElementTree as ET
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Callable
from grader.errors import GraderError

SCHEMA_PATH = Path(__file__).with_name("schemas") / "report.schema.json"
FORMATS = ("text", "json", "gradescope", "junit", "markdown")
TOLERANCE = 1e-6  # scores are float sums; this much rounding is not a mismatch


class ReportError(GraderError):
    """A report is missing, unreadable or inconsistent; the one-line message says where and what."""


# --- validation ------------------------------------------------------------------------------------------

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


# --- files -----------------------------------------------------------------------------------------------

def load_report(path: str | os.PathLike) -> dict:
    """Read and validate a report file; every failure is a ReportError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ReportError(f"{path}: not a report (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a report (a JSON {type(data).__name__}, expected an object)")
    try:
        validate_report(data)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None
    except RecursionError:
        raise ReportError(f"{path}: not a report (nested too deeply)") from None
    return data


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text so that a reader (or a crash) sees the old file or the new one, never a part of one."""
    path = Path(path)
    data = text.encode("utf-8")
    temp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")  # same folder: os.replace stays a rename
    # O_EXCL never reuses a file someone planted; mode 0o666 lets the umask decide, as open() would.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself survive a power cut (POSIX; Windows cannot open a folder and needs no such step)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some file systems refuse to fsync a folder; the new file is in place either way


def write_report_atomic(data: dict, path: str | os.PathLike) -> None:
    """Validate, then write the report as JSON atomically: an invalid report never replaces a good one."""
    validate_report(data)
    write_text_atomic(path, render_json(data))


# --- text that came from student code --------------------------------------------------------------------

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters (Unicode category Cc) but newline and tab, surrogates (Cs), bidi marks, embeddings, overrides
# and isolates, zero-width characters, line and paragraph separators, the BOM, and the noncharacters XML refuses.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
                        "\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _printable(text: str) -> str:
    """Show control characters as escapes: an ESC from student output must not drive the reader's terminal,
    bidi overrides must not reorder what a grader reads, and a lone surrogate cannot be written as UTF-8."""
    return _INVISIBLE.sub(_escape, text)


def _xml_text(text: str) -> str:
    """XML 1.0 cannot hold most control characters, not even as references: shown as escapes, like the rest."""
    return _printable(text)


def _num(value: float) -> str:
    """Scores for people: 40.0 -> "40", 2.5 -> "2.5", 1/3 -> "0.33"."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _tests_by_group(report: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {g["name"]: [] for g in report["groups"]}
    for test in report["tests"]:
        grouped.setdefault(test["group"], []).append(test)
    return grouped


_LABELS = {
    "en": {
        "assignment": "Assignment", "student": "Student", "score": "Score", "max": "Max", "total": "Total",
        "group": "Group", "test": "Test", "status": "Status", "feedback": "Feedback",
        "passed": "passed", "failed": "failed", "error": "error", "timeout": "timed out",
        "not_graded": "not graded: the submission could not be run", "not_passed": "Tests not passed",
        "errors": "Submission errors", "warnings": "Isolation warnings",
        "late": "Late", "late_detail": "{days} day(s), -{percent}%",
    },
    "zh": {
        "assignment": "作业", "student": "学生", "score": "得分", "max": "满分", "total": "总计",
        "group": "分组", "test": "测试", "status": "状态", "feedback": "反馈",
        "passed": "通过", "failed": "未通过", "error": "出错", "timeout": "超时",
        "not_graded": "未评分：提交无法运行", "not_passed": "未通过的测试",
        "errors": "提交问题", "warnings": "隔离警告",
        "late": "迟交", "late_detail": "{days} 天，扣 {percent}%",
    },
}


def _labels(lang: str) -> dict[str, str]:
    try:
        return _LABELS[lang]
    except KeyError:
        raise ValueError(f"unsupported language {lang!r}; choose one of {', '.join(_LABELS)}") from None


def _late_detail(report: dict, labels: dict[str, str], with_final: bool = True) -> str | None:
    late = report["late"]
    if late is None or late["days_late"] == 0:
        return None
    detail = labels["late_detail"].format(days=late["days_late"], percent=_num(late["penalty_percent"]))
    return f"{detail} → {_num(late['final_score'])}" if with_final else detail


# --- renderers -------------------------------------------------------------------------------------------

def render_json(report: dict, lang: str = "en") -> str:
    """The report itself, in Report.to_dict() key order, Chinese kept readable. `lang` is unused: data only."""
    text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)
    # A lone surrogate (student text can carry one) has no UTF-8 form; as a \u escape it round-trips.
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def render_gradescope(report: dict, lang: str = "en") -> str:
    """Gradescope's autograder results.json: one test per hidden test, numbered "group.test"."""
    labels = _labels(lang)
    grouped = _tests_by_group(report)
    tests = []
    for g, group in enumerate(report["groups"], 1):
        for t, test in enumerate(grouped[group["name"]], 1):
            output = test["feedback"]
            if test["status"] in ("error", "timeout"):  # Gradescope knows only passed/failed: say which
                output = f"[{labels[test['status']]}] {output}".rstrip()
            tests.append({
                "name": _printable(test["name"]),
                "name_format": "text",
                "number": f"{g}.{t}",
                "score": test["score"],
                "max_score": test["max_score"],
                "status": "passed" if test["status"] == "passed" else "failed",
                "output": _printable(output),
                "output_format": "text",
                "tags": [group["name"]],
                "visibility": group["visibility"],
            })
    late = report["late"]
    return json.dumps({
        # Gradescope takes this over the tests' sum: it carries the late penalty.
        "score": late["final_score"] if late is not None else report["score"],
        "execution_time": round(report["duration_s"]),
        "output": _gradescope_summary(report, labels),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",  # the grader's log is for staff
        "tests": tests,
    }, indent=2, ensure_ascii=False) + "\n"


def _gradescope_summary(report: dict, labels: dict[str, str]) -> str:
    # Students see this text whatever the tests' visibility: name only visible groups, and give the total
    # (or the late-penalised final score) only when no group is hidden.
    visible = [g for g in report["groups"] if g["visibility"] == "visible"]
    show_total = len(visible) == len(report["groups"])
    lines = [f"{labels['score']}: {_num(report['score'])} / {_num(report['max_score'])}" if show_total
             else f"{labels['score']}:"]
    lines += [f"  {_printable(g['title'])}: {_num(g['score'])} / {_num(g['max_score'])}" for g in visible]
    late = _late_detail(report, labels, with_final=show_total)
    if late:
        lines.append(f"{labels['late']}: {late}")
    if report["status"] == "error":
        lines.append(labels["not_graded"])
    if report["errors"]:
        lines.append(f"{labels['errors']}:")
        lines += [f"  - {_printable(e['message'])}" for e in report["errors"]]
    return "\n".join(lines)


def render_junit(report: dict, lang: str = "en") -> str:
    """JUnit XML, one <testsuite> per group; submission errors become a "submission" suite of errors, so a
    CI job that grades a broken submission shows red instead of "0 tests"."""
    labels = _labels(lang)
    assignment = _xml_text(report["assignment"]["name"])
    root = ET.Element("testsuites", name=assignment, time=f"{report['duration_s']:.3f}")
    grouped = _tests_by_group(report)
    for group in report["groups"]:
        tests = grouped[group["name"]]
        suite = ET.SubElement(root, "testsuite", name=_xml_text(group["name"]),
                              time=f"{sum(t['duration_s'] for t in tests):.3f}")
        properties = ET.SubElement(suite, "properties")
        for name, value in (("title", _xml_text(group["title"])), ("score", _num(group["score"])),
                            ("max_score", _num(group["max_score"]))):
            ET.SubElement(properties, "property", name=name, value=value)
        for test in tests:
            case = ET.SubElement(suite, "testcase", name=_xml_text(test["name"]),
                                 classname=f"{assignment}.{_xml_text(group['name'])}",
                                 time=f"{test['duration_s']:.3f}")
            if test["status"] != "passed":
                tag = "failure" if test["status"] == "failed" else "error"
                _junit_problem(case, tag, test["status"], test["feedback"] or labels[test["status"]])
    if report["errors"]:
        suite = ET.SubElement(root, "testsuite", name="submission", time="0.000")
        for error in report["errors"]:
            case = ET.SubElement(suite, "testcase", name=_xml_text(error["id"]), classname=f"{assignment}.submission",
                                 time="0.000")
            _junit_problem(case, "error", error["id"], error["message"])
    _count_junit(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_problem(case: ET.Element, tag: str, kind: str, text: str) -> None:
    text = _xml_text(text)
    first_line = text.strip().split("\n", 1)[0]
    message = first_line if len(first_line) <= 200 else first_line[:197] + "..."
    ET.SubElement(case, tag, message=message, type=_xml_text(kind)).text = text


def _count_junit(root: ET.Element) -> None:
    """tests/failures/errors/skipped on every suite and on the root, as JUnit readers expect."""
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root.iter("testsuite"):
        counts = {
            "tests": len(suite.findall("testcase")),
            "failures": len(suite.findall("testcase/failure")),
            "errors": len(suite.findall("testcase/error")),
        }
        suite.attrib.update({k: str(v) for k, v in counts.items()}, skipped="0")
        for key, value in counts.items():
            totals[key] += value
    root.attrib.update({k: str(v) for k, v in totals.items()})


_MARKS = {"passed": "✓", "failed": "✗", "error": "!", "timeout": "⏱"}
_COLORS = {"passed": "32", "failed": "31", "error": "33", "timeout": "35"}  # ANSI green, red, yellow, magenta


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def render_text(report: dict, lang: str = "en", color: bool = False) -> str:
    """A terminal summary: header, then each group with its tests, feedback under every test not passed."""
    labels = _labels(lang)

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    header = [
        (labels["assignment"], _printable(f"{report['assignment']['name']} v{report['assignment']['version']}")),
        (labels["student"], _printable(report["student"])),
        (labels["score"], paint(f"{_num(report['score'])} / {_num(report['max_score'])}", "1")),
    ]
    late = _late_detail(report, labels)
    if late:
        header.append((labels["late"], late))
    if report["status"] == "error":
        header.append((labels["status"], paint(labels["not_graded"], _COLORS["failed"])))
    key_width = max(_width(key) for key, _ in header)
    lines = [f"{_pad(key, key_width)}  {value}" for key, value in header]

    grouped = _tests_by_group(report)
    titles = {g["name"]: _printable(f"{g['name']}: {g['title']}") for g in report["groups"]}
    title_width = max((_width(t) for t in titles.values()), default=0)
    for group in report["groups"]:
        lines += ["", paint(f"{_pad(titles[group['name']], title_width)}  "
                            f"{_num(group['score'])} / {_num(group['max_score'])}", "1")]
        for test in grouped[group["name"]]:
            status = test["status"]
            line = f"  {paint(_MARKS[status], _COLORS[status])} {_printable(test['name'])}"
            if status != "passed":
                line += f"  ({paint(labels[status], _COLORS[status])})"
            lines.append(line)
            if status != "passed":
                lines += [f"      {row}" for row in _printable(test["feedback"]).splitlines()]

    for key, items in (("errors", [f"{e['id']}: {e['message']}" for e in report["errors"]]),
                       ("warnings", report["isolation"]["warnings"])):
        if items:
            lines += ["", paint(labels[key], "1")]
            lines += [f"  - {_printable(item)}" for item in items]
    return "\n".join(lines) + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")  # $ too: GitHub renders $...$ as math


def _md(text: str) -> str:
    """Student text as one literal table cell: no markup, no HTML, no line breaks that end the row."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", _printable(text).replace("&", "&amp;"))
    return text.replace("\r\n", "\n").replace("\n", "<br>")


def render_markdown(report: dict, lang: str = "en") -> str:
    """A GitHub job summary ($GITHUB_STEP_SUMMARY): a score table per group, then the tests not passed."""
    labels = _labels(lang)
    total = f"{_num(report['score'])} / {_num(report['max_score'])}"
    lines = [f"### {_md(report['assignment']['name'])} · {_md(report['student'])}: {total}", ""]
    if report["status"] == "error":
        lines += [f"**{labels['not_graded']}**", ""]
    late = _late_detail(report, labels)
    if late:
        lines += [f"{labels['late']}: {_md(late)}", ""]
    lines += [f"| {labels['group']} | {labels['score']} | {labels['max']} |", "| --- | ---: | ---: |"]
    lines += [f"| {_md(g['name'])}: {_md(g['title'])} | {_num(g['score'])} | {_num(g['max_score'])} |"
              for g in report["groups"]]
    lines.append(f"| **{labels['total']}** | **{_num(report['score'])}** | **{_num(report['max_score'])}** |")

    not_passed = [t for t in report["tests"] if t["status"] != "passed"]
    if not_passed:
        lines += ["", f"#### {labels['not_passed']}", "",
                  f"| {labels['test']} | {labels['group']} | {labels['status']} | {labels['score']} "
                  f"| {labels['feedback']} |",
                  "| --- | --- | --- | ---: | --- |"]
        lines += [f"| {_md(t['name'])} | {_md(t['group'])} | {_MARKS[t['status']]} {labels[t['status']]} "
                  f"| {_num(t['score'])} / {_num(t['max_score'])} | {_md(t['feedback'])} |" for t in not_passed]

    for key, items in (("errors", [f"{e['id']}: {e['message']}" for e in report["errors"]]),
                       ("warnings", report["isolation"]["warnings"])):
        if items:
            lines += ["", f"#### {labels[key]}", ""] + [f"- {_md(item)}" for item in items]
    return "\n".join(lines) + "\n"


_RENDERERS: dict[str, Callable[[dict, str], str]] = {
    "json": render_json,
    "gradescope": render_gradescope,
    "junit": render_junit,
    "markdown": render_markdown,
}


def render(report: dict, fmt: str, lang: str = "en", color: bool = False) -> str:
    """Render a validated report in one of FORMATS; `color` applies to "text" only."""
    if fmt == "text":
        return render_text(report, lang, color=color)
    if fmt not in _RENDERERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](report, lang)
