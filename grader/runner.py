"""Stage 3-4 of the pipeline: run the hidden tests (pytest, in this trusted process) against student code in the
sandbox.

The tests in `autotests/` receive fixtures from `GradingPlugin`: `student` (the submission behind the sandbox),
`correct_engine` (the student's nn.py/train.py over the course engine: the public forward code of the
skeleton, whose backward() the grader computes; started only when a test needs it), `reference` (the
reference, in-process) and `rng` (seeded per test, so a grade is reproducible).
"""
from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

from grader.answers import Questions
from grader.compare import EngineVerdict, Feedback, ReferenceCode, StudentCode, with_correct_engine_fallback
from grader.course import Assignment
from grader.errors import UnusableInput
from grader.replies import REPLIES
from grader.results import Outcome, RunResult
from grader.sandbox import Sandbox

MODULES = ("engine", "nn", "train")
# The names the hidden tests use: a module that imports without one of them was renamed or cut.
CONTRACT = {"engine": ["Value"], "nn": ["Module", "Neuron", "Layer", "MLP"],
            "train": ["mse_loss", "l2_penalty", "sgd_step", "train"]}

# pytest's own plugins that grading does not use: fewer plugins, faster start.
PYTEST_ARGS = ["--disable-plugin-autoload", "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:pastebin",
               "-p", "no:junitxml", "-p", "no:doctest", "-p", "no:legacypath", "-p", "no:debugging",
               "-p", "no:unittest", "-p", "no:logging", "-p", "no:faulthandler", "-p", "no:stepwise",
               "-p", "no:capture", "-p", "no:warnings", "-p", "no:unraisableexception",
               "-p", "no:threadexception", "--assert=plain"]


_reference_cache: dict[Path, ReferenceCode] = {}


def import_modules(folder: Path, names=MODULES, prefix: str = "_grader_reference") -> dict[str, ModuleType]:
    """Import engine.py, nn.py, train.py from `folder` under private names, leaving sys.modules as it was.

    While they load, sys.modules["engine"] is this folder's engine, so that `from engine import Value` in
    nn.py and train.py finds it."""
    saved = {name: sys.modules.get(name) for name in MODULES}
    modules = {}
    try:
        for name in names:
            spec = importlib.util.spec_from_file_location(f"{prefix}.{name}", folder / f"{name}.py")
            assert spec is not None and spec.loader is not None  # always set for a path ending in .py
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            modules[name] = module
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return modules


def load_reference(folder: Path) -> dict[str, ModuleType]:
    """The reference's modules, imported once per process."""
    return reference_code(folder).modules


def reference_code(folder: Path) -> ReferenceCode:
    """The reference, once per process: a batch worker reuses its answers to the inputs students share."""
    folder = folder.resolve()
    if folder not in _reference_cache:
        _reference_cache[folder] = ReferenceCode(import_modules(folder))
    return _reference_cache[folder]


class GradingError(UnusableInput, RuntimeError):
    """The hidden tests could not run (a broken course, not a student's fault): no report can be trusted."""


def marker_value(item: pytest.Item, name: str, default=None):
    marker = item.get_closest_marker(name)
    return marker.args[0] if marker and marker.args else default


class GradingPlugin:
    """Gives the hidden tests their fixtures and records each test's outcome (without pytest's slow reports)."""

    def __init__(self, assignment: Assignment, files: dict[str, str], sandbox: Sandbox, seed: int, slot: int):
        self.assignment = assignment
        self.files = files
        self.seed = seed
        self.slot = slot
        self.outcomes: list[Outcome] = []
        self.internal_errors: list[str] = []
        self.collection_errors: list[str] = []
        self.interrupted = False
        self.sandbox = sandbox
        self._correct_engine_sandbox: Sandbox | None = None
        # One of each for the whole run (fixture setup per test is pytest's main cost); the function a test
        # is about is set on them before each test.
        value = reference_code(assignment.course.reference_dir).modules["engine"].Value
        self._student = StudentCode(_OneAtATime(lambda: sandbox, self.stop_correct_engine), Questions(value, False))
        self._on_correct_engine = StudentCode(_OneAtATime(self.correct_engine_sandbox, sandbox.stop),
                                              Questions(value, True), on_correct_engine=True)
        self.engine_verdict = EngineVerdict()

    def close(self) -> None:
        self.sandbox.close()
        if self._correct_engine_sandbox is not None:
            self._correct_engine_sandbox.close()

    def correct_engine_sandbox(self) -> Sandbox:
        """The student's files with engine.py replaced by the skeleton's (public: forward code only)."""
        if self._correct_engine_sandbox is None:
            engine = (self.assignment.folder / "engine.py").read_text(encoding="utf-8")
            self._correct_engine_sandbox = Sandbox({**self.files, "engine.py": engine}, self.assignment.limits,
                                                   slot=2 * self.slot + 1, harness_args=("course-engine",))
        return self._correct_engine_sandbox

    def stop_correct_engine(self) -> None:
        if self._correct_engine_sandbox is not None:
            self._correct_engine_sandbox.stop()

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture(scope="session")
    def reference(self) -> ReferenceCode:
        return reference_code(self.assignment.course.reference_dir)

    @pytest.fixture(scope="session")
    def student(self) -> StudentCode:
        return self._student

    @pytest.fixture(scope="session")
    def correct_engine(self) -> StudentCode:
        """The student's nn.py/train.py on the reference engine: for judging them apart from engine bugs."""
        return self._on_correct_engine

    @pytest.fixture(scope="session")
    def on_any_engine(self):
        """A function of a check: it passes when the check passes over the student's engine or the reference's."""
        return lambda check: with_correct_engine_fallback(self._student, self._on_correct_engine, check,
                                                          self.engine_verdict)

    @pytest.fixture
    def rng(self, request) -> random.Random:
        return random.Random(f"{self.seed}:{request.node.nodeid}")

    # ------------------------------------------------------------------ outcomes

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        # pytest also reports "errors during collection" this way, as a KeyboardInterrupt subclass
        self.interrupted = excinfo.type is KeyboardInterrupt

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            last = str(report.longrepr).strip().splitlines()[-1:] or ["?"]
            self.collection_errors.append(f"{report.nodeid or 'autotests'}: {last[0]}")

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._student.function = self._on_correct_engine.function = marker_value(item, "covers")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        from _pytest.reports import TestReport

        failed = call.excinfo is not None
        if call.when == "call" or (failed and call.when == "setup"):
            self.outcomes.append(self.outcome(item, call))
        longrepr = ("", 0, "failed") if failed else None
        # call.when is never "collect" in makereport, but CallInfo's type allows it.
        return TestReport(item.nodeid, item.location, {}, "failed" if failed else "passed", longrepr,
                          call.when,  # type: ignore[arg-type]
                          [], call.duration, call.start, call.stop)

    def outcome(self, item: pytest.Item, call: pytest.CallInfo) -> Outcome:
        group = marker_value(item, "group")
        function = marker_value(item, "covers")
        status, message = "passed", None
        if call.excinfo is not None:
            error = call.excinfo.value
            if isinstance(error, Feedback):
                status, message, function = error.status, error.message, error.function or function
            else:  # a bug in the hidden tests or the grader: loud for us, never blamed on the student
                self.internal_errors.append(f"{item.nodeid}: {type(error).__name__}: {error}")
                status, message = "error", {"id": "internal_error", "params": {}}
        return Outcome(item.name, group, float(marker_value(item, "weight", 1)), function, status, message,
                       round(call.duration, 6))


class _OneAtATime:
    """One of a submission's two sandboxes, which runs only while the other is stopped.

    Covert channels between sandboxes (POSIX locks on the shared standard library files, ...) need both ends
    alive; stopping one kills every process of it, its private /tmp included."""

    def __init__(self, sandbox: Callable[[], Sandbox], stop_other: Callable[[], None]):
        self._sandbox = sandbox  # made on first use
        self._stop_other = stop_other

    def call(self, cmd, args, *, shape, timeout=None, meanwhile=None, answer=None):
        self._stop_other()
        return self._sandbox().call(cmd, args, shape=shape, timeout=timeout, meanwhile=meanwhile, answer=answer)


def import_problems(sandbox: Sandbox) -> dict[str, dict]:
    """Import each student module in turn; one that raises or never finishes is reported by name."""
    problems: dict[str, dict] = {}
    for name in MODULES:
        if sandbox.time_left <= 0:
            break  # the tests used the submission's time: nothing can be said about its imports
        loaded = sandbox.call("load", {"names": [name], "required": CONTRACT}, shape=REPLIES["load"])
        if loaded.status == "ok":
            assert isinstance(loaded.value, dict)  # the "load" reply's shape is a map of module names
            problems.update(loaded.value)
        elif loaded.status == "error":
            assert loaded.error is not None  # set whenever the status is "error"
            problems[name] = loaded.error
        else:
            problems[name] = {"type": loaded.status, "message": loaded.detail, "traceback": []}
    return problems


def run_hidden_tests(assignment: Assignment, files: dict[str, str], sandbox: Sandbox, *, seed: int,
                     slot: int = 0) -> RunResult:
    """Run every hidden test of `assignment` on one submission's files, whose sandbox this takes over (and closes)."""
    autotests = assignment.course.autotests_dir
    plugin = GradingPlugin(assignment, files, sandbox, seed, slot)
    try:
        args = [str(autotests), "-c", str(autotests / "pytest.ini"), "--rootdir", str(autotests), *PYTEST_ARGS]
        code = pytest.main(args, plugins=[plugin])
        if plugin.interrupted:
            raise KeyboardInterrupt  # pytest swallowed a Ctrl-C: stop here, a partial run must not become a report
        if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            name = code.name if isinstance(code, pytest.ExitCode) else f"exit code {code}"
            why = plugin.collection_errors[0] if plugin.collection_errors else name
            raise GradingError(f"the hidden tests did not run: {why}")
        # Asked after the tests, so that the sandbox boots while pytest configures and collects; by now the
        # modules are imported and this costs three short round trips.
        plugin.stop_correct_engine()
        import_errors = import_problems(plugin.sandbox)
        return RunResult(plugin.outcomes, import_errors, plugin.sandbox.isolation, plugin.internal_errors)
    finally:
        plugin.close()
