"""`grader check`: the public tests, run on a student's work through the same sandbox and feedback as grading.

The public tests (assignments/<name>/tests/) are plain Python that students can also run with pytest. Here
they are listed from their source (nothing of the student's is imported in this process), run one by one in
the sandbox, and turned into a Report whose groups count passed public tests.
"""
from __future__ import annotations

import ast
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from grader.compare import failure_feedback, formatted
from grader.course import Assignment
from grader.formats import _printable
from grader.messages import MESSAGES, text
from grader.report import Report
from grader.replies import PUBLIC_TEST
from grader.results import Outcome, RunResult
from grader.grading import import_problems, open_sandbox
from grader.sandbox import Sandbox
from grader.scoring import build_report
from grader.submission import Submission


@dataclass(frozen=True)
class PublicTest:
    module: str
    name: str
    covers: str
    uses: tuple[str, ...] = ()  # the other student functions it needs: @covers("train", uses=(...))
    imports: tuple[str, ...] = ()  # the modules its test file imports


def _literal_strings(node: ast.expr | None) -> tuple[str, ...]:
    """A tuple of string constants (names joined with +), as written in a decorator; () for anything else."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal_strings(node.left) + _literal_strings(node.right)
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return ()


def list_public_tests(folder: Path) -> list[PublicTest]:
    """`test_*` functions with their @covers("...", uses=...) names, read from the source without importing it."""
    found = []
    for path in sorted(folder.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                     for t in node.targets if isinstance(t, ast.Name)}
        imports = tuple(sorted({n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
                               | {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}))
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            covers = node.name
            uses: tuple[str, ...] = ()
            for d in node.decorator_list:
                if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "covers" and d.args \
                        and isinstance(d.args[0], ast.Constant) and isinstance(d.args[0].value, str):
                    covers = d.args[0].value
                    for keyword in d.keywords:
                        if keyword.arg == "uses":
                            uses = _literal_strings(_resolve(keyword.value, constants))
            found.append(PublicTest(path.stem, node.name, covers, uses, imports))
    return found


def _resolve(node: ast.expr, constants: dict[str, ast.expr]) -> ast.expr:
    """A module-level name (ENGINE = (...)) replaced by what it was assigned, also inside `A + B`."""
    if isinstance(node, ast.Name) and node.id in constants:
        return _resolve(constants[node.id], constants)
    if isinstance(node, ast.BinOp):
        return ast.BinOp(_resolve(node.left, constants), node.op, _resolve(node.right, constants))
    return node


def run_public_test(sandbox: Sandbox, test: PublicTest, group: str | None, catalogue: dict) -> Outcome:
    started = time.perf_counter()
    result = sandbox.call("public_test", {"folder": "tests", "module": test.module, "name": test.name},
                          shape=PUBLIC_TEST)
    status, message = "passed", None
    reply = result.value
    if result.status != "ok":  # the test module or the student's code raised, hung or crashed
        failure = failure_feedback(result, test.covers)
        status, message = failure.status, failure.message
    elif not isinstance(reply, dict):
        raise AssertionError("an \"ok\" public_test reply is a record")  # its shape was checked by the sandbox
    elif reply["status"] == "todo":
        status, message = "failed", {"id": "not_implemented", "params": {"function": test.covers}}
    elif reply["status"] == "failed":
        status = "failed"
        feedback = reply["feedback"]  # set by test code running beside the student's: shape checked, not trusted
        if feedback is None or feedback["id"] not in {**MESSAGES, **catalogue}:
            message = {"id": "public.failed", "params": {"text": reply["text"]}}
        else:
            message = {"id": feedback["id"], "params": formatted({**feedback["params"], "function": test.covers})}
    output = result.output if status != "passed" else ""
    return Outcome(test.name, group, 1.0, test.covers, test.covers, status, message,
                   round(time.perf_counter() - started, 6), output)


def blocked(test: PublicTest, group: str | None, message_id: str, **params: str) -> Outcome:
    """A public test that was not run: what it needs fails, so its verdict would say nothing about its function."""
    return Outcome(test.name, group, 1.0, test.covers, test.covers, "failed",
                   {"id": message_id, "params": {"function": test.covers, **params}}, 0.0)


def in_dependency_order(tests: list[PublicTest]) -> list[PublicTest]:
    """The tests, each after the tests of the functions it uses (a stable order otherwise)."""
    covering: dict[str, list[PublicTest]] = {}
    for test in tests:
        covering.setdefault(test.covers, []).append(test)
    depth: dict[str, int] = {}

    def depth_of(function: str, seen: frozenset[str] = frozenset()) -> int:
        if function not in depth:
            uses = {u for t in covering.get(function, []) for u in t.uses if u not in seen | {function}}
            depth[function] = 1 + max((depth_of(u, seen | {function}) for u in uses), default=-1)
        return depth[function]

    def test_depth(test: PublicTest) -> int:
        return 1 + max((depth_of(u, frozenset({test.covers})) for u in test.uses if u != test.covers), default=-1)

    return sorted(tests, key=test_depth)


def check_submission(submission: Submission, assignment: Assignment, *, lang: str = "en",
                     only: str | None = None) -> Report:
    """Run the public tests on a submission; each function's points are its number of public tests.

    A file that does not import is reported once, and the tests that need it are not run. A test whose `uses`
    names a function that fails its own tests is not run either ("depends on X, which fails"), nor are the rest
    of a function's tests once one of them did not finish: one bug, one message."""
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    folder = assignment.folder / "tests"
    group_of = {t: assignment.group_of_function(t.covers) for t in list_public_tests(folder)}
    tests = [t for t in in_dependency_order(list(group_of)) if only is None or group_of[t] == only]
    files = dict(submission.files)
    files.update({f"tests/{p.name}": p.read_text(encoding="utf-8") for p in folder.glob("*.py")})
    outcomes: dict[PublicTest, Outcome] = {}
    with open_sandbox(assignment, files) as sandbox:
        broken = {module: error for module, error in import_problems(assignment, sandbox).items()
                  if error["type"] != "missing"}
        failing: dict[str, str] = {}  # function -> the function at the root of its failure
        timed_out: set[str] = set()
        unwritten: set[str] = set()  # functions that raise NotImplementedError
        for test in tests:
            unimportable = next((m for m in test.imports if m in broken), None)
            cause = next((failing[u] for u in test.uses if u in failing), None)
            if unimportable is not None:
                outcome = blocked(test, group_of[test], "blocked_by_import", file=f"{unimportable}.py")
            elif cause is not None:
                outcome = blocked(test, group_of[test], "depends_on_todo" if cause in unwritten else "depends_on",
                                  dependency=cause)
            elif test.covers in timed_out:
                outcome = blocked(test, group_of[test], "not_run_after_timeout")
            else:
                outcome = run_public_test(sandbox, test, group_of[test], assignment.messages)
                if outcome.status == "timeout":
                    timed_out.add(test.covers)
            if outcome.status != "passed":
                failing.setdefault(test.covers, cause or test.covers)
                if (outcome.message or {}).get("id") == "not_implemented":
                    unwritten.add(test.covers)
            outcomes[test] = outcome
        isolation = sandbox.isolation
    ordered = [outcomes[t] for t in group_of if t in outcomes]  # reported in the order the files list them
    counts = Counter(o.covers for o in ordered)
    groups = tuple(replace(g, functions=tuple((f, float(counts[f])) for f, _ in g.functions if counts[f]))
                   for g in assignment.groups if only is None or g.name == only)
    counted = replace(assignment, groups=groups)
    report = build_report(counted, submission, RunResult(ordered, once_per_error(broken), isolation), seed=0,
                          lang=lang, started_at=started_at, duration_s=time.perf_counter() - started)
    report.status = "checked"  # its scores count public checks: it is never a grade
    progress = function_progress(report.to_dict())
    report.progress = {"functions_done": sum(state == "done" for _, state, _ in progress), "functions": len(progress),
                       "checks_passed": sum(o.status == "passed" for o in ordered), "checks": len(ordered)}
    return report


def once_per_error(broken: dict[str, dict]) -> dict[str, dict]:
    """One entry per distinct import error: a SyntaxError in engine.py also stops nn.py and train.py, which
    import it, and is reported once, under engine."""
    seen, kept = set(), {}
    for module, error in broken.items():
        frames = error.get("traceback") or [{}]
        key = (error["type"], error.get("message"), frames[-1].get("file"), frames[-1].get("line"))
        if key not in seen:
            seen.add(key)
            kept[module] = error
    return kept


# The message ids of tests not run because something else fails.
BLOCKED = frozenset({"depends_on", "depends_on_todo", "blocked_by_import"})
PRINTED_LINES = 12  # of what a failing check printed, shown under its feedback


def function_progress(report: dict) -> list[tuple[str, str, dict]]:
    """(function, state, the test that decided it) in the order the public tests name them."""
    rank = {"done": 0, "blocked": 1, "todo": 2, "wrong": 3}  # a function is as bad as its worst public test
    states: dict[str, tuple[str, dict]] = {}
    for test in report["tests"]:
        message_id = (test["message"] or {}).get("id")
        state = "done" if test["status"] == "passed" else (
            "todo" if message_id == "not_implemented" else "blocked" if message_id in BLOCKED else "wrong")
        previous = states.get(test["function"])
        if previous is None or rank[state] > rank[previous[0]]:
            states[test["function"]] = (state, test)
    return [(f, s, test) for f, (s, test) in states.items()]


def check_summary(report: dict, lang: str) -> str:
    """What a check counts, in words: functions done and public checks passed (never a grade)."""
    return text("check.progress", lang, **report["progress"])


def render_check_text(report: dict, lang: str = "en", color: bool = False) -> str:
    """One line per student function, its feedback when wrong (and what it printed), and a progress line; what came
    from student code has its control characters and bidi marks shown as escapes."""
    marks = {"done": ("✓", "32"), "wrong": ("✗", "31"), "todo": ("·", "33"), "blocked": ("-", "33")}
    lines = [f"! {_printable(error['message'])}".replace("\n", "\n  ") for error in report["errors"]]
    lines += [""] if lines else []
    for function, state, test in function_progress(report):
        mark, code = marks[state]
        mark = f"\033[{code}m{mark}\033[0m" if color else mark
        label = test["feedback"] if state == "blocked" else text(f"check.{state}", lang)  # "not checked: ..."
        lines.append(f"{mark} {_printable(function):<18} {_printable(label)}")
        if state == "wrong":
            lines.append(f"    {_printable(test['feedback'])}")
        printed = (test.get("output") or "").splitlines()
        if state == "wrong" and printed:
            lines.append("    " + text("check.printed", lang))
            lines += [f"    | {_printable(line)}" for line in printed[:PRINTED_LINES]]
            if len(printed) > PRINTED_LINES:
                lines.append("    | " + text("check.more_lines", lang, n=len(printed) - PRINTED_LINES))
    lines += ["", check_summary(report, lang)]
    return "\n".join(lines) + "\n"


def all_passed(report: dict) -> bool:
    return all(t["status"] == "passed" for t in report["tests"]) and not report["errors"]

