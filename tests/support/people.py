"""Demo-mode accounts for tests of who may do what: each person's repository and the server's records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib.auth import DemoAuth
from lib.repository import SqliteRepository, SqliteServerRecords

PASSWORD = "password-1234"
"""Every test person's password."""


@dataclass(frozen=True)
class Person:
    repo: SqliteRepository
    server: SqliteServerRecords

    @property
    def id(self) -> str:
        return self.repo.user_id


def demo_person(db: Path, email: str) -> Person:
    """A new demo account in ``db``, as its repository and the server's records for it."""
    user_id = DemoAuth(db).sign_up(email, PASSWORD).session.user_id
    return Person(SqliteRepository(db, user_id), SqliteServerRecords(db, user_id))
