"""grader similarity, measured: precision and recall on the test set, and the time for a class of 500.

    PYTHONPATH=. python3 bench/similarity.py [--threshold T] [--students 500] [--json FILE]

1. The test set of tests/similarity_corpus.py as one class (six honest solutions written independently in
   different styles, and five plagiarised variants of each: renamed, reordered, comments and spacing changed,
   dead code inserted, all combined): at the threshold, precision and recall of the plagiarised pairs, the
   lowest score of a plagiarised pair and the highest of an independent one. Also the honest solutions alone (a
   small class, where no code is common enough to be dropped).
2. A class of N submissions (default 500) made by mixing the five written-out honest solutions function by
   function, each with a random transformation: the wall-clock time of `compare_class` (reading, fingerprinting,
   comparing; the outputs are not written).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import similarity_corpus as corpus  # noqa: E402
from grader.course import find_course  # noqa: E402
from grader.similarity import DEFAULT_THRESHOLD, compare_class  # noqa: E402


def quality(folder: Path, threshold: float) -> dict:
    assignment = find_course(ROOT).assignment("micrograd")
    copied, independent = corpus.write_class(folder / "test-set")
    result = compare_class(folder / "test-set", assignment, threshold=0.0)
    scores = {frozenset((p.a, p.b)): p.similarity for p in result.pairs}
    flagged = {pair for pair, score in scores.items() if score >= threshold}
    true_positives = len(flagged & copied)
    corpus.write_class(folder / "honest", transforms=())
    honest = compare_class(folder / "honest", assignment, threshold=0.0)
    return {
        "submissions": len(result.compared), "plagiarised_pairs": len(copied), "independent_pairs": len(independent),
        "threshold": threshold, "flagged": len(flagged),
        "precision": true_positives / len(flagged) if flagged else 1.0,
        "recall": true_positives / len(copied),
        "lowest_plagiarised": min(scores.get(pair, 0.0) for pair in copied),
        "highest_independent": max(scores.get(pair, 0.0) for pair in independent),
        "highest_honest_alone": max((p.similarity for p in honest.pairs), default=0.0),
    }


def mixed_class(folder: Path, students: int, seed: int = 1) -> None:
    """`students` submissions, each function taken from a random written-out solution, then transformed."""
    rng = random.Random(seed)
    names = list(corpus.SOLUTIONS)
    regions = sorted({region for solution in corpus.SOLUTIONS.values() for region in solution
                      if not region.startswith("__")})
    for number in range(students):
        base = rng.choice(names)
        mix = dict(corpus.SOLUTIONS[base])  # its helpers and imports, then each function from anyone
        for region in regions:
            donor = corpus.SOLUTIONS[rng.choice(names)]
            if region in donor and not any(key.startswith("__") for key in donor):
                mix[region] = donor[region]
        corpus.SOLUTIONS["_mix"] = mix
        try:
            files = corpus.honest("_mix")
        finally:
            del corpus.SOLUTIONS["_mix"]
        how = rng.choice(corpus.TRANSFORMS + ("none",))
        corpus.write(folder, f"s{number:04d}", files if how == "none" else corpus.transform(files, how))


def timing(folder: Path, students: int) -> dict:
    assignment = find_course(ROOT).assignment("micrograd")
    mixed_class(folder / "mixed", students)
    started = time.perf_counter()
    result = compare_class(folder / "mixed", assignment)
    return {"students": students, "seconds": round(time.perf_counter() - started, 2),
            "pairs_flagged": len(result.pairs), "compared": len(result.compared)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        found = quality(Path(temp), args.threshold)
        print(f"test set: {found['submissions']} submissions, {found['plagiarised_pairs']} plagiarised pairs, "
              f"{found['independent_pairs']} independent pairs")
        print(f"at threshold {found['threshold']:g}: precision {found['precision']:.3f}, recall "
              f"{found['recall']:.3f} ({found['flagged']} pairs flagged)")
        print(f"lowest plagiarised pair {found['lowest_plagiarised']:.3f}, highest independent pair "
              f"{found['highest_independent']:.3f}, highest pair of the honest solutions alone "
              f"{found['highest_honest_alone']:.3f}")
        timed = timing(Path(temp), args.students)
        print(f"{timed['students']} submissions compared in {timed['seconds']:.1f} s ({timed['pairs_flagged']} pairs "
              "flagged: every student's functions come from the same five solutions, a worst case)")
    if args.json:
        args.json.write_text(json.dumps({"quality": found, "timing": timed}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
