"""Stage 3-4 of the pipeline: run the hidden tests (pytest, in this trusted process) against student code in the
sandbox.

The hidden tests in autotests/<assignment>/ are written with the public API of `grader.testing`, which is also
the pytest plugin that gives them their fixtures; `GradingPlugin` here sets up what those fixtures serve (a
`GradingRun`: the student's sandbox, the variants' sandboxes, the reference) and records each test's outcome.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import grader.testing
from grader.answers import Question, in_process_ask
from grader.compare import Feedback, ReferenceCode, given_code_changed
from grader.course import Assignment
from grader.errors import UnusableInput
from grader.harness import load_commands
from grader.replies import load_reply
from grader.results import Outcome, RunResult
from grader.sandbox import Sandbox

# pytest's own plugins that grading does not use: fewer plugins, faster start.
PYTEST_ARGS = ["--disable-plugin-autoload", "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:pastebin",
               "-p", "no:junitxml", "-p", "no:doctest", "-p", "no:legacypath", "-p", "no:debugging",
               "-p", "no:unittest", "-p", "no:logging", "-p", "no:faulthandler", "-p", "no:stepwise",
               "-p", "no:capture", "-p", "no:warnings", "-p", "no:unraisableexception",
               "-p", "no:threadexception", "--assert=plain"]


_reference_cache: dict[Path, ReferenceCode] = {}
_modules_cache: dict[Path, dict[str, ModuleType]] = {}


def import_modules(folder: Path, names: tuple[str, ...]) -> dict[str, ModuleType]:
    """Import the modules `names` from `folder`, leaving sys.modules and sys.path as they were.

    While they load, the folder comes first on sys.path, so that `from engine import Value` in one of them
    finds this folder's engine."""
    saved = {name: sys.modules.pop(name, None) for name in names}
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()  # a folder written a moment ago (a mutant, a copy) may be cached as it was
    try:
        return {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(folder))
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def reference_modules(assignment: Assignment) -> dict[str, ModuleType]:
    """The reference's modules, imported once per process."""
    folder = assignment.reference_dir.resolve()
    if folder not in _modules_cache:
        _modules_cache[folder] = import_modules(folder, assignment.modules)
    return _modules_cache[folder]


def reference_code(assignment: Assignment, questions: list[Question]) -> ReferenceCode:
    """The reference, once per process: a batch worker reuses its answers to the inputs students share."""
    folder = assignment.reference_dir.resolve()
    if folder not in _reference_cache:
        _reference_cache[folder] = ReferenceCode(reference_modules(assignment), load_commands(assignment.harness),
                                                 in_process_ask(questions), assignment.files)
    return _reference_cache[folder]


class GradingError(UnusableInput, RuntimeError):
    """The hidden tests could not run (a broken course, not a student's fault): no report can be trusted."""


def marker_value(item: pytest.Item, name: str, default=None):
    marker = item.get_closest_marker(name)
    return marker.args[0] if marker and marker.args else default


class GradingPlugin:
    """Sets up one run of the hidden tests and records each test's outcome (without pytest's slow reports)."""

    def __init__(self, assignment: Assignment, files: dict[str, str], sandbox: Sandbox, seed: int, slot: int,
                 probe: tuple[str, ...] | None = None):
        self.assignment = assignment
        self.probe = probe
        self.probe_stopped = False  # pytest ends a run it was asked to stop as INTERRUPTED
        self.files = files
        self.slot = slot
        self.sandbox = sandbox
        self.outcomes: list[Outcome] = []
        self.internal_errors: list[str] = []
        self.collection_errors: list[str] = []
        self.interrupted = False
        self.import_errors: dict[str, dict] = {}
        self._variants: dict[str, Sandbox] = {}
        running: list[str | None] = [None]  # which of the submission's sandboxes is the live one (None: its own)
        self.run = grader.testing.GradingRun(
            assignment, seed, _OneAtATime(None, lambda: sandbox, self.stop_variants, running),
            lambda name: _OneAtATime(name, lambda: self._variant(name), lambda: self._stop_all_but(name), running),
            lambda: reference_modules(assignment), lambda questions: reference_code(assignment, questions))

    def _variant(self, name: str) -> Sandbox:
        if name not in self._variants:
            from grader.grading import open_sandbox

            index = list(self.assignment.variants).index(name)
            self._variants[name] = open_sandbox(self.assignment, self.files, slot=2 * self.slot + 1 + 2 * index,
                                                variant=name)
        return self._variants[name]

    def _stop_all_but(self, name: str) -> None:
        self.sandbox.stop()
        for other, box in self._variants.items():
            if other != name:
                box.stop()

    def stop_variants(self) -> None:
        for box in self._variants.values():
            box.stop()

    def close(self) -> None:
        self.sandbox.close()
        for box in self._variants.values():
            box.close()

    # ------------------------------------------------------------------ hooks

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[grader.testing.RUN] = self.run

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        # pytest also reports "errors during collection" this way, as a KeyboardInterrupt subclass
        self.interrupted = excinfo.type is KeyboardInterrupt

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collection_errors += scoring_problems(self.assignment, items)
        if self.collection_errors:
            items.clear()  # a course that cannot be scored grades no one
        if self.probe is not None:
            order = {name: i for i, name in enumerate(self.probe)}
            items[:] = sorted((item for item in items if item.name in order), key=lambda item: order[item.name])
        # Tests that may run on a variant go last: a submission's sandboxes then switch (a process start each
        # time) fewer times. Every test's inputs depend on its own id only, so the order changes no verdict.
        items.sort(key=lambda item: "fallback" in getattr(item, "fixturenames", ()))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Asked once the tests are collected, so that the sandbox boots while pytest configures and collects,
        # and before any test can switch to a variant (the student's own sandbox would have to start again).
        if not self.collection_errors:
            self.import_errors = import_problems(self.assignment, self.sandbox)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            last = str(report.longrepr).strip().splitlines()[-1:] or ["?"]
            self.collection_errors.append(f"{report.nodeid or 'autotests'}: {last[0]}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
        failed = call.excinfo is not None
        if call.when == "call" or (failed and call.when == "setup"):
            outcome = self.outcome(item, call)
            self.outcomes.append(outcome)
            if self.probe is not None and outcome.status != "passed" and outcome.weight > 0:
                item.session.shouldstop = self.probe_stopped = True
        longrepr = ("", 0, "failed") if failed else None
        # call.when is never "collect" in makereport, but CallInfo's type allows it.
        return pytest.TestReport(item.nodeid, item.location, {}, "failed" if failed else "passed", longrepr,
                                 call.when,  # type: ignore[arg-type]
                                 [], call.duration, call.start, call.stop)

    def outcome(self, item: pytest.Item, call: pytest.CallInfo) -> Outcome:
        group, covers, weight = test_scoring(self.assignment, item)
        function = covers
        status, message = "passed", None
        if call.excinfo is not None:
            error = call.excinfo.value
            if isinstance(error, Feedback):
                status, message, function = error.status, error.message, error.function or function
                given = marker_value(item, "given")
                changed = given and given_code_changed(self.files, self.assignment.reference_dir, given)
                if changed:  # the student's edit of given code, not the function it builds on, is at fault
                    function = given
                    message = {"id": "given_code_changed", "params": {"function": given, "file": changed,
                                                                       "covers": covers}}
            else:  # a bug in the hidden tests or the grader: loud for us, never blamed on the student
                self.internal_errors.append(f"{item.nodeid}: {type(error).__name__}: {error}")
                status, message = "error", {"id": "internal_error", "params": {}}
        return Outcome(item.name, group, weight, covers, function, status, message, round(call.duration, 6))


def test_scoring(assignment: Assignment, item: pytest.Item) -> tuple[str | None, str | None, float]:
    """A hidden test's (group, covered function, weight): its points are a share, by weight, of the covered
    function's points in assignment.toml; a test of weight 0 (a cross-check) costs nothing."""
    covers = marker_value(item, "covers")
    group = assignment.group_of_function(covers) if covers else None
    return group or marker_value(item, "group"), covers, float(marker_value(item, "weight", 1))


def scoring_problems(assignment: Assignment, items: list[pytest.Item]) -> list[str]:
    """What makes the hidden tests and assignment.toml's points disagree (a course bug): a scored test whose
    function has no points, a group marker that contradicts the points table, a function no test covers."""
    problems, covered = [], set()
    for item in items:
        group, covers, weight = test_scoring(assignment, item)
        marked = marker_value(item, "group")
        if group is None:
            problems.append(f"{item.nodeid}: in no group (covers {covers or 'no function'} and has no group marker)")
        elif weight < 0:
            problems.append(f"{item.nodeid}: weight {weight:g} is negative")
        elif weight > 0 and (covers is None or assignment.group_of_function(covers) is None):
            problems.append(f"{item.nodeid}: covers {covers or 'no function'}, which has no points in assignment.toml "
                            "(a test that costs nothing has weight(0))")
        elif marked is not None and group != marked:
            problems.append(f"{item.nodeid}: marked group {marked!r}, but {covers} has its points in {group!r}")
        elif weight > 0:
            covered.add(covers)
    problems += [f"{function} has points in assignment.toml but no hidden test covers it"
                 for function in assignment.function_points() if function not in covered]
    return problems


class _OneAtATime:
    """One of a submission's sandboxes, which runs only while the others are stopped.

    Covert channels between sandboxes (POSIX locks on the shared standard library files, ...) need both ends
    alive; stopping one kills every process of it, its private /tmp included."""

    def __init__(self, name: str | None, sandbox: Callable[[], Sandbox], stop_others: Callable[[], None],
                 running: list[str | None]):
        self._name = name
        self._sandbox = sandbox  # made on first use
        self._stop_others = stop_others
        self._running = running  # shared by the submission's sandboxes: the name of the live one

    @property
    def running(self) -> bool:
        """Whether this is the sandbox that ran last (so the one alive now, or the next to start anyway)."""
        return self._running[0] == self._name

    def call(self, cmd, args, *, shape, timeout=None, meanwhile=None, answer=None):
        if not self.running:
            self._stop_others()
            self._running[0] = self._name
        return self._sandbox().call(cmd, args, shape=shape, timeout=timeout, meanwhile=meanwhile, answer=answer)


def import_problems(assignment: Assignment, sandbox: Sandbox) -> dict[str, dict]:
    """Import each student module in turn; one that raises or never finishes is reported by name."""
    problems: dict[str, dict] = {}
    modules = [Path(f).stem for f in assignment.files if f.endswith(".py")]
    for name in modules:
        if sandbox.time_left <= 0:
            break  # the tests used the submission's time: nothing can be said about its imports
        required = {module: list(names) for module, names in assignment.contract.items()}
        loaded = sandbox.call("load", {"names": [name], "required": required}, shape=load_reply(modules))
        if loaded.status == "ok":
            assert isinstance(loaded.value, dict)  # the "load" reply's shape is a map of module names
            problems.update(loaded.value)
        elif loaded.status == "error":
            assert loaded.error is not None  # set whenever the status is "error"
            problems[name] = loaded.error
        else:
            # a timeout's reason is a message, worded in the report's language
            problems[name] = {"type": loaded.status, "message": loaded.reason or loaded.detail, "traceback": []}
    return problems


_autotests_loaded: list[Path] = []  # the hidden tests whose modules this process has imported last


def forget_other_hidden_tests(autotests: Path) -> None:
    """The hidden tests import their helpers by plain names (`from inputs import ...`), like pytest imports
    test modules: before running another assignment's tests (or another copy of a course), drop the modules
    the last ones left, so that no name resolves to the other assignment's file. The same tests in a row (a
    batch worker) keep them."""
    if _autotests_loaded and _autotests_loaded[0] != autotests:
        previous = str(_autotests_loaded[0]) + "/"
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(previous):
                del sys.modules[name]
    _autotests_loaded[:] = [autotests]


def pytest_on_hidden_tests(assignment: Assignment, plugin: object, *options: str) -> int | pytest.ExitCode:
    """pytest over the assignment's hidden tests, with `plugin` and grader.testing (`options`: e.g.
    --collect-only); the hidden tests' helper modules of another assignment are forgotten first."""
    autotests = assignment.autotests_dir.resolve()
    forget_other_hidden_tests(autotests)
    return pytest.main([str(autotests), "-c", str(autotests / "pytest.ini"), "--rootdir", str(autotests), *options,
                        *PYTEST_ARGS], plugins=[plugin, grader.testing])


def run_hidden_tests(assignment: Assignment, files: dict[str, str], sandbox: Sandbox, *, seed: int,
                     slot: int = 0, probe: tuple[str, ...] | None = None) -> RunResult:
    """Run every hidden test of `assignment` on one submission's files, whose sandbox this takes over (and closes).

    A `probe` (for `grader selftest`) runs only the tests it names, in its order, and stops at the first one
    that loses points: it answers "does this lose points?", and its report is no grade."""
    plugin = GradingPlugin(assignment, files, sandbox, seed, slot, probe)
    try:
        code = pytest_on_hidden_tests(assignment, plugin)
        if plugin.interrupted:
            raise KeyboardInterrupt  # pytest swallowed a Ctrl-C: stop here, a partial run must not become a report
        if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not plugin.probe_stopped:
            name = code.name if isinstance(code, pytest.ExitCode) else f"exit code {code}"
            why = plugin.collection_errors[0] if plugin.collection_errors else name
            raise GradingError(f"the hidden tests did not run: {why}")
        return RunResult(plugin.outcomes, plugin.import_errors, plugin.sandbox.isolation, plugin.internal_errors)
    finally:
        plugin.close()
