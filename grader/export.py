"""`grader export`: package the course for students (public tests only) or for Gradescope (everything).

Student export, a folder:
    NAME/          the assignment folder as students get it (skeletons, notebook, READMEs, public tests, template/)
    grader-src/    the grader's source with a pyproject.toml whose wheel carries only assignments/ (no reference/,
                   no autotests/), so `pip install ./grader-src` gives a `grader` that can `check` but not `grade`
    README.md      what the two are, for course staff

Gradescope export, a zip (Gradescope unpacks it into /autograder/source):
    setup.sh        installs python3, pip and bubblewrap (apt-get), then grader-src/ into /autograder/grader-venv
    run_autograder  grades /autograder/submission into /autograder/results/results.json, and always writes one
    grader-src/     the grader's source with the whole course: assignments/, reference/, autotests/
    README.md       how to upload it and what students see

Both copy the grader package that is running (leaving out an installed course in grader/_course and caches).
The student copy also leaves out the staff tools (`STUDENT_OMIT`) and the grader code that spells out what students
write (`STUDENT_STRIP`).
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import sys
import zipfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

import grader
from grader.course import Course, CourseError, find_course
from grader.errors import UnusableInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DIST_NAME = "micrograd-grader"
# Never copied: an installed course (the export brings its own), caches, editor and OS litter.
SKIPPED = {"_course", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store"}
# Top-level functions of the grader that implement what students must write (an order for backpropagation, a
# backward pass). They answer the hidden tests' sandboxes only (`grader check` asks no questions), so the student
# grader gets stubs that raise instead. The harness has nothing to strip: it runs in every sandbox, so it holds no
# solution logic at all (docs/architecture.md).
STUDENT_STRIP = {
    "answers.py": ("backprop_order", "course_gradients"),
}
# Staff tools left out of the student grader whole: they work on the reference and the hidden tests only (and the
# mutation operators' notes quote solution lines).
STUDENT_OMIT = ("mutation.py", "selftest.py")
ZIP_DATE = (2000, 1, 1, 0, 0, 0)  # fixed timestamps: the same course gives the same bundle


class ExportError(UnusableInput):
    """The export cannot be made; the one-line message says what and where."""


# --- the grader's own source ------------------------------------------------------------------------------

def package_dir() -> Path:
    return Path(grader.__file__).resolve().parent


def _skipped(path: Path) -> bool:
    return bool(SKIPPED.intersection(path.parts)) or path.suffix in (".pyc", ".pyo")


def copy_tree(source: Path, dest: Path) -> None:
    """Regular files only (no symbolic links), leaving out SKIPPED."""
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_symlink() or not path.is_file() or _skipped(rel):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)


def strip_definitions(text: str, names: tuple[str, ...], source: str) -> str:
    """Replace the top-level functions and classes `names` with stubs that raise; the rest stays byte for byte."""
    tree = ast.parse(text, filename=source)
    found = {n.name: n for n in tree.body
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name in names}
    missing = [n for n in names if n not in found]
    if missing:
        raise ExportError(f"{source}: no top-level {missing[0]!r} to leave out of the student grader "
                          "(update grader/export.py STUDENT_STRIP)")
    lines = text.split("\n")
    for node in sorted(found.values(), key=lambda n: n.lineno, reverse=True):
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        error = f'raise RuntimeError("{node.name} is left out of the student grader: only grading uses it")'
        if isinstance(node, ast.ClassDef):
            stub = [f"class {node.name}:", "    def __init__(self, *args, **kwargs):", f"        {error}"]
        else:
            stub = [f"def {node.name}(*args, **kwargs):", f"    {error}"]
        lines[start - 1:node.end_lineno] = stub
    stripped = "\n".join(lines)
    compile(stripped, source, "exec")
    return stripped


def copy_grader_package(dest: Path, *, student: bool) -> None:
    """The running grader package into dest/grader/; for students without STUDENT_OMIT and STUDENT_STRIP."""
    copy_tree(package_dir(), dest / "grader")
    if student:
        for rel in STUDENT_OMIT:
            (dest / "grader" / rel).unlink(missing_ok=True)
        for rel, names in STUDENT_STRIP.items():
            target = dest / "grader" / rel
            target.write_text(strip_definitions(target.read_text(encoding="utf-8"), names, f"grader/{rel}"),
                              encoding="utf-8")


def project_metadata() -> dict:
    """Version, dependencies and Python versions of the running grader: from its pyproject.toml in a source
    checkout, else from the installed distribution."""
    pyproject = package_dir().parent / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DIST_NAME:
            return {"version": grader.__version__, "dependencies": list(project.get("dependencies", [])),
                    "requires_python": project.get("requires-python", ">=3.10"),
                    "license": project.get("license", "MIT")}
    from importlib import metadata

    try:
        meta = metadata.metadata(DIST_NAME)
        requires = metadata.requires(DIST_NAME) or []
    except metadata.PackageNotFoundError:
        raise ExportError(f"{package_dir()}: neither a source checkout (pyproject.toml) nor an installed "
                          f"{DIST_NAME}: cannot tell the grader's dependencies") from None

    def field(name: str) -> str | None:  # PackageMetadata has .get() only from Python 3.12
        return meta[name] if name in meta else None

    return {"version": grader.__version__, "dependencies": [r for r in requires if "extra ==" not in r],
            "requires_python": field("Requires-Python") or ">=3.10", "license": field("License") or "MIT"}


def pyproject_text(course_parts: tuple[str, ...], description: str) -> str:
    """A pyproject.toml whose wheel carries the grader and, in grader/_course, exactly `course_parts`."""
    meta = project_metadata()
    q = json.dumps  # a JSON string or list of strings is a valid TOML one
    dependencies = "".join(f"    {q(d)},\n" for d in meta["dependencies"])
    include = "".join(f"{q(part)} = {q('grader/_course/' + part)}\n" for part in course_parts)
    return (
        "[build-system]\n"
        'requires = ["hatchling>=1.21"]\n'
        'build-backend = "hatchling.build"\n\n'
        "[project]\n"
        f"name = {q(DIST_NAME)}\n"
        f"version = {q(meta['version'])}\n"
        f"description = {q(description)}\n"
        'readme = "README.md"\n'
        f"requires-python = {q(meta['requires_python'])}\n"
        f"license = {q(meta['license'])}\n"
        f"dependencies = [\n{dependencies}]\n\n"
        "[project.scripts]\n"
        'grader = "grader.cli:main"\n\n'
        "[tool.hatch.build.targets.wheel]\n"
        'packages = ["grader"]\n\n'
        "# The course the installed `grader` finds by itself (grader/_course).\n"
        "[tool.hatch.build.targets.wheel.force-include]\n"
        f"{include}"
    )


def write_grader_source(dest: Path, course: Course, name: str, *, student: bool) -> None:
    """dest/: grader/, the course parts, pyproject.toml, README.md; `pip install dest` installs it all."""
    copy_grader_package(dest, student=student)
    copy_tree(course.assignments_dir / name, dest / "assignments" / name)
    parts = ("assignments",) if student else ("assignments", "reference", "autotests")
    if not student:
        copy_tree(course.reference_dir, dest / "reference")
        copy_tree(course.autotests_dir, dest / "autotests")
    version = grader.__version__
    if student:
        description = f"micrograd-grader {version} for students: `grader check` with the public tests of {name}"
        readme = (f"# micrograd-grader {version}, student version\n\n"
                  f"`python -m pip install .` here gives the `grader` command with the assignment `{name}` and its "
                  "public tests.\nIn your assignment folder, `grader check` runs them on your work "
                  "(`grader check --help` for more).\n\nThis version has no hidden tests and cannot `grader grade`.\n")
    else:
        description = f"micrograd-grader {version} with the course {name}: hidden tests and reference included"
        readme = (f"# micrograd-grader {version}, staff version\n\n"
                  f"The grader with the whole course ({name}: assignments/, reference/, autotests/). "
                  "Course staff only: it holds the reference solution and the hidden tests.\n")
    (dest / "pyproject.toml").write_text(pyproject_text(parts, description), encoding="utf-8")
    (dest / "README.md").write_text(readme, encoding="utf-8")


# --- checks shared by both exports ------------------------------------------------------------------------

def load_course(course_dir: str | os.PathLike | None, name: str) -> Course:
    """The course, with assignment `name` readable and (where the reference is there) up to date."""
    try:
        course = find_course(course_dir)
        course.assignment(name)
    except CourseError as exc:
        raise ExportError(str(exc)) from None
    if course.reference_dir.is_dir():
        from grader.generate import GenerateError, diff_assignment

        try:
            stale = diff_assignment(course.root, name)
        except GenerateError as exc:
            raise ExportError(str(exc)) from None
        if stale:
            raise ExportError(f"{course.assignments_dir / name} is out of date with {course.reference_dir}: "
                              "run `grader generate` first")
    return course


@contextmanager
def _new_folder(out: Path) -> Iterator[Path]:
    """A temporary sibling of OUT (a new or empty folder) to write into; moved into OUT when the block succeeds,
    removed when it fails, so that a failed export leaves nothing behind to block its retry."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists and is not an empty folder: choose a new one")
    target = out.resolve()  # also for OUT = "." or "dir/..", which have no name to put a sibling beside
    staging = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        yield staging
        if target.is_dir():  # an empty folder made beforehand: keep it (it may be the working directory)
            for child in staging.iterdir():
                child.rename(target / child.name)
        else:
            staging.rename(target)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write the export: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- student export ---------------------------------------------------------------------------------------

def export_student(out: str | os.PathLike, *, course_dir: str | os.PathLike | None = None,
                   name: str = "micrograd") -> Path:
    """Write OUT/NAME/ (the assignment folder) and OUT/grader-src/ (the grader with the public tests only);
    all or nothing: a failed export leaves no partly written OUT."""
    course = load_course(course_dir, name)
    out = Path(out)
    with _new_folder(out) as staging:
        write_student_export(staging, course, name)
    return out


def write_student_export(dest: Path, course: Course, name: str) -> None:
    """dest/NAME/, dest/grader-src/ and dest/README.md."""
    copy_tree(course.assignments_dir / name, dest / name)
    write_grader_source(dest / "grader-src", course, name, student=True)
    (dest / "README.md").write_text(
        f"# {name}: what students get\n\n"
        f"- `{name}/`: the assignment. Its `README.md` (and `README.zh.md`) is all a student needs to read.\n"
        f"- `grader-src/`: the grader with the public tests only. Students install it with "
        f"`python -m pip install ../grader-src` from inside `{name}/`; it runs `grader check`, and it holds "
        "neither the reference solution nor the hidden tests.\n"
        f"- `{name}/template/`: a student repository to start from, with a GitHub Actions workflow that installs "
        "the grader from the repository variable `GRADER_PIP_SPEC` (or from `grader-src/` committed beside it).\n",
        encoding="utf-8")


# --- Gradescope export ------------------------------------------------------------------------------------

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, in /autograder/source when it builds the autograder image.
# It installs python3, pip and bubblewrap (the grader's sandbox), then the grader bundled in grader-src/ (version
# @VERSION@, with the course's reference solution and hidden tests) into a virtual environment.
# For a trial run elsewhere: AUTOGRADER_ROOT (default /autograder), GRADER_SKIP_APT=1, GRADER_VENV_OPTIONS and
# GRADER_PIP_OPTIONS (extra options of `python3 -m venv` and `pip install`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${AUTOGRADER_ROOT:-/autograder}"
venv="$root/grader-venv"

if [ -z "${GRADER_SKIP_APT:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip python3-venv bubblewrap >/dev/null
fi

python3 -m venv ${GRADER_VENV_OPTIONS:-} "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet ${GRADER_PIP_OPTIONS:-} "$here/grader-src"
installed="$(cd / && "$venv/bin/python" -I -m grader --version)"
case "$installed" in
  *"version @VERSION@") echo "setup.sh: $installed in $venv" ;;
  *) echo "setup.sh: expected grader @VERSION@, got: $installed" >&2; exit 1 ;;
esac
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades /autograder/submission with the hidden tests of
# @NAME@ and writes /autograder/results/results.json. It always writes results.json: when grading fails, one
# with score 0 that says why. AUTOGRADER_ROOT (default /autograder) moves the whole tree, for trial runs.
set -uo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
results="$root/results/results.json"
python="$root/grader-venv/bin/python"
[ -x "$python" ] || python=python3
unset GRADER_COURSE  # the course is the one installed with the grader
mkdir -p "$root/results"
rm -f "$results"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

# The submission, without links and without a submission.json of the student's; the submission time (for the
# late penalty in assignment.toml) comes from Gradescope's submission_metadata.json.
"$python" -I -c 'import sys; from grader.export import prepare_gradescope_submission as prepare
prepare(sys.argv[1], sys.argv[2])' "$root" "$work/submission" 2>"$work/prepare.err"
status=$?
if [ "$status" -eq 0 ]; then
  timeout --kill-after=30 @TIMEOUT@ "$python" -I -m grader grade "$work/submission" --assignment @NAME@ \
    --format gradescope --out "$results" 2>"$work/grade.err"
  status=$?
fi
cat "$work"/*.err >&2

if [ "$status" -ne 0 ] || [ ! -s "$results" ]; then
  reason="$(grep -h '^Error: ' "$work"/*.err 2>/dev/null | tail -n 1 | sed -e 's/^Error: //' -e "s#$work/##g")"
  [ -n "$reason" ] || reason="the autograder failed (exit status $status); course staff can see its log"
  if ! "$python" -I - "$results" "$reason" "$SECONDS" <<'PY'
import json, sys
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"score": 0, "execution_time": int(sys.argv[3]), "output": "Not graded: " + sys.argv[2],
               "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": []},
              out, indent=2)
    out.write("\n")
PY
  then  # not even Python: a fixed message
    printf '%s\n' '{"score": 0, "execution_time": 0, "output_format": "text", "visibility": "visible",
 "stdout_visibility": "hidden", "tests": [],
 "output": "Not graded: the autograder failed; course staff can see its log."}' >"$results"
  fi
  echo "run_autograder: not graded ($reason)" >&2
fi
exit 0
"""

GRADESCOPE_README = """# Gradescope autograder for {name} (micrograd-grader {version})

Course staff only: `grader-src/` holds the reference solution and the hidden tests.

1. In Gradescope, create a Programming Assignment; under Configure Autograder choose "Zip file upload", an
   Ubuntu 22.04 (or newer) base image, and upload this zip. `setup.sh` installs python3, pip, bubblewrap and this
   grader (version {version}, pinned: the source is in the zip) into /autograder/grader-venv.
2. Students submit `engine.py`, `nn.py` and `train.py` (or a .zip of them, or the notebook `{name}.ipynb`).
3. `run_autograder` grades /autograder/submission into /autograder/results/results.json: one test per hidden
   test, numbered "group.test", each with its group's `visibility` from assignment.toml ({visibility}).
   The late penalty of assignment.toml uses Gradescope's submission time (submission_metadata.json).
   A submission that cannot be graded gets score 0 and a message that says why.

Try it without Gradescope: unpack the zip into ROOT/source, put a submission into ROOT/submission, then run
`AUTOGRADER_ROOT=ROOT GRADER_SKIP_APT=1 bash ROOT/source/setup.sh` and
`AUTOGRADER_ROOT=ROOT bash ROOT/source/run_autograder`; the result is ROOT/results/results.json.
"""


def gradescope_files(course: Course, name: str, staging: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry of the bundle: archive path -> (content, Unix mode)."""
    assignment = course.assignment(name)
    source = staging / "grader-src"
    write_grader_source(source, course, name, student=False)
    # Generous: the grader itself stops student code at total_timeout_s; this is for the grader's own hangs.
    timeout = int(assignment.limits.total_timeout_s * 3 + 120)
    version = grader.__version__
    files = {
        "setup.sh": (SETUP_SH.replace("@VERSION@", version), 0o755),
        "run_autograder": (RUN_AUTOGRADER.replace("@NAME@", name).replace("@TIMEOUT@", str(timeout)), 0o755),
        "README.md": (GRADESCOPE_README.format(
            name=name, version=version,
            visibility=", ".join(f"{g.name}: {g.visibility}" for g in assignment.groups)), 0o644),
    }
    entries = {rel: (text.encode("utf-8"), mode) for rel, (text, mode) in files.items()}
    for path in sorted(source.rglob("*")):
        if path.is_file():
            entries[f"grader-src/{path.relative_to(source).as_posix()}"] = (path.read_bytes(), 0o644)
    return entries


def export_gradescope(out: str | os.PathLike, *, course_dir: str | os.PathLike | None = None,
                      name: str = "micrograd") -> Path:
    """Write the Gradescope autograder zip OUT (atomically: a reader sees the old zip or the new one)."""
    import tempfile

    course = load_course(course_dir, name)
    if not course.has_hidden_tests:
        raise ExportError(f"{course.root} has no hidden tests (reference/ and autotests/): "
                          "a Gradescope bundle needs the staff course, not the student grader")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a folder: --out names the zip file to write, e.g. autograder.zip")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder")
    with tempfile.TemporaryDirectory(prefix="grader-export-") as staging:
        entries = gradescope_files(course, name, Path(staging))
    temp = out.with_name(f".{out.name}.{os.urandom(6).hex()}.tmp")
    try:
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel, (content, mode) in sorted(entries.items()):
                info = zipfile.ZipInfo(rel, date_time=ZIP_DATE)
                info.create_system = 3  # Unix: unzip restores the modes (run_autograder must be executable)
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, content)
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    return out


def prepare_gradescope_submission(root: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ROOT/submission to DEST for `grader grade`: regular files only (a link could point at the reference),
    no submission.json of the student's; the time from ROOT/submission_metadata.json's created_at goes beside DEST
    (DEST.submission.json: the collection layer's place for it, which no student file can take)."""
    root, dest = Path(root), Path(dest)
    source = root / "submission"
    if not source.is_dir():
        raise ExportError(f"{source}: no submission folder")
    dest.mkdir(parents=True)
    for folder, _dirs, names in os.walk(source):  # does not follow links to folders
        for name in names:
            path = Path(folder) / name
            if name == "submission.json" or path.is_symlink() or not path.is_file():
                continue
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    metadata = root / "submission_metadata.json"
    if metadata.is_file():
        try:
            created = json.loads(metadata.read_text(encoding="utf-8"))["created_at"]
            if datetime.fromisoformat(created).tzinfo is None:
                raise ValueError("no time zone")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"{metadata}: no usable created_at ({exc}); no late penalty applied", file=sys.stderr)
        else:
            stamp = dest.with_name(dest.name + ".submission.json")
            stamp.write_text(json.dumps({"submitted_at": created}) + "\n", encoding="utf-8")
    return dest
