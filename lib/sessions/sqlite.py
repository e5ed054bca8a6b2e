"""Demo mode's session store: the demo SQLite database file."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lib.auth import Session
from lib.sessions.base import (
    SECRET_BYTES,
    TICKET_TTL_S,
    USER_AGENT_CHARS,
    ClientInfo,
    Resumed,
    StoredSession,
    TokenCipher,
    flag_reason,
    secret_hash,
)

log = logging.getLogger(__name__)

_SCHEMA = """
create table if not exists app_sessions (
    id                 text primary key,
    user_id            text not null,
    secret_hash        text unique,
    ticket_hash        text unique,
    ticket_expires_at  real,
    tokens             text not null,
    created_at         real not null,
    last_seen_at       real not null,
    expires_at         real not null,
    client_address     text not null,
    user_agent         text not null,
    flagged            text not null default '',
    revoked_at         real
);
create index if not exists app_sessions_user on app_sessions(user_id);
"""
_LIVE = " and revoked_at is null and expires_at > ? and last_seen_at > ?"
"""A live session: not revoked, within its lifetime, used within the idle timeout (see ``_live_args``)."""
_COLUMNS = "id, user_id, created_at, last_seen_at, expires_at, client_address, user_agent, flagged"


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqliteSessionStore:
    """The session store on SQLite (demo mode: the demo database file). Thread-safe: a connection per call."""

    def __init__(
        self,
        db_path: str | Path,
        cipher: TokenCipher,
        *,
        idle_timeout_s: float,
        lifetime_s: float,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._db_path = str(db_path)
        self._cipher = cipher
        self._idle_s = idle_timeout_s
        self._lifetime = timedelta(seconds=lifetime_s)
        self._now = clock or (lambda: datetime.now(UTC))
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    @property
    def lifetime_s(self) -> int:
        """The cookie's Max-Age: no longer than the session can live."""
        return int(self._lifetime.total_seconds())

    def open(self, session: Session, client: ClientInfo) -> tuple[str, str]:
        """Keep ``session`` for this browser: (the row's id, a one-time ticket for :meth:`claim`)."""
        now = self._now()
        row_id, ticket = str(uuid.uuid4()), secrets.token_urlsafe(SECRET_BYTES)
        with self._connect() as conn:
            conn.execute("delete from app_sessions where expires_at <= ?", (now.timestamp(),))
            conn.execute(
                "insert into app_sessions (id, user_id, ticket_hash, ticket_expires_at, tokens, created_at, "
                "last_seen_at, expires_at, client_address, user_agent) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row_id, session.user_id, secret_hash(ticket), now.timestamp() + TICKET_TTL_S,
                 self._cipher.encrypt(session), now.timestamp(), now.timestamp(),
                 (now + self._lifetime).timestamp(), client.address, client.user_agent[:USER_AGENT_CHARS]),
            )
        return row_id, ticket

    def claim(self, ticket: str) -> str | None:
        """The cookie's id for a live ticket (used up now), or None. Only the id's hash is kept."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        now = self._now().timestamp()
        with self._connect() as conn:
            row = conn.execute(
                "update app_sessions set secret_hash = ?, ticket_hash = null, ticket_expires_at = null "
                "where ticket_hash = ? and ticket_expires_at > ? and revoked_at is null returning id",
                (secret_hash(secret), secret_hash(ticket or ""), now),
            ).fetchone()
        if row is None:
            log.warning("session: a sign-in ticket was refused (unknown, used or expired)")
            return None
        return secret

    def resume(self, secret: str, client: ClientInfo) -> Resumed | None:
        """The live session behind a cookie's id, marked as seen now; None (and a log entry) otherwise.

        A session used from another address or browser than it was opened from is flagged (the
        Account page shows it, the log says it): a stolen cookie is at least visible.
        """
        with self._connect() as conn:
            row = conn.execute(
                f"select {_COLUMNS}, tokens from app_sessions where secret_hash = ?{_LIVE}",
                (secret_hash(secret or ""), *self._live_args()),
            ).fetchone()
            if row is None:
                log.warning("session: a session cookie was refused (unknown, revoked or expired); sign-in asked")
                return None
            flag = self._flag_for(row, client)
            conn.execute("update app_sessions set last_seen_at = ?, flagged = ? where id = ?",
                         (self._now().timestamp(), flag, row[0]))
        tokens = self._cipher.decrypt(row[8])
        if tokens is None:
            log.warning("session: stored tokens could not be decrypted (session key changed?); sign-in asked")
            return None
        return Resumed(_stored((*row[:7], flag)), *tokens)

    def touch(self, row_id: str) -> bool:
        """Whether the session is still live (not revoked, idle or expired); marks it as seen now."""
        with self._connect() as conn:
            cursor = conn.execute(
                f"update app_sessions set last_seen_at = ? where id = ?{_LIVE}",
                (self._now().timestamp(), row_id, *self._live_args()),
            )
        return cursor.rowcount == 1

    def save_tokens(self, row_id: str, session: Session) -> None:
        """Keep the tokens a refresh rotated, so the next tab resumes with the live pair."""
        with self._connect() as conn:
            conn.execute("update app_sessions set tokens = ? where id = ? and revoked_at is null",
                         (self._cipher.encrypt(session), row_id))

    def list_for(self, user_id: str) -> list[StoredSession]:
        """The user's live sessions, most recently used first."""
        with self._connect() as conn:
            rows = conn.execute(
                f"select {_COLUMNS} from app_sessions where user_id = ?{_LIVE} "
                "order by last_seen_at desc",
                (user_id, *self._live_args()),
            ).fetchall()
        return [_stored(row) for row in rows]

    def revoke(self, user_id: str, row_id: str) -> None:
        """End one of the user's sessions (another user's id does nothing)."""
        self._revoke("user_id = ? and id = ?", (user_id, row_id))

    def revoke_all(self, user_id: str) -> None:
        """End every session of the user (sign out everywhere)."""
        self._revoke("user_id = ?", (user_id,))

    def revoke_secret(self, secret: str) -> None:
        """End the session behind a cookie's id (the sign-out route: whatever the page did)."""
        self._revoke("secret_hash = ?", (secret_hash(secret or ""),))

    # -- internals --

    def _revoke(self, where: str, args: tuple[str, ...]) -> None:
        with self._connect() as conn:
            conn.execute(f"update app_sessions set revoked_at = ?, tokens = '' where {where} and revoked_at is null",
                         (self._now().timestamp(), *args))

    def _live_args(self) -> tuple[float, float]:
        now = self._now().timestamp()
        return now, now - self._idle_s

    @staticmethod
    def _flag_for(row: tuple, client: ClientInfo) -> str:
        return flag_reason(_stored(row[:8]), client)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self._db_path, timeout=10.0)) as conn, conn:
            yield conn


def _stored(row: tuple) -> StoredSession:
    return StoredSession(row[0], row[1], _ts(row[2]), _ts(row[3]), _ts(row[4]), row[5], row[6], row[7])


