"""Cold start as a ratio: from launching ``streamlit run`` to the first page rendered in Chromium,
PulseVault's sign-in page (demo mode) against a one-line Streamlit app started the same way.

Prints one JSON line:

- ``cold_start_ratio_vs_bare``: median over runs of (app time / bare time), each pair measured
  back to back so both see the same machine load. Goal (issue 20): ≤ 1.5.
- ``cold_start_s``, ``cold_start_bare_s``: the medians of the absolute times (they move with load).

A first, unmeasured start of each warms the OS file cache like a second launch would. A run that
fails (a loaded machine can time out) is reported in ``errors`` and left out of the figures.

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
"""Text only the rendered sign-in page shows."""
BARE_TEXT = "PulseVault bare baseline"
"""What the one-line baseline app writes."""
START_TIMEOUT_S = 90
"""Longer than any start seen on a loaded 2-core machine."""
STOP_TIMEOUT_S = 15
"""How long a terminated server may take to exit before it is killed."""


def measure_once(browser, script: Path, text: str, log_dir: Path) -> float:
    """Seconds from ``streamlit run script`` to ``text`` rendered in a fresh page."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (log_dir / f"cold-{port}.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=app_environment(), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_http(url, proc)
        page = browser.new_page()
        page.goto(url)
        page.get_by_text(text).first.wait_for(timeout=START_TIMEOUT_S * 1000)
        elapsed = time.perf_counter() - started
        page.close()
        return elapsed
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen) -> None:
    """Terminate the server, killing it if it does not exit in time (the demo seed may still be working)."""
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for_http(url: str, proc: subprocess.Popen) -> None:
    # Poll tightly: the browser can only start loading once the server listens.
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("streamlit exited during start-up")
        try:
            requests.get(f"{url}/_stcore/health", timeout=0.5)
            return
        except requests.RequestException:  # not listening yet, or too busy to answer
            time.sleep(0.02)
    raise RuntimeError(f"streamlit did not start within {START_TIMEOUT_S} s")


def measure_pairs(browser, runs: int, folder: Path) -> tuple[list[tuple[float, float]], list[str]]:
    """(app, bare) seconds per run, measured back to back; and why any run failed."""
    bare = folder / "bare_app.py"
    bare.write_text(f"import streamlit as st\n\nst.write({BARE_TEXT!r})\n")
    app = REPO / "app.py"
    pairs, errors = [], []
    for run in range(runs + 1):
        try:
            pair = (measure_once(browser, app, SIGN_IN_TEXT, folder), measure_once(browser, bare, BARE_TEXT, folder))
        except Exception as exc:  # a loaded machine reports what it could measure
            errors.append(f"run {run}: {type(exc).__name__}: {exc}")
            continue
        if run:  # run 0 warms the file cache
            pairs.append(pair)
    return pairs, errors


def figures(pairs: list[tuple[float, float]]) -> dict[str, float | None]:
    if not pairs:
        return {"cold_start_ratio_vs_bare": None, "cold_start_s": None, "cold_start_bare_s": None}
    return {
        "cold_start_ratio_vs_bare": round(statistics.median(a / b for a, b in pairs), 2),
        "cold_start_s": round(statistics.median(a for a, _ in pairs), 2),
        "cold_start_bare_s": round(statistics.median(b for _, b in pairs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one measured run")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pairs, errors = measure_pairs(browser, runs, Path(tmp))
        browser.close()
    print(json.dumps({**figures(pairs), "runs": len(pairs), **({"errors": errors} if errors else {})}))


if __name__ == "__main__":
    main()
