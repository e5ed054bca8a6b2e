"""GoTrue (``/auth/v1``): password sign-in, refresh, sign-up, the current user, sign-out, recovery,
and the admin user endpoints that the service-role key opens.

Accounts live in the test database's ``auth.users``; sessions and refresh
tokens live in memory. Errors carry GoTrue's status, ``code`` and ``msg``
(github.com/supabase/auth, internal/api): ``invalid_credentials``,
``email_not_confirmed``, ``user_already_exists``, ``weak_password``,
``over_request_rate_limit``, ``refresh_token_not_found``, ``bad_jwt``...
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

from tests.support.supabase.database import Accounts, normalise_email, verify_password
from tests.support.supabase.protocol import API_VERSION, Request, Response, gotrue_error
from tests.support.supabase.tokens import USER_AUDIENCE, ProjectKeys, audience_of

DEFAULT_LIFETIME_S = 3600
"""GoTrue's default ``GOTRUE_JWT_EXP``: access tokens live an hour."""
REFRESH_REUSE_INTERVAL_S = 10
"""GoTrue lets a just-rotated refresh token be reused this long (parallel tabs, timers)."""
MIN_PASSWORD_LENGTH = 6
"""GoTrue's default ``GOTRUE_PASSWORD_MIN_LENGTH``."""
EMAIL_FORMAT = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ADMIN_ROLES = frozenset({"service_role", "supabase_admin"})
"""GoTrue's ``GOTRUE_JWT_ADMIN_ROLES``: whose bearer token opens ``/admin``."""
ADMIN_CREATE_ATTRIBUTES = frozenset({"email", "password", "email_confirm", "user_metadata"})
"""What the stand-in's admin create understands; any other attribute is refused rather than ignored."""
ADMIN_UPDATE_ATTRIBUTES = frozenset({"email_confirm", "app_metadata"})
"""What the stand-in's admin update understands (confirming an address; app_metadata, merged as GoTrue does)."""

Route = Callable[[Request], tuple[int, Any]]


@dataclass
class RefreshToken:
    user_id: str
    session_id: str
    revoked_at: float | None = None


@dataclass
class GoTrueState:
    """Switches and in-memory sessions, guarded by ``lock``."""

    access_token_lifetime_s: int = DEFAULT_LIFETIME_S
    rate_limited: bool = False
    require_confirmation: bool = False
    """``GOTRUE_MAILER_AUTOCONFIRM=false``: sign-up sends a confirmation e-mail instead of signing in."""
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    recovery_requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.access_token_lifetime_s = DEFAULT_LIFETIME_S
            self.rate_limited = False
            self.require_confirmation = False
            self.refresh_tokens.clear()
            self.sessions.clear()
            self.recovery_requests.clear()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def user_json(row: dict[str, Any], *, identities: bool = True) -> dict[str, Any]:
    """An ``auth.users`` row as GoTrue's user object."""
    user_id = str(row["id"])
    created = _iso(row["created_at"])
    confirmed = _iso(row.get("email_confirmed_at"))
    identity = {
        "id": user_id, "identity_id": str(uuid.uuid5(uuid.NAMESPACE_URL, user_id)), "user_id": user_id,
        "identity_data": {"email": row["email"], "sub": user_id, "email_verified": confirmed is not None},
        "provider": "email", "created_at": created, "last_sign_in_at": _iso(row.get("last_sign_in_at")),
        "updated_at": _iso(row.get("updated_at")),
    }
    return {
        "id": user_id, "aud": row.get("aud") or USER_AUDIENCE, "role": "authenticated", "email": row["email"],
        "phone": "", "email_confirmed_at": confirmed, "confirmed_at": confirmed,
        "confirmation_sent_at": _iso(row.get("confirmation_sent_at")),
        "last_sign_in_at": _iso(row.get("last_sign_in_at")),
        "app_metadata": row.get("raw_app_meta_data") or {"provider": "email", "providers": ["email"]},
        "user_metadata": row.get("raw_user_meta_data") or {},
        "identities": [identity] if identities else [],
        "created_at": created, "updated_at": _iso(row.get("updated_at")), "is_anonymous": False,
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class GoTrue:
    """The auth service: ``handle`` answers one request below ``/auth/v1/``."""

    def __init__(self, accounts: Accounts, keys: ProjectKeys, issuer: str) -> None:
        self.accounts = accounts
        self.keys = keys
        self.issuer = issuer
        self.state = GoTrueState()
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", "token"): self._token,
            ("POST", "signup"): self._signup,
            ("GET", "user"): self._get_user,
            ("POST", "logout"): self._logout,
            ("POST", "recover"): self._recover,
            ("GET", "health"): lambda _: (200, {"name": "GoTrue", "version": "standin"}),
            ("POST", "admin/users"): self._admin_create_user,
        }

    def handle(self, request: Request) -> Response:
        route = self._routes.get((request.method, request.path))
        if route is None and request.path.startswith("admin/users/"):
            route = self._admin_user
        if route is None:
            raise gotrue_error(404, "not_found",
                               f"{request.method} /auth/v1/{request.path} is not part of the stand-in")
        status, body = route(request)
        return status, body, {"X-Supabase-Api-Version": API_VERSION}

    # --- tokens and sessions ---------------------------------------------------

    def access_token(self, user_id: str, email: str, session_id: str,
                     lifetime_s: int | None = None, *, user: dict[str, Any] | None = None) -> tuple[str, int, int]:
        """(token, lifetime, expires_at) with GoTrue's claims; ``user`` (its ``auth.users`` row) gives the
        app_metadata and user_metadata claims, as GoTrue copies them into every token it issues."""
        lifetime = self.state.access_token_lifetime_s if lifetime_s is None else lifetime_s
        now = int(time.time())
        token, expires_at = self.keys.access_token({
            "iss": self.issuer, "sub": user_id, "email": email, "phone": "",
            "app_metadata": (user or {}).get("raw_app_meta_data") or {"provider": "email", "providers": ["email"]},
            "user_metadata": (user or {}).get("raw_user_meta_data") or {},
            "aal": "aal1", "amr": [{"method": "password", "timestamp": now}], "session_id": session_id,
            "is_anonymous": False,
        }, lifetime)
        return token, lifetime, expires_at

    def _new_session(self, user: dict[str, Any]) -> dict[str, Any]:
        session_id = str(uuid.uuid4())
        with self.state.lock:
            self.state.sessions.add(session_id)
        return self._session_json(user, session_id)

    def _session_json(self, user: dict[str, Any], session_id: str) -> dict[str, Any]:
        user_id = str(user["id"])
        self.accounts.touch_sign_in(user_id)
        refresh = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.refresh_tokens[refresh] = RefreshToken(user_id, session_id)
        fresh = self.accounts.find(user_id=user_id) or user
        access, lifetime, expires_at = self.access_token(user_id, user.get("email") or "", session_id, user=fresh)
        return {"access_token": access, "token_type": "bearer", "expires_in": lifetime, "expires_at": expires_at,
                "refresh_token": refresh, "user": user_json(fresh)}

    def _require_not_limited(self, code: str = "over_request_rate_limit") -> None:
        if self.state.rate_limited:
            message = "email rate limit exceeded" if code == "over_email_send_rate_limit" else \
                "Request rate limit reached"
            raise gotrue_error(429, code, message)

    # --- public endpoints ------------------------------------------------------

    def _token(self, request: Request) -> tuple[int, Any]:
        self._require_not_limited()
        grant, body = request.query.get("grant_type"), request.json_object()
        if grant == "password":
            return 200, self._password_grant(body)
        if grant == "refresh_token":
            return 200, self._refresh_grant(str(body.get("refresh_token") or ""))
        raise gotrue_error(400, "validation_failed", "unsupported_grant_type")

    def _password_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        email, password = str(body.get("email") or ""), str(body.get("password") or "")
        user = self.accounts.find(email=email) if email else None
        if user is None or not verify_password(password, user["encrypted_password"]):
            raise gotrue_error(400, "invalid_credentials", "Invalid login credentials")
        if user["email_confirmed_at"] is None:
            raise gotrue_error(400, "email_not_confirmed", "Email not confirmed")
        return self._new_session(user)

    def _refresh_grant(self, token: str) -> dict[str, Any]:
        not_found = gotrue_error(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        with self.state.lock:
            record = self.state.refresh_tokens.get(token)
            if record is None or record.session_id not in self.state.sessions:
                raise not_found
            now = time.time()
            if record.revoked_at is not None and now - record.revoked_at > REFRESH_REUSE_INTERVAL_S:
                raise gotrue_error(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
            record.revoked_at = record.revoked_at or now
        user = self.accounts.find(user_id=record.user_id)
        if user is None:
            raise not_found
        return self._session_json(user, record.session_id)

    def _signup(self, request: Request) -> tuple[int, Any]:
        self._require_not_limited("over_email_send_rate_limit")
        body = request.json_object()
        email, password = normalise_email(str(body.get("email") or "")), str(body.get("password") or "")
        _validate_email(email)
        _validate_password(password)
        confirm = self.state.require_confirmation
        existing = self.accounts.find(email=email)
        if existing is None:
            user = self.accounts.create(email, password, confirmed=not confirm, metadata=body.get("data"))
        elif not confirm:
            raise gotrue_error(422, "user_already_exists", "User already registered")
        elif existing["email_confirmed_at"] is not None:
            # GoTrue hides a confirmed account when confirmation is on: a made-up user, no identities.
            fake = {**existing, "id": uuid.uuid4(), "email_confirmed_at": None, "last_sign_in_at": None,
                    "confirmation_sent_at": datetime.now(UTC)}
            return 200, user_json(fake, identities=False)
        else:
            # Not confirmed yet: GoTrue sends the confirmation e-mail again and answers with the account.
            self.accounts.resend_confirmation(str(existing["id"]))
            user = self.accounts.find(user_id=str(existing["id"])) or existing
        return 200, (user_json(user) if confirm else self._new_session(user))

    def _get_user(self, request: Request) -> tuple[int, Any]:
        user, claims = self._authenticated(request)
        try:
            audience = audience_of(claims) or []
        except ValueError:
            audience = []
        if not audience or audience[0] != USER_AUDIENCE:
            raise gotrue_error(400, "validation_failed", "Token audience doesn't match request audience")
        return 200, user_json(user)

    def _logout(self, request: Request) -> tuple[int, Any]:
        user, claims = self._authenticated(request)
        scope, own_session = request.query.get("scope", "global"), claims["session_id"]
        state = self.state
        with state.lock:
            mine = {t.session_id for t in state.refresh_tokens.values() if t.user_id == str(user["id"])}
            ended = {"local": {own_session}, "others": mine - {own_session}}.get(scope, mine | {own_session})
            state.sessions -= ended
            for token in [t for t, r in state.refresh_tokens.items() if r.session_id in ended]:
                del state.refresh_tokens[token]
        return 204, None

    def _recover(self, request: Request) -> tuple[int, Any]:
        self._require_not_limited("over_email_send_rate_limit")
        with self.state.lock:
            self.state.recovery_requests.append(normalise_email(str(request.json_object().get("email") or "")))
        return 200, {}

    def _authenticated(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """The bearer's account and claims, checked in GoTrue's order: token, sub, user, session."""
        claims = self._bearer_claims(request)
        subject = str(claims.get("sub") or "")
        if not subject:
            raise gotrue_error(403, "bad_jwt", "invalid claim: missing sub claim")
        if not _is_uuid(subject):
            raise gotrue_error(400, "bad_jwt", "invalid claim: sub claim must be a UUID")
        user = self.accounts.find(user_id=subject)
        if user is None:
            raise gotrue_error(403, "user_not_found", "User from sub claim in JWT does not exist")
        with self.state.lock:
            active = claims.get("session_id") in self.state.sessions
        if not active:
            raise gotrue_error(403, "session_not_found", "Session from session_id claim in JWT does not exist")
        return user, claims

    def _bearer_claims(self, request: Request) -> dict[str, Any]:
        token = request.bearer()
        if not token:
            raise gotrue_error(401, "no_authorization", "This endpoint requires a Bearer token")
        try:
            return self.keys.verify(token)
        except jwt.ExpiredSignatureError:
            raise gotrue_error(403, "bad_jwt", "invalid JWT: unable to parse or verify signature, "
                                               "token has invalid claims: token is expired") from None
        except jwt.PyJWTError:
            raise gotrue_error(403, "bad_jwt", "invalid JWT: unable to parse or verify signature") from None

    # --- admin (service-role bearer) --------------------------------------------

    def _require_admin(self, request: Request, understood: frozenset[str]) -> dict[str, Any]:
        """The body of an admin request, once the bearer is an admin and every attribute is understood."""
        body = request.json_object()
        if self._bearer_claims(request).get("role") not in ADMIN_ROLES:
            raise gotrue_error(403, "not_admin", "User not allowed")
        unknown = sorted(set(body) - understood)
        if unknown:
            raise gotrue_error(400, "validation_failed", f"the stand-in does not support {', '.join(unknown)}")
        return body

    def _admin_create_user(self, request: Request) -> tuple[int, Any]:
        body = self._require_admin(request, ADMIN_CREATE_ATTRIBUTES)
        email = normalise_email(str(body.get("email") or ""))
        if not email:
            raise gotrue_error(422, "validation_failed", "Cannot create a user without either an email or phone")
        _validate_email(email)
        if self.accounts.find(email=email) is not None:
            raise gotrue_error(422, "email_exists", "A user with this email address has already been registered")
        password = str(body.get("password") or secrets.token_urlsafe(32))
        _validate_password(password)
        user = self.accounts.create(email, password, confirmed=bool(body.get("email_confirm")),
                                    metadata=body.get("user_metadata"))
        return 200, user_json(user)

    def _admin_user(self, request: Request) -> tuple[int, Any]:
        """``GET`` or ``PUT /admin/users/<id>``; ``email_confirm: true`` confirms the address, ``app_metadata``
        is merged into the user's (what only the service role can set: PulseVault's admin role)."""
        body = self._require_admin(request, ADMIN_UPDATE_ATTRIBUTES)
        user_id = request.path.removeprefix("admin/users/")
        if not _is_uuid(user_id):
            raise gotrue_error(400, "validation_failed", "user_id must be an UUID")
        user = self.accounts.find(user_id=user_id)
        if user is None:
            raise gotrue_error(404, "user_not_found", "User not found")
        if request.method == "PUT":
            if body.get("email_confirm"):
                self.accounts.confirm(user_id=user_id)
            if isinstance(body.get("app_metadata"), dict):
                self.accounts.merge_app_metadata(user_id, body["app_metadata"])
            user = self.accounts.find(user_id=user_id) or user
        elif request.method != "GET":
            raise gotrue_error(405, "method_not_allowed", f"{request.method} is not supported by the stand-in")
        return 200, user_json(user)


def _validate_email(email: str) -> None:
    if not EMAIL_FORMAT.fullmatch(email):
        raise gotrue_error(400, "validation_failed", "Unable to validate email address: invalid format")


def _validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise gotrue_error(422, "weak_password", f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                           weak_password={"reasons": ["length"]})

