"""Demo mode: :class:`DemoAuth`, accounts and sessions in the demo SQLite database."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lib.auth.base import (
    ADMIN_ROLE,
    DEFAULT_MARGIN_S,
    MSG_ACCOUNT_EXISTS,
    MSG_DEMO_NO_RESET,
    MSG_INVALID_CREDENTIALS,
    MSG_SESSION_EXPIRED,
    RESEARCHER_ROLE,
    Session,
    SignUpResult,
    check_new_password,
    check_password_given,
    ensure_fresh_session,
    normalize_email,
    throttled_sign_in,
)
from lib.errors import (
    AccountExists,
    AuthError,
    InvalidCredentials,
    SessionExpired,
)
from lib.throttle import SignInThrottle

log = logging.getLogger(__name__)

# --- demo ------------------------------------------------------------------------

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
DEMO_ACCESS_TTL_S = 3_600
"""Like Supabase's default JWT lifetime, so refresh paths run in demo mode too."""
DEMO_REFRESH_TTL_S = 7 * 86_400

_DEMO_SCHEMA = """
create table if not exists demo_accounts (
    id            text primary key,
    email         text not null unique check (email = lower(email)),
    password_hash blob not null,
    salt          blob not null,
    role          text not null default 'researcher' check (role in ('researcher', 'admin')),
    created_at    text not null
);
create table if not exists demo_sessions (
    id                 text primary key,
    user_id            text not null references demo_accounts(id) on delete cascade,
    access_hash        text not null unique,
    refresh_hash       text not null unique,
    access_expires_at  real not null,
    refresh_expires_at real not null,
    created_at         text not null
);
create index if not exists demo_sessions_user on demo_sessions(user_id);
"""


def hash_password(password: str, salt: bytes) -> bytes:
    """scrypt (memory-hard, standard library) with fixed, documented parameters."""
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_DKLEN
    )


def _token_hash(token: str) -> str:
    # Only hashes are stored: a copy of the demo database holds no live token.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_DUMMY_SALT = secrets.token_bytes(SALT_BYTES)


class DemoAuth:
    """:class:`AuthProvider` on the demo SQLite database (a file path).

    Thread-safe: every call opens its own connection, and token rotation is a
    single UPDATE, so concurrent Streamlit sessions cannot interleave.
    ``clock`` is for tests.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        throttle: SignInThrottle | None = None,
        access_ttl_s: float = DEMO_ACCESS_TTL_S,
        refresh_ttl_s: float = DEMO_REFRESH_TTL_S,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._db_path = str(db_path)
        self._throttle = throttle or SignInThrottle()
        self._access_ttl = timedelta(seconds=access_ttl_s)
        self._refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self._now = clock or (lambda: datetime.now(UTC))
        with self._connect() as conn:
            conn.executescript(_DEMO_SCHEMA)

    def sign_in(self, email: str, password: str, *, client_address: str | None = None) -> Session:
        email = normalize_email(email)
        check_password_given(password)
        return throttled_sign_in(self._throttle, email, client_address, lambda: self._sign_in(email, password))

    def _sign_in(self, email: str, password: str) -> Session:
        user_id = self._verify(email, password)
        if user_id is None:
            raise InvalidCredentials(MSG_INVALID_CREDENTIALS)
        return self._new_session(user_id, email)

    def sign_up(self, email: str, password: str) -> SignUpResult:
        email = normalize_email(email)
        check_new_password(password)
        user_id = self._create_account(email, password)
        return SignUpResult(session=self._new_session(user_id, email), needs_confirmation=False)

    def sign_out(self, session: Session) -> None:
        with self._connect() as conn:
            conn.execute(
                "delete from demo_sessions where access_hash = ? or refresh_hash = ?",
                (_token_hash(session.access_token), _token_hash(session.refresh_token)),
            )

    def request_password_reset(self, email: str) -> None:
        """Always refuses: demo mode has no e-mail to send a reset link with."""
        normalize_email(email)
        raise AuthError(MSG_DEMO_NO_RESET)

    def refresh(self, session: Session) -> Session:
        return self._rotate(session.refresh_token)

    def ensure_fresh(self, session: Session, *, margin_s: float = DEFAULT_MARGIN_S) -> Session:
        return ensure_fresh_session(self, session, margin_s, self._now())

    def resume(self, access_token: str, refresh_token: str) -> Session:
        """The session these tokens prove: kept while the access token has time left, else rotated."""
        now = self._now()
        with self._connect() as conn:
            row = conn.execute(
                "select s.user_id, a.email, s.access_expires_at, a.role from demo_sessions s "
                "join demo_accounts a on a.id = s.user_id where s.access_hash = ?",
                (_token_hash(access_token or ""),),
            ).fetchone()
        if row is not None and row[2] - now.timestamp() > DEFAULT_MARGIN_S:
            user_id, email, expires, role = row
            return Session(user_id, email, access_token, refresh_token, datetime.fromtimestamp(expires, UTC),
                           is_admin=role == ADMIN_ROLE)
        return self._rotate(refresh_token)

    def sign_out_everywhere(self, session: Session) -> None:
        """Delete every session of the user (the demo's GoTrue "global" sign-out)."""
        with self._connect() as conn:
            conn.execute(
                "delete from demo_sessions where user_id = (select user_id from demo_sessions where access_hash = ?)",
                (_token_hash(session.access_token),),
            )

    def ensure_account(self, email: str, password: str, *, role: str = RESEARCHER_ROLE) -> str:
        """The id of the account for ``email`` with this password and role, created if missing (idempotent).

        The server seeding the demo accounts is the only caller, and the only way an account's
        role is set. If the account exists with another password, the password is reset to
        ``password``, so the demo credentials shown on the sign-in page always work.
        """
        email = normalize_email(email)
        check_new_password(password)
        try:
            return self._create_account(email, password, role=role)
        except AccountExists:
            pass
        salt = secrets.token_bytes(SALT_BYTES)
        if self._verify(email, password) is not None:
            with self._connect() as conn:
                conn.execute("update demo_accounts set role = ? where email = ?", (role, email))
        else:
            with self._connect() as conn:
                conn.execute("update demo_accounts set password_hash = ?, salt = ?, role = ? where email = ?",
                             (hash_password(password, salt), salt, role, email))
        with self._connect() as conn:
            return conn.execute("select id from demo_accounts where email = ?", (email,)).fetchone()[0]

    # -- internals --

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call, committed on success (then closed)."""
        with closing(sqlite3.connect(self._db_path, timeout=10.0)) as conn:
            conn.execute("pragma foreign_keys = on")
            with conn:
                yield conn

    def _create_account(self, email: str, password: str, *, role: str = RESEARCHER_ROLE) -> str:
        user_id = str(uuid.uuid4())
        salt = secrets.token_bytes(SALT_BYTES)
        digest = hash_password(password, salt)
        try:
            with self._connect() as conn:
                conn.execute(
                    "insert into demo_accounts (id, email, password_hash, salt, role, created_at) "
                    "values (?, ?, ?, ?, ?, ?)",
                    (user_id, email, digest, salt, role, self._now().isoformat()),
                )
        except sqlite3.IntegrityError:
            raise AccountExists(MSG_ACCOUNT_EXISTS) from None
        return user_id

    def _verify(self, email: str, password: str) -> str | None:
        """The user id if the password is right; None otherwise (same work either way)."""
        with self._connect() as conn:
            row = conn.execute(
                "select id, password_hash, salt from demo_accounts where email = ?", (email,)
            ).fetchone()
        if row is None:
            # Hash anyway, so an unknown address takes as long as a wrong password.
            hmac.compare_digest(hash_password(password, _DUMMY_SALT), bytes(SCRYPT_DKLEN))
            return None
        user_id, stored, salt = row
        return user_id if hmac.compare_digest(hash_password(password, salt), stored) else None

    def _new_session(self, user_id: str, email: str) -> Session:
        now = self._now()
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = now + self._access_ttl
        with self._connect() as conn:
            conn.execute("delete from demo_sessions where refresh_expires_at <= ?", (now.timestamp(),))
            conn.execute(
                "insert into demo_sessions (id, user_id, access_hash, refresh_hash, access_expires_at, "
                "refresh_expires_at, created_at) values (?, ?, ?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), user_id, _token_hash(access), _token_hash(refresh),
                 expires_at.timestamp(), (now + self._refresh_ttl).timestamp(), now.isoformat()),
            )
            role = conn.execute("select role from demo_accounts where id = ?", (user_id,)).fetchone()[0]
        return Session(user_id, email, access, refresh, expires_at, is_admin=role == ADMIN_ROLE)

    def _rotate(self, refresh_token: str) -> Session:
        """New tokens for a live refresh token; the old pair stops working (single use)."""
        now = self._now()
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = now + self._access_ttl
        with self._connect() as conn:
            row = conn.execute(
                "update demo_sessions set access_hash = ?, refresh_hash = ?, access_expires_at = ?, "
                "refresh_expires_at = ? where refresh_hash = ? and refresh_expires_at > ? returning user_id",
                (_token_hash(access), _token_hash(refresh), expires_at.timestamp(),
                 (now + self._refresh_ttl).timestamp(), _token_hash(refresh_token or ""), now.timestamp()),
            ).fetchone()
            if row is None:
                raise SessionExpired(MSG_SESSION_EXPIRED)
            email, role = conn.execute("select email, role from demo_accounts where id = ?", (row[0],)).fetchone()
        return Session(row[0], email, access, refresh, expires_at, is_admin=role == ADMIN_ROLE)

