"""The Upload page's Large files tab in Chromium against the demo app's S3 server (SeaweedFS): a 50 MB recording
goes from the browser straight to the bucket in 5 MiB parts and its card stores it; a page killed
mid-upload resumes without re-sending parts already in the bucket; cancel aborts the multipart upload;
a recording deleted in My files can be sent again in the same session and is stored anew (issue 21).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from components.direct_upload import DIRECT_TAB
from lib.demo import DEMO_BUCKET, DEMO_EMAIL, DEMO_PASSWORD
from tests.support.app_server import RunningApp, run_app
from tests.support.browser import sign_in, store_anyway
from tests.support.demo_storage import demo_storage
from tests.support.services import require_chromium
from tests.support.videos import write_opencv

PART_MB = 5
FRAME_BYTES = 640 * 480 * 3 // 2  # OpenCV's raw AVI stores yuv420p
STORE_TIMEOUT_MS = 150_000
"""Fetch, checks, proxy and quick look of a 50 MB clip, then the derivatives; a busy 2-core box needs slack."""
INPUT = "[data-testid=pv-direct-input]"
HEADER_PX = 36
ROW_PX = 48
"""My files' grid: its header row and data rows (pages/files.py sets row_height=48)."""


@pytest.fixture(scope="module")
def direct_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The real app in demo mode, 5 MiB parts, and a threshold below the test files (so they are "large")."""
    require_chromium()
    env = {"PULSEVAULT_TRANSFER_PART_SIZE_MB": str(PART_MB), "PULSEVAULT_DIRECT_UPLOAD_THRESHOLD_MB": "40"}
    with run_app(tmp_path_factory.mktemp("direct-app"), env=env) as app:
        yield app


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Raw (uncompressed) AVIs just over 50 MB: real videos the pipeline can probe, cheap to write."""
    folder = tmp_path_factory.mktemp("recordings")
    frames = -(-50_000_000 // FRAME_BYTES)
    out = {}
    for offset, name in enumerate(("whole", "resume", "cancel")):
        path = write_opencv(folder / f"{name}.avi", "\0\0\0\0", frames=frames + offset, size=(640, 480))
        assert path is not None and path.stat().st_size >= 50_000_000
        out[name] = path
    return out


def open_upload_tab(browser, app: RunningApp):
    """Sign in as the demo researcher, on the Upload page, Large files tab; also returns the demo backends."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    sign_in(page, app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    page.get_by_role("tab", name=DIRECT_TAB).click()
    page.locator(INPUT).wait_for(state="attached")
    return context, page, demo_storage(app)


def row(db_path: Path, name: str) -> sqlite3.Row | None:
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("select * from user_files where original_name = ?", (name,)).fetchone()


def part_number(url: str) -> int:
    return int(parse_qs(urlparse(url).query)["partNumber"][0])


def wait_status(page, wanted: tuple[str, ...], timeout_s: float = 120) -> str:
    status = page.locator("[data-testid=pv-direct-status]").last
    # The uploader draws the file's row as soon as it is chosen; a loaded 2-core machine may take a while to draw it.
    status.wait_for(state="attached", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = status.text_content() or ""
        if text in wanted:
            return text
        time.sleep(0.25)
    detail = page.locator("[data-testid=pv-direct-detail]").last.text_content()
    raise AssertionError(f"status stayed {status.text_content()!r} ({detail!r})")


def wait_stored(page, name: str) -> None:
    """The file's newest card on the Upload page (the same card as a dropped file's) says it is stored.

    The raw test frames hold no face, so the quick look finds no pulse and the card waits for
    "Store it anyway" and Upload (issue 21 item 7), where a recording with a pulse is stored at once."""
    card = page.locator("[class*=st-key-pv_user_upload_card_direct-]").filter(has_text=name).last
    store_anyway(card, timeout_ms=STORE_TIMEOUT_MS)
    card.get_by_role("button", name="Upload", exact=True, disabled=False).first.click()  # not a fading copy
    card.get_by_text("Stored and ready").first.wait_for(timeout=STORE_TIMEOUT_MS)
    assert card.get_by_text("Lossless").count() and card.get_by_text("Quick-look pulse").count()


def test_a_large_recording_goes_straight_to_the_bucket(browser, direct_app, recordings):
    context, page, demo = open_upload_tab(browser, direct_app)
    puts: list[str] = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    try:
        page.locator(INPUT).set_input_files(recordings["whole"])
        assert wait_status(page, ("In the bucket", "Failed")) == "In the bucket"
        wait_stored(page, "whole.avi")
        # The page reran several times since: the uploader was kept, not rebuilt (a rebuilt one loses its files).
        assert page.locator("[data-testid=pv-direct-status]").last.text_content(timeout=5_000) == "In the bucket"
        assert "Traceback" not in page.content()
    finally:
        context.close()
    size = recordings["whole"].stat().st_size
    assert sorted(part_number(u) for u in puts) == list(range(1, -(-size // (PART_MB << 20)) + 1))
    assert {urlparse(u).netloc for u in puts} == {urlparse(demo.endpoint).netloc}  # not the app
    record = row(demo.db_path, "whole.avi")
    assert record is not None and record["status"] == "ready" and record["size_bytes"] == size
    assert record["frame_count"] == size // FRAME_BYTES and record["thumbnail_key"] and record["preview_key"]
    body = demo.client().get_object(Bucket=DEMO_BUCKET, Key=record["s3_key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(recordings["whole"].read_bytes()).hexdigest()
    assert record["sha256"] == hashlib.sha256(body).hexdigest()


def test_killed_mid_upload_resumes_without_resending_done_parts(browser, direct_app, recordings):
    context, page, demo = open_upload_tab(browser, direct_app)
    finished: list[int] = []
    page.on("requestfinished", lambda r: finished.append(part_number(r.url)) if r.method == "PUT" else None)
    page.locator(INPUT).set_input_files(recordings["resume"])
    deadline = time.monotonic() + 60
    while len(finished) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    context.close()  # the tab dies with parts in flight
    assert len(finished) >= 3

    client = demo.client()
    uploads = client.list_multipart_uploads(Bucket=DEMO_BUCKET).get("Uploads", [])
    assert len(uploads) == 1

    def listed_parts() -> set[int]:
        parts = client.list_parts(Bucket=DEMO_BUCKET, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])
        return {p["PartNumber"] for p in parts.get("Parts", [])}

    # A PUT cut off by the closed tab may still be landing: wait until the bucket's list is stable.
    listed, time_stable = listed_parts(), time.monotonic()
    while time.monotonic() - time_stable < 1.5:
        time.sleep(0.25)
        if (now := listed_parts()) != listed:
            listed, time_stable = now, time.monotonic()
    assert set(finished) <= listed

    context, page, demo = open_upload_tab(browser, direct_app)
    resent: list[int] = []
    page.on("request", lambda r: resent.append(part_number(r.url)) if r.method == "PUT" else None)
    try:
        page.locator(INPUT).set_input_files(recordings["resume"])
        assert wait_status(page, ("In the bucket", "Failed")) == "In the bucket"
        resumed = int(page.locator("[data-testid=pv-direct-file]").last.get_attribute("data-resumed-parts"))
        wait_stored(page, "resume.avi")
    finally:
        context.close()
    total = -(-recordings["resume"].stat().st_size // (PART_MB << 20))
    assert resumed == len(listed)
    assert not set(resent) & listed, "parts already in the bucket were sent again"
    assert sorted(resent) == sorted(set(range(1, total + 1)) - listed)
    assert client.list_multipart_uploads(Bucket=DEMO_BUCKET).get("Uploads", []) == []
    record = row(demo.db_path, "resume.avi")
    assert record is not None and record["status"] == "ready"


def test_cancel_aborts_the_multipart_upload(browser, direct_app, recordings):
    context, page, demo = open_upload_tab(browser, direct_app)
    finished: list[str] = []
    page.on("requestfinished", lambda r: finished.append(r.url) if r.method == "PUT" else None)
    try:
        page.locator(INPUT).set_input_files(recordings["cancel"])
        deadline = time.monotonic() + 60
        while not finished and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        page.get_by_role("button", name="Cancel").last.click()
        assert wait_status(page, ("Cancelled", "Cancel failed")) == "Cancelled"
    finally:
        context.close()
    assert demo.client().list_multipart_uploads(Bucket=DEMO_BUCKET).get("Uploads", []) == []
    assert row(demo.db_path, "cancel.avi") is None
    assert "Traceback" not in direct_app.log_text()


def delete_in_my_files(page, name: str) -> None:
    """My files: find the recording, open it, delete it through the dialog."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="My files").click()
    page.get_by_role("heading", name="My files").first.wait_for()
    box = page.get_by_placeholder("name, subject, session, notes…")
    box.fill(name)
    box.press("Enter")
    page.get_by_text(re.compile(r"of 1 recordings? · page")).first.wait_for()
    table = page.get_by_test_id("stDataFrame").first
    bounds = table.bounding_box()
    assert bounds is not None
    page.mouse.click(bounds["x"] + 18, bounds["y"] + HEADER_PX + ROW_PX / 2)  # the grid is a canvas
    page.get_by_role("heading", name=name).wait_for()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    page.get_by_text("Deleted 1 recording.").wait_for()


def test_deleted_then_sent_again_in_the_same_session_is_stored_anew(browser, direct_app, tmp_path):
    """Issue 21 item 2: the second send reused the deleted record's id, stayed pending behind the old
    "Stored and ready" card, and could be neither finished nor discarded."""
    clip = write_opencv(tmp_path / "again.avi", "\0\0\0\0", frames=24, size=(640, 480))  # 3 parts
    assert clip is not None
    context, page, demo = open_upload_tab(browser, direct_app)
    try:
        page.locator(INPUT).set_input_files(clip)
        assert wait_status(page, ("In the bucket", "Failed")) == "In the bucket"
        wait_stored(page, "again.avi")
        first = row(demo.db_path, "again.avi")
        assert first is not None and first["status"] == "ready"

        delete_in_my_files(page, "again.avi")
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Upload").click()
        page.get_by_role("heading", name="Upload").first.wait_for()
        page.get_by_text("has been deleted since").first.wait_for()  # the old card no longer claims it
        assert page.get_by_test_id("stAlert").filter(has_text="Stored and ready").count() == 0

        page.get_by_role("tab", name=DIRECT_TAB).click()
        page.locator(INPUT).wait_for(state="attached")
        page.locator(INPUT).set_input_files(clip)
        assert wait_status(page, ("In the bucket", "Failed")) == "In the bucket"
        wait_stored(page, "again.avi")
        assert "Traceback" not in page.content()
    finally:
        context.close()
    second = row(demo.db_path, "again.avi")
    assert second is not None and second["status"] == "ready"
    assert second["id"] != first["id"]  # a new record, never the deleted one's id
    with sqlite3.connect(demo.db_path) as conn:
        assert conn.execute("select count(*) from user_files where original_name = 'again.avi' and status != 'ready'"
                            ).fetchone()[0] == 0  # nothing stuck pending
