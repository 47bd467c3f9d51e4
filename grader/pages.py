"""Pages for people: one feedback page per student, and one dashboard for the whole class.

Both take report dicts (`Report.to_dict()`, validated) and return one self-contained HTML file: inline CSS and
SVG, nothing loaded from anywhere. Everything shown (code, notebook, feedback) comes from students, so all of it
is escaped (the Jinja templates of grader/templates/ autoescape, grader/rendering.py), and a Content-Security-Policy
forbids any load or script that the page did not bring itself. Styles and the dashboard's script are grader/static/.
A feedback page shows only the report and the student's own code: nothing of the reference or the hidden tests.
"""
from __future__ import annotations

import ast
import base64
import hashlib
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Hashable, Iterable, TypeVar

from jinja2 import PackageLoader, Template
from markupsafe import Markup

from grader import messages
from grader.formats import _LONE_SURROGATE, _labels as _report_labels, _late_detail, _num
from grader.gradebook import BINS, Failure, report_status, score_bin
from grader.report import final_score
from grader.rendering import html_environment, static_text
from grader.submission import FILE_HEADER, Submission, cell_tags

TOP_MESSAGES = 3  # most frequent feedback messages shown per test
ERRORED_TESTS_SHOWN = 3  # an errored student's failing tests named before "and N more"
_FEEDBACK_KEY = "grader_feedback_html"  # cell metadata the notebook template prints beneath a code cell

def _labels(lang: str) -> dict[str, str]:
    """The pages' words in `lang` (grader/messages.toml, "page." ids) over those of the report formats."""
    return {**_report_labels(lang), **messages.labels("page", lang)}  # the report formats' labels check `lang`


# --- page shell and styles ---------------------------------------------------------------------------------
# Templates in grader/templates/ (base.html.j2: the head and the Content-Security-Policy), styles and the sorting
# script in grader/static/, inlined into each page.

def _template(name: str) -> Template:
    return html_environment().get_template(name)


def _macros():
    """The shared pieces of macros.html.j2, callable from Python (each returns Markup)."""
    return _template("macros.html.j2").module


@lru_cache(maxsize=None)
def _css(*names: str) -> str:
    return "".join("\n" + static_text(name) for name in names)


@lru_cache(maxsize=1)
def _sort_script() -> tuple[Markup, str]:
    """Click a column heading to sort by it (numbers as numbers); without JS the tables are sorted already.
    The script and its sha256 (base64), which the page's policy allows, and only it."""
    script = "\n" + static_text("sort.js")
    return Markup(script), base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def _page(template: str, title: str, lang: str, css: str, script: Markup | None = None, script_hash: str = "",
          **values: object) -> str:
    """A whole page. The policy allows inline styles, data: images and only the one script given (by hash)."""
    return _template(template).render(title=title, lang=lang, css=Markup(css), script=script or "",
                                      script_hash=script_hash, **values)


# --- feedback page -----------------------------------------------------------------------------------------

def feedback_page(report: dict, submission: Submission | None, lang: str = "en") -> str:
    """One student's page: scores, then their code with each test's feedback right after the function it is
    about (beneath the cell, for a notebook); tests about no function found in the code come first."""
    labels = _labels(lang)
    code, general, css = _code_section(submission, report["tests"], labels)
    title = f"{report['student']} · {report['assignment']['name']} · {labels['feedback_title']}"
    return _page("feedback.html.j2", title, lang, _css("base.css", "feedback.css") + css, report=report,
                 labels=labels, late=_late_detail(report, labels), final=final_score(report), general=general,
                 code=code, adjustment=report.get("adjustment"),
                 adjustment_words=_adjustment_words(report.get("adjustment"), labels))


def _adjustment_words(adjustment: dict | None, labels: dict[str, str]) -> list[str]:
    """What course staff changed, in words: the extension, the points or the final score (the note apart)."""
    if not adjustment:
        return []
    parts = [labels["extension"].format(days=_num(adjustment["extra_days"]))] if adjustment["extra_days"] else []
    if adjustment["points"] is not None:
        parts.append(labels["points_added"].format(points=f"{adjustment['points']:+g}"))
    if adjustment["final"] is not None:
        parts.append(labels["final_set"].format(final=_num(adjustment["final"])))
    return parts


def _code_section(submission: Submission | None, tests: list[dict], labels: dict[str, str]
                  ) -> tuple[str, list[dict], str]:
    """The student's code with the feedback placed in it, the tests not placed, and the CSS it needs."""
    if submission is None:
        return "", tests, ""
    if submission.kind == "notebook" and submission.notebook:
        try:
            return *_notebook_section(submission, tests, labels), _css("notebook.css") + _pygments_css()
        except Exception:  # nbconvert validates strictly and fails in many ways; the files as graded still show
            pass
    return *_files_section(submission.files, tests, labels), ""


def _feedback_block(tests: list[dict], labels: dict[str, str]) -> str:
    """Each test's status, name, function, points and feedback, those not passed first; red edge if any."""
    return _macros().feedback_block(tests, labels)


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


def _files_section(files: dict[str, str], tests: list[dict], labels: dict[str, str]) -> tuple[str, list[dict]]:
    placed, general = _place_tests(tests, {name: _definitions(source) for name, source in files.items()})
    sections = []
    for name, source in files.items():
        lines = source.splitlines()
        bad = syntax_error_line(source, name)
        parts: list[tuple[str, object]] = []
        start = 0
        for end in sorted(line for place, line in placed if place == name):
            parts += [("code", (lines[start:end], start + 1, *bad)), ("feedback", placed[(name, end)])]
            start = end
        parts.append(("code", (lines[start:], start + 1, *bad)))
        sections.append((name, parts))
    return _macros().files_section(sections, labels), general


def syntax_error_line(source: str, name: str) -> tuple[int, str] | tuple[()]:
    """The line Python cannot parse in a .py file and why, for the listing to mark it (parsed, never run)."""
    if not name.endswith(".py"):
        return ()
    try:
        ast.parse(source, name)
    except SyntaxError as error:
        return (error.lineno or 0, f"{type(error).__name__}: {error.msg}")
    except (ValueError, RecursionError):  # null bytes, deep nesting: nothing to point at
        pass
    return ()


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
    return _macros().notebook_section(Markup(_notebook_html(notebook)), labels), general


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


def _notebook_html(notebook) -> str:
    """nbconvert's "basic" template (the body only: no MathJax, require.js or other CDN loads) with each code
    cell's feedback printed beneath it. Markdown, raw cells and HTML outputs go through _clean_html."""
    body, _resources = _notebook_exporter().from_notebook_node(notebook)
    return _LONE_SURROGATE.sub("\ufffd", body)  # notebook JSON can carry lone surrogates; UTF-8 cannot


@lru_cache(maxsize=1)
def _notebook_exporter():
    """One exporter per process: building one compiles its Jinja templates (~0.07 s), pages in a batch reuse it."""
    from nbconvert import HTMLExporter

    # grader/templates/nbconvert/grader_feedback.html.j2 prints each code cell's _FEEDBACK_KEY beneath it.
    exporter = HTMLExporter(template_name="basic", template_file="grader_feedback.html.j2",
                            extra_loaders=[PackageLoader("grader", "templates/nbconvert")],
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


@lru_cache(maxsize=1)
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


def dashboard(reports: list[dict], links: dict[str, dict[str, str]], lang: str = "en", title: str = "",
              failing_links: dict[str, str] | None = None, similarity_link: str | None = None) -> str:
    """The class at a glance: size, mean and median, a histogram, per-test pass rates and most frequent feedback,
    who could not be graded and why, and every student with links to their report and feedback page.
    `links`: student -> {"report": "alice.json", "feedback": "alice.html"} (relative hrefs; either may be absent);
    `failing_links`: test name -> the page listing who did not pass it; `similarity_link`: `grader similarity`'s
    page (grader batch --similarity), linked from the header when given."""
    labels = _labels(lang)
    finals = [final_score(r) for r in reports]
    max_score = max((r["max_score"] for r in reports), default=0.0)
    stats = _test_stats(reports)
    errored = _errored(reports)
    if not title:
        title = f"{reports[0]['assignment']['name']} · {labels['dashboard']}" if reports else labels["dashboard"]
    script, script_hash = _sort_script()
    return _page("dashboard.html.j2", title, lang, _css("base.css", "dashboard.css"), script, script_hash,
                 labels=labels, cards=_cards(reports, finals, max_score, labels), max_score=max_score,
                 histogram=_histogram(finals, max_score, labels), errored=sorted(errored.items()),
                 tests_shown=ERRORED_TESTS_SHOWN, stats=stats, failing_links=failing_links or {},
                 similarity_link=similarity_link,
                 common=[(s, [(s.examples[key], count) for key, count in s.messages.most_common(TOP_MESSAGES)])
                         for s in stats if s.messages],
                 **_students(reports, links, errored, labels))


def _cards(reports: list[dict], finals: list[float], max_score: float, labels: dict[str, str]
           ) -> list[tuple[str, str, str, str]]:
    """Grading errors count the submissions the grader could not grade; student problems, those whose own
    problem (not a submission, a module that does not import, ...) cost points (grader.gradebook's statuses)."""
    late = sum(1 for r in reports if r["late"] is not None and r["late"]["days_late"] > 0)
    statuses = Counter(report_status(r) for r in reports)
    out_of = f" / {_num(max_score)}" if finals else ""
    return [  # label, value, suffix, css class
        (labels["class_size"], str(len(reports)), "", "card"),
        (labels["mean"], _num(statistics.mean(finals)) if finals else "–", out_of, "card"),
        (labels["median"], _num(statistics.median(finals)) if finals else "–", out_of, "card"),
        (labels["errored_count"], str(statuses["error"]), "", "card alert" if statuses["error"] else "card"),
        (labels["problems_count"], str(statuses["problem"]), "", "card"),
        (labels["late_count"], str(late), "", "card"),
    ]


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


def _histogram(finals: list[float], max_score: float, labels: dict[str, str]) -> dict:
    """The geometry of inline SVG bars, one per tenth of max_score; the last bin holds full marks too."""
    counts = [0] * BINS
    for score in finals:
        counts[score_bin(score, max_score)] += 1
    width, height, top, bottom = 1100, 230, 22, 34
    slot = width / BINS
    tallest = max(counts) or 1
    bins = []
    for i, count in enumerate(counts):
        bar = (height - top - bottom) * count / tallest
        x, y, middle = i * slot, height - bottom - bar, i * slot + slot / 2
        span = f"{_num(max_score * i / BINS)}–{_num(max_score * (i + 1) / BINS)}"
        bins.append({"index": i, "count": count, "span": span,
                     "x": f"{x + 6:.1f}", "y": f"{y:.1f}", "width": f"{slot - 12:.1f}", "height": f"{bar:.1f}",
                     "middle": f"{middle:.1f}", "count_y": f"{y - 6:.1f}", "label_y": height - bottom + 20})
    return {"width": width, "height": height, "axis_y": height - bottom, "bins": bins}


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


def _students(reports: list[dict], links: dict[str, dict[str, str]], errored: dict[str, _Errored],
              labels: dict[str, str]) -> dict:
    """The students table: every group's column (as first seen), and a row per student by name."""
    groups: dict[str, dict] = {}
    for report in reports:
        for group in report["groups"]:
            groups.setdefault(group["name"], group)
    rows = [{"student": report["student"], "errored": report["student"] in errored,
             "scores": {g["name"]: g["score"] for g in report["groups"]}, "score": report["score"],
             "max_score": report["max_score"],
             "penalty": report["late"]["penalty_percent"] if report["late"] is not None else 0.0,
             "final": final_score(report), "links": links.get(report["student"], {})}
            for report in sorted(reports, key=lambda r: r["student"])]
    return {"groups": groups, "students": rows}


def failing_page(test: str, failures: list[Failure], lang: str, students_href: str) -> str:
    """Who did not pass `test`: each student with the status and the feedback's first line, linked to their
    feedback page (`students_href` + <student>.html, at the test)."""
    labels = _labels(lang)
    return _page("failing.html.j2", labels["failing_title"].format(test=test), lang, _css("base.css", "dashboard.css"),
                 labels=labels, test=test, failures=failures, students_href=students_href)
