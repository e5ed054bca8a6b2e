"""Demo mode: embedded backends so the app runs with no credentials at all.

An S3 API (moto's server) on 127.0.0.1 on a free port, a SQLite database for
accounts and metadata, and two seeded accounts: a researcher and an
administrator (the role only the server sets; both shown on the sign-in page). Everything lives in a
temporary folder and in memory, so it disappears when the process ends; the
app says so in a banner.
"""

from __future__ import annotations

import atexit
import logging
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from lib.auth import ADMIN_ROLE, DemoAuth
from lib.settings import S3Settings

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@pulsevault.app"
DEMO_PASSWORD = "pulse-demo-2026"
DEMO_ADMIN_EMAIL = "admin@pulsevault.app"
DEMO_ADMIN_PASSWORD = "pulse-admin-2026"
DEMO_BUCKET = "pulsevault-demo"
DEMO_REGION = "us-east-1"
CORS_MAX_AGE_S = 3_000


@dataclass(frozen=True)
class DemoBackends:
    s3: S3Settings
    db_path: Path
    workdir: Path
    email: str
    password: str = field(repr=False)
    user_id: str
    admin_email: str = DEMO_ADMIN_EMAIL
    admin_password: str = field(repr=False, default=DEMO_ADMIN_PASSWORD)


_lock = threading.Lock()
_running: DemoBackends | None = None
_seeded = False
_seed_done = threading.Event()


def start_demo(origins: Iterable[str]) -> DemoBackends:
    """Start the embedded backends once per process and return them.

    ``origins`` are the app's browser origins, allowed by the bucket's CORS
    rule so the browser can PUT parts straight to S3.
    """
    global _running
    with _lock:
        if _running is None:
            _running = _start(tuple(origins))
        return _running


def seed_once(seed: Callable[[], None]) -> None:
    """Run ``seed`` (sample data for the demo account) once per process.

    It runs in the background: generating, analysing and uploading the sample
    takes seconds, and the sign-in page should not wait for it. A failed seed
    leaves an empty but working demo; it must not stop the app.
    """
    global _seeded
    with _lock:
        if _seeded:
            return
        _seeded = True
    # Not a daemon: the interpreter waits for it at exit, because killing a
    # thread inside OpenCV/ffmpeg at shutdown aborts the whole process.
    threading.Thread(target=_run_seed, args=(seed,), name="pulsevault-demo-seed", daemon=False).start()


def seeding_done(timeout_s: float | None = 0) -> bool:
    """Whether the sample data is in place (waiting up to ``timeout_s``)."""
    return _seed_done.wait(timeout_s)


def _run_seed(seed: Callable[[], None]) -> None:
    try:
        seed()
    except Exception:
        log.exception("demo mode: seeding the sample data failed")
    finally:
        _seed_done.set()


def _start(origins: tuple[str, ...]) -> DemoBackends:
    workdir = Path(tempfile.mkdtemp(prefix="pulsevault-demo-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    s3 = _start_s3(origins)
    db_path = workdir / "pulsevault-demo.sqlite3"
    accounts = DemoAuth(db_path)
    user_id = accounts.ensure_account(DEMO_EMAIL, DEMO_PASSWORD)
    accounts.ensure_account(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, role=ADMIN_ROLE)
    log.info("demo mode: S3 at %s, database in %s", s3.endpoint_url, workdir)
    return DemoBackends(s3=s3, db_path=db_path, workdir=workdir, email=DEMO_EMAIL,
                        password=DEMO_PASSWORD, user_id=user_id)


def _start_s3(origins: tuple[str, ...]) -> S3Settings:
    server_log = logging.getLogger("werkzeug")
    # moto's request log would print every presigned URL; keep it quiet.
    server_log.setLevel(logging.WARNING)
    server_log.addFilter(_quiet_server_errors)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    atexit.register(server.stop)
    host, port = server.get_host_and_port()
    s3 = S3Settings(
        bucket=DEMO_BUCKET,
        region=DEMO_REGION,
        # moto accepts any credentials; fresh random ones keep the code path
        # identical to cloud mode without inventing a well-known secret.
        access_key_id="demo-" + secrets.token_hex(8),
        secret_access_key=secrets.token_urlsafe(24),
        endpoint_url=f"http://{host}:{port}",
    )
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=s3.bucket)
    client.put_bucket_cors(Bucket=s3.bucket, CORSConfiguration=cors_configuration(origins))
    return s3


_CLIENT_ABORTS = ("read of closed file", "ConnectionResetError", "BrokenPipeError", "ConnectionAbortedError")


def _quiet_server_errors(record: logging.LogRecord) -> bool:
    """Keep the embedded S3 server's failures to one line each, and drop client aborts.

    werkzeug logs a failed request as "Error on request" with the whole
    traceback in the message. A browser pausing or cancelling an upload closes
    its PUT mid-body, which is routine for S3, so that is dropped; anything
    else is moto's own trouble (a 500 the app retries or reports), so one
    warning line says what it was without a traceback in the app's log.
    """
    message = record.getMessage()
    if not message.startswith("Error on request"):
        return True
    if any(abort in message for abort in _CLIENT_ABORTS):
        return False
    last = message.strip().splitlines()[-1]
    record.msg, record.args = "embedded S3 failed a request: %s", (last,)
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def cors_configuration(origins: Iterable[str]) -> dict:
    """The CORS rule the bucket needs for browser uploads and playback.

    The README shows the same rule for a real bucket.
    """
    return {
        "CORSRules": [
            {
                "AllowedOrigins": sorted(set(origins)),
                "AllowedMethods": ["GET", "PUT", "HEAD"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag", "Content-Length", "Content-Range"],
                "MaxAgeSeconds": CORS_MAX_AGE_S,
            }
        ]
    }
