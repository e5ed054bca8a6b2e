"""The audit trail a test's session writes: the demo's SQLite log beside a repository, as its user."""

from __future__ import annotations

from typing import Protocol

from lib.audit import Actor, AuditEntry, AuditEvent, AuditFilter, AuditTrail
from lib.repository import (
    Repository,
    ServerRecords,
    SqliteAuditLog,
    SqliteRepository,
    SupabaseAuditLog,
    SupabaseRepository,
)

TEST_ADDRESS = "192.0.2.10"
"""The client address a test session acts from (TEST-NET-1: never a real machine)."""


def trail_of(repo: SqliteRepository, email: str = "") -> AuditTrail:
    """The trail as ``repo``'s user writes it (demo mode: the same SQLite file)."""
    return AuditTrail(SqliteAuditLog(repo.db_path, repo.user_id), Actor(repo.user_id, email, TEST_ADDRESS))


class HasRows(Protocol):
    repo: Repository
    server: ServerRecords


def trail_for(rows: HasRows) -> AuditTrail:
    """The trail as the user of ``rows`` (a repository and the server's records beside it) writes it, in either
    mode: demo (SQLite beside the repository) or cloud (the server's client writes, the user's own reads)."""
    repo = rows.repo
    if isinstance(repo, SupabaseRepository):
        log = SupabaseAuditLog(rows.server._client, repo._client, repo.user_id)
        return AuditTrail(log, Actor(repo.user_id, "", TEST_ADDRESS))
    assert isinstance(repo, SqliteRepository)
    return trail_of(repo)


class NoEntryExpected:
    """The log of a session whose every action must be refused before anything is written: an entry fails the
    test (AssertionError is no PulseVaultError, so no caller swallows it)."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def append(self, actor: Actor, event: AuditEvent) -> None:
        raise AssertionError(f"a refused action wrote an audit entry: {event.action.value} of {event.record_id}")

    def entries(self, where: AuditFilter) -> list[AuditEntry]:
        return []


def refused_trail(user_id: str) -> AuditTrail:
    """The trail of a session whose actions are all refused (any store: nothing is written)."""
    return AuditTrail(NoEntryExpected(user_id), Actor(user_id, "", TEST_ADDRESS))
