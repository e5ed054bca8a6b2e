"""Who you are, which mode the app runs in, when the session expires, Sign out."""

from __future__ import annotations

import streamlit as st

from components import state_keys
from components.context import user_context
from components.feedback import show_notice
from components.sidebar import sign_out
from components.text import literal
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


if __name__ == "__main__":  # run by st.navigation
    render()
