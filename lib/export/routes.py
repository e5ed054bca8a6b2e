"""The app's download route for prepared exports (served next to Streamlit by ``st.App`` in app.py).

Streamlit's download button needs the whole file in memory; this route streams the zip instead
(:mod:`lib.export.archive`). It is authorised by a one-time export ticket (:mod:`lib.export.tickets`),
never by a record id: the ticket names a plan made as the signed-in user. Where the app keeps sessions,
the browser's session cookie must belong to the same user. Before the first byte, every recording is
checked to be the very object the plan saw; a changed one is named instead of sending a dataset that lies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from lib.errors import ExportRefused, PulseVaultError
from lib.sessions import SESSION_COOKIE, ClientInfo, Resumed

if TYPE_CHECKING:  # app.py imports this module when the server starts: the zip's modules load with a download
    from lib.export.tickets import ExportTickets
    from lib.storage import ObjectStore

log = logging.getLogger(__name__)

EXPORT_PATH = "/pulsevault/export"
"""GET with ``?ticket=``: the prepared export's zip."""
_WHERE = "(My files, or the study on the Studies page)"
"""Where an export is prepared, for the route's answers."""
REFUSED = (f"This export link has expired, was already used, or was prepared for another account. Prepare the export "
           f"again {_WHERE}.")
SIGN_IN_FIRST = f"Sign in to PulseVault in this browser, then prepare the export again {_WHERE}."


class SessionLookup(Protocol):
    """What the route needs of a session store (:class:`lib.sessions.SqliteSessionStore`)."""

    def resume(self, secret: str, client: ClientInfo) -> Resumed | None: ...


@dataclass(frozen=True)
class ExportBackends:
    tickets: ExportTickets
    store: ObjectStore
    sessions: SessionLookup | None
    """None where the app keeps no sessions: then the ticket alone (one-time, short-lived) decides."""


BackendsProvider = Callable[[], "ExportBackends | None"]
"""The process's backends, or None before the app has them (then the route answers 404)."""


def export_routes(backends: BackendsProvider) -> list[Route]:
    async def download(request: Request) -> Response:
        from lib.export.archive import export_zip, read_ahead, zip_name
        from lib.export.plan import check_plan_unchanged
        from lib.storage import content_disposition

        found = backends()
        if found is None:
            return Response(status_code=404)
        user_id = None
        if found.sessions is not None:
            user_id = await run_in_threadpool(_cookie_user, found.sessions, request)
            if user_id is None:
                return PlainTextResponse(SIGN_IN_FIRST, status_code=403)
        plan = found.tickets.claim(request.query_params.get("ticket", ""), user_id)
        if plan is None:
            log.warning("export: a download ticket was refused (unknown, used, expired or another user's)")
            return PlainTextResponse(REFUSED, status_code=403)
        try:
            await run_in_threadpool(check_plan_unchanged, found.store, plan)
        except ExportRefused as exc:
            return PlainTextResponse(str(exc), status_code=409)
        except PulseVaultError as exc:
            return PlainTextResponse(f"{exc} Prepare the export again {_WHERE}.", status_code=503)
        archive = export_zip(found.store, plan)
        log.info("export: streaming %s (%d files, %d bytes) for %s", plan.root, plan.file_count, len(archive),
                 plan.owner)
        headers = {"Content-Length": str(len(archive)), "Cache-Control": "no-store",
                   "Content-Disposition": content_disposition(zip_name(plan), inline=False)}
        return StreamingResponse(read_ahead(archive), media_type="application/zip", headers=headers)

    return [Route(EXPORT_PATH, download, methods=["GET"])]


def _cookie_user(sessions: SessionLookup, request: Request) -> str | None:
    """The signed-in user of the browser's session cookie, or None."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    client = ClientInfo(request.client.host if request.client else "", request.headers.get("user-agent", ""))
    resumed = sessions.resume(secret, client)
    return resumed.stored.user_id if resumed is not None else None
