"""The grader's errors: one base class, each with the exit code the `grader` command ends with.

Every error the grader raises for a person to read derives from `GraderError`; `grader/cli.py` handles them in
one place: it prints `Error: <one line>` on standard error and exits with the class's `exit_code`. click's own
usage errors (an unknown option, a missing argument) keep click's exit code 2.

Exit codes of the `grader` command:

- 0: the command did its job.
- 1: it ran, and something failed: a public test (`check`), `--fail-under` (`grade`), a mutant that survived
  (`selftest`), students with error reports (`batch`), stale material (`generate --check`), an invalid report
  (`validate`: `ReportError`), a sandbox this machine cannot set up (`SandboxError`), a grading service that
  cannot be reached or a submission limit used up for now (`grader submit`: `ServerUnreachable`,
  `LimitReached`), a Dask scheduler that cannot be reached or has no worker (`--scheduler`: `ClusterError`),
  any plain `GraderError`.
- 2: what it was given cannot be used, so nothing was done: usage errors (click's, and `InputError` in
  `grader/cli.py`), a path that is not a submission (`SubmissionError`), an unusable batch folder, metadata or
  `times.csv` (`BatchError`), a roster, `adjustments.csv`, reports folder or `--failing` query
  (`GradebookError`), a broken course: its settings (`CourseError`), reference (`GenerateError`,
  `MutationError`), hidden tests (`GradingError`) or bug catalogue (`SelftestError`); an export that cannot be
  made (`ExportError`); hidden tests without filesystem isolation (`WeakSandboxError`); a data folder, database
  or account that `grader serve` or `grader users` cannot use (`ServiceError`); a submission or token the
  grading service refuses (`grader submit`: `SubmissionRefused`); a regrade set that cannot be
  started, applied or discarded (`grader regrade`: `RegradeRefused`); `--scheduler` without the dask extra or
  with an address that is none (`DaskMissing`, `BadAddress`), and a cluster worker that grades with another
  course version (`CourseMismatch`, a `GradingError`); a class folder, past term's folder or option that
  `grader similarity` cannot use (`SimilarityError`). The grading service answers an upload it
  refuses (`UploadRefused`, `OverLimit`) with HTTP 422 or 429 instead, and `RegradeRefused` with 422 or 409.
- 130: interrupted by Ctrl-C (SIGINT). `batch` stops within about a second, writes the class files for the
  students graded so far and prints the command that finishes with `--resume`; a second Ctrl-C ends it at once.
- 143: `batch` ended at once by SIGTERM (the reports written so far are kept).

The classes stay in the modules that raise them (`grader.course.CourseError`, ...); this module holds only the
base, so that it can be imported from anywhere (the sandbox's harness excepted: it imports nothing of the grader).
"""
from __future__ import annotations

EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class GraderError(Exception):
    """An error with a one-line message for a person (what and where) and the exit code of the `grader` command.

    Raised as such, it means "ran, and something failed" (exit 1); subclasses for input that cannot be used set
    `exit_code = EXIT_UNUSABLE` (2).
    """

    exit_code: int = EXIT_FAILED

    def one_line(self) -> str:
        """The message on one line: its lines joined, surrounding space dropped (never empty)."""
        text = " ".join(line.strip() for line in str(self).splitlines() if line.strip())
        return text or type(self).__name__


class UnusableInput(GraderError):
    """Base of the errors for input that cannot be used (a course, a submission, a folder, an option): exit 2."""

    exit_code = EXIT_UNUSABLE
