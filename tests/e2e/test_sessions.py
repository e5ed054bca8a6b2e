"""Signed in stays signed in (issue 19), in a real browser: the cookie, reloads, tabs, deep links (demo mode);
an app restart, and no token in the browser or the log (cloud mode: SeaweedFS and the Supabase stand-in)."""

from __future__ import annotations

import hashlib
import time

import psycopg

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD
from lib.sessions import SESSION_COOKIE, TokenCipher
from tests.support import cloud as cloud_support
from tests.support.app_server import run_app
from tests.support.browser import sign_in
from tests.support.journey import BrowserCapture

COOKIE_WAIT_S = 15


def _session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == SESSION_COOKIE), None)


def _wait_for_cookie(context) -> dict:
    deadline = time.monotonic() + COOKIE_WAIT_S
    while (cookie := _session_cookie(context)) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cookie is not None, "the browser never got the session cookie"
    return cookie


def _sidebar_width(page) -> float:
    """How wide the sidebar shows (0 when collapsed or absent): Streamlit keeps a collapsed one in the DOM."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    box = sidebar.first.bounding_box() if sidebar.count() else None
    return 0.0 if box is None else max(0.0, box["x"] + box["width"])


def _signed_in_on(page, heading: str, email: str = DEMO_EMAIL) -> None:
    page.get_by_role("heading", name=heading).first.wait_for()
    page.get_by_text(email).first.wait_for()  # the sidebar
    assert page.get_by_role("button", name="Sign in").count() == 0


def test_reload_new_tab_and_sign_out(demo_app, page) -> None:
    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    _signed_in_on(page, "Upload")
    cookie = _wait_for_cookie(page.context)
    # From the browser's own cookie jar: HttpOnly, Lax, whole app, bounded; plain http here, so not Secure.
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert time.time() < cookie["expires"] <= time.time() + 8 * 86_400
    assert len(cookie["value"]) >= 40
    assert SESSION_COOKIE not in page.evaluate("() => document.cookie")
    assert cookie["value"] not in page.content()
    assert cookie["value"] not in page.evaluate("() => JSON.stringify(window.localStorage)")

    page.reload()
    _signed_in_on(page, "Upload")

    second = page.context.new_page()
    second.goto(f"{demo_app.url}/files")  # a new tab, straight to a deep link
    _signed_in_on(second, "My files")

    page.get_by_role("button", name="Sign out").first.click()
    page.get_by_text("You are signed out.").wait_for()
    deadline = time.monotonic() + COOKIE_WAIT_S
    while _session_cookie(page.context) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_cookie(page.context) is None, "sign-out left the session cookie in the browser"
    deadline = time.monotonic() + COOKIE_WAIT_S  # the sidebar slides shut: give it its animation
    while _sidebar_width(page) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sidebar_width(page) == 0, "an empty sidebar after sign-out (issue 21, item 11)"
    assert page.get_by_text("Where signing in leads").count() == 0  # no stray docstring on the page

    # The other tab still shows My files; its next interaction finds the session revoked.
    second.get_by_role("link", name="Usage").first.click()
    second.get_by_role("button", name="Sign in").first.wait_for()
    assert cookie["value"] not in demo_app.log_text()


def test_deep_link_signed_out_leads_there_after_sign_in(demo_app, page) -> None:
    """Issue 21, item 9: a bookmark of My files signs in to My files, not Upload."""
    page.goto(f"{demo_app.url}/files")
    page.get_by_label("E-mail").first.fill(DEMO_EMAIL)
    page.get_by_label("Password").first.fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    _signed_in_on(page, "My files")


def test_a_fresh_servers_first_visit_may_be_a_deep_link(page, tmp_path) -> None:
    """Before any visit has run the entry point, a deep link is still the app's page, not pages/account.py run
    alone (Streamlit's old pages-folder mode showed a KeyError there)."""
    with run_app(tmp_path) as fresh:
        page.goto(f"{fresh.url}/account")
        page.get_by_label("E-mail").first.fill(DEMO_EMAIL)
        page.get_by_label("Password").first.fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        _signed_in_on(page, "Account")
        assert "Traceback" not in fresh.log_text() and page.get_by_text("KeyError").count() == 0


def test_forged_cookie_gets_sign_in_and_a_log_entry(demo_app, page) -> None:
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": "forged-" + "x" * 40, "url": demo_app.url}])
    page.goto(f"{demo_app.url}/files")
    page.get_by_role("button", name="Sign in").first.wait_for()
    assert page.get_by_role("heading", name="My files").count() == 0
    deadline = time.monotonic() + 5
    while "session cookie was refused" not in demo_app.log_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "session cookie was refused" in demo_app.log_text()


def test_sign_out_everywhere_from_the_account_page(demo_app, page, browser) -> None:
    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    _signed_in_on(page, "Upload")
    _wait_for_cookie(page.context)
    other = browser.new_context(viewport={"width": 1400, "height": 900}, user_agent="Mozilla/5.0 (X11; Linux "
                                "x86_64) Firefox/128.0")
    try:
        laptop = other.new_page()
        sign_in(laptop, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
        _signed_in_on(laptop, "Upload")
        _wait_for_cookie(other)

        page.get_by_role("link", name="Account").first.click()
        page.get_by_text("this browser").first.wait_for()
        page.get_by_text("Firefox on Linux").first.wait_for()  # the other browser, listed
        page.get_by_role("button", name="Sign out everywhere").click()
        page.get_by_text("You are signed out everywhere.").wait_for()

        laptop.reload()
        laptop.get_by_role("button", name="Sign in").first.wait_for()
    finally:
        other.close()


def _kept_row(pg_dsn: str, cookie_value: str) -> tuple[str, str]:
    """The row the server keeps for a cookie, found by the cookie's hash as the app finds it: (id, encrypted tokens)."""
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("select id::text, tokens from public.app_sessions where secret_hash = %s",
                           (hashlib.sha256(cookie_value.encode()).hexdigest(),)).fetchone()
    assert row is not None, "no kept session for the browser's cookie"
    return row


def test_cloud_session_survives_an_app_restart_and_no_token_reaches_the_browser(
    cloud, cloud_app, browser, tmp_path_factory
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    capture = BrowserCapture()
    try:
        page = context.new_page()
        capture.attach(page)
        sign_in(page, cloud_app.url, cloud_support.USER_EMAIL, cloud_support.USER_PASSWORD)
        _signed_in_on(page, "Upload", cloud_support.USER_EMAIL)
        cookie = _wait_for_cookie(context)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
        row_id, blob = _kept_row(cloud.pg_dsn, cookie["value"])
        tokens = TokenCipher([cloud_support.SESSION_KEY]).decrypt(blob)
        assert tokens is not None, "the kept tokens do not open with the app's session key"

        page.reload()
        _signed_in_on(page, "Upload", cloud_support.USER_EMAIL)
        capture.snapshot(page, "reloaded")
        second = context.new_page()
        capture.attach(second)
        second.goto(f"{cloud_app.url}/files")  # a new tab, straight to a deep link
        _signed_in_on(second, "My files", cloud_support.USER_EMAIL)
        capture.snapshot(second, "new tab")

        # Another process of the same configuration (an app restart, or a second process behind a load
        # balancer): the browser's cookie is the same (cookies ignore the port) and the session resumes.
        with run_app(tmp_path_factory.mktemp("cloud-app-restarted"), env=cloud.app_env()) as restarted:
            third = context.new_page()
            capture.attach(third)
            # The address first: a fresh process's very first visit straight to a deep link runs pages/ as
            # Streamlit's old page folder, before app.py's st.navigation exists (a Streamlit behaviour).
            third.goto(restarted.url)
            _signed_in_on(third, "Upload", cloud_support.USER_EMAIL)
            third.get_by_role("link", name="Account").first.click()
            _signed_in_on(third, "Account", cloud_support.USER_EMAIL)
            third.get_by_text("this browser").first.wait_for()  # the kept session, listed from the database
            capture.snapshot(third, "restarted app")
            third.get_by_role("button", name="Sign out").first.click()
            third.get_by_text("You are signed out.").wait_for()
            deadline = time.monotonic() + COOKIE_WAIT_S
            while _session_cookie(context) is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _session_cookie(context) is None, "sign-out left the session cookie in the browser"
            restarted_log = restarted.log_text()
        with psycopg.connect(cloud.pg_dsn) as conn:
            revoked = conn.execute("select tokens, secret_hash, revoked_at from public.app_sessions where id = %s",
                                   (row_id,)).fetchone()
        assert revoked is not None and revoked[0] == "" and revoked[1] is None and revoked[2] is not None

        # The first app's tab finds the session ended at its next interaction.
        second.get_by_role("link", name="Usage").first.click()
        second.get_by_role("button", name="Sign in").first.wait_for()

        access, refresh = tokens
        log = cloud_app.log_text() + restarted_log
        secrets = {"access token": access, "refresh token": refresh, "session cookie": cookie["value"],
                   "session key": cloud_support.SESSION_KEY}
        assert capture.frames, "no websocket frames were recorded"
        assert capture.leaks(secrets, log) == []
        assert capture.tokens(log) == [], "a JWT (access token or API key) reached the browser or the log"
        for label, body in capture.html:
            assert b"Traceback" not in body, label
    finally:
        context.close()


def test_cloud_account_page_signs_out_another_browser(cloud_app, page, browser) -> None:
    """The Account page lists the user's kept sessions from the database and ends another browser's."""
    sign_in(page, cloud_app.url, cloud_support.USER_EMAIL, cloud_support.USER_PASSWORD)
    _signed_in_on(page, "Upload", cloud_support.USER_EMAIL)
    _wait_for_cookie(page.context)
    other = browser.new_context(viewport={"width": 1400, "height": 900}, user_agent="Mozilla/5.0 (X11; Linux "
                                "x86_64) Firefox/128.0")
    try:
        laptop = other.new_page()
        sign_in(laptop, cloud_app.url, cloud_support.USER_EMAIL, cloud_support.USER_PASSWORD)
        _signed_in_on(laptop, "Upload", cloud_support.USER_EMAIL)
        _wait_for_cookie(other)

        page.get_by_role("link", name="Account").first.click()
        page.get_by_text("this browser").first.wait_for()
        row = page.get_by_test_id("stHorizontalBlock").filter(has_text="Firefox on Linux").last
        row.get_by_role("button", name="Sign out").click()
        page.get_by_text("this browser").first.wait_for()
        deadline = time.monotonic() + COOKIE_WAIT_S
        while page.get_by_text("Firefox on Linux").count() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert page.get_by_text("Firefox on Linux").count() == 0, "the ended session is still listed"

        laptop.reload()
        laptop.get_by_role("button", name="Sign in").first.wait_for()
        _signed_in_on(page, "Account", cloud_support.USER_EMAIL)  # this browser stays signed in
    finally:
        other.close()
