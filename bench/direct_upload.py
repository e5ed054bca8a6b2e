"""Server memory while a large recording goes browser → S3, and the browser path's throughput.

Cloud mode: SeaweedFS (S3) and the Supabase stand-in each run in their own process
(tests/support/cloud.py), so the bucket's memory is not the app's. The app runs with ``streamlit
run`` on a harness page that signs in the stand-in's researcher and shows either the real Upload page
(its Large files tab, then the file's card finishes it) or a plain ``st.file_uploader``. Chromium
(Playwright) picks a generated raw AVI; psutil samples the RSS of the Streamlit process and every
process it started, every 0.1 s.

Demo mode: the same harness with no configuration at all, signed in as the demo account. Here the
app starts the S3 server itself, so it is one of the processes counted: the figure is how much the
machine's memory grows while the app takes a recording at the upload limit (issue 21: moto held and
joined the parts in the app's own memory, 3.2 GB for 571 MiB). Measured once the demo's sample
recording is stored, from picking the file until its card says it is stored.

Figures (one JSON line):
  direct_upload_server_peak_rss_mb   peak RSS while the parts go up (goal < 400)
  direct_finish_server_peak_rss_mb   peak RSS while the server fetches + probes + previews it afterwards
  server_resting_rss_mb              RSS with the page loaded, before the file is picked
  direct_upload_app_peak_rss_mb      the Streamlit process alone while the parts go up (its check workers,
  direct_finish_app_peak_rss_mb      which download and decode the recording, are in the figures above)
  file_uploader_server_peak_rss_mb   the same file through st.file_uploader (whole file held by the server)
  direct_upload_mb_s                 browser → S3 throughput (pick to last part)
  server_transfer_mb_s               lib.transfer.upload_file of the same file to the same S3 server
  demo_large_upload_peak_rss_mb      demo mode: peak RSS of the app and everything it started (its S3 server)
  demo_large_upload_rss_growth_mb    demo mode: that peak minus the same sum at rest (goal <= about 1 GiB)
  demo_resting_rss_mb                demo mode: the app and its S3 server at rest, signed in, sample stored
  demo_app_resting_rss_mb            demo mode: the Streamlit process alone at rest

Usage: python -m bench.direct_upload [--quick] [--only cloud|demo]   (1 GiB; --quick: 128 MiB, says file_mb)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.direct_upload import DIRECT_TAB
from lib.demo import DEMO_EMAIL, DEMO_PASSWORD
from lib.settings import MIB, S3Settings
from lib.storage import ObjectStore
from lib.transfer import ObjectTarget, upload_file
from tests.support.app_server import REPO, _wait_healthy, app_environment
from tests.support.cloud import (
    ACCESS_KEY_ID,
    BUCKET,
    REGION,
    SECRET_ACCESS_KEY,
    USER_EMAIL,
    USER_PASSWORD,
    cloud_backends,
)
from tests.support.services import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.support.videos import write_opencv

DEMO_SEEDED = re.compile(r"demo mode: sample recording \S+ is")
"""The app's log line once the demo's sample recording went through the pipeline."""
FRAME = (640, 480)
RAW_FRAME_BYTES = 640 * 480 * 3 // 2  # OpenCV's raw AVI stores yuv420p
HARNESS = '''
import logging
import sys
sys.path.insert(0, {repo!r})
logging.basicConfig(level=logging.INFO)  # as app.py does: the demo's "sample recording ... is" line
import streamlit as st
from components.context import get_auth, get_services, start_session, user_context

services = get_services()
if "pv_session" not in st.session_state:
    start_session(get_auth(services).sign_in({email!r}, {password!r}))
if st.query_params.get("mode") == "uploader":
    f = st.file_uploader("Recording", max_upload_size=4096)
    st.write(f"received {{f.size}}" if f is not None else "waiting")
else:
    from pages.upload import render
    render()
'''


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.own_peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.rss())
            self.own_peak = max(self.own_peak, self.own_rss())
            time.sleep(0.1)

    def rss(self) -> int:
        """The app's RSS plus that of every process it started (demo mode's S3 server among them)."""
        total = 0
        for proc in [self.proc, *self.proc.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):  # a short-lived helper ended between listing and reading
                total += proc.memory_info().rss
        return total

    def own_rss(self) -> int:
        return self.proc.memory_info().rss

    @contextmanager
    def window(self) -> Iterator[RssSampler]:
        self.peak, self.own_peak, self.stop = self.rss(), self.own_rss(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self.thread.join()


@contextmanager
def harness_app(folder: Path, env: dict[str, str], email: str = USER_EMAIL,
                password: str = USER_PASSWORD) -> Iterator[tuple[str, int]]:
    script = folder / "bench_harness.py"
    script.write_text(HARNESS.format(repo=str(REPO), email=email, password=password))
    port = free_port()
    with (folder / "streamlit.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.maxUploadSize", "4096"],
            cwd=REPO, env=app_environment(env), stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc)
            yield url, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def make_recording(path: Path, size: int) -> Path:
    frames = max(30, size // RAW_FRAME_BYTES)
    written = write_opencv(path, "\0\0\0\0", frames=frames, size=FRAME)
    assert written is not None
    return written


def direct(browser, url: str, pid: int, recording: Path, *, ready: Callable[[], bool] = lambda: True
           ) -> dict[str, float]:
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name=DIRECT_TAB).click(timeout=120_000)
    page.locator("[data-testid=pv-direct-input]").wait_for(state="attached", timeout=120_000)
    sampler = RssSampler(pid)
    deadline = time.monotonic() + 600
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)
    resting = sampler.rss()
    own_resting = sampler.own_rss()
    status = page.locator("[data-testid=pv-direct-status]").last
    with sampler.window() as upload_window:
        started = time.monotonic()
        page.locator("[data-testid=pv-direct-input]").set_input_files(recording)
        while (status.text_content() or "") not in ("Assembling in the bucket…", "In the bucket", "Failed"):
            time.sleep(0.1)
        sent_s = time.monotonic() - started
    with sampler.window() as finish_window:  # the file's card: fetch, checks, preview, quick look, store
        # The card's success line, or its status badge when it failed.
        outcome = page.get_by_text(re.compile(r"^(Stored and ready|Upload failed|Not accepted|Check failed)"))
        outcome.first.wait_for(timeout=1_800_000)
    text = outcome.first.text_content() or ""
    page.close()
    if not text.startswith("Stored and ready"):
        raise RuntimeError(f"direct upload ended: {text}")
    size = recording.stat().st_size
    return {"server_resting_rss_mb": resting / MIB, "direct_upload_server_peak_rss_mb": upload_window.peak / MIB,
            "direct_finish_server_peak_rss_mb": finish_window.peak / MIB, "direct_upload_mb_s": size / MIB / sent_s,
            "app_resting_rss_mb": own_resting / MIB, "direct_upload_app_peak_rss_mb": upload_window.own_peak / MIB,
            "direct_finish_app_peak_rss_mb": finish_window.own_peak / MIB}


def file_uploader(browser, url: str, pid: int, recording: Path) -> float:
    page = browser.new_page()
    page.goto(url + "/?mode=uploader")
    page.get_by_text("waiting").wait_for(timeout=120_000)
    sampler = RssSampler(pid)
    with sampler.window() as window:
        page.locator("input[type=file]").set_input_files(recording)
        page.get_by_text(f"received {recording.stat().st_size}").wait_for(timeout=600_000)
        time.sleep(1)
    page.close()
    return window.peak / MIB


def server_transfer(endpoint: str, recording: Path) -> float:
    store = ObjectStore(S3Settings(BUCKET, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY, endpoint), max_pool_connections=16)
    started = time.monotonic()
    upload_file(store, ObjectTarget("recordings/bench-user/transfer/original.avi", "bench-user", "video/x-msvideo"),
                recording)
    return recording.stat().st_size / MIB / (time.monotonic() - started)


def cloud_figures(browser, folder: Path, recording: Path) -> dict[str, float]:
    with cloud_backends(folder) as cloud:
        env = cloud.app_env()
        with harness_app(folder, env) as (url, pid):
            cloud.allow_origins([url, url.replace("127.0.0.1", "localhost")])
            figures = direct(browser, url, pid, recording)
        figures.pop("app_resting_rss_mb")
        with harness_app(folder, env) as (url, pid):  # a fresh process: its own peak
            cloud.allow_origins([url, url.replace("127.0.0.1", "localhost")])
            figures["file_uploader_server_peak_rss_mb"] = file_uploader(browser, url, pid, recording)
        figures["server_transfer_mb_s"] = server_transfer(cloud.s3_endpoint, recording)
    return figures


def demo_figures(browser, folder: Path, recording: Path) -> dict[str, float]:
    """The app in demo mode (nothing configured) takes the recording through its Large files tab."""
    demo_folder = folder / "demo"
    demo_folder.mkdir()
    with harness_app(demo_folder, {}, DEMO_EMAIL, DEMO_PASSWORD) as (url, pid):
        log = demo_folder / "streamlit.log"
        figures = direct(browser, url, pid, recording, ready=lambda: bool(DEMO_SEEDED.search(log.read_text())))
    peak = max(figures["direct_upload_server_peak_rss_mb"], figures["direct_finish_server_peak_rss_mb"])
    return {"demo_large_upload_peak_rss_mb": peak,
            "demo_large_upload_rss_growth_mb": peak - figures["server_resting_rss_mb"],
            "demo_resting_rss_mb": figures["server_resting_rss_mb"],
            "demo_app_resting_rss_mb": figures["app_resting_rss_mb"],
            "demo_direct_upload_mb_s": figures["direct_upload_mb_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 MiB instead of 1 GiB")
    parser.add_argument("--only", choices=("cloud", "demo"), help="one mode instead of both")
    args = parser.parse_args()
    size = (128 if args.quick else 1024) * MIB
    from playwright.sync_api import sync_playwright

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as tmp, sync_playwright() as pw:
        folder = Path(tmp)
        recording = make_recording(folder / "bench.avi", size)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            if args.only in (None, "cloud"):
                figures |= cloud_figures(browser, folder, recording)
            if args.only in (None, "demo"):
                figures |= demo_figures(browser, folder, recording)
        finally:
            browser.close()
        figures["file_mb"] = recording.stat().st_size / MIB
    figures = {k: round(v, 1) for k, v in figures.items()}
    print(json.dumps({**figures, "goal_direct_upload_server_peak_rss_mb": 400,
                      "goal_demo_large_upload_rss_growth_mb": 1024}))


if __name__ == "__main__":
    main()
