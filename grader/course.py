"""Stage 1 of the pipeline: find the course and read an assignment's settings."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class CourseError(Exception):
    """The course or assignment cannot be used; the message says what and where."""


@dataclass(frozen=True)
class Group:
    name: str
    points: float
    title: str
    visibility: str


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
    percent_per_day: float
    max_days: int


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
        if not settings.is_file():
            known = sorted(p.name for p in self.assignments_dir.glob("*/assignment.toml"))
            raise CourseError(f"no assignment {name!r} in {self.assignments_dir} (known: {', '.join(known) or 'none'})")
        return parse_assignment(settings.read_text(encoding="utf-8"), folder, self, source=settings)


def parse_assignment(text: str, folder: Path, course: Course, source: Path) -> Assignment:
    """Read assignment.toml; every missing or malformed key is reported with the file's path."""
    try:
        data = tomllib.loads(text)
        meta, limits, late = data["assignment"], data["limits"], data.get("late", {})
        groups = tuple(
            Group(name, float(g["points"]), g.get("title", name), g.get("visibility", "visible"))
            for name, g in data["groups"].items()
        )
        due = datetime.fromisoformat(late["due"]) if late.get("due") else None
        if due is not None and due.tzinfo is None:
            raise ValueError("late.due needs a time zone, e.g. 2026-12-20T23:59:00+08:00")
        return Assignment(
            name=meta["name"],
            title=meta.get("title", meta["name"]),
            version=str(meta["version"]),
            files=tuple(meta["files"]),
            groups=groups,
            limits=Limits(
                call_timeout_s=float(limits["call_timeout_s"]),
                total_timeout_s=float(limits["total_timeout_s"]),
                memory_mb=int(limits["memory_mb"]),
                processes=int(limits["processes"]),
                output_bytes=int(limits["output_kb"]) * 1024,
                file_size_bytes=int(limits["file_size_kb"]) * 1024,
            ),
            late=LatePolicy(due, float(late.get("percent_per_day", 0)), int(late.get("max_days", 0))),
            folder=folder,
            course=course,
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CourseError(f"{source}: {what}") from None


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
