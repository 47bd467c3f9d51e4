"""Grading on a Dask cluster (`grader batch --scheduler`, `grader serve --scheduler`): the batch's and the
service's Executor once a class outgrows one machine.

Dask (the optional `dask` extra) does the scheduling; this module only adapts it to grading:

* the course travels once per run: packed here (a tar of assignments/, reference/ and autotests/), given to every
  worker (those that join later too) as a Dask worker plugin, and unpacked there once per worker process into a
  private temporary folder (grader/cluster_worker.py, the code that runs on a worker);
* a submission travels as its normalised files, loaded here (`load_submission`, bounded): no filesystem is
  shared, and a worker never reads a path of the client's;
* every worker process checks its own sandbox before its first submission (the rules of local grading hold on
  every worker), and a worker without filesystem isolation stops the run, naming the worker;
* every report says which course version (`assignment.tests`) it was graded with; one that is not the client's
  stops the run (CourseMismatch): never a silently different grade;
* a worker that dies takes only its submissions in flight: the scheduler reports each one at once (the grader
  sets the scheduler's allowed-failures to 0, so that the retry is the grader's own), each is tried once more on
  another worker, and its report says so (`cluster.retried_because`); a second death gives WorkerLost, which
  the batch turns into an error report with the reason.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import tarfile
import threading
import time
from collections import deque
from concurrent import futures
from concurrent.futures import Executor, Future, InvalidStateError
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from grader.errors import GraderError, UnusableInput
from grader.parallel import GradeTask, task_submission
from grader.runner import GradingError

if TYPE_CHECKING:
    from distributed import Client

    from grader.course import Assignment, Course

DASK_EXTRA = "pip install 'micrograd-grader[dask]'"
COURSE_FOLDERS = ("assignments", "reference", "autotests")
SCHEMES = ("tcp", "tls")  # what a scheduler listens on (Dask's other transports are for special networks)
CONNECT_TIMEOUT_S = 10.0  # to reach the scheduler, and then for its first worker
WINDOW_PER_THREAD = 2  # submissions sent ahead per worker thread: each has the next one ready when it finishes
ROOM_CHECK_S = 5.0


class ClusterError(GraderError):
    """The cluster cannot be used (no scheduler at the address, no worker); the one-line message says which."""


class DaskMissing(ClusterError, UnusableInput):
    """--scheduler without the `dask` extra installed."""


class BadAddress(ClusterError, UnusableInput):
    """--scheduler that is no scheduler's address."""


class CourseMismatch(GradingError):
    """A worker graded with another course version than the client's: the run stops, no one is blamed."""


class WorkerLost(RuntimeError):
    """The workers grading a submission died twice, or Dask could not run it: the batch gives it an error report
    with this reason."""


def connect(address: str) -> Client:
    """A Dask client of the scheduler at `address` that has at least one worker."""
    try:
        from distributed import Client
    except ImportError:
        raise DaskMissing(f"--scheduler needs Dask, an optional extra of the grader: {DASK_EXTRA}") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {_first_line(exc)}") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterError(f"the Dask scheduler at {address} has no worker ({_first_line(exc)}): start one with "
                           f"`dask worker {address} --nthreads 1`") from None
    return client


def pack_course(root: Path) -> bytes:
    """The course's folders as a gzipped tar, the same bytes for the same files (no times, owners or caches)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for folder in COURSE_FOLDERS:
            for path in sorted((root / folder).rglob("*")):
                if "__pycache__" in path.parts or not path.is_file() or path.is_symlink():
                    continue
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.size, info.mode = path.stat().st_size, 0o644
                with open(path, "rb") as file:
                    archive.addfile(info, file)
    return gzip.compress(data.getvalue(), compresslevel=6, mtime=0)  # tarfile's gzip would stamp the time


def _no_scheduler_retries(dask_scheduler) -> None:
    """Run on the scheduler: a task whose worker dies fails at once (KilledWorker), and the grader retries it."""
    dask_scheduler.allowed_failures = 0


class ClusterExecutor(Executor):
    """An Executor for `grade_task` and `grade_task_with_page` that grades on a Dask cluster (see the module
    docstring). It owns its client: shutting it down cancels what is left and disconnects."""

    def __init__(self, client: Client, course: Course, *, allow_weak_sandbox: bool = False) -> None:
        self._client = client
        self._assignments: dict[str, Assignment] = {name: course.assignment(name) for name in course.names()}
        self._allow_weak = allow_weak_sandbox
        self._lock = threading.Lock()
        # Submissions are loaded and sent as the cluster has room for them (WINDOW_PER_THREAD per thread), so that
        # a class of thousands is never all in memory at once.
        self._backlog: deque[tuple[Future, Callable, GradeTask]] = deque()
        self._in_flight: dict[Future, Any] = {}  # ours -> Dask's (a Dask future no one holds is forgotten)
        self._room_size, self._room_checked = WINDOW_PER_THREAD, -ROOM_CHECK_S
        self._closed = False
        from grader.cluster_worker import CoursePlugin, check_worker_sandbox

        client.run_on_scheduler(_no_scheduler_retries)
        # every worker there is now, before anyone is graded; a worker that joins later checks itself
        client.run(check_worker_sandbox, allow_weak_sandbox)
        data = pack_course(course.root)
        self._course = hashlib.sha256(data).hexdigest()
        client.register_plugin(CoursePlugin(self._course, data), name=f"grader-course-{self._course}")

    @property
    def capacity(self) -> int:
        """How many submissions the cluster grades at once: its workers' threads."""
        return max(1, sum(self._client.nthreads().values()))

    def _room(self) -> int:
        """How many submissions may be sent ahead: WINDOW_PER_THREAD per thread, the threads asked of the
        scheduler at most every ROOM_CHECK_S (workers come and go)."""
        if time.monotonic() - self._room_checked > ROOM_CHECK_S:
            self._room_size, self._room_checked = WINDOW_PER_THREAD * self.capacity, time.monotonic()
        return self._room_size

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        (task,) = args
        assert isinstance(task, GradeTask) and not kwargs  # it runs grade_task and grade_task_with_page only
        ours: Future = Future()
        with self._lock:
            self._backlog.append((ours, fn, task))
        self._fill()
        return ours

    def _fill(self) -> None:
        """Send submissions from the backlog while the cluster has room for them."""
        while True:
            with self._lock:
                if not self._backlog or len(self._in_flight) >= self._room():
                    return
                ours, fn, task = self._backlog.popleft()
                if not ours.set_running_or_notify_cancel():  # cancelled while it waited (a stopped batch)
                    continue
                self._in_flight[ours] = None  # its room, taken until it is settled
            self._send(ours, fn, task, attempt=1, avoid=None)

    def _portable(self, task: GradeTask) -> GradeTask:
        """The task with its submission loaded here, so that the worker reads no path of ours; input that is not
        a submission goes with the reason, for the worker to make the same error report as local grading."""
        from grader.submission import SubmissionError

        if task.path is None or task.files is not None or task.submission is not None:
            return task
        try:
            submission = task_submission(task, self._assignments[task.assignment])
        except SubmissionError as exc:
            return dataclasses.replace(task, refused=str(exc))
        return dataclasses.replace(task, submission=submission)

    def _send(self, ours: Future, fn: Callable, task: GradeTask, attempt: int, avoid: str | None) -> None:
        """Submit the task to Dask (away from the worker `avoid`). It often runs in Dask's callback thread, where
        an exception would be lost and `ours` never settled: whatever fails here settles it with the error, as a
        broken local pool's would (the batch gives that student an error report or stops)."""
        from grader.cluster_worker import grade_on_worker

        try:
            task = self._portable(task)
            others = [w for w in self._client.scheduler_info()["workers"] if w != avoid] if avoid else None
            theirs = self._client.submit(grade_on_worker, self._course, self._allow_weak, fn, task, pure=False,
                                         workers=others or None)
        except Exception as exc:  # the scheduler gone, a submission unreadable in an unforeseen way
            with self._lock:
                self._in_flight.pop(ours, None)
            _resolve(ours, error=exc)
            return
        with self._lock:
            self._in_flight[ours] = theirs
        theirs.add_done_callback(lambda done: self._settle(done, ours, fn, task, attempt))

    def _settle(self, theirs: Any, ours: Future, fn: Callable, task: GradeTask, attempt: int) -> None:
        """Dask's result becomes ours: checked, retried once after a worker's death, or the error; then the next
        submission of the backlog takes its room."""
        try:
            self._settle_one(theirs, ours, fn, task, attempt)
        finally:
            self._fill()

    def _settle_one(self, theirs: Any, ours: Future, fn: Callable, task: GradeTask, attempt: int) -> None:
        from distributed import KilledWorker

        with self._lock:
            self._in_flight.pop(ours, None)
        if self._closed:  # shut down meanwhile: no retry, no one waits
            _resolve(ours, error=futures.CancelledError())
            return
        try:
            result, worker = theirs.result()
        except KilledWorker as exc:
            dead = _killed_worker(exc)
            if attempt == 1:
                retry = dataclasses.replace(task, retried_because=f"the worker {dead} died while grading it")
                self._send(ours, fn, retry, attempt=2, avoid=dead)
            else:
                _resolve(ours, error=WorkerLost(f"{task.retried_because}, and so did the worker {dead} that "
                                                "tried again"))
            return
        except (GraderError, futures.CancelledError) as exc:  # a broken course or sandbox, or a cancellation
            _resolve(ours, error=exc)
            return
        except Exception as exc:  # Dask could not run it (a worker without the grader, ...): this student's error
            _resolve(ours, error=WorkerLost(f"the worker could not run it: {type(exc).__name__}: "
                                            f"{_first_line(exc)}"))
            return
        report = result[0] if isinstance(result, tuple) else result
        expected = self._assignments[task.assignment].tests_fingerprint
        if report["assignment"]["tests"] != expected:
            _resolve(ours, error=CourseMismatch(
                f"the worker {worker} graded {task.student} with course version {report['assignment']['tests'][:12]} "
                f"(grader {report['grader_version']}), not this run's {expected[:12]}: install the same "
                "micrograd-grader on every worker (`grader worker-check`)"))
            return
        report["cluster"] = {"worker": worker, "attempt": attempt}
        if task.retried_because:
            report["cluster"]["retried_because"] = task.retried_because
        _resolve(ours, result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel what has not finished when asked (its sandboxes end at their time limit on the workers), wait
        for the rest when asked, and disconnect."""
        if cancel_futures:
            with self._lock:
                self._closed = True
                waiting = [future for future, _, _ in self._backlog]
                self._backlog.clear()
                theirs = [future for future in self._in_flight.values() if future is not None]
            for future in waiting:
                future.cancel()
            self._client.cancel(theirs)
        elif wait:
            with self._lock:
                ours = [*self._in_flight, *(future for future, _, _ in self._backlog)]
            futures.wait(ours)
        with self._lock:
            self._closed = True
        self._client.close()


def _resolve(ours: Future, result: Any = None, error: BaseException | None = None) -> None:
    """Our future's outcome, unless it was cancelled meanwhile (then no one waits for it)."""
    try:
        if error is not None:
            ours.set_exception(error)
        else:
            ours.set_result(result)
    except InvalidStateError:
        pass


def _killed_worker(exc: Exception) -> str:
    """The address of the worker a KilledWorker names."""
    worker = getattr(exc, "last_worker", None)
    return str(getattr(worker, "address", worker) or "that ran it")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def cluster_executor(address: str, course: Course, *, allow_weak_sandbox: bool = False) -> ClusterExecutor:
    """Connect to the scheduler at `address` and get its workers ready to grade `course`."""
    client = connect(address)
    try:
        return ClusterExecutor(client, course, allow_weak_sandbox=allow_weak_sandbox)
    except GraderError:  # a worker's sandbox failed its check: the error names the worker
        client.close()
        raise
    except Exception as exc:  # the scheduler refuses to run the grader's functions, a worker is lost meanwhile, ...
        client.close()
        raise ClusterError(f"the Dask cluster at {address} cannot grade: {type(exc).__name__}: "
                           f"{_first_line(exc)}") from None


def scheduler_address(option: str | None) -> str | None:
    """--scheduler, else $GRADER_SCHEDULER (click reads it), normalised: a bare HOST:PORT is tcp://HOST:PORT."""
    if not option:
        return None
    address = option if "://" in option else f"tcp://{option}"
    scheme, _, place = address.partition("://")
    if scheme not in SCHEMES or not place:
        raise BadAddress(f"--scheduler {option!r}: expected a Dask scheduler's address, tcp://HOST:PORT (or "
                         "tls://HOST:PORT with Dask's TLS settings)")
    return address
