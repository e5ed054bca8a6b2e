"""The foundation in a real browser, in both modes: sign in, reach Upload, sign out."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.support import cloud as cloud_support
from tests.support.browser import sign_in


@pytest.fixture(params=["demo", "cloud"])
def running(request: pytest.FixtureRequest):
    """(app, e-mail, password) for each mode."""
    if request.param == "demo":
        return request.getfixturevalue("demo_app"), DEMO_EMAIL, DEMO_PASSWORD
    return request.getfixturevalue("cloud_app"), cloud_support.USER_EMAIL, cloud_support.USER_PASSWORD


def test_sign_in_reaches_upload_page_and_sign_out_locks_pages(running, page, tmp_path: Path) -> None:
    app, email, password = running
    page.goto(app.url)
    page.get_by_role("button", name="Sign in").first.wait_for()
    page.screenshot(path=str(tmp_path / "sign-in.png"), full_page=True)

    sign_in(page, app.url, email, password)
    page.get_by_role("heading", name="Upload").first.wait_for()
    page.get_by_text(email).first.wait_for()  # the sidebar says who is signed in
    page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)
    assert (tmp_path / "upload.png").stat().st_size > 0

    page.get_by_role("button", name="Sign out").first.click()
    page.get_by_text("You are signed out.").wait_for()
    page.get_by_role("button", name="Sign in").first.wait_for()
    page.goto(f"{app.url}/files")  # pages are not reachable signed out
    page.get_by_role("button", name="Sign in").first.wait_for()
    assert page.get_by_role("heading", name="My files").count() == 0


def test_demo_mode_shows_its_banner_and_credentials(demo_app, page) -> None:
    page.goto(demo_app.url)
    page.get_by_text("Demo mode").first.wait_for()
    page.get_by_text(DEMO_EMAIL).first.wait_for()


def test_cloud_mode_wrong_password_is_a_clear_message(cloud_app, page) -> None:
    sign_in(page, cloud_app.url, cloud_support.USER_EMAIL, "wrong-password")
    page.get_by_text("Signing in failed").first.wait_for()
    assert page.get_by_role("heading", name="Upload").count() == 0
    assert "Traceback" not in page.content()


def test_every_asset_comes_from_the_app_itself(demo_app, page) -> None:
    """An offline lab: nothing the app shows may be fetched from another host (issue 21, item 10)."""
    app_host = urlparse(demo_app.url).netloc
    elsewhere: list[str] = []
    page.on("request", lambda request: elsewhere.append(request.url)
            if urlparse(request.url).netloc not in ("", app_host) else None)
    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    for title in ("My files", "Usage"):
        page.get_by_role("link", name=title).first.click()
        page.get_by_role("heading", name=title).first.wait_for()
    favicon = page.evaluate("() => document.querySelector('link[rel~=\"icon\"]')?.href || ''")
    assert urlparse(favicon).netloc == app_host, favicon
    # Presigned media come from the embedded S3 on 127.0.0.1, which is part of the app too.
    assert [url for url in elsewhere if urlparse(url).hostname != "127.0.0.1"] == []
