"""Stage 4 of the pipeline: compare what student code computed with the reference, and say where it differs.

The hidden tests in `autotests/` are written with these pieces: `Feedback` is a test's verdict (a message id
and its parameters, rendered later in English or Chinese); `StudentCode` and `ReferenceCode` run the same
harness requests in the sandbox and in-process; `pinpoint_operation` finds the one operation whose
`_backward` is wrong inside a whole graph.
"""
from __future__ import annotations

import builtins
import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from grader import harness
from grader.answers import in_process_ask
from grader.replies import REPLIES, STUDENT_FILES

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


class Feedback(AssertionError):
    """A hidden test's verdict on a student: a message id from grader.messages and its parameters."""

    def __init__(self, message_id: str, *, status: str = "failed", function: str | None = None, **params: Any):
        super().__init__(message_id)
        self.message_id = message_id
        self.status = status
        self.function = function
        if function is not None:
            params.setdefault("function", function)
        # One-element lists read better as the number itself: "expected 0.7864", not "[0.7864]".
        params = {k: v[0] if isinstance(v, (list, tuple)) and len(v) == 1 else v for k, v in params.items()}
        self.params = {k: fmt(v) if isinstance(v, (float, list, tuple)) else v for k, v in params.items()}

    @property
    def message(self) -> dict:
        return {"id": self.message_id, "params": self.params}

    def __str__(self) -> str:  # what pytest shows when a grader developer runs the autotests by hand
        from grader.messages import render

        return render(self.message, "en")


# ---------------------------------------------------------------------- running requests


class ReferenceCode:
    """The reference, run in this (trusted) process through the same harness code as the student's."""

    def __init__(self, modules: dict):
        self.modules = modules
        self._session = harness.Session(modules.__getitem__, ask=in_process_ask)
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
    """Student code behind the sandbox: results come back as numbers, failures as Feedback."""

    sandbox: Any  # grader.sandbox.Sandbox
    questions: Any  # grader.answers.Questions: what the sandbox may ask the grader mid-request
    function: str | None = None  # the student function the current test is about
    on_correct_engine: bool = False  # the student's nn/train running on the course engine

    def call(self, cmd: str, **args: Any) -> Any:
        return self._answer(self.sandbox.call(cmd, args, shape=REPLIES[cmd], answer=self.questions.for_request(cmd)))

    def call_beside(self, reference: ReferenceCode, cmd: str, **args: Any) -> tuple[Any, Any]:
        """(student's answer, reference's answer): the reference computes while the sandbox does."""
        want = []
        result = self.sandbox.call(cmd, args, shape=REPLIES[cmd], answer=self.questions.for_request(cmd),
                                   meanwhile=lambda: want.append(reference.call(cmd, **args)))
        return self._answer(result), want[0] if want else reference.call(cmd, **args)

    def _answer(self, result) -> Any:
        if result.status == "ok":
            return result.value
        raise failure_feedback(result, self.function, keep_text=not self.on_correct_engine)


def failure_feedback(result: Any, function: str | None, keep_text: bool = True) -> Feedback:
    """What a sandbox call that did not answer (timeout, crash, exception) says about the student's code."""
    if result.status == "timeout":
        return Feedback("timeout", status="timeout", function=function, detail=result.detail)
    if result.status == "crashed":
        return Feedback("crashed", status="error", function=function, detail=result.detail)
    if result.status == "malformed":
        return Feedback("wrong_type", function=function, detail=result.detail, where="")
    return exception_feedback(result.error, function, keep_text)


def describe_where(frames: list[dict]) -> str:
    """'nn.py:12 act = sum(...); engine.py:40 ...' from the harness's traceback frames, innermost last."""
    return "; ".join(f"{f['file']}:{f['line']} {f['code']}".strip() for f in frames)


def builtin_exception(name: str) -> bool:
    """Whether `name` is one of Python's own exceptions (a student's class may call itself anything)."""
    candidate = getattr(builtins, name, None)
    return isinstance(candidate, type) and issubclass(candidate, BaseException)


def exception_feedback(error: dict, function: str | None, keep_text: bool) -> Feedback:
    """An exception in student code, with the student's own traceback lines only.

    On the course engine (keep_text False) no text that student code produced reaches the report: not the
    message, not its exception class's name, not a line of code, not a function name; only builtin exception
    names, the three file names of the contract and line numbers."""
    frames = error["traceback"]
    if not keep_text:
        frames = [{"file": f["file"], "line": f["line"], "code": "",
                   "function": "<module>" if f["function"] == "<module>" else ""} for f in frames
                  if f["file"] in STUDENT_FILES and f["file"] != "engine.py"]
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
class EngineVerdict:
    """Per submission: has a check already failed on the student's engine and passed on the reference engine?"""

    broken: bool = False


def with_correct_engine_fallback(student: StudentCode, correct_engine: StudentCode | None,
                                 check: Callable[[StudentCode], None], verdict: EngineVerdict) -> None:
    """Pass when `check` passes on the student's code over either engine: theirs, or the reference's.

    nn and training tests use this so that a bug in engine.py costs points in its own group only. Once the
    student's engine is known to be broken, the reference engine is tried first (fewer calls; same verdicts).
    When both fail, the student's own failure is reported if it is the same; otherwise the one on the
    reference engine, which carries no text from student code (it could have read the reference engine).
    """
    if correct_engine is None:
        check(student)
        return
    order = [correct_engine, student] if verdict.broken else [student, correct_engine]
    failures: dict[bool, Feedback] = {}
    for code in order:
        try:
            check(code)
        except Feedback as failure:
            failures[code is correct_engine] = failure
            continue
        if code is correct_engine and failures:
            verdict.broken = True
        return
    own, on_correct = failures[False], failures[True]
    raise own if same_failure(own, on_correct) else on_correct from None


def same_failure(a: Feedback, b: Feedback) -> bool:
    """Equal apart from exception text, which the correct-engine run withholds."""
    def strip(f: Feedback) -> tuple:
        return f.message_id, {k: v for k, v in f.params.items() if k not in ("detail", "type")}
    return strip(a) == strip(b)


# ---------------------------------------------------------------------- pinpointing an operation

# _op label -> (harness op, function name, how students call it)
OPERATIONS = {
    "+": ("+", "Value.__add__", "add (__add__)"),
    "*": ("*", "Value.__mul__", "mul (__mul__)"),
    "exp": ("exp", "Value.exp", "exp"),
    "log": ("log", "Value.log", "log"),
    "ReLU": ("relu", "Value.relu", "relu"),
    "tanh": ("tanh", "Value.tanh", "tanh"),
    "sigmoid": ("sigmoid", "Value.sigmoid", "sigmoid"),
}
OP_BY_REQUEST = {request: (function, name) for request, function, name in OPERATIONS.values()}
OP_BY_REQUEST["**"] = ("Value.__pow__", "pow (__pow__)")


def parse_op_label(label: str) -> tuple[str, float | None] | None:
    """The harness op of a node's `_op` label, and the exponent for '**k'; None for unknown labels."""
    if label in OPERATIONS:
        return OPERATIONS[label][0], None
    if label.startswith("**"):
        try:
            return "**", float(label[2:])
        except ValueError:
            return None
    return None


def describe_inputs(op: str, inputs: list[float], exponent: float | None = None) -> str:
    if op == "**":
        return f"x = {fmt(inputs[0])}, n = {fmt(exponent)}"
    if len(inputs) == 1:
        if op in ("+", "*"):
            return f"x = {fmt(inputs[0])} on both sides (x {op} x)"
        return f"x = {fmt(inputs[0])}"
    return ", ".join(f"{name} = {fmt(v)}" for name, v in zip("ab", inputs))


def operation_feedback(op: str, inputs: list[float], upstream: float, want: dict, got_data: float,
                       got_grads: list[float], pregrads: list[float] | None = None,
                       exponent: float | None = None) -> Feedback | None:
    """Compare one operation's forward value and backward contributions; None when they agree."""
    function, name = OP_BY_REQUEST[op]
    where = describe_inputs(op, inputs, exponent)
    names = ["x"] if len(inputs) == 1 else ["a", "b"]

    def grads(values: list[float]) -> str:
        return ", ".join(f"{n}.grad = {fmt(v)}" for n, v in zip(names, values))

    if not close(got_data, want["data"]):
        return Feedback("op_forward_wrong", function=function, op=name, inputs=where,
                        expected=want["data"], got=got_data)
    if not all_close(got_grads, want["grads"]):
        # `=` where `+=` belongs, on any input: the gradient it already held is lost.
        lost = [bool(p) and close(g, w - p) for g, w, p in zip(got_grads, want["grads"], pregrads or [])]
        if any(lost) and all(lost_i or close(g, w) for lost_i, g, w in zip(lost, got_grads, want["grads"])):
            assert pregrads is not None  # `lost` is all False without them
            return Feedback("op_backward_overwrites", function=function, op=name, inputs=where,
                            upstream=upstream, before=grads(pregrads), expected=grads(want["grads"]),
                            got=grads(got_grads))
        return Feedback("op_backward_wrong", function=function, op=name, inputs=where, upstream=upstream,
                        expected=grads(want["grads"]), got=grads(got_grads))
    return None


def pinpoint_operation(trace: list[dict], reference: ReferenceCode) -> Feedback | None:
    """The first node, in backward order, whose `_backward` added the wrong amount to its inputs."""
    for node in trace:
        parsed = parse_op_label(node["op"])
        if parsed is None:
            continue
        op, exponent = parsed
        inputs = [c["data"] for c in node["children"]]
        if op in ("+", "*") and len(inputs) not in (1, 2) or op not in ("+", "*") and len(inputs) != 1:
            continue
        before = [c["before"] for c in node["children"]]
        try:  # the inputs are the student's numbers: the reference may refuse them (log of -1)
            want = reference.call("op", op=op, inputs=inputs, upstream=node["grad"], pregrads=before,
                                  exponent=exponent, same=len(inputs) == 1 and op in ("+", "*"))
        except (ArithmeticError, ValueError, TypeError, harness.WrongType):
            continue
        found = operation_feedback(op, inputs, node["grad"], want, node["data"],
                                   [c["after"] for c in node["children"]], pregrads=before, exponent=exponent)
        if found is not None:
            return found
    return None
