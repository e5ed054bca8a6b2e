"""Cloud mode's session store: ``public.app_sessions`` (sql/006) through the server's PostgREST client.

The only sessions module that loads postgrest, so demo mode never does.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from postgrest.types import ReturnMethod

from lib.auth import Session
from lib.repository.supabase import PostgrestRows
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

_PG_TABLE = "app_sessions"
"""sql/006_app_sessions.sql."""
_PG_COLUMNS = "id,user_id,created_at,last_seen_at,expires_at,client_address,user_agent,flagged"
"""What a :class:`StoredSession` is read from (the columns a user's own token may read, too)."""


class PostgrestSessionStore(PostgrestRows):
    """The session store in ``public.app_sessions`` (cloud mode), through the server's service-role
    PostgREST client (sql/006 says why that role: a cookie is resumed before any user token exists).

    The role is not limited by row-level security, so every statement names the verified user or
    the hash of the cookie or ticket itself. Times come from ``clock`` (the app servers' clocks,
    which a lab keeps in sync like any server's); the database compares them, so one statement
    decides whether a session is live and marks it used.
    """

    def __init__(
        self,
        client: Any,
        cipher: TokenCipher,
        *,
        idle_timeout_s: float,
        lifetime_s: float,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        self._cipher = cipher
        self._idle = timedelta(seconds=idle_timeout_s)
        self._lifetime = timedelta(seconds=lifetime_s)
        self._now = clock or (lambda: datetime.now(UTC))

    @property
    def lifetime_s(self) -> int:
        """The cookie's Max-Age: no longer than the session can live."""
        return int(self._lifetime.total_seconds())

    def open(self, session: Session, client: ClientInfo) -> tuple[str, str]:
        """Keep ``session`` for this browser: (the row's id, a one-time ticket for :meth:`claim`)."""
        now = self._now()
        row_id, ticket = str(uuid.uuid4()), secrets.token_urlsafe(SECRET_BYTES)
        self._run(self._table().delete(returning=ReturnMethod.minimal).lte("expires_at", now.isoformat()))
        self._run(self._table().insert({
            "id": row_id, "user_id": session.user_id, "ticket_hash": secret_hash(ticket),
            "ticket_expires_at": (now + timedelta(seconds=TICKET_TTL_S)).isoformat(),
            "tokens": self._cipher.encrypt(session), "created_at": now.isoformat(), "last_seen_at": now.isoformat(),
            "expires_at": (now + self._lifetime).isoformat(), "client_address": client.address,
            "user_agent": client.user_agent[:USER_AGENT_CHARS]}, returning=ReturnMethod.minimal))
        return row_id, ticket

    def claim(self, ticket: str) -> str | None:
        """The cookie's id for a live ticket (used up now), or None. Only the id's hash is kept."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        rows = self._rows(self._table().update({"secret_hash": secret_hash(secret), "ticket_hash": None,
                                                "ticket_expires_at": None})
                          .eq("ticket_hash", secret_hash(ticket or "")).gt("ticket_expires_at", self._now().isoformat())
                          .is_("revoked_at", "null"))
        if not rows:
            log.warning("session: a sign-in ticket was refused (unknown, used or expired)")
            return None
        return secret

    def resume(self, secret: str, client: ClientInfo) -> Resumed | None:
        """The live session behind a cookie's id, marked as seen now; None (and a log entry) otherwise.

        A session used from another address or browser than it was opened from is flagged.
        """
        rows = self._rows(self._live(self._table().select(f"{_PG_COLUMNS},tokens")
                                     .eq("secret_hash", secret_hash(secret or ""))))
        if not rows:
            log.warning("session: a session cookie was refused (unknown, revoked or expired); sign-in asked")
            return None
        stored = _pg_stored(rows[0])
        flag = flag_reason(stored, client)
        self._run(self._table().update({"last_seen_at": self._now().isoformat(), "flagged": flag},
                                       returning=ReturnMethod.minimal).eq("id", stored.id))
        tokens = self._cipher.decrypt(rows[0]["tokens"])
        if tokens is None:
            log.warning("session: stored tokens could not be decrypted (session key changed?); sign-in asked")
            return None
        return Resumed(replace(stored, flagged=flag), *tokens)

    def touch(self, row_id: str) -> bool:
        """Whether the session is still live (not revoked, idle or expired); marks it as seen now."""
        rows = self._rows(self._live(self._table().update({"last_seen_at": self._now().isoformat()})
                                     .eq("id", row_id)))
        return len(rows) == 1

    def save_tokens(self, row_id: str, session: Session) -> None:
        """Keep the tokens a refresh rotated, so the next tab resumes with the live pair."""
        self._run(self._table().update({"tokens": self._cipher.encrypt(session)}, returning=ReturnMethod.minimal)
                  .eq("id", row_id).is_("revoked_at", "null"))

    def list_for(self, user_id: str) -> list[StoredSession]:
        """The user's live sessions, most recently used first."""
        rows = self._rows(self._live(self._table().select(_PG_COLUMNS).eq("user_id", user_id))
                          .order("last_seen_at", desc=True))
        return [_pg_stored(row) for row in rows]

    def revoke(self, user_id: str, row_id: str) -> None:
        """End one of the user's sessions (another user's id does nothing)."""
        self._revoke(self._revoking().eq("user_id", user_id).eq("id", row_id))

    def revoke_all(self, user_id: str) -> None:
        """End every session of the user (sign out everywhere)."""
        self._revoke(self._revoking().eq("user_id", user_id))

    def revoke_secret(self, secret: str) -> None:
        """End the session behind a cookie's id (the sign-out route: whatever the page did)."""
        self._revoke(self._revoking().eq("secret_hash", secret_hash(secret or "")))

    # -- internals --

    def _table(self) -> Any:
        return self._client.from_(_PG_TABLE)

    def _live(self, builder: Any) -> Any:
        now = self._now()
        return (builder.is_("revoked_at", "null").gt("expires_at", now.isoformat())
                .gt("last_seen_at", (now - self._idle).isoformat()))

    def _revoking(self) -> Any:
        # sql/006's trigger wipes the tokens and hashes of a revoked row; saying so here too keeps the
        # store right on a database where the trigger was dropped.
        return self._table().update({"revoked_at": self._now().isoformat(), "tokens": "", "secret_hash": None},
                                    returning=ReturnMethod.minimal)

    def _revoke(self, builder: Any) -> None:
        self._run(builder.is_("revoked_at", "null"))


def _pg_stored(row: dict[str, Any]) -> StoredSession:
    return StoredSession(str(row["id"]), str(row["user_id"]), _iso(row["created_at"]), _iso(row["last_seen_at"]),
                         _iso(row["expires_at"]), row["client_address"], row["user_agent"], row["flagged"])


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)

