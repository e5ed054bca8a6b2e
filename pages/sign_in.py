"""Sign in, create an account, or ask for a password-reset e-mail."""

from __future__ import annotations

import streamlit as st

from components import state_keys
from components.context import current_session, destination, get_auth, get_services, start_session
from components.feedback import notify, show_notice, user_errors
from components.text import literal

# Where signing in leads, unless a deep link asked for another page.
HOME = "pages/upload.py"


def render() -> None:
    services = get_services()
    if current_session(services) is not None:
        st.switch_page(destination(HOME))  # just signed in
    st.title("PulseVault")
    show_notice()
    st.caption("Get rPPG recordings safely into storage, and know they are usable before the subject leaves.")
    if services.demo is not None:
        demo = services.demo
        st.info(
            f"Demo account: **{literal(demo.email)}** / password **{literal(demo.password)}**  \n"
            f"Demo administrator (sees the whole bucket): **{literal(demo.admin_email)}** / password "
            f"**{literal(demo.admin_password)}**",
            icon=":material/key:",
        )
    left, _ = st.columns([2, 3])
    with left:
        sign_in_tab, sign_up_tab, reset_tab = st.tabs(["Sign in", "Create account", "Forgot password"])
        with sign_in_tab:
            _sign_in_form()
        with sign_up_tab:
            _sign_up_form()
        with reset_tab:
            _reset_form()


def _sign_in_form() -> None:
    with st.form("sign_in"):
        email = st.text_input("E-mail", autocomplete="email")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if not email or not password:
            st.error("Enter your e-mail address and password.")
            return
        with user_errors("Signing in"):
            # The client address for the sign-in throttle (None on localhost); see lib.throttle.
            start_session(get_auth(get_services()).sign_in(email.strip(), password,
                                                           client_address=st.context.ip_address))
            st.switch_page(destination(HOME))


def _sign_up_form() -> None:
    with st.form("sign_up"):
        email = st.text_input("E-mail", key=state_keys.SIGN_UP_EMAIL, autocomplete="email")
        password = st.text_input("Password", type="password", key=state_keys.SIGN_UP_PASSWORD,
                                 autocomplete="new-password", help="At least 8 characters.")
        repeat = st.text_input("Repeat password", type="password", key=state_keys.SIGN_UP_REPEAT,
                               autocomplete="new-password")
        submitted = st.form_submit_button("Create account", type="primary")
    if submitted:
        if password != repeat:
            st.error("The two passwords differ; type the same password twice.")
            return
        with user_errors("Creating the account"):
            result = get_auth(get_services()).sign_up(email.strip(), password)
            if result.needs_confirmation:
                st.success(f"Check your e-mail: we sent a confirmation link to {literal(email.strip())}. "
                           "Sign in after confirming.")
                return
            assert result.session is not None
            start_session(result.session)
            notify("Your account is ready.")
            st.switch_page(destination(HOME))


def _reset_form() -> None:
    with st.form("reset_password"):
        email = st.text_input("E-mail", key=state_keys.RESET_EMAIL, autocomplete="email")
        submitted = st.form_submit_button("Send reset link")
    if submitted:
        with user_errors("Requesting a password reset"):
            get_auth(get_services()).request_password_reset(email.strip())
            st.success(f"If {literal(email.strip())} has an account, a reset link is on its way.")


if __name__ == "__main__":  # run by st.navigation
    render()
