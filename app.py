"""PulseVault: the entry point. Page config, services, the auth gate, navigation.

Streamlit runs this file as ``__main__`` for every page view. ``streamlit run app.py`` first finds
the ``st.App`` below and serves the app through it, so the session-cookie routes
(lib.session_routes) and the export download (lib.export.routes) live next to Streamlit on the same
port; ``uvicorn app:app`` works as well.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from components.context import (
    current_session,
    get_services,
    remember_destination,
    render_cookie_handoff,
)
from components.feedback import user_errors
from components.sidebar import render_sidebar
from lib.export.routes import ExportBackends, export_routes
from lib.session_routes import CookieSessions, session_routes

# Served by the app itself: a `:material/...:` icon makes the browser fetch it from a public font host.
# (A comment, not a docstring: Streamlit's "magic" draws a bare string at the top of every page.)
FAVICON = Path(__file__).parent / "assets" / "favicon.png"


def configure_logging() -> None:
    """PulseVault's own log lines (where the demo lives, sessions, exports) on the console; once per process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    configure_logging()
    st.set_page_config(page_title="PulseVault", page_icon=str(FAVICON), layout="wide")
    services = None
    with user_errors("Starting PulseVault"):
        services = get_services()
    if services is None:
        st.stop()

    if services.demo is not None:
        st.info(
            "**Demo mode.** Recordings, accounts and metadata live only as long as this app runs; "
            "configure `[s3]` and `[supabase]` in `.streamlit/secrets.toml` to keep them.",
            icon=":material/science:",
        )

    session = None
    with user_errors("Checking your sign-in"):
        session = current_session(services)
    # Nothing goes in the sidebar signed out: without this, the one a sign-out leaves open stays, empty.
    st.set_page_config(initial_sidebar_state="collapsed" if session is None else "expanded")
    render_cookie_handoff()
    # Every page is always registered, so a deep link or a sign-out never hits
    # Streamlit's "page not found"; signed out, every path leads to sign-in.
    sign_in_page = st.Page("pages/sign_in.py", title="Sign in", icon=":material/login:", url_path="sign-in",
                           visibility="visible" if session is None else "hidden")
    pages = [
        st.Page("pages/upload.py", title="Upload", icon=":material/upload:", url_path="upload", default=True),
        st.Page("pages/files.py", title="My files", icon=":material/video_library:", url_path="files"),
        st.Page("pages/studies.py", title="Studies", icon=":material/groups:", url_path="studies"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/query_stats:", url_path="evaluate"),
        st.Page("pages/jobs.py", title="Jobs", icon=":material/work_history:", url_path="jobs"),
        st.Page("pages/usage.py", title="Usage", icon=":material/monitoring:", url_path="usage"),
        st.Page("pages/account.py", title="Account", icon=":material/person:", url_path="account"),
    ]
    if session is None:
        requested = st.navigation([sign_in_page, *pages], position="hidden")
        if requested.url_path != sign_in_page.url_path:
            if requested.url_path:  # a deep link, not the bare address
                remember_destination(requested)
            st.switch_page(sign_in_page)
        sign_in_page.run()
    else:
        render_sidebar(services, session)
        st.navigation([*pages, sign_in_page]).run()


def _session_store() -> CookieSessions | None:
    return get_services().sessions


def _export_backends() -> ExportBackends:
    return get_services().export_backends()


def _prepare() -> None:
    """Build the services (demo mode: start its storage) and load what the first page draws with, while the
    first browser is still loading Streamlit's scripts: on two cores that work then overlaps instead of
    queueing behind the first page run. Then resume the batch jobs an earlier run left unfinished."""
    # Outside a page run Streamlit warns of a "missing ScriptRunContext" (the cache's spinner has no page).
    context_log = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = context_log.level
    context_log.setLevel(logging.ERROR)
    try:
        import numpy  # noqa: F401  (st.set_page_config turns the favicon into a URL with numpy and PIL)
        import PIL.Image  # noqa: F401

        get_services().resume_jobs()
    except Exception:  # the first page run builds them again and says what went wrong
        logging.getLogger("pulsevault").debug("warming up failed; the first page run will retry", exc_info=True)
    finally:
        context_log.setLevel(level)


@asynccontextmanager
async def _warm_up(_app: st.App) -> AsyncIterator[None]:
    configure_logging()  # before the first page run: the warm-up already logs
    threading.Thread(target=_prepare, name="pulsevault-warm-up", daemon=True).start()
    yield


if __name__ == "__main__":
    main()
else:
    # A folder named pages/ makes Streamlit (1.67) serve a fresh process's first visits the old way, each
    # pages/*.py run alone without this entry point, until some visit runs st.navigation: a deep link then
    # showed a KeyError. main() always navigates, so the server starts in st.navigation's mode.
    PagesManager.uses_pages_directory = False
    app = st.App("app.py", routes=[*session_routes(_session_store), *export_routes(_export_backends)],
                 lifespan=_warm_up)
