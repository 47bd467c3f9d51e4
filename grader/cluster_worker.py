"""What runs on a Dask worker for `grader/cluster.py` (it imports Dask: only a cluster's client and workers load
it). The course arrives once per worker process, with CoursePlugin, and stays unpacked there until the worker
stops; each submission arrives as a task of `grade_on_worker`, naming the course by its digest.

A plugin rather than scattered data: Dask keeps a plugin for every worker that joins later (a worker restarted
after it died, too), while scattered data lives on some workers only, and is lost with them.
"""
from __future__ import annotations

import dataclasses
import io
import shutil
import tarfile
import tempfile
import threading
from typing import Any, Callable

from distributed import Worker, WorkerPlugin, get_worker

from grader.parallel import GradeTask
from grader.runner import GradingError

_course_folders: dict[str, str] = {}  # a course's digest -> where this worker process unpacked it
_sandbox_checked: set[bool] = set()  # the allow_weak_sandbox values this worker process's sandbox passed
_lock = threading.Lock()  # a worker may run tasks in several threads


class CoursePlugin(WorkerPlugin):
    """The course (pack_course's bytes), unpacked once in each worker process into a private temporary folder,
    removed when the worker stops."""

    def __init__(self, digest: str, data: bytes) -> None:
        self.digest, self.data = digest, data

    def setup(self, worker: Worker) -> None:
        with _lock:
            if self.digest not in _course_folders:
                folder = tempfile.mkdtemp(prefix="grader-course-")
                with tarfile.open(fileobj=io.BytesIO(self.data)) as archive:
                    archive.extractall(folder, filter="data")
                _course_folders[self.digest] = folder

    def teardown(self, worker: Worker) -> None:
        with _lock:
            folder = _course_folders.pop(self.digest, None)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def check_worker_sandbox(allow_weak_sandbox: bool, dask_worker: Worker) -> None:
    """This worker's sandbox passes the check local grading makes (once per process); the error names the
    worker. Run by `Client.run` (which passes `dask_worker`) and by every task."""
    from grader.sandbox import SandboxError, check_isolation

    with _lock:
        if allow_weak_sandbox not in _sandbox_checked:
            try:
                check_isolation(allow_weak_sandbox)
            except SandboxError as exc:
                raise type(exc)(f"worker {dask_worker.address}: {exc.one_line()}") from None
            _sandbox_checked.add(allow_weak_sandbox)


def grade_on_worker(course: str, allow_weak_sandbox: bool, grade: Callable[[GradeTask], Any],
                    task: GradeTask) -> tuple[Any, str]:
    """A submission's task: `grade(task)` with the course of digest `course` unpacked here; and this worker's
    address, for its report."""
    worker = get_worker()
    check_worker_sandbox(allow_weak_sandbox, worker)
    folder = _course_folders.get(course)
    if folder is None:  # Dask sets plugins up before a worker runs tasks: a worker that lost it is broken
        raise GradingError(f"the worker {worker.address} has no course {course[:12]} (its CoursePlugin was not "
                           "set up)")
    return grade(dataclasses.replace(task, course_root=folder)), worker.address
