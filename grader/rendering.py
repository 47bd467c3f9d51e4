"""The Jinja2 environments that render the grader's pages and generated texts (templates in grader/templates/,
CSS and JS in grader/static/). Each is built once per process: templates are compiled on first use and cached, so
a batch worker renders every student's page from the same compiled template.

* `html_environment()`: HTML pages. Autoescaped; every value is first made printable (control characters shown as
  escapes, as in the other report formats), so nothing a student wrote is written into a page as markup or as an
  invisible character. Only `Markup` (HTML the grader built itself, or sanitised by nh3) goes in as it is.
* `text_environment()`: shell scripts, Markdown and TOML. Not escaped; shell templates put every value through the
  `shquote` filter (shlex.quote) in code and `shcomment` (one line) in comments, TOML ones through `toml`.

Both use StrictUndefined: a misspelt name in a template is an error, never an empty string.
"""
from __future__ import annotations

import json
import shlex
from functools import lru_cache
from importlib import resources
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from grader.formats import _num, _printable, group_title


def _printable_value(value: object) -> object:
    """Every `{{ value }}` of a page before escaping: Markup passes, anything else becomes printable text."""
    return value if isinstance(value, Markup) else _printable(str(value))


def _urlquote(path: str) -> str:
    """A relative link to a file named after a student: percent-encoded, so no name can become a `javascript:`
    URL or lose its tail at a `#` or `?`."""
    return quote(path, safe="/")


def _shquote(value: object) -> str:
    """A word of shell code: quoted unless it is plainly safe (shlex.quote)."""
    return shlex.quote(str(value))


def _shcomment(value: object) -> str:
    """Text inside a shell comment: one line, so it cannot end the comment and start a command."""
    return " ".join(str(value).split())


@lru_cache(maxsize=1)
def html_environment() -> Environment:
    env = Environment(loader=PackageLoader("grader", "templates"), autoescape=True, undefined=StrictUndefined,
                      finalize=_printable_value, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                      auto_reload=False)
    env.filters["num"] = _num
    env.filters["urlquote"] = _urlquote
    env.filters["group_title"] = group_title  # {{ group|group_title(lang) }}: its title in the page's language
    return env


@lru_cache(maxsize=1)
def text_environment() -> Environment:
    env = Environment(loader=PackageLoader("grader", "templates"), autoescape=False, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False)
    env.filters["shquote"] = _shquote
    env.filters["shcomment"] = _shcomment
    env.filters["toml"] = json.dumps  # a JSON string or list of strings is a valid TOML one
    return env


@lru_cache(maxsize=None)
def static_text(name: str) -> str:
    """A file of grader/static/ (CSS or JS inlined into a page), read once per process."""
    return resources.files("grader").joinpath("static", name).read_text(encoding="utf-8")
