"""What goes over the wire: one request as a value, and error responses in the shapes clients parse."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import Any

Response = tuple[int, Any, dict[str, str]]
"""Status, JSON body (None for none) and extra headers."""

API_VERSION = "2024-01-01"
"""GoTrue's API version header; with it supabase-py reads the error ``code`` field."""


class HttpError(Exception):
    """An error response: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message") or body.get("msg"))
        self.status = status
        self.body = body
        self.headers = headers or {}


def gotrue_error(status: int, code: str, message: str, **extra: Any) -> HttpError:
    """GoTrue's error shape (``code`` for the 2024-01-01 API version, ``error_code`` for older clients)."""
    return HttpError(status, {"code": code, "error_code": code, "msg": message, **extra},
                     {"X-Supabase-Api-Version": API_VERSION})


def postgrest_error(status: int, code: str, message: str, details: str | None = None,
                    hint: str | None = None) -> HttpError:
    """PostgREST's error shape: code, message, details, hint."""
    return HttpError(status, {"code": code, "message": message, "details": details, "hint": hint})


def gateway_error(message: str, hint: str) -> HttpError:
    """The API gateway's (Kong's) refusal, before any service sees the request."""
    return HttpError(401, {"message": message, "hint": hint})


@dataclass(frozen=True)
class Request:
    """One HTTP request as the services see it: path below the service prefix, query pairs, JSON body."""

    method: str
    path: str
    params: list[tuple[str, str]]
    headers: Message
    body: Any

    @property
    def query(self) -> dict[str, str]:
        return dict(self.params)

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    def prefer(self) -> dict[str, str]:
        """The ``Prefer`` header(s) as ``{"return": "representation", "count": "exact", ...}``."""
        prefs: dict[str, str] = {}
        for header in self.headers.get_all("Prefer") or []:
            for item in header.split(","):
                key, _, value = item.strip().partition("=")
                if key:
                    prefs[key] = value
        return prefs

    def json_object(self) -> dict[str, Any]:
        """The body if it is a JSON object, else an empty one (GoTrue reads missing fields as empty)."""
        return self.body if isinstance(self.body, dict) else {}
