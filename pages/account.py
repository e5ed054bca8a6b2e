"""Who you are, which mode the app runs in, when the session expires, your signed-in browsers, Sign out."""

from __future__ import annotations

import streamlit as st

from components import state_keys
from components.context import this_browser_session_id, user_context
from components.feedback import show_notice
from components.sidebar import sign_out
from components.text import literal
from lib.sessions import SessionStore, StoredSession, describe_device
from lib.units import human_bytes, human_duration


def render() -> None:
    ctx = user_context()
    settings = ctx.services.settings
    st.title("Account")
    show_notice()
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Signed in as** {literal(ctx.session.email)}")
        st.markdown(f"**User id** `{ctx.user_id}`")
        st.markdown(f"**Session expires** {ctx.session.expires_at:%Y-%m-%d %H:%M:%S} UTC "
                    f"(in {human_duration(ctx.session.expires_in_s())}; refreshed automatically)")
    with right:
        mode = "Demo: embedded S3 and SQLite" if settings.is_demo else "Cloud: S3 and Supabase"
        st.markdown(f"**Mode** {mode}")
        st.markdown(f"**Bucket** `{settings.s3.bucket if settings.s3 else '—'}`")
        st.markdown(f"**Quota** {human_bytes(settings.quota_bytes)} · "
                    f"**Upload limit** {human_bytes(settings.max_upload_bytes)}")
        st.markdown(f"**Role** {'administrator' if ctx.caller.is_admin else 'researcher'}")
    if st.button("Sign out", icon=":material/logout:", key=state_keys.ACCOUNT_SIGN_OUT):
        sign_out(ctx.services, ctx.session)
    _browsers()


def _browsers() -> None:
    ctx = user_context()
    store = ctx.services.sessions
    st.subheader("Signed-in browsers")
    if store is None:
        st.caption("This app keeps no sessions on the server: each browser tab signs in on its own. "
                   "Your lab's PulseVault admin can change that with the session key setting (README: Sessions).")
    else:
        for stored in store.list_for(ctx.user_id):
            _browser_row(store, stored, is_this=stored.id == this_browser_session_id())
    if st.button("Sign out everywhere", icon=":material/devices_off:", key=state_keys.ACCOUNT_SIGN_OUT_EVERYWHERE,
                 help="Ends every session of yours, in every browser, this one included."):
        sign_out(ctx.services, ctx.session, everywhere=True)


def _browser_row(store: SessionStore, stored: StoredSession, *, is_this: bool) -> None:
    device, seen, action = st.columns([3, 3, 1], vertical_alignment="center")
    label = describe_device(stored.user_agent) + (" · **this browser**" if is_this else "")
    device.markdown(f"{label}  \n{stored.client_address or 'unknown address'}")
    seen.markdown(f"Last seen {stored.last_seen_at:%Y-%m-%d %H:%M} UTC  \n"
                  f"Signed in {stored.created_at:%Y-%m-%d %H:%M} UTC")
    if stored.flagged:
        seen.warning(f"Check this session: {stored.flagged}.", icon=":material/warning:")
    if is_this:
        return
    if action.button("Sign out", key=state_keys.account_revoke(stored.id), help="Ends this session in that browser."):
        store.revoke(stored.user_id, stored.id)
        st.rerun()


if __name__ == "__main__":  # run by st.navigation
    render()
