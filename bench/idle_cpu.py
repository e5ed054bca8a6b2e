"""Idle CPU: the app server started as the README says, one signed-in browser tab
open and nobody touching it. Prints one JSON line:
``{"idle_cpu_pct": ..., ...}``, the percentage of one core the server process
(and any process it started) uses while idle. Goal: at most 5.

The README creates ``.venv`` inside the app folder; ``venv_in_app_folder`` says
whether this checkout has it there (that is what made Streamlit's file watcher
burn a core). With ``--compare-watchdog`` it also measures the same with the
file watcher forced on (``idle_cpu_pct_watchdog``), the baseline of issue 21.

Usage: python bench/idle_cpu.py [--quick] [--seconds S] [--compare-watchdog]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD  # noqa: E402
from tests.support.app_server import run_app  # noqa: E402
from tests.support.browser import sign_in  # noqa: E402
from tests.support.services import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SETTLE_S = 20
"""After sign-in: the demo seed (sample generation and analysis) must finish before idling counts."""
QUICK_SETTLE_S = 10


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU time of a process and everything it started."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def measure(browser, seconds: float, settle_s: float, extra_args: tuple[str, ...] = ()) -> float:
    with tempfile.TemporaryDirectory() as tmp, run_app(Path(tmp), args=extra_args) as app:
        page = browser.new_page()
        sign_in(page, app.url, DEMO_EMAIL, DEMO_PASSWORD)
        page.get_by_role("heading", name="Upload").first.wait_for(timeout=120_000)
        time.sleep(settle_s)
        server = psutil.Process(app.pid)
        before, started = cpu_seconds(server), time.monotonic()
        time.sleep(seconds)
        used = cpu_seconds(server) - before
        elapsed = time.monotonic() - started
        page.close()
    return round(100 * used / elapsed, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a shorter idle window")
    parser.add_argument("--seconds", type=float, default=None, help="idle window to measure (default 30, quick 10)")
    parser.add_argument("--compare-watchdog", action="store_true", help="also measure with the file watcher on")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    seconds = args.seconds or (10 if args.quick else 30)
    settle = QUICK_SETTLE_S if args.quick else SETTLE_S
    figures: dict = {"idle_window_s": seconds, "venv_in_app_folder": (REPO / ".venv").is_dir()}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            figures["idle_cpu_pct"] = measure(browser, seconds, settle)
            if args.compare_watchdog:
                figures["idle_cpu_pct_watchdog"] = measure(
                    browser, seconds, settle, ("--server.fileWatcherType", "watchdog"))
        except Exception as exc:  # a loaded or broken machine: say what could not be measured
            figures["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            browser.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
