"""Stage 1 of the pipeline: find the course and read an assignment's settings."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Callable

from grader.errors import UnusableInput
from grader.messages import load_catalogue

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class CourseError(UnusableInput):
    """The course or assignment cannot be used; the message says what and where."""


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    visibility: str
    # (student function, its points): each function's points are shared among the tests that cover it, by weight
    functions: tuple[tuple[str, float], ...] = ()
    title_zh: str | None = None  # what reports rendered in Chinese show

    @property
    def points(self) -> float:
        return sum(points for _, points in self.functions)


@dataclass(frozen=True)
class Limits:
    call_timeout_s: float
    total_timeout_s: float
    memory_mb: int
    processes: int
    output_bytes: int
    file_size_bytes: int


@dataclass(frozen=True)
class LatePolicy:
    due: datetime | None
    percent_per_day: float = 0.0
    max_days: int | None = None  # None: no cutoff, the penalty just grows per day (up to 100 %)
    # past max_days: "zero" (the score is 0) or "cap" (the penalty stays at max_days × percent_per_day); None
    # without max_days
    after_max_days: str | None = None


@dataclass(frozen=True)
class SubmissionLimit:
    """`[submissions]`: each student's uploads to the grading service, a token bucket: `burst` at once, then
    `per_hour` (the bucket refills continuously)."""

    per_hour: float
    burst: int


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    version: str
    files: tuple[str, ...]
    groups: tuple[Group, ...]
    limits: Limits
    late: LatePolicy
    folder: Path  # the generated student material: assignments/<name>/
    course: Course
    # module -> the names the hidden tests use; a module that imports without one of them was renamed or cut
    contract: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the course's own copies (public material in assignments/<name>/), used whatever the submission holds
    given: tuple[str, ...] = ()
    # variant -> the student files it replaces by the course's public copies (e.g. a correct engine)
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)  # messages.toml: id -> {language: text}
    submissions: SubmissionLimit | None = None  # None: no limit
    counts: str = "latest"  # `[submissions] counts`: which graded submission the service's gradebook takes

    @property
    def reference_dir(self) -> Path:
        """The solution (with markers), its texts and public tests: reference/<name>/ (not in the student kit)."""
        return self.course.root / "reference" / self.name

    @property
    def autotests_dir(self) -> Path:
        """The hidden tests: autotests/<name>/ (not in the student kit)."""
        return self.course.root / "autotests" / self.name

    @property
    def has_hidden_tests(self) -> bool:
        """False in the student export, which carries neither the reference nor the hidden tests."""
        return self.reference_dir.is_dir() and self.autotests_dir.is_dir()

    @property
    def modules(self) -> tuple[str, ...]:
        """The submission's and the given Python modules, by import name."""
        return tuple(Path(f).stem for f in self.files + self.given if f.endswith(".py"))

    @property
    def harness(self) -> Path:
        """The assignment's harness commands (assignments/<name>/harness.py): copied into every sandbox."""
        return self.folder / "harness.py"

    @property
    def max_score(self) -> float:
        return sum(g.points for g in self.groups)

    @cached_property
    def tests_fingerprint(self) -> str:
        """sha256 of what decides the hidden tests' outcomes: the grader's version, the hidden tests, the
        reference and its harness, the files, contract, variants and limits. A report made under another one is
        regraded by `grader batch --resume`."""
        from grader import __version__

        digest = hashlib.sha256(repr((__version__, self.files, self.given, sorted(self.contract.items()),
                                      sorted(self.variants.items()), self.limits)).encode())
        for folder in (self.autotests_dir, self.reference_dir):
            for path in sorted(folder.rglob("*")):
                if path.suffix in (".py", ".ini") and "__pycache__" not in path.parts and path.is_file():
                    digest.update(f"\0{path.relative_to(folder)}\0".encode() + path.read_bytes())
        return digest.hexdigest()

    @property
    def scoring_fingerprint(self) -> str:
        """sha256 of what turns outcomes into points: the groups with their points, and the late policy. A report
        made under another one is rescored from its stored outcomes by `grader batch --resume`."""
        return hashlib.sha256(repr((self.groups, self.late)).encode()).hexdigest()

    def group_of_function(self, function: str) -> str | None:
        """The group that gives a student function its points ("Value.tanh", "Value.tanh: _backward", "train")."""
        name = function.split(":")[0].strip()
        return next((g.name for g in self.groups for f, _ in g.functions if f == name), None)

    def function_points(self) -> dict[str, float]:
        """Every student-written function with its points."""
        return {f: points for g in self.groups for f, points in g.functions}

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise CourseError(f"{self.folder / 'assignment.toml'}: no group named {name!r}")


@dataclass(frozen=True)
class Course:
    root: Path

    @property
    def assignments_dir(self) -> Path:
        return self.root / "assignments"

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.assignments_dir.glob("*/assignment.toml"))

    def choose(self, name: str | None, submission: Path | None = None) -> Assignment:
        """`name`; else the course's only assignment; else the one whose files the submission holds (a folder
        of them, a class folder of such folders, a .zip or a notebook naming them)."""
        if name:
            return self.assignment(name)
        names = self.names()
        if len(names) == 1:
            return self.assignment(names[0])
        held = _names_in(submission) if submission is not None else set()
        assignments = [self.assignment(n) for n in names]
        # most of its files held, then fewest missing (a notebook of one also holds the given files of another)
        found = {a.name: (len(held & set(a.files)), -len(set(a.files) - held)) for a in assignments}
        best = max(found.values())
        if best[0] and list(found.values()).count(best) == 1:
            return next(a for a in assignments if found[a.name] == best)
        where = f" and {submission} does not tell which" if submission is not None else ""
        raise CourseError(f"the course has several assignments ({', '.join(names)}){where}: pass --assignment NAME")

    def assignment(self, name: str) -> Assignment:
        folder = self.assignments_dir / name
        settings = folder / "assignment.toml"
        if name in ("", ".", "..") or Path(name).name != name or not settings.is_file():
            known = sorted(p.parent.name for p in self.assignments_dir.glob("*/assignment.toml"))
            raise CourseError(f"no assignment {name!r} in {self.assignments_dir} (known: {', '.join(known) or 'none'})")
        source = self.root / "reference" / name / "assignment.toml"
        if source.is_file() and source.read_bytes() != settings.read_bytes():
            # assignments/ is generated: an edit of either copy alone would be ignored by someone
            raise CourseError(f"{settings} differs from {source}, which it is generated from: edit the one in "
                              "reference/, then run `grader generate`")
        return read_assignment(settings, self, folder)


SCHEMA_PATH = Path(__file__).with_name("schemas") / "assignment.schema.json"


def read_assignment(settings: Path, course: Course, folder: Path | None = None) -> Assignment:
    """The assignment described by the file `settings` (assignment.toml, in assignments/<name>/ or reference/);
    `folder` is its student material (default: the file's folder)."""
    try:
        text = settings.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CourseError(f"{settings}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CourseError(f"{settings}: cannot read it: {exc.strerror or exc}") from None
    return parse_assignment(text, settings.parent if folder is None else folder, course, source=settings)


def parse_assignment(text: str, folder: Path, course: Course, source: Path) -> Assignment:
    """Read assignment.toml against grader/schemas/assignment.schema.json, the one description of its keys.

    Every missing, unknown or malformed key is a CourseError of one line: `<file>: <key path>: <what>`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CourseError(f"{source}: {exc}") from None
    problem = _schema_problem(data)
    if problem is None:
        due = data.get("late", {}).get("due")
        try:
            due = _due(due) if due is not None else None
        except ValueError:
            problem = _must_be(data, ("late", "due"))
    if problem is None:
        problem = _function_in_two_groups(data["groups"])
    if problem:  # a one-line description of what is wrong, and where
        raise CourseError(f"{source}: {problem}")
    meta, limits, late = data["assignment"], data["limits"], data.get("late", {})
    return Assignment(
        name=meta["name"],
        title=meta.get("title", meta["name"]),
        version=str(meta["version"]),
        files=tuple(meta["files"]),
        groups=tuple(Group(name, g.get("title", name), g.get("visibility", "visible"),
                           tuple((f, float(p)) for f, p in g["functions"].items()), g.get("title_zh"))
                     for name, g in data["groups"].items()),
        limits=Limits(
            call_timeout_s=float(limits["call_timeout_s"]),
            total_timeout_s=float(limits["total_timeout_s"]),
            memory_mb=int(limits["memory_mb"]),
            processes=int(limits["processes"]),
            output_bytes=int(limits["output_kb"]) * 1024,
            file_size_bytes=int(limits["file_size_kb"]) * 1024,
        ),
        late=LatePolicy(
            due=due,
            percent_per_day=float(late.get("percent_per_day", 0)),
            max_days=int(late["max_days"]) if "max_days" in late else None,
            after_max_days=late.get("after_max_days"),
        ),
        folder=folder,
        course=course,
        contract={module: tuple(names) for module, names in data.get("contract", {}).items()},
        given=tuple(meta.get("given", ())),
        variants={name: tuple(v["replace"]) for name, v in data.get("variants", {}).items()},
        messages=_messages(folder / "messages.toml"),
        submissions=SubmissionLimit(float(data["submissions"]["per_hour"]), int(data["submissions"]["burst"]))
        if "per_hour" in data.get("submissions", {}) else None,
        counts=data.get("submissions", {}).get("counts", "latest"),
    )


def _function_in_two_groups(groups: dict) -> str | None:
    owner: dict[str, str] = {}
    for name, group in groups.items():
        for function in group["functions"]:
            if function in owner:
                return (f"groups.{name}.functions: {function} has points in groups {owner[function]} and {name}; "
                        "a function's points belong to one group")
            owner[function] = name
    return None


def _names_in(path: Path) -> set[str]:
    """File names a submission (or a class folder of them) holds, without reading any file's content."""
    if path.is_file() and path.suffix == ".zip":
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                return {Path(n).name for n in archive.namelist()}
        except (OSError, zipfile.BadZipFile):
            return set()
    if path.is_file() and path.suffix == ".ipynb":
        try:
            cells = json.loads(path.read_text(encoding="utf-8", errors="replace")).get("cells", [])
        except (OSError, ValueError, AttributeError):
            return set()
        names = set()
        for cell in cells if isinstance(cells, list) else []:  # a tag or a `%%writefile NAME` line names a file
            metadata = cell.get("metadata") if isinstance(cell, dict) else None
            tags = metadata.get("tags") if isinstance(metadata, dict) else None
            names |= {f"{t}.py" for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()
            source = cell.get("source", "") if isinstance(cell, dict) else ""
            source = "".join(source) if isinstance(source, list) else str(source)
            names |= set(re.findall(r"^%%writefile\s+([\w.-]+)", source, re.M))
        return names
    if not path.is_dir():
        return set()
    found = set()
    for child in sorted(path.iterdir())[:200]:  # a class folder of submissions: a sample of them is enough
        found.add(child.name)
        if child.suffix in (".ipynb", ".zip") and not child.is_symlink():
            found |= _names_in(child)
        elif child.is_dir() and not child.is_symlink():
            for grandchild in sorted(child.iterdir())[:50]:
                found.add(grandchild.name)
                if grandchild.suffix in (".ipynb", ".zip") and not grandchild.is_symlink():
                    found |= _names_in(grandchild)
    return found


def _messages(path: Path) -> dict[str, dict[str, str]]:
    """The assignment's message catalogue: [id] tables of en/zh format strings; none, an empty catalogue."""
    if not path.is_file():
        return {}
    try:
        return load_catalogue(path)
    except ValueError as exc:  # TOMLDecodeError and UnicodeDecodeError are ValueErrors too
        raise CourseError(f"{path}: {exc}") from None


def _due(value: object) -> datetime:
    """late.due, valid by the schema: a TOML date-time or an ISO 8601 string, with a time zone either way; a
    ValueError for a date that does not exist (the schema checks the form only)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "Zz" else value)  # Python 3.10
    assert isinstance(value, datetime) and value.tzinfo is not None, value
    return value


def _json_model(value: object) -> object:
    """TOML's values as JSON's, for the schema: a date or time as its ISO 8601 text, nan and inf as text (no JSON
    number, so never a "finite number")."""
    if isinstance(value, dict):
        return {k: _json_model(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_model(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _fast_validator() -> Callable[[object], object]:
    """The schema compiled by fastjsonschema (~0.01 s, against ~0.1 s to import jsonschema on every `grade`);
    jsonschema words the error when it fails."""
    import fastjsonschema

    return fastjsonschema.compile(_schema())


def _schema_problem(data: dict) -> str | None:
    """None when `data` matches the schema; else its first problem (the shallowest), worded on one line."""
    import fastjsonschema

    instance = _json_model(data)
    try:
        _fast_validator()(instance)
        return None
    except fastjsonschema.JsonSchemaException:
        pass
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(instance), key=lambda e: len(e.absolute_path))
    if not errors:  # the two validators differ on an edge case: jsonschema, the reference, says valid
        return None
    error = errors[0]
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = next(key for key in error.instance if key not in known)
        return f"{_key_path((*path, unknown))}: unknown key (known: {', '.join(known)})"
    if error.validator == "required":
        missing = next(key for key in error.validator_value if key not in error.instance)
        return f"{_key_path((*path, missing))}: missing; it must be {_description((*path, missing))}"
    return _must_be(data, path)


def _must_be(data: dict, path: tuple) -> str:
    """`<key path>: must be <description>, not <value>`, for the nearest key (or list) the schema describes."""
    while path and _schema_at(path).get("description") is None:
        path = path[:-1]
    shown = _toml_text(_value_at(data, path))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{_key_path(path)}: must be {_description(path)}, not {shown}"


def _toml_text(value: object) -> str:
    """A value as TOML writes it (true, "text", 2026-12-20, [1, 2], {a = 1}), for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml_text, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_text(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _schema_at(path: tuple) -> dict:
    schema = _schema()
    for part in path:
        if isinstance(part, int):
            schema = schema.get("items", {})
        elif part in schema.get("properties", {}):
            schema = schema["properties"][part]
        else:
            additional = schema.get("additionalProperties")
            schema = additional if isinstance(additional, dict) else {}
    return schema


def _description(path: tuple) -> str:
    return _schema_at(path).get("description", "as described in grader/schemas/assignment.schema.json")


def _value_at(data: object, path: tuple) -> object:
    for part in path:
        data = data[part]  # type: ignore[index]
    return data


def _key_path(path: tuple) -> str:
    """("groups", "ops", "points") -> "groups.ops.points"; ("assignment", "files", 0) -> "assignment.files[0]";
    the file itself is "(the file)"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the file)"


def installed_course_root() -> Path:
    """The course shipped with the grader: the source checkout, or the copy inside a wheel install."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent, package / "_course"):
        if (candidate / "assignments").is_dir():
            return candidate
    raise CourseError(f"no course installed beside {package}; pass --course DIR or set GRADER_COURSE")


def find_course(course_dir: str | os.PathLike | None = None) -> Course:
    """--course DIR, else $GRADER_COURSE, else the course the grader was installed with."""
    chosen = course_dir or os.environ.get("GRADER_COURSE")
    root = Path(chosen).resolve() if chosen else installed_course_root()
    if not (root / "assignments").is_dir():
        raise CourseError(f"{root} is not a course folder (it has no assignments/ folder)")
    return Course(root)
