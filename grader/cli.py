"""The `grader` command: thin click commands over the library (grader.grading, grader.formats, ...).

Errors are handled in one place, `GraderGroup.invoke`: a `grader.errors.GraderError` from any command becomes
`Error: <one line>` on standard error and the exit code of its class (the table is in grader/errors.py and the
README); click's own usage errors stay click's (exit 2); a Ctrl-C is exit 130, without a traceback."""
from __future__ import annotations

import io
import json
import os
import shlex
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Iterator

import click

from grader import __version__
from grader.course import find_course
from grader.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, GraderError, UnusableInput

if TYPE_CHECKING:  # grader.batch imports pytest: only `batch` loads it
    from grader.batch import Stop, Waiting

LANG = click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
                    help="Language of the feedback.")
ASSIGNMENT = click.option("--assignment", "assignment_name", default=None,
                          help="Assignment name (a folder of the course's assignments/). Default: the course's only "
                          "assignment, else the one whose files the submission holds.")
COURSE = click.option("--course", "course_dir", type=click.Path(file_okay=False, path_type=Path),
                      envvar="GRADER_COURSE", help="Course folder (assignments/, reference/, autotests/). "
                      "Default: $GRADER_COURSE, else the course installed with the grader.")


class InputError(UnusableInput):
    """An option or a course that cannot be used for this command (a missing output folder, a student course
    given to `grade`): exit code 2, like a usage error."""


STUDENT_COMMANDS = ("check", "submit", "validate", "schema")  # all the student grader (`grader export student`) offers


def student_grader() -> bool:
    """The grader of `grader export student`, which leaves out the staff tools (grader/export.py STUDENT_OMIT)."""
    return not Path(__file__).with_name("selftest.py").is_file()


class GraderGroup(click.Group):
    """The `grader` group: the one place where a GraderError becomes `Error: <one line>` and its exit code. The
    student grader lists and runs only STUDENT_COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return [name for name in names if name in STUDENT_COMMANDS] if student_grader() else names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands and cmd_name not in STUDENT_COMMANDS and student_grader():
            raise InputError(f"`grader {cmd_name}` is for course staff: this student grader has no hidden tests "
                             "and runs `grader check` (see grader --help)")
        return super().get_command(ctx, cmd_name)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if student_grader():
            formatter.write_paragraph()
            formatter.write_text("The micrograd course's grader for students: check your work with the public tests.")
        else:
            super().format_help_text(ctx, formatter)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GraderError as exc:
            # click's exit code is a class attribute (a ClassVar in click 8.2+): one class per code
            failure = type("GraderFailure", (click.ClickException,), {"exit_code": exc.exit_code})
            raise failure(exc.one_line()) from None
        except KeyboardInterrupt:  # Ctrl-C (`batch` handles its own): the shell's exit code, no "Aborted!"
            click.echo("\ninterrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


ROSTER = click.option("--roster", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                      help="roster.csv (id,name,email,sis_id,section): names in the gradebook, a row with status "
                      "`missing` for each student without a submission.")
SCHEDULER = click.option("--scheduler", envvar="GRADER_SCHEDULER", metavar="ADDRESS",
                         help="Grade on the Dask cluster of this scheduler (tcp://HOST:8786; also $GRADER_SCHEDULER): "
                         "the course and the submissions travel to its workers (no shared filesystem), each worker "
                         "checks its own sandbox, and the reports are written here. Needs the dask extra: "
                         "pip install 'micrograd-grader[dask]'.")
WEAK_SANDBOX = click.option("--allow-weak-sandbox", is_flag=True,
                            help="Grade even without filesystem isolation (bubblewrap): student code can then read "
                            "every file its uid can. A warning is printed on every run.")


def require_isolation(allow_weak_sandbox: bool) -> None:
    """Before hidden tests run: refuse a sandbox without bubblewrap in one line, or warn when it is allowed."""
    from grader.sandbox import check_isolation

    warning = check_isolation(allow_weak_sandbox)  # WeakSandboxError (exit 2), SandboxError (exit 1)
    if warning:
        click.echo(f"warning: {warning}", err=True)


def load_assignment(course_dir: Path | None, name: str | None, hidden_tests: bool = False,
                    submission: Path | None = None):
    """The assignment (named, the only one, or the one `submission` is for); with hidden_tests, refuse a course
    without them (the student grader) in one line."""
    if submission is not None and not submission.exists():
        raise InputError(f"{submission}: no such file or folder")
    assignment = find_course(course_dir).choose(name, submission)
    if hidden_tests and not assignment.has_hidden_tests:
        raise InputError(f"the course in {assignment.course.root} has no hidden tests for {assignment.name} (no "
                         f"reference/{assignment.name}/ and autotests/{assignment.name}/): this is the student "
                         "grader, which runs `grader check` only; grading needs the staff course (--course)")
    return assignment


def require_folder_of(out: Path | None) -> None:
    """Fail before the work, not after it, when an output file's folder does not exist."""
    if out is not None and not out.resolve().parent.is_dir():
        raise InputError(f"{out}: the folder {out.resolve().parent} does not exist")


@click.group(cls=GraderGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Autograder for the micrograd course: grade submissions safely, check your work, run course CI."""
    for stream in (sys.stdout, sys.stderr):  # a cp1252 or GBK console cannot show every ✓ or 汉字: never a crash
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@ASSIGNMENT
@COURSE
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (atomically) instead of standard output.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "gradescope", "junit", "markdown"]),
              help="Report format. Default: text on a terminal, json otherwise.")
@LANG
@click.option("--student", help="Student id for the report. Default: the submission's file or folder name.")
@click.option("--seed", type=int, help="Seed for the random test inputs. Default: derived from the submission.")
@click.option("--fail-under", type=float, help="Exit 1 when the score is below this.")
@WEAK_SANDBOX
def grade(path: Path, assignment_name: str, course_dir: Path | None, out: Path | None, fmt: str | None,
          lang: str, student: str | None, seed: int | None, fail_under: float | None,
          allow_weak_sandbox: bool) -> None:
    """Grade one submission: PATH is a folder of files, a .zip, a .ipynb, or a folder holding one notebook.

    Exit status: 0 when a report was produced (whatever the score), 1 when --fail-under is not met or the
    sandbox cannot be set up, 2 for usage errors, input that is not a submission at all, a broken course
    (hidden tests that do not run included), and a sandbox without filesystem isolation (bubblewrap) unless
    --allow-weak-sandbox.
    """
    from grader.formats import render, write_report_atomic, write_text_atomic
    from grader.grading import grade_path

    require_folder_of(out)
    assignment = load_assignment(course_dir, assignment_name, hidden_tests=True, submission=path)
    require_isolation(allow_weak_sandbox)
    report = grade_path(path, assignment, student=student, lang=lang, seed=seed)
    data = report.to_dict()
    fmt = fmt or ("text" if out is None and sys.stdout.isatty() else "json")
    if out is not None and fmt == "json":
        write_report_atomic(data, out)
    else:
        from grader.formats import validate_report

        validate_report(data)
        text = render(data, fmt, lang, color=out is None and sys.stdout.isatty())
        if out is not None:
            write_text_atomic(out, text)
        else:
            click.echo(text, nl=not text.endswith("\n"))
    if fail_under is not None and report.score < fail_under:
        click.echo(f"score {report.score:g} is below --fail-under {fail_under:g}", err=True)
        sys.exit(1)


@main.command()
@click.argument("path", type=click.Path(path_type=Path), default=".")
@ASSIGNMENT
@COURSE
@click.option("--server", envvar="GRADER_SERVER", required=True, metavar="URL",
              help="The grading service, e.g. https://grader.example.edu (or $GRADER_SERVER).")
@click.option("--token", envvar="GRADER_TOKEN", required=True, help="Your token (or $GRADER_TOKEN; in CI, a secret).")
@click.option("--wait", is_flag=True, help="Wait for the hidden tests' verdict and print it.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=300, show_default=True,
              help="With --wait: how long to wait, in seconds (the service keeps the submission anyway).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "markdown"]), default="text",
              show_default=True, help="With --wait: how to print the report.")
@LANG
@click.option("--fail-under", type=float, help="With --wait: exit 1 when the score is below this.")
def submit(path: Path, assignment_name: str | None, course_dir: Path | None, server: str, token: str, wait: bool,
           timeout_s: float, fmt: str, lang: str, fail_under: float | None) -> None:
    """Submit your work (PATH: your folder, .zip or notebook; default: this folder) to the grading service.

    The submission is checked as `grader grade` would read it, then uploaded; the service answers with its place
    in the queue. With --wait it prints the hidden tests' report once graded (only the groups you may see).
    Exit status: 0 when accepted (and, with --wait, graded), 1 when the grading failed on the service, the score
    is below --fail-under, your submission limit is used up for now, or the service cannot be reached;
    2 when PATH holds no submission, or the service refuses it or your token.
    """
    from grader.client import Client, pack
    from grader.formats import render, validate_report

    assignment = load_assignment(course_dir, assignment_name, submission=path)
    client = Client(server, token)
    accepted = client.submit(assignment.name, pack(path, assignment))
    click.echo(f"submission {accepted['id']} accepted: {accepted.get('status')}, position {accepted.get('position')}",
               err=True)
    if not wait:
        return

    def progress(state: dict) -> None:
        where = f", position {state['position']}" if state.get("position") is not None else ""
        click.echo(f"submission {state['id']}: {state.get('status')}{where}", err=True)

    state = client.wait(int(accepted["id"]), timeout_s, progress)
    report = state.get("report")
    if state.get("status") != "graded" or not isinstance(report, dict):
        raise GraderError(f"submission {state['id']} could not be graded on the service ({state.get('status')})")
    validate_report(report)  # the service's answer, checked before it is shown (ReportError: one line, exit 1)
    text = render(report, fmt, lang, color=fmt == "text" and sys.stdout.isatty())
    click.echo(text, nl=not text.endswith("\n"))
    if fail_under is not None and float(report["score"]) < fail_under:
        click.echo(f"score {report['score']:g} is below --fail-under {fail_under:g}", err=True)
        sys.exit(1)


@main.command()
@click.argument("path", type=click.Path(path_type=Path), default=".")
@ASSIGNMENT
@COURSE
@LANG
@click.option("--only", type=click.Choice(["ops", "backprop", "nn", "training"]),
              help="Run only the public tests of one group.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "markdown"]), default="text",
              show_default=True, help="Output format; junit and markdown are for CI (e.g. GitHub Actions).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the output here too.")
def check(path: Path, assignment_name: str, course_dir: Path | None, lang: str, only: str | None, fmt: str,
          out: Path | None) -> None:
    """Run the public tests on your work (PATH: your folder or notebook; default: this folder).

    Prints which functions are done, which are wrong (and why), and which are not written yet.
    Exit status: 0 when every public test passes, 1 otherwise (or when the sandbox cannot be set up), 2 when
    PATH holds no submission or the course cannot be used.
    """
    from grader.checking import all_passed, check_submission, render_check_text
    from grader.formats import render, write_text_atomic
    from grader.sandbox import isolation_line
    from grader.submission import load_submission

    require_folder_of(out)

    assignment = load_assignment(course_dir, assignment_name, submission=path)
    submission = load_submission(path.resolve(), assignment)
    data = check_submission(submission, assignment, lang=lang, only=only).to_dict()
    tty = sys.stdout.isatty()
    text = render_check_text(data, lang, color=tty) if fmt == "text" else render(data, fmt, lang)
    click.echo(isolation_line(data["isolation"], lang), err=True)
    click.echo(text, nl=not text.endswith("\n"))
    if out is not None:
        write_text_atomic(out, render_check_text(data, lang) if fmt == "text" else text)
    sys.exit(0 if all_passed(data) else 1)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@ASSIGNMENT
@COURSE
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Where reports, gradebook.csv, summary.json and index.html go.")
@click.option("--jobs", type=click.IntRange(min=1), help="Submissions graded at once. Default: the number of cores.")
@click.option("--resume", is_flag=True, help="Keep reports made from the same submission with the same hidden "
              "tests and points; rescore (no student code runs) those whose points, late policy or submission time "
              "changed; grade the rest.")
@LANG
@click.option("--only", multiple=True, metavar="ID", help="Grade only this student (repeatable).")
@click.option("--timezone", "zone_name", metavar="ZONE", help="How to read submission times written without a "
              "time zone (an IANA name, e.g. Asia/Shanghai). Without it such a time stops the batch.")
@ROSTER
@SCHEDULER
@WEAK_SANDBOX
@click.option("--similarity", "similarity", is_flag=True, help="Then run `grader similarity` on FOLDER: "
              "OUT_DIR/similarity.html (linked from the dashboard) and OUT_DIR/similarity.json.")
def batch(folder: Path, assignment_name: str, course_dir: Path | None, out_dir: Path, jobs: int | None,
          resume: bool, lang: str, only: tuple[str, ...], zone_name: str | None, roster: Path | None,
          scheduler: str | None, allow_weak_sandbox: bool, similarity: bool) -> None:
    """Grade every submission in FOLDER in parallel and write a gradebook and a dashboard.

    FOLDER may hold <student>/ folders, <student>.zip, <student>.ipynb and a Gradescope export
    (submission_metadata.yml), mixed. Submission times (for the late policy) come from Gradescope's metadata,
    FOLDER/times.csv (`student,submitted_at` rows, ISO 8601 with a zone) or <student>.submission.json beside a
    submission; never from inside one. A time without a zone stops the batch before anyone is graded, unless
    --timezone says how to read it. Course staff's FOLDER/adjustments.csv (student,extra_days,points,final,note)
    gives extensions and manual adjustments; --roster adds names, emails and missing students to the gradebook.
    Reports and feedback pages go to OUT_DIR/students/.

    One bad submission never stops the batch: it gets an error report. Exit status: 0 when every student was
    graded, 1 when some could not be (error reports; the gradebook and dashboard are written all the same),
    2 for usage errors, an unusable FOLDER or times.csv, a broken course, and a sandbox without filesystem
    isolation (bubblewrap) unless --allow-weak-sandbox (nobody is graded); 1 also when the sandbox cannot be
    set up (the batch stops).

    Ctrl-C stops the batch within about a second: the submissions in flight are dropped (their sandboxes
    killed), the students not graded yet get no report, the gradebook, summary and dashboard are written for
    those graded, the command that finishes the batch (this one with --resume) is printed, and the exit status
    is 130. A second Ctrl-C ends it at once (exit 130), as does SIGTERM (exit 143); the reports written stay.

    With --scheduler the submissions are graded on a Dask cluster's workers (--jobs is then theirs). A worker that
    dies takes only the submissions it was grading: each is tried once more on another worker (its report says
    so), then gets an error report that says why. A worker that grades with another course version stops the
    batch.
    """
    from grader.batch import Stop, run_batch
    from grader.cluster import cluster_executor, scheduler_address
    from grader.parallel import default_jobs
    from grader.sandbox import SandboxError, WeakSandboxError

    assignment = load_assignment(course_dir, assignment_name, hidden_tests=True, submission=folder)
    address = scheduler_address(scheduler)
    if address is None:
        require_isolation(allow_weak_sandbox)
    progress = TerminalProgress() if sys.stderr.isatty() else PlainProgress()
    stop = Stop()
    finish = resume_command()
    executor = cluster_executor(address, assignment.course, allow_weak_sandbox=allow_weak_sandbox) if address \
        else None
    try:
        with batch_signals(stop, finish):
            result = run_batch(folder, assignment, out_dir, jobs=jobs or default_jobs(), resume=resume, lang=lang,
                               only=list(only) or None, progress=progress, allow_weak_sandbox=allow_weak_sandbox,
                               stop=stop, zone=time_zone(zone_name), roster=roster, executor=executor,
                               similarity=similarity)
    except SandboxError as exc:
        if isinstance(exc, WeakSandboxError):
            raise
        raise SandboxError(f"{exc} (the batch stopped: no student was graded with a broken sandbox)") from None
    finally:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
    rate = len(result.graded) / result.duration_s if result.duration_s else 0.0
    click.echo(f"graded {len(result.graded)}, up to date {len(result.skipped)}, rescored {len(result.rescored)} "
               f"(points, late policy or times changed), in {result.duration_s:.1f} s "
               f"({rate:.1f}/s); gradebook: {out_dir / 'gradebook.csv'}, dashboard: {out_dir / 'index.html'}")
    if result.similarity is not None:
        click.echo(similarity_summary(result.similarity, out_dir / "similarity.html", out_dir / "similarity.json"))
    if result.errored:
        click.echo(f"not graded (error reports): {', '.join(result.errored)}", err=True)
    if result.not_graded:
        click.echo(f"interrupted: {len(result.not_graded)} not graded yet (no report); to finish: {finish}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.errored:
        sys.exit(1)


def resume_command() -> str:
    """This command line with --resume: what finishes an interrupted batch."""
    start = sys.orig_argv[:len(sys.orig_argv) - len(sys.argv) + 1]  # e.g. `python3 -m grader`
    program = start if "-m" in start else [click.get_current_context().find_root().info_name or "grader"]
    return shlex.join([*program, *sys.argv[1:], *([] if "--resume" in sys.argv else ["--resume"])])


@contextmanager
def batch_signals(stop: Stop, finish: str) -> Iterator[None]:
    """While a batch runs: the first Ctrl-C (SIGINT) asks it to stop; a second one, or SIGTERM, ends the grader
    at once, its workers told to stop (each kills its sandboxes; grader.parallel)."""
    from grader.parallel import stop_workers

    grader = os.getpid()

    def say(text: str) -> None:  # os.write: the handler may have interrupted a print() in the middle
        os.write(2, f"\ngrader: {text}\n".encode("utf-8", "replace"))

    def handle(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != grader:  # a worker just forked, before it sets its own handlers
            if signum == signal.SIGTERM:
                os._exit(EXIT_TERMINATED)
            return
        if signum == signal.SIGINT and not stop.requested:
            stop.request()
            say("stopping: the submissions in flight are dropped (Ctrl-C again to end at once)")
            return
        stop_workers()
        say(f"ended at once by {'SIGTERM' if signum == signal.SIGTERM else 'a second Ctrl-C'}; the reports "
            f"written are kept; to finish: {finish}")
        os._exit(EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED)

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class PlainProgress:
    """For logs: a line per student graded, and one naming a submission that takes long (then every 30 s)."""

    def __init__(self) -> None:
        self.shown: tuple[str, int] | None = None

    def __call__(self, done: int, total: int, latest: str | Waiting) -> None:
        if isinstance(latest, str):
            click.echo(f"[{done}/{total}] {latest}", err=True)
        elif self.shown != (shown := (latest.student, int(latest.seconds) // 30)):
            self.shown = shown
            click.echo(f"[{done}/{total}] waiting for {latest.student} ({latest.seconds:.0f} s)", err=True)


def time_zone(name: str | None):
    """--timezone: an IANA zone (zoneinfo), or None; an unknown name is a one-line InputError."""
    if name is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--timezone {name!r}: not a time zone name such as Asia/Shanghai or UTC") from None




class TerminalProgress:
    """One redrawn line: a bar, the count, the rate and the time left, and the submission in flight longest
    when none has finished for a while."""

    def __init__(self) -> None:
        import time

        self.clock = time.perf_counter
        self.started = self.clock()

    def __call__(self, done: int, total: int, latest: str | Waiting) -> None:
        elapsed = self.clock() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate else 0.0
        filled = int(30 * done / total)
        line = f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {rate:.1f}/s ETA {eta:.0f}s "
        if not isinstance(latest, str):
            line += f"... waiting for {latest.student} ({latest.seconds:.0f} s)"
        click.echo(line + "\x1b[K" + ("\n" if done == total else ""), err=True, nl=False)  # \x1b[K: clear the rest


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@ASSIGNMENT
@COURSE
@click.option("--out", "html", type=click.Path(dir_okay=False, path_type=Path), default=Path("similarity.html"),
              show_default=True, help="The page: pairs ranked, groups of three or more, matched regions side by side.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the pairs as JSON here (pairs, clusters, who was not compared; "
              "grader/schemas/similarity.schema.json).")
@click.option("--threshold", type=float, default=None, metavar="T",
              help="List pairs whose similarity is at least T: the share (0 to 1) of one student's own code, in "
              "stretches of 20 tokens or more, found in the other's. [default: 0.55; copies measured 0.8 to 1, "
              "independent solutions at most 0.33: see the README]")
@click.option("--common", type=float, default=None, metavar="SHARE",
              help="Code found in more than this share of the submissions (and in more than 10) is common code, "
              "not evidence, like MOSS's -m. [default: 0.5]")
@click.option("--past", "past", multiple=True, type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="A past term's class folder, compared with this class (not with itself); repeatable.")
def similarity(folder: Path, assignment_name: str | None, course_dir: Path | None, html: Path,
               json_path: Path | None, threshold: float | None, common: float | None, past: tuple[Path, ...]) -> None:
    """Find pairs of students in FOLDER whose own code is alike: copied solutions, not the shared skeleton.

    FOLDER is a class folder in any layout `grader batch` reads. Only what students wrote counts: lines of the
    course material (skeletons, given files, the code of the notebook and READMEs) are left out, and so is code
    most of the class shares (--common). Submissions are compared on normalised tokens (identifiers, literals,
    comments, spacing and the order of functions do not matter), never run. Students who wrote too little of their
    own to compare (the untouched skeleton) are listed as such, not as copies; unreadable submissions are listed
    with the reason. Exit status: 0 when the outputs are written (whatever they find), 2 for an unusable FOLDER,
    --past folder, assignment or option.
    """
    from grader.similarity import DEFAULT_COMMON, DEFAULT_THRESHOLD, compare_class, write_outputs

    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    common = DEFAULT_COMMON if common is None else common
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold {threshold:g}: not between 0 and 1")
    if not 0.0 < common <= 1.0:
        raise InputError(f"--common {common:g}: not a share above 0 and at most 1")
    require_folder_of(html)
    require_folder_of(json_path)
    for extra in past:
        if not extra.is_dir():
            raise InputError(f"--past {extra}: not a folder")
    assignment = load_assignment(course_dir, assignment_name, submission=folder)
    result = compare_class(folder, assignment, past=list(past), threshold=threshold, common=common)
    write_outputs(result, html, json_path)
    click.echo(similarity_summary(result, html, json_path))


def similarity_summary(result, html: Path | None, json_path: Path | None) -> str:
    """What `grader similarity` (and `grader batch --similarity`) prints: the counts, the top pairs, the files."""
    lines = [f"compared {len(result.compared)} submissions in {result.duration_s:.1f} s: {len(result.pairs)} pair(s) "
             f"at or above {result.threshold:g}, {len(result.clusters)} group(s) of three or more"]
    lines += [f"  {p.similarity:.2f}  {p.a}  {p.b}{' (past term)' if p.past else ''}" for p in result.pairs[:10]]
    if len(result.pairs) > 10:
        lines.append(f"  ... and {len(result.pairs) - 10} more")
    if result.nothing_written:
        lines.append(f"too little of their own code to compare: {', '.join(result.nothing_written)}")
    if result.skipped:
        lines.append(f"not read: {'; '.join(f'{s.student}: {s.reason}' for s in result.skipped)}")
    lines.append("written: " + ", ".join(str(p) for p in (html, json_path) if p is not None))
    return "\n".join(lines)


@main.command()
@click.argument("reports_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--format", "layout", type=click.Choice(["csv", "canvas", "moodle"]), default="csv", show_default=True,
              help="csv: the batch's gradebook.csv (every group, late penalty, adjustment, status); canvas: Canvas's "
              "gradebook import; moodle: Moodle's CSV grade import (map Email address or ID number).")
@ROSTER
@click.option("--excel", is_flag=True, help="Start with a UTF-8 byte order mark, so that Excel reads names right.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of standard output.")
@click.option("--failing", metavar="TEST_OR_FUNCTION", help="Instead: list who did not pass a test (its name or "
              "group::name) or any test of a function (e.g. Value.tanh), tab-separated with the feedback's first line.")
def gradebook(reports_dir: Path, layout: str, roster: Path | None, excel: bool, out: Path | None,
              failing: str | None) -> None:
    """Write the gradebook of the reports `grader batch` wrote in REPORTS_DIR (its --out-dir), for an LMS.

    Grades are the final scores (late penalty and course staff's adjustments applied). A submission the grader
    could not grade (status `error`) has an empty grade: fix the cause and grade it again. Exit status: 0 when
    written, 2 for a reports folder, roster or query that cannot be used.
    """
    from grader import gradebook as book
    from grader.formats import write_text_atomic

    require_folder_of(out)
    reports = book.read_reports(reports_dir)
    if failing is not None:
        text = book.failing_text(book.failing(reports, failing))
    else:
        people = book.read_roster(roster) if roster else None
        book.off_roster(reports, people)
        rows = book.class_rows(reports, people)
        text = book.gradebook_text(layout, book.class_info(reports), rows, excel=excel)
    if out is not None:
        write_text_atomic(out, text)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("report", type=click.Path(path_type=Path))
def validate(report: Path) -> None:
    """Check a JSON report against the schema and its own sums; exit 1 with the first problem."""
    from grader.formats import load_report

    load_report(report)  # ReportError: exit 1
    click.echo(f"{report}: valid")


@main.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of score reports."""
    from grader.formats import SCHEMA_PATH

    click.echo(json.dumps(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")), indent=2))


@main.command()
@ASSIGNMENT
@COURSE
@click.option("--check", is_flag=True, help="Change nothing; exit 1 with a diff when assignments/ is out of date.")
def generate(assignment_name: str | None, course_dir: Path | None, check: bool) -> None:
    """Write the student material assignments/NAME/ from reference/NAME/ (skeletons, notebook, READMEs, public
    tests, the harness commands and messages); every assignment of the course unless --assignment is given.

    Exit status: 0 when done (or up to date), 1 when --check finds an assignment out of date, 2 for a course
    or reference that cannot be used.
    """
    from grader.generate import diff_assignment, reference_names, write_assignment

    root = find_course(course_dir).root
    for name in [assignment_name] if assignment_name else reference_names(root):
        if check:
            diff = diff_assignment(root, name)
            if diff:
                click.echo(diff, err=True)
                raise GraderError(f"assignments/{name} is out of date: run `grader generate`")
            click.echo(f"assignments/{name} is up to date")
            continue
        changed = write_assignment(root, name)
        click.echo(f"wrote {len(changed)} file(s) in assignments/{name}" + "".join(f"\n  {p}" for p in changed))


@main.command()
@ASSIGNMENT
@COURSE
@click.option("--jobs", type=click.IntRange(min=1), help="Mutants graded at once. Default: the number of cores.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the full result (kill rates, survivors with diffs, catalogue) as JSON here.")
@click.option("--function", "functions", multiple=True, metavar="PATTERN",
              help="Only mutants of matching functions, e.g. 'Value.tanh*' (repeatable; for quick runs).")
@click.option("--bug", "bugs", multiple=True, metavar="NAME", help="Only these catalogue bugs (repeatable).")
@click.option("--seeds", type=click.IntRange(min=1), default=8, show_default=True,
              help="Grade under seeds 1..N: a mutant or bug counts as caught only when it loses points under "
              "every seed.")
def selftest(assignment_name: str, course_dir: Path | None, jobs: int | None, report_file: Path | None,
             functions: tuple[str, ...], bugs: tuple[str, ...], seeds: int) -> None:
    """Prove the hidden tests are strong: grade the reference, its mutants and a catalogue of student bugs.

    The reference must get full marks; every mutant of its solution regions must lose points unless
    autotests/equivalent_mutants.toml explains why it cannot change behaviour; every catalogue bug must lose
    points in its own group with feedback that names the faulty function; all of it under every seed of
    --seeds (the output names the weakest seed and what each bug costs). Exit 1 otherwise; 2 for a course
    that cannot be used (its settings, a reference that cannot be mutated, a malformed catalogue).
    """
    from grader.formats import write_text_atomic
    from grader.parallel import default_jobs
    from grader.selftest import render_selftest, run_selftest, selftest_exit_code

    require_folder_of(report_file)
    assignment = load_assignment(course_dir, assignment_name, hidden_tests=True)
    progress = TerminalProgress() if sys.stderr.isatty() else None
    result = run_selftest(assignment.course, assignment, jobs or default_jobs(), functions=list(functions) or None,
                          bugs=list(bugs) or None, progress=progress, seeds=seeds)
    click.echo(render_selftest(result), nl=False)
    if report_file is not None:
        write_text_atomic(report_file, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    sys.exit(selftest_exit_code(result))


@main.group("export")
def export_group() -> None:
    """Package the course: what students get (public tests only), or a Gradescope autograder bundle.

    \b
    grader export student --out DIR                 for students: no reference, no hidden tests
    grader export gradescope --out autograder.zip   for Gradescope: course staff only
    """


@export_group.command("student")
@ASSIGNMENT
@COURSE
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="A new (or empty) folder for the export.")
def export_student_command(assignment_name: str, course_dir: Path | None, out: Path) -> None:
    """Write what students get into OUT: NAME/ and grader-src/.

    NAME/ is the assignment folder (skeletons, notebook, READMEs, public tests, assignment.toml, template/).
    grader-src/ is the grader's source with the public tests only: `pip install ./grader-src` gives a `grader`
    that runs `grader check` without --course, and holds neither reference/ nor autotests/ (nor the grader
    code that spells out a solution). Refuses when assignments/NAME is out of date with reference/.
    """
    from grader.export import export_student

    assignment = load_assignment(course_dir, assignment_name)
    export_student(out, course_dir=course_dir, name=assignment.name)
    click.echo(f"wrote {out}: {assignment.name}/ (for students) and grader-src/ "
               f"(students install it: python -m pip install ../grader-src)")


@export_group.command("gradescope")
@ASSIGNMENT
@COURSE
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The zip to write, e.g. autograder.zip (replaced if it exists).")
def export_gradescope_command(assignment_name: str, course_dir: Path | None, out: Path) -> None:
    """Write a Gradescope autograder bundle: the zip to upload under "Configure Autograder".

    It holds setup.sh (installs python3, pip, bubblewrap, then this grader, pinned: its source is in the zip),
    run_autograder (grades /autograder/submission into /autograder/results/results.json, always writing one) and
    grader-src/ with the whole course: assignments/, reference/ and the hidden tests. Each test's Gradescope
    visibility is its group's `visibility` in assignment.toml. Course staff only: never give it to students.
    """
    from grader.export import export_gradescope

    export_gradescope(out, course_dir=course_dir,
                      name=load_assignment(course_dir, assignment_name, hidden_tests=True).name)
    click.echo(f"wrote {out}: upload it to Gradescope (Configure Autograder, zip file upload)")


DATA = click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                    help="The service's data folder: its database (grader.db, unless --db) and the stored uploads. "
                    "Made when missing.")
DB = click.option("--db", "db_url", envvar="GRADER_DB_URL", metavar="URL",
                  help="Database URL, e.g. postgresql+psycopg://user:password@host/grader. Default: SQLite in WAL "
                  "mode in the data folder. Also from $GRADER_DB_URL.")


def require_service() -> None:
    """The grading service's modules import (Flask, SQLAlchemy and waitress, which the grader's install brings),
    else a one-line InputError that says how to repair the installation."""
    try:
        import grader.service.server  # noqa: F401 - Flask, SQLAlchemy and waitress
    except ImportError as exc:
        raise InputError(f"the grading service needs {exc.name}, which installs with the grader: "
                         "pip install micrograd-grader") from None


@main.command()
@DATA
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: a free one, printed on start).")
@COURSE
@click.option("--jobs", type=click.IntRange(min=1), help="Submissions graded at once. Default: the number of cores.")
@DB
@LANG
@SCHEDULER
@WEAK_SANDBOX
def serve(data_dir: Path, host: str, port: int, course_dir: Path | None, jobs: int | None, db_url: str | None,
          lang: str, scheduler: str | None, allow_weak_sandbox: bool) -> None:
    """Run the grading service: the JSON API under /api/v1, a scheduler and grading workers, in one process.

    Students upload with `Authorization: Bearer TOKEN` (tokens from `grader users`): POST
    /api/v1/assignments/NAME/submissions with a multipart field `file` (a .zip, a .ipynb, or the .py of a
    one-file assignment). Every upload is stored and committed before it is acknowledged; a server stopped or
    killed while grading grades those submissions again when it starts. Stops on Ctrl-C or SIGTERM.

    With --scheduler the submissions are graded on a Dask cluster's workers (--jobs defaults to their threads);
    the jobs stay in the service's database, so a lost worker never loses an acknowledged submission.
    """
    from grader.cluster import scheduler_address

    require_service()
    from grader.service.server import serve as run_server

    run_server(data_dir, find_course(course_dir), host=host, port=port, jobs=jobs, db_url=db_url, lang=lang,
               allow_weak_sandbox=allow_weak_sandbox, cluster=scheduler_address(scheduler),
               say=lambda line: click.echo(line, err=True))


@main.command("worker-check")
@click.option("--scheduler", envvar="GRADER_SCHEDULER", metavar="ADDRESS",
              help="Check every worker of the Dask cluster of this scheduler instead of this machine (also "
              "$GRADER_SCHEDULER).")
def worker_check(scheduler: str | None) -> None:
    """Say what this machine (or every worker of a Dask cluster) lacks to grade: Python, the grader, Dask,
    bubblewrap (the system's or the bundled one), the uid drop (root), cgroups, and a real sandbox started with
    the isolation layers it got.

    Exit status: 0 when everything is there, 1 when something is missing (each line says what to do).
    """
    from grader.cluster import scheduler_address
    from grader.workers import check_cluster, check_worker, render

    address = scheduler_address(scheduler)
    checked = check_cluster(address) if address else {f"this machine ({os.uname().nodename})": check_worker()}
    for where, findings in checked.items():
        click.echo(render(findings, where if not address else f"worker {where}"))
    if any(not f.ok for findings in checked.values() for f in findings):
        sys.exit(1)


@main.group("users")
def users_group() -> None:
    """Accounts of the grading service (`grader serve`): tokens are shown once and stored hashed."""


@users_group.command("import")
@DATA
@DB
@click.argument("roster", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def users_import(data_dir: Path, db_url: str | None, roster: Path) -> None:
    """Add the students of ROSTER (a CSV file with the header id,name,email; sis_id and section may follow) and
    print `student,token` as CSV for each new one. Students who have an account keep their token (their names
    and emails are updated)."""
    import csv

    require_service()
    from grader.service.db import Database
    from grader.service.users import import_roster

    database = Database(data_dir, db_url)
    try:
        created, existing = import_roster(database, roster)
    finally:
        database.close()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["student", "token"])
    writer.writerows(created)
    if existing:
        click.echo(f"kept the tokens of {len(existing)} students who have an account: {', '.join(existing)}",
                   err=True)


@users_group.command("add-staff")
@DATA
@DB
@click.argument("name")
def users_add_staff(data_dir: Path, db_url: str | None, name: str) -> None:
    """Add a staff account NAME and print its token (shown this once)."""
    require_service()
    from grader.service.db import Database
    from grader.service.users import add_staff

    database = Database(data_dir, db_url)
    try:
        click.echo(add_staff(database, name))
    finally:
        database.close()


@main.command()
@DATA
@DB
@COURSE
@click.option("--assignment", "assignment_name", required=True, metavar="NAME", help="The assignment to regrade.")
@click.option("--student", "students", multiple=True, metavar="ID",
              help="Regrade only this student (repeat it for more). Default: every student with a graded submission.")
@click.option("--show", "show_id", type=int, metavar="ID", help="Show regrade set ID instead of starting one.")
@click.option("--apply", "apply_id", type=int, metavar="ID",
              help="Make the new results of set ID the students' current ones (once it is done).")
@click.option("--discard", "discard_id", type=int, metavar="ID", help="Drop the results of set ID.")
def regrade(data_dir: Path, db_url: str | None, course_dir: Path | None, assignment_name: str,
            students: tuple[str, ...], show_id: int | None, apply_id: int | None, discard_id: int | None) -> None:
    """Regrade the current submission of every student (or those given) on the grading service, with the course
    as `grader serve` has it now (restart it after changing tests or points): the running server grades the set
    after every upload. Prints the set: each student's old and new score side by side. The old results are kept;
    --apply makes the new ones current (the gradebook's), --discard drops them. The same as POST
    /api/v1/assignments/NAME/regrades for staff."""
    given = [value for value in (show_id, apply_id, discard_id) if value is not None]
    if len(given) > 1 or (given and students):
        raise click.UsageError("give at most one of --show, --apply, --discard, and no --student with it")
    require_service()
    from grader.service.db import Database, Regrade, now
    from grader.service.regrades import decide, start_regrade, summary, summary_lines

    chosen = find_course(course_dir).assignment(assignment_name)
    name = chosen.name
    database = Database(data_dir, db_url)
    try:
        if given:
            with database.reader() as session:
                found = session.get(Regrade, given[0])
            if found is None or found.assignment != name:
                raise InputError(f"no regrade {given[0]} of {name}")
            if show_id is None:
                found = decide(database, given[0], apply_id is not None, now()) or found  # sets are never deleted
        else:
            found = start_regrade(database, name, None, students or None, now(), chosen.counts == "best")
        with database.reader() as session:
            click.echo("\n".join(summary_lines(summary(session, found))))
    finally:
        database.close()
