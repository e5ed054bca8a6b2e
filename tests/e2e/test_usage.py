"""The Usage page in Chromium: after the demo's sample upload, its figures and charts are drawn."""

from __future__ import annotations

import time
from pathlib import Path

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.support.browser import sign_in

SEED_TIMEOUT_S = 150
"""The sample recording is generated, analysed and uploaded through the pipeline at start-up."""
CHART = '[data-testid="stVegaLiteChart"]'
CHART_DRAWN = """(selector) => [...document.querySelectorAll(selector)].filter(chart => {
    const surface = chart.querySelector('canvas, svg.marks');
    if (!surface) return false;
    const box = surface.getBoundingClientRect();
    return box.width > 50 && box.height > 50;
}).length"""


def _open_usage(page) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Usage").click()
    page.get_by_role("heading", name="Usage").first.wait_for()
    page.get_by_text("Check bucket against metadata").first.wait_for()  # the page ran to its end


def test_usage_page_draws_charts_after_the_sample_upload(demo_app, page, tmp_path: Path) -> None:
    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    deadline = time.monotonic() + SEED_TIMEOUT_S
    _open_usage(page)
    while page.get_by_text("Nothing stored yet").count() and time.monotonic() < deadline:
        time.sleep(3)  # the sample is still on its way through the pipeline
        _open_usage(page)

    page.locator(CHART).first.wait_for(timeout=30_000)
    page.wait_for_function(CHART_DRAWN, arg=CHART, timeout=30_000)
    page.screenshot(path=str(tmp_path / "usage-top.png"))
    drawn = page.evaluate(CHART_DRAWN, CHART)
    assert drawn >= 5, f"only {drawn} charts drawn"
    assert page.locator(CHART).first.is_visible()
    assert page.get_by_text("Storage OK").first.is_visible()
    assert page.get_by_role("button", name="Download these figures (CSV)").is_visible()

    page.get_by_role("button", name="Check bucket against metadata").click()
    page.get_by_text("The bucket and the metadata agree").first.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "usage.png"), full_page=True)
    assert "Traceback" not in page.content()
    assert "Traceback" not in demo_app.log_text()
