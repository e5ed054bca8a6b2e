"""Browser sessions the server keeps, so a reload, a new tab or a deep link stays signed in.

The browser holds one HttpOnly cookie with an opaque random id (:data:`SESSION_COOKIE`); the
server keeps the rest: who, the sign-in service's tokens encrypted with a key from settings
(:class:`TokenCipher`), when it was created and last used, and from which address and browser.
A session ends at sign-out (revoked), after :attr:`Settings.session_idle_timeout_s` unused, or
:attr:`Settings.session_lifetime_s` after sign-in, whichever comes first.

Two stores keep the same rows the same way (:class:`SessionStore`): :class:`SqliteSessionStore`
in demo mode, :class:`PostgrestSessionStore` in cloud mode (``public.app_sessions``, sql/006), so
a session outlives an app restart and any app process of the lab can resume it.

Sign-in happens over Streamlit's websocket, which cannot set a cookie, so it goes in two steps:
the sign-in page :meth:`SessionStore.open`\\ s a session and gets a one-time ticket (valid
:data:`TICKET_TTL_S`); the browser posts the ticket to the app's own route
(:mod:`lib.session_routes`), whose answer sets the cookie. Only a hash of the cookie's id and of
the ticket is stored: a copy of the database alone does not let anyone act as a user.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from postgrest.types import ReturnMethod

from lib.auth import Session
from lib.repository.supabase import PostgrestRows

log = logging.getLogger(__name__)

SESSION_COOKIE = "pulsevault_session"
"""The one cookie PulseVault sets: an opaque random id, HttpOnly, never a token."""
TICKET_TTL_S = 60
"""How long the sign-in page's one-time ticket can be exchanged for the cookie."""
SECRET_BYTES = 32
"""Entropy of a cookie id and of a ticket (256 bits: not guessable)."""
USER_AGENT_CHARS = 300
"""Stored user agents are cut to this length (a header is the client's to make up)."""

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


class TokenCipher:
    """Encrypts the sign-in service's tokens at rest (Fernet: AES-128-CBC with HMAC-SHA256).

    ``keys``: the first encrypts, every one decrypts, so a key can be rotated without signing
    everyone out. Any string of at least 32 random characters is a key (settings check that):
    it is stretched to Fernet's key format with SHA-256.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        fernets = [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys]
        if not fernets:
            raise ValueError("TokenCipher needs at least one key")
        self._fernet = MultiFernet(fernets)

    @classmethod
    def for_process(cls) -> TokenCipher:
        """A key that lives as long as this process (demo mode: its sessions do not outlive it either)."""
        return cls([secrets.token_urlsafe(SECRET_BYTES)])

    def encrypt(self, session: Session) -> str:
        plain = json.dumps({"access": session.access_token, "refresh": session.refresh_token})
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, blob: str) -> tuple[str, str] | None:
        """(access token, refresh token), or None for a blob no current key opens (key rotated away, tampered)."""
        try:
            tokens = json.loads(self._fernet.decrypt(blob.encode()))
        except (InvalidToken, ValueError):
            return None
        return tokens["access"], tokens["refresh"]


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, as the server saw it."""

    address: str
    user_agent: str


@dataclass(frozen=True)
class StoredSession:
    """One signed-in browser, as the Account page lists it (no secret in it)."""

    id: str
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    """The absolute end (lifetime); it ends earlier after the idle timeout."""
    client_address: str
    user_agent: str
    flagged: str
    """Why this session looks odd (used from another address or browser), or empty."""


@dataclass(frozen=True)
class Resumed:
    """A live session found from a cookie: the row and the tokens to act as its user."""

    stored: StoredSession
    access_token: str
    refresh_token: str


class SessionStore(Protocol):
    """Where the server keeps signed-in browsers' sessions (SQLite in demo mode, PostgREST in cloud mode)."""

    @property
    def lifetime_s(self) -> int: ...

    def open(self, session: Session, client: ClientInfo) -> tuple[str, str]: ...

    def claim(self, ticket: str) -> str | None: ...

    def resume(self, secret: str, client: ClientInfo) -> Resumed | None: ...

    def touch(self, row_id: str) -> bool: ...

    def save_tokens(self, row_id: str, session: Session) -> None: ...

    def list_for(self, user_id: str) -> list[StoredSession]: ...

    def revoke(self, user_id: str, row_id: str) -> None: ...

    def revoke_all(self, user_id: str) -> None: ...

    def revoke_secret(self, secret: str) -> None: ...


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


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
                (row_id, session.user_id, _hash(ticket), now.timestamp() + TICKET_TTL_S,
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
                (_hash(secret), _hash(ticket or ""), now),
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
                (_hash(secret or ""), *self._live_args()),
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
        self._revoke("secret_hash = ?", (_hash(secret or ""),))

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
        return _flag(_stored(row[:8]), client)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self._db_path, timeout=10.0)) as conn, conn:
            yield conn


def _stored(row: tuple) -> StoredSession:
    return StoredSession(row[0], row[1], _ts(row[2]), _ts(row[3]), _ts(row[4]), row[5], row[6], row[7])


def _flag(stored: StoredSession, client: ClientInfo) -> str:
    """Why ``stored`` looks odd when ``client`` uses it (kept once set), logged the first time."""
    reasons = []
    if client.address != stored.client_address:
        reasons.append(f"used from {client.address}")
    if client.user_agent[:USER_AGENT_CHARS] != stored.user_agent:
        reasons.append("used from another browser")
    if reasons and not stored.flagged:
        log.warning("session %s flagged: %s, not where it was opened", stored.id, " and ".join(reasons))
    return stored.flagged or "; ".join(reasons)


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
            "id": row_id, "user_id": session.user_id, "ticket_hash": _hash(ticket),
            "ticket_expires_at": (now + timedelta(seconds=TICKET_TTL_S)).isoformat(),
            "tokens": self._cipher.encrypt(session), "created_at": now.isoformat(), "last_seen_at": now.isoformat(),
            "expires_at": (now + self._lifetime).isoformat(), "client_address": client.address,
            "user_agent": client.user_agent[:USER_AGENT_CHARS]}, returning=ReturnMethod.minimal))
        return row_id, ticket

    def claim(self, ticket: str) -> str | None:
        """The cookie's id for a live ticket (used up now), or None. Only the id's hash is kept."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        rows = self._rows(self._table().update({"secret_hash": _hash(secret), "ticket_hash": None,
                                                "ticket_expires_at": None})
                          .eq("ticket_hash", _hash(ticket or "")).gt("ticket_expires_at", self._now().isoformat())
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
                                     .eq("secret_hash", _hash(secret or ""))))
        if not rows:
            log.warning("session: a session cookie was refused (unknown, revoked or expired); sign-in asked")
            return None
        stored = _pg_stored(rows[0])
        flag = _flag(stored, client)
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
        self._revoke(self._revoking().eq("secret_hash", _hash(secret or "")))

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


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_device(user_agent: str) -> str:
    """A person's name for a browser ("Chrome on Linux") from its user agent. Only names from the lists
    above come out: the header is the client's to make up, and the Account page shows the result."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "unknown browser"
