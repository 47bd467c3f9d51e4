"""Speed of the grader, measured side by side in one run (by hand: `python bench/bench.py`).

- grade: median wall time of `grader grade` (a new process, sandbox included) on a correct submission, next to
  a bare in-process replay of the very same student computations (no sandbox, no pytest, no report).
- check: median wall time of `grader check` on the same submission.
- batch: N submissions with `grader batch --jobs 2`, next to N sequential `grader grade` calls.
- selftest (with --selftest): the whole mutation analysis with --jobs 2.

Targets (2 cores): grade < 0.6 s; batch >= 5 submissions/s and >= 1.8x the sequential rate.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ["alice_correct", "bob_tanh_bug", "carol_overwrite_grad", "dave_no_topo", "erin_bias_missing",
           "frank_no_zero_grad", "heidi_syntax_error", "notebook_student"]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def grader(*args: str) -> float:
    return timed([sys.executable, "-m", "grader", *args])


def replay_in_process(submission: Path, runs: int) -> float:
    """Record what grading asks the sandbox, then time the same requests run in-process on the student's code."""
    sys.path.insert(0, str(ROOT))
    from grader import harness, sandbox
    from grader.course import find_course
    from grader.grading import grade_path
    from grader.runner import load_reference

    requests = []
    original = sandbox.Sandbox.call

    def recording(self, cmd, args, timeout=None, meanwhile=None):
        requests.append((cmd, json.loads(json.dumps(args))))
        return original(self, cmd, args, timeout, meanwhile)

    sandbox.Sandbox.call = recording
    try:
        grade_path(submission, find_course(ROOT).assignment())
    finally:
        sandbox.Sandbox.call = original
    sys.dont_write_bytecode = True  # leave no __pycache__ in the submission folder
    modules = load_reference(submission)  # the student's files, imported the same way as the reference
    times = []
    for _ in range(runs):
        session = harness.Session(modules.__getitem__, str(submission))
        started = time.perf_counter()
        for cmd, args in requests:
            if cmd not in ("load", "public_test"):
                session.run(cmd, args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def batch_rates(copies: int, jobs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        folder.mkdir()
        names = []
        for i in range(copies):
            sample = SAMPLES[i % len(SAMPLES)]
            names.append(f"s{i:03d}_{sample}")
            shutil.copytree(ROOT / "submissions" / sample, folder / names[-1])
            for source in (folder / names[-1]).glob("*.py"):  # a distinct hash, so distinct random inputs
                source.write_text(source.read_text(encoding="utf-8") + f"# copy {i}\n", encoding="utf-8")
        batch = grader("batch", str(folder), "--out-dir", str(Path(tmp) / "out"), "--jobs", str(jobs))
        sequential = sum(grader("grade", str(folder / n), "--format", "json") for n in names)
    return copies / batch, copies / sequential


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="repetitions for the medians (default 15)")
    parser.add_argument("--copies", type=int, default=40, help="submissions in the batch run (default 40)")
    parser.add_argument("--selftest", action="store_true", help="also time `grader selftest --jobs 2`")
    options = parser.parse_args()

    python = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(options.runs))
    imports = statistics.median(timed([sys.executable, "-c", "import pytest, click, fastjsonschema"])
                                for _ in range(options.runs))
    alice = ROOT / "submissions" / "alice_correct"
    grader("grade", str(alice), "--format", "json")  # warm the disk cache and the sandbox probe cache
    grade = statistics.median(grader("grade", str(alice), "--format", "json") for _ in range(options.runs))
    bare = replay_in_process(alice, options.runs)
    check = statistics.median(grader("check", str(alice)) for _ in range(options.runs))
    batch, sequential = batch_rates(options.copies, jobs=2)

    print(f"{'measure':<44}{'value':>12}   target")
    print(f"{'grader grade, one correct submission (median)':<44}{grade:>10.3f} s   < 0.6 s")
    print(f"{'  same student computations in-process':<44}{bare:>10.3f} s   (ratio {grade / bare:.0f}x)")
    print(f"{'  of which: python start-up (site hooks)':<44}{python:>10.3f} s")
    print(f"{'  of which: importing pytest, click, schema':<44}{imports - python:>10.3f} s")
    print(f"{'grader check, same submission (median)':<44}{check:>10.3f} s   < 1 s")
    print(f"{'grader batch --jobs 2, ' + str(options.copies) + ' submissions':<44}{batch:>8.2f} /s     >= 5 /s")
    print(f"{'  sequential grader grade, same submissions':<44}{sequential:>8.2f} /s     "
          f"(batch is {batch / sequential:.2f}x; target >= 1.8x)")
    if options.selftest:
        selftest = grader("selftest", "--jobs", "2")
        print(f"{'grader selftest --jobs 2':<44}{selftest:>10.1f} s   a few minutes")


if __name__ == "__main__":
    main()
