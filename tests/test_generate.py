"""grader generate: the student material in assignments/micrograd/ is built from reference/."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from grader.generate import GenerateError, build_assignment, diff_assignment, make_skeleton, write_assignment

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "reference" / "micrograd"
FOLDER = ROOT / "assignments" / "micrograd"
FILES = ["engine.py", "nn.py", "train.py"]
FUNCTIONS = {
    "Value.__add__", "Value.__mul__", "Value.__pow__", "Value.exp", "Value.log", "Value.relu", "Value.tanh",
    "Value.sigmoid", "Value.backward", "Module.zero_grad", "Neuron.__call__", "Neuron.parameters",
    "Layer.__call__", "Layer.parameters", "MLP.__init__", "MLP.__call__", "MLP.parameters",
    "mse_loss", "l2_penalty", "sgd_step", "train",
}
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "500"}  # wide: pytest cuts summary lines

# What the grader's sandbox does with the public tests, without pytest: import, call every test_*.
NO_PYTEST_RUNNER = textwrap.dedent("""
    import importlib, inspect, json, sys
    sys.modules["pytest"] = None  # the sandbox has no pytest: importing it must fail
    folder = sys.argv[1]
    sys.path[:0] = [folder, folder + "/tests"]
    results = []
    for module_name in ("test_engine", "test_nn", "test_train"):
        module = importlib.import_module(module_name)
        for name, fn in vars(module).items():
            if name.startswith("test_") and callable(fn):
                row = {"test": name, "covers": getattr(fn, "covers", None),
                       "params": len(inspect.signature(fn).parameters), "error": None, "feedback": None}
                try:
                    fn()
                except BaseException as exc:
                    row["error"] = f"{type(exc).__name__}: {exc}"
                    row["feedback"] = getattr(exc, "feedback", None)
                results.append(row)
    print(json.dumps(results))
""")


def regions(text: str) -> list[list[str]]:
    """The lines strictly between each BEGIN/END SOLUTION pair."""
    found, current = [], None
    for line in text.split("\n"):
        if line.strip() == "### BEGIN SOLUTION":
            current = []
        elif line.strip() == "### END SOLUTION":
            found.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return found


def student_copy(tmp_path: Path, code_from: Path | None = None) -> Path:
    """A fresh copy of the generated folder; optionally with engine/nn/train.py taken from code_from."""
    folder = tmp_path / "micrograd"
    for rel, content in build_assignment(ROOT, "micrograd").items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    if code_from is not None:
        for f in FILES:
            shutil.copy(code_from / f, folder / f)
    return folder


def run_pytest(folder: Path) -> subprocess.CompletedProcess:
    # Run from the parent folder, so `from engine import Value` works only through tests/conftest.py.
    return subprocess.run([sys.executable, "-m", "pytest", f"{folder.name}/tests", "-q", "-rfE",
                           "-p", "no:cacheprovider"], cwd=folder.parent, env=ENV,
                          capture_output=True, text=True, timeout=120)


def run_without_pytest(folder: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", NO_PYTEST_RUNNER, str(folder)], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def course_copy(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    shutil.copytree(REF, root / "reference" / "micrograd", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    write_assignment(root, "micrograd")
    return root


# ---------------------------------------------------------------- committed output, diff, write

def test_committed_assignment_is_up_to_date():
    assert diff_assignment(ROOT, "micrograd") == "", "run `grader generate` and commit assignments/micrograd/"


def test_diff_names_modified_missing_and_stale_files_and_write_repairs_them(tmp_path):
    root = course_copy(tmp_path)
    folder = root / "assignments" / "micrograd"
    assert diff_assignment(root, "micrograd") == ""
    (folder / "engine.py").write_text((folder / "engine.py").read_text() + "# edited by hand\n")
    (folder / "README.zh.md").unlink()
    (folder / "tests" / "old_test.py").write_text("")
    (folder / "tests" / "__pycache__").mkdir()
    (folder / "tests" / "__pycache__" / "x.pyc").write_bytes(b"")  # a student's run: not stale, not generated

    diff = diff_assignment(root, "micrograd")
    assert "assignments/micrograd/engine.py" in diff and "+++" in diff and "-# edited by hand" in diff
    assert "missing (would be created): assignments/micrograd/README.zh.md" in diff
    assert "stale (would be removed): assignments/micrograd/tests/old_test.py" in diff
    assert "__pycache__" not in diff

    changed = write_assignment(root, "micrograd")
    assert changed == ["assignments/micrograd/README.zh.md", "assignments/micrograd/engine.py",
                       "assignments/micrograd/tests/old_test.py"]
    assert diff_assignment(root, "micrograd") == "" and write_assignment(root, "micrograd") == []
    assert not (folder / "tests" / "old_test.py").exists()


def test_output_is_deterministic_and_text_is_utf8_with_lf():
    first, second = build_assignment(ROOT, "micrograd"), build_assignment(ROOT, "micrograd")
    assert first == second
    for rel, content in first.items():
        assert b"\r" not in content, rel
        content.decode("utf-8")
    assert first["assignment.toml"] == (REF / "assignment.toml").read_bytes()
    for path in (REF / "tests").glob("*.py"):
        assert first[f"tests/{path.name}"] == path.read_bytes()
    expected = ("checks.py", "conftest.py", "test_engine.py", "test_nn.py", "test_train.py")
    assert {f"tests/{n}" for n in expected} <= set(first)


# ---------------------------------------------------------------- skeletons

@pytest.mark.parametrize("name", FILES)
def test_skeleton_keeps_everything_but_the_solutions(name):
    reference = (REF / name).read_text(encoding="utf-8")
    skeleton = (FOLDER / name).read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in skeleton and "END SOLUTION" not in skeleton
    found = regions(reference)
    assert found
    for region in found:
        assert "\n".join(region) not in skeleton
    # Outside the regions the file is unchanged: drop the regions on one side and the raises on the other.
    kept, inside = [], False
    for line in reference.split("\n"):
        if line.strip() in ("### BEGIN SOLUTION", "### END SOLUTION"):
            inside = line.strip() == "### BEGIN SOLUTION"
        elif not inside:
            kept.append(line)
    raises = [line for line in skeleton.split("\n") if "raise NotImplementedError(" in line]
    assert len(raises) == len(found)
    assert [line for line in skeleton.split("\n") if line not in raises] == kept
    # Hint comments right above a region stay in place.
    assert "# d(tanh a)/da = 1 - tanh(a) ** 2.\n" in (FOLDER / "engine.py").read_text()


def test_skeleton_raises_name_the_function():
    engine = (FOLDER / "engine.py").read_text()
    assert '            raise NotImplementedError("Value.tanh: _backward is not written yet")\n' in engine
    assert '        raise NotImplementedError("Value.backward is not written yet")\n' in engine
    nn = (FOLDER / "nn.py").read_text()
    assert '        raise NotImplementedError("Neuron.__call__ is not written yet")\n' in nn
    assert '    raise NotImplementedError("mse_loss is not written yet")\n' in (FOLDER / "train.py").read_text()
    names = re.findall(r'NotImplementedError\("(.+?)(?:: _backward)? is not written yet"\)',
                       "".join((FOLDER / f).read_text() for f in FILES))
    assert sorted(names) == sorted(FUNCTIONS)


def test_skeletons_import_cleanly(tmp_path):
    folder = student_copy(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import engine, nn, train; engine.Value(1.0) + 2; nn.Neuron(2)"],
                          cwd=folder, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- notebook

def test_notebook_validates_and_its_cells_are_the_skeletons():
    nb = nbformat.reads((FOLDER / "micrograd.ipynb").read_text(encoding="utf-8"), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"md-\d\d|fresh|(try-)?(engine|nn|train)|check", i)
                                             for i in ids)
    tagged = {c.metadata["tags"][0]: c for c in nb.cells if c.metadata.get("tags")}
    assert list(tagged) == ["fresh", "engine", "try-engine", "nn", "try-nn", "train", "try-train", "check"]
    for tag in ("engine", "nn", "train"):
        assert tagged[tag].cell_type == "code" and tagged[tag].id == tag
        assert tagged[tag].source == f"%%writefile {tag}.py\n" + (FOLDER / f"{tag}.py").read_text(encoding="utf-8")
    assert tagged["check"].source == ('import sys\n'
                                      '!"{sys.executable}" -m grader check micrograd.ipynb --assignment micrograd')
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for section in ("Value", "拓扑排序", "链式法则", "神经元", "均方误差", "L2正则化"):
        assert section in markdown
    assert markdown.count("*English:") >= 7
    assert "<!-- code:" not in markdown


# ---------------------------------------------------------------- public tests

def test_public_tests_all_fail_on_the_skeleton_with_not_written_yet(tmp_path):
    proc = run_pytest(student_copy(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    assert failed and not re.search(r"\d+ (passed|error)", proc.stdout), proc.stdout
    assert re.search(rf"\b{len(failed)} failed\b", proc.stdout), proc.stdout
    for line in failed:
        assert "NotImplementedError" in line and "is not written yet" in line, line


def test_reference_passes_every_public_test_with_pytest(tmp_path):
    proc = run_pytest(student_copy(tmp_path, code_from=REF))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\d+ passed", proc.stdout) and "failed" not in proc.stdout


def test_public_tests_run_without_pytest_and_cover_every_function(tmp_path):
    results = run_without_pytest(student_copy(tmp_path, code_from=REF))
    assert [r for r in results if r["error"]] == []
    assert all(r["params"] == 0 for r in results)
    assert {r["covers"] for r in results} == FUNCTIONS
    for path in (REF / "tests").glob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+pytest", path.read_text(), re.M), path


def test_a_wrong_result_carries_feedback(tmp_path):
    folder = student_copy(tmp_path, code_from=REF)
    engine = (folder / "engine.py").read_text()
    (folder / "engine.py").write_text(engine.replace("self.grad += (1 - t ** 2) * out.grad",
                                                     "self.grad += (1 - t) * out.grad"))
    failed = [r for r in run_without_pytest(folder) if r["error"]]
    assert [r["test"] for r in failed] == ["test_tanh_backward"]
    assert failed[0]["error"] == ("Failed: tanh backward is wrong: for x = 0.5 and upstream gradient 1.75 expected "
                                  "x.grad = 1.37628, got x.grad = 0.941295")
    assert failed[0]["feedback"] == {"id": "op_backward_wrong", "params": {
        "op": "tanh", "inputs": {"id": "inputs.one", "params": {"x": 0.5}}, "upstream": 1.75,
        "expected": "x.grad = 1.37628", "got": "x.grad = 0.941295"}}


# ---------------------------------------------------------------- malformed markers

BODY = "def f(x):\n    y = x\n{}    return y\n"


@pytest.mark.parametrize("middle, line, words", [
    ("    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n", 4, "BEGIN SOLUTION inside"),
    ("    ### END SOLUTION\n", 3, "without a BEGIN"),
    ("    ### BEGIN SOLUTION\n", 3, "never closed"),
    ("    # BEGIN SOLUTION\n    ### END SOLUTION\n", 3, "malformed marker"),
])
def test_malformed_markers_name_file_and_line(middle, line, words):
    with pytest.raises(GenerateError, match=rf"^demo\.py:{line}: .*{words}"):
        make_skeleton(BODY.format(middle), "demo.py")


def test_region_outside_a_function_is_an_error():
    with pytest.raises(GenerateError, match=r"^demo\.py:1: .*not inside a function"):
        make_skeleton("### BEGIN SOLUTION\nX = 1\n### END SOLUTION\n", "demo.py")


def test_malformed_marker_in_the_reference_names_the_file(tmp_path):
    root = course_copy(tmp_path)
    train = root / "reference" / "micrograd" / "train.py"
    lines = train.read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if "END SOLUTION" in line)
    del lines[at]
    train.write_text("\n".join(lines))
    with pytest.raises(GenerateError, match=rf"^{re.escape(str(train))}:\d+: .*BEGIN SOLUTION"):
        diff_assignment(root, "micrograd")


# ---------------------------------------------------------------- the demo notebook submission

def test_demo_notebook_submission_has_one_bug_in_training(tmp_path):
    demo = ROOT / "submissions" / "micrograd" / "notebook_student"
    assert "notebook_student,2026-12-21T10:00:00+08:00" in (demo.parent / "times.csv").read_text().splitlines()
    nb = nbformat.reads((demo / "micrograd.ipynb").read_text(encoding="utf-8"), as_version=4)
    nbformat.validate(nb)
    folder = student_copy(tmp_path)
    for cell in nb.cells:
        tag = (cell.metadata.get("tags") or [None])[0]
        if tag in ("engine", "nn", "train"):
            first, _, code = cell.source.partition("\n")
            assert first == f"%%writefile {tag}.py" and "NotImplementedError" not in code
            (folder / f"{tag}.py").write_text(code)
        assert cell.get("outputs", []) == []
    failed = [r for r in run_without_pytest(folder) if r["error"]]
    assert failed and {r["covers"] for r in failed} == {"train"}, failed
