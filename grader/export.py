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
The student copy also leaves out the staff tools (`STUDENT_OMIT`). Nothing else needs leaving out: the grader
package holds no solution logic (what answers the sandboxes' questions lives with the hidden tests).
"""
from __future__ import annotations

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
from grader.rendering import text_environment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DIST_NAME = "micrograd-grader"
# Never copied: an installed course (the export brings its own), caches, editor and OS litter.
SKIPPED = {"_course", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store"}
# Staff tools left out of the student grader whole: they work on the reference and the hidden tests only (and the
# mutation operators' notes quote solution lines), or work on the whole class (similarity).
STUDENT_OMIT = ("mutation.py", "selftest.py", "cluster.py", "cluster_worker.py", "workers.py", "similarity.py")
ZIP_DATE = (2000, 1, 1, 0, 0, 0)  # fixed timestamps: the same course gives the same bundle
# Extras the exported grader keeps: students install `grader-src[notebook]` to work in the notebook.
EXPORTED_EXTRAS = ("notebook",)


class ExportError(UnusableInput):
    """The export cannot be made; the one-line message says what and where."""


def _render(template: str, **values: object) -> str:
    """grader/templates/export/TEMPLATE: text, not HTML (no escaping); shell templates quote values themselves."""
    return text_environment().get_template(f"export/{template}").render(**values)


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


def copy_grader_package(dest: Path, *, student: bool) -> None:
    """The running grader package into dest/grader/; for students without STUDENT_OMIT."""
    copy_tree(package_dir(), dest / "grader")
    if student:
        for rel in STUDENT_OMIT:
            (dest / "grader" / rel).unlink(missing_ok=True)


def project_metadata() -> dict:
    """Version, dependencies, EXPORTED_EXTRAS and Python versions of the running grader: from its pyproject.toml in
    a source checkout, else from the installed distribution."""
    pyproject = package_dir().parent / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DIST_NAME:
            optional = project.get("optional-dependencies", {})
            return {"version": grader.__version__, "dependencies": list(project.get("dependencies", [])),
                    "extras": {extra: list(optional[extra]) for extra in EXPORTED_EXTRAS if extra in optional},
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
            "extras": extras_of(requires), "requires_python": field("Requires-Python") or ">=3.10",
            "license": field("License") or "MIT"}


def extras_of(requires: list[str]) -> dict[str, list[str]]:
    """EXPORTED_EXTRAS from an installed distribution's requirements (`ipykernel>=6.29; extra == "notebook"`),
    each requirement without its extra marker."""
    from packaging.requirements import Requirement  # pytest's dependency, so always there

    extras: dict[str, list[str]] = {}
    for line in requires:
        requirement = Requirement(line)
        marker, requirement.marker = requirement.marker, None
        for extra in EXPORTED_EXTRAS:
            if marker is not None and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""}):
                extras.setdefault(extra, []).append(str(requirement))
    return extras


def pyproject_text(course_parts: tuple[str, ...], description: str) -> str:
    """A pyproject.toml whose wheel carries the grader and, in grader/_course, exactly `course_parts`."""
    meta = project_metadata()
    return _render("pyproject.toml.j2", name=DIST_NAME, version=meta["version"], description=description,
                   requires_python=meta["requires_python"], license=meta["license"],
                   dependencies=meta["dependencies"], extras=meta["extras"], course_parts=course_parts)


def write_grader_source(dest: Path, course: Course, name: str, *, student: bool) -> None:
    """dest/: grader/, the course parts, pyproject.toml, README.md; `pip install dest` installs it all."""
    copy_grader_package(dest, student=student)
    copy_tree(course.assignments_dir / name, dest / "assignments" / name)
    parts = ("assignments",) if student else ("assignments", "reference", "autotests")
    if not student:
        assignment = course.assignment(name)
        copy_tree(assignment.reference_dir, dest / "reference" / name)
        copy_tree(assignment.autotests_dir, dest / "autotests" / name)
    version = grader.__version__
    if student:
        description = f"micrograd-grader {version} for students: `grader check` with the public tests of {name}"
    else:
        description = f"micrograd-grader {version} with the course {name}: hidden tests and reference included"
    readme = _render("grader_src_README.md.j2", version=version, name=name, student=student)
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
    if (course.root / "reference" / name).is_dir():
        from grader.generate import GenerateError, diff_assignment

        try:
            stale = diff_assignment(course.root, name)
        except GenerateError as exc:
            raise ExportError(str(exc)) from None
        if stale:
            raise ExportError(f"{course.assignments_dir / name} is out of date with reference/{name}/: "
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
                   name: str) -> Path:
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
    (dest / "README.md").write_text(_render("student_README.md.j2", name=name), encoding="utf-8")


# --- Gradescope export ------------------------------------------------------------------------------------

def gradescope_files(course: Course, name: str, staging: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry of the bundle: archive path -> (content, Unix mode)."""
    assignment = course.assignment(name)
    source = staging / "grader-src"
    write_grader_source(source, course, name, student=False)
    # Generous: the grader itself stops student code at total_timeout_s; this is for the grader's own hangs.
    timeout = int(assignment.limits.total_timeout_s * 3 + 120)
    version = grader.__version__
    files = {
        "setup.sh": (_render("setup.sh.j2", version=version), 0o755),
        "run_autograder": (_render("run_autograder.sh.j2", name=name, timeout=timeout), 0o755),
        "README.md": (_render("gradescope_README.md.j2", name=name, version=version,
                              files=", ".join(f"`{f}`" for f in assignment.files),
                              visibility=", ".join(f"{g.name}: {g.visibility}" for g in assignment.groups)), 0o644),
    }
    entries = {rel: (text.encode("utf-8"), mode) for rel, (text, mode) in files.items()}
    for path in sorted(source.rglob("*")):
        if path.is_file():
            entries[f"grader-src/{path.relative_to(source).as_posix()}"] = (path.read_bytes(), 0o644)
    return entries


def export_gradescope(out: str | os.PathLike, *, course_dir: str | os.PathLike | None = None,
                      name: str) -> Path:
    """Write the Gradescope autograder zip OUT (atomically: a reader sees the old zip or the new one)."""
    import tempfile

    course = load_course(course_dir, name)
    if not course.assignment(name).has_hidden_tests:
        raise ExportError(f"{course.root} has no hidden tests for {name} (reference/{name}/, autotests/{name}/): "
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
