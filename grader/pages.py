"""Pages for people: one feedback page per student, and one dashboard for the whole class.

Both take report dicts (`Report.to_dict()`, validated) and return one self-contained HTML file: inline CSS and
SVG, nothing loaded from anywhere. Everything shown (code, notebook, feedback) comes from students, so all of it
is escaped, and a Content-Security-Policy forbids any load or script that the page did not bring itself.
A feedback page shows only the report and the student's own code: nothing of the reference or the hidden tests.
"""
from __future__ import annotations

import ast
import base64
import hashlib
import html
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Hashable, Iterable, TypeVar
from urllib.parse import quote

from grader.formats import _LONE_SURROGATE, _labels as _report_labels, _late_detail, _num, _printable
from grader.submission import FILE_HEADER, Submission, cell_tags

BINS = 10  # histogram bars over 0..max_score
TOP_MESSAGES = 3  # most frequent feedback messages shown per test
ERRORED_TESTS_SHOWN = 3  # an errored student's failing tests named before "and N more"
_FEEDBACK_KEY = "grader_feedback_html"  # cell metadata the notebook template prints beneath a code cell

_LABELS = {
    "en": {
        "feedback_title": "Feedback", "groups": "Scores by group", "final": "Final score",
        "general": "General feedback", "general_hint": "Tests whose function was not found in your code.",
        "your_code": "Your code", "passed_of": "{passed} of {total} passed",
        "dashboard": "Class dashboard", "class_size": "Students", "mean": "Mean", "median": "Median",
        "errored_count": "Grading errors", "late_count": "Late",
        "histogram": "Score distribution", "histogram_hint": "Final scores (after late penalties) in 10 bins "
                                                             "from 0 to {max}.",
        "pass_rates": "Pass rate per test", "pass_rates_hint": "Lowest pass rate first.", "pass_rate": "Pass rate",
        "common": "Most frequent feedback", "common_hint": "Top 3 per test. Feedback with the same message is "
                                                           "counted together, with one example.",
        "count": "Students", "errored": "Grading errors", "errored_none": "No submission errored.",
        "reason": "Reason", "students": "All students", "links": "Links", "report_link": "report",
        "feedback_link": "feedback", "and_more": "and {n} more",
        "common_none": "Every student passed every test.", "ungraded": "not graded",
    },
    "zh": {
        "feedback_title": "反馈", "groups": "各部分得分", "final": "最终得分",
        "general": "综合反馈", "general_hint": "这些测试对应的函数在你的代码中没有找到。",
        "your_code": "你的代码", "passed_of": "{total} 个测试中通过 {passed} 个",
        "dashboard": "班级概览", "class_size": "学生人数", "mean": "平均分", "median": "中位数",
        "errored_count": "评分出错", "late_count": "迟交",
        "histogram": "分数分布", "histogram_hint": "最终得分（已扣迟交分），0 到 {max} 分为 10 段。",
        "pass_rates": "各测试通过率", "pass_rates_hint": "通过率从低到高排列。", "pass_rate": "通过率",
        "common": "最常见的反馈", "common_hint": "每个测试列出前 3 条；同一类消息合并计数，并给出一个示例。",
        "count": "人数", "errored": "评分出错的学生", "errored_none": "没有评分出错的提交。",
        "reason": "原因", "students": "全部学生", "links": "链接", "report_link": "报告",
        "feedback_link": "反馈", "and_more": "另有 {n} 项",
        "common_none": "所有学生都通过了所有测试。", "ungraded": "未评分",
    },
}


def _labels(lang: str) -> dict[str, str]:
    return {**_report_labels(lang), **_LABELS[lang]}  # the report renderers' labels check `lang`


def _h(text: object) -> str:
    """Student text as HTML text or attribute value: control characters shown as escapes, then escaped."""
    return html.escape(_printable(str(text)), quote=True)


def _href(path: str) -> str:
    """A relative link to a file named after a student: percent-encoded, so no name can become a
    `javascript:` URL or lose its tail at a `#` or `?`."""
    return _h(quote(path, safe="/"))


def _final(report: dict) -> float:
    return report["late"]["final_score"] if report["late"] is not None else report["score"]


# --- page shell and styles ---------------------------------------------------------------------------------

_BASE_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0969da;
  --passed: #1a7f37; --failed: #cf222e; --error: #9a6700; --timeout: #8250df;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Noto Sans Mono CJK SC", monospace; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5; font-size: 15px; font-family: var(--sans); }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 26px; margin: 0; font-weight: 600; }
h2 { font-size: 18px; margin: 0 0 4px; font-weight: 600; }
section { margin-top: 28px; }
.hint { color: var(--muted); font-size: 13px; margin: 0 0 10px; }
code, pre, .mono { font-family: var(--mono); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em;
  background: var(--soft); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.bar { display: inline-block; height: 8px; border-radius: 4px; background: var(--line); width: 120px;
  vertical-align: middle; overflow: hidden; }
.bar > .fill { display: block; height: 100%; background: var(--accent); }
.bar > .fill.high { background: #2da44e; } .bar > .fill.mid { background: #d4a72c; }
.bar > .fill.low { background: #e5534b; }
.pill { display: inline-block; min-width: 4.6em; padding: 0 7px; border-radius: 10px; font-size: 11px;
  font-weight: 600; line-height: 18px; text-align: center; vertical-align: 1px; }
.pill.passed { background: #dafbe1; color: var(--passed); } .pill.failed { background: #ffebe9; color: var(--failed); }
.pill.error { background: #fff8c5; color: var(--error); } .pill.timeout { background: #fbefff; color: var(--timeout); }
.banner { margin-top: 16px; padding: 10px 14px; border-radius: 6px; background: #fff1e5; color: #953800;
  border: 1px solid #ffd8b5; font-weight: 600; }
.problems { margin: 8px 0 0; padding-left: 20px; }
.problems li { margin: 4px 0; white-space: pre-wrap; }
"""

_FEEDBACK_CSS = """
header.summary { display: flex; justify-content: space-between; align-items: flex-end; gap: 24px;
  padding-bottom: 18px; border-bottom: 1px solid var(--line); }
.subtitle { color: var(--muted); margin-top: 4px; }
.total { text-align: right; }
.total .value { font-size: 34px; font-weight: 700; font-variant-numeric: tabular-nums; }
.total .of { font-size: 18px; color: var(--muted); }
.total .label { display: block; color: var(--muted); font-size: 13px; }
.total .late { display: block; color: #953800; font-size: 14px; }
#groups .bar { width: 100%; }
.file h2 { font-family: var(--mono); }
.source { border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
pre.code { margin: 0; padding: 4px 0; background: var(--soft); overflow-x: auto; line-height: 1.45; }
pre.code .ln { display: inline-block; width: 3.5em; padding-right: 1em; text-align: right; color: #8c959f;
  user-select: none; }
aside.feedback { margin: 0; padding: 10px 16px 12px; background: #fff; border: 1px solid var(--line);
  border-left: 4px solid var(--passed); border-radius: 6px; }
.source aside.feedback { border-radius: 0; border-right: 0; }
aside.feedback.has-problems { border-left-color: var(--failed); background: #fffafa; }
.feedback-head { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase;
  letter-spacing: .03em; margin-bottom: 4px; }
ul.tests { list-style: none; margin: 0; padding: 0; }
ul.tests li { padding: 3px 0; font-size: 14px; }
#not-passed ul.tests a { margin-left: 8px; }
ul.tests .name { margin-left: 8px; font-family: var(--mono); font-size: 13px; }
ul.tests .function { margin-left: 8px; padding: 0 6px; border-radius: 10px; background: var(--soft);
  color: var(--muted); font-size: 12px; font-family: var(--mono); }
ul.tests .points { float: right; color: var(--muted); font-variant-numeric: tabular-nums; }
ul.tests .message { margin: 4px 0 4px 5.4em; padding: 6px 10px; border-radius: 4px; background: #ffebe9;
  color: var(--fg); white-space: pre-wrap; font-size: 13px; }
"""

_NOTEBOOK_CSS = """
.notebook .cell { margin: 14px 0; }
.notebook .input_area { border: 1px solid var(--line); border-radius: 6px; background: var(--soft); overflow-x: auto; }
.notebook .highlight { background: var(--soft); border-radius: 6px; }
.notebook .highlight pre { margin: 0; padding: 10px 12px; overflow-x: auto; }
.notebook .output_subarea pre { margin: 6px 0; padding: 0 12px; white-space: pre-wrap; }
.notebook .output_area img { max-width: 100%; }
.notebook .text_cell_render { padding: 0 2px; }
.notebook .text_cell_render table { width: auto; }
.notebook .anchor-link { display: none; }
.notebook aside.feedback { margin-top: 6px; }
"""

_DASHBOARD_CSS = """
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 14px; margin-top: 20px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 26px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .value small { font-size: 14px; color: var(--muted); font-weight: 400; }
.card.alert .value { color: var(--failed); }
header nav { margin-top: 6px; font-size: 14px; }
header nav a { margin-right: 18px; }
#histogram svg { width: 100%; height: auto; display: block; }
#histogram rect.bar-rect { fill: var(--accent); }
#histogram line.axis { stroke: var(--line); }
#histogram text { font-size: 12px; fill: var(--muted); text-anchor: middle; }
#histogram text.count { fill: var(--fg); font-weight: 600; font-size: 13px; }
#errored td.reason { font-size: 13px; }
#errored td.reason div + div { margin-top: 4px; }
.tests-named { color: var(--muted); font-family: var(--mono); font-size: 12px; }
#common-feedback td.example { white-space: pre-wrap; font-size: 13px; }
#common-feedback tr.more td { border-top: 0; }
#pass-rates .bar { width: 140px; }
.pct { display: inline-block; width: 3.2em; text-align: right; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
#students tr.errored td:first-child { box-shadow: inset 3px 0 var(--failed); }
.ok { color: var(--muted); }
"""

# Click a column heading to sort by it (numbers as numbers); without JS the tables are sorted already.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headings = table.querySelectorAll("thead th");
  headings.forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headings.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-sort"), y = b.cells[column].getAttribute("data-sort");
        var order = isNaN(x) || isNaN(y) ? x.localeCompare(y) : x - y;
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _document(title: str, lang: str, css: str, body: str, script: str = "") -> str:
    """A whole page. The policy allows inline styles, data: images and only the one script given (by hash)."""
    scripts = "'none'"
    if script:
        scripts = "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
    policy = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src {scripts}; "
              "base-uri 'none'; form-action 'none'")
    return (f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_h(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
            + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n")


# --- feedback page -----------------------------------------------------------------------------------------

def feedback_page(report: dict, submission: Submission | None, lang: str = "en") -> str:
    """One student's page: scores, then their code with each test's feedback right after the function it is
    about (beneath the cell, for a notebook); tests about no function found in the code come first."""
    labels = _labels(lang)
    code, general, css = _code_section(submission, report["tests"], labels)
    body = _summary(report, labels)
    if general:
        body += (f'<section id="general"><h2>{labels["general"]}</h2>'
                 f'<p class="hint">{labels["general_hint"]}</p>{_feedback_block(general, labels)}</section>')
    body += code
    title = f"{report['student']} · {report['assignment']['name']} · {labels['feedback_title']}"
    return _document(title, lang, _BASE_CSS + _FEEDBACK_CSS + css, body)


def _code_section(submission: Submission | None, tests: list[dict], labels: dict[str, str]
                  ) -> tuple[str, list[dict], str]:
    """The student's code with the feedback placed in it, the tests not placed, and the CSS it needs."""
    if submission is None:
        return "", tests, ""
    if submission.kind == "notebook" and submission.notebook:
        try:
            return *_notebook_section(submission, tests, labels), _NOTEBOOK_CSS + _pygments_css()
        except Exception:  # nbconvert validates strictly and fails in many ways; the files as graded still show
            pass
    return *_files_section(submission.files, tests, labels), ""


def _summary(report: dict, labels: dict[str, str]) -> str:
    """Header (student, total, late penalty), the groups' scores and the submission's problems."""
    late = _late_detail(report, labels)
    total = (f'<div class="total"><span class="label">{labels["score"]}</span>'
             f'<span class="value">{_num(report["score"])}</span> '
             f'<span class="of">/ {_num(report["max_score"])}</span>')
    if late:
        total += (f'<span class="late">{labels["late"]}: {_h(late)}</span>'
                  f'<span class="label">{labels["final"]}: <strong>{_num(_final(report))}</strong></span>')
    parts = [f'<header class="summary" id="summary"><div><h1>{_h(report["student"])}</h1>'
             f'<div class="subtitle">{labels["assignment"]}: {_h(report["assignment"]["name"])} '
             f'v{_h(report["assignment"]["version"])}</div></div>{total}</div></header>']
    if report["status"] == "error":
        parts.append(f'<div class="banner">{labels["not_graded"]}</div>')
    rows = "".join(
        f'<tr><td>{_h(g["title"])} <span class="hint mono">{_h(g["name"])}</span></td>'
        f'<td style="width:40%">{_meter(g["score"], g["max_score"])}</td>'
        f'<td class="num">{_num(g["score"])} / {_num(g["max_score"])}</td></tr>' for g in report["groups"])
    parts.append(f'<section id="groups"><h2>{labels["groups"]}</h2><table><thead><tr><th>{labels["group"]}</th>'
                 f'<th></th><th class="num">{labels["score"]}</th></tr></thead><tbody>{rows}</tbody></table></section>')
    if report["errors"]:
        items = "".join(f'<li><code>{_h(e["id"])}</code> {_h(e["message"])}</li>' for e in report["errors"])
        parts.append(f'<section id="errors"><h2>{labels["errors"]}</h2><ul class="problems">{items}</ul></section>')
    not_passed = [t for t in report["tests"] if t["status"] != "passed"]
    if not_passed:  # each links to the test's feedback further down, next to the code it is about
        items = "".join(f'<li>{_pill(t["status"], labels)} <a href="#{_test_anchor(t)}"><code>{_h(t["name"])}</code>'
                        f'</a>{_function_chip(t)}</li>' for t in not_passed)
        parts.append(f'<section id="not-passed"><h2>{labels["not_passed"]}</h2>'
                     f'<ul class="tests">{items}</ul></section>')
    return "".join(parts)


def _meter(value: float, maximum: float, graded: bool = False) -> str:
    """A horizontal bar; `graded` colours it by how full it is (red under half, amber under 80 %)."""
    fraction = value / maximum if maximum else 0.0
    level = (" low" if fraction < 0.5 else " mid" if fraction < 0.8 else " high") if graded else ""
    return f'<span class="bar"><span class="fill{level}" style="width:{100 * fraction:.1f}%"></span></span>'


def _test_anchor(test: dict) -> str:
    return _h("test-" + test["name"])  # hidden tests' names are unique within a report


def _function_chip(test: dict) -> str:
    return f'<span class="function">{_h(test["function"])}</span>' if test["function"] else ""


def _feedback_block(tests: list[dict], labels: dict[str, str]) -> str:
    """Each test's status, name, function, points and feedback, those not passed first; red edge if any."""
    passed = sum(t["status"] == "passed" for t in tests)
    rows = []
    for test in sorted(tests, key=lambda t: t["status"] == "passed"):  # stable: report order within each
        status = test["status"]
        message = f'<div class="message">{_h(test["feedback"])}</div>' if test["feedback"] else ""
        rows.append(f'<li class="test" id="{_test_anchor(test)}" data-status="{status}">{_pill(status, labels)}'
                    f'<span class="name">{_h(test["name"])}</span>{_function_chip(test)}'
                    f'<span class="points">{_num(test["score"])} / {_num(test["max_score"])}</span>{message}</li>')
    problems = " has-problems" if passed < len(tests) else ""
    head = labels["passed_of"].format(passed=passed, total=len(tests))
    return (f'<aside class="feedback{problems}"><div class="feedback-head">{labels["feedback"]} · {head}</div>'
            f'<ul class="tests">{"".join(rows)}</ul></aside>')


def _definitions(source: str) -> dict[str, int]:
    """Last line of every top-level function and class and of every method, by name: "mse_loss", "Value",
    "Value.tanh". A later definition replaces an earlier one, as in Python. Code that does not parse has none."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):  # ValueError: null bytes; RecursionError: deep nesting
        return {}
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            assert node.end_lineno is not None  # ast.parse sets it
            found[node.name] = node.end_lineno
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    assert item.end_lineno is not None
                    found[f"{node.name}.{item.name}"] = item.end_lineno
    return found


Place = TypeVar("Place", bound=Hashable)  # a file's name, or a notebook cell's index


def _place_tests(tests: list[dict], places: dict[Place, dict[str, int]]
                 ) -> tuple[dict[tuple[Place, int], list[dict]], list[dict]]:
    """Tests by where their feedback goes: (place, last line of the method, else of its class, as a method
    may be inherited or missing). Tests about nothing found there are returned apart, for the general section."""
    placed: dict[tuple[Place, int], list[dict]] = defaultdict(list)
    general = []
    for test in tests:
        where = _locate(test["function"], places)
        if where is None:
            general.append(test)
        else:
            placed[where].append(test)
    return placed, general


def _locate(function: str | None, places: dict[Place, dict[str, int]]) -> tuple[Place, int] | None:
    """"Value.tanh": the method wherever it is, else the class Value; "mse_loss": the function."""
    if not function:
        return None
    for name in (function, function.split(".")[0]):
        for place, names in places.items():
            if name in names:
                return place, names[name]
    return None


def _code(lines: list[str], first: int) -> str:
    """Numbered source lines; the numbers cannot be selected, so copying copies only code."""
    if not lines:
        return ""
    numbered = "".join(f'<span class="ln">{n}</span>{_h(line)}\n' for n, line in enumerate(lines, first))
    return f'<pre class="code">{numbered}</pre>'


def _files_section(files: dict[str, str], tests: list[dict], labels: dict[str, str]) -> tuple[str, list[dict]]:
    placed, general = _place_tests(tests, {name: _definitions(source) for name, source in files.items()})
    sections = []
    for name, source in files.items():
        lines = source.splitlines()
        parts, start = [], 0
        for end in sorted(line for place, line in placed if place == name):
            parts += [_code(lines[start:end], start + 1), _feedback_block(placed[(name, end)], labels)]
            start = end
        parts.append(_code(lines[start:], start + 1))
        sections.append(f'<section class="file" id="file-{_h(name)}"><h2>{_h(name)}</h2>'
                        f'<div class="source">{"".join(parts)}</div></section>')
    return "".join(sections), general


def _notebook_section(submission: Submission, tests: list[dict], labels: dict[str, str]) -> tuple[str, list[dict]]:
    import nbformat  # only notebook pages pay for nbformat and nbconvert

    # Reading it back normalises any JSON shape (list sources, older versions) and gives a copy to annotate.
    notebook = _inputs_only(nbformat.reads(json.dumps(submission.notebook), as_version=4))
    cells = _code_cells(notebook, submission.files)
    # Searched from the last cell: a function defined again later replaces the earlier one, as when run.
    placed, general = _place_tests(tests, {i: _definitions(cells[i]) for i in reversed(cells)})
    by_cell: dict[int, list[dict]] = defaultdict(list)
    for (index, _line), mine in placed.items():
        by_cell[index] += mine
    for index, cell in enumerate(notebook.cells):
        # Set on every cell, so a value the student planted in the metadata is never printed.
        cell.metadata[_FEEDBACK_KEY] = _feedback_block(by_cell[index], labels) if index in by_cell else ""
    body = _notebook_html(notebook)
    return f'<section id="notebook" class="notebook"><h2>{labels["your_code"]}</h2>{body}</section>', general


def _inputs_only(notebook):
    """The cells' sources and tags, nothing else: outputs, execution counts, attachments and other metadata are
    the student's too, and an output's metadata reaches nbconvert's HTML as attributes (a fake score drawn over
    the page). What was graded is the code, so the code is what the page shows."""
    from nbformat import from_dict

    notebook.metadata = from_dict({"language_info": {"name": "python", "pygments_lexer": "ipython3"}})
    for cell in notebook.cells:
        cell.metadata = from_dict({"tags": cell_tags(cell)} if cell_tags(cell) else {})
        cell.pop("attachments", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def _code_cells(notebook, files: Iterable[str]) -> dict[int, str]:
    """Index -> Python source of the code cells holding the submitted files, chosen as grader.submission
    chooses them (tagged with a file's name, else a first line naming the file), magics commented out."""
    files = set(files)
    tags = {Path(name).stem for name in files}
    cells = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        header = FILE_HEADER.match(lines[0]) if lines else None
        if set(cell_tags(cell)) & tags or (header and header.group("name") in files):
            cells[index] = "\n".join("# " + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    return cells


_NOTEBOOK_TEMPLATE = ("{%- extends 'index.html.j2' -%}\n"
                      "{% block codecell %}{{ super() }}{{ cell.metadata.get('" + _FEEDBACK_KEY + "', '') }}"
                      "{% endblock codecell %}")


def _notebook_html(notebook) -> str:
    """nbconvert's "basic" template (the body only: no MathJax, require.js or other CDN loads) with each code
    cell's feedback printed beneath it. Markdown, raw cells and HTML outputs go through _clean_html."""
    body, _resources = _notebook_exporter().from_notebook_node(notebook)
    return _LONE_SURROGATE.sub("\ufffd", body)  # notebook JSON can carry lone surrogates; UTF-8 cannot


@lru_cache(maxsize=1)
def _notebook_exporter():
    """One exporter per process: building one compiles its Jinja templates (~0.07 s), pages in a batch reuse it."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic", template_file="grader_feedback.html.j2",
                            extra_loaders=[DictLoader({"grader_feedback.html.j2": _NOTEBOOK_TEMPLATE})],
                            sanitize_html=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_filter("clean_html", _clean_html)
    return exporter


_ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})


_GENERIC_ATTRIBUTES = {"class", "id", "title", "alt", "colspan", "rowspan", "align", "width", "height"}


def _allowed_attribute(tag: str, name: str, value: str) -> str | None:
    if name in _GENERIC_ATTRIBUTES:
        return value
    if tag == "a" and name == "href":
        return None if value.strip().lower().startswith("data:") else value
    return value if tag == "img" and name == "src" and value.startswith("data:image/") else None  # no network


def _clean_html(text) -> str:
    """Replaces nbconvert's clean_html filter, whose allow-list escapes even <p> and <h1> in Markdown cells:
    formatting stays; scripts, styles, forms, frames and images from the network are dropped. nh3 (Rust's
    ammonia) rather than the deprecated bleach: a notebook page renders several times faster."""
    import nh3

    text = text.decode() if isinstance(text, bytes) else str(text)
    return nh3.clean(text, tags=set(_ALLOWED_TAGS),
                     attributes={"*": _GENERIC_ATTRIBUTES, "a": {"href"}, "img": {"src"}},
                     attribute_filter=_allowed_attribute, url_schemes={"http", "https", "mailto", "data"},
                     strip_comments=True, link_rel=None)


def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter  # installed with nbconvert

    return HtmlFormatter(style="default").get_style_defs(".notebook .highlight")


# --- dashboard ---------------------------------------------------------------------------------------------

@dataclass
class _TestStats:
    name: str
    group: str
    passed: int = 0
    total: int = 0
    messages: Counter = field(default_factory=Counter)  # message id (else feedback text) -> students
    examples: dict = field(default_factory=dict)  # same key -> the first test result with it

    @property
    def rate(self) -> float:
        return self.passed / self.total


@dataclass
class _Errored:
    graded: bool  # False: the report's status is "error", nothing ran
    errors: list[str]  # the report's submission-level errors
    tests: dict[tuple[str, str], list[str]]  # (status, feedback) -> the tests that errored or timed out with it


def dashboard(reports: list[dict], links: dict[str, dict[str, str]], lang: str = "en", title: str = "") -> str:
    """The class at a glance: size, mean and median, a histogram, per-test pass rates and most frequent feedback,
    who could not be graded and why, and every student with links to their report and feedback page.
    `links`: student -> {"report": "alice.json", "feedback": "alice.html"} (relative hrefs; either may be absent)."""
    labels = _labels(lang)
    finals = [_final(r) for r in reports]
    max_score = max((r["max_score"] for r in reports), default=0.0)
    stats = _test_stats(reports)
    errored = _errored(reports)
    if not title:
        title = f"{reports[0]['assignment']['name']} · {labels['dashboard']}" if reports else labels["dashboard"]
    sections = [("histogram", labels["histogram"]), ("errored", labels["errored"]),
                ("pass-rates", labels["pass_rates"]), ("common-feedback", labels["common"]),
                ("students", labels["students"])]
    body = (f'<header><h1>{_h(title)}</h1><nav>'
            + "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in sections) + '</nav></header>'
            + _cards(reports, finals, max_score, len(errored), labels)
            + f'<section id="histogram"><h2>{labels["histogram"]}</h2>'
              f'<p class="hint">{labels["histogram_hint"].format(max=_num(max_score))}</p>'
              f'{_histogram(finals, max_score, labels)}</section>'
            + _errored_section(errored, labels) + _pass_rates(stats, labels) + _common_feedback(stats, labels)
            + _students(reports, links, errored, labels))
    return _document(title, lang, _BASE_CSS + _DASHBOARD_CSS, body, _SORT_JS)


def _cards(reports: list[dict], finals: list[float], max_score: float, errored: int, labels: dict[str, str]) -> str:
    late = sum(1 for r in reports if r["late"] is not None and r["late"]["days_late"] > 0)
    out_of = f" / {_num(max_score)}" if finals else ""
    cards = [  # label, value, suffix, css class
        (labels["class_size"], str(len(reports)), "", "card"),
        (labels["mean"], _num(statistics.mean(finals)) if finals else "–", out_of, "card"),
        (labels["median"], _num(statistics.median(finals)) if finals else "–", out_of, "card"),
        (labels["errored_count"], str(errored), "", "card alert" if errored else "card"),
        (labels["late_count"], str(late), "", "card"),
    ]
    return ('<div class="cards" id="summary">'
            + "".join(f'<div class="{css}"><div class="label">{label}</div>'
                      f'<div class="value">{value}<small>{suffix}</small></div></div>'
                      for label, value, suffix, css in cards) + "</div>")


def _test_stats(reports: list[dict]) -> list[_TestStats]:
    """Per test over every report that ran it, lowest pass rate first."""
    stats: dict[str, _TestStats] = {}
    for report in reports:
        for test in report["tests"]:
            entry = stats.setdefault(test["name"], _TestStats(test["name"], test["group"]))
            entry.total += 1
            if test["status"] == "passed":
                entry.passed += 1
                continue
            # Feedback quotes each student's own numbers: the message id says which kind of mistake it is.
            key = ("id", test["message"]["id"]) if test.get("message") else ("text", test["feedback"])
            entry.messages[key] += 1
            entry.examples.setdefault(key, test)
    return sorted(stats.values(), key=lambda s: (s.rate, s.group, s.name))


def _bin(score: float, max_score: float) -> int:
    if max_score <= 0:
        return 0
    # 1e-9: a float sum a hair under a bin's lower edge (69.9999999 for 70) still belongs to that bin.
    return min(BINS - 1, max(0, int(score * BINS / max_score + 1e-9)))


def _histogram(finals: list[float], max_score: float, labels: dict[str, str]) -> str:
    """Inline SVG bars, one per tenth of max_score; the last bin holds full marks too."""
    counts = [0] * BINS
    for score in finals:
        counts[_bin(score, max_score)] += 1
    width, height, top, bottom = 1100, 230, 22, 34
    slot = width / BINS
    tallest = max(counts) or 1
    parts = [f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" class="axis"/>']
    for i, count in enumerate(counts):
        span = f"{_num(max_score * i / BINS)}–{_num(max_score * (i + 1) / BINS)}"
        bar = (height - top - bottom) * count / tallest
        x, y, middle = i * slot, height - bottom - bar, i * slot + slot / 2
        label = f'<text class="count" x="{middle:.1f}" y="{y - 6:.1f}">{count}</text>' if count else ""
        parts.append(f'<g class="bin" data-bin="{i}" data-count="{count}"><title>{span}: {count}</title>'
                     f'<rect class="bar-rect" x="{x + 6:.1f}" y="{y:.1f}" width="{slot - 12:.1f}" height="{bar:.1f}"'
                     f' rx="3"/>{label}<text x="{middle:.1f}" y="{height - bottom + 20}">{span}</text></g>')
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{labels["histogram"]}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')


def _errored(reports: list[dict]) -> dict[str, _Errored]:
    """Students whose report could not be graded or has a test that errored or timed out."""
    errored = {}
    for report in reports:
        broken: dict[tuple[str, str], list[str]] = defaultdict(list)
        for test in report["tests"]:
            if test["status"] in ("error", "timeout"):
                broken[(test["status"], test["feedback"])].append(test["name"])
        if report["status"] == "error" or broken:
            errored[report["student"]] = _Errored(report["status"] != "error", [e["message"] for e in report["errors"]],
                                                  dict(broken))
    return errored


def _pill(status: str, labels: dict[str, str]) -> str:
    return f'<span class="pill {status}">{labels[status]}</span>'


def _errored_section(errored: dict[str, _Errored], labels: dict[str, str]) -> str:
    head = f'<section id="errored"><h2>{labels["errored"]}</h2>'
    if not errored:
        return f'{head}<p class="ok">{labels["errored_none"]}</p></section>'
    rows = []
    for student, problem in sorted(errored.items()):
        lines = [f'<div>{_h(message)}</div>' for message in problem.errors]
        if not problem.graded:
            lines[:1] = [f'<div><span class="pill failed">{labels["ungraded"]}</span> '
                         f'{_h(problem.errors[0]) if problem.errors else ""}</div>']
        for (status, feedback), names in problem.tests.items():
            shown = ", ".join(_h(n) for n in names[:ERRORED_TESTS_SHOWN])
            if len(names) > ERRORED_TESTS_SHOWN:
                shown += " " + labels["and_more"].format(n=len(names) - ERRORED_TESTS_SHOWN)
            lines.append(f'<div>{_pill(status, labels)} {_h(feedback)} <span class="tests-named">{shown}</span></div>')
        rows.append(f'<tr data-student="{_h(student)}"><td>{_h(student)}</td>'
                    f'<td class="reason">{"".join(lines)}</td></tr>')
    return (f'{head}<table><thead><tr><th style="width:20%">{labels["student"]}</th><th>{labels["reason"]}</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


def _cell(content: str, sort: object, numeric: bool = False) -> str:
    """A table cell with the value the sorting script compares."""
    align = ' class="num"' if numeric else ""
    return f'<td{align} data-sort="{_h(sort)}">{content}</td>'


def _pass_rates(stats: list[_TestStats], labels: dict[str, str]) -> str:
    rows = "".join(
        f'<tr data-test="{_h(s.name)}">{_cell(f"<code>{_h(s.name)}</code>", s.name)}{_cell(_h(s.group), s.group)}'
        f'{_cell(f"{s.passed} / {s.total}", s.passed, True)}'
        f'{_cell(_meter(s.passed, s.total, graded=True) + f"<span class=pct>{100 * s.rate:.0f}%</span>", s.rate, True)}'
        f'</tr>' for s in stats)
    return (f'<section id="pass-rates"><h2>{labels["pass_rates"]}</h2><p class="hint">{labels["pass_rates_hint"]}</p>'
            f'<table class="sortable"><thead><tr><th>{labels["test"]}</th><th>{labels["group"]}</th>'
            f'<th class="num">{labels["passed"]}</th><th class="num">{labels["pass_rate"]}</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></section>')


def _common_feedback(stats: list[_TestStats], labels: dict[str, str]) -> str:
    rows = []
    for s in stats:
        top = s.messages.most_common(TOP_MESSAGES)
        for rank, (key, count) in enumerate(top):
            example = s.examples[key]
            name = f'<td rowspan="{len(top)}"><code>{_h(s.name)}</code></td>' if rank == 0 else ""
            rows.append(f'<tr class="{"first" if rank == 0 else "more"}" data-test="{_h(s.name)}">{name}'
                        f'<td class="num">{count}</td><td class="example">{_pill(example["status"], labels)} '
                        f'{_h(example["feedback"])}</td></tr>')
    table = (f'<table><thead><tr><th>{labels["test"]}</th><th class="num">{labels["count"]}</th>'
             f'<th>{labels["feedback"]}</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
             if rows else f'<p class="ok">{labels["common_none"]}</p>')
    return (f'<section id="common-feedback"><h2>{labels["common"]}</h2><p class="hint">{labels["common_hint"]}</p>'
            f'{table}</section>')


def _students(reports: list[dict], links: dict[str, dict[str, str]], errored: dict[str, _Errored],
              labels: dict[str, str]) -> str:
    groups: dict[str, dict] = {}
    for report in reports:
        for group in report["groups"]:
            groups.setdefault(group["name"], group)
    head = "".join(f'<th class="num" title="{_h(g["title"])}">{_h(name)} <small>/ {_num(g["max_score"])}</small></th>'
                   for name, g in groups.items())
    rows = []
    for report in sorted(reports, key=lambda r: r["student"]):
        student = report["student"]
        scores = {g["name"]: g["score"] for g in report["groups"]}
        penalty = report["late"]["penalty_percent"] if report["late"] is not None else 0.0
        hrefs = links.get(student, {})
        anchors = " · ".join(f'<a href="{_href(hrefs[kind])}" class="{kind}-link">{labels[kind + "_link"]}</a>'
                             for kind in ("feedback", "report") if hrefs.get(kind))
        marked = ' class="errored"' if student in errored else ""
        rows.append(
            f'<tr data-student="{_h(student)}"{marked}>{_cell(_h(student), student)}'
            + "".join(_cell(_num(scores[name]) if name in scores else "–", scores.get(name, -1), True)
                      for name in groups)
            + _cell(f"{_num(report['score'])} / {_num(report['max_score'])}", report["score"], True)
            + _cell(f"−{_num(penalty)}%" if penalty else "–", penalty, True)
            + _cell(f"<strong>{_num(_final(report))}</strong>", _final(report), True)
            + _cell(anchors, student) + "</tr>")
    return (f'<section id="students"><h2>{labels["students"]}</h2><table class="sortable"><thead><tr>'
            f'<th>{labels["student"]}</th>{head}<th class="num">{labels["total"]}</th>'
            f'<th class="num">{labels["late"]}</th><th class="num">{labels["final"]}</th><th>{labels["links"]}</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></section>')
