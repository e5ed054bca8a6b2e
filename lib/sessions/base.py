"""What both session stores share: the cookie and ticket rules, the token cipher, the values and the
:class:`SessionStore` interface, and how a session that moved looks."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from lib.auth import Session

log = logging.getLogger(__name__)

SESSION_COOKIE = "pulsevault_session"
"""The one cookie PulseVault sets: an opaque random id, HttpOnly, never a token."""
TICKET_TTL_S = 60
"""How long the sign-in page's one-time ticket can be exchanged for the cookie."""
SECRET_BYTES = 32
"""Entropy of a cookie id and of a ticket (256 bits: not guessable)."""
USER_AGENT_CHARS = 300
"""Stored user agents are cut to this length (a header is the client's to make up)."""


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


def secret_hash(secret: str) -> str:
    """What is stored of a cookie id or a ticket: its SHA-256, so a copy of the table acts as nobody."""
    return hashlib.sha256(secret.encode()).hexdigest()



def flag_reason(stored: StoredSession, client: ClientInfo) -> str:
    """Why ``stored`` looks odd when ``client`` uses it (kept once set), logged the first time."""
    reasons = []
    if client.address != stored.client_address:
        reasons.append(f"used from {client.address}")
    if client.user_agent[:USER_AGENT_CHARS] != stored.user_agent:
        reasons.append("used from another browser")
    if reasons and not stored.flagged:
        log.warning("session %s flagged: %s, not where it was opened", stored.id, " and ".join(reasons))
    return stored.flagged or "; ".join(reasons)



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
