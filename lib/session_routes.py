"""The app's own HTTP routes for the session cookie (served next to Streamlit by ``st.App`` in app.py).

Streamlit talks to the browser over a websocket, which cannot set a cookie; these two routes can.
The sign-in page has the browser post its one-time ticket to :data:`START_PATH`, whose answer
sets the HttpOnly cookie; sign-out posts to :data:`END_PATH`, whose answer deletes it. Both only
accept posts from the app's own pages (the ``Origin`` header), so another site cannot sign a
visitor in as someone else or out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lib.errors import PulseVaultError
from lib.sessions import SESSION_COOKIE

log = logging.getLogger(__name__)

START_PATH = "/pulsevault/session/start"
"""Exchanges a sign-in ticket for the session cookie."""
END_PATH = "/pulsevault/session/end"
"""Revokes the cookie's session and deletes the cookie."""


class CookieSessions(Protocol):
    """What the routes need of a session store (:class:`lib.sessions.SessionStore`)."""

    @property
    def lifetime_s(self) -> int: ...

    def claim(self, ticket: str) -> str | None: ...

    def revoke_secret(self, secret: str) -> None: ...


StoreProvider = Callable[[], "CookieSessions | None"]
"""The process's session store, or None where sessions are not kept (then the routes answer 404)."""


def session_routes(store: StoreProvider) -> list[Route]:
    """The routes, reading the store through ``store`` (it is built after the app starts)."""

    async def start(request: Request) -> Response:
        sessions = store()
        if sessions is None:
            return Response(status_code=404)
        if not _same_origin(request):
            return Response("Sign-in must come from PulseVault's own page.", status_code=403)
        form = await request.form()
        try:
            secret = await run_in_threadpool(sessions.claim, str(form.get("ticket", "")))
        except PulseVaultError as exc:
            log.warning("session route: the session store failed (%s); this tab stays signed in alone",
                        type(exc).__name__)
            return Response("Your sign-in could not be kept for other tabs right now; this tab stays signed in.",
                            status_code=503)
        if secret is None:
            return Response("That sign-in has expired; sign in again.", status_code=403)
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, secret, max_age=sessions.lifetime_s, path="/",
                            httponly=True, samesite="lax", secure=_is_https(request))
        return response

    async def end(request: Request) -> Response:
        sessions = store()
        if sessions is None:
            return Response(status_code=404)
        if not _same_origin(request):
            return Response("Sign-out must come from PulseVault's own page.", status_code=403)
        if secret := request.cookies.get(SESSION_COOKIE):
            await _revoke_quietly(sessions, secret)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_is_https(request))
        return response

    return [Route(START_PATH, start, methods=["POST"]), Route(END_PATH, end, methods=["POST"])]


async def _revoke_quietly(sessions: CookieSessions, secret: str) -> None:
    try:
        await run_in_threadpool(sessions.revoke_secret, secret)
    except PulseVaultError as exc:
        # The page already revoked the session by its row; the cookie goes either way.
        log.warning("session route: revoking at sign-out failed (%s)", type(exc).__name__)


def _same_origin(request: Request) -> bool:
    """The post came from a page of this app: its Origin names the host the request was sent to."""
    origin = request.headers.get("origin", "")
    allowed = urlsplit(origin).netloc == request.headers.get("host") and origin != ""
    if not allowed:
        log.warning("session route %s refused a post from another origin", request.url.path)
    return allowed


def _is_https(request: Request) -> bool:
    """Served over HTTPS, directly or behind a proxy that says so (then the cookie is ``Secure``)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"
