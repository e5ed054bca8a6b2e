"""A lab on one server: does everyone else stay fast while large recordings are checked, and does the
server's memory come back afterwards? (issue 23)

Starts the app as the README does (demo mode), opens five browser sessions and
signs each in. The fifth switches pages (Upload → My files, My files → Usage,
each until the page is idle) and searches My files, first alone, then while the
other four each check a large lossless recording at once. Prints one JSON line:

* ``load_interaction_ratio``: the median time of the fifth session's actions under
  that load divided by the same alone (goal ≤ 1.5);
* ``load_rss_after_mb``: the server process's RSS one minute after the last check
  ended minus its RSS before the load (goal ≤ 50);
* the medians and maxima behind them, the recordings' size, how long the checks took,
  the web process's own CPU (% of a core) while the fifth session was timed under load,
  and the check workers still alive at the end.

The four loaded sessions share the demo account, so the per-user cap is lifted to
the total for this run (``PULSEVAULT_CHECK_CONCURRENCY_PER_USER``): four researchers
would each have their own. ``--quick`` uses smaller recordings.

Usage: python bench/load.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD  # noqa: E402
from lib.settings import DEFAULT_CHECK_CONCURRENCY  # noqa: E402
from tests.support import videos  # noqa: E402
from tests.support.app_server import run_app  # noqa: E402
from tests.support.browser import sign_in  # noqa: E402
from tests.support.services import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

LOADED_SESSIONS = 4
ROUNDS = 3
"""Rounds of the fifth session's actions (each round: to My files, search, to Usage, back to Upload)."""
RECOVERY_S = 60
"""How long after the last check the server's memory is read again."""
IDLE_TIMEOUT_MS = 300_000
CHECKS_TIMEOUT_S = 1_800
RUNNING = '[data-testid="stStatusWidget"]'
"""Streamlit's "Running…" indicator: present while the page's script runs."""
SETTLE_S = 20
"""After sign-in: the demo seed (sample generation and analysis) must finish before anything is timed."""


def recordings(folder: Path, quick: bool) -> list[Path]:
    """Large lossless (FFV1) recordings of ffmpeg's test pattern, one per loaded session (distinct bytes)."""
    size, seconds = ((320, 240), 6) if quick else ((640, 480), 15)
    return [videos.write_ffmpeg(folder / f"large-{n}.mkv", "-c:v", "ffv1", seconds=seconds + n, size=size)
            for n in range(LOADED_SESSIONS)]


def wait_idle(page) -> None:
    """Until the page's script has run and stopped (the "Running…" indicator is gone)."""
    page.wait_for_timeout(150)  # the rerun the action asked for has started by then
    page.locator(RUNNING).wait_for(state="hidden", timeout=IDLE_TIMEOUT_MS)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def one_round(page) -> list[float]:
    """The fifth session's actions, each timed until its page is idle."""

    def to(name: str, heading: str):
        def go() -> None:
            page.get_by_role("link", name=name).first.click()
            page.get_by_role("heading", name=heading).first.wait_for(timeout=IDLE_TIMEOUT_MS)
            wait_idle(page)
        return go

    def search() -> None:
        box = page.get_by_label("Search").first
        box.fill("sample" if box.input_value() != "sample" else "")
        box.press("Enter")
        wait_idle(page)

    return [timed(to("My files", "My files")), timed(search), timed(to("Usage", "Usage")),
            timed(to("Upload", "Upload"))]


def interactions(page, rounds: int) -> list[float]:
    return [t for _ in range(rounds) for t in one_round(page)]


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


def workers_alive(pid: int) -> int:
    """Check workers: the children of the pool's forkserver (which the server started)."""
    servers = [p for p in psutil.Process(pid).children() if "forkserver" in " ".join(p.cmdline())]
    return sum(1 for server in servers for p in server.children() if p.status() != psutil.STATUS_ZOMBIE)


def start_checks(pages: list, files: list[Path]) -> None:
    for page, path in zip(pages, files, strict=True):
        page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))


def wait_checked(pages: list, files: list[Path]) -> None:
    """Until every loaded session's card left "Checking" (its Upload or Discard button is there)."""
    deadline = time.monotonic() + CHECKS_TIMEOUT_S
    for page in pages:
        remaining_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
        page.get_by_role("button", name="Discard").first.wait_for(timeout=remaining_ms)


def measure(browser, quick: bool, figures: dict) -> None:
    env = {"PULSEVAULT_CHECK_CONCURRENCY_PER_USER": str(DEFAULT_CHECK_CONCURRENCY)}
    with tempfile.TemporaryDirectory() as tmp, run_app(Path(tmp), env=env) as app:
        files = recordings(Path(tmp), quick)
        figures["load_recording_mb"] = round(statistics.mean(p.stat().st_size for p in files) / 1e6, 1)
        pages = []
        for _ in range(LOADED_SESSIONS + 1):
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            sign_in(page, app.url, DEMO_EMAIL, DEMO_PASSWORD)
            page.get_by_role("heading", name="Upload").first.wait_for(timeout=IDLE_TIMEOUT_MS)
            pages.append(page)
        time.sleep(SETTLE_S if not quick else SETTLE_S / 2)
        watcher, loaded = pages[0], pages[1:]
        interactions(watcher, 1)  # warm-up: first renders import and cache what later ones reuse
        alone = interactions(watcher, ROUNDS)
        rss_before = rss_mb(app.pid)
        server = psutil.Process(app.pid)
        cpu_before, started = sum(server.cpu_times()[:2]), time.monotonic()
        start_checks(loaded, files)
        under_load = interactions(watcher, ROUNDS)
        # Where the time goes: the web process's own share of a core while the fifth session was timed.
        figures["load_server_cpu_pct"] = round(
            100 * (sum(server.cpu_times()[:2]) - cpu_before) / (time.monotonic() - started), 1)
        wait_checked(loaded, files)
        figures["load_checks_s"] = round(time.monotonic() - started, 1)
        time.sleep(RECOVERY_S)
        figures["load_rss_before_mb"] = round(rss_before, 1)
        figures["load_rss_after_mb"] = round(rss_mb(app.pid) - rss_before, 1)
        figures["load_check_workers_after"] = workers_alive(app.pid)
        figures.update(summary("alone", alone) | summary("loaded", under_load))
        figures["load_interaction_ratio"] = round(statistics.median(under_load) / statistics.median(alone), 2)


def summary(label: str, times: list[float]) -> dict:
    return {f"load_{label}_median_s": round(statistics.median(times), 2), f"load_{label}_max_s": round(max(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller recordings")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    figures: dict = {"load_sessions": LOADED_SESSIONS + 1}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            measure(browser, args.quick, figures)
        except Exception as exc:  # a loaded or broken machine: say what could not be measured
            figures["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            browser.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
