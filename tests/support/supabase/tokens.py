"""The project's JWTs: the two API keys, user access tokens, and how each service verifies them.

Supabase signs everything with one HS256 secret. The API keys carry a role
and no audience; GoTrue's access tokens carry ``aud: authenticated``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

USER_AUDIENCE = "authenticated"
"""GoTrue's ``GOTRUE_JWT_AUD``: the audience of every access token it issues."""
USER_ROLE = "authenticated"
API_KEY_LIFETIME_S = 10 * 365 * 86400
"""Supabase's API keys are valid for about ten years."""


@dataclass(frozen=True)
class ProjectKeys:
    """The signing secret and the two API keys made from it (``repr`` shows none of them)."""

    secret: str = field(repr=False)
    anon_key: str = field(repr=False)
    service_role_key: str = field(repr=False)

    @classmethod
    def create(cls, secret: str | None = None) -> ProjectKeys:
        secret = secret or secrets.token_urlsafe(32)
        return cls(secret, _api_key(secret, "anon"), _api_key(secret, "service_role"))

    def is_api_key(self, key: str) -> bool:
        """Only the project's own two keys open the gateway, not any token signed with the secret."""
        return any(hmac.compare_digest(key.encode(), known.encode())
                   for known in (self.anon_key, self.service_role_key))

    def verify(self, token: str) -> dict[str, Any]:
        """Signature and expiry checked; raises ``jwt.PyJWTError``. Each service checks ``aud`` its own way."""
        return jwt.decode(token, self.secret, algorithms=["HS256"], options={"verify_aud": False})

    def access_token(self, claims: dict[str, Any], lifetime_s: int) -> tuple[str, int]:
        """A user's access token as GoTrue issues it; returns (token, expires_at)."""
        now = int(time.time())
        full = {"aud": USER_AUDIENCE, "role": USER_ROLE, "iat": now, "exp": now + lifetime_s, **claims}
        return jwt.encode(full, self.secret, algorithm="HS256"), now + lifetime_s


def _api_key(secret: str, role: str) -> str:
    now = int(time.time())
    claims = {"iss": "supabase-standin", "role": role, "iat": now, "exp": now + API_KEY_LIFETIME_S}
    return jwt.encode(claims, secret, algorithm="HS256")


def audience_of(claims: dict[str, Any]) -> list[str] | None:
    """The ``aud`` claim as a list (a string is a list of one), None when absent.

    Raises ValueError when it is neither a string nor a list of strings.
    """
    aud = claims.get("aud")
    if aud is None:
        return None
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    raise ValueError("the aud claim must be a string or an array of strings")
