"""Last stage of the pipeline: check a report (schema + sums), store it safely, render it for people and tools.

One job per module:

* `validation.py`: the report's JSON Schema and what it cannot say (sums, finite numbers, date-times);
* `files.py`: reading a report (validated) and writing files atomically;
* `escaping.py`: text that came from student code, made safe for terminals, XML and Markdown;
* `render.py`: JSON, Gradescope, JUnit, text and Markdown renderings of a valid report.

Renderers take the dict from `Report.to_dict()` and expect it valid (`validate_report` first); they never
trust the text inside it: feedback carries what student code printed or raised. Everything other modules use is
importable from `grader.formats` itself.
"""
from __future__ import annotations

from grader.formats.escaping import _LONE_SURROGATE, _md, _printable, _xml_text
from grader.formats.files import fsync_folder, load_report, write_bytes_atomic, write_report_atomic, write_text_atomic
from grader.formats.render import (FORMATS, _labels, _late_detail, _num, group_title, render, render_gradescope,
                                   render_json, render_junit, render_markdown, render_text)
from grader.formats.validation import SCHEMA_PATH, TOLERANCE, ReportError, _validator, validate_report

__all__ = [
    "FORMATS", "SCHEMA_PATH", "TOLERANCE", "ReportError", "group_title", "load_report", "render", "render_gradescope",
    "render_json", "render_junit", "render_markdown", "render_text", "validate_report", "write_report_atomic",
    "write_text_atomic", "write_bytes_atomic", "fsync_folder",
    # used by grader/submission.py, grader/pages.py and the tests
    "_LONE_SURROGATE", "_labels", "_late_detail", "_md", "_num", "_printable", "_validator", "_xml_text",
]
