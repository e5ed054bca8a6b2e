"""My files in Chromium: the demo's sample recording plays from a presigned link and seeks (Range
requests against the embedded S3), then is deleted through the confirmation dialog and disappears.

This module gets its own demo app (``demo_app`` is module-scoped), since it deletes the sample.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests
from playwright.sync_api import expect

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD
from lib.sample import SAMPLE_NAME
from tests.support.browser import SEEK, VIDEO_CAN_PLAY, sign_in

SEED_TIMEOUT_S = 120
"""The sample is generated, analysed and uploaded in the background when the app first starts."""
VIDEO_TIMEOUT_MS = 60_000
HEADER_PX = 36
ROW_PX = 48
"""pages/files.py sets row_height=48; the grid's header row is about 36 px."""



def open_my_files(page) -> None:
    """Go to My files and wait until the sample is listed (switching pages reruns without losing the session)."""
    deadline = time.monotonic() + SEED_TIMEOUT_S
    while True:
        page.get_by_role("link", name="My files").click()
        page.get_by_role("heading", name="My files").first.wait_for()
        table = page.get_by_test_id("stDataFrame")
        try:
            table.first.wait_for(timeout=3_000)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
        page.get_by_role("link", name="Upload").click()
        page.get_by_role("heading", name="Upload").first.wait_for()


def select_first_row(page) -> None:
    """The grid is a canvas: click the selection checkbox of the first data row."""
    box = page.get_by_test_id("stDataFrame").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + HEADER_PX + ROW_PX / 2)


def test_play_seek_and_delete_the_sample(demo_app, page, tmp_path: Path) -> None:
    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    open_my_files(page)
    select_first_row(page)

    page.get_by_role("heading", name=SAMPLE_NAME).wait_for()
    page.wait_for_function(VIDEO_CAN_PLAY, timeout=VIDEO_TIMEOUT_MS)
    duration = page.evaluate("() => document.querySelector('video').duration")
    target = round(duration / 2, 2)
    landed = page.evaluate(SEEK, target)
    assert abs(landed - target) < 0.5, (landed, target)
    page.locator(".st-key-pv_user_files_detail").screenshot(path=str(tmp_path / "detail.png"))

    href = page.get_by_role("link", name="Download original").get_attribute("href")
    download = requests.get(href, timeout=30)
    assert download.status_code == 200 and download.content[:4] == b"RIFF"
    assert download.headers["Content-Disposition"].startswith(f'attachment; filename="{SAMPLE_NAME}"')

    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("This cannot be undone").wait_for()
    page.screenshot(path=str(tmp_path / "dialog.png"))
    dialog.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_text("Deleted 1 recording.").wait_for()
    page.get_by_text("No recordings yet").wait_for()
    # Streamlit fades stale elements out after a rerun: wait for them to go.
    expect(page.locator("video")).to_have_count(0)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "deleted.png"), full_page=True)
    assert "Traceback" not in page.content()
    assert "Traceback" not in demo_app.log_text()
