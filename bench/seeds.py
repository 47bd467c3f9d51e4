"""Seed independence of the hidden tests: grade every catalogue bug (and the reference) under several seeds.

    PYTHONPATH=. python3 bench/seeds.py [--assignment NAME ...] [--seeds 8] [--jobs 2] [--mutants] [--json FILE]

For each bug: under how many seeds it loses points in its own group, and whether the points it loses are the
same under every seed. A bug caught under some seeds only is caught by random inputs alone: it needs a
deterministic case. With --mutants, the mutants of the solution regions are graded the same way (slower).
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.course import find_course  # noqa: E402
from grader.mutation import generate_mutants  # noqa: E402
from grader.parallel import GradeTask, grade_task, worker_pool  # noqa: E402
from grader.selftest import apply_bug, load_catalogue, load_equivalents, points_lost  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", action="append")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--mutants", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    course = find_course(ROOT)
    names = args.assignment or ["micrograd", "micrograd-classify"]
    seeds = range(1, args.seeds + 1)
    subjects: list[tuple[str, str, str, dict[str, str]]] = []  # (assignment, label, group, files)
    for name in names:
        assignment = course.assignment(name)
        files = {f: (assignment.reference_dir / f).read_text(encoding="utf-8") for f in assignment.files}
        subjects.append((name, "reference", "", files))
        for bug in load_catalogue(assignment):
            subjects.append((name, bug.name, bug.group, apply_bug(files, bug)))
        if args.mutants:
            equivalents = load_equivalents(assignment)
            for m in generate_mutants(files, assignment.group_of_function):
                if m.id not in equivalents:
                    subjects.append((name, f"mutant {m.id} {m.function}: {m.description}", m.group, m.files))
    tasks = {(i, seed): GradeTask(f"s{i}", str(course.root), subject[0], files=tuple(sorted(subject[3].items())),
                                  seed=seed)
             for i, subject in enumerate(subjects) for seed in seeds}
    lost: dict[tuple[int, int], dict[str, float]] = {}
    with worker_pool(args.jobs) as pool:
        futures = {pool.submit(grade_task, task): key for key, task in tasks.items()}
        for done, future in enumerate(as_completed(futures), start=1):
            lost[futures[future]] = points_lost(future.result())
            print(f"\r{done}/{len(futures)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    rows = []
    for i, (name, label, group, _) in enumerate(subjects):
        per_seed = [lost[i, seed] for seed in seeds]
        if not group:
            caught = sum(not loss for loss in per_seed)  # the reference: full marks
            in_group = [sum(loss.values()) for loss in per_seed]
        else:
            caught = sum(group in loss for loss in per_seed)
            in_group = [round(loss.get(group, 0.0), 3) for loss in per_seed]
        rows.append({"assignment": name, "subject": label, "group": group, "caught": caught, "seeds": len(seeds),
                     "same_loss": len(set(in_group)) == 1, "lost": in_group})
    width = max(len(r["subject"]) for r in rows)
    for r in rows:
        mark = "ok " if r["caught"] == r["seeds"] and r["same_loss"] else "BAD"
        losses = sorted(set(r["lost"]))
        print(f"{mark} {r['assignment']:<19} {r['subject'][:width]:<{min(width, 90)}} "
              f"{r['caught']}/{r['seeds']}  {'same' if r['same_loss'] else 'varies'} {losses}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["caught"] == r["seeds"] and r["same_loss"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
