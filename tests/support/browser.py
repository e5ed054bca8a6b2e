"""Playwright with Debian's Chromium (test tools cannot download browsers here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import CHROMIUM_ARGS, require_chromium, service_missing

DEFAULT_TIMEOUT_MS = 30_000

VIDEO_CAN_PLAY = """() => {
    const video = document.querySelector('video');
    return video !== null && video.readyState >= 2;  // HAVE_CURRENT_DATA: a frame is decoded
}"""

SEEK = """(target) => new Promise((resolve, reject) => {
    const video = document.querySelector('video');
    const timer = setTimeout(() => reject(new Error('no seeked event')), 30000);
    video.addEventListener('seeked', () => { clearTimeout(timer); resolve(video.currentTime); }, {once: true});
    video.currentTime = target;
})"""
"""Seek the first <video> to ``target`` seconds; resolves with where it landed (needs Range requests)."""


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = require_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def sign_in(page, url: str, email: str, password: str) -> None:
    """Sign in through the real form, as a researcher would."""
    page.goto(url)
    page.get_by_label("E-mail").first.fill(email)
    page.get_by_label("Password").first.fill(password)
    page.get_by_role("button", name="Sign in").click()


STORE_ANYWAY = "Store it anyway"
"""The Upload card's checkbox for a recording the quick look cannot use (issue 21, item 7)."""


def store_anyway(scope, count: int = 1, timeout_ms: float = 120_000) -> None:
    """Tick "Store it anyway" on ``count`` cards in ``scope`` (a page or a card): generated clips without a
    face give the quick look no pulse, so they are stored only when asked to."""
    boxes = scope.get_by_test_id("stCheckbox").filter(has_text=STORE_ANYWAY)
    boxes.nth(count - 1).wait_for(timeout=timeout_ms)
    for i in range(count):
        boxes.nth(i).get_by_text(STORE_ANYWAY).click()
        boxes.nth(i).locator("input:checked").wait_for(state="attached")
