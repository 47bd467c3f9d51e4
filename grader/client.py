"""`grader submit`: send a submission to a grading service (`grader serve`) and, if asked, wait for its verdict.

The submission is read as `grader grade` reads it (grader/submission.py), so what cannot be graded is refused
here, before anything is sent; what is sent is what the service grades: a folder's files as a .zip, a .zip or a
notebook as they are. The service's JSON API is described in docs/architecture.md.
"""
from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.course import Assignment
from grader.errors import GraderError, UnusableInput
from grader.submission import load_submission

API = "/api/v1"
TIMEOUT_S = 30.0  # one HTTP request
POLL_S = (0.2, 2.0)  # first and longest pause between two looks at a queued submission


class ServerUnreachable(GraderError):
    """The service did not answer, or answered what is not its API (exit 1: try again)."""


class SubmissionRefused(UnusableInput):
    """The service refused the upload or the token, with its one-line reason (exit 2)."""


class LimitReached(GraderError):
    """The student's submission limit is used up for now (exit 1): the message says when the next is allowed."""


@dataclass(frozen=True)
class Packed:
    filename: str
    data: bytes


def pack(path: Path, assignment: Assignment) -> Packed:
    """The upload for PATH: a notebook or .zip as it is, a folder's submission files as a .zip; a SubmissionError
    (exit 2) for what `grader grade` would refuse."""
    submission = load_submission(path, assignment)  # refuses what is not a submission, in grade's words
    if path.is_file() and path.suffix.lower() in (".ipynb", ".zip", ".py"):
        return Packed(path.name, path.read_bytes())
    if submission.kind == "notebook" and submission.notebook is not None:
        import json

        return Packed(f"{assignment.name}.ipynb", json.dumps(submission.notebook).encode("utf-8"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(submission.files.items()):
            archive.writestr(name, text)
    return Packed(f"{submission.student or assignment.name}.zip", buffer.getvalue())


class Client:
    """The JSON API of one service, as one user (a bearer token)."""

    def __init__(self, server: str, token: str):
        import requests  # only `grader submit` pays for it

        self.base = server.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _send(self, method: str, path: str, **options: object) -> dict:
        import requests

        url = self.base + path
        try:
            response = self.http.request(method, url, timeout=TIMEOUT_S, **options)  # type: ignore[arg-type]
        except requests.RequestException as exc:
            raise ServerUnreachable(f"{self.base} did not answer: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise ServerUnreachable(f"{url} answered HTTP {response.status_code} without JSON: is it a grader "
                                    "service?") from None
        if not isinstance(body, dict):
            raise ServerUnreachable(f"{url} answered a JSON {type(body).__name__}, not an object")
        reason = str(body.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429:
            wait_s = response.headers.get("Retry-After", "?")
            raise LimitReached(f"{reason} (the service says: try again in {wait_s} s)")
        if response.status_code in (401, 403):
            raise SubmissionRefused(f"the token was refused: {reason}")
        if response.status_code >= 500:
            raise ServerUnreachable(f"{url}: the service failed (HTTP {response.status_code}): {reason}")
        if response.status_code >= 400:
            raise SubmissionRefused(reason)
        return body

    def submit(self, assignment: str, packed: Packed) -> dict:
        """202: {"id", "status": "queued", "position"}."""
        return self._send("POST", f"{API}/assignments/{assignment}/submissions",
                          files={"file": (packed.filename, packed.data)})

    def submission(self, job_id: int) -> dict:
        return self._send("GET", f"{API}/submissions/{job_id}")

    def wait(self, job_id: int, timeout_s: float, on_change: Callable[[dict], None] = lambda _: None) -> dict:
        """The submission once graded (or errored), looking less often as time goes by; GraderError after
        `timeout_s` (it stays queued on the service: look again later)."""
        deadline, pause, seen = time.monotonic() + timeout_s, POLL_S[0], None
        while True:
            state = self.submission(job_id)
            if (state.get("status"), state.get("position")) != seen:
                seen = (state.get("status"), state.get("position"))
                on_change(state)
            if state.get("status") in ("graded", "error"):
                return state
            if time.monotonic() + pause > deadline:
                raise GraderError(f"submission {job_id} is still {state.get('status')} after {timeout_s:g} s; "
                                  "the service keeps it: look again later")
            time.sleep(pause)
            pause = min(pause * 1.5, POLL_S[1])
