"""The grader's answers to what a sandbox asks in the middle of a request.

An assignment's harness holds no solution logic (docs/architecture.md), so what its requests need that only a
correct solution knows comes from the grader: the assignment's hidden tests declare each `Question` (its shape,
how the grader answers it, which requests of which sandbox may ask it), and `Questions` answers them for one
sandbox. A request may ask only what its test needs; everything else is refused. Questions are typed and
bounded like replies (grader/replies.py), and the work spent answering them is budgeted per submission.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from grader.replies import BadReply, Shape, check

BUDGET = 1_000_000  # per sandbox: the work units (Question.size) of every question answered, together


class Refused(Exception):
    """A question the grader does not answer; the message (the grader's words) goes back to the harness."""


@dataclass(frozen=True)
class Question:
    """A question an assignment's harness may ask mid-request (`session.ask(kind, **payload)`)."""

    kind: str
    shape: Shape  # of the payload, checked before anything uses it
    answer: Callable[[dict], dict]  # the typed payload -> the answer (JSON-able); may raise Refused
    size: Callable[[dict], int]  # the work it costs, counted against the submission's budget
    requests: frozenset[str] | None = None  # the commands that may ask it; None: any
    variant: str | None = None  # the sandbox that may ask it: None for the student's own files


class Questions:
    """Answers the questions of one sandbox (the student's own, or a variant), within a budget for the whole
    submission."""

    def __init__(self, questions: Iterable[Question], variant: str | None = None, budget: int = BUDGET):
        self.questions = [q for q in questions if q.variant == variant]
        self.left = budget

    def for_request(self, cmd: str) -> Callable[[dict], dict] | None:
        """What a request `cmd` may ask, as a function of the question; None when it may ask nothing."""
        allowed = {q.kind: q for q in self.questions if q.requests is None or cmd in q.requests}
        return (lambda message: self._answer(allowed, message)) if allowed else None

    def _answer(self, allowed: dict[str, Question], message: dict) -> dict:
        question = allowed.get(message.get("ask"))  # type: ignore[arg-type]
        if question is None:
            raise Refused("this request may not ask that")
        try:
            payload = check({k: v for k, v in message.items() if k != "ask"}, question.shape)
        except BadReply as bad:
            raise Refused(f"malformed question: {bad}") from None
        cost = question.size(payload)
        if cost > self.left:
            raise Refused("the submission has used up the grader's budget for questions")
        self.left -= cost
        return question.answer(payload)


def in_process_ask(questions: Iterable[Question]) -> Callable[..., dict]:
    """`ask` for the reference run in the grader's own process: trusted, so answered directly."""
    by_kind = {q.kind: q for q in questions if q.variant is None}

    def ask(kind: str, **payload: Any) -> dict:
        if kind not in by_kind:
            raise Refused(f"no question {kind!r}")
        return by_kind[kind].answer(payload)

    return ask
