"""Every page view's frame, run by app.py: page config, services, the auth gate, the sidebar and navigation."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components.context import current_session, get_services, remember_destination, render_cookie_handoff
from components.feedback import user_errors
from components.sidebar import render_sidebar

# Served by the app itself: a `:material/...:` icon makes the browser fetch it from a public font host.
# (A comment, not a docstring: Streamlit's "magic" draws a bare string at the top of every page.)
FAVICON = Path(__file__).resolve().parents[1] / "assets" / "favicon.png"


def main() -> None:
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
