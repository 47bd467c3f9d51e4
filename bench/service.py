"""Speed of the grading service, beside the batch in the same run (by hand: `python bench/service.py`).

- burst: 200 uploads from 50 students at once (tests/test_service_burst.py's burst) to a fresh `grader serve
  --jobs N`: acceptance latency (upload sent to 202) p50/p95, time to graded (upload sent to the job's
  finished_at) p50/p95, throughput (graded per second, first upload sent to last job finished).
- batch: `grader batch --jobs N` on the same 200 submissions (one <name>.zip each), whole command timed;
  the service's throughput as a share of it.
- idle: one upload at a time to the idle server, median of 5: acceptance and time to graded.

Goals (issue 13): acceptance p95 under 50 ms on an idle server, under 1 s to graded for a single submission on an
idle server, throughput at least 80% of the batch's.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_service import Server, jobs, users, wait_for, zipped  # noqa: E402 - the tests' server and users
from test_service_burst import STUDENTS, burst, plan  # noqa: E402

from grader.service.db import Database  # noqa: E402

# As an installed grader runs: with its bytecode cached (see bench/bench.py).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
IDLE_RUNS = 5


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:.0f} ms, p95 {percentile(values, 95) * 1000:.0f} ms"


def seconds(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s"


def served(data: Path, workers: int) -> tuple[float, list[float], list[float], list[float], list[float]]:
    """The burst, then single uploads on the idle server: throughput, burst acceptance and time to graded, idle
    acceptance and time to graded."""
    tokens = users(data, None, [*STUDENTS, "idle"])
    server = Server(data, None, jobs=workers)
    database = Database(data)
    try:
        sent = burst(server, tokens, plan())
        assert all(s.status == 202 for s in sent), [s.reply for s in sent if s.status != 202][:3]
        wait_for(lambda: all(j.status in ("graded", "error") for j in jobs(database)), timeout=900, every=0.2)
        finished = {j.id: j.finished_at.timestamp() for j in jobs(database) if j.finished_at is not None}
        graded = [finished[s.reply["id"]] - s.sent_at for s in sent]
        throughput = len(sent) / (max(finished.values()) - min(s.sent_at for s in sent))
        accepted = [s.acked_at - s.sent_at for s in sent]
        idle_accepted, idle_graded = [], []
        for _ in range(IDLE_RUNS):  # the course's burst of 6 lets these through
            sent_at = time.time()
            status, reply = server.upload(tokens["idle"], zipped("alice_correct"), "alice_correct.zip")
            idle_accepted.append(time.time() - sent_at)
            assert status == 202, reply
            path = f"/api/v1/submissions/{reply['id']}"
            done = wait_for(lambda path=path: (s := server.request(path, tokens["idle"])[1])["status"]
                            in ("graded", "error") and s, every=0.01)
            idle_graded.append(datetime.fromisoformat(done["finished_at"]).timestamp() - sent_at)
    finally:
        database.close()
        server.stop()
    return throughput, accepted, graded, idle_accepted, idle_graded


def batch_rate(folder: Path, out: Path, workers: int) -> float:
    """The same submissions through `grader batch`, per second of the whole command."""
    folder.mkdir()
    uploads = plan()
    for n, (student, sample) in enumerate(uploads):
        (folder / f"{student}_{n}.zip").write_bytes(zipped(sample))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", "batch", str(folder), "--out-dir", str(out), "--jobs",
                    str(workers)], cwd=ROOT, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return len(uploads) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="grading workers of the server and the batch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        throughput, accepted, graded, idle_accepted, idle_graded = served(Path(tmp) / "data", args.jobs)
        batch = batch_rate(Path(tmp) / "class", Path(tmp) / "out", args.jobs)
    print(f"burst of {len(accepted)} uploads from {len(STUDENTS)} students, {args.jobs} workers:")
    print(f"  acceptance      {ms(accepted)}")
    print(f"  time to graded  {seconds(graded)}")
    print(f"  throughput      {throughput:.2f} graded/s; grader batch on the same: {batch:.2f} /s "
          f"(service/batch {throughput / batch:.2f}x)")
    print(f"idle server, one upload at a time (median of {IDLE_RUNS}):")
    print(f"  acceptance      {statistics.median(idle_accepted) * 1000:.0f} ms "
          f"(max {max(idle_accepted) * 1000:.0f} ms)")
    print(f"  time to graded  {statistics.median(idle_graded):.2f} s (max {max(idle_graded):.2f} s)")


if __name__ == "__main__":
    main()
