"""One-time export tickets: what the download route accepts instead of record ids.

The My files page prepares an export as the signed-in user (their repository decides what they may read)
and gets a ticket for it; the browser then fetches the zip from the app's own route with that ticket.
A ticket is 256 random bits, kept only as a hash, valid :data:`EXPORT_TICKET_TTL_S`, used up by the
first download that presents it, and bound to the user it was made for: the route also checks the
browser's session cookie where the app keeps sessions. The plan it carries names exactly the objects
that user was shown; nothing in a request can widen it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lib.export.model import ExportPlan

EXPORT_TICKET_TTL_S = 600
"""How long a prepared export's link works: time to click it, short enough that a leaked link is dead soon."""
MAX_TICKETS_PER_USER = 5
"""Prepared exports a user may hold at once; preparing another drops their oldest."""
TICKET_BYTES = 32
"""Entropy of a ticket (256 bits: not guessable)."""


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


@dataclass(frozen=True)
class _Issued:
    plan: ExportPlan
    expires_at: float


class ExportTickets:
    """The process's prepared exports, in memory (a restart ends them; preparing again is a click)."""

    def __init__(self, *, ttl_s: float = EXPORT_TICKET_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._now = clock
        self._lock = threading.Lock()
        self._issued: dict[str, _Issued] = {}

    def issue(self, plan: ExportPlan) -> str:
        """A fresh ticket for ``plan`` (for ``plan.owner`` only)."""
        ticket = secrets.token_urlsafe(TICKET_BYTES)
        with self._lock:
            self._drop_expired()
            mine = [h for h, issued in self._issued.items() if issued.plan.owner == plan.owner]
            for old in mine[: max(0, len(mine) - MAX_TICKETS_PER_USER + 1)]:  # dicts keep issue order
                del self._issued[old]
            self._issued[_hash(ticket)] = _Issued(plan, self._now() + self._ttl_s)
        return ticket

    def claim(self, ticket: str, user_id: str | None) -> ExportPlan | None:
        """The plan, used up now; None for an unknown, used or expired ticket, or one made for another user
        (``user_id`` None: the caller could not tell who is asking; the ticket alone then decides)."""
        with self._lock:
            self._drop_expired()
            issued = self._issued.get(_hash(ticket or ""))
            if issued is None or (user_id is not None and issued.plan.owner != user_id):
                return None
            del self._issued[_hash(ticket)]
        return issued.plan

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._issued)

    def _drop_expired(self) -> None:
        now = self._now()
        for key in [k for k, issued in self._issued.items() if issued.expires_at <= now]:
            del self._issued[key]
