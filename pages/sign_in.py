"""Sign in, create an account, or ask for a password-reset e-mail."""

from __future__ import annotations

import streamlit as st

from components.context import current_session, destination, get_auth, get_services, start_session
from components.feedback import flash, user_errors

# Where signing in leads, unless a deep link asked for another page.
HOME = "pages/upload.py"


def render() -> None:
    services = get_services()
    if current_session(services) is not None:
        st.switch_page(destination(HOME))  # just signed in
    st.title("PulseVault")
    st.caption("Get rPPG recordings safely into storage, and know they are usable before the subject leaves.")
    if services.demo is not None:
        st.info(
            f"Demo account: **{services.demo.email}** / password **{services.demo.password}**",
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
            start_session(get_auth(get_services()).sign_in(email.strip(), password))
            st.switch_page(destination(HOME))


def _sign_up_form() -> None:
    with st.form("sign_up"):
        email = st.text_input("E-mail", key="sign_up_email", autocomplete="email")
        password = st.text_input("Password", type="password", key="sign_up_password",
                                 autocomplete="new-password", help="At least 8 characters.")
        repeat = st.text_input("Repeat password", type="password", key="sign_up_repeat",
                               autocomplete="new-password")
        submitted = st.form_submit_button("Create account", type="primary")
    if submitted:
        if password != repeat:
            st.error("The two passwords differ; type the same password twice.")
            return
        with user_errors("Creating the account"):
            result = get_auth(get_services()).sign_up(email.strip(), password)
            if result.needs_confirmation:
                st.success(f"Check your e-mail: we sent a confirmation link to {email.strip()}. "
                           "Sign in after confirming.")
                return
            assert result.session is not None
            start_session(result.session)
            flash("Your account is ready.", "success")
            st.switch_page(destination(HOME))


def _reset_form() -> None:
    with st.form("reset_password"):
        email = st.text_input("E-mail", key="reset_email", autocomplete="email")
        submitted = st.form_submit_button("Send reset link")
    if submitted:
        with user_errors("Requesting a password reset"):
            get_auth(get_services()).request_password_reset(email.strip())
            st.success(f"If {email.strip()} has an account, a reset link is on its way.")


if __name__ == "__main__":  # run by st.navigation
    render()
