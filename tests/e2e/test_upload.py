"""The Upload page in Chromium: drop a generated AVI, its H.264 preview plays, upload it, it is ready."""

from __future__ import annotations

from pathlib import Path

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.support import videos
from tests.support.browser import VIDEO_CAN_PLAY, sign_in, store_anyway

PREPARE_TIMEOUT_MS = 90_000
"""Checks, proxy and quick look of a 1 s clip take a few seconds; a busy 2-core CI box needs slack."""


def test_drop_avi_preview_plays_then_upload_is_ready(demo_app, page, tmp_path: Path) -> None:
    clip = videos.write_opencv(tmp_path / "lab rec e2e.avi", "MJPG", frames=30, size=(160, 120))
    assert clip is not None

    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(clip))

    page.get_by_text("lab rec e2e.avi").first.wait_for(timeout=PREPARE_TIMEOUT_MS)
    page.get_by_text("H.264 preview proxy").first.wait_for(timeout=PREPARE_TIMEOUT_MS)
    page.wait_for_function(VIDEO_CAN_PLAY, timeout=PREPARE_TIMEOUT_MS)
    page.screenshot(path=str(tmp_path / "card.png"), full_page=True)

    # A generated clip has no face: the quick look finds no pulse, so storing it takes a second thought.
    page.get_by_text("cannot read a heart rate").first.wait_for()
    assert page.get_by_role("button", name="Upload", exact=True).is_disabled()
    store_anyway(page)
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text("Stored and ready").first.wait_for(timeout=PREPARE_TIMEOUT_MS)
    page.get_by_role("heading", name="Summary").wait_for()
    assert page.get_by_text("Ready", exact=True).first.is_visible()
    page.screenshot(path=str(tmp_path / "ready.png"), full_page=True)
    assert "Traceback" not in page.content()
    assert "Traceback" not in demo_app.log_text()
