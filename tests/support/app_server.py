"""Run the real app with ``streamlit run`` on a free port, for e2e tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60
# Variables that would switch the app to cloud mode or to a developer's AWS account.
_CONFIG_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_S3_BUCKET", "AWS_S3_ENDPOINT_URL",
    "AWS_PROFILE", "AWS_SESSION_TOKEN", "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY",
    "PULSEVAULT_ADMIN_EMAILS", "PULSEVAULT_SESSION_KEY",
)


@dataclass(frozen=True)
class RunningApp:
    url: str
    port: int
    log_path: Path
    pid: int

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def app_origins(app: RunningApp) -> list[str]:
    """The origins a browser may load the app from (what a bucket's CORS rule must allow)."""
    return [app.url, f"http://localhost:{app.port}"]


def app_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARS}
    env.update(extra or {})
    return env


@contextmanager
def run_app(log_dir: Path, env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> Iterator[RunningApp]:
    """Start ``streamlit run app.py`` (``args``: more command-line options); yield once its health endpoint answers."""
    port = free_port()
    log_path = log_dir / f"streamlit-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", *args],
            cwd=REPO, env=app_environment(env), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc)
            yield RunningApp(url=url, port=port, log_path=log_path, pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before it was healthy")
        try:
            if requests.get(f"{url}/_stcore/health", timeout=1).ok:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # st.App (uvicorn) accepts connections before its runtime has started
        time.sleep(0.1)
    raise RuntimeError(f"streamlit did not answer on {url} within {STARTUP_TIMEOUT_S} s")
