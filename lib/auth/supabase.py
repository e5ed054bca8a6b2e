"""Cloud mode: :class:`SupabaseAuth`, one supabase-py client per browser session.

The only module of lib.auth that loads supabase-py (about half a second and 30 MB), so demo mode never does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from supabase import Client, create_client
from supabase.lib.client_options import SyncClientOptions
from supabase_auth import SyncMemoryStorage
from supabase_auth import errors as sb_errors
from supabase_auth.helpers import decode_jwt
from supabase_auth.types import Session as SupabaseSession

from lib.auth.base import (
    ADMIN_ROLE,
    DEFAULT_MARGIN_S,
    MSG_ACCOUNT_EXISTS,
    MSG_EMAIL_NOT_CONFIRMED,
    MSG_EMAIL_RATE_LIMITED,
    MSG_INVALID_CREDENTIALS,
    MSG_RATE_LIMITED,
    MSG_SESSION_EXPIRED,
    MSG_SIGNUP_DISABLED,
    MSG_UNAVAILABLE,
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
        check_password_given(password)
        return throttled_sign_in(self._throttle, email, client_address, lambda: self._sign_in(email, password))

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
            return ensure_fresh_session(self, session, margin_s)

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


