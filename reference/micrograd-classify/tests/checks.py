"""Small helpers for the public tests (standard library only).

A failed check raises AssertionError with a plain English message, e.g.
    tanh backward is wrong: for x = 0.5, upstream = 1.0 expected 0.786448, got 0.5379
and a `feedback` attribute {"id": "public.mismatch", "params": {"what", "inputs", "expected", "got"}}
so that `grader check --lang zh` can show the same failure in Chinese.
"""
import math

REL_TOL, ABS_TOL = 1e-6, 1e-9


def covers(name, uses=()):
    """Mark a test with the student function it is about, e.g. @covers("bce_with_logits"), and the other student
    functions it needs (`uses`): when one of those fails its own tests, `grader check` says so instead of
    blaming this one."""
    def mark(fn):
        fn.covers, fn.uses = name, tuple(uses)
        return fn
    return mark


class Mismatch(AssertionError):
    def __init__(self, what, expected, got, inputs):
        self.feedback = {"id": "public.mismatch",
                         "params": {"what": what, "inputs": inputs, "expected": expected, "got": got}}
        where = f" for {inputs}" if inputs else ""
        super().__init__(f"{what} is wrong:{where} expected {expected}, got {got}")


def show(x):
    """A short, readable form of a number, a list of numbers, or anything else."""
    if isinstance(x, bool) or x is None:
        return repr(x)
    if isinstance(x, int):
        return repr(x)
    if isinstance(x, float):
        return repr(x) if len(repr(x)) <= 10 else f"{x:.6g}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(show(v) for v in x) + "]"
    return repr(x)


def _inputs(inputs):
    return ", ".join(f"{k} = {show(v)}" for k, v in inputs.items())


def _close(got, expected):
    if isinstance(expected, (list, tuple)):
        return (isinstance(got, (list, tuple)) and len(got) == len(expected)
                and all(_close(g, e) for g, e in zip(got, expected)))
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return math.isclose(got, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _fail(what, expected, got, inputs):
    __tracebackhide__ = True
    shown_expected, shown_got = show(expected), show(got)
    if shown_expected == shown_got:  # too close for 6 digits but still not equal: show every digit
        shown_expected, shown_got = repr(expected), repr(got)
    raise Mismatch(what, shown_expected, shown_got, _inputs(inputs))


def expect_close(got, expected, what, **inputs):
    """got must be a number (or list of numbers) within rel 1e-6 / abs 1e-9 of expected."""
    __tracebackhide__ = True  # pytest then shows the test's line, not this helper
    if not _close(got, expected):
        _fail(what, expected, got, inputs)


def expect_equal(got, expected, what, **inputs):
    """got must equal expected exactly (counts, types, flags)."""
    __tracebackhide__ = True
    if got != expected:
        _fail(what, expected, got, inputs)
