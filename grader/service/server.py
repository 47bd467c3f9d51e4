"""`grader serve`: the app, the scheduler and its workers in one process, served by waitress.

waitress: a production WSGI server in pure Python (no C extension, runs on Linux, macOS and Windows alike), with
its own thread pool and request buffering, so a slow client never holds a grading worker or the database. One
process keeps the scheduler unique (no two servers claiming jobs from one database) and the queue in one place.
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable

from grader.course import Course
from grader.service.app import MAX_UPLOAD_BYTES, create_app
from grader.service.db import Database, ServiceError
from grader.service.queue import Scheduler

THREADS = 8  # waitress's request threads: uploads and polls are short, grading happens in the workers
BODY_MARGIN = 2**20  # what a multipart body may hold besides its file


def serve(data_dir: Path, course: Course, *, host: str = "127.0.0.1", port: int = 8000, jobs: int | None = None,
          db_url: str | None = None, lang: str = "en", allow_weak_sandbox: bool = False, cluster: str | None = None,
          max_upload_bytes: int = MAX_UPLOAD_BYTES, say: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C or SIGTERM. The course's hidden tests and the sandbox are checked first (a broken
    course would give every upload an error report); `say` hears where it serves, once it does. `jobs`
    submissions are graded at once (default: the cores, or the threads of the Dask cluster at `cluster`)."""
    from waitress.server import TcpWSGIServer, create_server

    from grader.batch import check_hidden_tests
    from grader.cluster import ClusterExecutor, cluster_executor
    from grader.parallel import default_jobs
    from grader.sandbox import check_isolation

    database = Database(data_dir, db_url)
    try:
        for name in course.names():
            check_hidden_tests(course.assignment(name))
        executor: ClusterExecutor | None = None
        if cluster:  # each worker checks its own sandbox
            executor = cluster_executor(cluster, course, allow_weak_sandbox=allow_weak_sandbox)
        elif warning := check_isolation(allow_weak_sandbox):
            say(f"warning: {warning}")
        jobs = jobs or (executor.capacity if executor else default_jobs())
        scheduler = Scheduler(database, course, jobs, lang=lang, make_pool=(lambda _: executor) if executor else None)
        requeued = scheduler.start()  # forks the workers: before waitress starts its threads
        try:
            app = create_app(database, course, wake=scheduler.wake, max_upload_bytes=max_upload_bytes)
            # waitress refuses a body far over the limit before buffering it all (Flask answers the rest in JSON)
            try:
                server = create_server(app, host=host, port=port, threads=THREADS,
                                       max_request_body_size=max_upload_bytes + BODY_MARGIN)
            except OSError as exc:  # the port is taken, the address is not this machine's, ...
                raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
            assert isinstance(server, TcpWSGIServer)  # one host and port: one TCP server
            signal.signal(signal.SIGTERM, _exit)  # waitress stops on SystemExit, then the workers are stopped
            where = f"on the Dask cluster at {cluster}" if cluster else "grading workers"
            say(f"grader: serving http://{host}:{server.getsockname()[1]} (data: {database.data_dir}; {jobs} "
                f"{where}; {requeued} interrupted submissions queued again)")
            server.run()
        finally:
            scheduler.stop()
    finally:
        database.close()


def _exit(signum, frame) -> None:
    raise SystemExit(128 + signum)
