"""The notebook route of both assignments: the generated notebooks are valid, refer only to sections they have, check
with the kernel's own Python, try the latest code, and run top to bottom on a correct solution."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.generate import GenerateError, build_notebook

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["micrograd", "micrograd-classify"]
# What each assignment's "try it" cells print on the reference (the check cell: every function done).
TRIED = {
    "micrograd": {"try-engine": ["0.7864477"], "try-nn": ["41"], "try-train": ["0.0228"]},
    "micrograd-classify": {"try-losses": ["[0.731059, 0.0, 0.268941]", "1000.0 -1.0", "1.0"],
                           "try-classify": ["best epoch:", "validation accuracy:"]},
}
COUNT = {"micrograd": 21, "micrograd-classify": 6}
SECTION_REFERENCE = re.compile(r"第\s*(\d+)\s*节|\bsection\s+(\d+)|§\s*(\d+)", re.I)
# The course notes are not in the student kit: a numbered section of them points nowhere for a student.
NOTES_REFERENCE = re.compile(r"(笔记|notes)[^。.\n]{0,12}(第\s*\d+\s*节|section\s+\d+|§\s*\d+)", re.I)

# The notebook's cells through IPython's shell, the part of a Jupyter kernel that runs them (magics, `!`); `-c`
# puts the working directory first on sys.path, as a kernel does.
IPYTHON_RUNNER = """
import sys
import nbformat
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for cell in nbformat.read(sys.argv[1], as_version=4).cells:
    if cell.cell_type == "code":
        print(f"--- {cell.id}", flush=True)
        if not shell.run_cell(cell.source).success:
            sys.exit(f"cell {cell.id} failed")
"""


def notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.reads((ROOT / "assignments" / name / f"{name}.ipynb").read_text(encoding="utf-8"), as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.id: c for c in nb.cells if c.cell_type == "code"}


def student_copy(tmp_path: Path, name: str, solved: bool) -> Path:
    """The assignment folder; with `solved`, the notebook's %%writefile cells hold the reference's code."""
    folder = tmp_path / name
    shutil.copytree(ROOT / "assignments" / name, folder, ignore=shutil.ignore_patterns("template", "__pycache__"))
    if solved:
        nb = notebook(name)
        for cell in nb.cells:
            first = cell.source.split("\n", 1)[0]
            if cell.cell_type == "code" and first.startswith("%%writefile "):
                code = (ROOT / "reference" / name / first.split()[1]).read_text(encoding="utf-8")
                cell.source = f"{first}\n{code}"
        nbformat.write(nb, folder / f"{name}.ipynb")
        for module in {*(ROOT / "reference" / name).glob("*.py")} - {ROOT / "reference" / name / "harness.py"}:
            (folder / module.name).unlink(missing_ok=True)  # the notebook writes them
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_valid_and_its_code_cells_are_tagged_with_their_id(name):
    nb = notebook(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    for cell in code_cells(nb).values():
        assert cell.metadata.tags == [cell.id] and cell.outputs == [] and cell.execution_count is None
    assert not any("<!-- code:" in c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("name", NAMES)
def test_every_section_reference_is_to_a_section_of_the_notebook(name):
    nb = notebook(name)
    sections = {m.group(1) for c in nb.cells if c.cell_type == "markdown"
                for m in re.finditer(r"^## (\d+)\.", c.source, re.M)}
    assert sections == {str(n) for n in range(1, len(sections) + 1)}
    for cell in nb.cells:
        for match in SECTION_REFERENCE.finditer(cell.source):
            assert next(g for g in match.groups() if g) in sections, (cell.id, match.group(0))
        assert not NOTES_REFERENCE.search(cell.source), (cell.id, cell.source)
    for readme in ("README.md", "README.zh.md"):
        text = (ROOT / "assignments" / name / readme).read_text(encoding="utf-8")
        assert not NOTES_REFERENCE.search(text) and not SECTION_REFERENCE.search(text), readme


@pytest.mark.parametrize("name", NAMES)
def test_check_cell_runs_the_grader_of_the_kernels_own_python(name):
    cells = code_cells(notebook(name))
    assert list(cells)[-1] == "check"
    assert cells["check"].source == (f'import sys\n!"{{sys.executable}}" -m grader check {name}.ipynb '
                                     f"--assignment {name}")
    assert (ROOT / "grader" / "__main__.py").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_try_it_cells_import_the_files_again_through_fresh(name):
    nb = notebook(name)
    cells = code_cells(nb)
    order = list(cells)
    written = {c.id: c.source.split("\n", 1)[0].split()[1][:-3] for c in cells.values()
               if c.source.startswith("%%writefile ")}
    tries = [i for i in order if i.startswith("try-")]
    assert [i for i in order if i not in written and i not in tries] == ["fresh", "check"]
    assert sorted(tries) == sorted(TRIED[name]) and order.index("fresh") < min(map(order.index, tries))
    modules = re.search(r"^MODULES = (\(.*\))$", cells["fresh"].source, re.M).group(1)
    assert sorted(eval(modules)) == sorted(written.values())
    for tag in tries:
        source = cells[tag].source
        assert not re.search(rf"^\s*(import|from)\s+({'|'.join(written.values())})\b", source, re.M), source
        loaded = re.findall(r"fresh\(([^)]*)\)", source)
        assert loaded, source
        for module in re.findall(r'"([\w-]+)"', loaded[0]):
            assert order.index(module) < order.index(tag), (tag, module)  # its file is written above it
    # A markdown line tells the student why.
    assert any("fresh(...)" in c.source and "import" in c.source for c in nb.cells if c.cell_type == "markdown")


def test_fresh_imports_a_rewritten_file_and_what_imports_it(tmp_path):
    """Rewritten within the same second with the same size (what a stale .pyc would hide), and through an import."""
    fresh = code_cells(notebook("micrograd"))["fresh"].source
    script = fresh + "\n" + """
from pathlib import Path
Path("engine.py").write_text("X = 1\\n")
Path("nn.py").write_text("from engine import X\\nY = X\\n")
first = fresh("nn").Y
Path("engine.py").write_text("X = 2\\n")
engine, nn = fresh("engine", "nn")
print(first, engine.X, nn.Y, nn.X is engine.X)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["1", "2", "2", "True"], proc.stdout + proc.stderr


@pytest.mark.parametrize("name", NAMES)
def test_grader_check_on_the_generated_notebook_through_the_cli(name, tmp_path, monkeypatch):
    """`python -m grader check NAME.ipynb`, as the check cell runs it: the skeleton has nothing written yet; the
    notebook with the reference in its cells has every function done."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's grader, from the student's folder too
    count = COUNT[name]
    for solved, status, done in ((False, 1, f"0 of {count} functions done"),
                                 (True, 0, f"{count} of {count} functions done")):
        folder = student_copy(tmp_path / str(solved), name, solved)
        proc = subprocess.run([sys.executable, "-m", "grader", "check", f"{name}.ipynb"], cwd=folder,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == status and done in proc.stdout, proc.stdout + proc.stderr
        assert proc.stdout.count("not written yet") == (0 if solved else count)


def outputs_by_cell(text: str) -> dict[str, str]:
    """"--- ID" lines and what follows each, up to the next."""
    parts = re.split(r"^--- ([\w-]+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def run_with_kernel(folder: Path, name: str) -> dict[str, str]:
    from nbclient import NotebookClient

    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return {c.id: "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in c.outputs)
            for c in nb.cells if c.cell_type == "code"}


def run_with_ipython(folder: Path, name: str) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-u", "-c", IPYTHON_RUNNER, f"{name}.ipynb"], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return outputs_by_cell(proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["kernel", "ipython"])
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom_on_a_correct_solution(name, runner, tmp_path, monkeypatch):
    """Headless, every cell in order: the %%writefile cells write the reference's files, the "try it" cells print
    what they promise, and the check cell finds every function done."""
    needed = "ipykernel" if runner == "kernel" else "IPython"
    if importlib.util.find_spec(needed) is None:
        pytest.skip(f"{needed} is not installed (the dev extra installs it)")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel's `python -m grader` is this checkout's grader
    folder = student_copy(tmp_path, name, solved=True)
    outputs = (run_with_kernel if runner == "kernel" else run_with_ipython)(folder, name)
    for tag, expected in TRIED[name].items():
        assert all(text in outputs[tag] for text in expected), (tag, outputs[tag])
    count = COUNT[name]
    assert f"{count} of {count} functions done" in outputs["check"], outputs["check"]
    for module in {c.source.split()[1] for c in notebook(name).cells if c.source.startswith("%%writefile ")}:
        assert (folder / module).read_text(encoding="utf-8") == (ROOT / "reference" / name / module).read_text(
            encoding="utf-8")


@pytest.mark.parametrize("text, line, words", [
    ("a\n<!-- code: try-x -->\nb", 2, "neither generated (check) nor followed by a ```python block"),
    ("<!-- code: try-x -->\n```python\nprint(1)\n", 2, "block of cell 'try-x' is never closed"),
    ("<!-- code: check -->\n<!-- code: check -->", 2, "'check' appears twice"),
])
def test_a_bad_code_directive_names_file_and_line(text, line, words):
    with pytest.raises(GenerateError, match=rf"^s\.md:{line}: .*{re.escape(words)}"):
        build_notebook([("s.md", text)], {"check": "pass"})


def test_a_python_block_below_a_directive_is_a_code_cell_and_leaves_the_markdown_around_it():
    nb = nbformat.reads(build_notebook([("s.md", "# T\n<!-- code: try-x -->\n```python\nx = 1\n```\nafter\n"
                                                 "<!-- code: check -->")], {"check": "pass"}), as_version=4)
    assert [(c.cell_type, c.id, c.source) for c in nb.cells] == [
        ("markdown", "md-01", "# T"), ("code", "try-x", "x = 1"), ("markdown", "md-02", "after"),
        ("code", "check", "pass")]
