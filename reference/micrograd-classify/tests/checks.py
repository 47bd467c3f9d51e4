"""Small helpers for the public tests (standard library only).

A failed check raises `Failed`, an AssertionError whose message explains the mistake in English, e.g.
    tanh backward is wrong: for x = 0.5 and upstream gradient 1.75 expected x.grad = 1.37628, got x.grad = 0.875
and whose `feedback` ({"id", "params"}, from diagnosis.py) lets `grader check` word it in English or Chinese,
exactly as the grader's hidden tests do.
"""
import os

import diagnosis


def covers(name, uses=()):
    """Mark a test with the student function it is about, e.g. @covers("Value.tanh"), and the other student
    functions it needs (`uses`): when one of those fails its own tests, `grader check` says so instead of
    blaming this one."""
    def mark(fn):
        fn.covers, fn.uses = name, tuple(uses)
        return fn
    return mark


class Failed(AssertionError):
    def __init__(self, feedback):
        self.feedback = feedback
        super().__init__(english(feedback))


def expect(found):
    """Raise the diagnosis's message, if it found something wrong."""
    __tracebackhide__ = True  # pytest then shows the test's line, not this helper
    if found is not None:
        raise Failed(found)


def expect_equal(got, expected, what, **inputs):
    """got must equal expected exactly (counts, types, flags); `what` is a message id of messages.toml."""
    __tracebackhide__ = True
    if got != expected:
        raise Failed(diagnosis.message("check_mismatch", what=diagnosis.message(what, **inputs),
                                       expected=expected, got=got))


def expect_close(got, expected, what, **inputs):
    """got must be a number (or list of numbers) within rel 1e-6 / abs 1e-9 of expected."""
    __tracebackhide__ = True
    numbers = [got] if isinstance(got, (int, float)) else got
    wanted = [expected] if isinstance(expected, (int, float)) else expected
    if not (isinstance(numbers, (list, tuple)) and all(isinstance(g, (int, float)) for g in numbers)
            and diagnosis.all_close(list(numbers), list(wanted))):
        raise Failed(diagnosis.message("check_mismatch", what=diagnosis.message(what, **inputs),
                                       expected=expected, got=got))


# ---------------------------------------------------------------------- the English text, for plain pytest

_TEXTS = {}


def english(feedback):
    """The message in English from ../messages.toml (Python 3.11+ reads TOML; before, the raw message)."""
    if not _TEXTS:
        try:
            import tomllib
            with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "messages.toml"),
                      "rb") as f:
                _TEXTS.update(tomllib.load(f))
        except (ImportError, OSError):
            return repr(feedback)
    return _word(feedback)


def _word(value):
    if isinstance(value, dict) and "id" in value:
        params = _Blank({k: _word(v) for k, v in value.get("params", {}).items()})
        params["hint_text"] = _TEXTS.get(f"{value['id']}.{params.get('hint')}", {}).get("en", "")
        return _TEXTS.get(value["id"], {}).get("en", value["id"]).format_map(params)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_word(v) for v in value) + "]"
    return str(value)


class _Blank(dict):
    def __missing__(self, key):
        return ""
