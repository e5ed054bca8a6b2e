"""Per-process services and per-browser-session state.

Services (settings, the S3 store, demo backends) are built once per process
with ``st.cache_resource``. Everything tied to one signed-in user, the auth
provider with its Supabase client and the session tokens, lives in
``st.session_state`` so it never leaks into another browser session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.navigation.page import StreamlitPage

from components import state_keys
from components.feedback import NoticeKind, notify, slot
from components.text import literal
from lib.audit import Actor, AuditTrail
from lib.auth import AuthProvider, Caller, Session
from lib.demo import seed_sample
from lib.errors import AuthError, ConfigError, PulseVaultError
from lib.repository import Repository, ServerRecords
from lib.services import Services, build_services
from lib.session_routes import END_PATH, START_PATH
from lib.sessions import SESSION_COOKIE, ClientInfo
from lib.settings import load_settings

if TYPE_CHECKING:
    from lib.jobs.store import JobStore

log = logging.getLogger("pulsevault")


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
    def jobs(self) -> JobStore:
        """The user's batch jobs."""
        return self.services.jobs_for(self.auth, self.session)

    @property
    def audit(self) -> AuditTrail:
        """The audit trail, written as this user from the address this browser session came from."""
        actor = Actor(self.session.user_id, self.session.email, _client_info().address)
        return AuditTrail(self.services.audit_log_for(self.auth, self.session), actor)

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
    """The signed-in session, refreshed when close to expiry, or None.

    A new tab, a reload or a deep link has an empty ``st.session_state``: the session comes back
    from the browser's session cookie (lib.sessions). A session revoked elsewhere (sign-out in
    another tab, "sign out everywhere") ends here at the next interaction.
    """
    session: Session | None = st.session_state.get(state_keys.SESSION)
    if session is not None and not _still_kept(services):
        end_session()
        notify("Your session was ended (signed out elsewhere, or it expired). Please sign in again.",
               NoticeKind.WARNING)
        return None
    session = session or _resume_from_cookie(services)
    if session is None:
        return None
    try:
        fresh = get_auth(services).ensure_fresh(session)
    except AuthError as exc:
        # Another tab may have rotated the tokens (single use): the store has the live pair.
        st.session_state.pop(state_keys.SESSION, None)
        fresh = _resume_from_cookie(services)
        if fresh is None:
            # Expired beyond refresh, or the auth service is unreachable with an
            # expired token: either way the user must sign in again.
            end_session()
            notify(f"{literal(exc)} Please sign in again.", NoticeKind.WARNING)
            return None
    if fresh is not session:
        _save_tokens(services, fresh)
    st.session_state[state_keys.SESSION] = fresh
    return fresh


def start_session(session: Session) -> None:
    """Signed in: this tab now, and (where sessions are kept) every tab once the browser has the cookie."""
    st.session_state[state_keys.SESSION] = session
    sessions = get_services().sessions
    if sessions is not None:
        try:
            row_id, ticket = sessions.open(session, _client_info())
        except PulseVaultError as exc:
            log.warning("session: could not be kept on the server (%s); this tab only", type(exc).__name__)
            notify(f"You are signed in in this tab only: {literal(exc)} A reload or a new tab asks to sign in "
                   "again.", NoticeKind.WARNING)
            return
        st.session_state[state_keys.SESSION_ROW] = row_id
        st.session_state[state_keys.COOKIE_ACTION] = ("start", ticket)


def forget_session(services: Services, session: Session, *, everywhere: bool = False) -> None:
    """Sign out here and on the server (the kept session revoked, the browser's cookie deleted);
    ``everywhere``: every session of the user, in every browser and at the sign-in service."""
    auth = get_auth(services)
    with contextlib.suppress(PulseVaultError):
        # Signed out locally regardless; the sign-in service's tokens expire on their own.
        if everywhere:
            auth.sign_out_everywhere(session)
        else:
            auth.sign_out(session)
    if services.sessions is not None:
        try:
            if everywhere:
                services.sessions.revoke_all(session.user_id)
            elif row_id := st.session_state.get(state_keys.SESSION_ROW):
                services.sessions.revoke(session.user_id, row_id)
        except PulseVaultError as exc:
            # Signed out here regardless; the cookie route revokes this browser's session by its cookie,
            # and the sign-in service's tokens were ended above.
            log.warning("sign-out: revoking the kept session failed (%s)", type(exc).__name__)
    end_session()
    st.session_state[state_keys.COOKIE_ACTION] = ("end", "")


def this_browser_session_id() -> str | None:
    """The kept session this tab runs on (to mark it on the Account page), if any."""
    return st.session_state.get(state_keys.SESSION_ROW)


def end_session() -> None:
    """Forget the session and its client, so nothing of it survives sign-out."""
    for key in (state_keys.SESSION, state_keys.AUTH, state_keys.SESSION_ROW):
        st.session_state.pop(key, None)
    for key in [k for k in st.session_state if str(k).startswith(state_keys.USER_PREFIX)]:
        del st.session_state[key]


def remember_destination(page: StreamlitPage) -> None:
    """A signed-out visit to ``page`` (a deep link): go there after signing in."""
    st.session_state[state_keys.NEXT_PAGE] = page


def destination(default: str) -> StreamlitPage | str:
    """Where to go after signing in: the page a deep link asked for, else ``default``."""
    return st.session_state.pop(state_keys.NEXT_PAGE, default)


def render_cookie_handoff() -> None:
    """Have the browser post to the app's cookie route (lib.session_routes) after a sign-in or sign-out.

    Streamlit's websocket cannot set a cookie; the route's answer can. The ticket is single-use
    and short-lived; the cookie itself is HttpOnly, so no script ever reads it.
    """
    action = st.session_state.pop(state_keys.COOKIE_ACTION, None)
    holder = slot()  # drawn once after a sign-in: without a slot, the page after it moved on the next run
    if action is None:
        return
    kind, ticket = action
    path = START_PATH if kind == "start" else END_PATH
    holder.html(
        f"<script>fetch({json.dumps(path)}, {{method: 'POST', credentials: 'same-origin', "
        f"body: new URLSearchParams({{ticket: {json.dumps(ticket)}}})}});</script>",
        unsafe_allow_javascript=True,
    )


def _resume_from_cookie(services: Services) -> Session | None:
    sessions = services.sessions
    secret = st.context.cookies.get(SESSION_COOKIE)
    if sessions is None or not isinstance(secret, str) or not secret:  # AppTest has no real request
        return None
    resumed = sessions.resume(secret, _client_info())
    if resumed is None:
        return None
    try:
        session = get_auth(services).resume(resumed.access_token, resumed.refresh_token)
    except AuthError as exc:
        # The sign-in service ended it (signed out everywhere, password changed, expired).
        log.warning("session %s: the sign-in service refused it (%s); sign-in asked", resumed.stored.id,
                    type(exc).__name__)
        sessions.revoke(resumed.stored.user_id, resumed.stored.id)
        return None
    if session.user_id != resumed.stored.user_id:
        log.warning("session %s: its tokens belong to another user; refused", resumed.stored.id)
        sessions.revoke(resumed.stored.user_id, resumed.stored.id)
        return None
    st.session_state[state_keys.SESSION_ROW] = resumed.stored.id
    if session.refresh_token != resumed.refresh_token:
        sessions.save_tokens(resumed.stored.id, session)
    return session


def _still_kept(services: Services) -> bool:
    row_id = st.session_state.get(state_keys.SESSION_ROW)
    return services.sessions is None or row_id is None or services.sessions.touch(row_id)


def _save_tokens(services: Services, session: Session) -> None:
    row_id = st.session_state.get(state_keys.SESSION_ROW)
    if services.sessions is not None and row_id is not None:
        services.sessions.save_tokens(row_id, session)


def _client_info() -> ClientInfo:
    address, agent = st.context.ip_address, st.context.headers.get("User-Agent")
    return ClientInfo(address=address if isinstance(address, str) else "",
                      user_agent=agent if isinstance(agent, str) else "")


def user_context() -> UserContext:
    """The signed-in user's context; pages only run behind the auth gate."""
    services = get_services()
    auth = get_auth(services)
    session = st.session_state[state_keys.SESSION]
    return UserContext(services, auth, session, services.repository_for(auth, session),
                       services.server_records_for(session))
