"""`grader selftest`: show that the hidden tests catch bugs, by grading deliberately wrong versions of the reference.

1. The reference, graded through the normal pipeline, must get full marks.
2. Every mutant of its solution regions (grader/mutation.py) must lose points: a mutant that keeps full marks is
   a bug the hidden tests miss, unless autotests/equivalent_mutants.toml lists it as unable to change behaviour.
3. Every entry of autotests/bug_catalogue.toml (realistic student bugs) must lose points in its own group, with
   a failing test there that names the faulty function.

Everything is graded in parallel through grader.parallel, sandbox included, exactly as a student would be.
"""
from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from concurrent.futures import Executor, Future, as_completed
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Callable, Iterable

from grader.course import Assignment, Course
from grader.errors import UnusableInput
from grader.mutation import OPERATORS, Mutant, generate_mutants
from grader.parallel import GradeTask, grade_task, worker_pool

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CATALOGUE = "bug_catalogue.toml"
EQUIVALENTS = "equivalent_mutants.toml"
POINT_TOLERANCE = 1e-6  # scores are float sums of shares

Progress = Callable[[int, int, str], None]  # (done, total, what), as in grader.batch


class SelftestError(UnusableInput):
    """The catalogue or the equivalents file is malformed; the message says where."""


@dataclass(frozen=True)
class Bug:
    """One realistic student bug: `find` (exactly once in `file` of the reference) becomes `replace`."""

    name: str
    file: str
    find: str
    replace: str
    group: str  # where it must lose points
    function: str  # what the feedback there must name, e.g. "Value.tanh"


@dataclass
class MutantResult:
    mutant: Mutant
    status: str  # killed (under every seed) | survived (under some seed) | equivalent | error
    lost: dict[str, float]  # group -> points lost under the first seed
    detail: str = ""  # the first failing test, or what went wrong
    escaped: list[int] = field(default_factory=list)  # the seeds under which it kept full marks


@dataclass
class BugResult:
    bug: Bug
    passed: bool
    lost: dict[str, float]  # under the seed where it cost least
    feedback: str = ""  # the failing test in the bug's group that names the function
    problem: str = ""  # why the entry failed
    costs: dict[int, float] = field(default_factory=dict)  # seed -> points lost in all

    def cost_range(self) -> tuple[float, float, float] | None:
        """(min, median, max) of the points it costs over the seeds."""
        if not self.costs:
            return None
        values = sorted(self.costs.values())
        return values[0], statistics.median(values), values[-1]


@dataclass
class SelftestResult:
    assignment: str
    jobs: int
    reference: dict  # {"score", "max_score", "problem"}
    mutants: list[MutantResult]
    bugs: list[BugResult]
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    seeds: list[int] = field(default_factory=lambda: [1])

    @property
    def weakest_seed(self) -> int:
        """The seed under which most mutants and bugs escape; among equals, where the bugs cost least."""
        def weakness(seed: int) -> tuple[int, float]:
            escapes = sum(seed in m.escaped for m in self.mutants) + sum(
                b.costs.get(seed, 0.0) <= POINT_TOLERANCE for b in self.bugs if b.costs)
            return escapes, -sum(b.costs.get(seed, 0.0) for b in self.bugs)
        return max(self.seeds, key=weakness)

    @property
    def survivors(self) -> list[MutantResult]:
        return [m for m in self.mutants if m.status in ("survived", "error")]

    @property
    def passed(self) -> bool:
        return not self.reference["problem"] and not self.survivors and all(b.passed for b in self.bugs)

    def summary(self, key: str) -> dict[str, dict]:
        """Counts per group (key="group") or per operator (key="operator")."""
        rows: dict[str, Counter] = {}
        for m in self.mutants:
            rows.setdefault(getattr(m.mutant, key), Counter())[m.status] += 1
        table = {}
        if key == "operator":  # groups come in the order of the files; operators in mutation.OPERATORS order
            rows = {op: rows[op] for op in OPERATORS if op in rows}
        for name, counts in rows.items():
            total = sum(counts.values())
            judged = total - counts["equivalent"]
            table[name] = {"total": total, "killed": counts["killed"], "equivalent": counts["equivalent"],
                           "survived": counts["survived"] + counts["error"],
                           "kill_rate": round(counts["killed"] / judged, 4) if judged else None}
        return table

    def to_dict(self) -> dict:
        """JSON-able, for --report FILE."""
        return {
            "assignment": self.assignment, "passed": self.passed, "jobs": self.jobs, "seeds": self.seeds,
            "weakest_seed": self.weakest_seed,
            "duration_s": round(self.duration_s, 2), "reference": self.reference,
            "groups": self.summary("group"), "operators": self.summary("operator"),
            "mutants": [{**{k: v for k, v in asdict(m.mutant).items() if k != "files"},
                         "status": m.status, "lost": m.lost, "detail": m.detail, "escaped_seeds": m.escaped}
                        for m in self.mutants],
            "catalogue": [{**asdict(b.bug), "passed": b.passed, "lost": b.lost, "feedback": b.feedback,
                           "problem": b.problem, "cost_by_seed": {str(k): v for k, v in b.costs.items()},
                           "cost": dict(zip(("min", "median", "max"), b.cost_range() or ()))} for b in self.bugs],
            "warnings": self.warnings,
        }


# ---------------------------------------------------------------------- the course's files


def read_text(path: Path) -> str:
    """A course file's text; SelftestError naming the file when it is missing or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SelftestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SelftestError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def read_entries(path: Path, kind: str, fields: tuple[str, ...], may_be_empty: tuple[str, ...] = ()) -> list[dict]:
    """The [[kind]] tables of a TOML file, each with exactly `fields`, all strings (non-empty unless may_be_empty)."""
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SelftestError(f"{path}: invalid TOML: {exc}") from None
    if unknown := [key for key in data if key != kind]:
        raise SelftestError(f"{path}: unknown key {unknown[0]!r}: the file holds only [[{kind}]] tables")
    entries = data.get(kind, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SelftestError(f"{path}: {kind} must be [[{kind}]] tables, not {entries!r}")
    for number, entry in enumerate(entries, start=1):
        label = entry.get(fields[0])
        where = f"{path}: [[{kind}]] number {number}" + (f" ({label!r})" if isinstance(label, str) else "")
        if unknown := [key for key in entry if key not in fields]:
            raise SelftestError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(fields)})")
        for key in fields:
            if key not in entry:
                raise SelftestError(f"{where}: missing field {key!r}")
            if not isinstance(entry[key], str) or not (entry[key].strip() or key in may_be_empty):
                kind_of = "a string" if key in may_be_empty else "a non-empty string"
                raise SelftestError(f"{where}: {key} must be {kind_of}, not {entry[key]!r}")
    return entries


def load_catalogue(assignment: Assignment) -> list[Bug]:
    path = assignment.autotests_dir / CATALOGUE
    bugs = [Bug(**e) for e in read_entries(path, "bug", tuple(Bug.__dataclass_fields__), may_be_empty=("replace",))]
    names = Counter(b.name for b in bugs)
    if repeated := [n for n, count in names.items() if count > 1]:
        raise SelftestError(f"{path}: bug names must be unique, repeated: {', '.join(repeated)}")
    return bugs


def load_equivalents(assignment: Assignment) -> dict[str, str]:
    """id -> the reviewer's one-line reason why the mutant cannot change behaviour."""
    path = assignment.autotests_dir / EQUIVALENTS
    if not path.is_file():
        return {}
    entries = read_entries(path, "equivalent", ("id", "reason"))
    ids = Counter(e["id"] for e in entries)
    if repeated := [i for i, count in ids.items() if count > 1]:
        raise SelftestError(f"{path}: ids must be unique, repeated: {', '.join(repeated)}")
    return {e["id"]: e["reason"].strip() for e in entries}


def apply_bug(files: dict[str, str], bug: Bug) -> dict[str, str]:
    """The reference files with one bug put in; SelftestError when `find` does not occur exactly once."""
    where = f"{CATALOGUE}: bug {bug.name!r}"
    if bug.file not in files:
        raise SelftestError(f"{where}: no file {bug.file!r} (files: {', '.join(files)})")
    count = files[bug.file].count(bug.find)
    if count != 1:
        raise SelftestError(f"{where}: `find` occurs {count} times in {bug.file}, expected exactly once")
    return {**files, bug.file: files[bug.file].replace(bug.find, bug.replace)}


# ---------------------------------------------------------------------- judging reports


def points_lost(report: dict) -> dict[str, float]:
    return {g["name"]: round(g["max_score"] - g["score"], 6) for g in report["groups"]
            if g["max_score"] - g["score"] > POINT_TOLERANCE}


def first_failure(report: dict, group: str | None = None) -> str:
    failing = [t for t in report["tests"] if t["status"] != "passed" and group in (None, t["group"])]
    return f"{failing[0]['name']}: {failing[0]['feedback']}" if failing else ""


def internal_errors(report: dict) -> list[str]:
    return [e["message"] for e in report["errors"] if e["id"] == "internal_error"]


def judge_reference(report: dict | None, failure: str) -> dict:
    """Full marks and no errors, or the problem."""
    if report is None:
        return {"score": None, "max_score": None, "problem": failure}
    problem = ""
    if report["errors"]:
        problem = first_failure(report) or report["errors"][0]["message"]
    elif report["score"] < report["max_score"] - POINT_TOLERANCE:
        lost = ", ".join(f"{points:g} in {group}" for group, points in points_lost(report).items())
        problem = first_failure(report) or (f"loses points ({lost or 'in no group'}) with no failing test and no "
                                            "error: does every group have tests?")
    return {"score": report["score"], "max_score": report["max_score"], "problem": problem}


def judge_mutant(mutant: Mutant, report: dict | None, failure: str, equivalents: dict[str, str]) -> MutantResult:
    """Killed when it lost points; a crash of the grading itself or a grader bug is an error, never a kill."""
    if report is None:
        return MutantResult(mutant, "error", {}, failure)
    if problems := internal_errors(report):
        return MutantResult(mutant, "error", {}, f"internal error of the grader: {problems[0]}")
    lost = points_lost(report)
    if lost:
        return MutantResult(mutant, "killed", lost, first_failure(report))
    if mutant.id in equivalents:
        return MutantResult(mutant, "equivalent", {}, equivalents[mutant.id])
    return MutantResult(mutant, "survived", {})


def names_function(test: dict, function: str) -> bool:
    return test["function"] == function or function.split(".")[-1] in test["feedback"]


def judge_bug(bug: Bug, report: dict | None, failure: str) -> BugResult:
    """Must lose points in its own group, where a failing test names the faulty function."""
    if report is None:
        return BugResult(bug, False, {}, problem=failure)
    if problems := internal_errors(report):
        return BugResult(bug, False, {}, problem=f"internal error of the grader: {problems[0]}")
    lost = points_lost(report)
    if bug.group not in lost:
        where = f"only in {', '.join(lost)}" if lost else "nowhere"
        return BugResult(bug, False, lost, problem=f"loses points {where}, not in {bug.group}")
    failing = [t for t in report["tests"] if t["group"] == bug.group and t["status"] != "passed"]
    naming = [t for t in failing if names_function(t, bug.function)]
    if not naming:
        named = sorted({str(t["function"]) for t in failing})
        return BugResult(bug, False, lost, first_failure(report, bug.group),
                         problem=f"no failing test in {bug.group} names {bug.function} (they name {', '.join(named)})")
    return BugResult(bug, True, lost, f"{naming[0]['name']}: {naming[0]['feedback']}")


# ---------------------------------------------------------------------- running


DEFAULT_SEEDS = 8


def run_selftest(course: Course, assignment: Assignment | str, jobs: int, executor: Executor | None = None, *,
                 functions: Iterable[str] | None = None, bugs: Iterable[str] | None = None,
                 progress: Progress | None = None, seeds: int = DEFAULT_SEEDS) -> SelftestResult:
    """Grade the reference, its mutants and the bug catalogue in parallel, under seeds 1..`seeds`, and judge
    the hidden tests: what counts is what holds under every seed.

    The reference and the catalogue are graded under every seed. A mutant is graded under the first; one that
    lost points there in a test without random inputs (no `rng`) loses them under every seed, since the seed
    reaches a test only through `rng`. The others are probed under each other seed: only the tests with random
    inputs run (the rest passed, whatever the seed), until one loses points.
    `functions` (fnmatch patterns such as "Value.tanh*") keeps only the mutants of matching functions and
    `bugs` only the named catalogue entries: both for quick runs; None means all.
    """
    started = time.perf_counter()
    if isinstance(assignment, str):
        assignment = course.assignment(assignment)
    name = assignment.name
    seed_list = list(range(1, seeds + 1))
    files = {f: read_text(assignment.reference_dir / f) for f in assignment.files}
    equivalents = load_equivalents(assignment)
    catalogue = load_catalogue(assignment)

    mutants = generate_mutants(files, assignment.group_of_function)
    warnings = [f"{EQUIVALENTS}: {i} is not a mutant any more (stale entry): {reason}"
                for i, reason in equivalents.items() if i not in {m.id for m in mutants}]
    if functions is not None:
        patterns = list(functions)
        mutants = [m for m in mutants if any(fnmatchcase(m.function, p) for p in patterns)]
    if bugs is not None:
        wanted = set(bugs)
        if unknown := wanted - {b.name for b in catalogue}:
            raise SelftestError(f"{CATALOGUE}: no bug named {', '.join(sorted(unknown))}")
        catalogue = [b for b in catalogue if b.name in wanted]

    def task(student: str, submission: dict[str, str], seed: int,
             probe: tuple[str, ...] | None = None) -> GradeTask:
        return GradeTask(student, str(course.root), name, files=tuple(sorted(submission.items())), seed=seed,
                         probe=probe)

    bug_results: list[BugResult] = []
    buggy: dict[str, tuple[Bug, dict[str, str]]] = {}
    for number, bug in enumerate(catalogue, start=1):
        try:
            buggy[f"bug-{number}"] = (bug, apply_bug(files, bug))
        except SelftestError as exc:
            bug_results.append(BugResult(bug, False, {}, problem=str(exc)))
    everyone = {"reference": files, **{key: bug_files for key, (_, bug_files) in buggy.items()}}
    tasks = {(key, seed): task(key, submission, seed) for key, submission in everyone.items() for seed in seed_list}
    tasks.update({(f"mutant-{m.id}", seed_list[0]): task(f"mutant-{m.id}", m.files, seed_list[0]) for m in mutants})
    reports = grade_all(tasks, jobs, executor, progress)
    if len(seed_list) > 1:  # the mutants whose kill may depend on the seed, probed under the other seeds
        seeded = seeded_tests(assignment)
        probes: dict[Key, GradeTask] = {}
        for mutant in mutants:
            key = f"mutant-{mutant.id}"
            first = reports[(key, seed_list[0])][0]
            if first is not None and points_lost(first) and not killed_without_rng(first, seeded):
                probe = seed_probe(first, seeded)
                probes.update({(key, seed): task(key, mutant.files, seed, probe) for seed in seed_list[1:]})
        reports.update(grade_all(probes, jobs, executor, progress))

    def under_each_seed(key: str) -> dict[int, tuple[dict | None, str]]:
        return {seed: reports[(key, seed)] for seed in seed_list if (key, seed) in reports}

    mutant_results = [judge_mutant_over_seeds(m, under_each_seed(f"mutant-{m.id}"), equivalents) for m in mutants]
    bug_results += [judge_bug_over_seeds(bug, under_each_seed(key)) for key, (bug, _) in buggy.items()]
    for m in mutant_results:
        if m.status == "killed" and m.mutant.id in equivalents:
            warnings.append(f"{EQUIVALENTS}: {m.mutant.id} is listed as equivalent but lost points: remove it")
        if m.status == "killed" and m.mutant.group not in m.lost:
            warnings.append(f"mutant {m.mutant.id} ({m.mutant.function}) loses points only in {', '.join(m.lost)}, "
                            f"not in {m.mutant.group}: its feedback points the student elsewhere")
    bug_results.sort(key=lambda b: catalogue.index(b.bug))
    judged = [judge_reference(*graded) for graded in under_each_seed("reference").values()]
    reference = next((j for j in judged if j["problem"]), judged[0])  # full marks under every seed, or the first miss
    return SelftestResult(name, jobs, reference, mutant_results, bug_results, warnings,
                          time.perf_counter() - started, seed_list)


def seed_probe(report: dict, seeded: list[str]) -> tuple[str, ...]:
    """The tests whose outcome another seed may change (the others passed, or the mutant would be killed under
    every seed), those that lost points under the first seed first: a probe under another seed stops at the
    first loss, which is then most likely the first test it runs."""
    lost = {t["name"] for t in report["tests"] if t["status"] != "passed" and t["max_score"] > POINT_TOLERANCE}
    return tuple(sorted(seeded, key=lambda name: name not in lost))


def seeded_tests(assignment: Assignment) -> list[str]:
    """The names of the hidden tests that take random inputs (their fixtures include `rng`), in run order."""
    import pytest

    from grader.runner import pytest_on_hidden_tests

    class Names:
        seeded: list[str] = []

        def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
            self.seeded = [item.name for item in items if "rng" in getattr(item, "fixturenames", ())]

    names = Names()
    pytest_on_hidden_tests(assignment, names, "--collect-only")
    return names.seeded


def killed_without_rng(report: dict | None, seeded: list[str]) -> bool:
    """Whether the report lost points in a test whose inputs do not depend on the seed."""
    return report is not None and not internal_errors(report) and any(
        t["status"] != "passed" and t["max_score"] > POINT_TOLERANCE and t["name"] not in seeded
        for t in report["tests"])


def judge_mutant_over_seeds(mutant: Mutant, graded: dict[int, tuple[dict | None, str]],
                            equivalents: dict[str, str]) -> MutantResult:
    """Killed only when killed under every seed it was graded under; else the seeds where it escaped."""
    verdicts = {seed: judge_mutant(mutant, *result, equivalents) for seed, result in graded.items()}
    errors = [v for v in verdicts.values() if v.status == "error"]
    if errors:
        return errors[0]
    escaped = [seed for seed, v in verdicts.items() if v.status != "killed"]
    if not escaped:  # the first seed's report is whole; the others may be probes, which stop at a first loss
        return verdicts[min(verdicts)]
    if len(escaped) == len(verdicts):
        return MutantResult(mutant, verdicts[escaped[0]].status, {}, verdicts[escaped[0]].detail, escaped)
    return MutantResult(mutant, "survived", {}, f"keeps full marks under seed(s) {', '.join(map(str, escaped))}, "
                                                "loses points under the others: a test catches it by chance", escaped)


def judge_bug_over_seeds(bug: Bug, graded: dict[int, tuple[dict | None, str]]) -> BugResult:
    """Passes only when it passes under every seed; keeps what it costs under each."""
    verdicts = {seed: judge_bug(bug, *result) for seed, result in graded.items()}
    costs = {seed: round(sum(v.lost.values()), 6) for seed, v in verdicts.items()}
    failing = [(seed, v) for seed, v in verdicts.items() if not v.passed]
    if failing:
        verdict = failing[0][1]
        seeds = ", ".join(str(seed) for seed, _ in failing)
        return replace(verdict, problem=f"under seed {seeds}: {verdict.problem}", costs=costs)
    cheapest = min(verdicts, key=lambda s: costs[s])
    return replace(verdicts[cheapest], costs=costs)


Key = tuple[str, int]  # (what, seed)


def grade_all(tasks: dict[Key, GradeTask], jobs: int, executor: Executor | None,
              progress: Progress | None) -> dict[Key, tuple[dict | None, str]]:
    """key -> (report, "") or (None, why the grading itself failed)."""
    if not tasks:
        return {}
    if executor is not None:
        return _grade_with(executor, tasks, progress)  # its owner shuts it down
    with worker_pool(max(1, min(jobs, len(tasks)))) as pool:  # a Ctrl-C terminates it: nothing is waited for
        return _grade_with(pool, tasks, progress)


def _grade_with(pool: Executor, tasks: dict[Key, GradeTask],
                progress: Progress | None) -> dict[Key, tuple[dict | None, str]]:
    results: dict[Key, tuple[dict | None, str]] = {}
    futures: dict[Future, Key] = {pool.submit(grade_task, t): key for key, t in tasks.items()}
    for done, future in enumerate(as_completed(futures), start=1):
        key = futures[future]
        try:
            results[key] = (future.result(), "")
        except Exception as exc:  # a dead worker or a grader crash: reported, never counted as a kill
            results[key] = (None, f"grading failed: {type(exc).__name__}: {exc}")
        if progress:
            progress(done, len(futures), f"{key[0]} (seed {key[1]})")
    return results


def selftest_exit_code(result: SelftestResult) -> int:
    """0 when the reference gets full marks, every non-equivalent mutant is killed and every bug is caught."""
    return 0 if result.passed else 1


# ---------------------------------------------------------------------- rendering


def cost_text(bug: BugResult) -> str:
    span = bug.cost_range()
    if span is None:
        return ""
    low, middle, high = span
    return f": costs {low:g}" if low == high else f": costs {low:g} / {middle:g} / {high:g} (min / median / max)"


def costs_by_function(bugs: list[BugResult]) -> dict[str, list[tuple[BugResult, tuple[float, float, float]]]]:
    """function -> its catalogue bugs with their (min, median, max) cost, cheapest first."""
    table: dict[str, list[tuple[BugResult, tuple[float, float, float]]]] = {}
    for bug in bugs:
        span = bug.cost_range()
        if span is not None:
            table.setdefault(bug.bug.function, []).append((bug, span))
    return {f: sorted(rows, key=lambda row: row[1]) for f, rows in table.items()}


def render_selftest(result: SelftestResult) -> str:
    """Plain text: the verdict first, then kill rates, survivors with their diffs, the catalogue, warnings."""
    minutes, seconds = divmod(round(result.duration_s), 60)
    lines = [f"selftest of {result.assignment}: {'PASSED' if result.passed else 'FAILED'} "
             f"({len(result.mutants)} mutants, {len(result.bugs)} catalogue bugs, seeds 1-{result.seeds[-1]}, "
             f"{result.jobs} jobs, {minutes}m{seconds:02d}s)", f"weakest seed: {result.weakest_seed}", ""]
    ref = result.reference
    if ref["problem"]:
        lines.append(f"reference: NOT full marks ({ref['score']}/{ref['max_score']}): {ref['problem']}")
    else:
        lines.append(f"reference: full marks ({ref['score']:g}/{ref['max_score']:g})")
    for key, title in (("group", "mutants by group"), ("operator", "mutants by operator")):
        lines += ["", f"{title:<22}{'total':>7}{'killed':>8}{'equiv.':>8}{'survived':>10}{'kill rate':>11}"]
        for name, row in result.summary(key).items():
            rate = "-" if row["kill_rate"] is None else f"{100 * row['kill_rate']:.1f}%"
            lines.append(f"  {name:<20}{row['total']:>7}{row['killed']:>8}{row['equivalent']:>8}"
                         f"{row['survived']:>10}{rate:>11}")
    if result.survivors:
        lines += ["", f"surviving mutants ({len(result.survivors)}): each needs a stronger hidden test, or an entry "
                      f"with a reason in autotests/{EQUIVALENTS} if it truly cannot change behaviour"]
        for m in result.survivors:
            mutant = m.mutant
            lines.append(f"  {mutant.id}  {mutant.file}:{mutant.line}  {mutant.function} ({mutant.group}, "
                         f"{mutant.operator}): {mutant.description}")
            if m.detail:
                lines.append(f"    {m.detail}")
            lines += ["    " + line for line in mutant.diff.rstrip("\n").split("\n")]
    equivalent = [m for m in result.mutants if m.status == "equivalent"]
    if equivalent:
        lines += ["", f"equivalent mutants ({len(equivalent)}, reviewed in autotests/{EQUIVALENTS}):"]
        for m in equivalent:
            lines += [f"  {m.mutant.id}  {m.mutant.file}:{m.mutant.line}  {m.mutant.description}", f"    {m.detail}"]
    if result.bugs:
        caught = sum(b.passed for b in result.bugs)
        lines += ["", f"bug catalogue: {caught}/{len(result.bugs)} lose points in their own group, "
                      "with feedback that names the function"]
        for b in result.bugs:
            mark = "ok  " if b.passed else "FAIL"
            lines.append(f"  {mark} {b.bug.name} [{b.bug.group}, {b.bug.function}]{cost_text(b)}")
            if b.problem:
                lines.append(f"       {b.problem}")
            if b.feedback:
                lines.append(f"       {b.feedback[:200]}")
        lines += ["", "what a bug costs, by function (points lost, min / median / max over the seeds):"]
        for function, costed in costs_by_function(result.bugs).items():
            lines.append(f"  {function}")
            lines += [f"    {low:g} / {middle:g} / {high:g}  {bug.bug.name}" for bug, (low, middle, high) in costed]
    if result.warnings:
        lines += ["", "warnings:"] + [f"  {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"
