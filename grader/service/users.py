"""Users and their tokens: students from a roster, staff by name.

A token is `secrets.token_urlsafe(32)` (256 random bits), shown once and stored as its sha256. A slow password
hash buys nothing here: it slows the guessing of low-entropy secrets, and no one can guess 256 random bits,
hashed fast or slow. A token is found by its hash, then compared with hmac.compare_digest, so that no timing
says how much of a guess was right."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.gradebook import Person, read_roster
from grader.service.db import Database, ServiceError, User

ROSTER_REQUIRED = ("id", "name", "email")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> tuple[str, str]:
    """A token and its hash."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def import_roster(database: Database, roster: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """Add the roster's students who have no account yet: (student, token) for each of them, and the ids already
    there (their names and emails are updated; their tokens stay, since they were shown once only)."""
    people = read_roster(roster, ROSTER_REQUIRED)
    created: list[tuple[str, str]] = []
    existing: list[str] = []
    with database.session.begin() as session:
        known = {u.id: u for u in session.scalars(select(User).where(User.id.in_(list(people))))}
        for student, person in people.items():
            user = known.get(student)
            if user is not None and user.staff:
                raise ServiceError(f"{roster}: {student!r} is a staff account, not a student")
            if user is not None:
                user.name, user.email = person.name, person.email
                existing.append(student)
                continue
            token, digest = new_token()
            session.add(User(id=student, name=person.name, email=person.email, staff=False, token_sha256=digest))
            created.append((student, token))
    return created, existing


def add_staff(database: Database, name: str) -> str:
    """A staff account named `name`; its token."""
    if not name.strip() or len(name) > 100 or not name.isprintable():
        raise ServiceError(f"{name!r}: a staff name is 1 to 100 printable characters")
    token, digest = new_token()
    with database.session.begin() as session:
        if session.get(User, name) is not None:
            raise ServiceError(f"{name!r} has an account already")
        session.add(User(id=name, name=name, staff=True, token_sha256=digest))
    return token


def authenticate(session: Session, token: str) -> User | None:
    """The user whose token this is, else None."""
    digest = token_hash(token)
    user = session.scalars(select(User).where(User.token_sha256 == digest)).first()
    return user if user is not None and hmac.compare_digest(user.token_sha256, digest) else None


def roster_of(session: Session) -> dict[str, Person]:
    """The students as the gradebook's roster (a `missing` row for those without a submission)."""
    students = session.scalars(select(User).where(User.staff.is_(False)))
    return {u.id: Person(u.id, u.name, u.email) for u in students}
