"""The replies of the wire protocol: each reply line typed against its request's declared shape.

Requests and replies are one JSON object per line (docs/architecture.md, "Sandbox protocol"); a reply is
checked against the shape its caller declares (grader/replies.py) before anything uses it, and a reply that
breaks it is a "malformed" CallResult (the student's wrong answer), never a grader error."""
from __future__ import annotations

from dataclasses import dataclass

from grader.messages import render
from grader.replies import ANY, BOOLEAN, ERROR, BadReply, Record, Shape, Text, check

MAX_REPLY_BYTES = 16 << 20
MAX_QUESTIONS = 10_000  # questions the child may ask the grader within one call
TOO_LONG = f"reply longer than {MAX_REPLY_BYTES >> 20} MiB"


@dataclass
class CallResult:
    """How one call ended: "ok" (value = the reply's value, of its declared shape), "error" (error = the reply's
    description of an exception, of its declared shape), "timeout", "crashed" or "malformed" (a reply that broke
    its shape); detail = a short reason written by the grader, never by the child."""

    status: str  # "ok" | "error" | "timeout" | "crashed" | "malformed"
    value: object = None
    error: dict | None = None
    detail: str = ""
    output: str = ""  # what the student's code printed during the call (cut at the output limit)
    reason: dict | None = None  # the detail as a message {"id", "params"}, which a report words in its language


def timed_out(reason_id: str, seconds: float) -> CallResult:
    """A "timeout.call" (the call's limit) or "timeout.budget" (the submission's): the detail in English, for
    logs and tests, and the reason as a message (grader/messages.toml)."""
    reason = {"id": reason_id, "params": {"seconds": f"{seconds:g}"}}
    return CallResult("timeout", detail=render(reason), reason=reason)


def _typed_reply(message: object, shape: Shape, output_bytes: int) -> CallResult:
    """A reply line as a CallResult, its value (of `shape`) or error (of ERROR's) checked before anything uses it."""
    envelope = Record({"ok": BOOLEAN, "value": ANY, "error": ANY, "output": Text(output_bytes + 1024)},
                      optional=frozenset({"value", "error", "output"}))
    try:
        reply = check(message, envelope)
        output = reply.get("output", "")
        if reply["ok"]:
            return CallResult("ok", value=check(reply.get("value"), shape), output=output)
        return CallResult("error", error=check(reply.get("error"), ERROR, "error"), output=output)
    except BadReply as bad:
        return CallResult("malformed", detail=f"the reply's {bad}" if bad.path else f"the reply {bad}")
