"""The public API for writing hidden tests (autotests/<assignment>/), and the pytest plugin that serves them.

Fixtures, for any hidden test:

* ``student``: the submission behind its sandbox (`StudentCode`): ``call(cmd, **args)`` returns the reply (of
  its declared shape), ``call_beside(reference, cmd, **args)`` returns (student's, reference's); a failure
  (exception, timeout, crash, malformed reply) raises `Feedback`, the student's verdict;
* ``reference``: the same requests answered in this process by reference/<assignment>/ (`ReferenceCode`),
  with ``modules`` (the reference's modules by import name), also its own fixture ``reference_modules``;
* ``variant``: ``variant(name)`` is the student's code on a variant of assignment.toml (some student files
  replaced by the course's public copies); ``fallback(name)`` is a `Fallback` that passes a check when it
  passes on the student's own files or on that variant, so that a bug costs points in its own group only;
* ``rng``: a `random.Random` seeded per test from the report's seed, so that a grade is reproducible.

The hidden tests' conftest.py provides ``reply_shapes`` (session scope: ``{command: Shape}`` for every command
of the assignment's harness) and, when the harness asks questions, ``questions`` (a list of `Question`).
Markers: ``covers(f)`` (the student function whose points, set in assignment.toml, the test shares),
``weight(w)`` (its share of that function's points relative to the function's other tests, default 1; a test of
weight 0 is a cross-check that costs nothing), ``given(g)`` (the test is about given code `g` built on `f`: when
it fails and the student's `g` differs from the course's, the feedback says so), ``group(name)`` (for a test of
weight 0 whose function has no points; elsewhere it must agree with assignment.toml).

A failed check raises ``Feedback(message_id, function=..., **params)``; the message ids are the grader's own
(grader/messages.toml) or the assignment's (its messages.toml), rendered later in English or Chinese. A parameter
that describes in words (the setting of a run, what an input is) is itself ``message(message_id, **params)``, from
the assignment's messages.toml, so that it is worded in the report's language too.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from grader.answers import Question, Questions, Refused
from grader.compare import Fallback, Feedback, ReferenceCode, StudentCode, all_close, close, fmt, message
from grader.course import Assignment
from grader.harness import WrongType
from grader.replies import (ANY, BOOLEAN, INDEX, NUMBER, AnyOf, BadReply, Integer, ListOf, MapOf, Nullable, Record,
                            Shape, Text, numbers)

__all__ = [
    "ANY", "BOOLEAN", "INDEX", "NUMBER", "AnyOf", "BadReply", "Fallback", "Feedback", "Integer", "ListOf", "MapOf",
    "Nullable", "Question", "Record", "ReferenceCode", "Refused", "Shape", "StudentCode", "Text", "WrongType",
    "all_close", "close", "fmt", "message", "numbers",
]


@dataclass
class GradingRun:
    """What one run of the hidden tests is about; the runner (grader/runner.py) keeps it in the config's stash."""

    assignment: Assignment
    seed: int
    student_sandbox: Any  # the student's own sandbox (grader.sandbox.Sandbox), started before pytest
    variant_sandbox: Callable[[str], Any]  # name -> that variant's sandbox, made on first use
    reference_modules: Callable[[], dict]  # the reference's modules by import name
    reference: Callable[[list[Question]], ReferenceCode]  # the reference, with the questions it may ask itself
    codes: list[StudentCode] = field(default_factory=list)  # every StudentCode handed out, to set .function
    fallbacks: dict[str, Fallback] = field(default_factory=dict)


RUN = pytest.StashKey[GradingRun]()


def _run(request: pytest.FixtureRequest) -> GradingRun:
    return request.config.stash[RUN]


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("group(name): the assignment.toml group of a test whose function has no points",
                   "covers(function): the student function whose points the test shares, e.g. Value.tanh",
                   "weight(w): this test's share of its function's points (default 1; 0: a cross-check)",
                   "given(function): the test is about given code built on the covered function"):
        config.addinivalue_line("markers", marker)


@pytest.fixture(scope="session")
def questions() -> list[Question]:
    """What the assignment's harness may ask the grader mid-request: none unless its conftest.py says so."""
    return []


@pytest.fixture(scope="session")
def reference_modules(request: pytest.FixtureRequest) -> dict:
    return _run(request).reference_modules()


@pytest.fixture(scope="session")
def reference(request: pytest.FixtureRequest, questions: list[Question]) -> ReferenceCode:
    return _run(request).reference(questions)


@pytest.fixture(scope="session")
def student(request: pytest.FixtureRequest, reply_shapes: dict[str, Shape], questions: list[Question]) -> StudentCode:
    run = _run(request)
    code = StudentCode(run.student_sandbox, Questions(questions), reply_shapes, run.assignment.files)
    run.codes.append(code)
    return code


@pytest.fixture(scope="session")
def variant(request: pytest.FixtureRequest, reply_shapes: dict[str, Shape],
            questions: list[Question]) -> Callable[[str], StudentCode]:
    run, made = _run(request), {}

    def on(name: str) -> StudentCode:
        if name not in run.assignment.variants:
            raise KeyError(f"no variant {name!r} in {run.assignment.folder / 'assignment.toml'}")
        if name not in made:
            made[name] = StudentCode(run.variant_sandbox(name), Questions(questions, name), reply_shapes,
                                     run.assignment.files, variant=name)
            run.codes.append(made[name])
        return made[name]

    return on


@pytest.fixture(scope="session")
def fallback(request: pytest.FixtureRequest, student: StudentCode,
             variant: Callable[[str], StudentCode]) -> Callable[[str], Fallback]:
    run = _run(request)

    def to(name: str) -> Fallback:
        if name not in run.fallbacks:
            run.fallbacks[name] = Fallback(student, variant(name))
        return run.fallbacks[name]

    return to


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return random.Random(f"{_run(request).seed}:{request.node.nodeid}")


@pytest.hookimpl(trylast=True)  # after the test's fixtures are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    covers = item.get_closest_marker("covers")
    for code in item.config.stash[RUN].codes:
        code.function = covers.args[0] if covers and covers.args else None
