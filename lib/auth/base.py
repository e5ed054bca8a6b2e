"""The interface, values, messages and rules both sign-in providers share."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from lib.errors import (
    AuthUnavailable,
    EmailNotConfirmed,
    InvalidCredentials,
    RateLimited,
    ValidationError,
)
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


def check_password_given(password: str) -> None:
    """Refuse an empty or over-long password before any work is spent on it."""
    if not password:
        raise ValidationError("Enter your password.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidCredentials(MSG_INVALID_CREDENTIALS)


def throttled_sign_in(throttle: SignInThrottle, email: str, client_address: str | None,
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


def ensure_fresh_session(
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


