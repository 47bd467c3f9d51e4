"""Grading many submissions at once through the standard `concurrent.futures.Executor` interface.

Any Executor works (a distributed one can be plugged in): tasks and results are plain picklable data.
`worker_pool` makes the local one: forked worker processes that already have the grader imported, each with
its own sandbox slot, so that one student's fork bomb cannot starve another student's sandbox. No worker
outlives the grader: SIGTERM makes a worker close its sandboxes and exit, and the grader's death (even by
SIGKILL) sends it SIGTERM (Linux); its sandboxes die with it (bwrap's --die-with-parent).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from grader.course import Assignment
    from grader.submission import Submission

_slot = 0  # this worker's sandbox slot; 0 in the main process
TERMINATE_GRACE_S = 1.0  # how long terminated workers may take to close their sandboxes before SIGKILL


def _start_worker(slots, parent: int) -> None:
    """A worker's initializer: its slot, and how it stops (it never decides that itself)."""
    global _slot
    from grader.sandbox import die_with_parent

    # Ctrl-C in a terminal reaches the whole foreground process group: the grader decides, and tells workers
    # by SIGTERM. A handler, not SIG_IGN, which the sandboxes would inherit across exec.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, _stop_worker)
    die_with_parent(signal.SIGTERM, parent)
    _slot = slots.get()


def _stop_worker(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM in a worker: kill its sandboxes and all they started, remove their files, and exit at once."""
    from grader.sandbox import close_all_sandboxes

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the pool and the grader's death may send more: finish first
    try:
        close_all_sandboxes()
    finally:
        os._exit(128 + signum)


class WorkerPool(ProcessPoolExecutor):
    """The local pool. Leaving it (`with`) waits for its tasks, or, when an exception leaves it (an interrupted
    batch, a broken course), terminates it at once."""

    def terminate(self) -> None:
        """Cancel what has not started and stop every worker now: each kills its sandboxes (SIGTERM); those still
        alive after TERMINATE_GRACE_S get SIGKILL (their sandboxes die with them)."""
        workers = list((self._processes or {}).values())  # the executor's own record: no public accessor
        self.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        deadline = time.monotonic() + TERMINATE_GRACE_S
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is None:
            self.shutdown(wait=True)
        else:
            self.terminate()


def stop_workers() -> None:
    """SIGTERM every worker process this process started, waiting for none (a grader that must end at once)."""
    for worker in multiprocessing.active_children():
        worker.terminate()


def worker_pool(jobs: int) -> WorkerPool:
    """`jobs` worker processes, each with a distinct sandbox slot (1..jobs)."""
    # fork where available: workers inherit the imported grader, pytest and the reference instead of re-importing.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "fork":
        import grader.runner  # noqa: F401 - imported once here, every forked worker has it (pytest: ~0.15 s)
    context = multiprocessing.get_context(method)
    slots = context.Queue()
    for slot in range(1, jobs + 1):
        slots.put(slot)
    return WorkerPool(max_workers=jobs, mp_context=context, initializer=_start_worker,
                      initargs=(slots, os.getpid()))


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class GradeTask:
    """One submission to grade: either a path to load, or files already normalised (mutants, exports)."""

    student: str
    course_root: str
    assignment: str
    path: str | None = None
    files: tuple[tuple[str, str], ...] | None = None
    submitted_at: str | None = None  # ISO 8601, e.g. from Gradescope's metadata
    lang: str = "en"
    seed: int | None = None
    probe: tuple[str, ...] | None = None  # grader selftest: only these tests, until one loses points
    # On a cluster (grader/cluster.py) the worker reads no path: the client sends the submission it loaded, or
    # why the path is not one; and when a worker died grading it, why it is tried again.
    submission: Submission | None = None
    refused: str | None = None
    retried_because: str | None = None


def grade_task(task: GradeTask) -> dict:
    """Grade one task and return its report as a dict. Never raises for anything a submission can do: input
    that is not a submission, or that makes the grader fail, gets a valid error report. Only a broken course
    (GradingError) or sandbox (SandboxError) raises: they are no student's doing."""
    return _grade(task)[0]


def grade_task_with_page(task: GradeTask) -> tuple[dict, str]:
    """The report and the student's feedback page, both made in the worker (notebook pages take nbconvert)."""
    from grader.pages import feedback_page

    report, submission = _grade(task)
    try:
        return report, feedback_page(report, submission, task.lang)
    except Exception as exc:  # the report stands; the page shows it without the code
        _log(task, f"its feedback page could not show the code: {type(exc).__name__}: {exc}")
        return report, feedback_page(report, None, task.lang)


def _grade(task: GradeTask):
    import time
    from datetime import datetime, timezone

    from grader.course import find_course
    from grader.formats import validate_report
    from grader.grading import grade_submission
    from grader.runner import GradingError
    from grader.sandbox import SandboxError
    from grader.scoring import error_report
    from grader.submission import SubmissionError

    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    assignment = find_course(task.course_root).assignment(task.assignment)

    def failed(reason: str, reason_id: str) -> tuple[dict, None]:
        report = error_report(assignment, task.student, task.path or "", reason, lang=task.lang,
                              started_at=started_at, duration_s=time.perf_counter() - started, reason_id=reason_id)
        return report.to_dict(), None

    if task.refused is not None:
        return failed(task.refused, "not_a_submission")
    try:
        submission = task_submission(task, assignment)
    except SubmissionError as exc:
        return failed(str(exc), "not_a_submission")
    try:
        report = grade_submission(submission, assignment, lang=task.lang, seed=task.seed, slot=_slot,
                                  probe=task.probe).to_dict()
        if task.probe is None:  # a probe's report holds some tests only: it is an answer, not a report
            validate_report(report)
        return report, submission
    except (GradingError, SandboxError):
        raise
    except Exception as exc:  # whatever this submission made the grader do, it alone fails
        reason = f"the grader could not grade this submission ({type(exc).__name__}: {_first_line(exc)})"
        _log(task, reason)
        return failed(f"{reason}; course staff can see the details", "grading_failed")


def task_submission(task: GradeTask, assignment: Assignment) -> Submission:
    """The task's submission: the one it carries, its files, or the one read from its path (SubmissionError when
    that is no submission)."""
    from datetime import datetime

    from grader.submission import Submission, load_submission

    if task.submission is not None:
        return task.submission
    submitted_at = datetime.fromisoformat(task.submitted_at) if task.submitted_at else None
    if task.files is not None:
        return Submission(task.student, dict(task.files), "files", task.path or task.student, submitted_at)
    assert task.path is not None  # a task has a submission, files or a path
    return load_submission(task.path, assignment, task.student, submitted_at)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"


def _log(task: GradeTask, problem: str) -> None:
    """For course staff: the batch's standard error."""
    import sys
    import traceback

    from grader.formats import _printable

    print(_printable(f"grader: {task.student}: {problem}\n{traceback.format_exc()}"), file=sys.stderr)
