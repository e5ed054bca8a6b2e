"""Signing in: one :class:`AuthProvider` interface, two implementations.

* :class:`SupabaseAuth` (cloud mode) drives one supabase-py ``Client`` that
  belongs to one browser session. Signing in switches that client's PostgREST
  ``Authorization`` header to the user's JWT, so the metadata repository built
  on the same client runs as the user and row-level security decides.
* :class:`DemoAuth` (demo mode) keeps accounts and sessions in the demo SQLite
  database, with scrypt password hashes and opaque random tokens.

Who is an administrator comes from where only the server can write it: in
Supabase the user's ``app_metadata`` (``{"role": "admin"}``, set with the
service role or in the dashboard; a user can change ``user_metadata`` but never
``app_metadata``), read from GoTrue's answer when the session is made or
refreshed; in demo mode the account's ``role`` column, which only
:meth:`DemoAuth.ensure_account` (the server seeding accounts) sets. Never an
e-mail address: anyone can sign up with one that is not taken yet.

Password sign-ins in both go through one :class:`lib.throttle.SignInThrottle`
per process (per e-mail and per client address, with backoff).

Both raise the same :mod:`lib.errors` classes with the same messages, so the
sign-in page does not care which one it talks to. ``str(exc)`` says what
happened and what to do; it never carries a token, a password or a server
trace.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx
from supabase import Client, create_client
from supabase.lib.client_options import SyncClientOptions
from supabase_auth import SyncMemoryStorage
from supabase_auth import errors as sb_errors
from supabase_auth.helpers import decode_jwt
from supabase_auth.types import Session as SupabaseSession

from lib.errors import (
    AccountExists,
    AuthError,
    AuthUnavailable,
    EmailNotConfirmed,
    InvalidCredentials,
    PulseVaultError,
    RateLimited,
    SessionExpired,
    ValidationError,
)
from lib.settings import SupabaseSettings
from lib.throttle import SignInThrottle

log = logging.getLogger(__name__)

# --- user-facing messages (shared by both providers) -------------------------

MSG_INVALID_CREDENTIALS = (
    "That e-mail address and password don't match an account. Check both and try again."
)
MSG_EMAIL_NOT_CONFIRMED = (
    "Your e-mail address isn't confirmed yet. Open the confirmation link we e-mailed you, then sign in."
)
MSG_RATE_LIMITED = "Too many attempts in a short time. Wait a minute, then try again."
MSG_EMAIL_RATE_LIMITED = (
    "Too many e-mails were sent to this address recently. Wait a few minutes, then try again."
)
MSG_UNAVAILABLE = (
    "The sign-in service can't be reached right now. Check your network connection and try again "
    "in a moment."
)
MSG_ACCOUNT_EXISTS = (
    "An account with this e-mail address already exists. Sign in instead, or use Forgot password."
)
MSG_SESSION_EXPIRED = "Your session has expired. Please sign in again."
MSG_DEMO_NO_RESET = (
    "Demo accounts can't reset passwords: demo mode sends no e-mail. Sign in with the demo "
    "credentials shown on this page, or create a new account."
)
MSG_SIGNUP_DISABLED = (
    "Creating accounts is switched off for this PulseVault. Ask your lab's PulseVault admin to invite you."
)

MIN_PASSWORD_LENGTH = 8
"""Shortest password we accept at sign-up (Supabase's default minimum is 6)."""
MAX_PASSWORD_LENGTH = 256
"""Longest password we accept: bounds the work one sign-in request can cause."""
MAX_EMAIL_LENGTH = 254
"""RFC 5321's limit for a forward path."""
_EMAIL_SHAPE = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]+$")

ADMIN_ROLE = "admin"
"""``app_metadata.role`` (Supabase) or ``demo_accounts.role`` (demo) of an administrator."""
RESEARCHER_ROLE = "researcher"
"""The role of every account that was not made an administrator."""

DEFAULT_MARGIN_S = 60
"""Refresh when the access token has less than this left, so a page run never
starts with a token that expires half-way through it."""


# --- value objects and the interface -------------------------------------------


@dataclass(frozen=True)
class Session:
    """A signed-in user: who, and the tokens that prove it until ``expires_at``."""

    user_id: str
    email: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    """When the access token expires (UTC, timezone-aware)."""
    is_admin: bool = False
    """From the verified account's server-set role (module docstring), never from what the user typed."""

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None:
            raise ValueError("Session.expires_at must be timezone-aware")
        object.__setattr__(self, "expires_at", self.expires_at.astimezone(UTC))

    def expires_in_s(self, now: datetime | None = None) -> float:
        """Seconds until the access token expires (negative once it has)."""
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()

    @property
    def caller(self) -> Caller:
        return Caller(user_id=self.user_id, is_admin=self.is_admin)


@dataclass(frozen=True)
class Caller:
    """Who asks, as lib needs it for a decision: the verified session's user id and role, nothing it says."""

    user_id: str
    is_admin: bool = False


@dataclass(frozen=True)
class SignUpResult:
    session: Session | None
    """None when the project wants the e-mail address confirmed first."""
    needs_confirmation: bool


@runtime_checkable
class AuthProvider(Protocol):
    def sign_in(self, email: str, password: str, *, client_address: str | None = None) -> Session: ...

    def sign_up(self, email: str, password: str) -> SignUpResult: ...

    def sign_out(self, session: Session) -> None: ...

    def request_password_reset(self, email: str) -> None: ...

    def refresh(self, session: Session) -> Session: ...

    def ensure_fresh(self, session: Session, *, margin_s: float = DEFAULT_MARGIN_S) -> Session: ...

    def resume(self, access_token: str, refresh_token: str) -> Session: ...

    def sign_out_everywhere(self, session: Session) -> None: ...


def normalize_email(email: str) -> str:
    """The canonical (trimmed, lower-case) form of an e-mail address, or ValidationError."""
    email = (email or "").strip().lower()
    if not email:
        raise ValidationError("Enter your e-mail address.")
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL_SHAPE.match(email):
        raise ValidationError("That doesn't look like an e-mail address. Check it and try again.")
    return email


def check_new_password(password: str) -> None:
    """The sign-up password policy; raises ValidationError saying what to change."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters.")


def _check_password_given(password: str) -> None:
    if not password:
        raise ValidationError("Enter your password.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidCredentials(MSG_INVALID_CREDENTIALS)


def _throttled(throttle: SignInThrottle, email: str, client_address: str | None,
               attempt: Callable[[], Session]) -> Session:
    """Run one password check under the throttle: a wrong password counts, anything else is given back."""
    throttle.begin(email, client_address)
    try:
        session = attempt()
    except (InvalidCredentials, EmailNotConfirmed) as exc:
        if isinstance(exc, EmailNotConfirmed):  # the password was right
            throttle.succeeded(email, client_address)
        raise
    except BaseException:
        throttle.abandoned(email, client_address)
        raise
    throttle.succeeded(email, client_address)
    return session


def _ensure_fresh(
    provider: AuthProvider, session: Session, margin_s: float, now: datetime | None = None
) -> Session:
    left = session.expires_in_s(now)
    if left > margin_s:
        return session
    try:
        return provider.refresh(session)
    except (AuthUnavailable, RateLimited):
        if left <= 0:
            raise
        # The token still works: a network blip inside the margin should not
        # interrupt the page. The next run tries again.
        log.warning("token refresh failed; keeping the session for its last %.0f s", left)
        return session


# --- Supabase ------------------------------------------------------------------

SUPABASE_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""Connect fails fast (a wrong URL or no network shows within seconds); reads
allow for a slow metadata query. One value for auth and PostgREST: they share
the session's HTTP client."""


def new_supabase_client(settings: SupabaseSettings, *, timeout: httpx.Timeout = SUPABASE_TIMEOUT) -> Client:
    """A fresh supabase-py client for ONE browser session; keep it in ``st.session_state``.

    * ``persist_session=False`` and a fresh ``SyncMemoryStorage``: the signed-in
      session lives in this client object only, never in storage another
      browser session could read.
    * ``auto_refresh_token=False``: supabase-py would otherwise start a
      ``threading.Timer`` per client that refreshes the token in the
      background. Streamlit runs each browser session's script in its own
      thread, and that timer would mutate the client's headers concurrently
      with a running page (and keep refreshing for sessions whose tab is long
      closed). We refresh explicitly instead: :meth:`SupabaseAuth.ensure_fresh`
      at the start of each run, on the script thread.
    * One ``httpx.Client`` with explicit timeouts, owned by this Supabase
      client and shared by its auth and PostgREST parts. Headers (the user's
      JWT) are sent per request, not stored on the shared HTTP client.
    """
    options = SyncClientOptions(
        auto_refresh_token=False,
        persist_session=False,
        storage=SyncMemoryStorage(),
        httpx_client=httpx.Client(timeout=timeout, follow_redirects=True),
    )
    return create_client(settings.url, settings.anon_key, options)


class SupabaseAuth:
    """:class:`AuthProvider` over one supabase-py client (one per browser session)."""

    def __init__(self, client: Client, throttle: SignInThrottle | None = None) -> None:
        self._client = client
        self._throttle = throttle or SignInThrottle()
        # A page run and a callback of the same browser session may overlap;
        # refresh tokens are single-use, so two concurrent refreshes would race.
        self._lock = threading.RLock()

    @property
    def client(self) -> Client:
        """The client; after sign-in its PostgREST requests carry the user's JWT."""
        return self._client

    def sign_in(self, email: str, password: str, *, client_address: str | None = None) -> Session:
        email = normalize_email(email)
        _check_password_given(password)
        return _throttled(self._throttle, email, client_address, lambda: self._sign_in(email, password))

    def _sign_in(self, email: str, password: str) -> Session:
        with self._lock, _translated("sign_in"):
            response = self._client.auth.sign_in_with_password({"email": email, "password": password})
        if response.session is None:
            raise AuthError("Sign-in did not return a session. Try again.")
        return _from_supabase(response.session)

    def sign_up(self, email: str, password: str) -> SignUpResult:
        email = normalize_email(email)
        check_new_password(password)
        with self._lock, _translated("sign_up"):
            response = self._client.auth.sign_up({"email": email, "password": password})
        if response.session is not None:
            return SignUpResult(session=_from_supabase(response.session), needs_confirmation=False)
        # With confirmation on, Supabase answers a sign-up for a taken address
        # with a stand-in user that has no identities (it sends no e-mail).
        if response.user is not None and response.user.identities == []:
            raise AccountExists(MSG_ACCOUNT_EXISTS)
        return SignUpResult(session=None, needs_confirmation=True)

    def sign_out(self, session: Session) -> None:
        """Revoke this session's refresh token and forget the session locally.

        Local scope: the user's other devices stay signed in. If the revoke
        request fails (network), the session is still dropped here and the
        failure is logged: the refresh token never leaves this process.
        """
        with self._lock:
            held = self._held_session()
            if held is None or held.access_token != session.access_token:
                self._revoke(session.access_token)
            # Always: clears whatever session the client holds (its PostgREST
            # header goes back to the anon key) before revoking that one, so
            # even a failed request leaves the client signed out.
            try:
                self._client.auth.sign_out({"scope": "local"})
            except (sb_errors.AuthError, httpx.HTTPError) as exc:
                log.warning("sign-out: revoking the session failed (%s)", type(exc).__name__)

    def request_password_reset(self, email: str) -> None:
        """Ask Supabase to e-mail a reset link (it answers the same for unknown addresses)."""
        email = normalize_email(email)
        with self._lock, _translated("reset"):
            self._client.auth.reset_password_for_email(email)

    def refresh(self, session: Session) -> Session:
        with self._lock, _translated("refresh"):
            response = self._client.auth.refresh_session(session.refresh_token)
        if response.session is None:
            raise SessionExpired(MSG_SESSION_EXPIRED)
        return _from_supabase(response.session)

    def ensure_fresh(self, session: Session, *, margin_s: float = DEFAULT_MARGIN_S) -> Session:
        with self._lock:
            return _ensure_fresh(self, session, margin_s)

    def resume(self, access_token: str, refresh_token: str) -> Session:
        """Act as a session the server kept (lib.sessions): this client's requests carry its JWT from now on.

        A still-valid access token is checked with GoTrue (``/user``: a session GoTrue ended, by a sign-out
        elsewhere or a password change, is refused) and kept; an expiring one is refreshed, which rotates
        the refresh token: the caller stores the new one.
        """
        with self._lock:
            if _seconds_left(access_token) <= DEFAULT_MARGIN_S:
                with _translated("refresh"):
                    response = self._client.auth.refresh_session(refresh_token)
            else:
                with _translated("restore"):
                    response = self._client.auth.set_session(access_token, refresh_token)
        if response.session is None:
            raise SessionExpired(MSG_SESSION_EXPIRED)
        return _from_supabase(response.session)

    def sign_out_everywhere(self, session: Session) -> None:
        """End every one of the user's sessions at GoTrue (global scope: every device), this one included."""
        with self._lock:
            self._revoke(session.access_token, scope="global")
            try:
                self._client.auth.sign_out({"scope": "local"})
            except (sb_errors.AuthError, httpx.HTTPError) as exc:
                log.warning("sign-out everywhere: forgetting the session failed (%s)", type(exc).__name__)

    def _held_session(self) -> SupabaseSession | None:
        try:
            return self._client.auth.get_session()
        except (sb_errors.AuthError, httpx.HTTPError):
            return None

    def _revoke(self, access_token: str, scope: str = "local") -> None:
        try:
            self._client.auth.admin.sign_out(access_token, scope)
        except sb_errors.AuthApiError as exc:
            if exc.status not in (401, 403, 404):  # those mean: already signed out
                log.warning("sign-out: revoking the session failed (HTTP %s, %s)", exc.status, exc.code)
        except (sb_errors.AuthError, httpx.HTTPError) as exc:
            log.warning("sign-out: revoking the session failed (%s)", type(exc).__name__)


def _from_supabase(session: SupabaseSession) -> Session:
    expires_at = session.expires_at
    if expires_at is None:  # supabase-py fills it from expires_in; belt and braces
        expires_at = int(datetime.now(UTC).timestamp()) + session.expires_in
    # app_metadata, never user_metadata: users can write the latter themselves (sign-up data, update_user).
    app_metadata = session.user.app_metadata or {}
    return Session(
        user_id=session.user.id,
        email=(session.user.email or "").lower(),
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        is_admin=app_metadata.get("role") == ADMIN_ROLE,
    )


def _claims(access_token: str) -> dict:
    """The claims of a JWT the sign-in service gave us (not verified: read only for its expiry)."""
    try:
        return dict(decode_jwt(access_token)["payload"])
    except sb_errors.AuthInvalidJwtError:
        return {}


def _seconds_left(access_token: str) -> float:
    return float(_claims(access_token).get("exp") or 0) - datetime.now(UTC).timestamp()


@contextmanager
def _translated(during: str) -> Iterator[None]:
    """Turn supabase-py and httpx errors into lib.errors with actionable messages."""
    try:
        yield
    except PulseVaultError:
        raise
    except (sb_errors.AuthError, httpx.HTTPError) as exc:
        translated = translate_supabase_error(exc, during=during)
        log.info(
            "auth %s failed: %s status=%s code=%s -> %s", during, type(exc).__name__,
            getattr(exc, "status", None), getattr(exc, "code", None), type(translated).__name__,
        )
        raise translated from None


_RATE_LIMIT_CODES = frozenset(
    {"over_request_rate_limit", "over_email_send_rate_limit", "over_sms_send_rate_limit"}
)
_EXISTS_CODES = frozenset({"user_already_exists", "email_exists", "identity_already_exists"})
_INVALID_INPUT_CODES = frozenset({"email_address_invalid", "validation_failed"})
_SESSION_GONE = (sb_errors.AuthSessionMissingError, sb_errors.UserDoesntExist, sb_errors.AuthInvalidJwtError)


def translate_supabase_error(exc: Exception, *, during: str) -> AuthError | ValidationError:
    """The lib.errors exception for a supabase-py / httpx failure during ``during``.

    ``during`` is one of "sign_in", "sign_up", "reset", "refresh", "restore".
    """
    if isinstance(exc, httpx.HTTPError | sb_errors.AuthRetryableError | sb_errors.AuthUnknownError):
        return AuthUnavailable(MSG_UNAVAILABLE)
    status: int | None = getattr(exc, "status", None)
    code: str | None = getattr(exc, "code", None)
    message = str(getattr(exc, "message", "") or "")
    if status == 429 or code in _RATE_LIMIT_CODES:
        email_limit = code == "over_email_send_rate_limit"
        return RateLimited(MSG_EMAIL_RATE_LIMITED if email_limit else MSG_RATE_LIMITED)
    session_gone = isinstance(exc, _SESSION_GONE) or status in (400, 401, 403, 404)
    if during in ("refresh", "restore") and session_gone:
        return SessionExpired(MSG_SESSION_EXPIRED)
    if code == "email_not_confirmed" or "email not confirmed" in message.lower():
        return EmailNotConfirmed(MSG_EMAIL_NOT_CONFIRMED)
    if code in _EXISTS_CODES:
        return AccountExists(MSG_ACCOUNT_EXISTS)
    if isinstance(exc, sb_errors.AuthWeakPasswordError) or code == "weak_password":
        return ValidationError(f"That password is too weak ({message}). Choose a stronger one.")
    if code in _INVALID_INPUT_CODES:
        return ValidationError(f"The sign-in service rejected that input ({message}). Check it, try again.")
    if code == "signup_disabled":
        return AuthError(MSG_SIGNUP_DISABLED)
    # Older GoTrue versions send a bare 400 "invalid_grant" for a wrong password.
    if during == "sign_in" and (code == "invalid_credentials" or (code is None and status == 400)):
        return InvalidCredentials(MSG_INVALID_CREDENTIALS)
    if status is not None and status >= 500:
        return AuthUnavailable(MSG_UNAVAILABLE)
    return AuthError(
        f"The sign-in service refused the request ({message or 'no reason given'}). Try again; if it "
        "keeps happening, tell your lab's PulseVault admin."
    )


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
        _check_password_given(password)
        return _throttled(self._throttle, email, client_address, lambda: self._sign_in(email, password))

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
        return _ensure_fresh(self, session, margin_s, self._now())

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
