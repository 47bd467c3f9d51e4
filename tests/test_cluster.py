"""Grading on a real Dask cluster (`--scheduler`), through the CLI: the same gradebook as local grading, workers
killed mid-batch, a worker of another grader release, a worker without a sandbox, and `grader worker-check`.

The cluster (tests/dask_cluster.py) is a LocalCluster of worker processes in a process of its own; every batch
runs as `python -m grader` with a timeout, and every wait is bounded.
"""
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.cluster import pack_course
from test_batch import assignment, copy_sample, mixed_class  # noqa: F401 - fixtures
from test_batch_interrupts import bwrap_works
from test_service import Server, users, wait_for

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not bwrap_works(), reason="grading needs bubblewrap")]


def grader(*args: str, env: dict | None = None, background: bool = False):
    command = [sys.executable, "-m", "grader", *args]
    if background:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, env=env)


def gradebook(out: Path) -> list[dict]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def report(out: Path, student: str) -> dict:
    return json.loads((out / "students" / f"{student}.json").read_text(encoding="utf-8"))


def slow_submission(folder: Path) -> Path:
    """alice's correct code, whose three modules each take 1.5 s to import: about 5 s to grade, and full marks."""
    copy_sample("alice_correct", folder)
    for module in folder.glob("*.py"):
        module.write_text("import time\ntime.sleep(1.5)\n" + module.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def kill_busy_worker(cluster, spare: set[str]) -> str:
    """SIGKILL a worker that is grading, other than those in `spare`; its address."""
    busy = wait_for(lambda: [w for w, n in cluster.ask("busy").items() if n and w not in spare])
    os.kill(cluster.ask("workers")[busy[0]], signal.SIGKILL)
    return busy[0]


def test_a_batch_on_a_dask_cluster_gives_the_gradebook_of_local_grading(dask_cluster, mixed_class, tmp_path):  # noqa: F811
    local = grader("batch", str(mixed_class), "--out-dir", str(tmp_path / "local"))
    remote = grader("batch", str(mixed_class), "--out-dir", str(tmp_path / "dask"), "--scheduler", dask_cluster.address)
    assert (remote.returncode, local.returncode) == (1, 1), remote.stderr  # both: error reports (corrupt, slip...)
    assert gradebook(tmp_path / "dask") == gradebook(tmp_path / "local")
    workers = set(dask_cluster.ask("workers"))
    for row in gradebook(tmp_path / "dask"):
        here, there = report(tmp_path / "local", row["student"]), report(tmp_path / "dask", row["student"])
        assert [(t["name"], t["score"], t["feedback"]) for t in there["tests"]] == \
            [(t["name"], t["score"], t["feedback"]) for t in here["tests"]]
        assert there["errors"] == here["errors"] and there["submission"] == here["submission"]
        assert there["cluster"]["worker"] in workers and there["cluster"]["attempt"] == 1
        assert there["isolation"] == here["isolation"]  # the workers' sandboxes are local grading's
    again = grader("batch", str(mixed_class), "--out-dir", str(tmp_path / "dask"), "--scheduler", dask_cluster.address,
                   "--resume")
    assert "graded 3, up to date 6, rescored 0" in again.stdout, again.stdout  # the error reports are graded again


def test_the_course_travels_as_the_same_bytes_for_the_same_files(tmp_path):
    copy = tmp_path / "course"
    for folder in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / folder, copy / folder)
    assert pack_course(copy) == pack_course(ROOT)  # times, owners and caches do not count: workers unpack it once
    (copy / "autotests" / "micrograd" / "test_ops.py").write_text("changed\n", encoding="utf-8")
    assert pack_course(copy) != pack_course(ROOT)


def test_a_worker_killed_mid_batch_costs_no_one_anything_and_its_submission_is_retried_elsewhere(
        dask_cluster, tmp_path):
    folder = tmp_path / "class"
    slow_submission(folder / "yan")
    for sample in ("alice_correct", "bob_tanh_bug", "erin_bias_missing"):
        copy_sample(sample, folder / sample)
    out = tmp_path / "out"
    batch = grader("batch", str(folder), "--out-dir", str(out), "--scheduler", dask_cluster.address, background=True)
    try:
        wait_for(lambda: len(list((out / "students").glob("*.json"))) == 3, timeout=TIMEOUT)  # yan is left
        killed = kill_busy_worker(dask_cluster, spare=set())
        stdout, stderr = batch.communicate(timeout=TIMEOUT)
    finally:
        batch.kill()
    assert batch.returncode == 0, stderr
    assert [(r["student"], r["status"], r["total"]) for r in gradebook(out)] == [
        ("alice_correct", "graded", "100.0"), ("bob_tanh_bug", "graded", "95.0"),
        ("erin_bias_missing", "graded", "92.0"), ("yan", "graded", "100.0")]
    yan = report(out, "yan")
    assert yan["cluster"]["attempt"] == 2 and yan["cluster"]["worker"] != killed
    assert yan["cluster"]["retried_because"] == f"the worker {killed} died while grading it"


def test_a_submission_whose_two_workers_die_gets_an_error_report_that_says_why(dask_cluster, tmp_path):
    folder = tmp_path / "class"
    slow_submission(folder / "yan")
    copy_sample("alice_correct", folder / "alice")
    out = tmp_path / "out"
    batch = grader("batch", str(folder), "--out-dir", str(out), "--scheduler", dask_cluster.address, background=True)
    try:
        wait_for(lambda: (out / "students" / "alice.json").exists(), timeout=TIMEOUT)
        first = kill_busy_worker(dask_cluster, spare=set())
        second = kill_busy_worker(dask_cluster, spare={first})  # the retry, on the other worker
        stdout, stderr = batch.communicate(timeout=TIMEOUT)
    finally:
        batch.kill()
    assert batch.returncode == 1 and "not graded (error reports): yan" in stderr
    assert [(r["student"], r["status"]) for r in gradebook(out)] == [("alice", "graded"), ("yan", "error")]
    assert report(out, "yan")["errors"] == [{"id": "grading_failed", "message": (
        f"the grading process failed: WorkerLost: the worker {first} died while grading it, and so did the worker "
        f"{second} that tried again")}]


def test_a_worker_of_another_grader_release_stops_the_batch_and_blames_no_one(dask_cluster, tmp_path):
    folder = tmp_path / "class"
    copy_sample("alice_correct", folder / "alice")
    dask_cluster.ask("version", "0.0.1")
    result = grader("batch", str(folder), "--out-dir", str(tmp_path / "out"), "--scheduler", dask_cluster.address)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: the batch stopped at alice: the worker tcp://"), result.stderr
    assert "(grader 0.0.1), not this run's" in result.stderr and "grader worker-check" in result.stderr
    assert not (tmp_path / "out" / "students" / "alice.json").exists()


def test_a_worker_without_filesystem_isolation_is_named_and_no_one_is_graded(dask_cluster, tmp_path):
    folder = tmp_path / "class"
    copy_sample("alice_correct", folder / "alice")
    dask_cluster.ask("env", "GRADER_BWRAP", "/nonexistent/bwrap")
    result = grader("batch", str(folder), "--out-dir", str(tmp_path / "out"), "--scheduler", dask_cluster.address)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: worker tcp://") and "no filesystem isolation" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out" / "students").exists()


def test_grader_worker_check_sees_every_worker_of_a_cluster(dask_cluster):
    result = grader("worker-check", "--scheduler", dask_cluster.address)
    assert result.returncode == 0, result.stdout
    for worker in dask_cluster.ask("workers"):
        assert f"worker {worker}:" in result.stdout
    assert result.stdout.count("ready to grade") == 2
    dask_cluster.ask("env", "GRADER_BWRAP", "/nonexistent/bwrap")
    lacking = grader("worker-check", "--scheduler", dask_cluster.address)
    missing = "NO bubblewrap  bubblewrap /nonexistent/bwrap is not an executable file"
    assert lacking.returncode == 1 and lacking.stdout.count(missing) == 2, lacking.stdout


def test_grader_worker_check_names_a_worker_that_cannot_run_it_in_one_line(dask_cluster):
    dask_cluster.ask("hide", "grader.workers")
    result = grader("worker-check", "--scheduler", dask_cluster.address)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.stdout.count("NO grader  the check could not run there (") == 2, result.stdout
    assert result.stdout.count("lacks: grader") == 2


def test_a_worker_that_cannot_run_a_submission_gives_it_an_error_report_not_a_traceback(dask_cluster, tmp_path):
    folder = tmp_path / "class"
    copy_sample("alice_correct", folder / "alice")
    first = grader("batch", str(folder), "--out-dir", str(tmp_path / "first"), "--scheduler", dask_cluster.address)
    assert first.returncode == 0, first.stderr
    dask_cluster.ask("hide", "grader.parallel")  # the tasks (grader.parallel's) cannot be loaded there any more
    result = grader("batch", str(folder), "--out-dir", str(tmp_path / "out"), "--scheduler", dask_cluster.address)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (error,) = report(tmp_path / "out", "alice")["errors"]  # Dask counts a task its workers cannot load as deaths
    assert error["id"] == "grading_failed" and error["message"].startswith("the grading process failed: WorkerLost: ")


def test_without_dask_the_scheduler_option_is_one_line_that_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; from grader.cli import main; "
            f"main(['batch', {str(ROOT / 'submissions' / 'micrograd')!r}, '--out-dir', {str(tmp_path)!r}])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                            env={**os.environ, "GRADER_SCHEDULER": "tcp://127.0.0.1:8786"})
    assert (result.returncode, result.stderr) == (2, "Error: --scheduler needs Dask, an optional extra of the grader: "
                                                     "pip install 'micrograd-grader[dask]'\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address, error", [
    ("foo://x", "Error: --scheduler 'foo://x': expected a Dask scheduler's address, tcp://HOST:PORT (or "
                "tls://HOST:PORT with Dask's TLS settings)\n"),
    ("127.0.0.1:9", "Error: cannot reach the Dask scheduler at tcp://127.0.0.1:9: Timed out trying to connect to "
                    "tcp://127.0.0.1:9 after 10 s\n"),
])
def test_a_scheduler_that_cannot_be_used_is_one_line_and_no_one_is_graded(tmp_path, address, error):
    result = grader("batch", str(ROOT / "submissions" / "micrograd"), "--out-dir", str(tmp_path / "out"),
                    "--scheduler", address)
    assert (result.returncode, result.stderr) == (2 if address.startswith("foo") else 1, error)
    assert not (tmp_path / "out").exists()


def test_the_service_on_a_cluster_grades_an_upload_whose_worker_died_on_another_worker(dask_cluster, tmp_path):
    data = tmp_path / "data"
    tokens = users(data, None, ["yan"])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as files:
        for module in sorted(slow_submission(tmp_path / "yan").glob("*.py")):
            files.write(module, module.name)
    server = Server(data, None, jobs=2, scheduler=dask_cluster.address)
    try:
        status, reply = server.upload(tokens["yan"], archive.getvalue())
        assert status == 202, reply
        killed = kill_busy_worker(dask_cluster, spare=set())
        got = wait_for(lambda: (s := server.request(f"/api/v1/submissions/{reply['id']}", tokens["yan"])[1])
                       ["status"] in ("graded", "error") and s, timeout=TIMEOUT)
    finally:
        server.stop()
    assert (got["status"], got["score"], got["attempt"]) == ("graded", 100.0, 1)  # one job, graded once
    assert got["report"]["cluster"]["retried_because"] == f"the worker {killed} died while grading it"


def test_ctrl_c_stops_a_batch_on_a_cluster_and_keeps_what_was_graded(dask_cluster, tmp_path):
    folder = tmp_path / "class"
    for sample in ("alice_correct", "bob_tanh_bug"):
        copy_sample(sample, folder / sample)
    for slow in ("yan1", "yan2", "yan3"):
        slow_submission(folder / slow)
    out = tmp_path / "out"
    batch = grader("batch", str(folder), "--out-dir", str(out), "--scheduler", dask_cluster.address, background=True)
    try:
        wait_for(lambda: len(list((out / "students").glob("*.json"))) >= 2, timeout=TIMEOUT)
        batch.send_signal(signal.SIGINT)
        stdout, stderr = batch.communicate(timeout=30)
    finally:
        batch.kill()
    assert batch.returncode == 130, stderr
    assert "--resume" in stderr and "not graded yet" in stderr
    graded = {row["student"] for row in gradebook(out)}
    assert {"alice_correct", "bob_tanh_bug"} <= graded and graded != {"alice_correct", "bob_tanh_bug", "yan1", "yan2",
                                                                       "yan3"}
    finish = grader("batch", str(folder), "--out-dir", str(out), "--scheduler", dask_cluster.address, "--resume")
    assert finish.returncode == 0 and len(gradebook(out)) == 5, finish.stderr
