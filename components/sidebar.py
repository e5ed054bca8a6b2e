"""The persistent sidebar: who is signed in, the mode, storage against quota, Sign out."""

from __future__ import annotations

import streamlit as st

from components import state_keys
from components.context import forget_session, user_context
from components.feedback import notify
from components.text import literal
from lib.auth import Session
from lib.errors import PulseVaultError
from lib.services import Services
from lib.units import human_bytes


def render_sidebar(services: Services, session: Session) -> None:
    with st.sidebar:
        st.markdown(f"**{literal(session.email)}**" + (" · administrator" if session.is_admin else ""))
        mode = "Demo (embedded backends)" if services.settings.is_demo else "Cloud (S3 + Supabase)"
        st.caption(f"Mode: {mode}")
        _storage_meter(services)
        if st.button("Sign out", icon=":material/logout:", key=state_keys.SIDEBAR_SIGN_OUT, width="stretch"):
            sign_out(services, session)


def _storage_meter(services: Services) -> None:
    quota = services.settings.quota_bytes
    try:
        used = user_context().repo.usage().total_bytes
    except PulseVaultError:
        st.caption("Storage: unavailable right now")
        return
    st.progress(min(used / quota, 1.0), text=f"Storage: {human_bytes(used)} of {human_bytes(quota)}")


def sign_out(services: Services, session: Session, *, everywhere: bool = False) -> None:
    forget_session(services, session, everywhere=everywhere)
    notify("You are signed out everywhere." if everywhere else "You are signed out.")
    st.switch_page("pages/sign_in.py")
