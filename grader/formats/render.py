"""Render a valid report for people and tools: JSON, Gradescope, JUnit XML, text (terminal) and Markdown.

Renderers take the dict from `Report.to_dict()` and expect it valid (`validate_report` first); they never
trust the text inside it: feedback carries what student code printed or raised (grader/formats/escaping.py)."""
from __future__ import annotations

import json
import unicodedata
import xml.etree.ElementTree as ET
from typing import Callable

from grader import messages
from grader.formats.escaping import _LONE_SURROGATE, _md, _printable, _xml_text

FORMATS = ("text", "json", "gradescope", "junit", "markdown")


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


def _labels(lang: str) -> dict[str, str]:
    """The words of the report formats in `lang` (grader/messages.toml, "report." ids); ValueError for others."""
    return messages.labels("report", lang)


def group_title(group: dict, lang: str) -> str:
    """A group's title in `lang`: reports keep the English one in "title" and the Chinese one in "title_zh"
    (reports made before it have none)."""
    return (group.get("title_zh") or group["title"]) if lang == "zh" else group["title"]


def _labelled(label: str, value: str, labels: dict[str, str]) -> str:
    return labels["labelled"].format(label=label, value=value)


def _late_detail(report: dict, labels: dict[str, str], with_final: bool = True) -> str | None:
    late = report["late"]
    if late is None or late["days_late"] == 0:
        return None
    detail = labels["late_detail"].format(days=late["days_late"], percent=_num(late["penalty_percent"]))
    return f"{detail} → {_num(late['final_score'])}" if with_final else detail


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
                output = labels["status_tag"].format(status=labels[test["status"]], text=output).rstrip()
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
        "output": _gradescope_summary(report, labels, lang),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",  # the grader's log is for staff
        "tests": tests,
    }, indent=2, ensure_ascii=False) + "\n"


def _gradescope_summary(report: dict, labels: dict[str, str], lang: str) -> str:
    # Students see this text whatever the tests' visibility: name only visible groups, and give the total
    # (or the late-penalised final score) only when no group is hidden.
    visible = [g for g in report["groups"] if g["visibility"] == "visible"]
    show_total = len(visible) == len(report["groups"])
    lines = [_labelled(labels["score"], f"{_num(report['score'])} / {_num(report['max_score'])}" if show_total
                       else "", labels).rstrip()]
    for g in visible:
        lines.append("  " + _labelled(_printable(group_title(g, lang)), f"{_num(g['score'])} / {_num(g['max_score'])}",
                                      labels))
    late = _late_detail(report, labels, with_final=show_total)
    if late:
        lines.append(_labelled(labels["late"], late, labels))
    if report["status"] == "error":
        lines.append(labels["not_graded"])
    if report["errors"]:
        lines.append(_labelled(labels["errors"], "", labels).rstrip())
        lines += [f"  - {_printable(e['message'])}" for e in report["errors"]]
    return "\n".join(lines)


def render_junit(report: dict, lang: str = "en") -> str:
    """JUnit XML, one <testsuite> per group; submission errors become a "submission" suite of errors, so a
    CI job that grades a broken submission shows red instead of "0 tests"."""
    labels = _labels(lang)
    assignment = _xml_text(report["assignment"]["name"])
    if report["status"] == "checked":  # grader check: each testcase is a public check, and the scores count them
        assignment = f"{assignment}: {labels['checks'].lower()}"
    root = ET.Element("testsuites", name=assignment, time=f"{report['duration_s']:.3f}")
    grouped = _tests_by_group(report)
    for group in report["groups"]:
        tests = grouped[group["name"]]
        suite = ET.SubElement(root, "testsuite", name=_xml_text(group["name"]),
                              time=f"{sum(t['duration_s'] for t in tests):.3f}")
        properties = ET.SubElement(suite, "properties")
        for name, value in (("title", _xml_text(group_title(group, lang))), ("score", _num(group["score"])),
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
    titles = {g["name"]: _printable(_labelled(g["name"], group_title(g, lang), labels)) for g in report["groups"]}
    title_width = max((_width(t) for t in titles.values()), default=0)
    for group in report["groups"]:
        lines += ["", paint(f"{_pad(titles[group['name']], title_width)}  "
                            f"{_num(group['score'])} / {_num(group['max_score'])}", "1")]
        for test in grouped[group["name"]]:
            status = test["status"]
            line = f"  {paint(_MARKS[status], _COLORS[status])} {_printable(test['name'])}"
            if status != "passed":
                line += labels["status_note"].format(status=paint(labels[status], _COLORS[status]))
            lines.append(line)
            if status != "passed":
                lines += [f"      {row}" for row in _printable(test["feedback"]).splitlines()]

    for key, items in (("errors", [_labelled(e["id"], e["message"], labels) for e in report["errors"]]),
                       ("warnings", report["isolation"]["warnings"])):
        if items:
            lines += ["", paint(labels[key], "1")]
            lines += [f"  - {_printable(item)}" for item in items]
    return "\n".join(lines) + "\n"


def render_markdown(report: dict, lang: str = "en") -> str:
    """A GitHub job summary ($GITHUB_STEP_SUMMARY): a score table per group, then the tests not passed."""
    labels = _labels(lang)
    if report["status"] == "checked":  # grader check: public checks counted, never a grade
        labels = {**labels, "score": labels["checks_passed"], "max": labels["checks"], "test": labels["check"],
                  "not_passed": labels["checks_not_passed"]}
        total = messages.text("check.progress", lang, **report["progress"])
    else:
        total = f"{_num(report['score'])} / {_num(report['max_score'])}"
    lines = [f"### {_md(report['assignment']['name'])} · {_md(report['student'])}: {_md(total)}", ""]
    if report["status"] == "error":
        lines += [f"**{labels['not_graded']}**", ""]
    late = _late_detail(report, labels)
    if late:
        lines += [_labelled(labels["late"], _md(late), labels), ""]
    lines += [f"| {labels['group']} | {labels['score']} | {labels['max']} |", "| --- | ---: | ---: |"]
    lines += [f"| {_labelled(_md(g['name']), _md(group_title(g, lang)), labels)} | {_num(g['score'])} "
              f"| {_num(g['max_score'])} |"
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

    for key, items in (("errors", [_labelled(e["id"], e["message"], labels) for e in report["errors"]]),
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
