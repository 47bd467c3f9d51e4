"""Stage 4 of the pipeline: compare what student code computed with the reference, and say where it differs.

The hidden tests in `autotests/` are written with these pieces: `Feedback` is a test's verdict (a message id
and its parameters, rendered later in English or Chinese); `StudentCode` and `ReferenceCode` run the same
harness requests in the sandbox and in-process; `pinpoint_operation` finds the one operation whose
`_backward` is wrong inside a whole graph.
"""
from __future__ import annotations

import ast
import builtins
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import harness
from grader.replies import Shape

REL_TOL, ABS_TOL = 1e-6, 1e-9


def close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def all_close(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))


def fmt(x: Any) -> str:
    """Numbers as a student reads them: 0.7864, -3, 1.5e-07; lists element by element."""
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in x) + "]"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def formatted(params: dict) -> dict:
    """A message's parameters as a student reads them; a parameter that is itself a message ({"id", "params"}:
    a description) is formatted the same way."""
    # One-element lists read better as the number itself: "expected 0.7864", not "[0.7864]".
    params = {k: v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else v for k, v in params.items()}
    return {k: fmt(v) if isinstance(v, (float, list, tuple)) else
            {"id": v["id"], "params": formatted(v.get("params") or {})} if isinstance(v, dict) and "id" in v else v
            for k, v in params.items()}


class Feedback(AssertionError):
    """A hidden test's verdict on a student: a message id from grader.messages and its parameters."""

    def __init__(self, message_id: str, *, status: str = "failed", function: str | None = None, **params: Any):
        super().__init__(message_id)
        self.message_id = message_id
        self.status = status
        self.function = function
        if function is not None:
            params.setdefault("function", function)
        self.params = formatted(params)

    @property
    def message(self) -> dict:
        return {"id": self.message_id, "params": self.params}

    def __str__(self) -> str:  # what pytest shows when a grader developer runs the autotests by hand
        from grader.messages import render

        return render(self.message, "en")


def message(message_id: str, **params: Any) -> dict:
    """A message as another's parameter (a test's description of its inputs, in the assignment's messages.toml):
    worded in the report's language, its parameters shown as Feedback's are."""
    return {"id": message_id, "params": params}


# ---------------------------------------------------------------------- running requests


class ReferenceCode:
    """The reference, run in this (trusted) process through the same harness code as the student's."""

    def __init__(self, modules: dict, commands: Any, ask: Callable[..., dict], files: tuple[str, ...]):
        self.modules = modules
        self.commands = commands  # the assignment's harness commands module (its helpers, e.g. a model class)
        self._session = harness.Session(modules.__getitem__, commands, ask=ask, files=files)
        self._answers: dict[str, str] = {}  # many inputs are the same for every student of a batch

    def call(self, cmd: str, **args: Any) -> Any:
        # JSON both ways: the reference gets exactly the inputs the sandbox gets, and answers in the same form.
        request = json.dumps([cmd, args], sort_keys=True)
        if request not in self._answers:
            if len(self._answers) > 10_000:
                self._answers.clear()
            self._answers[request] = json.dumps(self._session.run(cmd, json.loads(request)[1]))
        return json.loads(self._answers[request])


@dataclass
class StudentCode:
    """Student code behind the sandbox: results come back as numbers of their declared shape, failures as Feedback.

    `variant` is None for the student's own files; on a variant (assignment.toml), no text that student code
    produced reaches the report (see exception_feedback)."""

    sandbox: Any  # grader.sandbox.Sandbox, or anything with its call()
    questions: Any  # grader.answers.Questions: what the sandbox may ask the grader mid-request
    shapes: Mapping[str, Shape]  # each command's reply shape
    files: tuple[str, ...]  # the submission's file names
    variant: str | None = None
    function: str | None = None  # the student function the current test is about

    def call(self, cmd: str, **args: Any) -> Any:
        return self._answer(self.sandbox.call(cmd, args, shape=self._shape(cmd),
                                              answer=self.questions.for_request(cmd)))

    def call_beside(self, reference: ReferenceCode, cmd: str, **args: Any) -> tuple[Any, Any]:
        """(student's answer, reference's answer): the reference computes while the sandbox does."""
        want = []
        result = self.sandbox.call(cmd, args, shape=self._shape(cmd), answer=self.questions.for_request(cmd),
                                   meanwhile=lambda: want.append(reference.call(cmd, **args)))
        return self._answer(result), want[0] if want else reference.call(cmd, **args)

    def _shape(self, cmd: str) -> Shape:
        if cmd not in self.shapes:
            raise KeyError(f"no reply shape for {cmd!r}: add it to the reply_shapes fixture of the hidden tests")
        return self.shapes[cmd]

    def _answer(self, result) -> Any:
        if result.status == "ok":
            return result.value
        raise failure_feedback(result, self.function, keep_text=self.variant is None, files=self.files)


def failure_feedback(result: Any, function: str | None, keep_text: bool = True,
                     files: tuple[str, ...] = ()) -> Feedback:
    """What a sandbox call that did not answer (timeout, crash, exception) says about the student's code."""
    if result.status == "timeout":
        return Feedback("timeout", status="timeout", function=function, detail=result.reason or result.detail)
    if result.status == "crashed":
        return Feedback("crashed", status="error", function=function, detail=result.detail)
    if result.status == "malformed":
        return Feedback("wrong_type", function=function, detail=result.detail, where="")
    return exception_feedback(result.error, function, keep_text, files)


def describe_where(frames: list[dict]) -> str:
    """'nn.py:12 act = sum(...); engine.py:40 ...' from the harness's traceback frames, innermost last."""
    return "; ".join(f"{f['file']}:{f['line']} {f['code']}".strip() for f in frames)


def builtin_exception(name: str) -> bool:
    """Whether `name` is one of Python's own exceptions (a student's class may call itself anything)."""
    candidate = getattr(builtins, name, None)
    return isinstance(candidate, type) and issubclass(candidate, BaseException)


def exception_feedback(error: dict, function: str | None, keep_text: bool, files: tuple[str, ...] = ()) -> Feedback:
    """An exception in student code, with the student's own traceback lines only.

    On a variant (keep_text False) no text that student code produced reaches the report: not the message, not
    its exception class's name, not a line of code, not a function name; only builtin exception names, the
    submission's file names (`files`) and line numbers."""
    frames = error["traceback"]
    if not keep_text:
        frames = [{"file": f["file"], "line": f["line"], "code": "",
                   "function": "<module>" if f["function"] == "<module>" else ""} for f in frames
                  if f["file"] in files]
    where = describe_where(frames)
    kind = error["type"] if keep_text or builtin_exception(error["type"]) else "Exception"
    detail = error["message"] if keep_text else ""
    if error["type"] == "NotImplementedError":
        return Feedback("not_implemented", function=function, where=where)
    if frames and (error["type"] in ("SyntaxError", "IndentationError", "TabError")
                   or frames[-1]["function"] == "<module>"):
        # The file failed while being imported: the function itself never ran.
        return Feedback("cannot_import", status="error", function=function, file=frames[-1]["file"], type=kind,
                        detail=detail, where=where)
    if error.get("harness"):
        return Feedback("wrong_type", function=function, detail=detail or "it returned a value of the wrong type",
                        where=where)
    return Feedback("exception", status="error", function=function, type=kind, detail=detail, where=where)


@dataclass
class Fallback:
    """A submission's fallback for checks that may fail because of another of its files: the same student code
    on a variant (assignment.toml) where that file is the course's. `preferred` turns on once a check failed on
    the student's own files and passed on the variant: the variant is then tried first (fewer calls, same
    verdicts)."""

    own: StudentCode
    variant: StudentCode
    preferred: bool = False

    def check(self, check: Callable[[StudentCode], None]) -> None:
        """Pass when `check` passes on the student's own files or on the variant.

        The sandbox already running is tried first (only one of a submission's sandboxes runs at a time, and
        starting the other costs a process start). When both fail, the student's own failure is reported if it
        is the same; otherwise the variant's, which carries no text from student code. So a failure on the
        variant that holds no student text anyway (wrong values, a file that does not import) is reported
        without trying the student's own files: they would fail the same way, or differently because of the
        very file the variant replaces."""
        first_variant = self.preferred or getattr(self.variant.sandbox, "running", False)
        order = [self.variant, self.own] if first_variant else [self.own, self.variant]
        failures: dict[bool, Feedback] = {}
        for code in order:
            try:
                check(code)
            except Feedback as failure:
                failures[code is self.variant] = failure
                if code is self.variant and not failures.get(False) and failure.message_id not in TEXT_FAILURES:
                    raise failure from None
                continue
            if code is self.variant and failures:
                self.preferred = True
            return
        own, on_variant = failures[False], failures[True]
        raise own if same_failure(own, on_variant) else on_variant from None


# Failures whose words come from student code (withheld on a variant): the student's own run says them.
TEXT_FAILURES = frozenset({"exception", "wrong_type"})


def same_failure(a: Feedback, b: Feedback) -> bool:
    """Equal apart from exception text, which a run on a variant withholds."""
    def strip(f: Feedback) -> tuple:
        return f.message_id, {k: v for k, v in f.params.items() if k not in ("detail", "type")}
    return strip(a) == strip(b)


def given_code_changed(student_files: dict[str, str], reference_dir: Path, function: str) -> str | None:
    """The student file in which the given function `function` ("Value.__sub__", "make_moons") differs from the
    course's (the reference's, whose given code is the skeleton's), comments and layout aside; None when it is
    the same or cannot be found. Only parses the student's text: no student code runs here."""
    for file, text in student_files.items():
        if not file.endswith(".py") or not (reference_dir / file).is_file():
            continue
        ours = _definition(reference_dir.joinpath(file).read_text(encoding="utf-8"), function)
        if ours is not None:
            theirs = _definition(text, function)
            return None if theirs == ours else file
    return None


def _definition(source: str, qualname: str) -> str | None:
    """ast.dump of the function `qualname` in `source`, without positions; None when absent or unparsable."""
    try:
        scope: list[ast.stmt] = ast.parse(source).body
        *classes, name = qualname.split(".")
        for part in classes:
            scope = next(n.body for n in scope if isinstance(n, ast.ClassDef) and n.name == part)
        found = next(n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name)
        return ast.dump(found)
    except StopIteration:
        return None
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the student's text, whatever it holds
        return None
