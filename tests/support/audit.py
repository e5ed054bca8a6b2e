"""The audit trail a test's session writes: the demo's SQLite log beside a repository, as its user."""

from __future__ import annotations

from lib.audit import Actor, AuditTrail
from lib.repository import SqliteAuditLog, SqliteRepository

TEST_ADDRESS = "192.0.2.10"
"""The client address a test session acts from (TEST-NET-1: never a real machine)."""


def trail_of(repo: SqliteRepository, email: str = "") -> AuditTrail:
    """The trail as ``repo``'s user writes it (demo mode: the same SQLite file)."""
    return AuditTrail(SqliteAuditLog(repo.db_path, repo.user_id), Actor(repo.user_id, email, TEST_ADDRESS))
