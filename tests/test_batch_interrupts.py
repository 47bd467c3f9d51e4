"""Interrupting `grader batch` through the real CLI: Ctrl-C, a second Ctrl-C, SIGTERM, SIGKILL of the grader.

Two students' engine.py never finishes importing and leaves a marked process in its sandbox. Each test signals
the batch once the quick students are graded and the slow ones are in flight, then looks in /proc for anything
of the batch left: the grader and its workers (their command line names the class folder), the sandboxes
(bwrap's names the batch's TMPDIR), the students' processes (the marker). Every wait is bounded.
"""
import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.batch import SLOW_S, Stop, run_batch
from grader.course import find_course
from grader.sandbox import SandboxError, check_isolation

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "submissions" / "micrograd" / "alice_correct"
QUICK = ("alice1", "alice2", "zoe")  # zoe comes after the slow ones: never started when the batch is stopped
SLOW = ("yan1", "yan2")
TIMEOUT = 60


def bwrap_works() -> bool:
    try:
        check_isolation(False)
    except SandboxError:
        return False
    return True


pytestmark = pytest.mark.skipif(not bwrap_works(), reason="grader batch needs bubblewrap")


def hanging_engine(marker: str) -> str:
    """An engine.py whose import never ends, with a child that outlives its parent unless the sandbox is killed."""
    return ("import os, sys\n"
            "if os.fork() == 0:\n"
            "    os.execv(sys.executable, [sys.executable, '-I', '-S', '-c', 'import time; time.sleep(900)',"
            f" {marker!r}])\n"
            "while True:\n"
            "    pass\n" + (ALICE / "engine.py").read_text(encoding="utf-8"))


def processes_with(*needles: str) -> list[str]:
    """The command lines of the live processes (not this one) that contain one of `needles`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if any(needle in line for needle in needles):
            found.append(f"{pid}: {line[:200]}")
    return found


def wait_for(condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Batch:
    """`grader batch --jobs 2` on a class of three quick students and two that hang, in its own session."""

    def __init__(self, base: Path) -> None:
        self.marker = f"grader-interrupts-{uuid.uuid4().hex}"
        self.folder = base / "class"
        for student in QUICK + SLOW:
            shutil.copytree(ALICE, self.folder / student)
        for student in SLOW:
            (self.folder / student / "engine.py").write_text(hanging_engine(self.marker), encoding="utf-8")
        self.out = base / "out"
        # the sandboxes' folders go here, so bwrap's command line names it: a folder the slot uids can reach
        self.tmp = Path(tempfile.mkdtemp(prefix="grader-interrupts-"))
        self.tmp.chmod(0o755)
        self.args = ["batch", str(self.folder), "--out-dir", str(self.out), "--jobs", "2"]
        self.env = {**os.environ, "PYTHONIOENCODING": "utf-8", "TMPDIR": str(self.tmp)}
        # files, not pipes: what the grader said so far can be read while it runs
        self.stdout, self.stderr = base / "stdout.txt", base / "stderr.txt"
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "grader", *self.args], stdout=out, stderr=err,
                                            cwd=ROOT, env=self.env, start_new_session=True)

    def wait_for_the_slow_ones(self) -> None:
        """The quick students graded (their reports written), the slow ones in flight (their processes alive)."""
        assert wait_for(lambda: all(self.report(s).exists() for s in QUICK[:2])), self.stop_now()
        assert wait_for(lambda: processes_with(self.marker)), self.stop_now()

    def signal(self, signum: int) -> None:
        """SIGINT as a terminal's Ctrl-C sends it, to the whole process group (the workers too); SIGTERM as
        `kill` sends it, to the grader alone."""
        if signum == signal.SIGINT:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)

    def report(self, student: str) -> Path:
        return self.out / "students" / f"{student}.json"

    def said(self) -> str:
        return self.stderr.read_text(encoding="utf-8")

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str]:
        code = self.process.wait(timeout=timeout)
        return code, self.stdout.read_text(encoding="utf-8"), self.said()

    def stop_now(self) -> str:
        """For a failure's message: what the grader said, once it is killed."""
        os.killpg(self.process.pid, signal.SIGKILL)
        return self.finish()[2]

    def left(self) -> list[str]:
        return processes_with(str(self.folder), str(self.tmp), self.marker)

    def close(self) -> None:
        """Whatever a failed test leaves: the grader's session, then anything found by name."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        for line in self.left():
            try:
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def batch(tmp_path):
    run = Batch(tmp_path)
    yield run
    run.close()


def gradebook_students(out: Path) -> list[str]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return sorted(row["student"] for row in csv.DictReader(f))


def test_ctrl_c_stops_at_once_keeps_what_is_graded_and_resume_finishes(batch):
    batch.wait_for_the_slow_ones()
    time.sleep(SLOW_S + 1.5)  # long enough for the progress to name a slow one
    batch.signal(signal.SIGINT)
    stopped = time.monotonic()
    code, out, err = batch.finish()
    assert time.monotonic() - stopped < 10
    assert code == 130, err
    assert "Traceback" not in err and "Aborted" not in err
    assert re.search(r"waiting for yan[12] \(\d+ s\)", err), err
    assert "graded 2, up to date 0" in out
    resume = shlex.join([sys.executable, "-m", "grader", *batch.args, "--resume"])
    assert f"interrupted: 3 not graded yet (no report); to finish: {resume}" in err
    # the class files show who is graded; the others got no report (they are not errors)
    assert gradebook_students(batch.out) == ["alice1", "alice2"]
    summary = json.loads((batch.out / "summary.json").read_text(encoding="utf-8"))
    assert summary["students"] == 2 and summary["errors"] == [] and summary["problems"] == []
    assert 'href="students/alice1.html"' in (batch.out / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (batch.out / "students").iterdir()) == [
        "alice1.html", "alice1.json", "alice2.html", "alice2.json"]
    assert wait_for(lambda: not batch.left(), 10), batch.left()
    assert list(batch.tmp.iterdir()) == []  # the sandboxes' folders are removed too

    # The slow students fix their engine; the printed command grades only who has no report yet.
    for student in SLOW:
        shutil.copy(ALICE / "engine.py", batch.folder / student / "engine.py")
    graded_before = batch.report("alice1").stat().st_mtime_ns
    resumed = subprocess.run(shlex.split(resume), capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
                             env=batch.env)
    assert resumed.returncode == 0, resumed.stderr
    assert "graded 3, up to date 2" in resumed.stdout
    assert gradebook_students(batch.out) == sorted(QUICK + SLOW)
    assert batch.report("alice1").stat().st_mtime_ns == graded_before


def test_a_second_ctrl_c_ends_at_once_with_every_worker_and_sandbox(batch):
    batch.wait_for_the_slow_ones()
    batch.signal(signal.SIGINT)
    # two signals before the grader runs its handler are one: the second Ctrl-C must come after the first
    assert wait_for(lambda: "stopping" in batch.said()), batch.stop_now()
    batch.signal(signal.SIGINT)
    stopped = time.monotonic()
    code, _, err = batch.finish()
    assert time.monotonic() - stopped < 10
    assert code == 130, err
    assert "ended at once by a second Ctrl-C" in err and "--resume" in err
    assert "Traceback" not in err
    assert wait_for(lambda: not batch.left(), 10), batch.left()


def test_sigterm_ends_at_once_with_every_worker_and_sandbox(batch):
    batch.wait_for_the_slow_ones()
    batch.signal(signal.SIGTERM)
    stopped = time.monotonic()
    code, _, err = batch.finish()
    assert time.monotonic() - stopped < 10
    assert code == 143, err
    assert "ended at once by SIGTERM" in err and "--resume" in err
    assert "Traceback" not in err
    assert not (batch.out / "gradebook.csv").exists()  # at once: nothing more is written
    assert wait_for(lambda: not batch.left(), 10), batch.left()


def test_no_worker_or_sandbox_outlives_a_grader_killed_with_sigkill(batch):
    batch.wait_for_the_slow_ones()
    batch.process.kill()  # the grader alone: its workers are told by the kernel (parent-death signal)
    batch.process.wait(timeout=TIMEOUT)
    assert wait_for(lambda: not batch.left(), 10), batch.left()
    assert wait_for(lambda: not list(batch.tmp.iterdir()), 10), list(batch.tmp.iterdir())  # removed by the workers
    assert [p.name for p in (batch.out / "students").glob("yan*")] == []


def test_a_stop_with_another_executor_cancels_what_has_not_started_and_keeps_the_graded(tmp_path):
    """Any Executor (a distributed one later): a stop cancels the futures not started and waits for none."""
    folder = tmp_path / "class"
    for student in ("s1", "s2", "s3"):
        shutil.copytree(ALICE, folder / student)
    stop = Stop()
    out = tmp_path / "out"
    with ThreadPoolExecutor(max_workers=1) as executor:
        result = run_batch(folder, find_course(None).assignment("micrograd"), out, jobs=1, executor=executor,
                           stop=stop, progress=lambda done, total, latest: stop.request())
    assert result.graded == ["s1"] and result.not_graded == ["s2", "s3"]
    assert gradebook_students(out) == ["s1"]
    assert sorted(p.name for p in (out / "students").glob("*.json")) == ["s1.json"]
