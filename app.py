"""PulseVault: the entry point. Every page view runs :func:`components.shell.main` (page config, services, the
auth gate, navigation).

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

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from lib.export.routes import ExportBackends, export_routes
from lib.session_routes import CookieSessions, session_routes


def configure_logging() -> None:
    """PulseVault's own log lines (where the demo lives, sessions, exports) on the console; once per process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# The server imports this module before it listens; everything a page needs loads in the warm-up below (while
# the first browser loads Streamlit's scripts) or in the first page run, so those imports are made here late.


def _session_store() -> CookieSessions | None:
    from components.context import get_services

    return get_services().sessions


def _export_backends() -> ExportBackends:
    from components.context import get_services

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

        import components.shell  # noqa: F401  (the first page run's modules)
        from components.context import get_services

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
    from components.shell import main

    configure_logging()
    main()
else:
    # A folder named pages/ makes Streamlit (1.67) serve a fresh process's first visits the old way, each
    # pages/*.py run alone without this entry point, until some visit runs st.navigation: a deep link then
    # showed a KeyError. main() always navigates, so the server starts in st.navigation's mode.
    PagesManager.uses_pages_directory = False
    app = st.App("app.py", routes=[*session_routes(_session_store), *export_routes(_export_backends)],
                 lifespan=_warm_up)
