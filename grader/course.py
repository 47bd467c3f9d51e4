"""Stage 1 of the pipeline: find the course and read an assignment's settings."""
from __future__ import annotations

import fnmatch
import math
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from grader.errors import UnusableInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class CourseError(UnusableInput):
    """The course or assignment cannot be used; the message says what and where."""


@dataclass(frozen=True)
class Group:
    name: str
    points: float
    title: str
    visibility: str
    functions: tuple[str, ...] = ()  # the student functions this group judges (fnmatch patterns)


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

    @property
    def max_score(self) -> float:
        return sum(g.points for g in self.groups)

    def group_of_function(self, function: str) -> str | None:
        """The group that judges a student function ("Value.tanh", "Value.tanh: _backward", "train").

        An exact name wins over a pattern, so `Value.backward` can belong to backprop while `Value.*` is ops."""
        name = function.split(":")[0].strip()
        for exact in (True, False):
            for g in self.groups:
                if any(name == p if exact else fnmatch.fnmatchcase(name, p) for p in g.functions):
                    return g.name
        return None

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

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference"

    @property
    def autotests_dir(self) -> Path:
        return self.root / "autotests"

    @property
    def has_hidden_tests(self) -> bool:
        """False in the student export, which carries neither the reference nor the hidden tests."""
        return self.reference_dir.is_dir() and self.autotests_dir.is_dir()

    def assignment(self, name: str = "micrograd") -> Assignment:
        folder = self.assignments_dir / name
        settings = folder / "assignment.toml"
        if name in ("", ".", "..") or Path(name).name != name or not settings.is_file():
            known = sorted(p.parent.name for p in self.assignments_dir.glob("*/assignment.toml"))
            raise CourseError(f"no assignment {name!r} in {self.assignments_dir} (known: {', '.join(known) or 'none'})")
        try:
            text = settings.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CourseError(f"{settings}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise CourseError(f"{settings}: cannot read it: {exc.strerror or exc}") from None
        return parse_assignment(text, folder, self, source=settings)


VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")  # Gradescope's
KEYS = {  # what each table may hold: any other key is a typo that would silently change nothing
    "": ("assignment", "groups", "limits", "late"),
    "assignment": ("name", "title", "version", "files"),
    "groups.*": ("points", "title", "visibility", "functions"),
    "limits": ("call_timeout_s", "total_timeout_s", "memory_mb", "processes", "output_kb", "file_size_kb"),
    "late": ("due", "percent_per_day", "max_days"),
}
DUE_EXAMPLE = "2026-12-20T23:59:00+08:00"


def parse_assignment(text: str, folder: Path, course: Course, source: Path) -> Assignment:
    """Read assignment.toml; every missing or malformed key is reported with the file's path."""
    try:
        data = tomllib.loads(text)
        _only_known(data, "")
        meta, limits = _table(data, "assignment"), _table(data, "limits")
        late = _table(data, "late") if "late" in data else {}
        groups = _table(data, "groups")
        if not groups:
            raise ValueError("[groups] holds no group")
        files = _required(meta, "files", "assignment")
        if not isinstance(files, list) or not files or not all(isinstance(f, str) and f.strip() for f in files):
            raise ValueError(f'assignment.files must be a non-empty list of file names, e.g. ["engine.py"], '
                             f"not {files!r}")
        version = _required(meta, "version", "assignment")
        if not isinstance(version, (str, int)) or isinstance(version, bool):
            raise ValueError(f"assignment.version must be a string, not {version!r}")
        name = _string(_required(meta, "name", "assignment"), "assignment.name")

        def limit(key: str) -> float:
            return _number(_required(limits, key, "limits"), f"limits.{key}")

        def whole_limit(key: str) -> int:
            return _number(_required(limits, key, "limits"), f"limits.{key}", whole=True)

        return Assignment(
            name=name,
            title=_string(meta.get("title", name), "assignment.title"),
            version=str(version),
            files=tuple(files),
            groups=tuple(_group(group, _table(groups, group, "groups")) for group in groups),
            limits=Limits(
                call_timeout_s=limit("call_timeout_s"),
                total_timeout_s=limit("total_timeout_s"),
                memory_mb=whole_limit("memory_mb"),
                processes=whole_limit("processes"),
                output_bytes=whole_limit("output_kb") * 1024,
                file_size_bytes=whole_limit("file_size_kb") * 1024,
            ),
            late=LatePolicy(
                due=_due(late["due"]) if "due" in late else None,
                percent_per_day=_number(late.get("percent_per_day", 0), "late.percent_per_day", zero=True),
                max_days=_number(late["max_days"], "late.max_days", whole=True, zero=True)
                if "max_days" in late else None,
            ),
            folder=folder,
            course=course,
        )
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise CourseError(f"{source}: {exc}") from None


def _only_known(table: dict, where: str) -> None:
    allowed = KEYS.get("groups.*" if where.startswith("groups.") else where)
    if allowed is None:  # [groups]: its keys are the groups' names
        return
    if unknown := [key for key in table if key not in allowed]:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ValueError(f"unknown key {name} (known: {', '.join(allowed)})")


def _table(data: dict, key: str, where: str = "") -> dict:
    """data[key], which must be a table of known keys; `where` is data's own name, e.g. "groups"."""
    name = f"{where}.{key}" if where else key
    value = _required(data, key, where)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a table ([{name}]), not {value!r}")
    _only_known(value, name)
    return value


def _required(table: dict, key: str, where: str) -> object:
    if key not in table:
        raise ValueError(f"missing {where}.{key}" if where else f"missing [{key}]")
    return table[key]


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string, not {value!r}")
    return value


def _number(value: object, where: str, *, whole: bool = False, zero: bool = False):
    """A finite number > 0 (>= 0 with zero); with whole, an int (2.0 is 2; 1.5 is an error, not 1)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value < 0 or (value == 0 and not zero) or (whole and value != int(value))):
        kind = "a whole number" if whole else "a finite number"
        raise ValueError(f"{where} must be {kind} {'>=' if zero else '>'} 0, not {value!r}")
    return int(value) if whole else float(value)


def _group(name: str, table: dict) -> Group:
    where = f"groups.{name}"
    visibility = table.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise ValueError(f"{where}.visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
    functions = table.get("functions", [])
    if not isinstance(functions, list) or not all(isinstance(f, str) and f for f in functions):
        raise ValueError(f"{where}.functions must be a list of function names, not {functions!r}")
    return Group(name, _number(_required(table, "points", where), f"{where}.points", zero=True),
                 _string(table.get("title", name), f"{where}.title"), visibility, tuple(functions))


def _due(value: object) -> datetime:
    """late.due: a TOML date-time or an ISO 8601 string, with a time zone either way."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"late.due {value!r} is not an ISO 8601 date and time, e.g. {DUE_EXAMPLE}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"late.due must be a date and time with a time zone, e.g. {DUE_EXAMPLE}, not {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"late.due needs a time zone, e.g. {DUE_EXAMPLE}")
    return value


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
