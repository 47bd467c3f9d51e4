"""The durable queue: accepting an upload (stored, checked, limited, committed), the fair order of the jobs, and
the scheduler that grades them with the batch's sandboxed worker pool (grader/parallel.py).

Exactly once: a job is claimed by one UPDATE from `queued` to `grading` (its attempt counted), and its report and
final status are written by one UPDATE that matches that attempt still grading, in one transaction. A server
killed while grading leaves jobs in `grading`; the next start puts them back in the queue (`requeue_interrupted`),
so each acknowledged upload gets exactly one report.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import threading
import uuid
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, cast

from sqlalchemy import Update, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.course import Assignment, Course, SubmissionLimit
from grader.errors import UnusableInput
from grader.formats import _printable, fsync_folder, write_bytes_atomic
from grader.service.db import UPLOAD, UPLOADS_DIR, Bucket, Database, Job, LimitOverride, now
from grader.submission import SubmissionError, load_submission

TICK_S = 0.5  # the scheduler looks at the queue at least this often (an upload or a finished job wakes it at once)
MAX_ATTEMPTS = 3  # a job whose worker process died this often gets an error report instead of another try


class UploadRefused(UnusableInput):
    """An upload that is not a submission (422), or that the server will not take now (`OverLimit`: 429); the
    one-line message is for the student."""

    http_status = 422


class OverLimit(UploadRefused):
    http_status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# ---------------------------------------------------------------------- accepting an upload

def upload_kinds(assignment: Assignment) -> tuple[str, ...]:
    """What an upload may be: a .zip of the files, a notebook, or the file itself when there is one."""
    return (".zip", ".ipynb", ".py") if len(assignment.files) == 1 else (".zip", ".ipynb")


def accept_upload(database: Database, assignment: Assignment, student: str, filename: str, data: bytes,
                  received_at: datetime) -> tuple[Job, int]:
    """Store the upload in the data folder under a name of the server's, check that it is a submission (the
    reasons `grader grade` gives), take one of the student's submissions (`[submissions]`) and commit its job:
    the job and its position in the queue. Nothing is left stored when it is refused."""
    suffix = _checked_name(filename, assignment)
    folder = database.data_dir / UPLOADS_DIR / uuid.uuid4().hex
    path = _store(folder, assignment.files[0] if suffix == ".py" else "submission" + suffix, data)
    where = folder if suffix == ".py" else path  # a single .py is a folder holding the assignment's file
    try:
        try:
            load_submission(where, assignment, student, received_at)
        except SubmissionError as exc:
            raise UploadRefused(str(exc).replace(str(where), _printable(filename))) from None
        with database.session.begin() as session:
            limit = limit_for(session, assignment, student)
            if limit is not None:
                take_submission(session, limit, student, assignment.name, received_at)
            job = Job(student=student, assignment=assignment.name, priority=UPLOAD, status="queued",
                      upload=str(where.relative_to(database.data_dir)), filename=filename, received_at=received_at)
            session.add(job)
            session.flush()
            return job, positions(session)[job.id]
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _checked_name(filename: str, assignment: Assignment) -> str:
    """The upload's suffix; a name that holds a path or is not a submission's is refused."""
    kinds = upload_kinds(assignment)
    if not filename or "/" in filename or "\\" in filename or filename in (".", "..") or not filename.isprintable() \
            or len(filename) > 200:
        raise UploadRefused(f"{_printable(filename[:200])!r}: the file name must be a plain name such as "
                            f"{assignment.name}{kinds[0]}, without a folder")
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in kinds:
        raise UploadRefused(f"{filename}: expected a {', a '.join(kinds[:-1])} or a {kinds[-1]} file")
    return suffix


def _store(folder: Path, name: str, data: bytes) -> Path:
    """`data` as folder/name, on disk (the file and both folders' entries) before the job that names it is
    committed."""
    folder.mkdir(mode=0o700)
    path = folder / name
    write_bytes_atomic(path, data, 0o600)
    fsync_folder(folder.parent)
    return path


def limit_for(session: Session, assignment: Assignment, student: str) -> SubmissionLimit | None:
    """The student's submission limit: staff's override for them, else `[submissions]`'s (None: no limit)."""
    override = session.get(LimitOverride, (student, assignment.name))
    if override is not None:
        return SubmissionLimit(override.per_hour, override.burst)
    return assignment.submissions


def _refilled(bucket: Bucket, limit: SubmissionLimit, at: datetime) -> float:
    hours = max(0.0, (at - bucket.updated_at).total_seconds()) / 3600
    return min(float(limit.burst), bucket.tokens + hours * limit.per_hour)


def _bucket(session: Session, limit: SubmissionLimit, student: str, assignment: str, at: datetime) -> Bucket:
    """The student's bucket, locked until the transaction ends (a new one is full)."""
    key = (student, assignment)
    bucket = session.get(Bucket, key, with_for_update=True)
    if bucket is None:
        try:
            with session.begin_nested():  # two first uploads at once (PostgreSQL): one inserts, the other reads
                bucket = Bucket(student=student, assignment=assignment, tokens=float(limit.burst), updated_at=at)
                session.add(bucket)
        except IntegrityError:
            bucket = session.get(Bucket, key, with_for_update=True, populate_existing=True)
            assert bucket is not None  # the other transaction made it
    return bucket


def take_submission(session: Session, limit: SubmissionLimit, student: str, assignment: str, at: datetime) -> None:
    """One submission out of the student's bucket, else OverLimit with when the next one is allowed."""
    bucket = _bucket(session, limit, student, assignment, at)
    tokens = _refilled(bucket, limit, at)
    if tokens < 1:
        wait_s = math.ceil(round((1 - tokens) * 3600 / limit.per_hour, 6))  # not 601 s for 600.0000001
        raise OverLimit(f"over the limit of {limit.burst} submissions at once and {limit.per_hour:g} per hour for "
                        f"{assignment}: the next one is allowed in {wait_s} s", wait_s)
    bucket.tokens, bucket.updated_at = tokens - 1, at


def give_back(session: Session, limit: SubmissionLimit, student: str, assignment: str, at: datetime) -> None:
    """A submission the grader failed to grade (not the student's fault) does not count."""
    bucket = _bucket(session, limit, student, assignment, at)
    bucket.tokens, bucket.updated_at = min(float(limit.burst), _refilled(bucket, limit, at) + 1), at


# ---------------------------------------------------------------------- the fair order

def fair_order(jobs: Iterable[tuple[int, str, int, str]]) -> list[int]:
    """The queued jobs' ids in grading order, from (id, student, priority, status) of the jobs queued or grading:
    uploads before regrades; then each student's first job waiting, then each one's second, and so on (a job
    grading counts as the student's first), so that one student's burst cannot hold the others back; then the
    order of arrival."""
    seen: dict[tuple[str, int], int] = {}
    keyed = []
    for job_id, student, priority, status in sorted(jobs):
        rank = seen.get((student, priority), 0)
        seen[(student, priority)] = rank + 1
        if status == "queued":
            keyed.append((priority, rank, job_id))
    return [job_id for _, _, job_id in sorted(keyed)]


def positions(session: Session) -> dict[int, int]:
    """Every queued job's place in the queue: 1 is graded next."""
    rows = session.execute(select(Job.id, Job.student, Job.priority, Job.status)
                           .where(Job.status.in_(("queued", "grading"))))
    order = fair_order((row.id, row.student, row.priority, row.status) for row in rows)
    return {job_id: place for place, job_id in enumerate(order, start=1)}


def claim_next(database: Database) -> Job | None:
    """The next job in the fair order, now `grading` (its attempt counted); None when the queue is empty."""
    with database.session.begin() as session:
        order = sorted(positions(session).items(), key=lambda item: item[1])
        for job_id, _ in order:
            if _changed(session, update(Job).where(Job.id == job_id, Job.status == "queued")
                        .values(status="grading", attempt=Job.attempt + 1, started_at=now())):
                return session.get(Job, job_id, populate_existing=True)
    return None


def requeue_interrupted(database: Database) -> int:
    """Put back in the queue the jobs a stopped server left grading (none of them has a report); how many."""
    with database.session.begin() as session:
        return _changed(session, update(Job).where(Job.status == "grading").values(status="queued", started_at=None))


def remove_unacknowledged(database: Database) -> int:
    """Remove the stored uploads that no job names (a server stopped between storing an upload and committing its
    job never acknowledged it); how many. Only while no upload is being accepted: at the start."""
    with database.reader() as session:
        named = {PurePosixPath(upload).parts[1] for upload in session.scalars(select(Job.upload))}
    orphans = [p for p in (database.data_dir / UPLOADS_DIR).iterdir() if p.name not in named]
    for orphan in orphans:
        shutil.rmtree(orphan, ignore_errors=True)
    return len(orphans)


def job_status(report: dict) -> str:
    """`error` when the grader could not grade it (its fault, not the student's), else `graded`."""
    from grader.gradebook import report_status

    return "error" if report_status(report) == "error" else "graded"


def record(database: Database, job: Job, report: dict, page: str, assignment: Assignment) -> bool:
    """The job's report, page and final status, in one transaction, if this attempt is still the one grading;
    a grader error gives the student's submission back (a regrade took none). False when it was not (the result
    is dropped)."""
    status = job_status(report)
    finished = now()
    with database.session.begin() as session:
        done = _changed(session, update(Job).where(Job.id == job.id, Job.status == "grading",
                                                   Job.attempt == job.attempt)
                        .values(status=status, report=json.dumps(report), page=page, finished_at=finished,
                                score=report["score"], max_score=report["max_score"]))
        limit = limit_for(session, assignment, job.student) if done and status == "error" else None
        if limit is not None and job.priority == UPLOAD:
            give_back(session, limit, job.student, job.assignment, finished)
        return bool(done)


def _changed(session: Session, statement: Update) -> int:
    """How many rows an UPDATE changed."""
    return cast(CursorResult, session.execute(statement)).rowcount


def requeue(database: Database, job: Job) -> None:
    """A job whose worker died goes back to the queue, unless it was graded after all."""
    with database.session.begin() as session:
        session.execute(update(Job).where(Job.id == job.id, Job.status == "grading", Job.attempt == job.attempt)
                        .values(status="queued", started_at=None))


# ---------------------------------------------------------------------- the scheduler

@dataclass(frozen=True)
class _InFlight:
    job: Job
    pool: Executor  # the pool that runs it: a broken pool is replaced once, by the first of its jobs to fail


class Scheduler:
    """A thread that keeps up to `jobs` jobs grading in a pool made by `make_pool` (the batch's `worker_pool`:
    forked sandboxed workers), in the fair order, and records each result as it arrives."""

    def __init__(self, database: Database, course: Course, jobs: int, *, lang: str = "en",
                 make_pool: Callable[[int], Executor] | None = None) -> None:
        from grader.parallel import worker_pool

        self.database, self.course, self.jobs, self.lang = database, course, jobs, lang
        self.assignments = {name: course.assignment(name) for name in course.names()}
        self._make_pool = make_pool or worker_pool
        self._wake = threading.Event()
        self._stopping = False
        self._in_flight: dict[Future, _InFlight] = {}
        self._thread = threading.Thread(target=self._run, name="grader-scheduler", daemon=True)

    def start(self) -> int:
        """Requeue what a stopped server left grading, start the workers and the thread; how many were requeued.
        Call it before any other thread starts: the workers are forked here."""
        requeued = requeue_interrupted(self.database)
        remove_unacknowledged(self.database)
        self.pool = self._new_pool()
        self._thread.start()
        return requeued

    def _new_pool(self) -> Executor:
        from grader.parallel import WorkerPool

        pool = self._make_pool(self.jobs)
        if isinstance(pool, WorkerPool):  # a forking pool starts all its workers at its first task: now, not later
            pool.submit(os.getpid).result()
        return pool

    def wake(self) -> None:
        """A job was queued: look at the queue now."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and the workers (their sandboxes killed); jobs grading stay `grading` and are graded
        again at the next start."""
        from grader.parallel import WorkerPool

        self._stopping = True
        self._wake.set()
        self._thread.join()
        if isinstance(self.pool, WorkerPool):
            self.pool.terminate()
        else:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                for future in [f for f in self._in_flight if f.done()]:
                    self._finish(future, self._in_flight.pop(future))
                while not self._stopping and len(self._in_flight) < self.jobs:
                    job = claim_next(self.database)
                    if job is None:
                        break
                    self._submit(job)
            except Exception as exc:  # the database away for a moment: try again, never stop grading for good
                print(f"grader: the scheduler failed ({type(exc).__name__}: {exc}); trying again", file=sys.stderr)
                self._wake.wait(1.0)

    def _task(self, job: Job):
        from grader.parallel import GradeTask

        return GradeTask(job.student, str(self.course.root), job.assignment,
                         str(self.database.data_dir / job.upload), None, job.received_at.isoformat(), self.lang)

    def _submit(self, job: Job) -> None:
        from grader.parallel import grade_task_with_page

        future = self.pool.submit(grade_task_with_page, self._task(job))
        future.add_done_callback(lambda _: self._wake.set())
        self._in_flight[future] = _InFlight(job, self.pool)

    def _finish(self, future: Future, flight: _InFlight) -> None:
        """Record the result; a worker that died (the pool broken) has its job tried again, up to MAX_ATTEMPTS."""
        from grader.batch import BatchError, Entry, failure, task_report
        from grader.sandbox import SandboxError

        job = flight.job
        assignment = self.assignments[job.assignment]
        task = self._task(job)
        entry = Entry(job.student, Path(str(task.path)), task.submitted_at)
        if isinstance(future.exception(), BrokenProcessPool):
            if flight.pool is self.pool:
                print("grader: a grading worker died; starting the workers again", file=sys.stderr)
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._new_pool()
            if job.attempt < MAX_ATTEMPTS:
                requeue(self.database, job)
                return
        try:
            report, page = task_report(future, entry, assignment, self.lang)
        except (BatchError, SandboxError) as exc:  # the course or the machine, not the student
            report, page = failure(assignment, entry, exc.one_line(), self.lang)
        record(self.database, job, report, page, assignment)
