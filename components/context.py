"""Per-process services and per-browser-session state.

Services (settings, the S3 store, demo backends) are built once per process
with ``st.cache_resource``. Everything tied to one signed-in user, the auth
provider with its Supabase client and the session tokens, lives in
``st.session_state`` so it never leaks into another browser session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from components import state_keys
from components.feedback import NoticeKind, notify
from components.text import literal
from lib.auth import AuthProvider, Caller, Session
from lib.demo import seed_sample
from lib.errors import AuthError, ConfigError
from lib.repository import Repository, ServerRecords
from lib.services import Services, build_services
from lib.settings import load_settings


@dataclass(frozen=True)
class UserContext:
    """What a page needs to act for the signed-in user."""

    services: Services
    auth: AuthProvider
    session: Session
    repo: Repository
    """Reads and research edits, as the user."""
    server: ServerRecords
    """Facts and the row lifecycle, written by the server for this user only."""

    @property
    def user_id(self) -> str:
        return self.session.user_id

    @property
    def caller(self) -> Caller:
        """Who asks, with the role the verified session carries (never what the user typed)."""
        return self.session.caller


@st.cache_resource(show_spinner="Starting PulseVault…")
def get_services() -> Services:
    settings = load_settings(_secrets(), os.environ)
    port = st.get_option("server.port")
    origins = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    return build_services(settings, origins=origins, seed=_seed_demo)


def _seed_demo(services: Services) -> None:
    assert services.demo is not None  # build_services seeds in demo mode only
    seed_sample(services.settings, services.demo)


def _secrets() -> dict:
    try:
        return st.secrets.to_dict()
    except StreamlitSecretNotFoundError as exc:
        if "No secrets found" in str(exc):
            return {}
        raise ConfigError(
            ".streamlit/secrets.toml could not be read; check its TOML syntax "
            "against .streamlit/secrets.toml.example."
        ) from None


def get_auth(services: Services) -> AuthProvider:
    """This browser session's auth provider (and Supabase client)."""
    if state_keys.AUTH not in st.session_state:
        st.session_state[state_keys.AUTH] = services.new_auth()
    return st.session_state[state_keys.AUTH]


def current_session(services: Services) -> Session | None:
    """The signed-in session, refreshed when close to expiry, or None."""
    session: Session | None = st.session_state.get(state_keys.SESSION)
    if session is None:
        return None
    try:
        fresh = get_auth(services).ensure_fresh(session)
    except AuthError as exc:
        # Expired beyond refresh, or the auth service is unreachable with an
        # expired token: either way the user must sign in again.
        end_session()
        notify(f"{literal(exc)} Please sign in again.", NoticeKind.WARNING)
        return None
    st.session_state[state_keys.SESSION] = fresh
    return fresh


def start_session(session: Session) -> None:
    st.session_state[state_keys.SESSION] = session


def end_session() -> None:
    """Forget the session and its client, so nothing of it survives sign-out."""
    st.session_state.pop(state_keys.SESSION, None)
    st.session_state.pop(state_keys.AUTH, None)
    for key in [k for k in st.session_state if str(k).startswith(state_keys.USER_PREFIX)]:
        del st.session_state[key]


def user_context() -> UserContext:
    """The signed-in user's context; pages only run behind the auth gate."""
    services = get_services()
    auth = get_auth(services)
    session = st.session_state[state_keys.SESSION]
    return UserContext(services, auth, session, services.repository_for(auth, session),
                       services.server_records_for(session))
