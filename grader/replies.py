"""Shapes of what comes out of a sandbox, checked before anything in the grader uses it.

Everything a sandboxed process sends is the student's: a reply to a request, a question asked in the middle
of one, an exception's description. Each is checked against a declared shape (finite numbers, bounded lists
and texts, strings only from a fixed set, no extra keys) and turned into plain Python values; a reply that
breaks its shape raises `BadReply`, which the caller turns into the student's wrong answer. The path and the
reason in a `BadReply` are the grader's words (names from the shape), never text from the reply.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any


BIG = 2 ** 63  # a larger int is no float a student could mean


class BadReply(ValueError):
    """A sandbox's reply does not have its declared shape."""

    def __init__(self, path: str, why: str):
        super().__init__(f"{path} {why}" if path else why)
        self.path, self.why = path, why


class Shape:
    def check(self, value: Any, path: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Shape):
    """A finite float (ints are numbers too; bools are not)."""

    def check(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadReply(path, "was not a number")
        if isinstance(value, int) and abs(value) > BIG:
            raise BadReply(path, "was not a finite number")
        value = float(value)
        if not math.isfinite(value):
            raise BadReply(path, "was not a finite number")
        return value


@dataclass(frozen=True)
class Integer(Shape):
    low: int = -(2 ** 31)
    high: int = 2 ** 31

    def check(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadReply(path, "was not a whole number")
        if not self.low <= value <= self.high:
            raise BadReply(path, f"was not between {self.low} and {self.high}")
        return value


@dataclass(frozen=True)
class Boolean(Shape):
    def check(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise BadReply(path, "was not true or false")
        return value


@dataclass(frozen=True)
class Text(Shape):
    """A string of at most `length` characters; with `choices`, one of them (else `fallback`, if given)."""

    length: int = 200
    choices: frozenset[str] | None = None
    fallback: str | None = None

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise BadReply(path, "was not a string")
        if self.choices is not None and value not in self.choices:
            if self.fallback is None:
                raise BadReply(path, "was not one of the expected names")
            return self.fallback
        if len(value) > self.length:
            raise BadReply(path, f"was longer than {self.length} characters")
        return value


@dataclass(frozen=True)
class ListOf(Shape):
    item: Shape
    length: int
    minimum: int = 0

    def check(self, value: Any, path: str) -> list:
        if not isinstance(value, list):
            raise BadReply(path, "was not a list")
        if len(value) > self.length:
            raise BadReply(path, f"had more than {self.length} items")
        if len(value) < self.minimum:
            raise BadReply(path, f"had fewer than {self.minimum} items")
        if isinstance(self.item, Number):  # the common case, a list of numbers: one pass, paths only on failure
            fast = [float(v) for v in value if type(v) is float or type(v) is int and -BIG <= v <= BIG]
            if len(fast) == len(value) and all(map(math.isfinite, fast)):
                return fast
        return [self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class Record(Shape):
    """A JSON object with exactly these keys (`optional` ones may be missing)."""

    fields: dict[str, Shape]
    optional: frozenset[str] = frozenset()

    def check(self, value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise BadReply(path, "was not an object")
        extra = set(value) - set(self.fields)
        if extra:
            raise BadReply(path, "had unexpected keys")
        missing = [k for k in self.fields if k not in value and k not in self.optional]
        if missing:
            raise BadReply(f"{path}.{missing[0]}" if path else missing[0], "was missing")
        return {k: shape.check(value[k], f"{path}.{k}" if path else k) for k, shape in self.fields.items()
                if k in value}


@dataclass(frozen=True)
class MapOf(Shape):
    """An object whose keys are from `keys` and whose values all have one shape."""

    keys: frozenset[str]
    item: Shape

    def check(self, value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise BadReply(path, "was not an object")
        if not set(value) <= self.keys:
            raise BadReply(path, "had unexpected keys")
        return {k: self.item.check(v, f"{path}.{k}" if path else k) for k, v in value.items()}


@dataclass(frozen=True)
class Params(Shape):
    """A message's parameters: an object of at most `count` keys, each a short name, whose values have one shape."""

    item: Shape
    count: int = 16

    def check(self, value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise BadReply(path, "was not an object")
        if len(value) > self.count or not all(isinstance(k, str) and k.isidentifier() and len(k) <= 40
                                              for k in value):
            raise BadReply(path, "had unexpected keys")
        return {k: self.item.check(v, f"{path}.{k}" if path else k) for k, v in value.items()}


@dataclass(frozen=True)
class Nullable(Shape):
    item: Shape

    def check(self, value: Any, path: str) -> Any:
        return None if value is None else self.item.check(value, path)


@dataclass(frozen=True)
class AnyOf(Shape):
    """The first alternative that fits; the last one's complaint otherwise."""

    options: tuple[Shape, ...]

    def check(self, value: Any, path: str) -> Any:
        for option in self.options[:-1]:
            try:
                return option.check(value, path)
            except BadReply:
                continue
        return self.options[-1].check(value, path)


@dataclass(frozen=True)
class Anything(Shape):
    """Any JSON value, unchecked: for an envelope whose parts are checked next, and the sandbox's own tests."""

    def check(self, value: Any, path: str) -> Any:
        return value


ANY = Anything()
NUMBER = Number()
INDEX = Integer(0, 10_000_000)
BOOLEAN = Boolean()


def numbers(length: int) -> ListOf:
    return ListOf(NUMBER, length)


def check(value: Any, shape: Shape, path: str = "") -> Any:
    """`value` as `shape` says it must be; raises BadReply (with the grader's words) when it is not."""
    try:
        return shape.check(value, path)
    except RecursionError:
        raise BadReply(path, "was nested too deeply") from None


# ---------------------------------------------------------------------- the requests every assignment has

FRAME = Record({"file": Text(200), "line": Integer(0, 10_000_000), "function": Text(200), "code": Text(300),
                "column": Integer(0, 300)}, optional=frozenset({"column"}))  # column: a SyntaxError's caret
# An exception in student code (harness.describe_exception), or a module missing contract names ("load").
ERROR = Record({"type": Text(100), "harness": BOOLEAN, "message": Text(1000), "traceback": ListOf(FRAME, 8),
                "missing": ListOf(Text(100), 20)}, optional=frozenset({"harness", "missing"}))
# A public test's feedback: a message id of the assignment's messages.toml and its parameters (numbers, lists of
# numbers, texts, or a message describing the test's inputs).
PARAM = AnyOf((Number(), ListOf(Number(), 1000), Text(2000)))
PUBLIC_TEST = Record({
    "status": Text(choices=frozenset({"passed", "failed", "todo"})),
    "feedback": Nullable(Record({"id": Text(64), "params": Params(AnyOf((
        Record({"id": Text(64), "params": Params(PARAM)}), *PARAM.options)))})),
    "text": Text(2000),
})


def load_reply(modules: Iterable[str]) -> MapOf:
    """The reply to `load`: module -> what went wrong importing it."""
    return MapOf(frozenset(modules), ERROR)
