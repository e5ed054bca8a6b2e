"""My files in Chromium: the demo's sample recording plays from a presigned link and seeks (Range
requests against the embedded S3), then is deleted through the confirmation dialog and disappears.

This module gets its own demo app (``demo_app`` is module-scoped), since it deletes the sample.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import requests
from playwright.sync_api import expect

from lib.auth import DemoAuth
from lib.demo import DEMO_BUCKET, DEMO_EMAIL, DEMO_PASSWORD
from lib.keys import new_record_id
from lib.records import NewRecord
from lib.sample import SAMPLE_NAME
from tests.support.browser import SEEK, VIDEO_CAN_PLAY, sign_in
from tests.support.demo_storage import demo_storage
from tests.support.records import sqlite_rows

SEED_TIMEOUT_S = 120
"""The sample is generated, analysed and uploaded in the background when the app first starts."""
VIDEO_TIMEOUT_MS = 60_000
HEADER_PX = 36
ROW_PX = 48
"""pages/files.py sets row_height=48; the grid's header row is about 36 px."""
GRID_SETTLE_MS = 1_000
"""Other rows make a new grid (its key names its rows); a click in the second after the rerun that draws it
can land on the old one, which nothing on the page says has gone."""



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


def test_the_selection_follows_recordings_not_row_positions(demo_app, page) -> None:
    """Issue 21 item 4: after a sort or a search the check mark stayed on the row position while the app said
    nothing was selected, and the next click selected a recording the researcher never chose."""
    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    db_path = demo_storage(demo_app).db_path
    rows = sqlite_rows(db_path, DemoAuth(db_path).ensure_account(DEMO_EMAIL, DEMO_PASSWORD))
    token = f"ghost{uuid.uuid4().hex[:8]}"
    a, b, c = (f"{token} {n}.avi" for n in "abc")
    for name in (a, b, c):  # uploaded in this order: newest first, the table lists c, b, a
        record_id = new_record_id()
        key = f"recordings/{rows.repo.user_id}/2026/03/{record_id}/original.avi"
        rows.server.reserve(NewRecord(id=record_id, s3_key=key, bucket=DEMO_BUCKET, original_name=name,
                                      content_type="video/x-msvideo", size_bytes=1_000), quota_bytes=10**12)
        rows.server.mark_ready(record_id, size_bytes=1_000, sha256=None, video=None, thumbnail_key=None,
                               preview_key=None)
    page.get_by_role("link", name="My files").click()
    search_files(page, token, total=3)

    select_first_row(page)
    page.get_by_role("heading", name=c).wait_for()
    page.get_by_text("1 selected", exact=True).wait_for()
    choose(page, "Sort by", "Name")
    choose(page, "Order", "Ascending")  # a, b, c: the chosen c is now the last row
    page.get_by_text("1 selected", exact=True).wait_for()
    page.get_by_role("heading", name=c).wait_for()  # still c's detail, not the first row's
    page.wait_for_timeout(GRID_SETTLE_MS)
    select_first_row(page)  # a is chosen too: two recordings, both picked by the researcher
    page.get_by_text("2 selected", exact=True).wait_for()
    expect(page.get_by_role("button", name="Delete selected (2)")).to_be_visible()

    search_files(page, f"{token} b", total=1)  # both chosen ones leave the screen: nothing stays selected
    page.get_by_text("Select rows to open or delete them.").wait_for()
    page.wait_for_timeout(GRID_SETTLE_MS)
    select_first_row(page)
    page.get_by_role("heading", name=b).wait_for()
    page.get_by_text("1 selected", exact=True).wait_for()  # b alone, never a recording off the screen


def search_files(page, text: str, *, total: int) -> None:
    box = page.get_by_placeholder("name, subject, session, notes…")
    box.fill(text)
    box.press("Enter")
    page.get_by_text(re.compile(rf"of {total} recordings? · page")).first.wait_for()


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label``."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
