"""grader export: the student version (public tests only), the student-repo template's workflow, and the
Gradescope bundle, each installed and run the way its users run it."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grader.cli import main
from grader.export import ExportError, export_gradescope, export_student

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "reference" / "micrograd"
FILES = ("engine.py", "nn.py", "train.py")
BOB = ROOT / "submissions" / "micrograd" / "bob_tanh_bug"
TIMEOUT = 300


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user who installed the grader: no GRADER_COURSE, no PYTHONPATH into this repo."""
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_COURSE", "PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def make_venv(folder: Path) -> Path:
    """A virtual environment that sees this Python's packages (the grader's dependencies) but not its grader."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
                   check=True, timeout=TIMEOUT)
    return folder / "bin"


def pip_options() -> list[str]:
    """Offline when the build backend is here already; else pip fetches hatchling, as it would for a user."""
    return ["--no-deps"] + (["--no-build-isolation", "--no-index"] if importlib.util.find_spec("hatchling") else [])


# ---------------------------------------------------------------- what "hidden" means, for the leak scan

def solution_lines(text: str) -> tuple[set[str], set[str]]:
    """(lines inside BEGIN/END SOLUTION regions, lines outside them), stripped."""
    inside, outside, current = set(), set(), None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped == "### BEGIN SOLUTION":
            current = True
        elif stripped == "### END SOLUTION":
            current = None
        else:
            (inside if current else outside).add(stripped)
    return inside, outside


# Lines the course publishes on purpose, so their presence proves nothing: the reference outside its solution
# regions (that is the skeleton), the READMEs, notes and template, and the public tests.
def public_text() -> tuple[set[str], str]:
    outside: set[str] = set()
    for name in FILES:
        outside |= solution_lines((REF / name).read_text(encoding="utf-8"))[1]
    public = sorted((REF / "student").rglob("*")) + sorted((REF / "tests").glob("*.py")) + [
        REF / "harness.py", REF / "messages.toml"]  # the harness and messages ship to students: public by design
    prose = "\n".join(p.read_text(encoding="utf-8") for p in public if p.is_file())
    return outside, prose


# Found in the grader on purpose, with the reason; everything else hidden must be absent.
ALLOWED = {
    "self.grad = 1.0": "grader/messages.py feedback for a wrong seed; the README says `set a.grad = 1.0`",
    "except ValueError:": "plain Python, in the grader as in the hidden tests' helpers",
}


def hidden_lines() -> dict[str, str]:
    """Every non-trivial line of each solution region and of autotests/ -> where it comes from."""
    outside, prose = public_text()

    def non_trivial(line: str) -> bool:
        return (len(line) >= 12 and not line.startswith(("#", "import ", "from ", "@")) and line not in outside
                and line not in prose and line not in ALLOWED)

    found = {}
    for name in FILES:
        for line in solution_lines((REF / name).read_text(encoding="utf-8"))[0]:
            if non_trivial(line):
                found[line] = f"reference/{name} (solution region)"
    for path in sorted((ROOT / "autotests" / "micrograd").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            for line in path.read_text(encoding="utf-8").split("\n"):
                if non_trivial(line.strip()):
                    found.setdefault(line.strip(), f"autotests/{path.relative_to(ROOT / 'autotests')}")
    return found


def leaks(folder: Path, hidden: dict[str, str]) -> list[str]:
    problems = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix != ".pyc":
            text = path.read_bytes().decode("utf-8", errors="replace")
            problems += [f"{path}: {line!r} from {source}" for line, source in hidden.items() if line in text]
    return problems


# ---------------------------------------------------------------- student export

@pytest.fixture(scope="module")
def student_export(tmp_path_factory) -> Path:
    return export_student(tmp_path_factory.mktemp("student") / "export", name="micrograd")


def readme_install_command(readme: str) -> list[str]:
    """The install command of the README's set-up section, as the shell splits it, e.g.
    ["python", "-m", "pip", "install", "../grader-src[notebook]"]."""
    commands = re.findall(r"`(python -m pip install [^`]+)`", readme)
    assert len(commands) == 1, commands
    return shlex.split(commands[0])


@pytest.fixture(scope="module")
def student_install(student_export, tmp_path_factory) -> Path:
    """The README's install command, run in the assignment folder, into a fresh environment; its bin folder."""
    bin_dir = make_venv(tmp_path_factory.mktemp("venv") / "venv")
    folder = student_export / "micrograd"
    python, *pip_install = readme_install_command((folder / "README.md").read_text(encoding="utf-8"))
    assert python == "python"
    proc = subprocess.run([str(bin_dir / "python"), *pip_install, "--quiet", "--disable-pip-version-check",
                           *pip_options()], cwd=folder, env=clean_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return bin_dir


def test_both_readmes_give_the_same_install_command_and_it_finds_the_grader(student_export):
    folder = student_export / "micrograd"
    english = readme_install_command((folder / "README.md").read_text(encoding="utf-8"))
    assert readme_install_command((folder / "README.zh.md").read_text(encoding="utf-8")) == english
    source, extra = re.fullmatch(r"(.+)\[(\w+)\]", english[-1]).groups()
    pyproject = tomllib.loads((folder / source / "pyproject.toml").read_text(encoding="utf-8"))
    # The notebook extra brings a kernel and Jupyter; the grader's own dependencies are the same as here.
    assert extra == "notebook" and {r.split(">")[0] for r in pyproject["project"]["optional-dependencies"][extra]} == {
        "ipykernel", "notebook"}


def installed_package(bin_dir: Path) -> Path:
    proc = subprocess.run([str(bin_dir / "python"), "-c", "import grader; print(grader.__file__)"], cwd=bin_dir,
                          env=clean_env(), capture_output=True, text=True, timeout=TIMEOUT, check=True)
    return Path(proc.stdout.strip()).parent


def test_student_export_holds_the_assignment_and_a_grader_with_only_public_tests(student_export):
    folder = student_export / "micrograd"
    expected = ["README.md", "README.zh.md", "assignment.toml", "engine.py", "micrograd.ipynb", "nn.py", "train.py",
                "tests/test_engine.py", "template/README.md", "template/.github/workflows/check.yml",
                "template/.gitignore", "template/engine.py"]
    for rel in expected:
        assert (folder / rel).is_file(), rel
    assert (folder / "engine.py").read_bytes() == (ROOT / "assignments/micrograd/engine.py").read_bytes()
    source = student_export / "grader-src"
    assert sorted(p.name for p in source.iterdir()) == ["README.md", "assignments", "grader", "pyproject.toml"]
    pyproject = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"] == {
        "assignments": "grader/_course/assignments"}
    assert pyproject["project"]["scripts"] == {"grader": "grader.cli:main"}
    every = [p.relative_to(student_export).parts for p in student_export.rglob("*")]
    assert not [p for p in every if {"reference", "autotests", "_course", "__pycache__"} & set(p)]


@pytest.mark.slow
def test_nothing_hidden_is_in_the_student_export_or_its_install(student_export, student_install):
    hidden = hidden_lines()
    assert len(hidden) > 100  # solution regions and hidden tests: the scan has something to look for
    assert not leaks(student_export, hidden)
    assert not leaks(installed_package(student_install), hidden)
    # The scan does find what it looks for: every solution line, in the reference.
    found = "\n".join(leaks(REF, hidden))
    solutions = [line for line, source in hidden.items() if source.startswith("reference/")]
    assert solutions and all(f"{line!r} from reference/" in found for line in solutions)


@pytest.mark.slow
def test_student_install_checks_the_skeleton_and_the_reference_from_anywhere(student_export, student_install,
                                                                             tmp_path):
    assert installed_package(student_install).is_relative_to(student_install.parent)
    work = tmp_path / "work"
    shutil.copytree(student_export / "micrograd", work)
    grader = str(student_install / "grader")

    # What the README promises: the skeleton lists every function as not written yet; the finished work ends
    # with "21 of 21 functions done" and exit status 0.
    readme = (work / "README.md").read_text(encoding="utf-8")
    done = re.search(r"ends with `(\d+ of \d+ functions done)`", readme).group(1)
    proc = subprocess.run([grader, "check"], cwd=work, env=clean_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("not written yet") == 21 and "0 of 21 functions done" in proc.stdout

    for name in FILES:
        shutil.copy(REF / name, work / name)
    proc = subprocess.run([grader, "check"], cwd=work, env=clean_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert done == "21 of 21 functions done" and done in proc.stdout
    proc = subprocess.run([grader, "check", "micrograd.ipynb", "--lang", "zh"], cwd=work, env=clean_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    # The notebook is still the skeleton.
    assert proc.returncode == 1 and "尚未实现" in proc.stdout, proc.stdout + proc.stderr

    # The student grader has no hidden tests: `grade` and `batch` say so in one line.
    for args in (["grade", str(work)], ["batch", str(tmp_path)]):
        proc = subprocess.run([grader, *args], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "no hidden tests" in lines[0], proc.stderr


def test_grade_refuses_a_course_without_hidden_tests_in_one_line(student_export):
    course = str(student_export / "grader-src")  # assignments/ only, like the student install
    result = CliRunner().invoke(main, ["grade", str(BOB), "--course", course])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "no hidden tests" in result.output and "grader check" in result.output


def test_export_errors_are_one_line(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("")
    runner = CliRunner()
    for args, words in ((["export", "student", "--assignment", "micrograd", "--out", str(taken)],
                         "not an empty folder"),
                        (["export", "gradescope", "--assignment", "micrograd", "--out", str(tmp_path)],
                         "is a folder"),
                        (["export", "student", "--out", str(tmp_path / "new"), "--assignment", "nope"],
                         "no assignment 'nope'")):
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and result.output.startswith("Error: ") and words in result.output, result.output
        assert result.output.count("\n") == 1
    # A student course cannot make a Gradescope bundle; stale student material is not exported.
    student_course = tmp_path / "student-course"
    shutil.copytree(ROOT / "assignments", student_course / "assignments")
    with pytest.raises(ExportError, match="no hidden tests"):
        export_gradescope(tmp_path / "a.zip", course_dir=student_course, name="micrograd")
    stale = course_copy(tmp_path / "stale")
    (stale / "assignments/micrograd/engine.py").write_text("# edited\n")
    with pytest.raises(ExportError, match="out of date.*grader generate"):
        export_student(tmp_path / "out", course_dir=stale, name="micrograd")


def test_a_failed_student_export_leaves_nothing_behind_and_its_retry_works(tmp_path, monkeypatch):
    import grader.export

    def fail(*args, **kwargs):  # late in the export: the assignment and the grader package are copied by then
        raise ExportError("cannot tell the grader's dependencies")

    new, empty = tmp_path / "new" / "export", tmp_path / "empty"
    empty.mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(grader.export, "pyproject_text", fail)
        for out in (new, empty):
            with pytest.raises(ExportError, match="dependencies"):
                export_student(out, name="micrograd")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["empty", "new"]  # no partial export, no staging folder
    for out in (new, empty):
        assert export_student(out, name="micrograd") == out and sorted(p.name for p in out.iterdir()) == [
            "README.md", "grader-src", "micrograd"]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["export"]
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match=r"file/out: cannot write the export: "):
        export_student(tmp_path / "file" / "out", name="micrograd")


def test_export_help_is_complete():
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--help"])
    assert result.exit_code == 0 and "student" in result.output and "gradescope" in result.output
    for command in ("student", "gradescope"):
        result = runner.invoke(main, ["export", command, "--help"])
        assert result.exit_code == 0
        for option in ("--assignment", "--course", "--out"):
            assert option in result.output


# ---------------------------------------------------------------- the student-repo template's workflow

def workflow() -> dict:
    return yaml.safe_load((ROOT / "assignments/micrograd/template/.github/workflows/check.yml").read_text())


def test_template_is_the_skeleton_a_readme_and_a_workflow():
    template = ROOT / "assignments/micrograd/template"
    assert sorted(p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file()) == [
        ".github/workflows/check.yml", ".gitignore", "README.md", "engine.py", "nn.py", "train.py"]
    for name in FILES:
        assert (template / name).read_bytes() == (ROOT / "assignments/micrograd" / name).read_bytes()
    readme = (template / "README.md").read_text()
    assert "{{" not in readme and "grader check" in readme and "`Value.backward`" in readme

    job = workflow()["jobs"]["check"]
    uses = [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python", "actions/upload-artifact"]
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert str(setup["with"]["python-version"]) == "3.11"
    assert "vars.GRADER_PIP_SPEC" in job["env"]["GRADER_PIP_SPEC"]
    runs = {s.get("id", s.get("name")): s for s in job["steps"] if "run" in s}
    install = next(s for s in runs.values() if "pip install" in s["run"])
    assert '"$spec"' in install["run"] and "GRADER_PIP_SPEC" in install["run"]
    assert runs["check"]["continue-on-error"] is True
    assert runs["check"]["run"].strip() == "grader check --format junit --out check.xml"


def step_should_run(step: dict, outcomes: dict[str, str], failed: bool) -> bool:
    """The `if:` forms the workflow uses, as GitHub Actions evaluates them."""
    condition = step.get("if", "success()").strip()
    if condition == "always()":
        return True
    if condition == "success()":
        return not failed
    if condition.startswith("always() && vars.GRADER_SERVER != ''"):
        return False  # the submit step: these runs have no grading service (the variable is unset)
    match = re.fullmatch(r"steps\.(\w+)\.outcome (==|!=) '(\w+)'", condition)
    assert match, f"the test does not know the condition {condition!r}: teach step_should_run"
    step_id, op, value = match.groups()
    return not failed and ((outcomes.get(step_id) == value) == (op == "=="))


def run_workflow(folder: Path, bin_dir: Path, summary: Path) -> dict:
    """Run the job's `run:` steps (all but the grader's install, done by the fixture) in order, like Actions."""
    job = workflow()["jobs"]["check"]
    env = clean_env(GITHUB_STEP_SUMMARY=str(summary), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CI="true")
    outcomes, failed, ran = {}, False, {}
    for step in job["steps"]:
        if "run" not in step or "pip install" in step["run"] or not step_should_run(step, outcomes, failed):
            continue
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=folder,
                              env=env, capture_output=True, text=True, timeout=TIMEOUT)
        key = step.get("id", step.get("name"))
        ran[key] = proc
        outcomes[key] = "success" if proc.returncode == 0 else "failure"
        failed |= proc.returncode != 0 and not step.get("continue-on-error", False)
    return {"ran": ran, "failed": failed}


def template_copy(tmp_path: Path, student_export: Path, code_from: Path) -> Path:
    folder = tmp_path / "repo"
    shutil.copytree(student_export / "micrograd" / "template", folder)
    for name in FILES:
        shutil.copy(code_from / name, folder / name)
    return folder


@pytest.mark.slow
def test_workflow_passes_on_the_reference(student_export, student_install, tmp_path):
    folder = template_copy(tmp_path, student_export, REF)
    summary = tmp_path / "summary.md"
    result = run_workflow(folder, student_install, summary)
    assert not result["failed"], {k: p.stdout + p.stderr for k, p in result["ran"].items()}
    assert list(result["ran"]) == ["check", "Write the job summary"]
    suites = ET.parse(folder / "check.xml").getroot()
    assert suites.tag == "testsuites" and int(suites.get("tests")) >= 21
    assert suites.get("failures") == "0" and suites.get("errors") == "0"
    text = summary.read_text(encoding="utf-8")
    assert "| --- | ---: | ---: |" in text and re.search(r"\| ops: .+ \| \d+ \| \d+ \|", text)
    assert "not passed" not in text.lower()


@pytest.mark.slow
def test_workflow_fails_on_a_bug_with_junit_failures_and_a_summary_of_feedback(student_export, student_install,
                                                                               tmp_path):
    folder = template_copy(tmp_path, student_export, BOB)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step's summary\n")
    result = run_workflow(folder, student_install, summary)
    ran = result["ran"]
    assert ran["check"].returncode == 1 and ran["Write the job summary"].returncode == 0
    assert ran["Fail when a public test fails"].returncode == 1 and result["failed"]

    suites = ET.parse(folder / "check.xml").getroot()
    failures = [case for case in suites.iter("testcase") if case.find("failure") is not None]
    assert int(suites.get("failures")) == len(failures) >= 1
    assert all("tanh" in case.get("name") for case in failures)
    assert "tanh" in failures[0].find("failure").get("message")

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step's summary\n")  # appended, as GitHub expects
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert any(line.startswith("| ops:") for line in table)
    cells = [[cell.strip().replace("\\", "") for cell in line.split("|")] for line in table]  # Markdown: \_ is _
    assert any(row[1] == "test_tanh_backward" and "tanh backward" in row[-2] for row in cells), table


# ---------------------------------------------------------------- Gradescope bundle

VISIBILITY = {"ops": "visible", "backprop": "hidden", "nn": "after_published", "training": "after_due_date"}


def course_copy(folder: Path, visibility: dict[str, str] | None = None) -> Path:
    """The course (assignments/, reference/, autotests/), optionally with other group visibilities."""
    for part in ("assignments", "reference", "autotests"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for group, value in (visibility or {}).items():
        for toml in (folder / "reference/micrograd/assignment.toml", folder / "assignments/micrograd/assignment.toml"):
            text = toml.read_text(encoding="utf-8")
            text, count = re.subn(rf'(\[groups\.{group}\][^\[]*?visibility = )"\w+"', rf'\1"{value}"', text)
            assert count == 1, group
            toml.write_text(text, encoding="utf-8")
    return folder


def unpack(bundle: Path, dest: Path) -> None:
    """As Gradescope's unzip does: with the files' Unix modes."""
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


@pytest.fixture(scope="module")
def autograder(tmp_path_factory) -> Path:
    """An /autograder-like tree: the bundle unpacked into source/, setup.sh run (apt-get skipped)."""
    base = tmp_path_factory.mktemp("gradescope")
    course = course_copy(base / "course", VISIBILITY)
    bundle = export_gradescope(base / "autograder.zip", course_dir=course, name="micrograd")
    root = base / "autograder"
    unpack(bundle, root / "source")
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")  # what Gradescope does
    python_dir = str(Path(sys.executable).parent)  # setup.sh's `python3` is this Python
    proc = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", capture_output=True,
                          text=True, timeout=TIMEOUT, env=clean_env(
                              AUTOGRADER_ROOT=str(root), GRADER_SKIP_APT="1",
                              GRADER_VENV_OPTIONS="--system-site-packages --without-pip",
                              GRADER_PIP_OPTIONS=" ".join(pip_options()),
                              PATH=f"{python_dir}{os.pathsep}{os.environ['PATH']}"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "grader, version" in proc.stdout
    return root


def run_autograder(root: Path, submission_from: Path | None, created_at: str | None = None,
                   extra: dict[str, str] | None = None) -> dict:
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    for name in FILES if submission_from else ():
        shutil.copy(submission_from / name, submission / name)
    for name, content in (extra or {}).items():
        (submission / name).write_text(content)
    metadata = root / "submission_metadata.json"
    metadata.unlink(missing_ok=True)
    if created_at:
        metadata.write_text(json.dumps({"id": 1, "created_at": created_at, "users": [{"name": "Bob"}]}))
    proc = subprocess.run([str(root / "run_autograder")], cwd=tmp_cwd(root), capture_output=True, text=True,
                          timeout=TIMEOUT, env=clean_env(AUTOGRADER_ROOT=str(root)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


def tmp_cwd(root: Path) -> Path:
    return root.parent  # anywhere but this repository


def check_gradescope_fields(results: dict) -> None:
    """The fields of Gradescope's documented results.json, with their types and allowed values."""
    assert isinstance(results["score"], (int, float)) and isinstance(results["execution_time"], (int, float))
    assert isinstance(results["output"], str) and results["visibility"] in VISIBILITY.values()
    assert results["stdout_visibility"] in ("hidden", "visible")
    numbers = [t["number"] for t in results["tests"]]
    assert len(set(numbers)) == len(numbers)
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert re.fullmatch(r"\d+\.\d+", test["number"])
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"] + 1e-9
        assert test["status"] in ("passed", "failed") and isinstance(test["output"], str)
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")


@pytest.mark.slow
def test_gradescope_bundle_holds_setup_run_and_the_whole_course(autograder):
    source = autograder / "source"
    for name in ("setup.sh", "run_autograder"):
        assert os.stat(source / name).st_mode & stat.S_IXUSR, name
    assert (source / "grader-src/reference/micrograd/engine.py").read_bytes() == (REF / "engine.py").read_bytes()
    assert (source / "grader-src/autotests/micrograd/test_ops.py").is_file()
    pyproject = tomllib.loads((source / "grader-src/pyproject.toml").read_text())
    assert set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]) == {
        "assignments", "reference", "autotests"}
    from grader import __version__

    assert pyproject["project"]["version"] == __version__
    assert f"version {__version__}" in (source / "setup.sh").read_text()  # setup.sh checks the pin
    for line in ("apt-get install", "bubblewrap", "python3-pip"):
        assert line in (source / "setup.sh").read_text()
    assert "--format gradescope" in (source / "run_autograder").read_text()


@pytest.mark.slow
def test_gradescope_grades_bob_losing_points_in_ops_only_with_each_groups_visibility(autograder):
    results = run_autograder(autograder, BOB, created_at="2026-12-19T10:00:00.000000+08:00")
    check_gradescope_fields(results)
    tests = results["tests"]
    assert sum(t["max_score"] for t in tests) == pytest.approx(100)
    assert results["score"] == pytest.approx(sum(t["score"] for t in tests))
    lost = [t for t in tests if t["status"] == "failed"]
    assert lost and all(t["tags"] == ["ops"] and t["score"] == 0 and "tanh" in t["output"] for t in lost)
    assert all(t["score"] == t["max_score"] for t in tests if t["tags"] != ["ops"])
    assert 60 < results["score"] < 100
    for test in tests:
        assert test["visibility"] == VISIBILITY[test["tags"][0]]
    assert {t["tags"][0] for t in tests} == set(VISIBILITY)
    # The summary every student sees names visible groups only, and no total while a group is hidden.
    assert "Gradients of each operation" in results["output"] and "backward()" not in results["output"]
    assert results["stdout_visibility"] == "hidden"


@pytest.mark.slow
def test_gradescope_late_penalty_uses_gradescopes_time_not_the_students_own(autograder):
    on_time = '{"submitted_at": "2026-12-01T00:00:00+08:00"}'
    results = run_autograder(autograder, BOB, created_at="2026-12-22T18:30:00.5+08:00",
                             extra={"submission.json": on_time})
    check_gradescope_fields(results)
    raw = sum(t["score"] for t in results["tests"])
    assert results["score"] == pytest.approx(raw * 0.8, abs=1e-4)  # 2 started days late, 10 % a day


@pytest.mark.slow
def test_gradescope_always_writes_results_json(autograder):
    # Nothing gradable; a link to the reference does not count as a file of the student's.
    (autograder / "results").mkdir(exist_ok=True)
    (autograder / "results" / "results.json").write_text('{"score": 100}')  # a stale one must not survive
    link_target = autograder / "source/grader-src/reference/micrograd/engine.py"
    submission = autograder / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    (submission / "engine.py").symlink_to(link_target)
    proc = subprocess.run([str(autograder / "run_autograder")], cwd=tmp_cwd(autograder), capture_output=True,
                          text=True, timeout=TIMEOUT, env=clean_env(AUTOGRADER_ROOT=str(autograder)))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((autograder / "results" / "results.json").read_text())
    check_gradescope_fields(results)
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"].startswith("Not graded: ") and "engine.py" in results["output"]


def test_run_autograder_writes_results_json_even_without_a_working_python(tmp_path):
    bundle = export_gradescope(tmp_path / "autograder.zip", name="micrograd")
    again = export_gradescope(tmp_path / "again.zip", name="micrograd")
    assert again.read_bytes() == bundle.read_bytes()  # reproducible
    root = tmp_path / "autograder"
    unpack(bundle, root / "source")
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    broken = root / "grader-venv" / "bin" / "python"
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    proc = subprocess.run([str(root / "run_autograder")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT, env=clean_env(AUTOGRADER_ROOT=str(root)))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    check_gradescope_fields(results)
    assert results["score"] == 0 and results["output"].startswith("Not graded: ")
