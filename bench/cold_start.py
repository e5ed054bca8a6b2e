"""Cold start: from launching ``streamlit run app.py`` (demo mode) to the sign-in
page rendered in Chromium. Prints one JSON line: ``{"cold_start_s": ...}``.

Usage: python bench/cold_start.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.app_server import app_environment  # noqa: E402
from tests.support.services import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

SIGN_IN_TEXT = "Demo account"


def measure_once(browser, log_dir: Path) -> float:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (log_dir / f"cold-{port}.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=REPO, env=app_environment(), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_http(url, proc)
        page = browser.new_page()
        page.goto(url)
        page.get_by_text(SIGN_IN_TEXT).first.wait_for(timeout=60_000)
        elapsed = time.perf_counter() - started
        page.close()
        return elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def _wait_for_http(url: str, proc: subprocess.Popen) -> None:
    # Poll tightly: the browser can only start loading once the server listens.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("streamlit exited during start-up")
        try:
            requests.get(f"{url}/_stcore/health", timeout=0.5)
            return
        except requests.ConnectionError:
            time.sleep(0.02)
    raise RuntimeError("streamlit did not start within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # A first, unmeasured start warms the OS file cache like a second launch would.
        if not args.quick:
            measure_once(browser, Path(tmp))
        times = [measure_once(browser, Path(tmp)) for _ in range(runs)]
        browser.close()
    print(json.dumps({"cold_start_s": round(statistics.median(times), 2), "runs": runs}))


if __name__ == "__main__":
    main()
