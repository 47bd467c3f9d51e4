"""`grader selftest`: mutant generation, the bug catalogue, and end-to-end runs on small subsets.

The end-to-end tests grade through the real pipeline (sandbox included), so they are restricted to the mutants
of one function and a few catalogue bugs, and each runs under a deadline.
"""
from __future__ import annotations

import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest

from grader.course import Course, find_course
from grader.generate import solution_regions
from grader.mutation import OPERATORS, generate_mutants
from grader.selftest import (Bug, SelftestError, SelftestResult, apply_bug, judge_bug, judge_bug_over_seeds,
                             judge_mutant_over_seeds, judge_reference, killed_without_rng, load_catalogue,
                             load_equivalents, render_selftest, run_selftest, selftest_exit_code)

ROOT = Path(__file__).resolve().parents[1]
COURSE = find_course(ROOT)
ASSIGNMENT = COURSE.assignment("micrograd")
MICROGRAD = COURSE.assignment("micrograd")
FILES = {f: (MICROGRAD.reference_dir / f).read_text(encoding="utf-8") for f in MICROGRAD.files}

TOY = '''"""A toy module: only f's solution region may change."""


def f(a, b):
    ### BEGIN SOLUTION
    total = 0
    total += a * b - 2
    if a > b:
        total = b / a
    return total
    ### END SOLUTION


def g(a):
    return a + 1
'''


@contextmanager
def deadline(seconds: float):
    """Fail the test instead of hanging: SIGALRM interrupts the main thread after `seconds`."""
    def expire(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def mutants():
    return generate_mutants(FILES, ASSIGNMENT.group_of_function)


# ---------------------------------------------------------------------- generating mutants


def test_every_operator_produces_mutants_of_the_reference(mutants):
    assert {m.operator for m in mutants} == set(OPERATORS)
    assert {m.group for m in mutants} == {"ops", "backprop", "nn", "training"}


@pytest.mark.parametrize("operator, line", [
    ("augassign", "    total = a * b - 2"),
    ("drop_term", "    total += a * b"),
    ("drop_term", "    total += 2"),
    ("drop_factor", "    total += a - 2"),
    ("drop_factor", "    total += b - 2"),
    ("swap_operands", "    total += 2 - a * b"),
    ("swap_operands", "        total = a / b"),
    ("constant", "    total = -1"),
    ("constant", "    total += a * b - 0"),
    ("negate", "    total += -(a * b - 2)"),
    ("negate", "    if not (a > b):"),
    ("negate", "    return -total"),
    ("comparison", "    if a >= b:"),
    ("comparison", "    if a < b:"),
    ("delete_statement", "        pass"),
])
def test_each_operator_rewrites_just_its_span(operator, line):
    found = [m for m in generate_mutants({"train.py": TOY}, lambda function: "training") if m.operator == operator]
    changed = [m.files["train.py"] for m in found if line in m.files["train.py"].split("\n")]
    assert len(changed) == 1, [m.description for m in found]
    original, mutated = TOY.split("\n"), changed[0].split("\n")
    assert len(original) == len(mutated) and sum(a != b for a, b in zip(original, mutated)) == 1


def test_statement_operators_on_a_toy():
    found = generate_mutants({"train.py": TOY}, lambda function: "training")
    early = [m.files["train.py"] for m in found if m.operator == "return_early"]
    assert TOY.replace("    total += a * b - 2\n", "    return\n    total += a * b - 2\n") in early
    swapped = [m.files["train.py"] for m in found if m.operator == "reorder"]
    assert TOY.replace("    total = 0\n    total += a * b - 2\n", "    total += a * b - 2\n    total = 0\n") in swapped
    assert all(m.group == "training" and m.function == "f" for m in found)


def test_mutants_touch_only_solution_regions_and_one_file(mutants):
    for m in mutants:
        assert {name for name in FILES if m.files[name] != FILES[name]} == {m.file}, m.id
        original, mutated = FILES[m.file], m.files[m.file]
        prefix = next(i for i, (a, b) in enumerate(zip(original, mutated)) if a != b)
        suffix = next(i for i, (a, b) in enumerate(zip(original[::-1], mutated[::-1])) if a != b)
        first, last = original.count("\n", 0, prefix) + 1, original.count("\n", 0, len(original) - suffix) + 1
        assert any(begin < first and last < end for begin, end in solution_regions(original, m.file)), m.diff


def test_mutants_compile_differ_and_have_diffs(mutants):
    texts = set()
    for m in mutants:
        compile(m.files[m.file], m.file, "exec")
        texts.add((m.file, m.files[m.file]))
        assert m.diff.startswith(f"--- a/{m.file}\n+++ b/{m.file}\n") and m.description
        assert m.group == ASSIGNMENT.group_of_function(m.function)
    assert len(texts) == len(mutants)  # no two mutants are the same code


def test_mutant_ids_are_unique_and_stable(mutants):
    ids = [m.id for m in mutants]
    assert len(set(ids)) == len(ids)
    assert ids == [m.id for m in generate_mutants(dict(FILES), ASSIGNMENT.group_of_function)]
    # Editing the file elsewhere (here: above every region) keeps every id, so reviewed equivalents stay valid.
    shifted = generate_mutants({**FILES, "engine.py": "# a new first line\n" + FILES["engine.py"]},
                               ASSIGNMENT.group_of_function)
    assert [m.id for m in shifted] == ids


def test_code_outside_regions_is_never_mutated():
    mutated_lines = {m.line for m in generate_mutants({"train.py": TOY}, lambda function: "training")}
    region = solution_regions(TOY, "train.py")[0]
    assert mutated_lines and all(region[0] < line < region[1] for line in mutated_lines)


# ---------------------------------------------------------------------- the course's files


def test_catalogue_entries_apply_cleanly():
    bugs = load_catalogue(COURSE.assignment("micrograd"))
    assert len(bugs) >= 15
    groups = {g.name for g in COURSE.assignment("micrograd").groups}
    for bug in bugs:
        files = apply_bug(FILES, bug)  # raises unless `find` occurs exactly once
        assert files[bug.file] != FILES[bug.file] and bug.group in groups, bug.name
        compile(files[bug.file], bug.file, "exec")


def test_equivalent_mutants_are_reviewed_and_current(mutants):
    reasons = load_equivalents(COURSE.assignment("micrograd"))
    ids = {m.id for m in mutants}
    assert set(reasons) <= ids, f"stale entries: {set(reasons) - ids}"
    assert all(len(reason) > 10 for reason in reasons.values())


BUG = 'name = "b"\nfile = "engine.py"\nfind = "x"\nreplace = ""\ngroup = "ops"\nfunction = "Value.exp"\n'
MALFORMED = {
    "catalogue not UTF-8": ("bug_catalogue.toml", b'[[bug]]\nname = "\xff"\n', "bug_catalogue.toml: not UTF-8 text"),
    "catalogue invalid TOML": ("bug_catalogue.toml", "[[bug]\n", "bug_catalogue.toml: invalid TOML: "),
    "catalogue missing": ("bug_catalogue.toml", None, "bug_catalogue.toml: cannot read it: No such file"),
    "file a list": ("bug_catalogue.toml", "[[bug]]\n" + BUG.replace('"engine.py"', '["engine.py"]'),
                    "[[bug]] number 1 ('b'): file must be a non-empty string, not ['engine.py']"),
    "find a number": ("bug_catalogue.toml", "[[bug]]\n" + BUG.replace('"x"', "1"),
                      "[[bug]] number 1 ('b'): find must be a non-empty string, not 1"),
    "missing group": ("bug_catalogue.toml", "[[bug]]\n" + BUG + "[[bug]]\n" + BUG.replace('group = "ops"\n', ""),
                      "[[bug]] number 2 ('b'): missing field 'group'"),
    "unknown field": ("bug_catalogue.toml", "[[bug]]\n" + BUG + "note = 1\n", "unknown field 'note'"),
    "a typo of [[bug]]": ("bug_catalogue.toml", "[[bugs]]\n" + BUG, "unknown key 'bugs'"),
    "bug not a table": ("bug_catalogue.toml", "bug = 1\n", "bug must be [[bug]] tables, not 1"),
    "repeated name": ("bug_catalogue.toml", f"[[bug]]\n{BUG}[[bug]]\n{BUG}", "repeated: b"),
    "equivalents not UTF-8": ("equivalent_mutants.toml", b"\xfe", "equivalent_mutants.toml: not UTF-8 text"),
    "id a number": ("equivalent_mutants.toml", '[[equivalent]]\nid = 12\nreason = "r"\n',
                    "[[equivalent]] number 1: id must be a non-empty string, not 12"),
    "no reason": ("equivalent_mutants.toml", '[[equivalent]]\nid = "ab"\nreason = " "\n',
                  "[[equivalent]] number 1 ('ab'): reason must be a non-empty string, not ' '"),
    "repeated id": ("equivalent_mutants.toml", '[[equivalent]]\nid = "ab"\nreason = "r"\n' * 2, "repeated: ab"),
}


@pytest.mark.parametrize("name, content, words", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_catalogue_or_equivalents_name_the_file_and_entry(tmp_path, name, content, words):
    shutil.copytree(ROOT / "assignments", tmp_path / "assignments")
    autotests = tmp_path / "autotests" / "micrograd"
    autotests.mkdir(parents=True)
    if content is not None:
        (autotests / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    load = load_catalogue if name == "bug_catalogue.toml" else load_equivalents
    with pytest.raises(SelftestError) as error:
        load(Course(tmp_path).assignment("micrograd"))
    assert str(error.value).startswith(str(autotests)) and "\n" not in str(error.value)
    assert words in str(error.value)


def test_a_bug_whose_find_is_not_there_once_names_the_catalogue_and_entry():
    with pytest.raises(SelftestError, match=r"bug_catalogue.toml: bug 'b': `find` occurs 0 times in engine.py"):
        apply_bug(FILES, Bug("b", "engine.py", "no such code", "", "ops", "Value.exp"))
    with pytest.raises(SelftestError, match=r"bug_catalogue.toml: bug 'b': no file 'engine'"):
        apply_bug(FILES, Bug("b", "engine", "x", "", "ops", "Value.exp"))


def test_an_unreadable_reference_file_is_named(tmp_path):
    shutil.copytree(ROOT / "assignments", tmp_path / "assignments")
    (tmp_path / "reference" / "micrograd").mkdir(parents=True)
    (tmp_path / "reference" / "micrograd" / "engine.py").write_bytes(b"x = '\xff'\n")
    with pytest.raises(SelftestError, match=r"reference/micrograd/engine.py: not UTF-8 text"):
        run_selftest(Course(tmp_path), "micrograd", jobs=1)
    (tmp_path / "reference" / "micrograd" / "engine.py").write_text("x = 1\n")
    with pytest.raises(SelftestError, match=r"reference/micrograd/nn.py: cannot read it: No such file"):
        run_selftest(Course(tmp_path), "micrograd", jobs=1)


def test_a_reference_below_full_marks_without_failures_or_errors_is_described():
    report = {"score": 80.0, "max_score": 100.0, "errors": [],
              "groups": [{"name": "ops", "score": 80.0, "max_score": 80.0},
                         {"name": "training", "score": 0.0, "max_score": 20.0}],
              "tests": [{"name": "test_a", "group": "ops", "status": "passed", "feedback": ""}]}
    judged = judge_reference(report, "")
    assert judged["problem"] == ("loses points (20 in training) with no failing test and no error: "
                                 "does every group have tests?")
    assert judge_reference({**report, "score": 100.0}, "")["problem"] == ""


# ---------------------------------------------------------------------- end to end


def test_small_selftest_kills_mutants_and_catches_bugs():
    bugs = ["exp backward uses the input instead of the output", "Layer returns a list for a single neuron",
            "train never zeroes the gradients"]
    with deadline(90):
        result = run_selftest(COURSE, "micrograd", jobs=2, functions=["Value.exp*"], bugs=bugs, seeds=2)
    text = render_selftest(result)
    assert not result.reference["problem"], text
    assert result.mutants and all(m.mutant.function == "Value.exp: _backward" for m in result.mutants)
    assert all(m.status == "killed" for m in result.mutants), text
    assert [b.bug.name for b in result.bugs] == bugs and all(b.passed for b in result.bugs), text
    assert all(sorted(b.costs) == [1, 2] for b in result.bugs) and "costs" in text and "weakest seed" in text
    assert selftest_exit_code(result) == 0
    data = result.to_dict()
    assert data["passed"] and data["groups"]["ops"]["kill_rate"] == 1.0


@pytest.fixture
def course_copy(tmp_path):
    """A copy of the course (assignments/, reference/, autotests/) to break on purpose."""
    for folder in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_weakened_hidden_test_makes_selftest_fail_and_name_survivors(course_copy):
    # The weakening: every hidden test that could see tanh's gradient passes without looking.
    conftest = course_copy / "autotests" / "micrograd" / "conftest.py"
    conftest.write_text(conftest.read_text() + '''

def pytest_collection_modifyitems(items):
    for item in items:
        if "tanh" in item.name or "composed_graph" in item.name:
            item.runtest = lambda: None
''')
    with deadline(90):
        result = run_selftest(find_course(course_copy), "micrograd", jobs=2, functions=["Value.tanh*"], bugs=[],
                              seeds=1)
    text = render_selftest(result)
    assert not result.reference["problem"], text
    assert selftest_exit_code(result) == 1
    survivors = [m.mutant for m in result.survivors]
    assert survivors and all(m.function == "Value.tanh: _backward" for m in survivors)
    assert "FAILED" in text
    for m in survivors:  # named, with the changed line of the diff
        added = next(line for line in m.diff.split("\n") if line.startswith("+") and not line.startswith("+++"))
        assert f"{m.id}  engine.py:{m.line}" in text and added in text


def test_stale_equivalents_and_broken_catalogue_entries_are_reported(course_copy):
    autotests = course_copy / "autotests" / "micrograd"
    with open(autotests / "equivalent_mutants.toml", "a") as f:
        f.write('\n[[equivalent]]\nid = "0000000000"\nreason = "a mutant of code that is gone"\n')
    with open(autotests / "bug_catalogue.toml", "a") as f:
        f.write('\n[[bug]]\nname = "stale"\nfile = "engine.py"\nfind = "no such code"\nreplace = "x"\n'
                'group = "ops"\nfunction = "Value.exp"\n')
    with deadline(60):
        result = run_selftest(find_course(course_copy), "micrograd", jobs=1, functions=[], bugs=["stale"], seeds=1)
    assert any("0000000000" in w and "stale" in w for w in result.warnings)
    assert not result.bugs[0].passed and "occurs 0 times" in result.bugs[0].problem
    assert selftest_exit_code(result) == 1 and not result.mutants


def report(lost_in, failing):
    """A minimal report: full marks except in `lost_in`; failing tests as (group, function, feedback)."""
    groups = [{"name": g, "score": 10.0 - (g in lost_in), "max_score": 10.0} for g in ("ops", "nn")]
    tests = [{"name": f"test_{i}", "group": g, "function": fn, "status": "failed", "feedback": text}
             for i, (g, fn, text) in enumerate(failing)]
    return {"groups": groups, "tests": tests, "errors": []}


@pytest.mark.parametrize("lost_in, failing, passed, problem", [
    (["ops"], [("ops", "Value.tanh", "tanh backward is wrong")], True, ""),
    (["ops"], [("ops", "Value", "random graph #1: node 3 is wrong, see tanh")], True, ""),
    (["nn"], [("nn", "Neuron.__call__", "output is wrong")], False, "loses points only in nn, not in ops"),
    ([], [], False, "loses points nowhere"),
    (["ops"], [("ops", "Value.exp", "exp backward is wrong")], False, "no failing test in ops names Value.tanh"),
])
def test_a_bug_must_lose_points_in_its_group_with_feedback_naming_it(lost_in, failing, passed, problem):
    bug = Bug("tanh", "engine.py", "a", "b", "ops", "Value.tanh")
    judged = judge_bug(bug, report(lost_in, failing), "")
    assert judged.passed is passed and problem in judged.problem


# ---------------------------------------------------------------------- seeds


TANH = Bug("tanh", "engine.py", "a", "b", "ops", "Value.tanh")
CAUGHT = report(["ops"], [("ops", "Value.tanh", "tanh backward is wrong")])
MISSED = report([], [])


def test_a_bug_caught_under_some_seeds_only_fails_and_names_them():
    judged = judge_bug_over_seeds(TANH, {1: (CAUGHT, ""), 2: (MISSED, ""), 3: (CAUGHT, ""), 4: (MISSED, "")})
    assert not judged.passed and judged.problem.startswith("under seed 2, 4: loses points nowhere")
    assert judged.costs == {1: 1.0, 2: 0.0, 3: 1.0, 4: 0.0} and judged.cost_range() == (0.0, 0.5, 1.0)
    steady = judge_bug_over_seeds(TANH, {seed: (CAUGHT, "") for seed in (1, 2, 3)})
    assert steady.passed and steady.cost_range() == (1.0, 1.0, 1.0)


def test_a_mutant_killed_under_some_seeds_only_survives_and_the_weakest_seed_is_named():
    mutant = generate_mutants(FILES, ASSIGNMENT.group_of_function)[0]
    judged = judge_mutant_over_seeds(mutant, {1: (CAUGHT, ""), 2: (MISSED, ""), 3: (CAUGHT, "")}, {})
    assert judged.status == "survived" and judged.escaped == [2] and "under seed(s) 2" in judged.detail
    killed = judge_mutant_over_seeds(mutant, {1: (CAUGHT, ""), 2: (CAUGHT, "")}, {})
    assert killed.status == "killed" and killed.escaped == []
    result = SelftestResult("micrograd", 1, {"score": 1, "max_score": 1, "problem": ""}, [judged, killed], [],
                            seeds=[1, 2, 3])
    assert not result.passed and result.weakest_seed == 2 and "weakest seed: 2" in render_selftest(result)


def test_a_kill_by_a_test_without_random_inputs_holds_under_every_seed():
    lost = {**CAUGHT, "tests": [{**CAUGHT["tests"][0], "max_score": 2.0}]}
    assert killed_without_rng(lost, seeded=[])
    assert not killed_without_rng(lost, seeded=["test_0"])  # its inputs came from the seed: grade the others
    assert not killed_without_rng({**lost, "tests": [{**lost["tests"][0], "max_score": 0.0}]}, seeded=[])


def test_a_probe_runs_only_its_tests_in_its_order_and_stops_at_the_first_loss():
    from grader.parallel import GradeTask, grade_task

    buggy = apply_bug(FILES, Bug("tanh", "engine.py", "(1 - t ** 2)", "(1 - t)", "ops", "Value.tanh"))
    probe = ("test_exp_backward_matches_reference", "test_tanh_backward_matches_reference",
             "test_log_backward_matches_reference")
    with deadline(60):
        report = grade_task(GradeTask("probe", str(ROOT), "micrograd", files=tuple(sorted(buggy.items())), seed=3,
                                      probe=probe))
    assert [(t["name"], t["status"]) for t in report["tests"]] == [(probe[0], "passed"), (probe[1], "failed")]
