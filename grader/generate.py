"""Build the student material assignments/<name>/ from reference/<name>/.

reference/{engine,nn,train}.py   -> skeletons: each `### BEGIN SOLUTION` .. `### END SOLUTION` region
                                    becomes `raise NotImplementedError("<qualified name> is not written yet")`
reference/student/README*.md     -> README.md, README.zh.md ({{todos}} is filled in)
reference/student/notebook/*.md  -> <name>.ipynb (markdown sections in file order, code cells where a
                                    line `<!-- code: TAG -->` says so: the files' cells, the check cell, or
                                    the ```python block below that line)
reference/tests/                 -> tests/ (public tests, copied verbatim)
reference/student/template/      -> template/ (a student repository: these files, README.md filled in like the
                                    READMEs, plus the three skeletons)
reference/assignment.toml        -> assignment.toml
The READMEs and notebook sections are Jinja2 templates ({{name}}, {{todos}}, ...: grader.rendering's text
environment, StrictUndefined), the list of what to write is grader/templates/generate/todos.md.j2.
Everything is a pure function of reference/, so `grader generate --check` can compare byte for byte.
"""
from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path

from jinja2 import TemplateError, meta

from grader.course import Course, LatePolicy, read_assignment
from grader.errors import UnusableInput
from grader.rendering import text_environment

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# Files a student's run leaves in the folder; they are neither generated nor stale.
IGNORED = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
CODE_DIRECTIVE = re.compile(r"^<!-- code: ([\w-]+) -->$")


class GenerateError(UnusableInput):
    """The reference cannot be turned into student material; the message names file:line."""


def solution_regions(text: str, source: str) -> list[tuple[int, int]]:
    """(begin, end) line numbers (1-based, inclusive) of every solution region, checked for balance."""
    regions, begin = [], None
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if begin is not None:
                raise GenerateError(f"{source}:{number}: BEGIN SOLUTION inside the region opened at line {begin}")
            begin = number
        elif stripped == END:
            if begin is None:
                raise GenerateError(f"{source}:{number}: END SOLUTION without a BEGIN SOLUTION")
            regions.append((begin, number))
            begin = None
        elif "BEGIN SOLUTION" in line or "END SOLUTION" in line:
            # A near-miss marker would silently leak the solution into the skeleton.
            raise GenerateError(f"{source}:{number}: malformed marker, expected a line of exactly {BEGIN!r} or {END!r}")
    if begin is not None:
        raise GenerateError(f"{source}:{begin}: BEGIN SOLUTION is never closed by END SOLUTION")
    return regions


def qualified_name(tree: ast.Module, line: int, source: str) -> str:
    """Name of the innermost function around `line`: "mse_loss", "Value.backward", "Value.tanh: _backward"."""
    chain: list[ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef] = []
    body = tree.body
    while True:
        inside = [n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.lineno <= line <= (n.end_lineno or n.lineno)]
        if not inside:
            break
        chain.append(inside[0])
        body = inside[0].body
    functions = [i for i, n in enumerate(chain) if not isinstance(n, ast.ClassDef)]
    if not functions:
        raise GenerateError(f"{source}:{line}: solution region is not inside a function")
    outer = ".".join(n.name for n in chain[: functions[0] + 1])
    # A closure is named after the operation that defines it, e.g. "Value.tanh: _backward".
    inner = "".join(f": {n.name}" for n in chain[functions[0] + 1:] if not isinstance(n, ast.ClassDef))
    return outer + inner


def make_skeleton(text: str, source: str) -> tuple[str, list[str]]:
    """The file with every solution region replaced by a raise; also the regions' qualified names."""
    try:
        tree = ast.parse(text, filename=source)
    except SyntaxError as exc:
        raise GenerateError(f"{source}:{exc.lineno}: {exc.msg}") from None
    lines = text.split("\n")
    names = []
    for begin, end in reversed(solution_regions(text, source)):  # from the bottom, so numbers stay valid
        name = qualified_name(tree, begin, source)
        indent = lines[begin - 1][: len(lines[begin - 1]) - len(lines[begin - 1].lstrip())]
        lines[begin - 1:end] = [f'{indent}raise NotImplementedError("{name} is not written yet")']
        names.append(name)
    skeleton = "\n".join(lines)
    try:
        compile(skeleton, source, "exec")
    except SyntaxError as exc:
        raise GenerateError(f"{source}:{exc.lineno}: the skeleton does not compile: {exc.msg}") from None
    return skeleton, names[::-1]


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GenerateError(f"{path}: cannot read: {exc}") from None


def fill_template(text: str, values: dict[str, str], source: str) -> str:
    """Render a Jinja2 template of the course (`{{key}}` placeholders, no escaping, StrictUndefined); a placeholder
    that is not one of `values` is a typo in the template."""
    env = text_environment()
    try:
        unknown = meta.find_undeclared_variables(env.parse(text)) - values.keys()
        if unknown:
            uses = [(m.start(), name) for name in unknown if (m := re.search(r"\{\{-?\s*%s\b" % name, text))]
            where, name = min(uses, default=(0, min(unknown)))
            raise GenerateError(f"{source}:{text.count(chr(10), 0, where) + 1}: unknown placeholder {{{{{name}}}}}")
        return env.from_string(text).render(values)
    except TemplateError as exc:
        raise GenerateError(f"{source}:{getattr(exc, 'lineno', None) or 1}: {exc.message}") from None


def build_notebook(sections: list[tuple[str, str]], cells: dict[str, str]) -> str:
    """nbformat v4 JSON; fixed cell ids and no timestamps so the output is byte-stable. `<!-- code: TAG -->` puts
    the generated cell TAG (one of `cells`) there; for any other TAG, the ```python block right below it is the
    cell (the notebook's own code, such as its "try it" cells)."""
    import nbformat  # only generation needs it

    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    used: set[str] = set()

    def add_markdown(chunk: list[str]) -> None:
        if "\n".join(chunk).strip():
            nb.cells.append(nbformat.v4.new_markdown_cell(
                "\n".join(chunk).strip("\n"), id=f"md-{sum(c.cell_type == 'markdown' for c in nb.cells) + 1:02d}"))

    for source, text in sections:
        lines, chunk, at = text.split("\n"), [], 0
        while at < len(lines):
            directive = CODE_DIRECTIVE.match(lines[at].strip())
            at += 1
            if not directive:
                chunk.append(lines[at - 1])
                continue
            add_markdown(chunk)
            chunk = []
            tag = directive.group(1)
            if tag in used:
                raise GenerateError(f"{source}:{at}: code cell {tag!r} appears twice")
            used.add(tag)
            if tag in cells:
                code = cells[tag]
            elif at < len(lines) and lines[at].strip() == "```python":
                close = next((i for i in range(at + 1, len(lines)) if lines[i].strip() == "```"), None)
                if close is None:
                    raise GenerateError(f"{source}:{at + 1}: the ```python block of cell {tag!r} is never closed")
                code, at = "\n".join(lines[at + 1:close]), close + 1
            else:
                raise GenerateError(f"{source}:{at}: code cell {tag!r} is neither generated ({', '.join(cells)}) "
                                    "nor followed by a ```python block")
            nb.cells.append(nbformat.v4.new_code_cell(code, id=tag, metadata={"tags": [tag]}))
        add_markdown(chunk)
    if missing := [tag for tag in cells if tag not in used]:
        raise GenerateError(f"{sections[-1][0]}: no `<!-- code: {missing[0]} -->` line for the {missing[0]!r} cell")
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def todo_list(todos: dict[str, list[str]]) -> str:
    """Markdown list of what to write, per file; language-neutral, so both READMEs share it."""
    return text_environment().get_template("generate/todos.md.j2").render(todos=todos)


def late_rule(late: LatePolicy) -> dict[str, str]:
    """What happens after max_days, in the READMEs' words: {{late_rule}} (English) and {{late_rule_zh}}."""
    if late.max_days is None:
        return {"late_rule": "the penalty grows up to 100%", "late_rule_zh": "最多扣 100%"}
    if late.after_max_days == "cap":
        cap = f"{min(100.0, late.max_days * late.percent_per_day):g}"
        return {"late_rule": f"the penalty stops growing at {cap}% ({late.max_days} days)",
                "late_rule_zh": f"扣分到 {cap}%（{late.max_days} 天）为止，不再增加"}
    return {"late_rule": f"more than {late.max_days} days late scores 0",
            "late_rule_zh": f"迟交超过 {late.max_days} 天计 0 分"}


def build_assignment(course_root: Path, name: str) -> dict[str, bytes]:
    """Every file of assignments/<name>/, as relative path -> content."""
    ref = Path(course_root) / "reference" / name
    toml_path = ref / "assignment.toml"
    toml_text = read_text(toml_path)
    # Read as grading reads it (grader/course.py): a bad setting is a CourseError naming the file and the key.
    settings = read_assignment(toml_path, Course(Path(course_root)), Path(course_root) / "assignments" / name)
    if settings.name != name:
        raise GenerateError(f"{toml_path}: describes assignment {settings.name!r}, not {name!r}")
    files, given = list(settings.files), list(settings.given)
    # README placeholders, so the text never disagrees with assignment.toml.
    late = settings.late
    values = {"name": name, "due": str(late.due) if late.due is not None else "none",
              "percent_per_day": f"{late.percent_per_day:g}",
              "max_days": str(late.max_days) if late.max_days is not None else "∞", **late_rule(late)}
    values.update({f"points_{g.name}": f"{g.points:g}" for g in settings.groups})

    out: dict[str, str] = {"assignment.toml": toml_text}
    # Course files that ship as they are: the given modules, the harness commands, the feedback messages.
    for file in [*given, "harness.py", "messages.toml"]:
        if (ref / file).is_file() or file in given:
            out[file] = read_text(ref / file)
    todos: dict[str, list[str]] = {}
    for file in files:
        out[file], todos[file] = make_skeleton(read_text(ref / file), str(ref / file))

    if not (ref / "tests").is_dir():
        raise GenerateError(f"{ref / 'tests'}: the public tests are missing")
    for rel, content in _files_in(ref / "tests").items():
        out[f"tests/{rel}"] = content.decode("utf-8")

    student = ref / "student"
    readme_values = {**values, "todos": todo_list(todos), "count": str(sum(map(len, todos.values())))}
    for readme in ("README.md", "README.zh.md"):
        out[readme] = fill_template(read_text(student / readme), readme_values, str(student / readme))

    sections = [(str(p), fill_template(read_text(p), values, str(p)))
                for p in sorted((student / "notebook").glob("*.md"))]
    if not sections:
        raise GenerateError(f"{student / 'notebook'}: no .md sections")
    cells = {Path(f).stem: f"%%writefile {f}\n{out[f]}" for f in given + files}
    # The kernel's own Python (quoted: it may hold spaces): a venv's `grader` is not on PATH when Jupyter was
    # started without activating the venv.
    cells["check"] = f"import sys\n!\"{{sys.executable}}\" -m grader check {name}.ipynb --assignment {name}"
    out[f"{name}.ipynb"] = build_notebook(sections, cells)

    # A student repository to start from: the skeletons, a README and a CI workflow that runs `grader check`.
    template = student / "template"
    for rel, content in _files_in(template).items():
        text = content.decode("utf-8")
        out[f"template/{rel}"] = fill_template(text, readme_values, str(template / rel)) if rel == "README.md" else text
    if template.is_dir():
        out.update({f"template/{file}": out[file] for file in given + files})
    return {rel: text.encode("utf-8") for rel, text in sorted(out.items())}


def reference_names(course_root: Path) -> list[str]:
    """The assignments the course's reference/ holds (each a folder with an assignment.toml)."""
    names = sorted(p.parent.name for p in (Path(course_root) / "reference").glob("*/assignment.toml"))
    if not names:
        raise GenerateError(f"{Path(course_root) / 'reference'}: no assignment (a folder with assignment.toml)")
    return names


def _files_in(folder: Path) -> dict[str, bytes]:
    """Files under folder by relative path, leaving out caches that running the tests leaves behind."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not IGNORED.intersection(p.relative_to(folder).parts) and p.suffix != ".pyc"}


def write_assignment(course_root: Path, name: str) -> list[str]:
    """Write assignments/<name>/; return the changed paths (relative to the course root), stale ones removed."""
    course_root = Path(course_root)
    folder = course_root / "assignments" / name
    wanted, present = build_assignment(course_root, name), _files_in(folder)
    changed = []
    for rel, content in wanted.items():
        if present.get(rel) != content:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(content)
            changed.append(rel)
    for rel in present.keys() - wanted.keys():
        (folder / rel).unlink()
        changed.append(rel)
        # Drop folders the removal left empty (but never the assignment folder itself).
        for parent in (folder / rel).parents:
            if parent == folder or any(parent.iterdir()):
                break
            parent.rmdir()
    return sorted(f"assignments/{name}/{rel}" for rel in changed)


def diff_assignment(course_root: Path, name: str) -> str:
    """"" when assignments/<name>/ is up to date; otherwise a unified diff plus missing and stale files."""
    course_root = Path(course_root)
    wanted, present = build_assignment(course_root, name), _files_in(course_root / "assignments" / name)
    parts = []
    for rel in sorted(wanted.keys() | present.keys()):
        shown = f"assignments/{name}/{rel}"
        if rel not in present:
            parts.append(f"missing (would be created): {shown}\n")
        elif rel not in wanted:
            parts.append(f"stale (would be removed): {shown}\n")
        elif present[rel] != wanted[rel]:
            old = present[rel].decode("utf-8", errors="replace").splitlines(keepends=True)
            new = wanted[rel].decode("utf-8").splitlines(keepends=True)
            diff = "".join(difflib.unified_diff(old, new, f"{shown} (on disk)", f"{shown} (generated)"))
            parts.append((diff if diff.endswith("\n") else diff + "\n") if diff else f"differs: {shown}\n")
    return "".join(parts)
