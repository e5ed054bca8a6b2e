"""Issue 10: a newcomer's whole journey in Chromium, in demo mode and again in cloud mode.

Create an account, sign in, upload a lossless AVI and an MP4 (previews and quick-look results shown),
find one by search on My files, play and seek it, download it and compare bytes, make a share link
and fetch it, see Usage count both, delete one, see Usage drop, sign out, and find every page locked.
Each step leaves a screenshot in ``artifacts/screenshots/<mode>/``; one replaces docs/screenshot.png (the
README's) only when ``PULSEVAULT_PUBLISH_SCREENSHOT=1`` asks for it.

In cloud mode the same run is the secrets check: every page's HTML and every websocket frame the
browser receives, and the app's log, are searched for the AWS secret key, the service-role key, the
JWT secret and any token at all (access tokens live in server-side session state only).
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from lib.units import human_bytes
from tests.support import cloud as cloud_support
from tests.support.app_server import RunningApp
from tests.support.browser import SEEK, sign_in, store_anyway
from tests.support.cloud import http_sign_in
from tests.support.journey import (
    BrowserCapture,
    Screenshots,
    lossless_face_avi,
    lossy_mp4,
    publish_readme_screenshot,
)

STEP_TIMEOUT_MS = 120_000
"""Checks, proxy and quick look of two small clips on a busy 2-core box."""
PAGES = {"upload": "Upload", "files": "My files", "usage": "Usage", "account": "Account"}
HEADER_PX = 36
ROW_PX = 48

VIDEOS_CAN_PLAY = """(count) => {
    const videos = [...document.querySelectorAll('video')];
    return videos.length >= count && videos.every(v => v.readyState >= 2);
}"""


@pytest.fixture(params=["demo", "cloud"])
def mode(request: pytest.FixtureRequest) -> tuple[str, RunningApp]:
    app = request.getfixturevalue("demo_app" if request.param == "demo" else "cloud_app")
    return request.param, app


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("journey-clips")
    return {"avi": lossless_face_avi(folder, "face session lossless"),
            "mp4": lossy_mp4(folder, "exercise lossy.mp4")}


# --- small steps ------------------------------------------------------------------------------------------


def go(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).first.wait_for()


def choose(page, label: str, option: str, scope=None) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label`` (inside ``scope``, a form say, if given);
    its list opens at the page's root."""
    (scope or page).get_by_label(label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def visible(locator):
    return locator.locator("visible=true").first


def create_account(page, url: str, email: str, password: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Create account").click()
    visible(page.get_by_label("E-mail", exact=True)).fill(email)
    visible(page.get_by_label("Password", exact=True)).fill(password)
    visible(page.get_by_label("Repeat password", exact=True)).fill(password)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Upload").first.wait_for()


def search(page, text: str, expected_total: int) -> None:
    box = page.get_by_placeholder("name, subject, session, notes…")
    box.fill(text)
    box.press("Enter")
    page.get_by_text(re.compile(rf"of {expected_total} recordings? · page")).first.wait_for()


def select_first_row(page) -> None:
    """The grid is a canvas: click the selection checkbox of the first data row."""
    table = page.get_by_test_id("stDataFrame").first
    table.wait_for()
    box = table.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + HEADER_PX + ROW_PX / 2)


def wait_until_playable(page, count: int) -> None:
    try:
        page.wait_for_function(VIDEOS_CAN_PLAY, arg=count, timeout=STEP_TIMEOUT_MS)
    except Exception:
        states = page.evaluate("() => [...document.querySelectorAll('video')].map(v => "
                               "[v.currentSrc.slice(0, 160), v.readyState, v.networkState, v.error && v.error.code])")
        raise AssertionError(f"videos not playable: {states}") from None


def metric(page, label: str) -> str:
    card = page.get_by_test_id("stMetric").filter(has_text=label).first
    return card.get_by_test_id("stMetricValue").inner_text().strip()


def open_usage(page, recordings: int, stored: int) -> None:
    """Usage, reloaded until it shows the expected figures (they come straight from the metadata)."""
    deadline = time.monotonic() + 30
    while True:
        go(page, "Usage")
        page.get_by_text("Check bucket against metadata").first.wait_for()
        if metric(page, "Recordings") == str(recordings) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert metric(page, "Recordings") == str(recordings)
    assert metric(page, "Stored") == human_bytes(stored)


# --- the journey -----------------------------------------------------------------------------------------


def test_journey(mode, page, recordings, request: pytest.FixtureRequest) -> None:
    name, app = mode
    shots = Screenshots(name)
    capture = BrowserCapture()
    capture.attach(page)

    def shot(label: str, **kwargs) -> Path:
        capture.snapshot(page, label)
        return shots.take(page, label, **kwargs)

    avi, mp4 = recordings["avi"], recordings["mp4"]
    email, password = f"newcomer-{uuid.uuid4().hex[:8]}@lab.test", "journey-pass-2026"

    # Create an account; it signs in at once. Sign out and in again through the Sign in tab.
    page.goto(app.url)
    page.get_by_role("button", name="Sign in").first.wait_for()
    shot("sign-in")
    create_account(page, app.url, email, password)
    page.get_by_text(email).first.wait_for()  # signed in as the new account
    page.get_by_role("button", name="Sign out").first.click()
    page.get_by_text("You are signed out.").wait_for()
    sign_in(page, app.url, email, password)
    page.get_by_role("heading", name="Upload").first.wait_for()
    page.get_by_text(email).first.wait_for()

    # Upload both: each is checked, previewed and analysed before anything is stored.
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files([str(avi), str(mp4)])
    # The MP4 has no face, so no pulse: "Upload all" leaves it out until the researcher says to store it.
    page.get_by_role("button", name="Upload all (1)").wait_for(timeout=STEP_TIMEOUT_MS)
    page.get_by_text("cannot read a heart rate").first.wait_for()
    store_anyway(page)
    page.get_by_role("button", name="Upload all (2)").wait_for(timeout=STEP_TIMEOUT_MS)
    page.get_by_text("H.264 preview proxy").first.wait_for()  # the FFV1 AVI gets a browser proxy
    page.get_by_text("Browser-playable").first.wait_for()  # the MP4 plays as it is
    wait_until_playable(page, 2)
    hr = page.get_by_test_id("stMetric").filter(has_text="Heart rate").get_by_text(re.compile(r"^\d+ bpm$"))
    bpm = int(hr.first.inner_text().split()[0])
    assert abs(bpm - 72) <= 4, bpm
    shot("upload-checked")
    page.get_by_role("button", name="Upload all (2)").click()
    page.get_by_role("heading", name="Summary").wait_for(timeout=STEP_TIMEOUT_MS)
    stored = page.get_by_test_id("stAlert").filter(has_text="Stored and ready")
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    while stored.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stored.count() == 2
    assert metric(page, "Ready") == "2" and metric(page, "Failed") == "0"
    shot("upload-stored")

    # My files: search finds the AVI alone; play and seek its preview.
    go(page, "My files")
    search(page, "face session", expected_total=1)
    select_first_row(page)
    page.get_by_role("heading", name=avi.name).wait_for()
    wait_until_playable(page, 1)
    duration = page.evaluate("() => document.querySelector('video').duration")
    target = round(duration / 2, 2)
    landed = page.evaluate(SEEK, target)
    assert abs(landed - target) < 0.5, (landed, target)
    with contextlib.suppress(Exception):  # the upload toasts would cover the README picture
        page.get_by_test_id("stToast").first.wait_for(state="detached", timeout=15_000)
    readme_source = shot("files-detail", full_page=False)

    # Download: the original's bytes, under its own name.
    href = page.get_by_role("link", name="Download original").get_attribute("href")
    download = requests.get(href, timeout=30)
    assert download.status_code == 200
    assert download.content == avi.read_bytes()
    assert avi.name in download.headers["Content-Disposition"]

    # Consent: internal use only until its uploader records that the participant agreed to sharing (issue 15).
    page.get_by_text("Consent: Internal use only").first.click()
    choose(page, "Consent", "Shareable with collaborators")
    page.get_by_role("button", name="Save consent").click()
    page.get_by_text("Consent: Shareable with collaborators").first.wait_for()

    # Share link: made in the page, fetched as a colleague would.
    page.get_by_text("Share link", exact=True).first.click()
    page.get_by_role("button", name="Create link").click()
    code = page.get_by_test_id("stCode").first
    code.wait_for()
    shared = requests.get(code.inner_text().strip(), timeout=30)
    assert shared.status_code == 200 and shared.content == avi.read_bytes()
    shot("files-share")

    # Usage counts both.
    both = avi.stat().st_size + mp4.stat().st_size
    open_usage(page, recordings=2, stored=both)
    shot("usage-two")

    # Delete the MP4 through the dialog; Usage drops.
    go(page, "My files")
    search(page, "exercise", expected_total=1)
    select_first_row(page)
    page.get_by_role("heading", name=mp4.name).wait_for()
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("This cannot be undone").wait_for()
    shot("files-delete-dialog", full_page=False)
    dialog.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_text("Deleted 1 recording.").wait_for()
    # Upload: the MP4's card no longer says it is stored; the AVI's still does (issue 21).
    go(page, "Upload")
    page.get_by_text("has been deleted since").first.wait_for()
    assert page.get_by_test_id("stAlert").filter(has_text="Stored and ready").count() == 1
    open_usage(page, recordings=1, stored=avi.stat().st_size)
    shot("usage-one")
    go(page, "Account")
    shot("account")

    # Sign out: no page is reachable any more, by link or by URL.
    page.get_by_role("button", name="Sign out").first.click()
    page.get_by_text("You are signed out.").wait_for()
    shot("signed-out")
    for path, title in PAGES.items():
        page.goto(f"{app.url}/{path}")
        page.get_by_role("button", name="Sign in").first.wait_for()
        assert page.get_by_role("heading", name=title, exact=True).count() == 0, path
        capture.snapshot(page, f"signed-out-{path}")

    log = app.log_text()
    assert "Traceback" not in log
    assert all(b"Traceback" not in body for _label, body in capture.html)
    if name == "demo":
        publish_readme_screenshot(readme_source)
        return

    # Cloud: nothing secret ever reached the browser or the log.
    known = request.getfixturevalue("cloud")
    other = http_sign_in(known, cloud_support.SECOND_EMAIL)
    secrets = {
        "AWS secret access key": cloud_support.SECRET_ACCESS_KEY,
        "Supabase service-role key": known.service_role_key,
        "JWT secret": known.jwt_secret,
        "session key": cloud_support.SESSION_KEY,
        "other user's access token": other["access_token"],
        "other user's refresh token": other["refresh_token"],
    }
    assert capture.frames, "no websocket frames were recorded"
    assert capture.leaks(secrets, log) == []
    assert capture.tokens(log) == [], "a JWT (access token or API key) reached the browser or the log"


def test_new_account_is_greeted(demo_app, page) -> None:
    create_account(page, demo_app.url, f"greet-{uuid.uuid4().hex[:8]}@lab.test", "journey-pass-2026")
    page.get_by_text("Your account is ready.").first.wait_for(timeout=10_000)
