"""The service's database: users, jobs (one per upload or regrade, with every phase's time), regrade sets and the
submission limits' token buckets. SQLAlchemy, so that SQLite (the default, in the data folder) and PostgreSQL run
the same code; the only per-database code is how SQLite is made to lock for writing (`_sqlite_engine`)."""
from __future__ import annotations

import os
import weakref
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from sqlalchemy import (Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator,
                        create_engine, event)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from grader.errors import UnusableInput

DB_FILE = "grader.db"
UPLOADS_DIR = "uploads"
STATUSES = ("queued", "grading", "graded", "error")
REGRADE_STATUSES = ("open", "applied", "discarded")
UPLOAD, REGRADE = 0, 1  # a job's priority: a student's upload goes before a regrade


class ServiceError(UnusableInput):
    """The service cannot start or a users command cannot run (a data folder or database that cannot be used, an
    unknown user); the one-line message says what and where."""


def now() -> datetime:
    """The server's clock, the only one the service trusts (a submission's time is when it was received)."""
    return datetime.now(timezone.utc)


class UTC(TypeDecorator):
    """A time in UTC, aware in Python whatever the database keeps (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the student id of the gradebook
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    staff: Mapped[bool] = mapped_column(Boolean, default=False)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTC, default=now)


class Regrade(Base):
    """A regrade set: staff's regrade of each student's current result, graded into jobs of its own (the old ones
    are kept); `applied` makes its graded results the students' current ones, `discarded` drops them."""

    __tablename__ = "regrades"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)  # None: `grader regrade`
    created_at: Mapped[datetime] = mapped_column(UTC, default=now)
    status: Mapped[str] = mapped_column(String(10), default="open")
    decided_at: Mapped[datetime | None] = mapped_column(UTC, nullable=True)  # when applied or discarded


class Job(Base):
    """One grading of one stored upload. `attempt` counts the times grading started (a server killed while grading
    starts it again); the report and the final status are written in one transaction, once. A regrade job belongs
    to a set (`regrade_id`) and grades again the upload of the job whose result it may replace (`regrade_of`),
    with that upload's time."""

    __tablename__ = "jobs"
    __table_args__ = (Index("jobs_by_status", "status", "priority", "id"),
                      Index("jobs_by_student", "assignment", "student", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student: Mapped[str] = mapped_column(ForeignKey("users.id"))
    assignment: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=UPLOAD)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    upload: Mapped[str] = mapped_column(String(300))  # relative to the data folder
    filename: Mapped[str] = mapped_column(String(300))  # as the student named it (shown, never used as a path)
    received_at: Mapped[datetime] = mapped_column(UTC, default=now)
    started_at: Mapped[datetime | None] = mapped_column(UTC, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTC, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    report: Mapped[str | None] = mapped_column(Text, nullable=True)  # the report's JSON
    page: Mapped[str | None] = mapped_column(Text, nullable=True)  # the feedback page the batch writes
    regrade_id: Mapped[int | None] = mapped_column(ForeignKey("regrades.id"), nullable=True, index=True)
    regrade_of: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)


class Bucket(Base):
    """A student's submission limit for one assignment: a token bucket (`[submissions]` in assignment.toml)."""

    __tablename__ = "buckets"

    student: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    assignment: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTC)


class LimitOverride(Base):
    """Staff's own submission limit for one student and assignment, instead of `[submissions]`'s."""

    __tablename__ = "limit_overrides"

    student: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    assignment: Mapped[str] = mapped_column(String(100), primary_key=True)
    per_hour: Mapped[float] = mapped_column(Float)
    burst: Mapped[int] = mapped_column(Integer)


class Release(Base):
    """A group whose `visibility` withholds it (hidden, after_published) that staff released to the students."""

    __tablename__ = "releases"

    assignment: Mapped[str] = mapped_column(String(100), primary_key=True)
    group: Mapped[str] = mapped_column(String(100), primary_key=True)
    released_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[datetime] = mapped_column(UTC)


class Database:
    """The engine and sessions of one data folder; the tables are made when missing. `session` is for
    transactions that write (`with database.session.begin()`), `reader` for those that only read."""

    def __init__(self, data_dir: Path, url: str | None = None) -> None:
        self.data_dir = data_dir.resolve()
        try:  # the uploads are every student's code: no other uid reads them (a weak sandbox's student uid)
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.data_dir / UPLOADS_DIR).mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ServiceError(f"{data_dir}: cannot make the data folder ({exc.strerror or exc})") from None
        url = url or f"sqlite:///{self.data_dir / DB_FILE}"
        try:
            if url.startswith("sqlite"):
                self.engine, self.read_engine = _sqlite_engine(url, write=True), _sqlite_engine(url, write=False)
            else:
                self.engine = self.read_engine = create_engine(url, pool_pre_ping=True)
            Base.metadata.create_all(self.engine)
        except Exception as exc:  # SQLAlchemy and its drivers raise many types for a bad URL or server
            raise ServiceError(f"cannot open the database {_without_password(url)}: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self.reader = sessionmaker(self.read_engine, expire_on_commit=False)
        if hasattr(os, "register_at_fork"):  # the grading workers are forked
            os.register_at_fork(after_in_child=partial(_forget, weakref.ref(self)))

    def forget(self) -> None:
        """In a forked child: drop the parent's connections without closing them (a PostgreSQL connection closed
        by a child is closed for the parent too)."""
        self.engine.dispose(close=False)
        self.read_engine.dispose(close=False)

    def close(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


def _forget(database: weakref.ref[Database]) -> None:
    alive = database()
    if alive is not None:
        alive.forget()


def _sqlite_engine(url: str, write: bool) -> Engine:
    """SQLite in WAL mode: readers never wait for the writer, nor it for them. A writing transaction starts
    with BEGIN IMMEDIATE: it takes the write lock at once, so that a read-then-write (a token bucket, claiming a
    job) is never run by two at a time, and a second writer waits (busy timeout) instead of failing on its
    upgrade. Reading transactions start with a plain BEGIN, or they would queue behind the writers."""
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=FULL")  # a committed upload survives a power cut
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: say so without echoing it (it may hold a password)
        return "(an unreadable URL)"
