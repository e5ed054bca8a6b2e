"""The Upload page in Chromium: drop a generated AVI, its H.264 preview plays, upload it, it is ready."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

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
    assert page.get_by_role("button", name="Upload", exact=True).first.is_disabled()
    store_anyway(page)
    page.get_by_role("button", name="Upload", exact=True, disabled=False).first.click()  # not a fading copy
    page.get_by_text("Stored and ready").first.wait_for(timeout=PREPARE_TIMEOUT_MS)
    page.get_by_role("heading", name="Summary").wait_for()
    assert page.get_by_text("Ready", exact=True).first.is_visible()
    page.screenshot(path=str(tmp_path / "ready.png"), full_page=True)
    assert "Traceback" not in page.content()
    assert "Traceback" not in demo_app.log_text()


def test_picked_files_get_cards_at_once_and_a_check_can_be_cancelled_then_run_again(demo_app, page,
                                                                                     tmp_path: Path) -> None:
    """Three files at once: every one gets its card while the check workers take them in turn (issue 21,
    item 6); Cancel check stops one, keeps its file, and Check again runs it (issue 23)."""
    clips = [videos.write_ffmpeg(tmp_path / f"cancel me {n}.mkv", "-c:v", "ffv1", seconds=8 + n, size=(320, 240))
             for n in range(3)]

    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files([str(c) for c in clips])
    for clip in clips:
        page.get_by_text(f"Checking {clip.name}").first.wait_for(timeout=PREPARE_TIMEOUT_MS)
    page.get_by_text("waiting now").first.wait_for(timeout=PREPARE_TIMEOUT_MS)

    page.get_by_role("button", name="Cancel check").last.click()
    page.get_by_text("You cancelled the check of").first.wait_for(timeout=PREPARE_TIMEOUT_MS)
    page.get_by_role("button", name="Check again").first.click()
    # All three checked: no check left to cancel. (Test patterns have no face, so whether "Upload all" counts
    # them depends on "Store it anyway"; the cards are what this test is about.)
    expect(page.get_by_role("button", name="Cancel check")).to_have_count(0, timeout=4 * PREPARE_TIMEOUT_MS)
    for clip in clips:
        assert page.get_by_text(f"Checking {clip.name}").count() == 0
    assert "Traceback" not in page.content()
    assert "Traceback" not in demo_app.log_text()
