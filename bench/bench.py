"""Speed of the grader, measured side by side in one run (by hand: `python bench/bench.py`).

- grade: median wall time of `grader grade` (a new process, sandbox included) on a correct submission, next to
  a bare in-process replay of the very same student computations (no sandbox, no pytest, no report).
- check: median wall time of `grader check` on the same submission.
- batch: N submissions with `grader batch --jobs 2`, next to N sequential `grader grade` calls.
- selftest (with --selftest): the whole mutation analysis with --jobs 2.
- baseline (with --baseline REV): grade and batch of another git revision (a temporary worktree), measured in
  the same run, interleaved with this tree's runs so that the machine's drift hits both alike; ratios printed.

Targets (2 cores): grade and batch within 20% of the baseline (`--baseline 9d25b64`, before the security
redesign); batch >= 1.8x the sequential rate.
"""
from __future__ import annotations

import argparse
import json
import os
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


# As an installed grader runs: with its bytecode cached (a PYTHONDONTWRITEBYTECODE of the caller's would make
# every run compile the whole package again, which no user pays).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - started


def grader(*args: str, tree: Path = ROOT) -> float:
    """`python -m grader ARGS` from `tree`: that tree's grader package (first on sys.path) and its course."""
    course = ["--course", str(tree)] if args[0] in ("grade", "batch") else []
    return timed([sys.executable, "-m", "grader", *args, *course], cwd=tree)


def replay_in_process(submission: Path, runs: int) -> float:
    """Record what grading asks the sandbox, then time the same requests run in-process on the student's code."""
    sys.path.insert(0, str(ROOT))
    from grader import harness, sandbox
    from grader.answers import in_process_ask
    from grader.harness import load_commands
    from grader.course import find_course
    from grader.grading import grade_path
    from grader.runner import import_modules

    assignment = find_course(ROOT).assignment("micrograd")
    requests = []
    original = sandbox.Sandbox.call

    def recording(self, cmd, args, **options):
        requests.append((cmd, json.loads(json.dumps(args))))
        return original(self, cmd, args, **options)

    sandbox.Sandbox.call = recording
    try:
        grade_path(submission, assignment)
    finally:
        sandbox.Sandbox.call = original
    sys.dont_write_bytecode = True  # leave no __pycache__ in the submission folder
    # the student's files, imported the same way as the reference, and the questions the hidden tests answer
    modules = import_modules(submission, assignment.modules)
    answers = import_modules(assignment.autotests_dir, ("answers",))["answers"]
    ask = in_process_ask(answers.questions(modules["engine"].Value))
    commands = load_commands(assignment.harness)
    times = []
    for _ in range(runs):
        session = harness.Session(modules.__getitem__, commands, str(submission), ask=ask)
        started = time.perf_counter()
        for cmd, args in requests:
            if cmd not in ("load", "public_test"):
                session.run(cmd, args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def class_folder(tmp: str, copies: int) -> tuple[Path, list[str]]:
    """`copies` submissions made from the samples, each with a distinct hash (so distinct random inputs)."""
    folder = Path(tmp) / "class"
    folder.mkdir()
    names = []
    for i in range(copies):
        sample = SAMPLES[i % len(SAMPLES)]
        names.append(f"s{i:03d}_{sample}")
        shutil.copytree(ROOT / "submissions" / "micrograd" / sample, folder / names[-1])
        for source in (folder / names[-1]).glob("*.py"):
            source.write_text(source.read_text(encoding="utf-8") + f"# copy {i}\n", encoding="utf-8")
    return folder, names


def batch_rate(folder: Path, copies: int, tree: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return copies / grader("batch", str(folder), "--out-dir", str(out), "--jobs", "2", tree=tree)


def batch_rates(copies: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder, names = class_folder(tmp, copies)
        batch = batch_rate(folder, copies, ROOT, Path(tmp) / "out")
        sequential = sum(grader("grade", str(folder / n), "--format", "json") for n in names)
    return batch, copies / sequential


def compare_with(revision: str, runs: int, copies: int) -> None:
    """This tree against `revision`, interleaved run by run: grade medians, best batch rates, and ratios."""
    alice = ROOT / "submissions" / "micrograd" / "alice_correct"
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), revision], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            trees = {"this tree": ROOT, revision: baseline}
            for tree in trees.values():  # warm the disk cache and the sandbox probe cache
                grader("grade", str(alice), "--format", "json", tree=tree)
            grades: dict[str, list[float]] = {name: [] for name in trees}
            for _ in range(runs):
                for name, tree in trees.items():
                    grades[name].append(grader("grade", str(alice), "--format", "json", tree=tree))
            folder, _ = class_folder(tmp, copies)
            rates: dict[str, list[float]] = {name: [] for name in trees}
            for _ in range(3):
                for name, tree in trees.items():
                    rates[name].append(batch_rate(folder, copies, tree, Path(tmp) / "out"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False,
                           capture_output=True)
    here, there = (statistics.median(grades[name]) for name in trees)
    print(f"\n{'side by side, interleaved':<44}{'this tree':>12}{revision:>12}   ratio")
    print(f"{'grader grade, correct submission (median)':<44}{here:>10.3f} s{there:>10.3f} s   {here / there:.2f}x")
    here, there = (max(rates[name]) for name in trees)
    label = f"grader batch --jobs 2, {copies} submissions (best of 3)"
    print(f"{label:<44}{here:>8.2f} /s{there:>8.2f} /s     {here / there:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="repetitions for the medians (default 15)")
    parser.add_argument("--copies", type=int, default=40, help="submissions in the batch run (default 40)")
    parser.add_argument("--selftest", action="store_true", help="also time `grader selftest --jobs 2`")
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV side by side")
    options = parser.parse_args()

    python = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(options.runs))
    imports = statistics.median(timed([sys.executable, "-c", "import pytest, click, fastjsonschema"])
                                for _ in range(options.runs))
    alice = ROOT / "submissions" / "micrograd" / "alice_correct"
    grader("grade", str(alice), "--format", "json")  # warm the disk cache and the sandbox probe cache
    grade = statistics.median(grader("grade", str(alice), "--format", "json") for _ in range(options.runs))
    bare = replay_in_process(alice, options.runs)
    check = statistics.median(grader("check", str(alice)) for _ in range(options.runs))
    batch, sequential = batch_rates(options.copies)

    print(f"{'measure':<44}{'value':>12}   target")
    print(f"{'grader grade, one correct submission (median)':<44}{grade:>10.3f} s")
    print(f"{'  same student computations in-process':<44}{bare:>10.3f} s   (ratio {grade / bare:.0f}x)")
    print(f"{'  of which: python start-up (site hooks)':<44}{python:>10.3f} s")
    print(f"{'  of which: importing pytest, click, schema':<44}{imports - python:>10.3f} s")
    print(f"{'grader check, same submission (median)':<44}{check:>10.3f} s   < 1 s")
    print(f"{'grader batch --jobs 2, ' + str(options.copies) + ' submissions':<44}{batch:>8.2f} /s")
    print(f"{'  sequential grader grade, same submissions':<44}{sequential:>8.2f} /s     "
          f"(batch is {batch / sequential:.2f}x; target >= 1.8x)")
    if options.baseline:
        compare_with(options.baseline, options.runs, options.copies)
    if options.selftest:
        selftest = grader("selftest", "--jobs", "2")
        print(f"{'grader selftest --jobs 2':<44}{selftest:>10.1f} s   a few minutes")


if __name__ == "__main__":
    main()
